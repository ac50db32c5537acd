"""WebSocketAuthMiddleware at the ASGI level, in-process (no server, no network).

What the inner app sees (``scope["user"]``, ``scope["auth"]``, the session), the
first-message transport (the app's own accept happens exactly once on the wire,
no message is lost), rejections in both modes, HTTP and lifespan untouched, the
session unregistered however the app ends, and a failure the backend already
saw not verified twice. The same through a real server is in test_live_server.py.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.types import Receive, Scope, Send

from authx import AuthX, AuthXConfig
from authx.starlette import AuthXBackend, AuthXUser, WebSocketAuthMiddleware
from tests.conftest import SECRET
from tests.websocket.asgi import Connection, connect, open_connection, scope_for


def make_auth(**settings: Any) -> AuthX[Any]:
    return AuthX(config=AuthXConfig(JWT_SECRET_KEY=SECRET, **settings))


class Recorder:
    """A raw ASGI app: accepts (choosing a subprotocol), reports what it saw, echoes."""

    def __init__(self, auth: AuthX[Any], fail: bool = False) -> None:
        self.auth = auth
        self.fail = fail
        self.scopes: list[Scope] = []
        self.first: dict[str, Any] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        if scope["type"] != "websocket":
            return
        self.first = await receive()
        await send({"type": "websocket.accept", "subprotocol": "app.v1"})
        user = scope["user"]
        assert isinstance(user, AuthXUser)
        session = user.session
        assert session is not None
        await send(
            {
                "type": "websocket.send",
                "text": json.dumps({"user": user.identity, "scopes": list(scope["auth"].scopes)}),
            }
        )
        if self.fail:
            raise RuntimeError("the app failed")
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": "echo:" + message["text"]})


async def texts_until(conn: Connection, last: str) -> list[str]:
    """The texts the app sent, once ``last`` is among them."""
    async with asyncio.timeout(5):
        while True:
            texts = [m["text"] for m in conn.sent if m["type"] == "websocket.send"]
            if last in texts:
                return texts
            await asyncio.sleep(0.01)


def accepts(sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in sent if m["type"] == "websocket.accept"]


async def test_the_app_sees_the_user_and_its_own_accept_goes_out() -> None:
    auth = make_auth()
    inner = Recorder(auth)
    app = WebSocketAuthMiddleware(inner, auth=auth)
    token = auth.create_access_token(uid="alice", scopes=["chat"])
    conn = await connect(app, query=f"token={token}")
    assert conn.messages == [{"user": "alice", "scopes": ["chat"]}]
    assert inner.first == {"type": "websocket.connect"}
    assert accepts(conn.sent) == [{"type": "websocket.accept", "subprotocol": "app.v1"}]
    assert auth.live_stats()["connections"] == 1
    await conn.disconnect()
    assert auth.live_stats()["connections"] == 0


async def test_first_message_auth_then_the_apps_accept_is_a_no_op() -> None:
    auth = make_auth(JWT_WS_TOKEN_LOCATION=["message"])
    inner = Recorder(auth)
    app = WebSocketAuthMiddleware(inner, auth=auth)
    token = auth.create_access_token(uid="alice")
    conn = await open_connection(app, scope_for(subprotocols=["chat.v1"]))
    await conn.wait_for("websocket.accept")
    # The client sends its token and, at once, its first real message.
    await conn.send_text(json.dumps({"type": "authx.auth", "token": token}))
    await conn.send_text("hello")
    await conn.wait_for("websocket.send")
    assert inner.first == {"type": "websocket.connect"}
    # One accept on the wire: AuthX's, with the subprotocol it chose; the app's was dropped.
    assert accepts(conn.sent) == [{"type": "websocket.accept", "subprotocol": "chat.v1"}]
    assert await texts_until(conn, "echo:hello") == [
        json.dumps({"user": "alice", "scopes": []}),
        "echo:hello",
    ]
    await conn.disconnect()
    assert auth.live_stats()["connections"] == 0


@pytest.mark.parametrize(
    ("mode", "query", "expected"),
    [
        ("deny", "", (401, "invalid_token")),
        ("deny", "token=bad", (401, "invalid_token")),
        ("deny", "scoped", (403, "insufficient_scope")),
        ("close", "", (4001, "invalid_token")),
        ("close", "scoped", (4003, "insufficient_scope")),
    ],
)
async def test_rejections_never_reach_the_app(
    mode: str, query: str, expected: tuple[int, str]
) -> None:
    auth = make_auth(JWT_WS_REJECTION=mode)
    inner = Recorder(auth)
    app = WebSocketAuthMiddleware(inner, auth=auth, scopes=["admin"])
    if query == "scoped":
        query = f"token={auth.create_access_token(uid='alice', scopes=['chat'])}"
    conn = await connect(app, query=query)
    if mode == "deny":
        assert (conn.kind, conn.status, conn.body["reason"]) == ("denied", *expected)
    else:
        assert (conn.kind, conn.close) == ("closed", expected)
    assert inner.scopes == []
    await conn.task
    assert auth.live_stats()["connections"] == 0


async def test_http_and_lifespan_pass_through_untouched() -> None:
    auth = make_auth()
    inner = Recorder(auth)
    app = WebSocketAuthMiddleware(inner, auth=auth)

    async def receive() -> dict[str, Any]:
        raise AssertionError("not read")

    async def send(message: dict[str, Any]) -> None:
        raise AssertionError("not sent")

    http = {"type": "http", "path": "/", "headers": []}
    lifespan = {"type": "lifespan"}
    await app(http, receive, send)
    await app(lifespan, receive, send)
    assert inner.scopes == [http, lifespan]
    assert "user" not in http


@pytest.mark.parametrize("ending", ["raises", "returns"])
async def test_the_session_ends_with_the_app(ending: str) -> None:
    auth = make_auth()
    inner = Recorder(auth, fail=ending == "raises")
    app = WebSocketAuthMiddleware(inner, auth=auth)
    token = auth.create_access_token(uid="alice")
    conn = await connect(app, query=f"token={token}")
    if ending == "raises":
        with pytest.raises(RuntimeError, match="the app failed"):
            await conn.task
    else:
        await conn.disconnect()
    assert auth.live_stats() == dict.fromkeys(auth.live_stats(), 0)
    assert auth.active_connections() == []


async def test_a_failure_the_backend_saw_is_not_verified_again() -> None:
    auth = make_auth()
    calls: list[str] = []

    def blocklist(token: str) -> bool:
        calls.append(token)
        return token == revoked

    auth.set_token_blocklist(blocklist)
    revoked = auth.create_access_token(uid="mallory")
    good = auth.create_access_token(uid="alice")
    inner = Recorder(auth)
    app = AuthenticationMiddleware(
        WebSocketAuthMiddleware(inner, auth=auth), backend=AuthXBackend(auth)
    )
    refused = await connect(app, query=f"token={revoked}")
    assert (refused.status, refused.body["error_type"]) == (401, "RevokedTokenError")
    accepted = await connect(app, query=f"token={good}")
    assert accepted.messages == [{"user": "alice", "scopes": []}]
    assert calls == [revoked, good]  # once each: the middleware used the backend's answer
    await accepted.disconnect()
    assert auth.live_stats()["connections"] == 0


def test_options_are_checked() -> None:
    auth = make_auth()
    with pytest.raises(TypeError, match="list of strings"):
        WebSocketAuthMiddleware(Recorder(auth), auth=auth, scopes="admin")
    with pytest.raises(TypeError):
        WebSocketAuthMiddleware(Recorder(auth), auth=auth, scope=["admin"])  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        WebSocketAuthMiddleware(Recorder(auth), auth)  # type: ignore[misc]
