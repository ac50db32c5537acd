"""The server side of bench/load.py: one authenticated echo endpoint and admin routes.

Served as ``uvicorn bench.load_app:app``; ``JWT_SECRET_KEY`` and ``JWT_STORE_URL``
(``redis://127.0.0.1:PORT/0``) come from the environment. The admin routes answer
loopback clients only.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel

from authx import AuthX, AuthXConfig, TokenPayload

app = FastAPI()
auth: AuthX[Any] = AuthX(config=AuthXConfig())
auth.handle_errors(app)

# A seed-style blocklist callback (raw tokens), checked besides the store.
BLOCKLIST: set[str] = set()
auth.set_token_blocklist(lambda token: token in BLOCKLIST)


class StartupOnly(logging.Filter):
    """Let warnings through, and of the INFO lines only the one that names the port."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.getMessage().startswith(
            "Uvicorn running on"
        )


@app.websocket("/ws")
async def echo(websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
    """Greet with the subject, then echo text until the connection ends."""
    await websocket.accept()
    await websocket.send_json({"sub": payload.sub})
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


class Token(BaseModel):
    token: str


def _loopback_only(request: Request) -> None:
    if request.client is None or request.client.host != "127.0.0.1":
        raise HTTPException(403, "admin routes answer 127.0.0.1 only")


@app.post("/admin/revoke-token")
async def revoke_token(request: Request, body: Token) -> dict[str, int]:
    _loopback_only(request)
    await auth.revoke_token(body.token)
    return {"open": len(auth.active_connections())}


@app.post("/admin/revoke-subject/{sub}")
async def revoke_subject(request: Request, sub: str) -> dict[str, int]:
    _loopback_only(request)
    await auth.revoke_subject(sub)
    return {"open": len(auth.active_connections())}


@app.post("/admin/blocklist")
async def blocklist(request: Request, body: Token) -> dict[str, int]:
    _loopback_only(request)
    BLOCKLIST.add(body.token)
    return {"blocklisted": len(BLOCKLIST)}


@app.get("/admin/stats")
async def stats(request: Request) -> dict[str, int]:
    _loopback_only(request)
    return auth.live_stats()
