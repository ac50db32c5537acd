"""A configurable app for WebSocket tests: every JWT_* setting comes from the environment."""

from __future__ import annotations

import asyncio
import logging
import os

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from authx import AuthX, AuthXConfig, TokenPayload
from authx.exceptions import AuthXException

# Show AuthX's one-line rejection records next to uvicorn's lines.
_handler = logging.StreamHandler()
_handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
logging.getLogger("authx").addHandler(_handler)
logging.getLogger("authx").setLevel(logging.INFO)

app = FastAPI()
auth = AuthX(config=AuthXConfig())
if os.environ.get("APP_HANDLE_ERRORS", "1") == "1":
    auth.handle_errors(app)

REVOKED: set[str] = set()


def _sync_blocklist(token: str) -> bool:
    return token in REVOKED


async def _async_blocklist(token: str) -> bool:
    await asyncio.sleep(0)
    return token in REVOKED


auth.set_token_blocklist(
    _async_blocklist if os.environ.get("APP_BLOCKLIST") == "async" else _sync_blocklist
)


@app.get("/me")
def me(payload: TokenPayload = auth.ACCESS_REQUIRED) -> dict[str, str]:
    return {"user": payload.sub}


@app.post("/revoke")
def revoke(token: str) -> dict[str, bool]:
    REVOKED.add(token)
    return {"revoked": True}


@app.websocket("/ws")
async def echo(websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
    await websocket.accept()
    await websocket.send_json({"user": payload.sub, "scopes": payload.scopes})
    try:
        while True:
            await websocket.send_json({"echo": await websocket.receive_text()})
    except WebSocketDisconnect:
        pass


@app.websocket("/ws/admin")
async def admin(
    websocket: WebSocket, payload: TokenPayload = auth.ws_scopes_required("admin:*")
) -> None:
    await websocket.accept()
    await websocket.send_json({"admin": True, "user": payload.sub})


@app.websocket("/ws/manual")
async def manual(websocket: WebSocket) -> None:
    try:
        payload = await auth._ws_auth_required(websocket)
    except AuthXException as exc:
        await auth.ws_reject(websocket, exc)
        return
    await websocket.accept()
    await websocket.send_json({"user": payload.sub})
