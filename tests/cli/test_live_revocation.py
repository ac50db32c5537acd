"""The incident recipe, end to end: ``authx revoke subject alice`` from a shell closes
alice's live WebSocket connections on a server in another process, through the store."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.websocket.client import closed_after

from .conftest import SECRET, Run

APP = "tests.apps.live_app:app"


@pytest.fixture(params=["redis", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        return f"{url}?prefix=cli-live-{uuid.uuid4().hex[:12]}"
    return f"sqlite:///{tmp_path / 'cluster.db'}?poll_interval=0.05"


async def test_revoke_subject_closes_live_connections_on_a_server(
    live_server_factory: Any, store_url: str, authx_cmd: Callable[..., Run]
) -> None:
    env = {"JWT_SECRET_KEY": SECRET, "JWT_STORE_URL": store_url}
    server = live_server_factory(APP, **env)

    def token_for(sub: str) -> str:
        created = authx_cmd("token", "create", "--sub", sub, env=env)
        assert created.code == 0, created.stderr
        return created.stdout.strip()

    alice, bob = await asyncio.gather(*(asyncio.to_thread(token_for, s) for s in ("alice", "bob")))
    async with (
        websockets.connect(f"{server.ws}/ws/push?token={alice}") as victim,
        websockets.connect(f"{server.ws}/ws?token={bob}") as bystander,
    ):
        assert json.loads(await victim.recv())["message"] == "Hello, alice!"
        await bystander.recv()
        closing = asyncio.ensure_future(closed_after(victim, timeout=20))

        started = time.monotonic()
        revoked = await asyncio.to_thread(authx_cmd, "revoke", "subject", "alice", env=env)
        assert revoked.code == 0, revoked.stderr
        code, reason, _ = await closing
        assert (code, reason) == (4004, "token_revoked")
        print(  # noqa: T201 - the measured delay, shown with -s
            f"authx revoke subject via {store_url.split(':')[0]}: closed after "
            f"{time.monotonic() - started:.2f} s, process start included"
        )

        await bystander.send("still open?")
        assert json.loads(await asyncio.wait_for(bystander.recv(), 5))["echo"] == "still open?"
    server.assert_log_clean(alice, bob, SECRET)
