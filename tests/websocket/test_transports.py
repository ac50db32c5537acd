"""Every WebSocket transport through a real uvicorn server and the `websockets` client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request
from datetime import timedelta
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from authx import AuthX, AuthXConfig
from tests.conftest import SECRET
from tests.websocket.client import handshake

APP = "tests.apps.transports_app:app"
ALL = '["subprotocol", "cookies", "ticket", "message", "query", "headers"]'
issuer = AuthX(AuthXConfig(JWT_SECRET_KEY=SECRET))


def token(sub: str = "alice", **kwargs: Any) -> str:
    return issuer.create_access_token(uid=sub, **kwargs)


def post(server, path: str, headers: dict[str, str] | None = None) -> Any:  # type: ignore[no-untyped-def]
    request = urllib.request.Request(server.http + path, method="POST", headers=headers or {})
    with urllib.request.urlopen(request) as response:
        return json.load(response)


@pytest.fixture
def server(live_server_factory):  # type: ignore[no-untyped-def]
    return live_server_factory(
        APP,
        JWT_SECRET_KEY=SECRET,
        JWT_WS_TOKEN_LOCATION=ALL,
        JWT_WS_REJECTION="close",
        JWT_WS_ALLOWED_ORIGINS='["http://allowed.test"]',
        JWT_WS_AUTH_MESSAGE_TIMEOUT="1",
        JWT_COOKIE_SECURE="false",
    )


async def test_subprotocol_token_is_never_echoed(server) -> None:  # type: ignore[no-untyped-def]
    t = token()
    async with websockets.connect(
        f"{server.ws}/ws", subprotocols=[f"authx.bearer.{t}", "chat.v1"]
    ) as ws:
        assert json.loads(await ws.recv())["user"] == "alice"
        # The seed-style endpoint accepted with no subprotocol: AuthX selected the
        # application protocol, never the token-carrying one.
        assert ws.subprotocol == "chat.v1"
        assert t not in str(ws.response.headers)
    async with websockets.connect(
        f"{server.ws}/ws/chat", subprotocols=[f"authx.bearer.{t}", "chat.v1"]
    ) as ws:
        assert ws.subprotocol == "chat.v1"
    bad = await handshake_with_protocols(server, ["authx.bearer.garbage", "chat.v1"])
    assert bad == (4001, True)
    server.assert_log_clean(t)


async def handshake_with_protocols(server, protocols: list[str]) -> tuple[int | None, bool]:  # type: ignore[no-untyped-def]
    async with websockets.connect(f"{server.ws}/ws", subprotocols=protocols) as ws:
        with contextlib.suppress(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        return ws.close_code, ws.subprotocol != protocols[0]


async def test_cookie_needs_an_allowed_origin(server) -> None:  # type: ignore[no-untyped-def]
    t = token("cookie-user")
    cookie = {"Cookie": f"access_token_cookie={t}"}
    ok = await handshake(f"{server.ws}/ws", headers={**cookie, "Origin": "http://allowed.test"})
    assert ok.message["user"] == "cookie-user"
    for origin in ({"Origin": "http://evil.test"}, {}):
        outcome = await handshake(f"{server.ws}/ws", headers={**cookie, **origin})
        assert (outcome.kind, outcome.code, outcome.reason) == (
            "closed",
            4005,
            "origin_not_allowed",
        )
    server.assert_log_clean(t)


async def test_ticket_works_once(server) -> None:  # type: ignore[no-untyped-def]
    t = token("ticket-user", scopes=["chat"])
    ticket = post(server, "/ws-ticket", {"Authorization": f"Bearer {t}"})["ticket"]
    assert t not in ticket
    assert len(ticket) >= 32
    first = await handshake(f"{server.ws}/ws?ticket={ticket}")
    assert first.message == {"user": "ticket-user", "scopes": ["chat"]}
    second = await handshake(f"{server.ws}/ws?ticket={ticket}")
    assert (second.kind, second.code) == ("closed", 4001)
    unknown = await handshake(f"{server.ws}/ws?ticket=made-up")
    assert (unknown.kind, unknown.code) == ("closed", 4001)
    log = server.assert_log_clean(t, ticket)
    assert "ticket=[redacted]" in log


async def test_ticket_bound_to_origin(server) -> None:  # type: ignore[no-untyped-def]
    t = token()
    headers = {"Authorization": f"Bearer {t}", "Origin": "http://app.test"}
    ticket = post(server, "/ws-ticket", headers)["ticket"]
    wrong = await handshake(f"{server.ws}/ws?ticket={ticket}", headers={"Origin": "http://x.test"})
    assert (wrong.kind, wrong.code, wrong.reason) == ("closed", 4005, "origin_not_allowed")
    # The failed attempt used the ticket up.
    again = await handshake(
        f"{server.ws}/ws?ticket={ticket}", headers={"Origin": "http://app.test"}
    )
    assert (again.code, again.reason) == (4001, "invalid_token")
    ticket = post(server, "/ws-ticket", headers)["ticket"]
    right = await handshake(
        f"{server.ws}/ws?ticket={ticket}", headers={"Origin": "http://app.test"}
    )
    assert right.kind == "open"


async def test_ticket_expires(live_server_factory) -> None:  # type: ignore[no-untyped-def]
    server = live_server_factory(
        APP, JWT_SECRET_KEY=SECRET, JWT_WS_TOKEN_LOCATION='["ticket"]', JWT_WS_TICKET_TTL="0.5"
    )
    ticket = post(server, "/ws-ticket", {"Authorization": f"Bearer {token()}"})["ticket"]
    await asyncio.sleep(0.8)
    outcome = await handshake(f"{server.ws}/ws?ticket={ticket}")
    assert (outcome.status, outcome.body["error_type"]) == (401, "InvalidTicketError")


async def test_first_message_authentication(server) -> None:  # type: ignore[no-untyped-def]
    t = token("msg-user")
    async with websockets.connect(f"{server.ws}/ws") as ws:
        await ws.send(json.dumps({"type": "authx.auth", "token": t}))
        assert json.loads(await ws.recv())["user"] == "msg-user"
        await ws.send("hello")
        assert json.loads(await ws.recv()) == {"echo": "hello"}
    server.assert_log_clean(t)


@pytest.mark.parametrize(
    ("first", "code"),
    [
        ('{"type": "authx.auth", "token": "garbage"}', 4001),
        ("hello", 4001),
        (None, 4008),
    ],
    ids=["bad-token", "other-message", "timeout"],
)
async def test_first_message_failures(server, first: str | None, code: int) -> None:  # type: ignore[no-untyped-def]
    async with websockets.connect(f"{server.ws}/ws") as ws:
        if first is not None:
            await ws.send(first)
        try:
            async with asyncio.timeout(5):
                await ws.recv()
        except ConnectionClosed:
            pass
        assert ws.close_code == code
    server.assert_log_clean()


async def test_expired_token_by_subprotocol_still_closes_live(server) -> None:  # type: ignore[no-untyped-def]
    t = token(expiry=timedelta(seconds=2))
    async with websockets.connect(f"{server.ws}/ws", subprotocols=[f"authx.bearer.{t}"]) as ws:
        await ws.recv()
        try:
            async with asyncio.timeout(5):
                async for _ in ws:
                    pass
        except ConnectionClosed:
            pass
    assert (ws.close_code, ws.close_reason) == (4002, "token_expired")
