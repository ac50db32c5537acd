"""An app that accepts an identity provider's tokens beside its own, served by uvicorn for
tests/oidc/test_provider_tokens.py. Every JWT_* setting comes from the environment
(``JWT_OIDC_ISSUER``, ``JWT_DECODE_AUDIENCE``, ``JWT_JWKS_*``, ``JWT_SCOPES_CLAIM``, ...).

``PROVIDER_APP_LOAD_KEYS=0`` skips ``auth.load_keys()`` at start-up, for a server whose
allow-list fits none of the provider's keys (it would refuse to start, as it should).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from authx import AuthX, AuthXConfig, TokenPayload

# AuthX's own records (rejections at INFO, an unreachable provider at WARNING) next to
# uvicorn's lines, where the tests read them.
_handler = logging.StreamHandler()
_handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
logging.getLogger("authx").addHandler(_handler)
logging.getLogger("authx").setLevel(logging.INFO)

auth = AuthX(config=AuthXConfig())  # JWT_* settings from the environment


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    if os.environ.get("PROVIDER_APP_LOAD_KEYS", "1") == "1":
        await auth.load_keys()  # the provider's keys, before the first handshake
    yield


app = FastAPI(lifespan=lifespan)
auth.handle_errors(app)


# HTTP -----------------------------------------------------------------------------------


@app.get("/me")
async def me(payload: TokenPayload = auth.ACCESS_REQUIRED) -> dict[str, Any]:
    return {"sub": payload.sub, "iss": payload.iss, "scopes": payload.scopes}


@app.post("/login")
def login(sub: str) -> dict[str, str]:
    """The application's own token (HS256 with JWT_SECRET_KEY), as a service would get it."""
    return {"access_token": auth.create_access_token(uid=sub)}


@app.post("/ws-ticket")
async def ws_ticket(ticket: str = auth.WS_TICKET) -> dict[str, str]:
    return {"ticket": ticket}


@app.post("/test/revoke-subject")
async def revoke_subject(sub: str) -> dict[str, bool]:
    """Test only: revoke every token of ``sub`` issued until now."""
    await auth.revoke_subject(sub)
    return {"revoked": True}


# WebSocket ------------------------------------------------------------------------------


async def _serve(websocket: WebSocket, payload: TokenPayload) -> None:
    """Accept, say who is connected and through which transport, then echo every text."""
    await websocket.accept()
    via = (await auth.authenticate_websocket(websocket)).location
    await websocket.send_json(
        {"sub": payload.sub, "iss": payload.iss, "scopes": payload.scopes, "via": via}
    )
    try:
        while True:
            text = await websocket.receive_text()
            # ``payload`` is updated in place by an in-band refresh.
            await websocket.send_json({"echo": text, "sub": payload.sub, "exp": payload.expires_at})
    except WebSocketDisconnect:
        pass


@app.websocket("/ws")
async def plain(websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
    await _serve(websocket, payload)


@app.websocket("/ws/chat")
async def chat(
    websocket: WebSocket, payload: TokenPayload = auth.ws_scopes_required("chat:read")
) -> None:
    await _serve(websocket, payload)


@app.websocket("/ws/admin")
async def admin(
    websocket: WebSocket, payload: TokenPayload = auth.ws_scopes_required("admin")
) -> None:
    await _serve(websocket, payload)
