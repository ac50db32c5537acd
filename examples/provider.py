"""A chat API whose users log in with an identity provider (OpenID Connect).

The provider (Keycloak, Auth0, Okta, Entra ID, Google, ...) issues the tokens;
the app only verifies them, over HTTP and WebSocket, with the provider's keys
fetched from its JWKS. Every setting comes from the environment::

    JWT_OIDC_ISSUER=https://idp.example.com/realms/acme \\
    JWT_DECODE_AUDIENCE=chat-api \\
    JWT_SCOPES_CLAIM=scope \\
    .venv/bin/uvicorn examples.provider:app

Clients send the provider's access token as usual (``Authorization: Bearer``,
``?token=``, a ticket, ...); the connection closes at the token's ``exp`` unless
the client refreshes in-band with a new token from the provider.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from authx import AuthX, AuthXConfig, TokenPayload

auth = AuthX(config=AuthXConfig())  # JWT_* settings from the environment


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await auth.load_keys()  # the provider's keys, before the first handshake
    yield


app = FastAPI(title="Chat behind an identity provider", lifespan=lifespan)
auth.handle_errors(app)


@app.get("/me")
async def me(payload: TokenPayload = auth.ACCESS_REQUIRED) -> dict[str, object]:
    return {"sub": payload.sub, "scopes": payload.scopes}


@app.post("/ws-ticket")
async def ws_ticket(ticket: str = auth.WS_TICKET) -> dict[str, str]:
    return {"ticket": ticket}


@app.websocket("/chat")
async def chat(
    websocket: WebSocket,
    payload: TokenPayload = auth.ws_scopes_required("chat:read"),
) -> None:
    await websocket.accept()
    await websocket.send_json({"hello": payload.sub})
    try:
        async for text in websocket.iter_text():
            await websocket.send_json({"from": payload.sub, "text": text})
    except WebSocketDisconnect:
        pass
