"""WebSocket handshake authentication through a real uvicorn server, in both rejection modes."""

from __future__ import annotations

import urllib.request
from datetime import timedelta

import pytest

from authx import AuthX, AuthXConfig
from tests.conftest import SECRET
from tests.websocket.client import Outcome, handshake

APP = "tests.apps.ws_app:app"
issuer = AuthX(AuthXConfig(JWT_SECRET_KEY=SECRET))
other_key = AuthX(AuthXConfig(JWT_SECRET_KEY="another-secret-key-that-is-long-enough-too"))


def access(sub: str = "alice", **kwargs: object) -> str:
    return issuer.create_access_token(uid=sub, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(params=["deny", "close"])
def server(request: pytest.FixtureRequest, live_server_factory):  # type: ignore[no-untyped-def]
    return live_server_factory(APP, JWT_SECRET_KEY=SECRET, JWT_WS_REJECTION=request.param)


#: The reason token of each error whose token is not ``invalid_token``.
REASONS = {
    "TokenExpiredError": "token_expired",
    "RevokedTokenError": "token_revoked",
    "InsufficientScopeError": "insufficient_scope",
}
#: The default close code of each reason token.
CLOSE_CODES = {
    "invalid_token": 4001,
    "token_expired": 4002,
    "insufficient_scope": 4003,
    "token_revoked": 4004,
}


def assert_rejected(outcome: Outcome, mode: str, error_type: str, status: int = 401) -> None:
    reason = REASONS.get(error_type, "invalid_token")
    if mode == "deny":
        assert outcome.kind == "denied", outcome
        assert outcome.status == status
        assert outcome.body["error_type"] == error_type
        assert outcome.body["reason"] == reason
        assert outcome.headers["www-authenticate"].startswith("Bearer")
    else:
        assert outcome.kind == "closed", outcome
        assert (outcome.code, outcome.reason) == (CLOSE_CODES[reason], reason)


def mode_of(server) -> str:  # type: ignore[no-untyped-def]
    return server.env["JWT_WS_REJECTION"]


async def test_valid_token_by_query(server) -> None:  # type: ignore[no-untyped-def]
    token = access()
    outcome = await handshake(f"{server.ws}/ws?token={token}")
    assert outcome.kind == "open"
    assert outcome.message == {"user": "alice", "scopes": None}
    log = server.assert_log_clean(token)
    assert "token=[redacted]" in log


@pytest.mark.parametrize("header", ["Bearer {t}", "bearer {t}", "{t}"])
async def test_valid_token_by_header(server, header: str) -> None:  # type: ignore[no-untyped-def]
    token = access("bob")
    outcome = await handshake(f"{server.ws}/ws", headers={"Authorization": header.format(t=token)})
    assert outcome.message["user"] == "bob"
    server.assert_log_clean(token)


async def test_query_wins_over_header(server) -> None:  # type: ignore[no-untyped-def]
    query, header = access("from-query"), access("from-header")
    outcome = await handshake(
        f"{server.ws}/ws?token={query}", headers={"Authorization": f"Bearer {header}"}
    )
    assert outcome.message["user"] == "from-query"
    # The first token found is used, even when it is the bad one.
    outcome = await handshake(
        f"{server.ws}/ws?token=garbage", headers={"Authorization": f"Bearer {header}"}
    )
    assert_rejected(outcome, mode_of(server), "JWTDecodeError")
    server.assert_log_clean(query, header)


def _expired() -> str:
    return access(expiry=timedelta(seconds=-5))


def _refresh() -> str:
    return issuer.create_refresh_token(uid="alice")


def _wrong_key() -> str:
    return other_key.create_access_token(uid="alice")


@pytest.mark.parametrize(
    ("make_token", "error_type"),
    [
        (lambda: "garbage", "JWTDecodeError"),
        (lambda: "a.b.c", "JWTDecodeError"),
        (_expired, "TokenExpiredError"),
        (_wrong_key, "TokenInvalidSignatureError"),
        (_refresh, "AccessTokenRequiredError"),
    ],
    ids=["garbage", "malformed", "expired", "wrong-key", "refresh"],
)
async def test_bad_tokens_are_rejected(server, make_token, error_type: str) -> None:  # type: ignore[no-untyped-def]
    token = make_token()
    outcome = await handshake(f"{server.ws}/ws?token={token}")
    assert_rejected(outcome, mode_of(server), error_type)
    if mode_of(server) == "deny":
        assert token not in str(outcome.body)
    log = server.assert_log_clean(token)
    assert error_type in log  # the one-line rejection record


@pytest.mark.parametrize("mode", ["deny", "close"])
async def test_oversized_token_is_not_decoded(live_server_factory, mode: str) -> None:  # type: ignore[no-untyped-def]
    # uvicorn refuses request lines over 8 KiB itself, so the bound is lowered to
    # show that a *valid* token above it is refused before any decoding.
    server = live_server_factory(
        APP, JWT_SECRET_KEY=SECRET, JWT_WS_REJECTION=mode, JWT_MAX_TOKEN_SIZE="1024"
    )
    big = access(data={"pad": "x" * 1500})
    small = access()
    assert (await handshake(f"{server.ws}/ws?token={small}")).kind == "open"
    outcome = await handshake(f"{server.ws}/ws?token={big}")
    assert_rejected(outcome, mode, "TokenTooLargeError")
    outcome = await handshake(f"{server.ws}/ws", headers={"Authorization": f"Bearer {big}"})
    assert_rejected(outcome, mode, "TokenTooLargeError")
    server.assert_log_clean(big, small)


async def test_missing_token_names_where_it_looked(server) -> None:  # type: ignore[no-untyped-def]
    outcome = await handshake(f"{server.ws}/ws")
    assert_rejected(outcome, mode_of(server), "MissingTokenError")
    if mode_of(server) == "deny":
        assert "'token'" in outcome.body["message"]
        assert "'Authorization'" in outcome.body["message"]
        assert outcome.headers["www-authenticate"] == "Bearer"
    server.assert_log_clean()


@pytest.mark.parametrize("blocklist", ["sync", "async"])
async def test_revoked_token(live_server_factory, blocklist: str) -> None:  # type: ignore[no-untyped-def]
    server = live_server_factory(APP, JWT_SECRET_KEY=SECRET, APP_BLOCKLIST=blocklist)
    token = access()
    assert (await handshake(f"{server.ws}/ws?token={token}")).kind == "open"
    request = urllib.request.Request(f"{server.http}/revoke?token={token}", method="POST")
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
    outcome = await handshake(f"{server.ws}/ws?token={token}")
    assert_rejected(outcome, "deny", "RevokedTokenError")
    server.assert_log_clean(token)


async def test_scopes_granted_and_denied(server) -> None:  # type: ignore[no-untyped-def]
    admin = access(scopes=["admin:*"])
    outcome = await handshake(f"{server.ws}/ws/admin?token={admin}")
    assert outcome.message == {"admin": True, "user": "alice"}
    user = access(scopes=["read"])
    outcome = await handshake(f"{server.ws}/ws/admin?token={user}")
    assert_rejected(outcome, mode_of(server), "InsufficientScopeError", status=403)
    if mode_of(server) == "deny":
        assert 'error="insufficient_scope"' in outcome.headers["www-authenticate"]
    server.assert_log_clean(admin, user)


async def test_manual_pattern_with_ws_reject(server) -> None:  # type: ignore[no-untyped-def]
    token = access()
    assert (await handshake(f"{server.ws}/ws/manual?token={token}")).message == {"user": "alice"}
    outcome = await handshake(f"{server.ws}/ws/manual?token={_expired()}")
    assert_rejected(outcome, mode_of(server), "TokenExpiredError")
    server.assert_log_clean(token)


@pytest.mark.parametrize(
    ("env", "url", "headers"),
    [
        ({"JWT_QUERY_STRING_NAME": "access"}, "/ws?access={t}", None),
        ({"JWT_HEADER_NAME": "X-Auth"}, "/ws", {"X-Auth": "Bearer {t}"}),
        ({"JWT_HEADER_TYPE": "JWT"}, "/ws", {"Authorization": "JWT {t}"}),
        ({"JWT_HEADER_TYPE": ""}, "/ws", {"Authorization": "{t}"}),
    ],
    ids=["query-name", "header-name", "header-type", "raw-header"],
)
async def test_custom_names(live_server_factory, env, url, headers) -> None:  # type: ignore[no-untyped-def]
    server = live_server_factory(APP, JWT_SECRET_KEY=SECRET, **env)
    token = access("carol")
    filled = {k: v.format(t=token) for k, v in (headers or {}).items()}
    outcome = await handshake(server.ws + url.format(t=token), headers=filled or None)
    assert outcome.message["user"] == "carol"
    # The default query parameter is no longer looked at when renamed.
    if "JWT_QUERY_STRING_NAME" in env:
        outcome = await handshake(f"{server.ws}/ws?token={token}")
        assert outcome.kind == "denied"
        assert "'access'" in outcome.body["message"]
    server.assert_log_clean(token)
