"""What ``authenticate_websocket`` tells the application: where the token was found,
the raw token (none for a ticket made from a payload), and whether a live session
watches the connection."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from authx import AuthX, AuthXConfig
from tests.conftest import SECRET
from tests.websocket.asgi import Connection, connect

ORIGIN = "http://app.test"


def make_app(locations: list[str]) -> tuple[FastAPI, AuthX[Any]]:
    auth = AuthX(
        config=AuthXConfig(
            JWT_SECRET_KEY=SECRET,
            JWT_WS_TOKEN_LOCATION=locations,
            JWT_WS_ALLOWED_ORIGINS=[ORIGIN],
            JWT_WS_ENFORCE_LIFETIME=False,
        )
    )
    app = FastAPI()
    auth.handle_errors(app)

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        result = await auth.authenticate_websocket(websocket)
        # Authenticated once: every later call reads the same result (a ticket is single-use).
        same = await auth.authenticate_websocket(websocket) is result
        await websocket.accept(subprotocol=websocket.query_params.get("protocol"))
        await websocket.send_json(
            {
                "location": result.location,
                "token": result.token,
                "session": result.session is not None,
                "same": same,
            }
        )
        with contextlib.suppress(WebSocketDisconnect):
            await websocket.receive_text()

    return app, auth


async def opened(app: FastAPI, query: str = "", **options: Any) -> dict[str, Any]:
    connection: Connection = await connect(
        app, query=query, headers=[("origin", ORIGIN)], **options
    )
    assert connection.kind == "open", connection.sent
    await connection.disconnect()
    return dict(connection.messages[0])


async def test_a_query_token_has_no_session_without_lifetime_enforcement() -> None:
    app, auth = make_app(["query"])
    token = auth.create_access_token("alice")
    assert await opened(app, f"token={token}") == {
        "location": "query",
        "token": token,
        "session": False,
        "same": True,
    }


async def test_a_subprotocol_token_always_has_a_session() -> None:
    app, auth = make_app(["subprotocol"])
    token = auth.create_access_token("alice")
    result = await opened(app, subprotocols=[f"authx.bearer.{token}"])
    assert result == {
        "location": "subprotocol",
        "token": token,
        "session": True,
        "same": True,
    }


async def test_a_ticket_made_from_a_payload_has_no_raw_token() -> None:
    app, auth = make_app(["ticket"])
    payload = auth._decode_token(auth.create_access_token("alice"))
    ticket = await auth.create_ws_ticket(payload)
    assert await opened(app, f"ticket={ticket}") == {
        "location": "ticket",
        "token": "",
        "session": False,
        "same": True,
    }


def test_an_override_of_ws_auth_required_replaces_ws_auth_required() -> None:
    """``app.dependency_overrides[auth._ws_auth_required]`` (AuthX code) also covers
    ``WS_AUTH_REQUIRED``: both are the same authenticator's bound method."""
    from fastapi.testclient import TestClient
    from starlette.testclient import WebSocketDenialResponse

    from authx import TokenPayload

    auth = AuthX(config=AuthXConfig(JWT_SECRET_KEY=SECRET))
    app = FastAPI()
    auth.handle_errors(app)

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
        await websocket.accept()
        await websocket.send_text(payload.sub)
        await websocket.close()

    assert auth.WS_AUTH_REQUIRED.dependency == auth._ws_auth_required
    app.dependency_overrides[auth._ws_auth_required] = lambda: TokenPayload(sub="stub")
    with TestClient(app) as client, client.websocket_connect("/ws") as ws:
        assert ws.receive_text() == "stub"  # no token at all: the override answered
    app.dependency_overrides.clear()
    with (
        TestClient(app) as client,
        pytest.raises(WebSocketDenialResponse),
        client.websocket_connect("/ws"),
    ):
        pass  # pragma: no cover - refused: no token and no override
