"""Plain Starlette apps through a real uvicorn server and the real ``websockets`` client.

``tests/apps/starlette_app.py``: ``app`` has AuthXBackend behind Starlette's
AuthenticationMiddleware and WebSocketAuthMiddleware over two mounts; ``ws_app``
has WebSocketAuthMiddleware over the whole app. Each transport, both rejection
modes as the client sees them, expiry (4002) while the endpoint waits in
``receive``, revocation (4004), in-band refresh, first-message authentication
followed by the app's own accept, and no session left behind.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from authx import AuthX, AuthXConfig
from tests.conftest import SECRET, LiveServer
from tests.websocket.client import closed_after, handshake

APP = "tests.apps.starlette_app:app"
WS_APP = "tests.apps.starlette_app:ws_app"
ORIGIN = "http://app.test"
ALL = '["query", "headers", "subprotocol", "cookies", "ticket", "message"]'
NO_MESSAGE = '["query", "headers", "subprotocol", "cookies", "ticket"]'
TRANSPORTS = ["query", "headers", "subprotocol", "cookies", "ticket", "message"]

issuer = AuthX(config=AuthXConfig(JWT_SECRET_KEY=SECRET))


def settings(locations: str = ALL, **extra: str) -> dict[str, str]:
    return {
        "JWT_SECRET_KEY": SECRET,
        "JWT_WS_TOKEN_LOCATION": locations,
        "JWT_WS_ALLOWED_ORIGINS": f'["{ORIGIN}"]',
        "JWT_WS_AUTH_MESSAGE_TIMEOUT": "1",
        **extra,
    }


def token(sub: str | None = None, seconds: float = 60, **claims: Any) -> str:
    uid = sub or f"user-{uuid.uuid4().hex[:8]}"
    return issuer.create_access_token(uid=uid, expiry=timedelta(seconds=seconds), **claims)


def sub_of(jwt: str) -> str:
    return issuer._decode_token(jwt).sub


def http(
    server: LiveServer, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(server.http + path, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, dict(response.headers), json.load(response)
    except urllib.error.HTTPError as error:
        body = error.read()
        return error.code, dict(error.headers), json.loads(body) if body[:1] == b"{" else body


async def no_sessions_left(server: LiveServer) -> None:
    """The server's registry is empty again (it forgets a session as the socket ends)."""
    async with asyncio.timeout(5):
        while True:
            _, _, stats = await asyncio.to_thread(http, server, "/stats")
            if stats["connections"] == stats["active"] == stats["timers"] == 0:
                return
            await asyncio.sleep(0.05)


@pytest.fixture
def server(live_server_factory: Any) -> LiveServer:
    """``app``: deny mode, every transport."""
    return live_server_factory(APP, **settings())  # type: ignore[no-any-return]


@pytest.fixture
def ws_server(live_server_factory: Any) -> LiveServer:
    """``ws_app``: deny mode, every transport."""
    return live_server_factory(WS_APP, **settings())  # type: ignore[no-any-return]


@pytest.fixture(params=["mount", "whole-app"])
def target(request: pytest.FixtureRequest, live_server_factory: Any) -> tuple[LiveServer, str]:
    """The middleware over one mount of ``app``, or over the whole of ``ws_app``."""
    if request.param == "mount":
        return live_server_factory(APP, **settings()), "/live/echo"
    return live_server_factory(WS_APP, **settings()), "/echo"


@asynccontextmanager
async def connected(
    server: LiveServer, path: str, transport: str, jwt: str, protocols: list[str] | None = None
) -> AsyncIterator[Any]:
    """A connection authenticated with ``transport``, its greeting not read yet."""
    url, headers = f"{server.ws}{path}", {"Origin": ORIGIN}
    offered = list(protocols or [])
    if transport == "query":
        url += f"?token={jwt}"
    elif transport == "headers":
        headers["Authorization"] = f"Bearer {jwt}"
    elif transport == "subprotocol":
        offered = [f"authx.bearer.{jwt}", *(offered or ["chat.v1"])]
    elif transport == "cookies":
        headers["Cookie"] = f"access_token_cookie={jwt}"
    elif transport == "ticket":
        auth_headers = {"Authorization": f"Bearer {jwt}", "Origin": ORIGIN}
        _, _, body = await asyncio.to_thread(http, server, "/ws-ticket", "POST", auth_headers)
        url += f"?ticket={body['ticket']}"
    async with websockets.connect(
        url, additional_headers=headers, subprotocols=offered or None
    ) as ws:
        if transport == "message":
            await ws.send(json.dumps({"type": "authx.auth", "token": jwt}))
        yield ws


# AuthXBackend with Starlette's AuthenticationMiddleware -----------------------------


def test_backend_on_http_routes(server: LiveServer) -> None:
    assert http(server, "/me")[2] == {"authenticated": False, "user": None, "scopes": []}
    assert http(server, "/read")[0] == 403
    good = token("alice", scopes=["read"])
    status, _, body = http(server, "/me", headers={"Authorization": f"Bearer {good}"})
    assert (status, body) == (200, {"authenticated": True, "user": "alice", "scopes": ["read"]})
    assert http(server, "/read", headers={"Authorization": f"Bearer {good}"})[2] == {
        "user": "alice"
    }
    for bad, error_type in [("bad", "JWTDecodeError"), (token(seconds=-5), "TokenExpiredError")]:
        status, headers, body = http(server, "/me", headers={"Authorization": f"Bearer {bad}"})
        assert (status, body["error_type"]) == (401, error_type)
        assert set(body) == {"message", "error_type", "reason"}
        assert headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    server.assert_log_clean(good)


async def test_backend_with_requires_on_a_websocket_route(server: LiveServer) -> None:
    good = token("alice", scopes=["read"])
    outcome = await handshake(f"{server.ws}/ws/requires?token={good}")
    assert outcome.message == {"authenticated": True, "user": "alice", "scopes": ["read"]}
    for query in ("", f"?token={token(scopes=['write'])}", "?token=bad"):
        refused = await handshake(f"{server.ws}/ws/requires{query}")
        assert (refused.kind, refused.status) == ("denied", 403)
    anonymous = await handshake(f"{server.ws}/ws/anonymous?token=bad")
    assert anonymous.message["authenticated"] is False
    await no_sessions_left(server)
    server.assert_log_clean(good)


# WebSocketAuthMiddleware -----------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_each_transport(target: tuple[LiveServer, str], transport: str) -> None:
    server, path = target
    jwt = token(scopes=["chat"])
    async with connected(server, path, transport, jwt) as ws:
        greeting = json.loads(await ws.recv())
        assert greeting["user"] == sub_of(jwt)
        assert (greeting["location"], greeting["scopes"]) == (transport, ["chat"])
        assert greeting["same_session"] is True  # user.session is the connection's session
        if transport == "subprotocol":
            assert ws.subprotocol == "chat.v1"
            assert greeting["offered"] == ["chat.v1"]  # the token is hidden from the app
        await ws.send("hi")
        assert json.loads(await ws.recv())["echo"] == "hi"
    await no_sessions_left(server)
    server.assert_log_clean(jwt)


async def test_first_message_then_the_apps_accept_and_its_next_message(
    target: tuple[LiveServer, str],
) -> None:
    server, path = target
    jwt = token()
    async with websockets.connect(f"{server.ws}{path}", subprotocols=["chat.v1"]) as ws:
        # The token and the first real message leave together, before the app runs.
        await ws.send(json.dumps({"type": "authx.auth", "token": jwt}))
        await ws.send("first")
        greeting = json.loads(await ws.recv())
        assert (greeting["user"], greeting["location"]) == (sub_of(jwt), "message")
        assert json.loads(await ws.recv())["echo"] == "first"
        assert ws.subprotocol == "chat.v1"
    await no_sessions_left(server)
    server.assert_log_clean(jwt)


async def test_an_app_choosing_its_subprotocol(server: LiveServer) -> None:
    jwt = token()
    async with connected(server, "/live/chat", "subprotocol", jwt, ["other", "chat.v1"]) as ws:
        assert json.loads(await ws.recv()) == {"user": sub_of(jwt)}
        assert ws.subprotocol == "chat.v1"


async def test_deny_mode_is_seen_as_http_statuses(live_server_factory: Any) -> None:
    server = live_server_factory(APP, **settings(NO_MESSAGE))
    cases = [
        ("/live/echo", "", 401, "invalid_token"),
        ("/live/echo", "?token=bad", 401, "invalid_token"),
        ("/live/echo", f"?token={token(seconds=-5)}", 401, "token_expired"),
        ("/admin-live/echo", f"?token={token(scopes=['chat'])}", 403, "insufficient_scope"),
    ]
    for path, query, status, reason in cases:
        outcome = await handshake(f"{server.ws}{path}{query}")
        assert (outcome.kind, outcome.status, outcome.body["reason"]) == (
            "denied",
            status,
            reason,
        )
        assert outcome.headers["www-authenticate"].startswith("Bearer")
    admin = await handshake(f"{server.ws}/admin-live/echo?token={token(scopes=['admin'])}")
    assert admin.kind == "open"
    await no_sessions_left(server)
    server.assert_log_clean()


async def test_close_mode_is_seen_as_close_codes(live_server_factory: Any) -> None:
    server = live_server_factory(APP, **settings(JWT_WS_REJECTION="close"))
    revoked = token()
    await asyncio.to_thread(http, server, f"/revoke/subject?sub={sub_of(revoked)}", "POST")
    cases = [
        ("/live/echo", "?token=bad", 4001, "invalid_token"),
        ("/live/echo", f"?token={token(seconds=-5)}", 4002, "token_expired"),
        ("/admin-live/echo", f"?token={token(scopes=['chat'])}", 4003, "insufficient_scope"),
        ("/live/echo", f"?token={revoked}", 4004, "token_revoked"),
        ("/live/echo", "", 4008, "auth_timeout"),  # waited for a first message
    ]
    for path, query, code, reason in cases:
        outcome = await handshake(f"{server.ws}{path}{query}")
        assert (outcome.kind, outcome.code, outcome.reason) == ("closed", code, reason)
    await no_sessions_left(server)
    server.assert_log_clean(revoked)


async def test_expiry_closes_while_the_app_waits_in_receive(
    target: tuple[LiveServer, str],
) -> None:
    server, path = target
    jwt = token(seconds=2)
    exp = issuer._decode_token(jwt).expires_at
    assert exp is not None
    async with connected(server, path, "query", jwt) as ws:
        await ws.recv()
        await ws.send("hi")
        assert json.loads(await ws.recv())["echo"] == "hi"
        code, reason, at = await closed_after(ws)
    assert (code, reason) == (4002, "token_expired")
    assert exp - 0.05 <= at <= exp + 1.0
    await no_sessions_left(server)
    server.assert_log_clean(jwt)


async def test_revoke_subject_closes_the_connection(target: tuple[LiveServer, str]) -> None:
    server, path = target
    jwt = token()
    async with connected(server, path, "headers", jwt) as ws:
        await ws.recv()
        await asyncio.to_thread(http, server, f"/revoke/subject?sub={sub_of(jwt)}", "POST")
        code, reason, _ = await closed_after(ws)
    assert (code, reason) == (4004, "token_revoked")
    await no_sessions_left(server)


async def test_in_band_refresh_keeps_the_connection(target: tuple[LiveServer, str]) -> None:
    server, path = target
    sub = f"user-{uuid.uuid4().hex[:8]}"
    old = token(sub, seconds=2, scopes=["chat"])
    new = token(sub, seconds=60, scopes=["chat", "admin"])
    async with connected(server, path, "query", old) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "authx.refresh", "token": new}))
        refreshed = json.loads(await ws.recv())
        assert refreshed["type"] == "authx.refreshed"
        await asyncio.sleep(max(0.0, (issuer._decode_token(old).expires_at or 0) - time.time()))
        await asyncio.sleep(0.5)
        await ws.send("still here")
        echoed = json.loads(await ws.recv())
        # websocket.auth and websocket.user follow the new token.
        assert echoed["scopes"] == ["chat", "admin"]
        assert echoed["exp"] == pytest.approx(refreshed["exp"])
    await no_sessions_left(server)
    server.assert_log_clean(old, new)


@pytest.mark.parametrize("ending", ["return", "raise"])
async def test_no_session_outlives_the_app(target: tuple[LiveServer, str], ending: str) -> None:
    server, path = target
    jwt = token()
    async with connected(server, path, "query", jwt) as ws:
        await ws.recv()
        await ws.send(ending)
        # The endpoint ends without closing: uvicorn drops the connection (1006).
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    await no_sessions_left(server)


def test_http_passes_the_websocket_middleware_untouched(ws_server: LiveServer) -> None:
    assert http(ws_server, "/plain")[2] == {"user_in_scope": False}
