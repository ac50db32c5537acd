"""The app the security tests attack, served by uvicorn: every JWT_* setting comes from the
environment (the tests run it with every HTTP location and every WebSocket transport).

It has the seed's blocklist callback (``REVOKED``), a subject getter that knows only
``KNOWN_SUBJECTS``, and WebSocket endpoints combining the WebSocket dependencies in
every pair, each echoing what both of its dependencies hold.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from authx import AuthX, AuthXConfig, RequestToken, TokenPayload, WebSocketSession

# AuthX's one-line rejection records next to uvicorn's lines: the tests read them too
# (no ERROR, no token).
_handler = logging.StreamHandler()
_handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
logging.getLogger("authx").addHandler(_handler)
logging.getLogger("authx").setLevel(logging.INFO)

app = FastAPI()
auth = AuthX(config=AuthXConfig())
auth.handle_errors(app)

REVOKED: set[str] = set()
auth.set_token_blocklist(lambda token: token in REVOKED)

KNOWN_SUBJECTS = {"alice": {"name": "Alice"}}
auth.set_subject_getter(KNOWN_SUBJECTS.get)

Held = TokenPayload | WebSocketSession


# HTTP -----------------------------------------------------------------------


@app.get("/healthz")
def healthz() -> dict[str, bool]:
    return {"ok": True}


@app.api_route("/me", methods=["GET", "POST"])
def me(payload: TokenPayload = auth.ACCESS_REQUIRED) -> dict[str, Any]:
    return {"user": payload.sub, "scopes": payload.scopes}


@app.get("/refresh")
def refresh(payload: TokenPayload = auth.REFRESH_REQUIRED) -> dict[str, Any]:
    return {"user": payload.sub, "type": payload.type}


@app.get("/subject")
def subject(current: Any = auth.CURRENT_SUBJECT) -> dict[str, Any]:
    return {"subject": current}


@app.post("/ws-ticket")
async def ws_ticket(ticket: str = auth.WS_TICKET) -> dict[str, str]:
    return {"ticket": ticket}


@app.post("/test/ticket-by-hand")
async def ticket_by_hand(
    payload: TokenPayload = auth.ACCESS_REQUIRED,
    found: RequestToken | None = auth.ACCESS_TOKEN,
) -> dict[str, str]:
    """A ticket issued with ``create_ws_ticket`` (as the README shows), not ``WS_TICKET``."""
    assert found is not None
    return {"ticket": await auth.create_ws_ticket(payload, token=found.token)}


@app.post("/test/revoke")
def revoke(token: str) -> dict[str, bool]:
    """Put ``token`` on the blocklist callback's set (the seed's logout)."""
    REVOKED.add(token)
    return {"revoked": True}


@app.post("/test/revoke-subject")
async def revoke_subject(sub: str) -> dict[str, bool]:
    await auth.revoke_subject(sub)
    return {"revoked": True}


# WebSocket ------------------------------------------------------------------


def _view(held: tuple[Held, ...]) -> dict[str, Any]:
    return {"subs": [h.sub for h in held], "scopes": [h.scopes for h in held]}


async def _serve(websocket: WebSocket, *held: Held) -> None:
    """Accept, say who is connected, then echo every text with what is held *now*."""
    await websocket.accept()
    await websocket.send_json(_view(held))
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_json({"echo": text, **_view(held)})
    except WebSocketDisconnect:
        pass


@app.websocket("/ws")
async def plain(websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
    await _serve(websocket, payload)


@app.websocket("/ws/admin")
async def admin(
    websocket: WebSocket, payload: TokenPayload = auth.ws_scopes_required("admin:*")
) -> None:
    await _serve(websocket, payload)


# Every pair of WebSocket dependencies on one endpoint ("read" is the scope required).


@app.websocket("/ws/pair/auth-scopes")
async def auth_scopes(
    websocket: WebSocket,
    first: TokenPayload = auth.WS_AUTH_REQUIRED,
    second: TokenPayload = auth.ws_scopes_required("read"),
) -> None:
    await _serve(websocket, first, second)


@app.websocket("/ws/pair/scopes-auth")
async def scopes_auth(
    websocket: WebSocket,
    first: TokenPayload = auth.ws_scopes_required("read"),
    second: TokenPayload = auth.WS_AUTH_REQUIRED,
) -> None:
    await _serve(websocket, first, second)


@app.websocket("/ws/pair/session-scopes")
async def session_scopes(
    websocket: WebSocket,
    first: WebSocketSession = auth.WS_SESSION,
    second: TokenPayload = auth.ws_scopes_required("read"),
) -> None:
    await _serve(websocket, first, second)


@app.websocket("/ws/pair/scopes-session")
async def scopes_session(
    websocket: WebSocket,
    first: TokenPayload = auth.ws_scopes_required("read"),
    second: WebSocketSession = auth.WS_SESSION,
) -> None:
    await _serve(websocket, first, second)


@app.websocket("/ws/pair/auth-session")
async def auth_session(
    websocket: WebSocket,
    first: TokenPayload = auth.WS_AUTH_REQUIRED,
    second: WebSocketSession = auth.WS_SESSION,
) -> None:
    await _serve(websocket, first, second)


@app.websocket("/ws/pair/session-auth")
async def session_auth(
    websocket: WebSocket,
    first: WebSocketSession = auth.WS_SESSION,
    second: TokenPayload = auth.WS_AUTH_REQUIRED,
) -> None:
    await _serve(websocket, first, second)


@app.websocket("/ws/pair/auth-body")
async def auth_body(websocket: WebSocket, first: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
    second = await auth._ws_auth_required(websocket)
    await _serve(websocket, first, second)


@app.websocket("/ws/pair/scopes-body")
async def scopes_body(
    websocket: WebSocket, first: TokenPayload = auth.ws_scopes_required("read")
) -> None:
    second = await auth._ws_auth_required(websocket)
    await _serve(websocket, first, second)


@app.websocket("/ws/pair/session-body")
async def session_body(websocket: WebSocket, first: WebSocketSession = auth.WS_SESSION) -> None:
    second = await auth._ws_auth_required(websocket)
    await _serve(websocket, first, second)


@app.websocket("/ws/pair/body-body")
async def body_body(websocket: WebSocket) -> None:
    first = await auth._ws_auth_required(websocket)
    second = await auth._ws_auth_required(websocket)
    await _serve(websocket, first, second)
