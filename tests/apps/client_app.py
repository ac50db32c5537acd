"""The app the client tests (browser module and Python client) connect to.

JWT_* settings come from the environment. Routes:

- ``POST /login?sub=...``: the access token in JSON and in its cookie; the
  refresh token in an HttpOnly cookie with its CSRF cookie (``csrf_refresh_token``);
- ``POST /refresh``: the refresh cookie and the ``X-CSRF-TOKEN`` header give a
  new access token (JSON and cookie), as a browser app's refresh route does;
- ``POST /ws-ticket``: a one-time ticket for the bearer access token;
- ``WS /stream``: sends ``{"n": 0}``, ``{"n": 1}``, ... every
  ``STREAM_INTERVAL`` seconds on one connection, and echoes ``{"echo": text}``
  for every text it receives; ``{"user": sub}`` first;
- ``POST /revoke-subject?sub=...``, ``POST /store?up=0|1`` (the store fails
  while down: handshakes get 1013 ``store_unavailable``), ``GET /stats``;
- ``/authx/...``: the library's browser module, and ``GET /`` a blank page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

from fastapi import FastAPI, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse

from authx import AuthX, AuthXConfig, TokenPayload
from authx.browser import client_files
from authx.stores import RevocationEvent, Subscriber
from authx.stores.memory import MemoryStore

_handler = logging.StreamHandler()
_handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
logging.getLogger("authx").addHandler(_handler)
logging.getLogger("authx").setLevel(logging.INFO)

STREAM_INTERVAL = float(os.environ.get("STREAM_INTERVAL", "0.1"))

app = FastAPI()
auth = AuthX(config=AuthXConfig())
auth.handle_errors(app)


class SwitchableStore(MemoryStore):
    """A memory store that can be made to fail, as an unreachable Redis does."""

    def __init__(self) -> None:
        super().__init__()
        self.up = True

    def _check(self) -> None:
        if not self.up:
            raise ConnectionError("store is down (test switch)")

    async def is_revoked(self, jti: str | None, sub: str | None, iat: float | None) -> bool:
        self._check()
        return await super().is_revoked(jti, sub, iat)

    async def put_ticket(self, ticket: str, data: dict[str, Any], ttl: float) -> None:
        self._check()
        await super().put_ticket(ticket, data, ttl)

    async def take_ticket(self, ticket: str) -> dict[str, Any] | None:
        self._check()
        return await super().take_ticket(ticket)

    async def publish(self, event: RevocationEvent) -> None:
        await super().publish(event)

    async def subscribe(self, subscriber: Subscriber) -> None:
        await super().subscribe(subscriber)


STORE = SwitchableStore()
auth.set_store(STORE)
app.mount("/authx", client_files())


@app.get("/", response_class=HTMLResponse)
def page() -> str:
    return "<!doctype html><title>client tests</title><body></body>"


@app.post("/login")
def login(sub: str, response: Response) -> dict[str, str]:
    access = auth.create_access_token(uid=sub)
    auth.set_access_cookies(access, response)  # for the cookie transport
    auth.set_refresh_cookies(auth.create_refresh_token(uid=sub), response)
    return {"access_token": access}


@app.post("/refresh")
def refresh(response: Response, payload: TokenPayload = auth.REFRESH_REQUIRED) -> dict[str, str]:
    access = auth.create_access_token(uid=payload.sub)
    auth.set_access_cookies(access, response)  # the cookie transport reconnects with it
    return {"access_token": access}


@app.post("/ws-ticket")
async def ws_ticket(ticket: str = auth.WS_TICKET) -> dict[str, str]:
    return {"ticket": ticket}


@app.websocket("/stream")
async def stream(websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
    await websocket.accept()
    await websocket.send_json({"user": payload.sub})

    async def tick() -> None:
        n = 0
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                await websocket.send_json({"n": n})
                n += 1
                await asyncio.sleep(STREAM_INTERVAL)

    ticker = asyncio.create_task(tick())
    try:
        while True:
            await websocket.send_json({"echo": await websocket.receive_text()})
    except WebSocketDisconnect:
        pass
    finally:
        ticker.cancel()


@app.post("/revoke-subject")
async def revoke_subject(sub: str) -> dict[str, bool]:
    await auth.revoke_subject(sub)
    return {"revoked": True}


@app.post("/store")
def switch_store(up: int) -> dict[str, bool]:
    STORE.up = bool(up)
    return {"up": STORE.up}


@app.get("/stats")
def stats() -> dict[str, int]:
    return auth.live_stats()
