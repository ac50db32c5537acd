"""What a refused client is told: the exact message of each location and token-kind failure.

The message is part of the 401/403 body (``{"message", "error_type"}``) and of the
``WWW-Authenticate`` challenge, so a client (or its developer) learns where the
token was looked for and why it was not accepted.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from core_support import BASE_URL, SECRET, bearer, build_app, make_auth, make_config

from authx import AuthX, RequestToken
from authx._locations import get_token_from_request
from authx.exceptions import (
    AccessTokenRequiredError,
    BadConfigurationError,
    FreshTokenRequiredError,
    MissingTokenError,
    RefreshTokenRequiredError,
    TokenTooLargeError,
)


async def request(auth: AuthX[Any], method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=build_app(auth))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        return await client.request(method, path, **kwargs)


def refusal(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error_type"], body["message"]


# One location each ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "Missing 'Bearer' in 'Authorization' header."),
        (
            {"JWT_HEADER_NAME": "X-Auth", "JWT_HEADER_TYPE": "Token"},
            "Missing 'Token' in 'X-Auth' header.",
        ),
        ({"JWT_HEADER_TYPE": ""}, "Missing 'raw token' in 'Authorization' header."),
        ({"JWT_TOKEN_LOCATION": ["cookies"]}, "Missing cookie 'access_token_cookie'."),
        (
            {"JWT_TOKEN_LOCATION": ["cookies"], "JWT_ACCESS_COOKIE_NAME": "sess"},
            "Missing cookie 'sess'.",
        ),
        ({"JWT_TOKEN_LOCATION": ["query"]}, "Missing 'token' in query parameters"),
        (
            {"JWT_TOKEN_LOCATION": ["query"], "JWT_QUERY_STRING_NAME": "jwt"},
            "Missing 'jwt' in query parameters",
        ),
        ({"JWT_TOKEN_LOCATION": ["json"]}, "Invalid content-type. Must be application/json"),
    ],
)
async def test_missing_token_message(overrides: dict[str, Any], message: str) -> None:
    response = await request(make_auth(**overrides), "GET", "/access")
    assert refusal(response) == (401, "MissingTokenError", message)


async def test_refresh_cookie_is_named_for_refresh_routes() -> None:
    auth = make_auth(JWT_TOKEN_LOCATION=["cookies"], JWT_REFRESH_COOKIE_NAME="rt")
    response = await request(auth, "GET", "/refresh")
    assert refusal(response) == (401, "MissingTokenError", "Missing cookie 'rt'.")


async def test_every_place_tried_is_named_in_order() -> None:
    auth = make_auth(JWT_TOKEN_LOCATION=["json", "query", "cookies", "headers"])
    response = await request(auth, "GET", "/access")
    assert refusal(response) == (
        401,
        "MissingTokenError",
        "Invalid content-type. Must be application/json Missing 'token' in query parameters "
        "Missing cookie 'access_token_cookie'. Missing 'Bearer' in 'Authorization' header.",
    )


@pytest.mark.parametrize(
    ("content", "content_type", "message"),
    [
        ('{"access_token": "x"', "application/json", "Token is not parsable"),
        ('{"access_token": 12}', "application/json", "Token is not parsable"),
        ('{"access_token": null}', "application/json", "Missing token in json data"),
        ('{"other": "x"}', "application/json", "Missing token in json data"),
        ('["access_token"]', "application/json", "Missing token in json data"),
        ('{"access_token": "x"}', "text/plain", "Invalid content-type. Must be application/json"),
        (
            '{"access_token": "x"}',
            "text/plain; x=application/json",
            "Invalid content-type. Must be application/json",
        ),
        (
            '{"access_token": "x"}',
            "application/jsonx",
            "Invalid content-type. Must be application/json",
        ),
    ],
)
async def test_json_body_messages(content: str, content_type: str, message: str) -> None:
    auth = make_auth(JWT_TOKEN_LOCATION=["json"])
    response = await request(
        auth, "POST", "/access", content=content, headers={"Content-Type": content_type}
    )
    assert refusal(response) == (401, "MissingTokenError", message)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json;charset=utf-8",
        " application/json ; charset=utf-8",
        "application/json; charset=utf-8; profile=x",
        "APPLICATION/JSON",
    ],
)
async def test_json_content_type_parameters_are_ignored(content_type: str) -> None:
    auth = make_auth(JWT_TOKEN_LOCATION=["json"])
    token = auth.create_access_token("alice")
    response = await request(
        auth,
        "POST",
        "/access",
        content=f'{{"access_token": "{token}"}}',
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 200, response.text


async def test_json_content_type_header_is_required() -> None:
    auth = make_auth(JWT_TOKEN_LOCATION=["json"])
    token = auth.create_access_token("alice")
    response = await request(auth, "POST", "/access", content=f'{{"access_token": "{token}"}}')
    assert "content-type" not in response.request.headers
    assert refusal(response) == (
        401,
        "MissingTokenError",
        "Invalid content-type. Must be application/json",
    )


async def test_too_large_token_message() -> None:
    auth = make_auth(JWT_MAX_TOKEN_SIZE=100)
    response = await request(auth, "GET", "/access", headers=bearer("x" * 101))
    assert refusal(response) == (
        401,
        "TokenTooLargeError",
        "Token is larger than JWT_MAX_TOKEN_SIZE (100 bytes)",
    )


async def test_token_of_exactly_the_size_limit_is_looked_at() -> None:
    auth = make_auth(JWT_MAX_TOKEN_SIZE=100)
    response = await request(auth, "GET", "/access", headers=bearer("x" * 100))
    assert response.json()["error_type"] == "JWTDecodeError"


# Where the token was found --------------------------------------------------------------


@pytest.mark.parametrize(
    ("place", "kwargs"),
    [
        ("headers", {"headers": {"Authorization": "Bearer {t}"}}),
        ("query", {"params": {"token": "{t}"}}),
        ("cookies", {"headers": {"Cookie": "access_token_cookie={t}"}}),
    ],
)
async def test_found_token_reports_its_location(place: str, kwargs: dict[str, Any]) -> None:
    auth = make_auth(JWT_TOKEN_LOCATION=[place])
    token = auth.create_access_token("alice")
    filled = {k: {n: v.format(t=token) for n, v in d.items()} for k, d in kwargs.items()}
    response = await request(auth, "GET", "/optional/access", **filled)
    assert response.json() == {"token": token, "type": "access", "location": place}


async def test_json_token_reports_its_location_and_kind() -> None:
    auth = make_auth(JWT_TOKEN_LOCATION=["json"])
    token = auth.create_refresh_token("alice")
    config = make_config(JWT_TOKEN_LOCATION=["json"])

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": f'{{"refresh_token": "{token}"}}'.encode()}

    from starlette.requests import Request

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"content-type", b"application/json")],
        "query_string": b"",
    }
    found = await get_token_from_request(Request(scope, receive), config, refresh=True)
    assert found == RequestToken(token=token, type="refresh", location="json")


async def test_no_place_to_look_is_a_missing_token() -> None:
    from starlette.requests import Request

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    with pytest.raises(MissingTokenError) as raised:
        await get_token_from_request(Request(scope), make_config(), locations=[])
    assert raised.value.message == "No token found in request from '[]'"


async def test_unknown_place_names_the_known_ones() -> None:
    from starlette.requests import Request

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    with pytest.raises(BadConfigurationError) as raised:
        await get_token_from_request(Request(scope), make_config(), locations=["body"])
    assert raised.value.message == (
        "locations has unknown value(s) ['body']; allowed: headers, cookies, query, json"
    )


async def test_size_limit_applies_to_the_found_token_only() -> None:
    from starlette.requests import Request

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(b"authorization", b"Bearer " + b"x" * 11)],
        "query_string": b"",
    }
    with pytest.raises(TokenTooLargeError):
        await get_token_from_request(Request(scope), make_config(JWT_MAX_TOKEN_SIZE=10))


# Token kind and freshness -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "made", "error", "message"),
    [
        (
            "access",
            "refresh",
            AccessTokenRequiredError,
            "'access' token required, 'refresh' token received",
        ),
        (
            "refresh",
            "access",
            RefreshTokenRequiredError,
            "'refresh' token required, 'access' token received",
        ),
    ],
)
def test_token_kind_messages(
    expected: str, made: str, error: type[Exception], message: str
) -> None:
    auth = make_auth()
    token = auth.create_refresh_token("a") if made == "refresh" else auth.create_access_token("a")
    found = RequestToken(token=token, type=expected, location="headers")  # type: ignore[arg-type]
    with pytest.raises(error) as raised:
        found.verify(SECRET)
    assert raised.value.message == message  # type: ignore[attr-defined]


def test_freshness_message() -> None:
    token = make_auth().create_access_token("a", fresh=False)
    found = RequestToken(token=token, type="access", location="headers")
    with pytest.raises(FreshTokenRequiredError) as raised:
        found.verify(SECRET, verify_fresh=True)
    assert raised.value.message == "Fresh token required"


@pytest.mark.parametrize(
    ("path", "made", "error_type"),
    [
        ("/access", "refresh", "AccessTokenRequiredError"),
        ("/refresh", "access", "RefreshTokenRequiredError"),
        ("/fresh", "access", "FreshTokenRequiredError"),
    ],
)
async def test_token_kind_refusals(path: str, made: str, error_type: str) -> None:
    auth = make_auth()
    token = auth.create_refresh_token("a") if made == "refresh" else auth.create_access_token("a")
    response = await request(auth, "GET", path, headers=bearer(token))
    assert (response.status_code, response.json()["error_type"]) == (401, error_type)


async def test_access_token_is_looked_for_by_default() -> None:
    from starlette.requests import Request

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(b"cookie", b"access_token_cookie=a; refresh_token_cookie=r")],
        "query_string": b"",
    }
    config = make_config(JWT_TOKEN_LOCATION=["cookies"], JWT_COOKIE_CSRF_PROTECT=False)
    found = await get_token_from_request(Request(scope), config)
    assert (found.token, found.type) == ("a", "access")
