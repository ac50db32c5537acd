"""The live registry under many connections, driven in-process at the ASGI level."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from fastapi import Depends, FastAPI, WebSocket, WebSocketDisconnect

from authx import AuthX, AuthXConfig, TokenPayload
from authx.websocket.session import WebSocketSession
from tests.conftest import SECRET


def make_app() -> tuple[FastAPI, AuthX[Any]]:
    app = FastAPI()
    auth = AuthX(config=AuthXConfig(JWT_SECRET_KEY=SECRET, JWT_WS_EXPIRY_WARNING=30))
    auth.handle_errors(app)

    @app.websocket("/ws")
    async def echo(
        websocket: WebSocket, payload: TokenPayload = Depends(auth._ws_auth_required)
    ) -> None:
        await websocket.accept()
        if websocket.query_params.get("end") == "app":
            await websocket.close()
            return
        await websocket.send_json({"user": payload.sub})
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass

    return app, auth


async def connect(app: FastAPI, query: str) -> tuple[asyncio.Queue[Any], list[Any], Any]:
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    outbox: list[Any] = []
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "root_path": "",
        "query_string": query.encode(),
        "headers": [],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
    }
    inbox.put_nowait({"type": "websocket.connect"})
    sent = asyncio.Event()

    async def send(message: Any) -> None:
        outbox.append(message)
        sent.set()

    task = asyncio.get_running_loop().create_task(app(scope, inbox.get, send))
    ends = ("websocket.send", "websocket.close", "websocket.http.response.body")
    while not any(m["type"] in ends for m in outbox):
        sent.clear()
        await asyncio.wait_for(sent.wait(), 5)
    return inbox, outbox, task


async def test_ten_thousand_cycles_leave_nothing_behind() -> None:
    app, auth = make_app()
    tokens = [auth.create_access_token(uid=f"user{i}") for i in range(50)]
    for batch in range(100):
        connections = await asyncio.gather(
            *(
                connect(app, f"token={tokens[i % 50]}" + ("&end=app" if i % 4 == 0 else ""))
                for i in range(batch * 100, batch * 100 + 100)
            )
        )
        assert auth.live_stats()["connections"] == sum(
            1 for _, outbox, _ in connections if outbox[-1]["type"] == "websocket.send"
        )
        if batch % 10 == 9:
            # Server-side closes: revoke one subject of the batch.
            await auth.revoke_subject("user1")
        for inbox, _, _ in connections:
            inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await asyncio.gather(*(task for _, _, task in connections))
    await asyncio.sleep(0)
    assert auth.live_stats() == {
        "connections": 0,
        "subjects": 0,
        "tokens": 0,
        "timers": 0,
        "timer_slots": 0,
        "tasks": 0,
    }
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, WebSocketSession)]


async def test_timers_are_armed_while_open_and_cancelled_on_close() -> None:
    app, auth = make_app()
    token = auth.create_access_token(uid="alice")
    inbox, outbox, task = await connect(app, f"token={token}")
    assert outbox[-1]["type"] == "websocket.send"
    # One expiry timer and one warning timer for the open connection.
    assert auth.live_stats()["timers"] == 2
    assert [s.sub for s in auth.active_connections()] == ["alice"]
    inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await task
    assert auth.live_stats()["timers"] == 0
    assert auth.active_connections("alice") == []
