"""The demo served by ``make run``: the seed's complete example plus a page to try every transport.

Open http://127.0.0.1:8000/, log in as test/test, and connect with each way of
carrying the token; the page shows the messages and the close code the browser
receives on rejection, expiry and revocation. uvicorn's log shows
``token=[redacted]``. Settings come from the environment (``JWT_*``), with
demo defaults below.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from authx import AuthX, AuthXConfig, TokenPayload
from authx.stores import store_from_url

__all__ = ["app", "auth"]

HOST = os.environ.get("DEMO_ORIGIN", "http://127.0.0.1:8000")
DEFAULTS = {
    # A demo secret; set JWT_SECRET_KEY in the environment for anything real.
    "JWT_SECRET_KEY": "authx-demo-secret-please-change-0123456789",
    "JWT_TOKEN_LOCATION": ["headers", "cookies"],
    "JWT_COOKIE_SECURE": False,  # the demo is served over plain http on loopback
    "JWT_WS_REJECTION": "close",  # browsers can read close codes, not HTTP statuses
    "JWT_WS_ALLOWED_ORIGINS": [HOST, HOST.replace("127.0.0.1", "localhost")],
    "JWT_WS_EXPIRY_WARNING": 5,
    "JWT_STORE_URL": "sqlite:///authx-demo.db",  # revocations survive a restart
}
config = AuthXConfig(**{k: v for k, v in DEFAULTS.items() if k not in os.environ})  # type: ignore[arg-type]
auth = AuthX(config=config)

app = FastAPI(title="AuthX demo")
auth.handle_errors(app)

# One AuthX per WebSocket transport, so that each route shows one of them alone;
# they share the key and one store, so a revocation reaches all of them.
TRANSPORTS = ("subprotocol", "cookies", "ticket", "message")
by_transport = {
    name: AuthX(config=config.model_copy(update={"JWT_WS_TOKEN_LOCATION": [name]}))
    for name in TRANSPORTS
}
store = store_from_url(config.JWT_STORE_URL)
for _instance in (auth, *by_transport.values()):
    _instance.set_store(store)


class LoginRequest(BaseModel):
    username: str
    password: str
    ttl: int | None = None


@app.post("/login")
def login(data: LoginRequest, response: Response) -> dict[str, str]:
    """Get a token to use with WebSocket (also set as a cookie for the cookie transport)."""
    if data.username == "test" and data.password == "test":
        expiry = timedelta(seconds=data.ttl) if data.ttl else None
        token = auth.create_access_token(uid=data.username, expiry=expiry, scopes=["chat"])
        auth.set_access_cookies(token, response)
        return {"access_token": token}
    raise HTTPException(401, detail="Invalid credentials")


@app.post("/ws-ticket")
async def ws_ticket(ticket: str = auth.WS_TICKET) -> dict[str, str]:
    """Exchange the access token for a one-time ticket (30 s, single use)."""
    return {"ticket": ticket}


@app.post("/logout")
async def logout(
    response: Response, payload: TokenPayload = auth.ACCESS_REQUIRED
) -> dict[str, bool]:
    """Revoke the token: every connection holding it is closed with 4004 ``token_revoked``."""
    assert payload.jti is not None  # noqa: S101 - AuthX tokens always carry a jti
    await auth.revoke_token(payload.jti)
    auth.unset_cookies(response)
    return {"revoked": True}


@app.post("/forget-cookie")
def forget_cookie(response: Response) -> dict[str, bool]:
    """Delete the token cookies (the page shows a cookie handshake without one)."""
    auth.unset_cookies(response)
    return {"forgotten": True}


@app.websocket("/ws")
async def websocket_endpoint(
    websocket: WebSocket,
    payload: TokenPayload = Depends(auth._ws_auth_required),
) -> None:
    """The seed's authenticated WebSocket endpoint (query parameter or header)."""
    await websocket.accept()
    await websocket.send_json({"message": f"Hello, {payload.sub}!"})
    try:
        while True:
            data = await websocket.receive_text()
            await websocket.send_json({"user": payload.sub, "echo": data})
    except WebSocketDisconnect:
        pass


def _transport_endpoint(name: str) -> None:
    transport_auth = by_transport[name]

    async def endpoint(
        websocket: WebSocket, payload: TokenPayload = transport_auth.WS_AUTH_REQUIRED
    ) -> None:
        """The same conversation as ``/ws``, authenticated by one transport."""
        await websocket_endpoint(websocket, payload)

    app.add_api_websocket_route(f"/ws/{name}", endpoint)


for _name in TRANSPORTS:
    _transport_endpoint(_name)

PAGE = (Path(__file__).parent / "demo.html").read_text()


@app.get("/", response_class=HTMLResponse, include_in_schema=False)
def index() -> str:
    """A page that logs in and opens the WebSocket with each transport."""
    return PAGE
