"""Every AuthX error as a client sees it: status, JSON body and WWW-Authenticate, no secrets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from core_support import OTHER_SECRET, SECRET, bearer, build_app, cookie_header, make_auth, serve
from fastapi import FastAPI

from authx import AuthX, exceptions
from authx.token import create_token

LOCATIONS = ["headers", "cookies", "query", "json"]
ISSUER = "https://id.example"


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {
        "JWT_TOKEN_LOCATION": LOCATIONS,
        "JWT_ENCODE_ISSUER": ISSUER,
        "JWT_DECODE_ISSUER": ISSUER,
    }


@pytest.fixture
def revoked() -> set[str]:
    return set()


@pytest.fixture
def app(auth: AuthX[Any], revoked: set[str]) -> FastAPI:
    auth.set_token_blocklist(revoked.__contains__)
    return build_app(auth)


#: A request: (method, path, httpx keyword arguments) and the token it carries.
Request = tuple[str, str, dict[str, Any], str]


def _in_header(path: str, token: str) -> Request:
    return ("GET", path, {"headers": bearer(token)}, token)


def _missing(auth: AuthX[Any], revoked: set[str]) -> Request:
    return ("GET", "/access", {}, "")


def _malformed(auth: AuthX[Any], revoked: set[str]) -> Request:
    return _in_header("/access", "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2lnbmF0dXJl")


def _expired(auth: AuthX[Any], revoked: set[str]) -> Request:
    return _in_header("/access", auth.create_access_token("a", expiry=timedelta(seconds=-1)))


def _expired_in_query(auth: AuthX[Any], revoked: set[str]) -> Request:
    token = auth.create_access_token("a", expiry=timedelta(seconds=-1))
    return ("GET", "/access", {"params": {"token": token}}, token)


def _bad_signature(auth: AuthX[Any], revoked: set[str]) -> Request:
    return _in_header("/access", create_token("a", OTHER_SECRET, issuer=ISSUER))


def _bad_signature_in_json(auth: AuthX[Any], revoked: set[str]) -> Request:
    token = create_token("a", OTHER_SECRET, issuer=ISSUER)
    return ("POST", "/access", {"json": {"access_token": token}}, token)


def _audience(auth: AuthX[Any], revoked: set[str]) -> Request:
    return _in_header("/access", auth.create_access_token("a", audience="elsewhere"))


def _issuer(auth: AuthX[Any], revoked: set[str]) -> Request:
    return _in_header("/access", create_token("a", SECRET, issuer="https://evil.example"))


def _refresh_as_access(auth: AuthX[Any], revoked: set[str]) -> Request:
    return _in_header("/access", auth.create_refresh_token("a"))


def _access_as_refresh(auth: AuthX[Any], revoked: set[str]) -> Request:
    return _in_header("/refresh", auth.create_access_token("a"))


def _not_fresh(auth: AuthX[Any], revoked: set[str]) -> Request:
    return _in_header("/fresh", auth.create_access_token("a", fresh=False))


def _revoked(auth: AuthX[Any], revoked: set[str]) -> Request:
    token = auth.create_access_token("a")
    revoked.add(token)
    return _in_header("/access", token)


def _cookie_without_csrf(auth: AuthX[Any], revoked: set[str]) -> Request:
    token = auth.create_access_token("a")
    return ("POST", "/access", {"headers": cookie_header(access_token_cookie=token)}, token)


def _cookie_wrong_csrf(auth: AuthX[Any], revoked: set[str]) -> Request:
    token = auth.create_access_token("a")
    headers = {**cookie_header(access_token_cookie=token), "X-CSRF-TOKEN": "forged"}
    return ("DELETE", "/access", {"headers": headers}, token)


def _insufficient_scope(auth: AuthX[Any], revoked: set[str]) -> Request:
    return _in_header("/admin", auth.create_access_token("a", scopes=["read", "admin:posts:*"]))


SCENARIOS: list[tuple[Callable[[AuthX[Any], set[str]], Request], int, str, str, str]] = [
    (
        _missing,
        401,
        "MissingTokenError",
        "invalid_token",
        "Missing 'Bearer' in 'Authorization' header.",
    ),
    (_malformed, 401, "JWTDecodeError", "invalid_token", "Invalid Token"),
    (_expired, 401, "TokenExpiredError", "token_expired", "Token has expired"),
    (_expired_in_query, 401, "TokenExpiredError", "token_expired", "Token has expired"),
    (
        _bad_signature,
        401,
        "TokenInvalidSignatureError",
        "invalid_token",
        "Signature verification failed",
    ),
    (
        _bad_signature_in_json,
        401,
        "TokenInvalidSignatureError",
        "invalid_token",
        "Signature verification failed",
    ),
    (_audience, 401, "TokenInvalidAudienceError", "invalid_token", "Invalid audience"),
    (_issuer, 401, "TokenInvalidIssuerError", "invalid_token", "Invalid issuer"),
    (_refresh_as_access, 401, "AccessTokenRequiredError", "invalid_token", "Access token required"),
    (
        _access_as_refresh,
        401,
        "RefreshTokenRequiredError",
        "invalid_token",
        "Refresh token required",
    ),
    (_not_fresh, 401, "FreshTokenRequiredError", "invalid_token", "Fresh token required"),
    (_revoked, 401, "RevokedTokenError", "token_revoked", "Invalid token"),
    (_cookie_without_csrf, 401, "MissingCSRFTokenError", "invalid_token", "Missing CSRF token"),
    (
        _cookie_wrong_csrf,
        401,
        "CSRFError",
        "invalid_token",
        "CSRF double submit does not match",
    ),
    (
        _insufficient_scope,
        403,
        "InsufficientScopeError",
        "insufficient_scope",
        "Missing required scopes: ['admin:users:edit', 'read']. "
        "Provided: ['read', 'admin:posts:*']",
    ),
]


@pytest.mark.parametrize(
    ("scenario", "status", "error_type", "reason", "message"),
    SCENARIOS,
    ids=[s[0].__name__.strip("_") for s in SCENARIOS],
)
async def test_error_response(
    client: httpx.AsyncClient,
    auth: AuthX[Any],
    revoked: set[str],
    scenario: Callable[[AuthX[Any], set[str]], Request],
    status: int,
    error_type: str,
    reason: str,
    message: str,
) -> None:
    method, path, kwargs, token = scenario(auth, revoked)
    response = await client.request(method, path, **kwargs)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"message", "error_type", "reason"}
    assert body["error_type"] == error_type
    assert body["reason"] == reason
    assert body["message"].startswith(message)
    challenge = response.headers["WWW-Authenticate"]
    if error_type == "MissingTokenError":
        # RFC 6750 3.1: no error code when the request had no authentication at all.
        assert challenge == "Bearer"
    elif status == 403:
        assert challenge.startswith('Bearer error="insufficient_scope", error_description="')
        assert challenge.endswith('scope="admin:users:edit read", reason="insufficient_scope"')
    else:
        assert challenge == (
            f'Bearer error="invalid_token", error_description="{body["message"]}", '
            f'reason="{reason}"'
        )
    # Nothing a client (or a log of responses) sees repeats the token or the secret.
    seen = response.text + " ".join(f"{k}: {v}" for k, v in response.headers.items())
    assert SECRET not in seen
    if token:
        for part in [token, *token.split(".")]:
            assert part not in seen


# Every class, raised from a route ------------------------------------------------------

RAISED: list[tuple[Any, int, str, str]] = [
    (exceptions.AuthXException("boom"), 401, "invalid_token", "boom"),
    (exceptions.JWTDecodeError("boom"), 401, "invalid_token", "Invalid Token"),
    (
        exceptions.TokenExpiredError("Token has expired"),
        401,
        "token_expired",
        "Token has expired",
    ),
    (exceptions.TokenInvalidSignatureError("bad sig"), 401, "invalid_token", "bad sig"),
    (
        exceptions.TokenInvalidAudienceError("Invalid audience"),
        401,
        "invalid_token",
        "Invalid audience",
    ),
    (
        exceptions.TokenInvalidIssuerError("Invalid issuer"),
        401,
        "invalid_token",
        "Invalid issuer",
    ),
    (
        exceptions.CSRFError("mismatch"),
        401,
        "invalid_token",
        "CSRF double submit does not match",
    ),
    (exceptions.TokenError("boom"), 401, "invalid_token", "Token Error"),
    (exceptions.MissingTokenError("nothing here"), 401, "invalid_token", "nothing here"),
    (exceptions.MissingCSRFTokenError("no csrf"), 401, "invalid_token", "no csrf"),
    (exceptions.TokenTypeError("boom"), 401, "invalid_token", "Bad token type"),
    (
        exceptions.AccessTokenRequiredError("boom"),
        401,
        "invalid_token",
        "Access token required",
    ),
    (
        exceptions.RefreshTokenRequiredError("boom"),
        401,
        "invalid_token",
        "Refresh token required",
    ),
    (exceptions.RevokedTokenError("boom"), 401, "token_revoked", "Invalid token"),
    (exceptions.TokenRequiredError("boom"), 401, "invalid_token", "Token required"),
    (
        exceptions.FreshTokenRequiredError("boom"),
        401,
        "invalid_token",
        "Fresh token required",
    ),
    (
        exceptions.InsufficientScopeError(required=["admin"], provided=["read"]),
        403,
        "insufficient_scope",
        "Missing required scopes: ['admin']. Provided: ['read']",
    ),
    (
        exceptions.BadConfigurationError("JWT_SECRET_KEY is not set"),
        500,
        "server_error",
        "JWT_SECRET_KEY is not set",
    ),
]


@pytest.mark.parametrize(
    ("error", "status", "reason", "message"),
    RAISED,
    ids=[type(e).__name__ for e, _, _, _ in RAISED],
)
async def test_every_error_class(
    client: httpx.AsyncClient,
    app: FastAPI,
    error: Exception,
    status: int,
    reason: str,
    message: str,
) -> None:
    @app.get("/raise")
    async def raise_it() -> None:
        raise error

    response = await client.get("/raise")
    assert response.status_code == status
    assert response.json() == {
        "message": message,
        "error_type": type(error).__name__,
        "reason": reason,
    }
    if status in (401, 403):
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    else:
        assert "WWW-Authenticate" not in response.headers


def test_hierarchy() -> None:
    e = exceptions
    parents = {
        e.BadConfigurationError: e.AuthXException,
        e.JWTDecodeError: e.AuthXException,
        e.TokenExpiredError: e.JWTDecodeError,
        e.TokenInvalidSignatureError: e.JWTDecodeError,
        e.TokenInvalidAudienceError: e.JWTDecodeError,
        e.TokenInvalidIssuerError: e.JWTDecodeError,
        e.CSRFError: e.AuthXException,
        e.TokenError: e.AuthXException,
        e.MissingTokenError: e.TokenError,
        e.MissingCSRFTokenError: e.MissingTokenError,
        e.TokenTypeError: e.TokenError,
        e.AccessTokenRequiredError: e.TokenTypeError,
        e.RefreshTokenRequiredError: e.TokenTypeError,
        e.RevokedTokenError: e.TokenError,
        e.TokenRequiredError: e.TokenError,
        e.FreshTokenRequiredError: e.TokenError,
        e.InsufficientScopeError: e.TokenError,
    }
    for cls, parent in parents.items():
        assert cls.__mro__[1] is parent, cls


def test_insufficient_scope_error_carries_scopes() -> None:
    error = exceptions.InsufficientScopeError(required=("a", "b"), provided=None)
    assert (error.required, error.provided) == (["a", "b"], [])


async def test_messages_can_be_overridden_per_instance() -> None:
    auth = make_auth()
    auth.MSG_JWTDecodeError = "Nope"  # type: ignore[misc]
    async with serve(auth) as client:
        response = await client.get("/access", headers=bearer("not-a-jwt"))
    assert response.json() == {
        "message": "Nope",
        "error_type": "JWTDecodeError",
        "reason": "invalid_token",
    }
    assert make_auth().MSG_JWTDecodeError == "Invalid Token"


# Without handle_errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "token_for", "status", "error_type"),
    [
        ("/access", None, 401, "MissingTokenError"),
        (
            "/access",
            lambda a: a.create_access_token("a", expiry=timedelta(seconds=-1)),
            401,
            "TokenExpiredError",
        ),
        ("/refresh", lambda a: a.create_access_token("a"), 401, "RefreshTokenRequiredError"),
        ("/subject", None, 401, "MissingTokenError"),
        ("/admin", lambda a: a.create_access_token("a"), 403, "InsufficientScopeError"),
    ],
)
async def test_dependencies_answer_without_handle_errors(
    path: str, token_for: Any, status: int, error_type: str
) -> None:
    auth = make_auth()
    headers = bearer(token_for(auth)) if token_for else {}
    async with serve(auth, handle_errors=False) as client:
        for _ in range(2):  # the first request installs the handlers; they must keep working
            response = await client.get(path, headers=headers)
            assert response.status_code == status
            assert response.json()["error_type"] == error_type
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_user_handler_for_a_subclass_still_wins() -> None:
    from fastapi.responses import PlainTextResponse

    auth = make_auth()
    app = build_app(auth, handle_errors=False)

    async def teapot(request: Any, exc: Exception) -> PlainTextResponse:
        return PlainTextResponse("custom", status_code=418)

    app.add_exception_handler(exceptions.TokenExpiredError, teapot)
    async with serve(app) as client:
        expired = await client.get(
            "/access", headers=bearer(auth.create_access_token("a", expiry=timedelta(seconds=-1)))
        )
        missing = await client.get("/access")
    assert (expired.status_code, expired.text) == (418, "custom")
    assert missing.status_code == 401
