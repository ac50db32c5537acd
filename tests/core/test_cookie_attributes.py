"""The attributes of every cookie AuthX sets and deletes follow the cookie settings:
a deletion must name the same path and domain (or the browser keeps the cookie)."""

from __future__ import annotations

from typing import Any

import pytest
from core_support import make_auth
from starlette.responses import Response

from authx._cookies import set_token_cookies, unset_token_cookies

CUSTOM: dict[str, Any] = {
    "JWT_TOKEN_LOCATION": ["headers", "cookies"],
    "JWT_ACCESS_COOKIE_PATH": "/api",
    "JWT_REFRESH_COOKIE_PATH": "/auth/refresh",
    "JWT_ACCESS_CSRF_COOKIE_PATH": "/csrf-a",
    "JWT_REFRESH_CSRF_COOKIE_PATH": "/csrf-r",
    "JWT_COOKIE_DOMAIN": "example.com",
    "JWT_COOKIE_SECURE": True,
    "JWT_COOKIE_SAMESITE": "strict",
    "JWT_COOKIE_HTTP_ONLY": True,
}


def cookies_of(response: Response) -> dict[str, dict[str, str]]:
    cookies: dict[str, dict[str, str]] = {}
    for name, raw in response.raw_headers:
        if name != b"set-cookie":
            continue
        first, *attributes = (part.strip() for part in raw.decode().split(";"))
        key, _, val = first.partition("=")
        cookie = {"value": val.strip('"')}
        for attribute in attributes:
            attr, _, attr_value = attribute.partition("=")
            cookie[attr.lower()] = attr_value
        cookies[key] = cookie
    return cookies


@pytest.mark.parametrize(
    ("kind", "name", "path", "csrf_name", "csrf_path"),
    [
        ("access", "access_token_cookie", "/api", "csrf_access_token", "/csrf-a"),
        ("refresh", "refresh_token_cookie", "/auth/refresh", "csrf_refresh_token", "/csrf-r"),
    ],
)
@pytest.mark.parametrize("deleting", [False, True])
def test_cookie_attributes(
    kind: str, name: str, path: str, csrf_name: str, csrf_path: str, deleting: bool
) -> None:
    config = make_auth(**CUSTOM).config
    response = Response()
    if deleting:
        unset_token_cookies(response, config, kind)
    else:
        set_token_cookies(response, config, kind, "the-token", "the-csrf", max_age=90)
    cookies = cookies_of(response)
    assert set(cookies) == {name, csrf_name}
    token, csrf = cookies[name], cookies[csrf_name]
    assert (token["path"], csrf["path"]) == (path, csrf_path)
    for cookie in (token, csrf):
        assert cookie["domain"] == "example.com"
        assert cookie["samesite"] == "strict"
        assert "secure" in cookie
    assert "httponly" in token
    assert "httponly" not in csrf  # scripts read it to send it back
    if deleting:
        assert token["max-age"] == csrf["max-age"] == "0"
        assert token["value"] == csrf["value"] == ""
    else:
        assert token["max-age"] == csrf["max-age"] == "90"
        assert (token["value"], csrf["value"]) == ("the-token", "the-csrf")


@pytest.mark.parametrize("deleting", [False, True])
def test_relaxed_cookie_settings(deleting: bool) -> None:
    relaxed = {
        "JWT_COOKIE_SECURE": False,
        "JWT_COOKIE_HTTP_ONLY": False,
        "JWT_COOKIE_SAMESITE": "lax",
        "JWT_COOKIE_DOMAIN": None,
    }
    config = make_auth(**{**CUSTOM, **relaxed}).config
    response = Response()
    if deleting:
        unset_token_cookies(response, config, "access")
    else:
        set_token_cookies(response, config, "access", "t", "c")
    for cookie in cookies_of(response).values():
        assert "secure" not in cookie
        assert "httponly" not in cookie
        assert "domain" not in cookie
        assert cookie["samesite"] == "lax"


def test_max_age_defaults_to_the_setting() -> None:
    config = make_auth(**CUSTOM, JWT_COOKIE_MAX_AGE=600).config
    response = Response()
    set_token_cookies(response, config, "access", "t", "c")
    assert {c["max-age"] for c in cookies_of(response).values()} == {"600"}


@pytest.mark.parametrize("csrf", [None, ""])
def test_no_csrf_cookie_without_a_csrf_value(csrf: str | None) -> None:
    response = Response()
    set_token_cookies(response, make_auth(**CUSTOM).config, "access", "t", csrf)
    assert set(cookies_of(response)) == {"access_token_cookie"}


@pytest.mark.parametrize(
    "overrides", [{"JWT_COOKIE_CSRF_PROTECT": False}, {"JWT_CSRF_IN_COOKIES": False}]
)
@pytest.mark.parametrize("deleting", [False, True])
def test_no_csrf_cookie_when_double_submit_is_off(
    overrides: dict[str, Any], deleting: bool
) -> None:
    config = make_auth(**CUSTOM, **overrides).config
    response = Response()
    if deleting:
        unset_token_cookies(response, config, "refresh")
    else:
        set_token_cookies(response, config, "refresh", "t", "c")
    assert set(cookies_of(response)) == {"refresh_token_cookie"}


@pytest.mark.parametrize("deleting", [False, True])
def test_unknown_kind_is_refused(deleting: bool) -> None:
    config = make_auth().config

    def call() -> None:
        if deleting:
            unset_token_cookies(Response(), config, "id")
        else:
            set_token_cookies(Response(), config, "id", "t", None)

    with pytest.raises(ValueError, match=r"^Token type must be 'access' \| 'refresh'$"):
        call()
