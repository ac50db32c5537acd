"""The Origin allow-list of cookie and origin-bound ticket handshakes is an exact match.

An origin is the serialised ``scheme://host[:port]`` a browser sends. Anything
that is not character for character one of the allowed origins is refused
(403 OriginNotAllowedError, or close 4005): a longer host, a sub-domain of an
attacker, another port or scheme, a path or trailing slash, other letter case.
Browsers always send the lowercase serialisation, so the last refuses nothing a
browser would send.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocket as StarletteWebSocket

from authx import AuthX, AuthXConfig, TokenPayload
from authx.exceptions import OriginNotAllowedError
from authx.websocket._transports import check_origin
from tests.conftest import SECRET
from tests.websocket.asgi import Connection, connect, scope_for

ALLOWED = "http://allowed.test"
ALSO_ALLOWED = "https://app.example:8443"
LOOK_ALIKES = [
    "http://allowed.test.evil.example",
    "http://allowed.testx",
    "http://allowed.tes",
    "http://xallowed.test",
    "http://evil.allowed.test",
    "http://allowed.test:8080",
    "http://allowed.test:80",
    "https://allowed.test",
    "ws://allowed.test",
    "HTTP://ALLOWED.TEST",
    "http://Allowed.test",
    "http://allowed.TEST",
    "http://allowed.test/",
    "http://allowed.test/path",
    "http://user@allowed.test",
    " http://allowed.test",
    "http://allowed.test ",
    f"{ALLOWED}, {ALSO_ALLOWED}",
    "https://app.example",
    "https://app.example:8443/",
    "http://evil.test",
    "null",
    "",
]


def make_app(**overrides: Any) -> tuple[FastAPI, AuthX[Any]]:
    settings: dict[str, Any] = {
        "JWT_SECRET_KEY": SECRET,
        "JWT_WS_TOKEN_LOCATION": ["cookies", "ticket"],
        "JWT_WS_ALLOWED_ORIGINS": [ALLOWED, ALSO_ALLOWED],
        "JWT_TOKEN_LOCATION": ["headers"],
    }
    settings.update(overrides)
    auth = AuthX(config=AuthXConfig(**settings))
    app = FastAPI()
    auth.handle_errors(app)

    @app.websocket("/ws")
    async def echo(websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
        await websocket.accept()
        await websocket.send_json({"user": payload.sub})
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass

    @app.post("/ws-ticket")
    async def ticket(value: str = auth.WS_TICKET) -> dict[str, str]:
        return {"ticket": value}

    return app, auth


async def attempt(app: FastAPI, query: str = "", **headers: str) -> Connection:
    """A handshake with ``headers``; an accepted connection is closed by the client again."""
    connection = await connect(app, query=query, headers=list(headers.items()))
    if connection.kind == "open":
        await connection.disconnect()
    else:
        await connection.task
    return connection


def assert_refused(connection: Connection, mode: str = "deny") -> None:
    if mode == "deny":
        assert (connection.kind, connection.status) == ("denied", 403), connection.sent
        assert connection.body == {
            "message": "Origin not allowed",
            "error_type": "OriginNotAllowedError",
            "reason": "origin_not_allowed",
        }
    else:
        assert connection.kind == "closed", connection.sent
        assert connection.close == (4005, "origin_not_allowed")


def assert_open(connection: Connection, user: str) -> None:
    assert connection.kind == "open", connection.sent
    assert connection.messages[0] == {"user": user}


def cookie(token: str) -> str:
    return f"access_token_cookie={token}"


# check_origin itself ---------------------------------------------------------------------


def websocket_with(origin: str | None) -> StarletteWebSocket:
    headers = [] if origin is None else [("origin", origin)]
    return StarletteWebSocket(scope_for(headers=headers), receive=None, send=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("origin", [ALLOWED, ALSO_ALLOWED])
def test_check_origin_accepts_an_allowed_origin(origin: str) -> None:
    check_origin(websocket_with(origin), [ALLOWED, ALSO_ALLOWED])


@pytest.mark.parametrize("origin", [*LOOK_ALIKES, None])
def test_check_origin_refuses_look_alikes(origin: str | None) -> None:
    with pytest.raises(OriginNotAllowedError):
        check_origin(websocket_with(origin), [ALLOWED, ALSO_ALLOWED])


def test_check_origin_with_an_empty_allow_list_refuses_everything() -> None:
    with pytest.raises(OriginNotAllowedError):
        check_origin(websocket_with(ALLOWED), [])


# Cookie handshakes ------------------------------------------------------------------------


@pytest.mark.parametrize("origin", [ALLOWED, ALSO_ALLOWED])
async def test_cookie_from_an_allowed_origin_opens(origin: str) -> None:
    app, auth = make_app()
    token = auth.create_access_token("cookie-user")
    assert_open(await attempt(app, cookie=cookie(token), origin=origin), "cookie-user")


@pytest.mark.parametrize("mode", ["deny", "close"])
@pytest.mark.parametrize("origin", LOOK_ALIKES)
async def test_cookie_from_a_look_alike_origin_is_refused(origin: str, mode: str) -> None:
    app, auth = make_app(JWT_WS_REJECTION=mode)
    token = auth.create_access_token("cookie-user")
    assert_refused(await attempt(app, cookie=cookie(token), origin=origin), mode)


async def test_cookie_without_an_origin_is_refused() -> None:
    app, auth = make_app()
    token = auth.create_access_token("cookie-user")
    assert_refused(await attempt(app, cookie=cookie(token)))


async def test_origin_is_checked_before_the_token() -> None:
    """A bad origin is refused as such even with a garbage cookie: nothing is decoded."""
    app, _ = make_app()
    assert_refused(await attempt(app, cookie=cookie("garbage"), origin="http://evil.test"))


# Tickets bound to an origin ----------------------------------------------------------------


async def issue(auth: AuthX[Any], origin: str | None) -> str:
    payload = auth._decode_token(auth.create_access_token("ticket-user"))
    return await auth.create_ws_ticket(payload, origin=origin)


@pytest.mark.parametrize("origin", [ALLOWED, "http://app.test"])
async def test_bound_ticket_opens_from_its_origin(origin: str) -> None:
    app, auth = make_app()
    ticket = await issue(auth, origin)
    assert_open(await attempt(app, f"ticket={ticket}", origin=origin), "ticket-user")


@pytest.mark.parametrize("origin", LOOK_ALIKES)
async def test_bound_ticket_from_a_look_alike_origin_is_refused(origin: str) -> None:
    app, auth = make_app()
    ticket = await issue(auth, ALLOWED)
    assert_refused(await attempt(app, f"ticket={ticket}", origin=origin))


async def test_bound_ticket_without_an_origin_is_refused() -> None:
    app, auth = make_app()
    ticket = await issue(auth, ALLOWED)
    assert_refused(await attempt(app, f"ticket={ticket}"))


async def test_bound_ticket_is_used_up_by_a_refused_attempt() -> None:
    app, auth = make_app()
    ticket = await issue(auth, ALLOWED)
    assert_refused(await attempt(app, f"ticket={ticket}", origin="http://allowed.testx"))
    again = await attempt(app, f"ticket={ticket}", origin=ALLOWED)
    assert (again.status, again.body["error_type"]) == (401, "InvalidTicketError")


@pytest.mark.parametrize("origin", [None, "http://anywhere.test"])
async def test_unbound_ticket_opens_from_any_origin(origin: str | None) -> None:
    app, auth = make_app()
    ticket = await issue(auth, None)
    headers = {} if origin is None else {"origin": origin}
    assert_open(await attempt(app, f"ticket={ticket}", **headers), "ticket-user")


async def test_ticket_route_binds_the_request_origin() -> None:
    """WS_TICKET binds the ticket to the Origin of the HTTP request that asked for it."""
    app, auth = make_app()
    token = auth.create_access_token("ticket-user")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://testserver"
    ) as client:

        async def new_ticket() -> str:
            response = await client.post(
                "/ws-ticket", headers={"Authorization": f"Bearer {token}", "Origin": ALLOWED}
            )
            assert response.status_code == 200, response.text
            return str(response.json()["ticket"])

        refused = await attempt(app, f"ticket={await new_ticket()}", origin="http://allowed.testx")
        opened = await attempt(app, f"ticket={await new_ticket()}", origin=ALLOWED)
    assert_refused(refused)
    assert_open(opened, "ticket-user")
