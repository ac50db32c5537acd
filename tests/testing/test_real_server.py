"""Minted tokens and rejection assertions against a real uvicorn server, driven by
the ``websockets`` client."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
import websockets

from authx.testing import bearer, expect_ws_rejection, make_token, subprotocols, token_url
from tests.conftest import SECRET
from tests.testing.app import create_app

APP = "tests.testing.server_app:app"
_, issuer = create_app()  # the server's secret: its tokens are the server's tokens


async def first_message(url: str, **kwargs: Any) -> Any:
    async with websockets.connect(url, **kwargs) as ws:
        return json.loads(await ws.recv())


async def test_minted_tokens_against_uvicorn(live_server_factory, mode: str) -> None:  # type: ignore[no-untyped-def]
    server = live_server_factory(APP, JWT_SECRET_KEY=SECRET, JWT_WS_REJECTION=mode)
    token = make_token(issuer, "alice", scopes=["read"])
    async with websockets.connect(f"{server.ws}/ws", additional_headers=bearer(token)) as ws:
        assert json.loads(await ws.recv()) == {"user": "alice"}
    async with websockets.connect(server.ws + token_url("/ws", token)) as ws:
        assert json.loads(await ws.recv()) == {"user": "alice"}
    async with websockets.connect(f"{server.ws}/ws", subprotocols=subprotocols(token)) as ws:  # type: ignore[arg-type]
        assert json.loads(await ws.recv()) == {"user": "alice"}
        assert ws.subprotocol == "authx"

    expired = make_token(issuer, "alice", expires=timedelta(seconds=-1))
    with expect_ws_rejection(reason="token_expired") as rejection:
        async with websockets.connect(f"{server.ws}/ws", additional_headers=bearer(expired)) as ws:
            await ws.recv()
    assert rejection.mode == mode
    assert (rejection.status, rejection.code) == ((401, None) if mode == "deny" else (None, 4002))

    with pytest.raises(AssertionError, match="was accepted"), expect_ws_rejection(code=4001):
        await first_message(f"{server.ws}/ws", additional_headers=bearer(token))
    server.assert_log_clean(token, expired)


async def test_live_expiry_on_a_real_server(live_server_factory) -> None:  # type: ignore[no-untyped-def]
    server = live_server_factory(APP, JWT_SECRET_KEY=SECRET, JWT_WS_REJECTION="deny")
    short = make_token(issuer, "alice", expires=timedelta(seconds=1))
    async with websockets.connect(f"{server.ws}/ws", additional_headers=bearer(short)) as ws:
        assert json.loads(await ws.recv()) == {"user": "alice"}
        with expect_ws_rejection(code=4002, reason="token_expired"):
            async with asyncio.timeout(5):
                await ws.recv()
    server.assert_log_clean(short)
