"""The app `bench/ws_auth.py` serves with uvicorn: one authenticated and one open route."""

from __future__ import annotations

from fastapi import FastAPI, WebSocket

from authx import AuthX, AuthXConfig, TokenPayload

__all__ = ["SECRET", "app", "auth"]

SECRET = "bench-secret-key-that-is-long-enough-for-hs256"

app = FastAPI()
# Thousands of handshakes from one address are the point here: admission control runs
# (its buckets are part of the measured path) under limits it never reaches.
auth = AuthX(
    config=AuthXConfig(JWT_SECRET_KEY=SECRET, JWT_WS_RATE_LIMIT=1e9, JWT_WS_SUBJECT_RATE_LIMIT=1e9)
)
auth.handle_errors(app)


@app.websocket("/ws")
async def authenticated(
    websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED
) -> None:
    await websocket.accept()
    await websocket.close()


@app.websocket("/ws/open")
async def unauthenticated(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.close()
