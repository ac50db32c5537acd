"""Scopes a WebSocket endpoint requires: all of them by default, at the handshake and
after every in-band refresh, whichever dependency comes first."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import FastAPI, WebSocketDisconnect

from authx import AuthX, AuthXConfig, TokenPayload
from authx.websocket.session import WebSocketSession
from tests.conftest import SECRET
from tests.websocket.asgi import connect


def session_first_app(*scopes: str, **options: Any) -> tuple[FastAPI, AuthX[Any]]:
    """WS_SESSION before ws_scopes_required: the session exists when the scopes are checked."""
    app = FastAPI()
    auth = AuthX(config=AuthXConfig(JWT_SECRET_KEY=SECRET, JWT_WS_ENFORCE_LIFETIME=False))
    auth.handle_errors(app)

    @app.websocket("/ws")
    async def endpoint(
        session: WebSocketSession = auth.WS_SESSION,
        payload: TokenPayload = auth.ws_scopes_required(*scopes, **options),
    ) -> None:
        await session.accept()
        await session.send_json({"user": payload.sub})
        try:
            while True:
                await session.receive_text()
        except WebSocketDisconnect:
            pass

    return app, auth


async def test_every_scope_is_required_by_default() -> None:
    app, auth = session_first_app("read", "write")
    partial = await connect(
        app, query=f"token={auth.create_access_token('alice', scopes=['read'])}"
    )
    assert partial.kind == "denied"
    assert partial.status == 403
    both = auth.create_access_token("alice", scopes=["read", "write"])
    connection = await connect(app, query=f"token={both}")
    assert connection.messages == [{"user": "alice"}]
    await connection.disconnect()


async def test_any_scope_is_enough_when_not_all_are_required() -> None:
    app, auth = session_first_app("read", "write", all_required=False)
    connection = await connect(
        app, query=f"token={auth.create_access_token('a', scopes=['write'])}"
    )
    assert connection.messages == [{"user": "a"}]
    await connection.disconnect()
    none = await connect(app, query=f"token={auth.create_access_token('a', scopes=['x'])}")
    assert none.status == 403


async def test_an_existing_session_keeps_requiring_the_scopes_after_a_refresh() -> None:
    app, auth = session_first_app("admin")
    admin = auth.create_access_token("alice", scopes=["admin"])
    connection = await connect(app, query=f"token={admin}")
    assert connection.messages == [{"user": "alice"}]
    narrower = auth.create_access_token("alice", scopes=["read"])
    await connection.send_text(json.dumps({"type": "authx.refresh", "token": narrower}))
    await connection.wait_for("websocket.close")
    assert connection.close is not None
    assert connection.close[0] == 4003
    await connection.disconnect()


async def test_a_refresh_that_keeps_the_scopes_is_accepted() -> None:
    app, auth = session_first_app("admin")
    connection = await connect(
        app, query=f"token={auth.create_access_token('alice', scopes=['admin'])}"
    )
    again = auth.create_access_token("alice", scopes=["admin", "read"])
    await connection.send_text(json.dumps({"type": "authx.refresh", "token": again}))
    await connection.wait_for("websocket.send")
    async with asyncio.timeout(5):
        while len(connection.messages) < 2:
            await asyncio.sleep(0.01)
    assert connection.messages[1]["type"] == "authx.refreshed"
    assert connection.close is None
    await connection.disconnect()
