"""Which issuer a token is checked against when an identity provider sits beside the
application: the provider's tokens against the provider, the app's own against the app,
whether the provider is named by its issuer or by a bare JWKS URL."""

from __future__ import annotations

from typing import Any

import pytest
from core_support import SECRET, key_pair
from cryptography.hazmat.primitives.asymmetric import rsa
from test_providers import FakeProvider, provider, provider_auth, status

from authx import AuthX, AuthXConfig, RequestToken
from authx.exceptions import JWTDecodeError
from authx.token import create_token

__all__ = ["provider"]  # the fixture, shared with test_providers.py


def verify(auth: AuthX[Any], token: str) -> Any:
    return auth.verify_token(RequestToken(token=token, location="headers"))


def own(issuer: str | None) -> str:
    return create_token("bob", SECRET, audience="my-api", issuer=issuer)


async def test_own_tokens_are_checked_against_the_apps_issuer(provider: FakeProvider) -> None:
    auth = provider_auth(provider, JWT_DECODE_ISSUER="my-app", JWT_ENCODE_ISSUER="my-app")
    await auth.load_keys()
    assert verify(auth, auth.create_access_token("bob")).sub == "bob"
    assert verify(auth, provider.token()).sub == "alice"  # the provider's own issuer
    assert (await status(auth, provider.token()))[0] == 200
    assert (await status(auth, own("my-app")))[0] == 200
    for token in (own("evil"), own(None)):
        with pytest.raises(JWTDecodeError):
            verify(auth, token)
        assert (await status(auth, token))[0] == 401


def bare_jwks_auth(provider: FakeProvider, **settings: Any) -> AuthX[Any]:
    options: dict[str, Any] = {
        "JWT_JWKS_URL": f"{provider.issuer}/jwks",
        "JWT_DECODE_AUDIENCE": "my-api",
        "JWT_ENCODE_AUDIENCE": "my-api",
        "JWT_DECODE_ALGORITHMS": ["HS256", "RS256"],
        "JWT_SECRET_KEY": SECRET,
        **settings,
    }
    return AuthX(config=AuthXConfig(**options))


async def test_a_bare_jwks_url_routes_tokens_by_algorithm(provider: FakeProvider) -> None:
    auth = bare_jwks_auth(provider)
    await auth.load_keys()
    assert verify(auth, auth.create_access_token("bob")).sub == "bob"
    assert verify(auth, provider.token(iss="anyone")).sub == "alice"
    assert (await status(auth, provider.token()))[0] == 200
    with pytest.raises(JWTDecodeError):
        verify(auth, provider.token(key=rsa.generate_private_key(65537, 2048)))  # same kid


async def test_a_bare_jwks_url_with_a_decode_issuer_names_the_provider(
    provider: FakeProvider,
) -> None:
    auth = bare_jwks_auth(provider, JWT_DECODE_ISSUER=provider.issuer)
    await auth.load_keys()
    # The app's own tokens (no issuer) are not the provider's and are not held to its issuer.
    assert verify(auth, auth.create_access_token("bob")).sub == "bob"
    assert (await status(auth, auth.create_access_token("bob")))[0] == 200
    assert verify(auth, provider.token()).sub == "alice"
    with pytest.raises(JWTDecodeError):
        verify(auth, provider.token(iss="https://other.example"))


async def test_decoding_without_verification_reads_a_provider_token(
    provider: FakeProvider,
) -> None:
    auth = provider_auth(provider)
    payload = auth._decode_token(provider.token(scope="read"), verify=False)
    assert payload.sub == "alice"
    assert payload.type == "access"


async def test_with_a_bare_jwks_url_the_apps_issuer_is_its_encode_issuer(
    provider: FakeProvider,
) -> None:
    # JWT_DECODE_ISSUER would name the provider: the app's own tokens carry JWT_ENCODE_ISSUER.
    auth = bare_jwks_auth(provider, JWT_ENCODE_ISSUER="my-app")
    await auth.load_keys()
    assert verify(auth, auth.create_access_token("bob")).sub == "bob"
    assert verify(auth, own("my-app")).sub == "bob"
    with pytest.raises(JWTDecodeError):
        verify(auth, own("evil"))
    assert (await status(auth, own("evil")))[0] == 401


async def test_with_an_oidc_issuer_the_apps_issuer_is_its_decode_issuer(
    provider: FakeProvider,
) -> None:
    # As without a provider: no JWT_DECODE_ISSUER, no issuer check on the app's own tokens.
    auth = provider_auth(provider, JWT_ENCODE_ISSUER="my-app")
    await auth.load_keys()
    assert verify(auth, own("my-app")).sub == "bob"
    assert verify(auth, own(None)).sub == "bob"


async def test_a_rotated_provider_key_is_fetched_for_its_new_kid(provider: FakeProvider) -> None:
    auth = provider_auth(provider, JWT_JWKS_MIN_REFETCH_SECONDS=0)
    await auth.load_keys()
    assert (await status(auth, provider.token()))[0] == 200
    provider.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    provider.kid = "key-2"
    assert (await status(auth, provider.token()))[0] == 200


async def test_the_apps_own_tokens_do_not_wait_for_the_provider(provider: FakeProvider) -> None:
    # The app signs RS256 too: its tokens never need the provider's keys.
    private, public = key_pair("RS256")
    auth = provider_auth(
        provider, JWT_ALGORITHM="RS256", JWT_PRIVATE_KEY=private, JWT_PUBLIC_KEY=public
    )
    provider.down = True
    assert (await status(auth, auth.create_access_token("bob")))[0] == 200
    assert provider.requests == []
