"""Provider tokens read as AuthX reads its own: a refresh token is refused, scopes come
only from a string or a list of strings, and the application is told why."""

from __future__ import annotations

from typing import Any

import pytest
from test_providers import FakeProvider, provider, provider_auth

from authx import AuthX, AuthXConfig, RequestToken
from authx._provider import Provider
from authx.exceptions import JWTDecodeError, KeySourceUnavailableError

__all__ = ["provider"]  # the fixture, shared with test_providers.py


def verify(auth: Any, token: str) -> Any:
    return auth.verify_token(RequestToken(token=token, location="headers"))


@pytest.mark.parametrize(
    "claims",
    [{"type": "refresh"}, {"type": "Refresh"}, {"typ": "refresh"}, {"type": "refresh", "typ": "x"}],
)
async def test_a_provider_refresh_token_is_refused(
    provider: FakeProvider, claims: dict[str, str]
) -> None:
    auth = provider_auth(provider)
    await auth.load_keys()
    with pytest.raises(JWTDecodeError) as raised:
        verify(auth, provider.token(**claims))
    assert raised.value.message == (
        "Invalid token: a provider refresh token is not an access token"
    )


async def test_a_provider_access_token_reads_as_an_access_token(provider: FakeProvider) -> None:
    auth = provider_auth(provider)
    await auth.load_keys()
    assert verify(auth, provider.token(type="access", typ="refresh")).type == "access"
    assert verify(auth, provider.token()).type == "access"


@pytest.mark.parametrize("value", [{"admin": True}, 5, ["admin", 1], None])
async def test_scopes_that_are_not_strings_are_refused(provider: FakeProvider, value: Any) -> None:
    auth = provider_auth(provider, JWT_SCOPES_CLAIM="scp")
    await auth.load_keys()
    with pytest.raises(JWTDecodeError) as raised:
        verify(auth, provider.token(scp=value))
    assert raised.value.message == "Invalid token: scp must be a string or a list of strings"


@pytest.mark.parametrize(
    ("path", "claims", "scopes"),
    [
        ("scope", {"scope": "read  write"}, ["read", "write"]),
        ("scp", {"scp": ["read", "write"], "scopes": ["admin"]}, ["read", "write"]),
        ("realm_access.roles", {"realm_access": {"roles": ["admin"]}}, ["admin"]),
        ("realm_access.roles", {"realm_access": ["roles"]}, None),
        ("realm_access.roles", {"scopes": ["admin"]}, None),
    ],
)
def test_scopes_come_only_from_the_configured_claim(
    path: str, claims: dict[str, Any], scopes: list[str] | None
) -> None:
    config = AuthXConfig(JWT_JWKS_URL="https://idp.test/jwks", JWT_SCOPES_CLAIM=path)
    read = Provider(config).access_claims({"sub": "alice", **claims})
    assert read.get("scopes") == scopes
    assert read["type"] == "access"


async def test_loading_keys_from_a_provider_that_does_not_answer_fails() -> None:
    # Port 9 (discard) on loopback: the connection is refused at once.
    auth = AuthX(config=AuthXConfig(JWT_JWKS_URL="http://127.0.0.1:9/jwks"))
    with pytest.raises(KeySourceUnavailableError) as raised:
        await auth.load_keys()
    assert raised.value.message == "Identity provider keys unavailable"


def test_by_default_scopes_are_read_as_authx_writes_them() -> None:
    config = AuthXConfig(JWT_JWKS_URL="https://idp.test/jwks")
    read = Provider(config).access_claims({"sub": "alice", "scopes": ["read"], "scope": "x"})
    assert read["scopes"] == ["read"]
