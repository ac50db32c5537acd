"""Admission limits shared by two worker processes through SQLite or Redis, and kept
per process when sharing is switched off."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from authx import AuthX, AuthXConfig
from tests.conftest import SECRET, LiveServer
from tests.websocket.client import Outcome, handshake

APP = "tests.apps.admission_app:app"
issuer = AuthX(AuthXConfig(JWT_SECRET_KEY=SECRET))


@pytest.fixture(params=["redis", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite:///{tmp_path / 'admission.db'}"


def workers(factory: Any, store_url: str, case: str, **settings: str) -> list[LiveServer]:
    if store_url.startswith("redis"):  # one Redis serves the whole session: own keys
        store_url += f"{'&' if '?' in store_url else '?'}prefix={case}"
    env = {
        "JWT_SECRET_KEY": SECRET,
        "JWT_STORE_URL": store_url,
        "UVICORN_PROXY_HEADERS": "false",
        "AUTHX_TEST_CASE": case,
        **settings,
    }
    return [factory(APP, **env, NODE=node) for node in ("a", "b")]


async def connect(server: LiveServer, tok: str | None = None) -> Outcome:
    tok = tok or issuer.create_access_token(uid="alice", expiry=timedelta(minutes=5))
    return await handshake(f"{server.ws}/ws?token={tok}")


def refused(seen: Outcome) -> bool:
    return seen.status == 429 and seen.body["reason"] == "rate_limited"


async def test_two_workers_share_one_bucket(live_server_factory: Any, store_url: str) -> None:
    a, b = workers(
        live_server_factory, store_url, "shared", JWT_WS_RATE_LIMIT="0.1", JWT_WS_RATE_BURST="4"
    )
    for server in (a, b, a, b):
        assert (await connect(server)).kind == "open"
    assert refused(await connect(a))
    assert refused(await connect(b))
    for server in (a, b):
        server.assert_log_clean()


async def test_failures_on_one_worker_cost_on_the_other(
    live_server_factory: Any, store_url: str
) -> None:
    a, b = workers(
        live_server_factory,
        store_url,
        "shared-penalty",
        JWT_WS_RATE_LIMIT="0.1",
        JWT_WS_RATE_BURST="12",
        JWT_WS_FAILURE_COST="5",
    )
    for _ in range(2):
        assert (await connect(a, "forged.bad.token")).status == 401
    assert refused(await connect(b))


async def test_without_sharing_each_worker_counts_alone(
    live_server_factory: Any, store_url: str
) -> None:
    a, b = workers(
        live_server_factory,
        store_url,
        "unshared",
        JWT_WS_RATE_LIMIT="0.1",
        JWT_WS_RATE_BURST="4",
        JWT_WS_RATE_LIMIT_SHARED="false",
    )
    for server in (a, b, a, b, a, b, a, b):
        assert (await connect(server)).kind == "open"
    assert refused(await connect(a))
