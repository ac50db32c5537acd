"""AuthXBackend behind Starlette's own AuthenticationMiddleware, in-process.

``request.user`` and ``request.auth`` from a verified token; no token is
anonymous (``@requires`` answers as Starlette users expect); a bad token is
AuthX's 401 with its JSON body and challenge; AuthX's wildcard scopes hold for
``@requires``. The same through a real server is in test_live_server.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.authentication import AuthenticationError, requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from authx import AuthX, AuthXConfig, TokenPayload
from authx._starlette_backend import take_failure
from authx.starlette import AuthXBackend, AuthXCredentials, AuthXUser, GrantedScopes
from tests.conftest import SECRET
from tests.websocket.asgi import scope_for

ORIGIN = "http://app.test"


def make_app(**settings: Any) -> tuple[TestClient, AuthX[Any]]:
    config: dict[str, Any] = {"JWT_SECRET_KEY": SECRET, **settings}
    auth = AuthX(config=AuthXConfig(**config))

    def who(connection: Request | WebSocket) -> dict[str, Any]:
        return {
            "authenticated": connection.user.is_authenticated,
            "user": connection.user.display_name or None,
            "scopes": list(connection.auth.scopes),
        }

    async def me(request: Request) -> JSONResponse:
        return JSONResponse(who(request))

    @requires("read")
    async def read(request: Request) -> JSONResponse:
        return JSONResponse({"user": request.user.identity})

    @requires(["admin:users", "read"])
    async def admin(request: Request) -> JSONResponse:
        return JSONResponse({"admin": request.user.identity})

    @requires("read", redirect="me")
    async def page(request: Request) -> JSONResponse:
        return JSONResponse({"page": True})

    @requires("read")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(who(websocket))

    async def ws_anonymous(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(who(websocket))

    app = Starlette(
        routes=[
            Route("/me", me, name="me", methods=["GET", "POST"]),
            Route("/read", read),
            Route("/admin", admin),
            Route("/page", page),
            WebSocketRoute("/ws", ws),
            WebSocketRoute("/ws/anonymous", ws_anonymous),
        ],
        middleware=[
            Middleware(
                AuthenticationMiddleware,
                backend=AuthXBackend(auth),
                on_error=AuthXBackend.on_error,
            )
        ],
    )
    return TestClient(app), auth


@pytest.fixture
def client_auth() -> tuple[TestClient, AuthX[Any]]:
    return make_app()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_no_token_is_anonymous(client_auth: tuple[TestClient, AuthX[Any]]) -> None:
    client, _ = client_auth
    assert client.get("/me").json() == {"authenticated": False, "user": None, "scopes": []}
    assert client.get("/read").status_code == 403
    redirected = client.get("/page", follow_redirects=False)
    assert redirected.status_code == 303
    assert redirected.headers["location"].startswith("http://testserver/me?next=")


def test_a_valid_token_is_the_user(client_auth: tuple[TestClient, AuthX[Any]]) -> None:
    client, auth = client_auth
    token = auth.create_access_token(uid="alice", scopes=["read", "write"])
    assert client.get("/me", headers=bearer(token)).json() == {
        "authenticated": True,
        "user": "alice",
        "scopes": ["read", "write"],
    }
    assert client.get("/read", headers=bearer(token)).json() == {"user": "alice"}
    assert client.get("/admin", headers=bearer(token)).status_code == 403


def test_requires_follows_authx_wildcards(client_auth: tuple[TestClient, AuthX[Any]]) -> None:
    client, auth = client_auth
    token = auth.create_access_token(uid="alice", scopes=["admin:*", "read"])
    assert client.get("/admin", headers=bearer(token)).json() == {"admin": "alice"}
    narrow = auth.create_access_token(uid="bob", scopes=["admin", "read"])
    assert client.get("/admin", headers=bearer(narrow)).status_code == 403


def expired(auth: AuthX[Any]) -> str:
    return auth.create_access_token(uid="alice", expiry=timedelta(seconds=-5))


@pytest.mark.parametrize(
    ("make_token", "error_type", "reason"),
    [
        (lambda auth: "not-a-token", "JWTDecodeError", "invalid_token"),
        (expired, "TokenExpiredError", "token_expired"),
        (lambda auth: auth.create_refresh_token(uid="alice"), "AccessTokenRequiredError", None),
        (
            lambda auth: AuthX(config=AuthXConfig(JWT_SECRET_KEY="x" * 64)).create_access_token(
                uid="alice"
            ),
            "TokenInvalidSignatureError",
            "invalid_token",
        ),
    ],
)
def test_a_bad_token_is_authx_401(
    client_auth: tuple[TestClient, AuthX[Any]], make_token: Any, error_type: str, reason: str | None
) -> None:
    client, auth = client_auth
    response = client.get("/me", headers=bearer(make_token(auth)))
    assert response.status_code == 401
    body = response.json()
    assert body["error_type"] == error_type
    assert body["reason"] == (reason or "invalid_token")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="invalid_token"')
    assert f'reason="{body["reason"]}"' in challenge


async def test_revoked_tokens_are_401(client_auth: tuple[TestClient, AuthX[Any]]) -> None:
    client, auth = client_auth
    in_store = auth.create_access_token(uid="alice", scopes=["read"])
    await auth.revoke_token(in_store)
    blocked = auth.create_access_token(uid="bob", scopes=["read"])
    auth.set_token_blocklist(lambda token: token == blocked)
    for token in (in_store, blocked):
        response = client.get("/read", headers=bearer(token))
        assert response.status_code == 401
        assert response.json()["error_type"] == "RevokedTokenError"
    fine = auth.create_access_token(uid="carol", scopes=["read"])
    assert client.get("/read", headers=bearer(fine)).json() == {"user": "carol"}


def test_message_overrides_apply(client_auth: tuple[TestClient, AuthX[Any]]) -> None:
    client, auth = client_auth
    auth.MSG_JWTDecodeError = "Nope"  # type: ignore[misc]
    response = client.get("/me", headers=bearer("garbage"))
    assert response.json()["message"] == "Nope"


def test_cookies_keep_the_csrf_double_submit() -> None:
    client, auth = make_app(JWT_TOKEN_LOCATION=["cookies"])
    token = auth.create_access_token(uid="alice")
    csrf = auth._decode_token(token).csrf
    client.cookies.set("access_token_cookie", token)
    assert client.get("/me").json()["user"] == "alice"
    refused = client.post("/me")
    assert (refused.status_code, refused.json()["error_type"]) == (401, "MissingCSRFTokenError")
    assert client.post("/me", headers={"X-CSRF-TOKEN": str(csrf)}).json()["user"] == "alice"


def test_the_json_body_is_left_to_the_endpoint() -> None:
    """A middleware must not consume the body: a token there is not looked at."""
    client, auth = make_app(JWT_TOKEN_LOCATION=["json", "headers"])
    token = auth.create_access_token(uid="alice")
    answer = client.post("/me", json={"access_token": token})
    assert answer.json()["authenticated"] is False
    assert client.post("/me", json={}, headers=bearer(token)).json()["user"] == "alice"


def test_websocket_requires(client_auth: tuple[TestClient, AuthX[Any]]) -> None:
    client, auth = client_auth
    token = auth.create_access_token(uid="alice", scopes=["read"])
    with client.websocket_connect(f"/ws?token={token}") as ws:
        assert ws.receive_json() == {"authenticated": True, "user": "alice", "scopes": ["read"]}
    for url in ("/ws", f"/ws?token={auth.create_access_token(uid='bob')}", "/ws?token=bad"):
        with pytest.raises(WebSocketDisconnect), client.websocket_connect(url) as ws:
            ws.receive_json()
    assert auth.live_stats()["connections"] == 0


def test_websocket_transports_of_the_ws_settings() -> None:
    client, auth = make_app(
        JWT_WS_TOKEN_LOCATION=["subprotocol", "cookies", "message"],
        JWT_WS_ALLOWED_ORIGINS=[ORIGIN],
    )
    token = auth.create_access_token(uid="alice", scopes=["read"])
    with client.websocket_connect("/ws", subprotocols=[f"authx.bearer.{token}", "v1"]) as ws:
        assert ws.receive_json()["user"] == "alice"
    client.cookies.set("access_token_cookie", token)
    with client.websocket_connect("/ws", headers={"Origin": ORIGIN}) as ws:
        assert ws.receive_json()["user"] == "alice"
    # A cookie from a foreign page, or a first-message token (the backend has no socket
    # to read it from), leaves the connection unauthenticated.
    with client.websocket_connect("/ws/anonymous", headers={"Origin": "http://evil.test"}) as ws:
        assert ws.receive_json()["authenticated"] is False
    client.cookies.clear()
    with client.websocket_connect("/ws/anonymous") as ws:
        assert ws.receive_json()["authenticated"] is False


def test_a_bad_websocket_token_is_unauthenticated(
    client_auth: tuple[TestClient, AuthX[Any]],
) -> None:
    client, _ = client_auth
    with client.websocket_connect("/ws/anonymous?token=bad") as ws:
        assert ws.receive_json()["authenticated"] is False


def test_on_error_keeps_starlette_default_for_other_errors() -> None:
    conn = HTTPConnection({"type": "http", "path": "/", "headers": []})
    response = AuthXBackend.on_error(conn, AuthenticationError("other backend"))
    assert (response.status_code, response.body) == (400, b"other backend")


def test_user_and_credentials_follow_the_payload() -> None:
    payload = TokenPayload(sub="alice", scopes=["chat:*"])
    user, creds = AuthXUser(payload), AuthXCredentials(payload)
    assert (user.is_authenticated, user.display_name, user.identity) == (True, "alice", "alice")
    assert user.payload is payload
    assert user.session is None
    assert repr(user) == "AuthXUser(sub='alice')"
    assert user.has_scopes("chat:read")
    assert not user.has_scopes("admin")
    assert isinstance(creds.scopes, GrantedScopes)
    assert creds.scopes == ["chat:*"]
    payload.scopes = ["chat:read"]  # an in-band refresh updates the payload in place
    assert creds.scopes == ["chat:read"]
    with pytest.raises(AttributeError):
        creds.scopes = ["admin"]


@pytest.mark.parametrize(
    ("granted", "asked", "expected"),
    [
        (["admin:*"], "admin", True),
        (["admin:*"], "admin:users:edit", True),
        (["admin:*"], "adminx", False),
        (["admin"], "admin:users", False),
        (["admin:users"], "admin:*", False),
        (["admin:*"], "admin:*", True),
        ([], "read", False),
    ],
)
def test_granted_scopes_match_as_authx_does(granted: list[str], asked: str, expected: bool) -> None:
    assert (asked in GrantedScopes(granted)) is expected
    assert 1 not in GrantedScopes(["1"])


async def test_an_anonymous_handshake_is_not_a_failed_attempt() -> None:
    """Admission charges a bad token extra, never a handshake without one."""
    auth = AuthX(
        config=AuthXConfig(
            JWT_SECRET_KEY=SECRET,
            JWT_WS_RATE_LIMIT=0.001,
            JWT_WS_RATE_BURST=4,
            JWT_WS_FAILURE_COST=2,
            JWT_WS_REFUSAL_DELAY=0,
        )
    )
    backend = AuthXBackend(auth)

    async def handshake(query: str = "") -> str | None:
        scope = scope_for(query=query)
        assert await backend.authenticate(HTTPConnection(scope)) is None
        failure = take_failure(scope)
        return None if failure is None else type(failure).__name__

    assert [await handshake() for _ in range(3)] == [None, None, None]
    assert await handshake("token=bad") == "JWTDecodeError"  # the last token, and a debt
    assert await handshake() == "RateLimitedError"


def test_an_outage_is_not_logged_again_by_on_error(caplog: pytest.LogCaptureFixture) -> None:
    # The store logs its outage once per outage; the answer to each request adds nothing.
    from authx._starlette_backend import AuthXAuthenticationError
    from authx.exceptions import StoreUnavailableError

    error = StoreUnavailableError("Revocation store unavailable")
    connection = HTTPConnection(scope_for("/me"))
    with caplog.at_level("DEBUG", logger="authx"):
        answer = AuthXBackend.on_error(connection, AuthXAuthenticationError(error, error.message))
    assert answer.status_code == 503
    assert [r for r in caplog.records if r.levelname == "WARNING"] == []
