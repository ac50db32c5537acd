"""The demo served by ``make run``: a page built on the browser module ``/authx/authx.js``.

Open http://127.0.0.1:8000/ and log in as test/test. Every connection of the page
goes through the module's ``connect()``: one route per transport, a stream whose
short-lived tokens are refreshed in-band, a logout that revokes, and a route with a
low rate limit for a reconnect storm. The page labels every close with its code,
reason token, meaning and the client's action. uvicorn's log shows
``token=[redacted]``.

Settings come from the environment (``JWT_*``) and win over the demo defaults below.
The origins allowed to open cookie-authenticated sockets are ``DEMO_ORIGIN`` if set,
else 127.0.0.1 and localhost on ``PORT`` (``make run PORT=8001`` sets ``PORT`` in the
server's environment; the default is 8000), and ``HOST`` if it names one host.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from authx import AuthX, AuthXConfig, TokenPayload
from authx.browser import client_files
from authx.close_codes import CLOSE_CODES
from authx.stores import store_from_url

__all__ = ["app", "auth"]


def demo_origins() -> list[str]:
    """The page's origins: ``DEMO_ORIGIN``, else http://127.0.0.1 and localhost on ``PORT``."""
    explicit = os.environ.get("DEMO_ORIGIN", "").rstrip("/")
    if explicit:
        origins = [explicit]
    else:
        port = os.environ.get("PORT", "8000")
        host = os.environ.get("HOST", "127.0.0.1")
        origins = [f"http://127.0.0.1:{port}"]
        if host not in ("", "0.0.0.0", "::", "127.0.0.1"):  # noqa: S104 - not a bind
            origins.append(f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}")
    with_localhost = [
        o for origin in origins for o in (origin, origin.replace("127.0.0.1", "localhost"))
    ]
    return list(dict.fromkeys(with_localhost))


DEFAULTS = {
    # A demo secret; set JWT_SECRET_KEY in the environment for anything real.
    "JWT_SECRET_KEY": "authx-demo-secret-please-change-0123456789",
    "JWT_TOKEN_LOCATION": ["headers", "cookies"],  # /refresh reads the refresh cookie
    "JWT_COOKIE_SECURE": False,  # the demo is served over plain http on loopback
    "JWT_WS_REJECTION": "close",  # browsers can read close codes, not HTTP statuses
    "JWT_WS_ALLOWED_ORIGINS": demo_origins(),
    "JWT_WS_EXPIRY_WARNING": 2,  # authx.expiring 2 s before exp: the client refreshes in-band
    "JWT_STORE_URL": "sqlite:///authx-demo.db",  # revocations survive a restart
}
config = AuthXConfig(**{k: v for k, v in DEFAULTS.items() if k not in os.environ})
auth: AuthX[Any] = AuthX(config=config)

app = FastAPI(title="AuthX demo")
auth.handle_errors(app)
app.mount("/authx", client_files())  # /authx/authx.js, the module the page imports

# One AuthX per WebSocket transport, so that each route shows one of them alone;
# they share the key and one store, so a revocation reaches all of them.
TRANSPORTS = ("subprotocol", "cookies", "ticket", "message")
by_transport: dict[str, AuthX[Any]] = {
    name: AuthX(config=config.model_copy(update={"JWT_WS_TOKEN_LOCATION": [name]}))
    for name in TRANSPORTS
}

# The reconnect storm's route has a limit of its own, low enough to see and answered at
# once (the rest of the demo keeps JWT_WS_RATE_LIMIT and its burst). It counts in this
# process only: the store's bucket for 127.0.0.1 is the other routes' bucket.
STORM_RATE, STORM_BURST = 2.0, 5
limited: AuthX[Any] = AuthX(
    config=config.model_copy(
        update={
            "JWT_WS_TOKEN_LOCATION": ["subprotocol"],
            "JWT_WS_RATE_LIMIT": STORM_RATE,
            "JWT_WS_RATE_BURST": STORM_BURST,
            "JWT_WS_REFUSAL_DELAY": 0,
            "JWT_WS_RATE_LIMIT_SHARED": False,
        }
    )
)

store = store_from_url(config.JWT_STORE_URL)
for _instance in (auth, limited, *by_transport.values()):
    _instance.set_store(store)

STREAM_INTERVAL = float(os.environ.get("DEMO_STREAM_INTERVAL", "1"))
#: A token lifetime a page may ask for, in seconds (short ones show expiry and refresh).
TTL = Query(None, ge=1, le=86_400, description="access token lifetime in seconds")


class LoginRequest(BaseModel):
    username: str
    password: str
    ttl: int | None = Field(None, ge=1, le=86_400)


def access_token(sub: str, ttl: int | None) -> str:
    expiry = timedelta(seconds=ttl) if ttl else None
    return auth.create_access_token(uid=sub, expiry=expiry, scopes=["chat"])


#: When each subject was last logged out (see login).
revoked_at: dict[str, float] = {}


@app.post("/login")
async def login(data: LoginRequest, response: Response) -> dict[str, str]:
    """The access token (also a cookie, for the cookie transport) and the refresh cookies."""
    if data.username != "test" or data.password != "test":
        raise HTTPException(401, detail="Invalid credentials")
    # iat has one-second resolution: a token issued in the second of a logout's
    # revoke_subject would be revoked too, so a quick new login waits for the next second.
    wait = math.floor(revoked_at.get(data.username, 0.0)) + 1 - time.time()
    if wait > 0:
        await asyncio.sleep(wait)
    token = access_token(data.username, data.ttl)
    auth.set_access_cookies(token, response)
    auth.set_refresh_cookies(auth.create_refresh_token(uid=data.username), response)
    return {"access_token": token}


@app.post("/refresh")
def refresh(
    response: Response, ttl: int | None = TTL, payload: TokenPayload = auth.REFRESH_REQUIRED
) -> dict[str, str]:
    """A new access token for the refresh cookie (+ X-CSRF-TOKEN): refreshWithCookie's route."""
    token = access_token(payload.sub, ttl)
    auth.set_access_cookies(token, response)  # a cookie-transport reconnect uses the new one
    return {"access_token": token}


@app.post("/ws-ticket")
async def ws_ticket(ticket: str = auth.WS_TICKET) -> dict[str, str]:
    """Exchange the access token for a one-time ticket (30 s, single use)."""
    return {"ticket": ticket}


@app.post("/logout")
async def logout(
    response: Response, payload: TokenPayload = auth.REFRESH_REQUIRED
) -> dict[str, bool]:
    """Revoke every token of the user: each connection closes with 4004 ``token_revoked``."""
    await auth.revoke_subject(payload.sub)
    revoked_at[payload.sub] = time.time()
    auth.unset_cookies(response)
    return {"revoked": True}


@app.get("/demo-info", include_in_schema=False)
def demo_info() -> dict[str, object]:
    """What the page explains: the close-code table (authx.close_codes) with this server's
    codes, the expiry warning and the storm route's limit."""
    return {
        "close_codes": [
            {
                "reason": row.reason,
                "code": getattr(config, row.setting),
                "action": row.action.value,
                "meaning": row.meaning,
            }
            for row in CLOSE_CODES
        ],
        "expiry_warning": config.JWT_WS_EXPIRY_WARNING,
        "storm": {"rate": STORM_RATE, "burst": STORM_BURST},
    }


@app.websocket("/ws")
async def websocket_endpoint(
    websocket: WebSocket,
    payload: TokenPayload = Depends(auth._ws_auth_required),
) -> None:
    """The plain authenticated WebSocket endpoint (query parameter or header)."""
    await websocket.accept()
    await websocket.send_json({"message": f"Hello, {payload.sub}!"})
    try:
        while True:
            data = await websocket.receive_text()
            await websocket.send_json({"user": payload.sub, "echo": data})
    except WebSocketDisconnect:
        pass


def _transport_endpoint(path: str, transport_auth: AuthX[Any]) -> None:
    async def endpoint(
        websocket: WebSocket, payload: TokenPayload = transport_auth.WS_AUTH_REQUIRED
    ) -> None:
        """The same conversation as ``/ws``, authenticated by one transport."""
        await websocket_endpoint(websocket, payload)

    app.add_api_websocket_route(path, endpoint)


for _name in TRANSPORTS:
    _transport_endpoint(f"/ws/{_name}", by_transport[_name])
_transport_endpoint("/ws/limited", limited)


@app.websocket("/ws/stream")
async def stream(
    websocket: WebSocket, payload: TokenPayload = by_transport["ticket"].WS_AUTH_REQUIRED
) -> None:
    """``{"n": 0, "exp": ...}``, ``{"n": 1, ...}``, ... every second on one connection.

    ``exp`` is the one the server holds now: an in-band refresh moves it (the payload
    is updated in place). The endpoint keeps reading, as AuthX takes the refresh
    message out of the stream when the endpoint reads.
    """
    await websocket.accept()

    async def tick() -> None:
        n = 0
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                exp = payload.exp.timestamp() if payload.exp else None
                await websocket.send_json({"n": n, "exp": exp})
                n += 1
                await asyncio.sleep(STREAM_INTERVAL)

    ticker = asyncio.create_task(tick())
    try:
        while True:
            await websocket.receive_text()  # nothing to answer; see the docstring
    except WebSocketDisconnect:
        pass
    finally:
        ticker.cancel()


PAGE = (Path(__file__).parent / "demo.html").read_text()


@app.get("/", response_class=HTMLResponse, include_in_schema=False)
def index() -> str:
    """The page: one section per control, every connection through the module."""
    return PAGE
