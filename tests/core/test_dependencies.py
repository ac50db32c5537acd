"""The FastAPI dependencies: token types, freshness, optional tokens, subject and blocklist."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from core_support import bearer, cookie_header, make_auth, serve
from fastapi import Depends, FastAPI

from authx import AuthX, TokenPayload

TOKENS: dict[str, Callable[[AuthX[Any]], str]] = {
    "access": lambda auth: auth.create_access_token("alice"),
    "fresh": lambda auth: auth.create_access_token("alice", fresh=True),
    "refresh": lambda auth: auth.create_refresh_token("alice"),
}


@pytest.mark.parametrize(
    ("path", "kind", "expected"),
    [
        ("/access", "access", 200),
        ("/access", "fresh", 200),
        ("/access", "refresh", "AccessTokenRequiredError"),
        ("/refresh", "refresh", 200),
        ("/refresh", "access", "RefreshTokenRequiredError"),
        ("/fresh", "fresh", 200),
        ("/fresh", "access", "FreshTokenRequiredError"),
        # The type is checked before freshness.
        ("/fresh", "refresh", "AccessTokenRequiredError"),
    ],
)
async def test_type_and_freshness(
    client: httpx.AsyncClient, auth: AuthX[Any], path: str, kind: str, expected: Any
) -> None:
    response = await client.get(path, headers=bearer(TOKENS[kind](auth)))
    if expected == 200:
        assert response.status_code == 200
        assert response.json()["type"] == ("refresh" if kind == "refresh" else "access")
    else:
        assert response.status_code == 401
        assert response.json()["error_type"] == expected


def custom_routes(auth: AuthX[Any]) -> FastAPI:
    app = FastAPI()
    auth.handle_errors(app)
    dependencies = {
        "/property/access": auth.access_token_required,
        "/property/refresh": auth.refresh_token_required,
        "/property/fresh": auth.fresh_token_required,
        "/required/refresh-any-type": auth.token_required(type="refresh", verify_type=False),
        "/required/fresh": auth.token_required(verify_fresh=True),
        "/required/default": auth.token_required(),
    }
    for path, dependency in dependencies.items():

        async def route(payload: TokenPayload = Depends(dependency)) -> str:
            return payload.type or ""

        app.get(path)(route)
    return app


@pytest.mark.parametrize(
    ("path", "kind", "status"),
    [
        ("/property/access", "access", 200),
        ("/property/access", "refresh", 401),
        ("/property/refresh", "refresh", 200),
        ("/property/refresh", "access", 401),
        ("/property/fresh", "fresh", 200),
        ("/property/fresh", "access", 401),
        ("/required/refresh-any-type", "access", 200),
        ("/required/refresh-any-type", "refresh", 200),
        ("/required/fresh", "fresh", 200),
        ("/required/fresh", "access", 401),
        ("/required/default", "access", 200),
        ("/required/default", "refresh", 401),
    ],
)
async def test_dependency_factories(path: str, kind: str, status: int) -> None:
    auth = make_auth()
    async with serve(custom_routes(auth)) as client:
        response = await client.get(path, headers=bearer(TOKENS[kind](auth)))
    assert response.status_code == status


# Optional, unverified tokens -----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind"), [("/optional/access", "access"), ("/optional/refresh", "refresh")]
)
async def test_optional_token_is_returned_unverified(
    client: httpx.AsyncClient, auth: AuthX[Any], path: str, kind: str
) -> None:
    # An expired token: ACCESS_TOKEN / REFRESH_TOKEN only find it, they do not verify it.
    token = (
        auth.create_access_token("a", expiry=timedelta(seconds=-1))
        if kind == "access"
        else auth.create_refresh_token("a", expiry=timedelta(seconds=-1))
    )
    response = await client.get(path, headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {"token": token, "type": kind, "location": "headers"}


@pytest.mark.parametrize("path", ["/optional/access", "/optional/refresh"])
async def test_optional_token_absent_is_none(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.json() is None


@pytest.mark.parametrize("config_overrides", [{"JWT_TOKEN_LOCATION": ["cookies"]}])
async def test_optional_token_from_cookie(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/optional/refresh", headers=cookie_header(refresh_token_cookie="opaque")
    )
    assert response.json() == {"token": "opaque", "type": "refresh", "location": "cookies"}


# Current subject ---------------------------------------------------------------------


USERS = {"alice": {"name": "Alice"}}


def sync_getter(uid: str) -> dict[str, str] | None:
    return USERS.get(uid)


async def async_getter(uid: str) -> dict[str, str] | None:
    await asyncio.sleep(0)
    return USERS.get(uid)


class AwaitableGetter:
    async def __call__(self, uid: str) -> dict[str, str] | None:
        return USERS.get(uid)


@pytest.mark.parametrize(
    "getter", [sync_getter, async_getter, AwaitableGetter()], ids=["sync", "async", "async-call"]
)
async def test_current_subject(client: httpx.AsyncClient, auth: AuthX[Any], getter: Any) -> None:
    auth.set_subject_getter(getter)
    response = await client.get("/subject", headers=bearer(auth.create_access_token("alice")))
    assert response.status_code == 200
    assert response.json() == {"subject": {"name": "Alice"}}


@pytest.mark.parametrize(
    "getter", [sync_getter, async_getter, AwaitableGetter()], ids=["sync", "async", "async-call"]
)
async def test_current_subject_not_found_is_401(
    client: httpx.AsyncClient, auth: AuthX[Any], getter: Any
) -> None:
    # As Flask-JWT-Extended's user lookup error: a valid token whose user is gone.
    auth.set_subject_getter(getter)
    response = await client.get("/subject", headers=bearer(auth.create_access_token("nobody")))
    assert response.status_code == 401
    assert response.json()["error_type"] == "UnknownSubjectError"
    assert "nobody" not in response.text


async def test_current_subject_needs_a_valid_access_token(
    client: httpx.AsyncClient, auth: AuthX[Any]
) -> None:
    auth.set_subject_getter(sync_getter)
    missing = await client.get("/subject")
    refresh = await client.get("/subject", headers=bearer(auth.create_refresh_token("alice")))
    assert (missing.status_code, missing.json()["error_type"]) == (401, "MissingTokenError")
    assert (refresh.status_code, refresh.json()["error_type"]) == (401, "AccessTokenRequiredError")


async def test_current_subject_without_getter_says_how_to_set_one(
    client: httpx.AsyncClient, auth: AuthX[Any]
) -> None:
    with pytest.raises(AttributeError, match="set_subject_getter"):
        await client.get("/subject", headers=bearer(auth.create_access_token("alice")))


# Blocklist ---------------------------------------------------------------------------


class AsyncCallBlocklist:
    """An object whose ``__call__`` is a coroutine function."""

    def __init__(self, revoked: set[str]) -> None:
        self.revoked = revoked

    async def __call__(self, token: str) -> bool:
        return token in self.revoked


def make_blocklist(style: str, revoked: set[str], seen: list[str]) -> Any:
    def sync_check(token: str) -> bool:
        seen.append(token)
        return token in revoked

    async def async_check(token: str) -> bool:
        seen.append(token)
        await asyncio.sleep(0)
        return token in revoked

    if style == "sync":
        return sync_check
    if style == "async":
        return async_check
    seen.append("<object>")
    return AsyncCallBlocklist(revoked)


BLOCKLIST_STYLES = ["sync", "async", "async-call-object"]


@pytest.mark.parametrize("style", BLOCKLIST_STYLES)
@pytest.mark.parametrize("path", ["/access", "/subject", "/admin"])
async def test_blocklist(
    client: httpx.AsyncClient, auth: AuthX[Any], style: str, path: str
) -> None:
    revoked: set[str] = set()
    seen: list[str] = []
    auth.set_token_blocklist(make_blocklist(style, revoked, seen))
    auth.set_subject_getter(sync_getter)
    good = auth.create_access_token("alice", scopes=["admin:*", "read"])
    bad = auth.create_access_token("alice", scopes=["admin:*", "read"])
    revoked.add(bad)
    ok = await client.get(path, headers=bearer(good))
    refused = await client.get(path, headers=bearer(bad))
    assert ok.status_code == 200
    assert refused.status_code == 401
    assert refused.json() == {
        "message": "Invalid token",
        "error_type": "RevokedTokenError",
        "reason": "token_revoked",
    }
    if style != "async-call-object":
        # The callback receives the raw encoded token.
        assert seen == [good, bad]


@pytest.mark.parametrize("style", BLOCKLIST_STYLES)
async def test_is_token_in_blocklist_is_awaitable(style: str) -> None:
    auth = make_auth()
    token = auth.create_access_token("alice")
    assert await auth.is_token_in_blocklist(token) is False  # no callback yet
    auth.set_token_blocklist(make_blocklist(style, {token}, []))
    assert auth.is_token_callback_set
    assert await auth.is_token_in_blocklist(token) is True
    assert await auth.is_token_in_blocklist(auth.create_access_token("bob")) is False
    assert await auth.is_token_in_blocklist(None) is False
