"""Setting and deleting cookies, directly and through the AuthXDependency bundle."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from core_support import cookie_header, make_auth, serve, set_cookies
from fastapi import FastAPI, Response

from authx import AuthX, AuthXDependency

COOKIES = {"JWT_TOKEN_LOCATION": ["headers", "cookies"]}
NAMES = {"access_token_cookie", "csrf_access_token", "refresh_token_cookie", "csrf_refresh_token"}


@pytest.mark.parametrize("config_overrides", [COOKIES])
async def test_login_sets_token_and_csrf_cookies(client: httpx.AsyncClient) -> None:
    response = await client.post("/login")
    cookies = set_cookies(response)
    assert set(cookies) == NAMES
    tokens = response.json()
    assert cookies["access_token_cookie"]["value"] == tokens["access_token"]
    assert cookies["refresh_token_cookie"]["value"] == tokens["refresh_token"]
    for name, cookie in cookies.items():
        assert cookie["path"] == "/"
        assert "secure" in cookie
        assert cookie["samesite"] == "lax"
        assert "max-age" not in cookie  # session cookies by default
        # Scripts must read the CSRF cookies to send them back, never the tokens.
        assert ("httponly" in cookie) == name.endswith("_cookie")


@pytest.mark.parametrize("config_overrides", [COOKIES])
async def test_csrf_cookie_holds_the_token_claim(
    client: httpx.AsyncClient, auth: AuthX[Any]
) -> None:
    cookies = set_cookies(await client.post("/login"))
    for kind in ("access", "refresh"):
        claim = auth._decode_token(cookies[f"{kind}_token_cookie"]["value"]).csrf
        assert claim
        assert cookies[f"csrf_{kind}_token"]["value"] == claim
    assert cookies["csrf_access_token"]["value"] != cookies["csrf_refresh_token"]["value"]


CUSTOM = {
    **COOKIES,
    "JWT_ACCESS_COOKIE_NAME": "at",
    "JWT_REFRESH_COOKIE_NAME": "rt",
    "JWT_ACCESS_CSRF_COOKIE_NAME": "at_csrf",
    "JWT_REFRESH_CSRF_COOKIE_NAME": "rt_csrf",
    "JWT_ACCESS_COOKIE_PATH": "/api",
    "JWT_REFRESH_COOKIE_PATH": "/auth/refresh",
    "JWT_ACCESS_CSRF_COOKIE_PATH": "/",
    "JWT_REFRESH_CSRF_COOKIE_PATH": "/",
    "JWT_COOKIE_DOMAIN": "example.com",
    "JWT_COOKIE_SECURE": False,
    "JWT_COOKIE_SAMESITE": "strict",
    "JWT_COOKIE_HTTP_ONLY": False,
    "JWT_COOKIE_MAX_AGE": 600,
}


@pytest.mark.parametrize("config_overrides", [CUSTOM])
async def test_cookie_settings(client: httpx.AsyncClient) -> None:
    cookies = set_cookies(await client.post("/login"))
    assert set(cookies) == {"at", "rt", "at_csrf", "rt_csrf"}
    assert cookies["at"]["path"] == "/api"
    assert cookies["rt"]["path"] == "/auth/refresh"
    assert cookies["at_csrf"]["path"] == cookies["rt_csrf"]["path"] == "/"
    for cookie in cookies.values():
        assert cookie["domain"] == "example.com"
        assert cookie["samesite"] == "strict"
        assert cookie["max-age"] == "600"
        assert "secure" not in cookie
        assert "httponly" not in cookie


@pytest.mark.parametrize("config_overrides", [{**COOKIES, "JWT_CSRF_IN_COOKIES": False}])
async def test_csrf_not_in_cookies(client: httpx.AsyncClient, auth: AuthX[Any]) -> None:
    response = await client.post("/login")
    assert set(set_cookies(response)) == {"access_token_cookie", "refresh_token_cookie"}
    # The claim is still there: the client gets it some other way and sends it back.
    token = response.json()["access_token"]
    csrf = auth._decode_token(token).csrf
    assert csrf
    ok = await client.post(
        "/access", headers={**cookie_header(access_token_cookie=token), "X-CSRF-TOKEN": csrf}
    )
    assert ok.status_code == 200


@pytest.mark.parametrize("config_overrides", [COOKIES])
async def test_logout_deletes_every_cookie(client: httpx.AsyncClient) -> None:
    cookies = set_cookies(await client.post("/logout"))
    assert set(cookies) == NAMES
    for cookie in cookies.values():
        assert cookie["value"] == ""
        assert cookie["max-age"] == "0"
        assert cookie["path"] == "/"


@pytest.mark.parametrize("config_overrides", [{**COOKIES, "JWT_COOKIE_CSRF_PROTECT": False}])
async def test_logout_without_csrf_deletes_token_cookies_only(client: httpx.AsyncClient) -> None:
    cookies = set_cookies(await client.post("/logout"))
    assert set(cookies) == {"access_token_cookie", "refresh_token_cookie"}


@pytest.mark.parametrize("config_overrides", [COOKIES])
async def test_cookies_on_a_response_the_route_builds(client: httpx.AsyncClient) -> None:
    cookies = set_cookies(await client.post("/login/own-response"))
    assert set(cookies) == NAMES
    assert cookies["access_token_cookie"]["max-age"] == "60"
    assert "max-age" not in cookies["refresh_token_cookie"]


@pytest.mark.parametrize("config_overrides", [COOKIES])
async def test_cookie_login_round_trip(client: httpx.AsyncClient) -> None:
    """A browser-like client: cookies from login authenticate the next requests."""
    await client.post("/login")
    csrf = client.cookies["csrf_access_token"]
    assert (await client.get("/access")).status_code == 200
    assert (await client.post("/access")).status_code == 401
    assert (await client.post("/access", headers={"X-CSRF-TOKEN": csrf})).status_code == 200
    await client.post("/logout")
    assert (await client.get("/access")).status_code == 401


async def test_bundle_and_dependency() -> None:
    auth = make_auth(**COOKIES)
    auth.set_subject_getter(lambda uid: {"uid": uid})
    app = FastAPI()
    auth.handle_errors(app)

    @app.get("/bundle")
    async def bundle(response: Response, deps: AuthXDependency[Any] = auth.BUNDLE) -> Any:
        assert deps.response is response
        token = deps.create_access_token("bob", fresh=True)
        deps.set_access_cookies(token, max_age=30)
        deps.set_refresh_cookies(deps.create_refresh_token("bob"))
        deps.unset_refresh_cookies()
        return {"path": deps.request.url.path, "subject": await deps.get_current_subject()}

    async with serve(app) as client:
        bearer_token = auth.create_access_token("alice")
        response = await client.get("/bundle", headers={"Authorization": f"Bearer {bearer_token}"})
    assert response.status_code == 200
    assert response.json() == {"path": "/bundle", "subject": {"uid": "alice"}}
    headers = response.headers.get_list("set-cookie")
    names = [h.split("=", 1)[0] for h in headers]
    assert names == [
        "access_token_cookie",
        "csrf_access_token",
        "refresh_token_cookie",
        "csrf_refresh_token",
        "refresh_token_cookie",
        "csrf_refresh_token",
    ]
    access = set_cookies(response)["access_token_cookie"]
    assert access["max-age"] == "30"
    assert auth._decode_token(access["value"]).fresh is True


def test_set_cookies_refuses_an_invalid_token() -> None:
    """The CSRF value comes from the verified token, so a bad token is not mirrored."""
    from authx.exceptions import TokenInvalidSignatureError
    from authx.token import create_token

    auth = make_auth(**COOKIES)
    with pytest.raises(TokenInvalidSignatureError):
        auth.set_access_cookies(create_token("a", "x" * 64), Response())
