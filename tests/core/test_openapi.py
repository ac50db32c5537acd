"""Security schemes in the app's OpenAPI document, per configured location."""

from __future__ import annotations

from typing import Any

import pytest
from core_support import build_app, make_auth, serve
from fastapi import Depends, FastAPI

BEARER = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


def document(**overrides: Any) -> dict[str, Any]:
    return build_app(make_auth(**overrides)).openapi()


def security_of(doc: dict[str, Any], path: str, method: str = "get") -> list[dict[str, Any]]:
    return doc["paths"][path][method].get("security", [])  # type: ignore[no-any-return]


def test_default_header_is_http_bearer() -> None:
    doc = document()
    assert doc["components"]["securitySchemes"] == {"AuthXBearer": BEARER}
    for path in ("/access", "/refresh", "/fresh", "/admin", "/subject"):
        assert security_of(doc, path) == [{"AuthXBearer": []}], path


def test_routes_without_auth_have_no_security() -> None:
    doc = document()
    assert security_of(doc, "/login", "post") == []
    assert security_of(doc, "/optional/access") == []


@pytest.mark.parametrize(
    ("overrides", "scheme"),
    [
        (
            {"JWT_HEADER_NAME": "X-Api-Token"},
            {"type": "apiKey", "in": "header", "name": "X-Api-Token"},
        ),
        (
            {"JWT_HEADER_TYPE": "Token"},
            {"type": "apiKey", "in": "header", "name": "Authorization"},
        ),
        ({"JWT_HEADER_TYPE": ""}, {"type": "apiKey", "in": "header", "name": "Authorization"}),
    ],
)
def test_custom_header_is_an_api_key(overrides: dict[str, Any], scheme: dict[str, Any]) -> None:
    doc = document(**overrides)
    assert doc["components"]["securitySchemes"] == {"AuthXHeader": scheme}
    assert security_of(doc, "/access") == [{"AuthXHeader": []}]


def test_lowercase_bearer_settings_still_http_bearer() -> None:
    doc = document(JWT_HEADER_NAME="authorization", JWT_HEADER_TYPE="bearer")
    assert doc["components"]["securitySchemes"] == {"AuthXBearer": BEARER}


def test_every_location() -> None:
    doc = document(JWT_TOKEN_LOCATION=["headers", "cookies", "query", "json"])
    assert doc["components"]["securitySchemes"] == {
        "AuthXBearer": BEARER,
        "AuthXAccessCookie": {"type": "apiKey", "in": "cookie", "name": "access_token_cookie"},
        "AuthXRefreshCookie": {"type": "apiKey", "in": "cookie", "name": "refresh_token_cookie"},
        "AuthXQuery": {"type": "apiKey", "in": "query", "name": "token"},
    }
    # Ordered header, cookie, query; each is an alternative.
    assert security_of(doc, "/access") == [
        {"AuthXBearer": []},
        {"AuthXAccessCookie": []},
        {"AuthXQuery": []},
    ]
    assert security_of(doc, "/refresh") == [
        {"AuthXBearer": []},
        {"AuthXRefreshCookie": []},
        {"AuthXQuery": []},
    ]


def test_json_only_has_no_scheme() -> None:
    doc = document(JWT_TOKEN_LOCATION=["json"])
    assert "securitySchemes" not in doc.get("components", {})
    assert security_of(doc, "/access", "post") == []


def test_custom_cookie_and_query_names() -> None:
    doc = document(
        JWT_TOKEN_LOCATION=["cookies", "query"],
        JWT_ACCESS_COOKIE_NAME="at",
        JWT_QUERY_STRING_NAME="jwt",
    )
    schemes = doc["components"]["securitySchemes"]
    assert schemes["AuthXAccessCookie"]["name"] == "at"
    assert schemes["AuthXQuery"]["name"] == "jwt"


def test_route_locations_choose_the_schemes() -> None:
    auth = make_auth(JWT_TOKEN_LOCATION=["headers", "cookies"])
    app = FastAPI()

    @app.get("/query-only")
    async def query_only(payload: Any = Depends(auth.token_required(locations=["query"]))) -> None:
        return None

    assert security_of(app.openapi(), "/query-only") == [{"AuthXQuery": []}]


async def test_schemes_document_but_do_not_reject(monkeypatch: pytest.MonkeyPatch) -> None:
    """The schemes are auto_error=False: AuthX, not FastAPI's security classes, answers."""
    auth = make_auth(JWT_TOKEN_LOCATION=["headers", "cookies", "query"])
    async with serve(auth) as client:
        response = await client.get("/access")
        docs = await client.get("/openapi.json")
    assert response.status_code == 401
    assert response.json()["error_type"] == "MissingTokenError"
    assert docs.status_code == 200
    assert "AuthXBearer" in docs.json()["components"]["securitySchemes"]
