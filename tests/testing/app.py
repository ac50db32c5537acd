"""A small app as users write them: HTTP routes and seed-style WebSocket endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, WebSocket, WebSocketDisconnect

from authx import AuthX, AuthXConfig, TokenPayload
from tests.conftest import SECRET


def create_app(**settings: Any) -> tuple[FastAPI, AuthX[Any]]:
    """The app and its ``AuthX``; ``settings`` are ``JWT_*`` overrides."""
    settings.setdefault("JWT_SECRET_KEY", SECRET)
    settings.setdefault("JWT_WS_TOKEN_LOCATION", ["query", "headers", "subprotocol"])
    auth: AuthX[Any] = AuthX(config=AuthXConfig(**settings))
    app = FastAPI()
    auth.handle_errors(app)

    @app.get("/me")
    def me(payload: TokenPayload = auth.ACCESS_REQUIRED) -> dict[str, Any]:
        return {
            "user": payload.sub,
            "scopes": payload.scopes,
            "role": payload.extra_dict.get("role"),
        }

    @app.get("/fresh")
    def fresh(payload: TokenPayload = auth.FRESH_REQUIRED) -> dict[str, str]:
        return {"user": payload.sub}

    @app.post("/refresh")
    def refresh(payload: TokenPayload = auth.REFRESH_REQUIRED) -> dict[str, str]:
        return {"access_token": auth.create_access_token(uid=payload.sub)}

    @app.websocket("/ws")
    async def echo(websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
        await websocket.accept()
        await websocket.send_json({"user": payload.sub})
        try:
            while True:
                await websocket.send_json({"echo": await websocket.receive_text()})
        except WebSocketDisconnect:
            pass

    @app.websocket("/ws/seed")
    async def seed(
        websocket: WebSocket, payload: TokenPayload = Depends(auth._ws_auth_required)
    ) -> None:
        await websocket.accept()
        await websocket.send_json({"user": payload.sub})

    @app.websocket("/ws/admin", dependencies=[auth.ws_scopes_required("admin")])
    async def admin(websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
        await websocket.accept()
        await websocket.send_json({"admin": payload.sub})

    return app, auth
