"""Stores behind real uvicorn processes: revocation across processes, durability, outages."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import websockets

from authx import AuthX, AuthXConfig
from authx._revocation import redact_url
from tests.conftest import SECRET
from tests.websocket.client import closed_after, handshake

APP = "tests.apps.live_app:app"
issuer = AuthX(AuthXConfig(JWT_SECRET_KEY=SECRET))


def post(server: Any, path: str) -> int:
    request = urllib.request.Request(server.http + path, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


async def close_seen(ws: Any) -> float:
    """When (``time.monotonic()``) the client saw the server's close frame."""
    await closed_after(ws)
    return time.monotonic()


@pytest.fixture(params=["redis", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite:///{tmp_path / 'cluster.db'}?poll_interval=0.05"


async def test_revocation_reaches_another_process(live_server_factory, store_url: str) -> None:  # type: ignore[no-untyped-def]
    a = live_server_factory(APP, JWT_SECRET_KEY=SECRET, JWT_STORE_URL=store_url, NODE="a")
    b = live_server_factory(APP, JWT_SECRET_KEY=SECRET, JWT_STORE_URL=store_url, NODE="b")
    delays = []
    for _ in range(5):
        victim, bystander = issuer.create_access_token("victim"), issuer.create_access_token("x")
        async with (
            websockets.connect(f"{b.ws}/ws?token={victim}") as ws,
            websockets.connect(f"{b.ws}/ws?token={bystander}") as other,
        ):
            await ws.recv()
            await other.recv()
            watcher = asyncio.ensure_future(close_seen(ws))
            await asyncio.sleep(0.05)
            started = time.monotonic()
            assert await asyncio.to_thread(post, a, f"/revoke/token?token={victim}") == 200
            seen = await watcher
            assert (ws.close_code, ws.close_reason) == (4004, "token_revoked")
            delays.append(seen - started)
            await other.send("still open?")
            assert json.loads(await asyncio.wait_for(other.recv(), 5))["echo"] == "still open?"
        # B refuses the token at its next handshake too.
        outcome = await handshake(f"{b.ws}/ws?token={victim}")
        assert (outcome.status, outcome.body["error_type"], outcome.body["reason"]) == (
            401,
            "RevokedTokenError",
            "token_revoked",
        )
    print(f"cross-process revocation via {store_url.split(':')[0]}: {sorted(delays)}")  # noqa: T201
    limit = 0.2 if store_url.startswith("redis") else 0.5
    assert max(delays) < limit, delays
    a.assert_log_clean()
    b.assert_log_clean()


async def test_sqlite_revocation_survives_sigkill(live_server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'durable.db'}"
    server = live_server_factory(APP, JWT_SECRET_KEY=SECRET, JWT_STORE_URL=url)
    token = issuer.create_access_token("durable")
    assert (await handshake(f"{server.ws}/ws?token={token}")).kind == "open"
    assert await asyncio.to_thread(post, server, f"/revoke/token?token={token}") == 200
    server.kill()
    server.start()
    outcome = await handshake(f"{server.ws}/ws?token={token}")
    assert (outcome.status, outcome.body["error_type"]) == (401, "RevokedTokenError")
    other = issuer.create_access_token("durable")
    assert (await handshake(f"{server.ws}/ws?token={other}")).kind == "open"


async def test_redis_outage_fails_closed_and_recovers(live_server_factory, fault_redis) -> None:  # type: ignore[no-untyped-def]
    url = f"redis://{fault_redis.host}:{fault_redis.port}/0"
    server = live_server_factory(APP, JWT_SECRET_KEY=SECRET, JWT_STORE_URL=url)
    held = issuer.create_access_token("holder")
    async with websockets.connect(f"{server.ws}/ws?token={held}") as ws:
        await ws.recv()
        fault_redis.stop()
        try:
            for _ in range(5):
                started = time.monotonic()
                outcome = await handshake(f"{server.ws}/ws?token={issuer.create_access_token('n')}")
                assert time.monotonic() - started < 3.0  # no hang
                assert (outcome.status, outcome.body["error_type"]) == (
                    503,
                    "StoreUnavailableError",
                )
            # The open connection is not dropped by the outage.
            await ws.send("during outage")
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["echo"] == "during outage"
        finally:
            fault_redis.start()
        deadline = time.monotonic() + 15
        while True:
            outcome = await handshake(f"{server.ws}/ws?token={issuer.create_access_token('n')}")
            if outcome.kind == "open" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert outcome.kind == "open"
        # Revocation events flow again: the held connection is closed.
        await asyncio.sleep(0.5)
        watcher = asyncio.ensure_future(close_seen(ws))
        assert await asyncio.to_thread(post, server, f"/revoke/token?token={held}") == 200
        await watcher
        assert (ws.close_code, ws.close_reason) == (4004, "token_revoked")
    log = server.assert_log_clean()
    assert "unavailable" in log


def test_store_urls_are_logged_without_password() -> None:
    assert redact_url("redis://:s3cret@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert redact_url("rediss://user:s3cret@host/1") == "rediss://user:***@host/1"
    assert redact_url("sqlite:///tmp/x.db") == "sqlite:///tmp/x.db"
    # Passwords in options too: the sentinels' own, a TLS key's passphrase.
    assert (
        redact_url("redis+sentinel://a:pw@h1,h2/svc?sentinel_password=s&ssl_password=k&x=1")
        == "redis+sentinel://a:***@h1,h2/svc?sentinel_password=***&ssl_password=***&x=1"
    )
