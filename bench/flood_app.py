"""The server side of bench/flood.py: an authenticated endpoint, and a refusal without AuthX.

Served as ``uvicorn bench.flood_app:app``; every ``JWT_*`` setting comes from the
environment (``JWT_SECRET_KEY``, ``JWT_WS_TRUSTED_PROXIES``, ``JWT_WS_RATE_LIMIT``,
``JWT_WS_REFUSAL_DELAY``, ...), and ``GET /settings`` tells which admission settings
this process ended up with, so that the bench prints what was measured, not what it meant.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, WebSocket
from fastapi.responses import JSONResponse

from authx import AuthX, AuthXConfig, TokenPayload
from authx._uvicorn_logs import mark_denied

__all__ = ["ADMISSION_SETTINGS", "app", "auth"]

#: The settings of admission control (authx/websocket/_admission.py), as /settings reports.
ADMISSION_SETTINGS = (
    "JWT_WS_RATE_LIMIT",
    "JWT_WS_RATE_BURST",
    "JWT_WS_FAILURE_COST",
    "JWT_WS_SUBJECT_RATE_LIMIT",
    "JWT_WS_SUBJECT_RATE_BURST",
    "JWT_WS_REFUSAL_DELAY",
    "JWT_WS_MAX_DELAYED",
    "JWT_WS_MAX_PENDING_PER_ADDRESS",
    "JWT_WS_MAX_PENDING",
    "JWT_WS_RATE_LIMIT_SHARED",
    "JWT_WS_TRUSTED_PROXIES",
)

app = FastAPI()
auth: AuthX[Any] = AuthX(config=AuthXConfig())
auth.handle_errors(app)


@app.websocket("/ws")
async def greet(websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
    """Accept, send the subject once, close: a complete authenticated session."""
    await websocket.accept()
    await websocket.send_text(payload.sub or "")
    await websocket.close()


@app.websocket("/ws/refused")
async def refused(websocket: WebSocket) -> None:
    """The floor: the same app refusing a handshake 429 without AuthX looking at it."""
    await websocket.send_denial_response(
        JSONResponse({"reason": "rate_limited"}, status_code=429, headers={"Retry-After": "1"})
    )
    mark_denied()  # as AuthX does: drops uvicorn's false "without completing handshake" error


@app.get("/settings")
async def settings() -> dict[str, Any]:
    """The admission settings of this process (from its environment and the defaults)."""
    return {name: getattr(auth.config, name) for name in ADMISSION_SETTINGS}
