"""An app for live-connection tests: seed-style endpoints, a session endpoint, revocation."""

from __future__ import annotations

import asyncio

from fastapi import Depends, FastAPI, WebSocket, WebSocketDisconnect

from authx import AuthX, AuthXConfig, TokenPayload
from authx.websocket.session import WebSocketSession

app = FastAPI()
auth = AuthX(config=AuthXConfig())
auth.handle_errors(app)


@app.websocket("/ws")
async def echo(
    websocket: WebSocket, payload: TokenPayload = Depends(auth._ws_auth_required)
) -> None:
    """Written exactly as the seed's complete example."""
    await websocket.accept()
    await websocket.send_json({"message": f"Hello, {payload.sub}!"})
    try:
        while True:
            data = await websocket.receive_text()
            await websocket.send_json(
                {"user": payload.sub, "echo": data, "exp": payload.expires_at}
            )
    except WebSocketDisconnect:
        pass


@app.websocket("/ws/push")
async def push(websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
    """Never reads: only the server-side close can end it."""
    await websocket.accept()
    await websocket.send_json({"message": f"Hello, {payload.sub}!"})
    try:
        for _ in range(600):
            await asyncio.sleep(0.1)
            await websocket.send_json({"tick": True})
    except WebSocketDisconnect:
        pass


@app.websocket("/ws/session")
async def session_endpoint(session: WebSocketSession = auth.WS_SESSION) -> None:
    await session.accept()
    await session.send_json({"message": f"Hello, {session.sub}!", "scopes": session.scopes})
    async for text in session.iter_text():
        if text == "admin":
            session.require_scopes("admin")
        await session.send_json({"echo": text, "scopes": session.scopes})


@app.post("/revoke/token")
async def revoke_token(token: str) -> dict[str, bool]:
    await auth.revoke_token(token)
    return {"revoked": True}


@app.post("/revoke/subject")
async def revoke_subject(sub: str) -> dict[str, bool]:
    await auth.revoke_subject(sub)
    return {"revoked": True}


@app.get("/connections")
def connections(sub: str | None = None) -> dict[str, int]:
    return {"count": len(auth.active_connections(sub))}


@app.get("/stats")
def stats() -> dict[str, int]:
    return auth.live_stats()
