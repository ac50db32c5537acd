"""Where tokens are found: headers, cookies (with and without CSRF), query, JSON, in order."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from core_support import (
    EVERY_METHOD,
    bearer,
    build_app,
    cookie_header,
    make_auth,
    serve,
    set_cookies,
)
from fastapi import Depends, FastAPI, Request

from authx import AuthX, BadConfigurationError

COOKIES = {"JWT_TOKEN_LOCATION": ["cookies"]}


def assert_error(response: httpx.Response, status: int, error_type: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error_type"] == error_type


# Headers -------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["Bearer ", "bearer ", "BEARER ", "", "Bearer  "])
async def test_header_with_or_without_type(
    client: httpx.AsyncClient, auth: AuthX[Any], prefix: str
) -> None:
    token = auth.create_access_token("alice")
    response = await client.get("/access", headers={"Authorization": prefix + token})
    assert response.status_code == 200
    assert response.json()["sub"] == "alice"


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Token abc.def.ghi", "Bearer", "bearer  "])
async def test_header_without_a_bearer_token_is_missing(
    client: httpx.AsyncClient, value: str
) -> None:
    response = await client.get("/access", headers={"Authorization": value})
    assert_error(response, 401, "MissingTokenError")


@pytest.mark.parametrize(
    "config_overrides", [{"JWT_HEADER_NAME": "X-Api-Token", "JWT_HEADER_TYPE": "Token"}]
)
async def test_custom_header_name_and_type(client: httpx.AsyncClient, auth: AuthX[Any]) -> None:
    token = auth.create_access_token("alice")
    ok = await client.get("/access", headers={"X-Api-Token": f"Token {token}"})
    wrong_header = await client.get("/access", headers=bearer(token))
    wrong_type = await client.get("/access", headers={"X-Api-Token": f"Bearer {token}"})
    assert ok.status_code == 200
    assert_error(wrong_header, 401, "MissingTokenError")
    assert_error(wrong_type, 401, "MissingTokenError")


@pytest.mark.parametrize("config_overrides", [{"JWT_HEADER_TYPE": ""}])
async def test_empty_header_type_means_raw_token(
    client: httpx.AsyncClient, auth: AuthX[Any]
) -> None:
    token = auth.create_access_token("alice")
    raw = await client.get("/access", headers={"Authorization": token})
    prefixed = await client.get("/access", headers=bearer(token))
    assert raw.status_code == 200
    # "Bearer <jwt>" is not a JWT when the header carries the raw token.
    assert_error(prefixed, 401, "JWTDecodeError")


# Cookies -------------------------------------------------------------------------------


async def login(client: httpx.AsyncClient) -> dict[str, str]:
    """Log in through the app; the cookie name -> value it set."""
    response = await client.post("/login")
    assert response.status_code == 200
    return {name: cookie["value"] for name, cookie in set_cookies(response).items()}


@pytest.mark.parametrize("config_overrides", [COOKIES])
@pytest.mark.parametrize("method", EVERY_METHOD)
@pytest.mark.parametrize(
    ("csrf_header", "expected"),
    [("matching", 200), (None, "MissingCSRFTokenError"), ("wrong", "CSRFError")],
)
async def test_cookies_with_csrf(
    client: httpx.AsyncClient, method: str, csrf_header: str | None, expected: Any
) -> None:
    cookies = await login(client)
    headers = cookie_header(
        access_token_cookie=cookies["access_token_cookie"],
        csrf_access_token=cookies["csrf_access_token"],
    )
    if csrf_header == "matching":
        headers["X-CSRF-TOKEN"] = cookies["csrf_access_token"]
    elif csrf_header == "wrong":
        headers["X-CSRF-TOKEN"] = cookies["csrf_refresh_token"]
    response = await client.request(method, "/access", headers=headers)
    if method == "GET" or expected == 200:
        # Safe methods are not subject to the double submit.
        assert response.status_code == 200, response.text
        assert response.json()["sub"] == "alice"
    else:
        assert_error(response, 401, expected)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("config_overrides", [COOKIES])
@pytest.mark.parametrize(
    ("csrf_cookie", "status"), [("csrf_refresh_token", 200), ("csrf_access_token", 401)]
)
async def test_refresh_cookie_uses_its_own_csrf_value(
    client: httpx.AsyncClient, csrf_cookie: str, status: int
) -> None:
    cookies = await login(client)
    headers = cookie_header(refresh_token_cookie=cookies["refresh_token_cookie"])
    headers["X-CSRF-TOKEN"] = cookies[csrf_cookie]
    response = await client.post("/refresh", headers=headers)
    assert response.status_code == status
    if status == 200:
        assert response.json()["type"] == "refresh"


@pytest.mark.parametrize("config_overrides", [{**COOKIES, "JWT_COOKIE_CSRF_PROTECT": False}])
@pytest.mark.parametrize("method", EVERY_METHOD)
async def test_cookies_without_csrf(client: httpx.AsyncClient, method: str) -> None:
    cookies = await login(client)
    assert set(cookies) == {"access_token_cookie", "refresh_token_cookie"}
    headers = cookie_header(access_token_cookie=cookies["access_token_cookie"])
    response = await client.request(method, "/access", headers=headers)
    assert response.status_code == 200


@pytest.mark.parametrize("config_overrides", [{**COOKIES, "JWT_CSRF_METHODS": ["DELETE"]}])
@pytest.mark.parametrize(("method", "status"), [("POST", 200), ("DELETE", 401)])
async def test_csrf_methods_setting(client: httpx.AsyncClient, method: str, status: int) -> None:
    cookies = await login(client)
    headers = cookie_header(access_token_cookie=cookies["access_token_cookie"])
    assert (await client.request(method, "/access", headers=headers)).status_code == status


@pytest.mark.parametrize("config_overrides", [{**COOKIES, "JWT_CSRF_CHECK_FORM": True}])
@pytest.mark.parametrize(("field", "status"), [("matching", 200), ("wrong", 401)])
async def test_csrf_from_form_field(client: httpx.AsyncClient, field: str, status: int) -> None:
    cookies = await login(client)
    headers = cookie_header(access_token_cookie=cookies["access_token_cookie"])
    value = cookies["csrf_access_token"] if field == "matching" else "not-the-value"
    response = await client.post("/access", headers=headers, data={"csrf_token": value})
    assert response.status_code == status


@pytest.mark.parametrize("config_overrides", [COOKIES])
async def test_cookie_token_without_csrf_check_when_disabled_per_route(auth: AuthX[Any]) -> None:
    app = build_app(auth)

    @app.post("/no-csrf")
    async def no_csrf(
        payload: Any = Depends(auth.token_required(verify_csrf=False)),
    ) -> str:
        return payload.sub  # type: ignore[no-any-return]

    async with serve(app) as client:
        cookies = await login(client)
        headers = cookie_header(access_token_cookie=cookies["access_token_cookie"])
        response = await client.post("/no-csrf", headers=headers)
    assert response.status_code == 200
    assert response.json() == "alice"


@pytest.mark.parametrize("config_overrides", [COOKIES])
async def test_cookie_path_uses_configured_names(client: httpx.AsyncClient) -> None:
    response = await client.get("/access", headers=cookie_header(other_cookie="x"))
    assert_error(response, 401, "MissingTokenError")
    assert "access_token_cookie" in response.json()["message"]


# Query and JSON body -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config_overrides", "name"),
    [
        ({"JWT_TOKEN_LOCATION": ["query"]}, "token"),
        ({"JWT_TOKEN_LOCATION": ["query"], "JWT_QUERY_STRING_NAME": "jwt"}, "jwt"),
    ],
)
async def test_query(client: httpx.AsyncClient, auth: AuthX[Any], name: str) -> None:
    access = await client.get("/access", params={name: auth.create_access_token("alice")})
    refresh = await client.get("/refresh", params={name: auth.create_refresh_token("bob")})
    other_name = await client.get("/access", params={"other": auth.create_access_token("alice")})
    assert (access.status_code, access.json()["sub"]) == (200, "alice")
    assert (refresh.status_code, refresh.json()["type"]) == (200, "refresh")
    assert_error(other_name, 401, "MissingTokenError")


@pytest.mark.parametrize("config_overrides", [{"JWT_TOKEN_LOCATION": ["query"]}])
async def test_empty_query_token_is_invalid(client: httpx.AsyncClient) -> None:
    response = await client.get("/access?token=")
    assert response.status_code == 401


@pytest.mark.parametrize("config_overrides", [{"JWT_TOKEN_LOCATION": ["json"]}])
@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
async def test_json_body(client: httpx.AsyncClient, auth: AuthX[Any], content_type: str) -> None:
    body = json.dumps(
        {
            "access_token": auth.create_access_token("alice"),
            "refresh_token": auth.create_refresh_token("bob"),
        }
    )
    headers = {"Content-Type": content_type}
    access = await client.post("/access", content=body, headers=headers)
    refresh = await client.put("/refresh", content=body, headers=headers)
    assert (access.status_code, access.json()["sub"]) == (200, "alice")
    assert (refresh.status_code, refresh.json()["sub"]) == (200, "bob")


@pytest.mark.parametrize(
    "config_overrides", [{"JWT_TOKEN_LOCATION": ["json"], "JWT_JSON_KEY": "jwt"}]
)
async def test_json_custom_key(client: httpx.AsyncClient, auth: AuthX[Any]) -> None:
    response = await client.post("/access", json={"jwt": auth.create_access_token("alice")})
    assert response.status_code == 200


@pytest.mark.parametrize("config_overrides", [{"JWT_TOKEN_LOCATION": ["json"]}])
@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        ('{"access_token": "x"', "application/json"),
        ('{"access_token": 12}', "application/json"),
        ('["access_token"]', "application/json"),
        ('{"other": "x"}', "application/json"),
        ('{"access_token": "x"}', "text/plain"),
    ],
)
async def test_json_without_usable_token(
    client: httpx.AsyncClient, content: str, content_type: str
) -> None:
    response = await client.post("/access", content=content, headers={"Content-Type": content_type})
    assert_error(response, 401, "MissingTokenError")


# Several locations ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config_overrides", "winner"),
    [
        ({"JWT_TOKEN_LOCATION": ["headers", "query"]}, "from-header"),
        ({"JWT_TOKEN_LOCATION": ["query", "headers"]}, "from-query"),
    ],
)
async def test_locations_are_tried_in_order(
    client: httpx.AsyncClient, auth: AuthX[Any], winner: str
) -> None:
    response = await client.get(
        "/access",
        headers=bearer(auth.create_access_token("from-header")),
        params={"token": auth.create_access_token("from-query")},
    )
    assert response.json()["sub"] == winner


@pytest.mark.parametrize("config_overrides", [{"JWT_TOKEN_LOCATION": ["headers", "query"]}])
async def test_later_location_used_when_earlier_is_empty(
    client: httpx.AsyncClient, auth: AuthX[Any]
) -> None:
    response = await client.get("/access", params={"token": auth.create_access_token("q")})
    assert response.json()["sub"] == "q"


@pytest.mark.parametrize("config_overrides", [{"JWT_TOKEN_LOCATION": ["headers", "query"]}])
async def test_invalid_token_does_not_fall_through(
    client: httpx.AsyncClient, auth: AuthX[Any]
) -> None:
    response = await client.get(
        "/access",
        headers=bearer("not-a-jwt"),
        params={"token": auth.create_access_token("q")},
    )
    assert_error(response, 401, "JWTDecodeError")


@pytest.mark.parametrize(
    "config_overrides", [{"JWT_TOKEN_LOCATION": ["headers", "cookies", "query", "json"]}]
)
async def test_missing_token_names_every_place_tried(client: httpx.AsyncClient) -> None:
    response = await client.post("/access", json={})
    assert_error(response, 401, "MissingTokenError")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    message = response.json()["message"]
    for place in ("Authorization", "access_token_cookie", "'token'", "json"):
        assert place in message


async def test_route_locations_override_config(auth: AuthX[Any]) -> None:
    app = build_app(auth)

    @app.get("/query-only")
    async def query_only(payload: Any = Depends(auth.token_required(locations=["query"]))) -> str:
        return payload.sub  # type: ignore[no-any-return]

    token = auth.create_access_token("alice")
    async with serve(app) as client:
        by_header = await client.get("/query-only", headers=bearer(token))
        by_query = await client.get("/query-only", params={"token": token})
    assert_error(by_header, 401, "MissingTokenError")
    assert by_query.json() == "alice"


async def test_get_tokens_from_request_methods() -> None:
    """get_access/refresh_token_from_request find tokens without verifying them."""
    auth = make_auth(JWT_TOKEN_LOCATION=["headers", "cookies"])
    app = FastAPI()
    auth.handle_errors(app)

    @app.get("/dual")
    async def dual(request: Request) -> dict[str, str]:
        access = await auth.get_access_token_from_request(request, locations=["headers"])
        refresh = await auth.get_refresh_token_from_request(request, locations=["cookies"])
        payload = auth.verify_token(access, verify_csrf=False)
        return {"access": access.location, "refresh": refresh.location, "sub": payload.sub}

    async with serve(app) as client:
        headers = bearer(auth.create_access_token("alice"))
        headers.update(cookie_header(refresh_token_cookie="unverified"))
        ok = await client.get("/dual", headers=headers)
        missing = await client.get("/dual", headers=bearer(auth.create_access_token("alice")))
    assert ok.json() == {"access": "headers", "refresh": "cookies", "sub": "alice"}
    assert_error(missing, 401, "MissingTokenError")


@pytest.mark.parametrize(
    "declare",
    [
        lambda auth: auth.token_required(locations=["headers", "body"]),
        lambda auth: auth.scopes_required("read", locations=["body"]),
    ],
    ids=["token_required", "scopes_required"],
)
def test_unknown_route_location_fails_at_declaration(declare: Any) -> None:
    with pytest.raises(BadConfigurationError, match=r"locations .*'body'"):
        declare(make_auth())


async def test_unknown_location_at_request_time_is_a_server_error() -> None:
    """A setup mistake is not reported to the client as a missing token."""
    auth = make_auth()
    app = FastAPI()
    auth.handle_errors(app)

    @app.get("/lookup")
    async def lookup(request: Request) -> None:
        await auth.get_access_token_from_request(request, locations=["body"])

    async with serve(app) as client:
        response = await client.get("/lookup", headers=bearer(auth.create_access_token("a")))
    assert response.status_code == 500
    assert response.json()["error_type"] == "BadConfigurationError"
    assert "WWW-Authenticate" not in response.headers
