"""Where a WebSocket handshake's token is looked for, in-process at the ASGI level.

Each transport (query, header, subprotocol, cookie, ticket, first message) is
found under its configured name, in ``JWT_WS_TOKEN_LOCATION`` order; a
handshake with none names every place tried; a token over JWT_MAX_TOKEN_SIZE is
refused wherever it is; the subprotocol carrying a token is never accepted or
shown to the app. The same transports through a real server are in
test_transports.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from authx import AuthX, AuthXConfig, TokenPayload
from tests.conftest import SECRET
from tests.websocket.asgi import Connection, connect, open_connection, scope_for

ORIGIN = "http://app.test"


def make_app(locations: list[str], **overrides: Any) -> tuple[FastAPI, AuthX[Any]]:
    settings: dict[str, Any] = {
        "JWT_SECRET_KEY": SECRET,
        "JWT_WS_TOKEN_LOCATION": locations,
        "JWT_WS_ALLOWED_ORIGINS": [ORIGIN],
    }
    settings.update(overrides)
    auth = AuthX(config=AuthXConfig(**settings))
    app = FastAPI()
    auth.handle_errors(app)

    @app.websocket("/ws")
    async def echo(websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
        await websocket.accept()
        await websocket.send_json(
            {"user": payload.sub, "offered": websocket.scope.get("subprotocols")}
        )
        try:
            while True:
                await websocket.send_json({"echo": await websocket.receive_text()})
        except WebSocketDisconnect:
            pass

    @app.websocket("/ws/chosen")
    async def chosen(websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
        """Accepts with the protocol the client asked for via ``?protocol=``."""
        await websocket.accept(subprotocol=websocket.query_params.get("protocol"))
        await websocket.send_json({"user": payload.sub})
        with contextlib.suppress(WebSocketDisconnect):
            await websocket.receive_text()

    return app, auth


async def finish(connection: Connection) -> Connection:
    if connection.kind == "open" and not connection.task.done():
        await connection.disconnect()
    else:
        await asyncio.wait_for(connection.task, 5)
    return connection


async def handshake(app: FastAPI, path: str = "/ws", query: str = "", **options: Any) -> Connection:
    return await finish(await connect(app, path, query, **options))


def user(connection: Connection) -> str:
    assert connection.kind == "open", connection.sent
    return str(connection.messages[0]["user"])


def refused(connection: Connection) -> tuple[int | None, str]:
    """(status, error type) of a denied handshake."""
    assert connection.kind == "denied", connection.sent
    return connection.status, connection.body["error_type"]


# Each transport, under its configured name ---------------------------------------------------


async def test_query_parameter() -> None:
    app, auth = make_app(["query"], JWT_QUERY_STRING_NAME="access")
    token = auth.create_access_token("alice")
    assert user(await handshake(app, query=f"access={token}")) == "alice"
    assert refused(await handshake(app, query=f"token={token}")) == (401, "MissingTokenError")


@pytest.mark.parametrize("value", ["Bearer {t}", "bearer {t}", "BEARER  {t} ", "{t}"])
async def test_authorization_header(value: str) -> None:
    app, auth = make_app(["headers"])
    token = auth.create_access_token("alice")
    headers = [("authorization", value.format(t=token))]
    assert user(await handshake(app, headers=headers)) == "alice"


async def test_custom_header_name_and_type() -> None:
    app, auth = make_app(["headers"], JWT_HEADER_NAME="X-Auth", JWT_HEADER_TYPE="Token")
    token = auth.create_access_token("alice")
    assert user(await handshake(app, headers=[("x-auth", f"Token {token}")])) == "alice"
    missing = await handshake(app, headers=[("authorization", f"Bearer {token}")])
    assert refused(missing) == (401, "MissingTokenError")


async def test_cookie_with_its_configured_name() -> None:
    app, auth = make_app(["cookies"], JWT_ACCESS_COOKIE_NAME="sess")
    token = auth.create_access_token("alice")
    headers = [("cookie", f"sess={token}"), ("origin", ORIGIN)]
    assert user(await handshake(app, headers=headers)) == "alice"
    other_name = [("cookie", f"access_token_cookie={token}"), ("origin", ORIGIN)]
    assert refused(await handshake(app, headers=other_name)) == (401, "MissingTokenError")


async def test_empty_cookie_is_no_token() -> None:
    app, _ = make_app(["cookies", "query"])
    connection = await handshake(
        app, headers=[("cookie", "access_token_cookie="), ("origin", ORIGIN)]
    )
    assert refused(connection) == (401, "MissingTokenError")
    assert "cookie 'access_token_cookie' or query parameter 'token'" in connection.body["message"]


async def test_ticket_parameter_with_its_configured_name() -> None:
    app, auth = make_app(["ticket"], JWT_WS_TICKET_QUERY_NAME="t")
    token = auth.create_access_token("alice")
    ticket = await auth.create_ws_ticket(auth._decode_token(token), token=token)
    assert user(await handshake(app, query=f"t={ticket}")) == "alice"
    unknown = await handshake(app, query="t=made-up")
    assert refused(unknown) == (401, "InvalidTicketError")


# The subprotocol transport ----------------------------------------------------------------------


async def test_subprotocol_token_is_hidden_and_never_accepted() -> None:
    app, auth = make_app(["subprotocol"])
    token = auth.create_access_token("alice")
    connection = await handshake(app, subprotocols=[f"authx.bearer.{token}", "chat.v1"])
    assert user(connection) == "alice"
    # The app saw only the application protocol, and AuthX accepted with it.
    assert connection.messages[0]["offered"] == ["chat.v1"]
    assert connection.subprotocol == "chat.v1"
    assert token not in json.dumps(connection.sent, default=str)


async def test_subprotocol_token_alone_accepts_without_a_protocol() -> None:
    app, auth = make_app(["subprotocol"])
    token = auth.create_access_token("alice")
    connection = await handshake(app, subprotocols=[f"authx.bearer.{token}"])
    assert user(connection) == "alice"
    assert connection.subprotocol is None
    assert connection.messages[0]["offered"] == []


async def test_endpoint_choosing_the_token_protocol_gets_the_application_one() -> None:
    app, auth = make_app(["subprotocol"])
    token = auth.create_access_token("alice")
    offered = [f"authx.bearer.{token}", "chat.v1", "chat.v2"]
    query = f"protocol=authx.bearer.{token}"
    connection = await handshake(app, "/ws/chosen", query, subprotocols=offered)
    assert user(connection) == "alice"
    assert connection.subprotocol == "chat.v1"


async def test_endpoint_choice_of_an_application_protocol_is_kept() -> None:
    app, auth = make_app(["subprotocol"])
    token = auth.create_access_token("alice")
    offered = [f"authx.bearer.{token}", "chat.v1", "chat.v2"]
    connection = await handshake(app, "/ws/chosen", "protocol=chat.v2", subprotocols=offered)
    assert connection.subprotocol == "chat.v2"


async def test_second_token_protocol_is_hidden_too() -> None:
    app, auth = make_app(["subprotocol"])
    token = auth.create_access_token("alice")
    offered = ["chat.v1", f"authx.bearer.{token}", "authx.bearer.other"]
    connection = await handshake(app, subprotocols=offered)
    assert user(connection) == "alice"
    assert connection.messages[0]["offered"] == ["chat.v1"]


async def test_other_subprotocols_carry_no_token() -> None:
    app, _ = make_app(["subprotocol"])
    connection = await handshake(app, subprotocols=["chat.v1", "authx.bearerX"])
    assert refused(connection) == (401, "MissingTokenError")


# First-message authentication -------------------------------------------------------------------


async def first_message(app: FastAPI, text: str | None, **options: Any) -> Connection:
    connection = await open_connection(app, scope_for(**options))
    await connection.wait_for("websocket.accept")
    if text is not None:
        await connection.send_text(text)
    await connection.wait_for("websocket.send", "websocket.close")
    return await finish(connection)


async def test_first_message_authenticates() -> None:
    app, auth = make_app(["message"])
    token = auth.create_access_token("alice")
    connection = await first_message(app, json.dumps({"type": "authx.auth", "token": token}))
    assert user(connection) == "alice"
    # One accept only: the endpoint's own accept() did not send another.
    assert [m["type"] for m in connection.sent].count("websocket.accept") == 1


async def test_first_message_with_a_custom_prefix() -> None:
    app, auth = make_app(["message"], JWT_WS_MESSAGE_PREFIX="app.")
    token = auth.create_access_token("alice")
    connection = await first_message(app, json.dumps({"type": "app.auth", "token": token}))
    assert user(connection) == "alice"
    other = await first_message(app, json.dumps({"type": "authx.auth", "token": token}))
    assert other.close == (4001, "invalid_token")


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        '{"type": "authx.auth"}',
        '{"type": "authx.auth", "token": 7}',
        '{"type": "authx.auth", "token": ""}',
        '{"type": "authx.refresh", "token": "x"}',
        "[1, 2]",
    ],
)
async def test_anything_else_first_is_refused(text: str) -> None:
    app, _ = make_app(["message"])
    connection = await first_message(app, text)
    assert connection.close is not None
    assert connection.close[0] == 4001


async def test_first_message_with_a_bad_token_is_refused() -> None:
    app, _ = make_app(["message"])
    connection = await first_message(app, '{"type": "authx.auth", "token": "garbage"}')
    assert connection.close is not None
    assert connection.close[0] == 4001


async def test_no_first_message_in_time_closes_with_4008() -> None:
    app, _ = make_app(["message"], JWT_WS_AUTH_MESSAGE_TIMEOUT=0.05)
    connection = await first_message(app, None)
    assert connection.close == (4008, "auth_timeout")


async def test_client_leaving_before_authenticating_gets_nothing_more() -> None:
    app, _ = make_app(["message"])
    connection = await open_connection(app, scope_for())
    await connection.wait_for("websocket.accept")
    await connection.disconnect()
    assert [m["type"] for m in connection.sent] == ["websocket.accept"]


async def test_first_message_accept_offers_the_application_protocol() -> None:
    app, auth = make_app(["message"])
    token = auth.create_access_token("alice")
    text = json.dumps({"type": "authx.auth", "token": token})
    connection = await first_message(app, text, subprotocols=["chat.v1"])
    assert connection.subprotocol == "chat.v1"


# Order, and what a handshake without a token is told ----------------------------------------------


@pytest.mark.parametrize(
    ("locations", "winner"),
    [(["headers", "query"], "by-header"), (["query", "headers"], "by-query")],
)
async def test_first_location_with_a_token_wins(locations: list[str], winner: str) -> None:
    app, auth = make_app(locations)
    by_header, by_query = (
        auth.create_access_token("by-header"),
        auth.create_access_token("by-query"),
    )
    connection = await handshake(
        app, query=f"token={by_query}", headers=[("authorization", f"Bearer {by_header}")]
    )
    assert user(connection) == winner


async def test_missing_token_names_every_place_tried() -> None:
    app, _ = make_app(
        ["query", "headers", "subprotocol", "cookies", "ticket"], JWT_QUERY_STRING_NAME="access"
    )
    connection = await handshake(app)
    assert refused(connection) == (401, "MissingTokenError")
    assert connection.body["message"] == (
        "Missing token in WebSocket query parameter 'access' or 'Authorization' header or "
        "'authx.bearer.' subprotocol or cookie 'access_token_cookie' or ticket parameter 'ticket'"
    )


@pytest.mark.parametrize("mode", ["deny", "close"])
async def test_missing_token_rejection_modes(mode: str) -> None:
    app, _ = make_app(["query"], JWT_WS_REJECTION=mode)
    connection = await handshake(app)
    if mode == "deny":
        assert refused(connection) == (401, "MissingTokenError")
    else:
        assert connection.close is not None
        assert connection.close[0] == 4001


@pytest.mark.parametrize("place", ["query", "headers", "subprotocol", "cookies", "message"])
async def test_token_over_the_size_limit_is_refused_everywhere(place: str) -> None:
    app, auth = make_app([place], JWT_MAX_TOKEN_SIZE=600)
    token = auth.create_access_token("alice", data={"pad": "x" * 600})
    assert len(token) > 600
    options: dict[str, Any] = {}
    query = ""
    if place == "query":
        query = f"token={token}"
    elif place == "headers":
        options["headers"] = [("authorization", f"Bearer {token}")]
    elif place == "subprotocol":
        options["subprotocols"] = [f"authx.bearer.{token}"]
    elif place == "cookies":
        options["headers"] = [("cookie", f"access_token_cookie={token}"), ("origin", ORIGIN)]
    if place == "message":
        connection = await first_message(app, json.dumps({"type": "authx.auth", "token": token}))
        assert connection.close is not None
        assert connection.close[0] == 4001
        return
    connection = await handshake(app, query=query, **options)
    assert refused(connection) == (401, "TokenTooLargeError")


async def test_token_at_the_size_limit_is_accepted() -> None:
    _, auth = make_app(["query"])
    token = auth.create_access_token("alice")
    app_at_limit, _ = make_app(["query"], JWT_MAX_TOKEN_SIZE=len(token))
    assert user(await handshake(app_at_limit, query=f"token={token}")) == "alice"
    app_below, _ = make_app(["query"], JWT_MAX_TOKEN_SIZE=len(token) - 1)
    assert refused(await handshake(app_below, query=f"token={token}")) == (
        401,
        "TokenTooLargeError",
    )


async def test_refresh_token_does_not_open_a_websocket() -> None:
    app, auth = make_app(["query"])
    token = auth.create_refresh_token("alice")
    assert refused(await handshake(app, query=f"token={token}")) == (
        401,
        "AccessTokenRequiredError",
    )


@pytest.mark.parametrize(("place", "session"), [("query", False), ("message", True)])
async def test_first_message_connections_always_get_a_session(place: str, session: bool) -> None:
    """Without lifetime enforcement only subprotocol and first-message sockets get a live
    session (they were accepted by AuthX, so AuthX must be able to close them)."""
    app, auth = make_app([place], JWT_WS_ENFORCE_LIFETIME=False)
    token = auth.create_access_token("alice")
    if place == "message":
        connection = await open_connection(app, scope_for())
        await connection.wait_for("websocket.accept")
        await connection.send_text(json.dumps({"type": "authx.auth", "token": token}))
        await connection.wait_for("websocket.send")
    else:
        connection = await connect(app, query=f"token={token}")
    assert user(connection) == "alice"
    assert len(auth.active_connections("alice")) == (1 if session else 0)
    await connection.disconnect()


async def test_no_place_to_look_is_said_so() -> None:
    app, _ = make_app([])
    connection = await handshake(app, query="token=x")
    assert refused(connection) == (401, "MissingTokenError")
    assert connection.body["message"] == "Missing token in WebSocket handshake"
