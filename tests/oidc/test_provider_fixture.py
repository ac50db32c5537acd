"""The OIDC provider fixture itself: discovery, JWKS, real tokens, rotation, outage."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import timedelta

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from tests.oidc import conftest
from tests.oidc.provider import DEFAULT_AUDIENCE, OIDCProvider, ProviderFactory, forge_hs256


def served_kids(provider: OIDCProvider) -> list[str]:
    keys = httpx.get(provider.jwks_uri, timeout=5).json()["keys"]
    return [key["kid"] for key in keys]


def verify(provider: OIDCProvider, token: str, audience: str = DEFAULT_AUDIENCE) -> dict:
    """Verified as a relying party would: the key by the token's kid from the JWKS."""
    signing_key = jwt.PyJWKClient(provider.jwks_uri, cache_keys=False).get_signing_key_from_jwt(
        token
    )
    return jwt.decode(
        token, signing_key, algorithms=["RS256"], audience=audience, issuer=provider.issuer
    )


def test_discovery_document_points_at_the_provider(oidc_provider: OIDCProvider) -> None:
    document = httpx.get(oidc_provider.discovery_url, timeout=5).json()

    assert oidc_provider.issuer.startswith("http://127.0.0.1:")
    assert document["issuer"] == oidc_provider.issuer
    assert document["jwks_uri"] == oidc_provider.jwks_uri
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert document["authorization_endpoint"] == f"{oidc_provider.issuer}/oauth2/authorize"
    assert document["token_endpoint"] == f"{oidc_provider.issuer}/oauth2/token"


def test_token_is_rs256_with_the_kid_its_jwks_publishes(oidc_provider: OIDCProvider) -> None:
    token = oidc_provider.token()
    header = jwt.get_unverified_header(token)

    assert header["alg"] == "RS256"
    assert header["kid"] == oidc_provider.kid
    assert served_kids(oidc_provider) == [oidc_provider.kid]
    served = httpx.get(oidc_provider.jwks_uri, timeout=5).json()
    assert served == oidc_provider.jwks()
    assert served["keys"][0] | {"use": "sig", "alg": "RS256"} == served["keys"][0]


def test_token_verifies_against_the_jwks(oidc_provider: OIDCProvider) -> None:
    claims = verify(oidc_provider, oidc_provider.token())

    assert claims["sub"] == "alice"
    assert claims["iss"] == oidc_provider.issuer
    assert claims["aud"] == [DEFAULT_AUDIENCE]
    assert claims["exp"] - claims["iat"] == 3600
    assert "scope" not in claims


def test_token_carries_the_asked_audience_scopes_and_claims(oidc_provider: OIDCProvider) -> None:
    token = oidc_provider.token(
        "bob",
        audience="orders-api",
        scopes=["orders:read", "orders:write"],
        claims={
            "permissions": ["orders:delete"],
            "realm_access": {"roles": ["admin", "auditor"]},
            "email": "bob@example.test",
        },
    )
    claims = verify(oidc_provider, token, audience="orders-api")

    assert claims["sub"] == "bob"
    assert claims["aud"] == ["orders-api"]
    assert claims["scope"] == "orders:read orders:write"
    assert claims["permissions"] == ["orders:delete"]
    assert claims["realm_access"] == {"roles": ["admin", "auditor"]}
    assert claims["email"] == "bob@example.test"
    # The claims are replaced per call: nothing lingers for the next token of bob.
    assert "permissions" not in verify(oidc_provider, oidc_provider.token("bob"))


def test_claims_given_replace_the_providers_own(oidc_provider: OIDCProvider) -> None:
    past = int(time.time()) - 600
    expired = oidc_provider.token(claims={"exp": past})
    foreign = oidc_provider.token(claims={"iss": "http://127.0.0.1:1"})

    assert jwt.decode(expired, options={"verify_signature": False})["exp"] == past
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(oidc_provider, expired)
    with pytest.raises(jwt.InvalidIssuerError):
        verify(oidc_provider, foreign)


def test_token_max_age_sets_the_lifetime(oidc_provider_factory: ProviderFactory) -> None:
    provider = oidc_provider_factory(token_max_age=timedelta(seconds=30))
    claims = verify(provider, provider.token())

    assert claims["exp"] - claims["iat"] == 30


def test_jwks_without_alg(oidc_provider_factory: ProviderFactory) -> None:
    provider = oidc_provider_factory(publish_alg=False)
    (entry,) = httpx.get(provider.jwks_uri, timeout=5).json()["keys"]

    assert "alg" not in entry
    assert entry["use"] == "sig"
    assert verify(provider, provider.token())["sub"] == "alice"


def test_public_key_pem_is_the_published_key(oidc_provider: OIDCProvider) -> None:
    pem_key = load_pem_public_key(oidc_provider.public_key_pem.encode())
    jwk_key = jwt.PyJWK(oidc_provider.public_jwk).key

    assert isinstance(pem_key, RSAPublicKey)
    assert isinstance(jwk_key, RSAPublicKey)
    assert pem_key.public_numbers() == jwk_key.public_numbers()
    assert oidc_provider.public_jwk["kid"] == oidc_provider.kid


def test_forged_hs256_token_is_signed_with_the_public_key(oidc_provider: OIDCProvider) -> None:
    payload = {"sub": "mallory", "iss": oidc_provider.issuer, "aud": DEFAULT_AUDIENCE}
    forged = forge_hs256(payload, oidc_provider.public_key_pem, headers={"kid": oidc_provider.kid})
    signing_input, _, signature = forged.rpartition(".")
    expected = hmac.new(
        oidc_provider.public_key_pem.encode(), signing_input.encode(), hashlib.sha256
    ).digest()

    assert jwt.get_unverified_header(forged) == {
        "alg": "HS256",
        "typ": "JWT",
        "kid": oidc_provider.kid,
    }
    assert jwt.utils.base64url_decode(signature) == expected
    with pytest.raises(jwt.InvalidAlgorithmError):
        verify(oidc_provider, forged)


def test_rotation_signs_with_a_new_key_and_publishes_it(oidc_provider: OIDCProvider) -> None:
    old_kid, old_pem = oidc_provider.kid, oidc_provider.public_key_pem
    old_token = oidc_provider.token()

    new_kid = oidc_provider.rotate_keys()
    new_token = oidc_provider.token()

    assert new_kid == oidc_provider.kid != old_kid
    assert oidc_provider.public_key_pem != old_pem
    assert served_kids(oidc_provider) == [new_kid]
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    assert verify(oidc_provider, new_token)["sub"] == "alice"
    with pytest.raises(jwt.PyJWKClientError, match="Unable to find a signing key"):
        verify(oidc_provider, old_token)


def test_rotation_keeping_the_previous_keys(oidc_provider: OIDCProvider) -> None:
    first_kid = oidc_provider.kid
    old_token = oidc_provider.token()

    second_kid = oidc_provider.rotate_keys(keep_previous=True)
    third_kid = oidc_provider.rotate_keys(keep_previous=True)

    assert served_kids(oidc_provider) == [third_kid, second_kid, first_kid]
    assert jwt.get_unverified_header(oidc_provider.token())["kid"] == third_kid
    assert verify(oidc_provider, old_token)["sub"] == "alice"


def test_stop_refuses_and_start_restores_on_the_same_port(oidc_provider: OIDCProvider) -> None:
    issuer, kid = oidc_provider.issuer, oidc_provider.kid
    with httpx.Client(timeout=5) as client:
        assert client.get(oidc_provider.jwks_uri).status_code == 200  # a kept-alive connection

        oidc_provider.stop()
        assert not oidc_provider.running
        with pytest.raises(httpx.ConnectError):
            httpx.get(oidc_provider.discovery_url, timeout=5)
        # The kept-alive connection is cut too, not served by a leftover thread.
        with pytest.raises(httpx.TransportError):
            client.get(oidc_provider.jwks_uri)
        with pytest.raises(httpx.ConnectError):
            oidc_provider.token()

        oidc_provider.start()
        assert oidc_provider.running
        assert oidc_provider.issuer == issuer
        assert client.get(oidc_provider.jwks_uri).json()["keys"][0]["kid"] == kid
    assert verify(oidc_provider, oidc_provider.token())["iss"] == issuer


def test_stop_and_start_are_idempotent(oidc_provider: OIDCProvider) -> None:
    oidc_provider.start()
    oidc_provider.stop()
    oidc_provider.stop()
    oidc_provider.start()

    assert httpx.get(oidc_provider.discovery_url, timeout=5).status_code == 200


async def test_serves_an_async_client_in_an_async_test(oidc_provider: OIDCProvider) -> None:
    token = oidc_provider.token()  # blocking, but the provider runs in a thread of its own
    async with httpx.AsyncClient(timeout=5) as client:
        jwks = (await client.get(oidc_provider.jwks_uri)).json()

    assert [key["kid"] for key in jwks["keys"]] == [jwt.get_unverified_header(token)["kid"]]


def test_two_providers_are_two_issuers(oidc_provider_factory: ProviderFactory) -> None:
    first, second = oidc_provider_factory(), oidc_provider_factory()
    token = second.token()

    assert first.issuer != second.issuer
    assert first.kid != second.kid
    with pytest.raises(jwt.PyJWKClientError, match="Unable to find a signing key"):
        verify(first, token)


def test_missing_package_skips_locally_and_fails_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest.importlib.util, "find_spec", lambda name: None)

    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="oidc-provider-mock is not installed"):
        conftest.require_oidc_provider_mock()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required when CI=true"):
        conftest.require_oidc_provider_mock()
