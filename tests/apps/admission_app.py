"""An app for the close-code and admission tests: every JWT_* setting comes from the
environment, with one endpoint per failure of the close-code table."""

from __future__ import annotations

import logging

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from authx import AuthX, AuthXConfig, BadConfigurationError, TokenPayload

# AuthX's records next to uvicorn's lines: the tests count them.
_handler = logging.StreamHandler()
_handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
logging.getLogger("authx").addHandler(_handler)
logging.getLogger("authx").setLevel(logging.INFO)

app = FastAPI()
auth = AuthX(config=AuthXConfig())
auth.handle_errors(app)


async def _echo(websocket: WebSocket, payload: TokenPayload) -> None:
    await websocket.accept()
    await websocket.send_json({"user": payload.sub})
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


@app.websocket("/ws")
async def ws(websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
    await _echo(websocket, payload)


@app.websocket("/admin")
async def admin(
    websocket: WebSocket, payload: TokenPayload = auth.ws_scopes_required("admin")
) -> None:
    await _echo(websocket, payload)


@app.websocket("/misconfigured")
async def misconfigured(
    websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED
) -> None:
    raise BadConfigurationError("the app found its own settings unusable")


@app.post("/revoke-token")
async def revoke_token(token: str) -> dict[str, bool]:
    await auth.revoke_token(token)
    return {"revoked": True}


@app.post("/revoke-subject")
async def revoke_subject(sub: str) -> dict[str, bool]:
    await auth.revoke_subject(sub)
    return {"revoked": True}
