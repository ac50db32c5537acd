"""The app `bench/ws_auth.py` serves with uvicorn (an authenticated and an open route),
and calls in-process (bench/_asgi_handshake.py: those and the routes that split the
authenticated handshake's extra cost)."""

from __future__ import annotations

import jwt
from fastapi import Depends, FastAPI, WebSocket

from authx import AuthX, AuthXConfig, TokenPayload

__all__ = ["SECRET", "app", "auth", "sessionless_auth"]

SECRET = "bench-secret-key-that-is-long-enough-for-hs256"

app = FastAPI()
# Thousands of handshakes from one address are the point here: admission control runs
# (its buckets are part of the measured path) under limits it never reaches.
auth = AuthX(
    config=AuthXConfig(JWT_SECRET_KEY=SECRET, JWT_WS_RATE_LIMIT=1e9, JWT_WS_SUBJECT_RATE_LIMIT=1e9)
)
auth.handle_errors(app)
# The same, without the live session (AuthX 1.7.1's behaviour).
sessionless_auth = AuthX(config=auth.config.model_copy(update={"JWT_WS_ENFORCE_LIFETIME": False}))


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


# In-process only: what each part of an authenticated handshake adds to an open one.


async def _nothing(websocket: WebSocket) -> None:
    return None


@app.websocket("/ws/dependency")
async def trivial_dependency(websocket: WebSocket, _: None = Depends(_nothing)) -> None:
    await websocket.accept()
    await websocket.close()


@app.websocket("/ws/pyjwt")
async def pyjwt_only(websocket: WebSocket) -> None:
    jwt.decode(websocket.query_params["token"], SECRET, algorithms=["HS256"])
    await websocket.accept()
    await websocket.close()


@app.websocket("/ws/sessionless")
async def sessionless(
    websocket: WebSocket, payload: TokenPayload = sessionless_auth.WS_AUTH_REQUIRED
) -> None:
    await websocket.accept()
    await websocket.close()
