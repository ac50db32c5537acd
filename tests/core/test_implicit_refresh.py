"""Implicit refresh of cookie sessions (``auth.implicit_refresh_middleware``).

After the route answered, a valid access cookie expiring within
``JWT_IMPLICIT_REFRESH_DELTATIME`` is replaced by a new, non-fresh one with the same
subject, scopes and claims (and a new CSRF cookie); anything else leaves the
response exactly as the route made it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from core_support import OTHER_SECRET, cookie_header, make_config, set_cookies
from fastapi import FastAPI, Response
from fastapi.testclient import TestClient

from authx import AuthX, AuthXConfig, TokenPayload
from authx._implicit_refresh import refresh_applies
from authx.exceptions import BadConfigurationError
from tests.conftest import SECRET as LIVE_SECRET
from tests.conftest import LiveServer

NEAR = timedelta(minutes=5)  # within the default 10 minutes
FAR = timedelta(hours=1)
ACCESS, CSRF = "access_token_cookie", "csrf_access_token"
SCOPES = ["read", "admin:*"]
CLAIMS = {"role": "admin", "org": 7}

Build = Callable[..., tuple[AuthX[Any], TestClient]]


@pytest.fixture
def build() -> Iterator[Build]:
    """``build(**settings)``: an AuthX with cookies and an app with the middleware."""
    clients: list[TestClient] = []

    def factory(login_type: str | None = None, **overrides: Any) -> tuple[AuthX[Any], TestClient]:
        settings = {"JWT_TOKEN_LOCATION": ["cookies"], **overrides}
        auth: AuthX[Any] = AuthX(config=make_config(**settings), login_type=login_type)
        app = FastAPI()
        auth.handle_errors(app)
        app.middleware("http")(auth.implicit_refresh_middleware)

        async def protected(payload: TokenPayload = auth.ACCESS_REQUIRED) -> dict[str, Any]:
            return {"sub": payload.sub}

        async def public() -> dict[str, bool]:
            return {"ok": True}

        for path in ("/me", "/other"):
            app.add_api_route(path, protected, methods=["GET", "POST", "DELETE"])
        app.add_api_route("/public", public, methods=["GET", "POST"])

        @app.post("/logout")
        def logout(response: Response) -> dict[str, bool]:
            auth.unset_cookies(response)
            return {"ok": True}

        @app.post("/login")
        def login(response: Response) -> dict[str, bool]:
            auth.set_access_cookies(auth.create_access_token("bob", expiry=FAR), response)
            return {"ok": True}

        @app.post("/revoke")
        async def revoke(payload: TokenPayload = auth.ACCESS_REQUIRED) -> dict[str, bool]:
            assert payload.jti is not None
            await auth.revoke_token(payload.jti)
            return {"ok": True}

        client = TestClient(app, base_url="https://testserver")
        clients.append(client.__enter__())
        return auth, client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


def login(auth: AuthX[Any], lifetime: timedelta | None = NEAR, **options: Any) -> tuple[str, str]:
    """A fresh access token with scopes and claims, and its CSRF value."""
    token = auth.create_access_token(
        "alice", fresh=True, expiry=lifetime, scopes=SCOPES, data=CLAIMS, **options
    )
    return token, auth._decode_token(token).csrf or ""


def send(
    client: TestClient,
    token: str,
    method: str = "GET",
    path: str = "/me",
    csrf: str | None = None,
) -> httpx.Response:
    headers = cookie_header(**{ACCESS: token})
    if csrf is not None:
        headers["X-CSRF-TOKEN"] = csrf
    return client.request(method, path, headers=headers)


def new_token(response: httpx.Response) -> str | None:
    cookie = set_cookies(response).get(ACCESS)
    return None if cookie is None else cookie["value"]


# The refresh itself --------------------------------------------------------------------------


def test_a_token_near_expiry_gets_a_new_cookie(build: Build) -> None:
    auth, client = build()
    token, _ = login(auth)
    response = send(client, token)
    assert response.status_code == 200
    cookies = set_cookies(response)
    assert set(cookies) == {ACCESS, CSRF}
    renewed = cookies[ACCESS]["value"]
    assert renewed != token
    # The same attributes as set_access_cookies gives.
    assert {"httponly", "secure", "path", "samesite"} <= set(cookies[ACCESS])
    assert "httponly" not in cookies[CSRF]
    # The route saw the old token; the next request brings the new one, which works.
    assert send(client, renewed).json() == {"sub": "alice"}


def test_the_new_token_keeps_scopes_and_claims_but_is_not_fresh(build: Build) -> None:
    auth, client = build(JWT_DECODE_AUDIENCE="api")
    token, csrf = login(auth, audience="api")
    old = auth._decode_token(token)
    cookies = set_cookies(send(client, token))
    new = auth._decode_token(cookies[ACCESS]["value"])
    assert (new.sub, new.type, new.scopes, new.aud, new.extra_dict) == (
        "alice",
        "access",
        SCOPES,
        "api",
        CLAIMS,
    )
    assert old.fresh
    assert not new.fresh
    assert new.jti != old.jti
    # A full access lifetime (15 minutes by default) from now.
    assert new.expires_at == pytest.approx(time.time() + 900, abs=5)
    # A new CSRF value, in the claim and in the readable cookie.
    assert new.csrf
    assert new.csrf != csrf
    assert cookies[CSRF]["value"] == new.csrf


@pytest.mark.parametrize(
    ("settings", "login_type", "claim", "value"),
    [
        ({}, "employee", "login_type", "employee"),
        ({"JWT_IDENTITY_CLAIM": "uid"}, None, "uid", "alice"),
    ],
)
def test_identity_claim_and_login_type_are_kept(
    build: Build, settings: dict[str, Any], login_type: str | None, claim: str, value: str
) -> None:
    auth, client = build(login_type=login_type, **settings)
    token, _ = login(auth)
    renewed = new_token(send(client, token))
    assert renewed is not None
    assert jwt.decode(renewed, options={"verify_signature": False})[claim] == value


def test_a_token_far_from_expiry_is_left_alone(build: Build) -> None:
    auth, client = build()
    token, _ = login(auth, FAR)
    response = send(client, token)
    assert response.status_code == 200
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    ("deltatime", "lifetime", "renewed"), [(7200, FAR, True), (0, NEAR, False)]
)
def test_deltatime_decides(
    build: Build, deltatime: int, lifetime: timedelta, renewed: bool
) -> None:
    auth, client = build(JWT_IMPLICIT_REFRESH_DELTATIME=deltatime)
    token, _ = login(auth, lifetime)
    assert (new_token(send(client, token)) is not None) is renewed


def test_routes_without_a_dependency_refresh_too(build: Build) -> None:
    auth, client = build()
    token, _ = login(auth)
    assert new_token(send(client, token, path="/public")) is not None


def test_without_csrf_protection_only_the_token_cookie_is_set(build: Build) -> None:
    auth, client = build(JWT_COOKIE_CSRF_PROTECT=False)
    token, _ = login(auth)
    response = send(client, token, "POST", "/public")
    assert set(set_cookies(response)) == {ACCESS}


# Paths and methods ---------------------------------------------------------------------------


ROUTE_EXCLUDE = "JWT_IMPLICIT_REFRESH_ROUTE_EXCLUDE"
ROUTE_INCLUDE = "JWT_IMPLICIT_REFRESH_ROUTE_INCLUDE"
METHOD_EXCLUDE = "JWT_IMPLICIT_REFRESH_METHOD_EXCLUDE"
METHOD_INCLUDE = "JWT_IMPLICIT_REFRESH_METHOD_INCLUDE"


@pytest.mark.parametrize(
    ("settings", "method", "path", "applies"),
    [
        ({}, "GET", "/me", True),
        ({}, "DELETE", "/me", True),
        ({ROUTE_EXCLUDE: ["/me"]}, "GET", "/me", False),
        ({ROUTE_EXCLUDE: ["/me"]}, "GET", "/other", True),
        ({ROUTE_EXCLUDE: ["/me"], ROUTE_INCLUDE: ["/me"]}, "GET", "/me", False),
        # An included path refreshes whatever the method lists say (as AuthX).
        ({METHOD_EXCLUDE: ["GET"], ROUTE_INCLUDE: ["/me"]}, "GET", "/me", True),
        ({METHOD_EXCLUDE: ["GET"], ROUTE_INCLUDE: ["/me"]}, "GET", "/other", False),
        ({METHOD_INCLUDE: ["POST"], ROUTE_INCLUDE: ["/me"]}, "GET", "/me", True),
        # A route include list is not an allow list (as AuthX).
        ({ROUTE_INCLUDE: ["/me"]}, "GET", "/other", True),
        ({METHOD_EXCLUDE: ["GET"]}, "GET", "/me", False),
        ({METHOD_EXCLUDE: ["GET"]}, "POST", "/me", True),
        # METHOD_INCLUDE limits refreshes to its methods (AuthX 1.7.1 did the opposite).
        ({METHOD_INCLUDE: ["GET"]}, "GET", "/me", True),
        ({METHOD_INCLUDE: ["GET"]}, "POST", "/me", False),
        ({METHOD_INCLUDE: ["GET"], METHOD_EXCLUDE: ["GET"]}, "GET", "/me", False),
        ({METHOD_INCLUDE: ["get"]}, "get", "/me", True),
        # Paths match exactly.
        ({ROUTE_EXCLUDE: ["/me"]}, "GET", "/me/", True),
    ],
)
def test_refresh_applies(
    settings: dict[str, list[str]], method: str, path: str, applies: bool
) -> None:
    assert refresh_applies(make_config(**settings), path, method) is applies


@pytest.mark.parametrize(
    ("settings", "method", "path", "renewed"),
    [
        ({ROUTE_EXCLUDE: ["/me"]}, "GET", "/me", False),
        ({ROUTE_EXCLUDE: ["/me"]}, "GET", "/other", True),
        ({METHOD_EXCLUDE: ["GET"]}, "GET", "/me", False),
        ({METHOD_EXCLUDE: ["GET"]}, "POST", "/me", True),
        ({METHOD_EXCLUDE: ["GET"], ROUTE_INCLUDE: ["/me"]}, "GET", "/me", True),
        ({METHOD_EXCLUDE: ["GET"], ROUTE_INCLUDE: ["/me"]}, "GET", "/other", False),
        ({METHOD_INCLUDE: ["GET"]}, "GET", "/me", True),
        ({METHOD_INCLUDE: ["GET"]}, "POST", "/me", False),
        ({METHOD_INCLUDE: ["DELETE"]}, "DELETE", "/me", True),
    ],
)
def test_paths_and_methods_through_the_app(
    build: Build, settings: dict[str, Any], method: str, path: str, renewed: bool
) -> None:
    auth, client = build(**settings)
    token, csrf = login(auth)
    response = send(client, token, method, path, csrf)
    assert response.status_code == 200
    assert (new_token(response) is not None) is renewed


def test_nothing_happens_unless_cookies_are_a_location(build: Build) -> None:
    auth, client = build(JWT_TOKEN_LOCATION=["headers"])
    token, _ = login(auth)
    response = send(client, token, path="/public")
    assert response.status_code == 200
    assert "set-cookie" not in response.headers


# Tokens that must not be renewed: no refresh, and no error of the middleware's own ------------


def test_unsafe_methods_need_the_right_csrf_value(build: Build) -> None:
    auth, client = build()
    token, csrf = login(auth)
    assert new_token(send(client, token, "POST", "/public")) is None
    assert new_token(send(client, token, "POST", "/public", csrf="wrong")) is None
    assert new_token(send(client, token, "POST", "/public", csrf=csrf)) is not None


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda auth: "not-a-jwt", id="garbage"),
        pytest.param(
            lambda auth: AuthX(config=make_config(JWT_SECRET_KEY=OTHER_SECRET)).create_access_token(
                "alice", expiry=NEAR
            ),
            id="other-key",
        ),
        pytest.param(
            lambda auth: auth.create_access_token("alice", expiry=timedelta(seconds=-5)),
            id="expired",
        ),
        pytest.param(lambda auth: auth.create_refresh_token("alice", expiry=NEAR), id="refresh"),
    ],
)
def test_bad_tokens_are_not_renewed_and_the_route_decides(
    build: Build, make: Callable[[AuthX[Any]], str]
) -> None:
    auth, client = build()
    token = make(auth)
    public = send(client, token, path="/public")
    assert (public.status_code, "set-cookie" in public.headers) == (200, False)
    protected = send(client, token)
    assert protected.status_code == 401  # the route's dependency, not the middleware
    assert "set-cookie" not in protected.headers


def test_a_token_revoked_by_the_route_itself_is_not_renewed(build: Build) -> None:
    auth, client = build()
    token, csrf = login(auth)
    response = send(client, token, "POST", "/revoke", csrf)
    assert (response.status_code, new_token(response)) == (200, None)
    response = send(client, token)
    assert (response.status_code, response.json()["error_type"]) == (401, "RevokedTokenError")
    assert new_token(response) is None
    assert new_token(send(client, token, path="/public")) is None


async def test_revoked_subjects_and_blocklisted_tokens_are_not_renewed(build: Build) -> None:
    auth, client = build()
    token, _ = login(auth)
    auth.set_token_blocklist(lambda raw: raw == token)
    assert new_token(send(client, token, path="/public")) is None
    other, _ = login(auth)
    assert new_token(send(client, other, path="/public")) is not None
    await auth.revoke_subject("alice")
    assert new_token(send(client, other, path="/public")) is None


def test_a_token_without_exp_is_left_alone(build: Build) -> None:
    auth, client = build(JWT_ACCESS_TOKEN_EXPIRES=None)
    token, _ = login(auth, None)
    response = send(client, token)
    assert (response.status_code, new_token(response)) == (200, None)


@pytest.mark.parametrize("path", ["/logout", "/login"])
def test_cookies_the_route_set_or_deleted_win(build: Build, path: str) -> None:
    auth, client = build()
    token, csrf = login(auth)
    response = send(client, token, "POST", path, csrf)
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{ACCESS}=")]
    assert len(headers) == 1  # the route's own, and nothing after it
    cookie = set_cookies(response)[ACCESS]
    if path == "/logout":
        assert cookie["max-age"] == "0"
    else:
        assert auth._decode_token(cookie["value"]).sub == "bob"


def test_an_unexpected_failure_is_logged_not_answered(
    build: Build, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    auth, client = build()
    token, _ = login(auth)

    def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError(token)  # a message quoting the token must not reach the log

    monkeypatch.setattr(auth._issuer, "create_access_token", broken)
    with caplog.at_level(logging.WARNING, logger="authx"):
        response = send(client, token)
    assert (response.status_code, response.json()) == (200, {"sub": "alice"})
    assert "set-cookie" not in response.headers
    assert "implicit refresh failed (RuntimeError)" in caplog.text
    assert token not in caplog.text


def test_an_identity_providers_token_is_not_reissued_as_ours(
    build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Renewing it ourselves would outlive the provider's expiry and revocation.
    auth, client = build(JWT_OIDC_ISSUER="https://idp.example.com")
    issuers: list[str | None] = []

    async def authenticate(request: Any, *args: Any, **kwargs: Any) -> tuple[None, TokenPayload]:
        return None, TokenPayload(sub="alice", iss=issuers[-1], exp=NEAR)

    monkeypatch.setattr(auth._http, "authenticate", authenticate)
    issuers.append("https://idp.example.com")
    assert new_token(send(client, "provider-token", path="/public")) is None
    issuers.append(None)  # the application's own token (JWT_ENCODE_ISSUER unset)
    assert new_token(send(client, "own-token", path="/public")) is not None


# Settings ------------------------------------------------------------------------------------


def test_settings_defaults_and_seconds() -> None:
    config = AuthXConfig(JWT_SECRET_KEY=LIVE_SECRET)
    deltatime = config.JWT_IMPLICIT_REFRESH_DELTATIME
    assert deltatime == timedelta(minutes=10)
    assert config.JWT_IMPLICIT_REFRESH_ROUTE_EXCLUDE == []
    assert config.JWT_IMPLICIT_REFRESH_METHOD_INCLUDE == []
    seconds = AuthXConfig(JWT_SECRET_KEY=LIVE_SECRET, JWT_IMPLICIT_REFRESH_DELTATIME=600)
    deltatime = seconds.JWT_IMPLICIT_REFRESH_DELTATIME
    assert deltatime == timedelta(seconds=600)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_IMPLICIT_REFRESH_DELTATIME", "600")
    monkeypatch.setenv("JWT_IMPLICIT_REFRESH_ROUTE_EXCLUDE", '["/health"]')
    monkeypatch.setenv("jwt_implicit_refresh_route_include", '["/api/me"]')
    monkeypatch.setenv("JWT_IMPLICIT_REFRESH_METHOD_EXCLUDE", '["options"]')
    monkeypatch.setenv("JWT_IMPLICIT_REFRESH_METHOD_INCLUDE", '["GET", "HEAD"]')
    config = AuthXConfig(JWT_SECRET_KEY=LIVE_SECRET)
    deltatime = config.JWT_IMPLICIT_REFRESH_DELTATIME
    assert deltatime == timedelta(seconds=600)
    assert config.JWT_IMPLICIT_REFRESH_ROUTE_EXCLUDE == ["/health"]
    assert config.JWT_IMPLICIT_REFRESH_ROUTE_INCLUDE == ["/api/me"]
    assert config.JWT_IMPLICIT_REFRESH_METHOD_EXCLUDE == ["OPTIONS"]
    assert config.JWT_IMPLICIT_REFRESH_METHOD_INCLUDE == ["GET", "HEAD"]


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("JWT_IMPLICIT_REFRESH_DELTATIME", -1),
        ("JWT_IMPLICIT_REFRESH_DELTATIME", "ten minutes"),
        ("JWT_IMPLICIT_REFRESH_METHOD_INCLUDE", ["FETCH"]),
        ("JWT_IMPLICIT_REFRESH_METHOD_EXCLUDE", ["TRACE"]),
        ("JWT_IMPLICIT_REFRESH_ROUTE_EXCLUDE", ["health"]),
    ],
)
def test_bad_settings_name_the_setting(setting: str, value: Any) -> None:
    with pytest.raises(BadConfigurationError, match=setting):
        AuthXConfig(JWT_SECRET_KEY=LIVE_SECRET, **{setting: value})


# On the wire ---------------------------------------------------------------------------------


def test_set_cookie_on_the_wire_through_uvicorn(live_server_factory: Any) -> None:
    server: LiveServer = live_server_factory(
        "tests.apps.implicit_refresh_app:app",
        JWT_SECRET_KEY=LIVE_SECRET,
        JWT_TOKEN_LOCATION='["cookies"]',
        JWT_COOKIE_SECURE="false",  # plain http on 127.0.0.1: the client must send it back
        JWT_IMPLICIT_REFRESH_DELTATIME="600",
    )
    with httpx.Client(base_url=server.http) as client:
        assert client.post("/login", params={"seconds": 300}).status_code == 200
        old = client.cookies[ACCESS]
        first = client.get("/me")
        assert first.status_code == 200
        on_wire = first.headers.get_list("set-cookie")
        assert [h.split("=", 1)[0] for h in on_wire] == [ACCESS, CSRF]
        assert "HttpOnly" in on_wire[0]
        assert "SameSite=lax" in on_wire[0]
        new = client.cookies[ACCESS]
        assert new != old
        # The browser's next request carries the new token: 15 minutes left, no refresh.
        second = client.get("/me")
        assert second.status_code == 200
        assert second.json()["jti"] != first.json()["jti"]
        assert second.json()["scopes"] == ["read"]
        assert "set-cookie" not in second.headers
        # A session far from expiry is never touched.
        client.post("/login", params={"seconds": 3600})
        assert "set-cookie" not in client.get("/me").headers
    server.assert_log_clean(old, new)
