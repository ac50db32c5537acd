"""Each WebSocket transport in a real browser: what `CloseEvent` shows the page."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import SECRET

APP = "tests.apps.transports_app:app"

OPEN_SOCKET = """
async ({url, protocols, first, timeout}) => new Promise((resolve) => {
  const out = {opened: false, messages: [], code: null, reason: null, protocol: null};
  const ws = protocols ? new WebSocket(url, protocols) : new WebSocket(url);
  const timer = setTimeout(() => { out.timedOut = true; ws.close(); resolve(out); }, timeout);
  ws.onopen = () => { out.opened = true; out.protocol = ws.protocol; if (first) ws.send(first); };
  ws.onmessage = (event) => {
    out.messages.push(JSON.parse(event.data));
    // Exchange one more message with endpoints that echo, then close.
    if (out.messages.length === 1 && out.messages[0].scopes !== undefined) ws.send("ping");
    else ws.close(1000);
  };
  ws.onclose = (event) => {
    clearTimeout(timer); out.code = event.code; out.reason = event.reason; resolve(out);
  };
})
"""

LOGIN = """
async (username) => {
  const response = await fetch("/login", {method: "POST", credentials: "include",
    headers: {"content-type": "application/json"}, body: JSON.stringify({username})});
  return (await response.json()).access_token;
}
"""

TICKET = """
async (token) => {
  const response = await fetch("/ws-ticket", {method: "POST",
    headers: {"Authorization": "Bearer " + token}});
  return (await response.json()).ticket;
}
"""


def serve(live_server_factory, locations: str, **env: str):  # type: ignore[no-untyped-def]
    return live_server_factory(
        APP,
        JWT_SECRET_KEY=SECRET,
        JWT_WS_TOKEN_LOCATION=locations,
        JWT_WS_REJECTION="close",
        JWT_WS_ALLOWED_ORIGINS='["http://placeholder.invalid"]',
        JWT_WS_AUTH_MESSAGE_TIMEOUT="1",
        JWT_COOKIE_SECURE="false",
        JWT_TOKEN_LOCATION='["headers", "cookies"]',
        **env,
    )


def auth_message(token: str) -> str:
    return json.dumps({"type": "authx.auth", "token": token})


def connect(page: Any, server: Any, path: str, **options: Any) -> dict[str, Any]:
    args = {"url": server.ws + path, "protocols": None, "first": None, "timeout": 6000}
    args.update(options)
    result: dict[str, Any] = page.evaluate(OPEN_SOCKET, args)
    return result


def opened_as(result: dict[str, Any], user: str) -> None:
    assert result["opened"], result
    assert result["messages"][0]["user"] == user, result
    assert result["messages"][1:] == [{"echo": "ping"}], result
    assert result["code"] == 1000  # closed by the page itself


def test_query_parameter(context, live_server_factory) -> None:  # type: ignore[no-untyped-def]
    server = serve(live_server_factory, '["query"]')
    page = context.new_page()
    page.goto(server.http + "/")
    token = page.evaluate(LOGIN, "query-user")
    opened_as(connect(page, server, f"/ws?token={token}"), "query-user")
    rejected = connect(page, server, "/ws?token=not-a-token")
    assert (rejected["code"], rejected["reason"]) == (4001, "invalid_token")
    assert connect(page, server, "/ws")["code"] == 4001
    server.assert_log_clean(token)


def test_subprotocol(context, live_server_factory) -> None:  # type: ignore[no-untyped-def]
    server = serve(live_server_factory, '["subprotocol"]')
    page = context.new_page()
    page.goto(server.http + "/")
    token = page.evaluate(LOGIN, "proto-user")
    result = connect(page, server, "/ws", protocols=[f"authx.bearer.{token}", "chat.v1"])
    opened_as(result, "proto-user")
    assert result["protocol"] == "chat.v1"
    rejected = connect(page, server, "/ws", protocols=["authx.bearer.nope", "chat.v1"])
    assert rejected["code"] == 4001
    server.assert_log_clean(token)


def test_cookie_same_origin_and_cross_origin(context, live_server_factory) -> None:  # type: ignore[no-untyped-def]
    server = serve(live_server_factory, '["cookies"]')
    other = live_server_factory(APP, JWT_SECRET_KEY=SECRET, SECOND_ORIGIN="1")
    page = context.new_page()
    page.goto(server.http + "/")
    page.evaluate(f"fetch('/test/allow-origin?origin={server.http}', {{method: 'POST'}})")
    assert connect(page, server, "/ws")["code"] == 4001  # no cookie yet
    token = page.evaluate(LOGIN, "cookie-user")
    opened_as(connect(page, server, "/ws"), "cookie-user")
    # A page of another origin (same host, other port: the cookie is sent along)
    # cannot open a cookie-authenticated connection.
    page.goto(other.http + "/")
    hijack = connect(page, server, "/ws")
    assert not hijack["messages"]
    assert (hijack["code"], hijack["reason"]) == (4005, "origin_not_allowed")
    server.assert_log_clean(token)


def test_ticket_works_once(context, live_server_factory) -> None:  # type: ignore[no-untyped-def]
    server = serve(live_server_factory, '["ticket"]')
    page = context.new_page()
    page.goto(server.http + "/")
    token = page.evaluate(LOGIN, "ticket-user")
    ticket = page.evaluate(TICKET, token)
    opened_as(connect(page, server, f"/ws?ticket={ticket}"), "ticket-user")
    reused = connect(page, server, f"/ws?ticket={ticket}")
    assert (reused["opened"], reused["code"]) == (True, 4001)
    assert not reused["messages"]
    server.assert_log_clean(token, ticket)


def test_first_message(context, live_server_factory) -> None:  # type: ignore[no-untyped-def]
    server = serve(live_server_factory, '["message"]')
    page = context.new_page()
    page.goto(server.http + "/")
    token = page.evaluate(LOGIN, "message-user")
    opened_as(connect(page, server, "/ws", first=auth_message(token)), "message-user")
    assert connect(page, server, "/ws", first=auth_message("bad"))["code"] == 4001
    assert connect(page, server, "/ws", first="hello")["code"] == 4001
    assert connect(page, server, "/ws")["code"] == 4008
    server.assert_log_clean(token)


@pytest.mark.parametrize("locations", ['["query"]', '["subprotocol"]', '["message"]'])
def test_scopes_denied_is_4003(context, live_server_factory, locations: str) -> None:  # type: ignore[no-untyped-def]
    server = serve(live_server_factory, locations)
    page = context.new_page()
    page.goto(server.http + "/")
    token = page.evaluate(LOGIN, "reader")
    options: dict[str, Any] = {
        '["query"]': {"path": f"/ws/admin?token={token}"},
        '["subprotocol"]': {
            "path": "/ws/admin",
            "protocols": [f"authx.bearer.{token}", "authx"],
        },
        '["message"]': {
            "path": "/ws/admin",
            "first": auth_message(token),
        },
    }[locations]
    result = connect(page, server, options.pop("path"), **options)
    assert result["code"] == 4003
    server.assert_log_clean(token)
