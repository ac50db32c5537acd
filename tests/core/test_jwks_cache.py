"""The rules of the identity-provider key cache, with a controllable clock.

The provider is an ``httpx.MockTransport`` here so that every request can be
counted; the real provider (discovery, rotation, outage) is exercised in
``tests/oidc``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from authx._jwks import ProviderKeys, check_provider_url, jwk_algorithms
from authx.exceptions import BadConfigurationError, KeySourceUnavailableError

JWKS_URL = "https://idp.test/jwks"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Provider:
    """A JWKS endpoint whose keys, headers and health the test controls."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.requests = 0
        self.down = False
        self.cache_control: str | None = None
        self.delay = 0.0

    def add_rsa(self, kid: str) -> Any:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys[kid] = {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": kid}
        return key

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            return httpx.Response(503)
        headers = {"Cache-Control": self.cache_control} if self.cache_control else {}
        return httpx.Response(200, json={"keys": list(self.keys.values())}, headers=headers)


@pytest.fixture
def provider() -> Provider:
    return Provider()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_keys(provider: Provider, clock: Clock, **options: Any) -> ProviderKeys:
    settings: dict[str, Any] = {
        "cache_seconds": 300.0,
        "min_refetch_seconds": 30.0,
        "grace_seconds": 600.0,
        **options,
    }
    client = httpx.AsyncClient(transport=httpx.MockTransport(provider.handle))
    return ProviderKeys(
        issuer=None,
        jwks_url=JWKS_URL,
        algorithms=("RS256", "ES256"),
        clock=clock,
        client=client,
        **settings,
    )


def verifies(keys: ProviderKeys, kid: str | None, key: Any) -> bool:
    token = jwt.encode({"sub": "x"}, key, algorithm="RS256", headers={"kid": kid} if kid else {})
    signing_input, _, signature = token.rpartition(".")
    raw = jwt.utils.base64url_decode(signature)
    return any(
        alg.verify(signing_input.encode(), public, raw)
        for alg, public in keys.candidates(kid, "RS256")
    )


async def test_keys_are_fetched_once_then_served_from_the_cache(
    provider: Provider, clock: Clock
) -> None:
    key = provider.add_rsa("k1")
    keys = make_keys(provider, clock)
    await keys.ensure("k1", "RS256")
    assert verifies(keys, "k1", key)
    for _ in range(10):
        await keys.ensure("k1", "RS256")
    assert provider.requests == 1
    clock.now += 301  # expired: the next use fetches again
    await keys.ensure("k1", "RS256")
    assert provider.requests == 2


async def test_unknown_kids_refetch_at_most_once_per_interval(
    provider: Provider, clock: Clock
) -> None:
    provider.add_rsa("k1")
    keys = make_keys(provider, clock)
    await keys.ensure("k1", "RS256")
    await keys.ensure("junk-0", "RS256")
    assert provider.requests == 1  # fetched a moment ago: no refetch yet
    clock.now += 30
    for n in range(50):
        await keys.ensure(f"junk-{n}", "RS256")
        clock.now += 0.1
    assert provider.requests == 2  # one refetch for the 50 junk kids
    clock.now += 30
    await keys.ensure("junk-again", "RS256")
    assert provider.requests == 3


async def test_a_new_kid_is_picked_up_and_a_removed_one_stops_verifying(
    provider: Provider, clock: Clock
) -> None:
    old = provider.add_rsa("old")
    keys = make_keys(provider, clock)
    await keys.ensure("old", "RS256")
    new = provider.add_rsa("new")
    del provider.keys["old"]
    clock.now += 31
    await keys.ensure("new", "RS256")  # unknown kid: refetch allowed now
    assert verifies(keys, "new", new)
    assert not verifies(keys, "old", old)


async def test_concurrent_requests_share_one_fetch(provider: Provider, clock: Clock) -> None:
    provider.add_rsa("k1")
    provider.delay = 0.05
    keys = make_keys(provider, clock)
    await asyncio.gather(*(keys.ensure("k1", "RS256") for _ in range(20)))
    assert provider.requests == 1


@pytest.mark.parametrize(("header", "lifetime"), [("max-age=60", 60), ("public, max-age=900", 300)])
async def test_cache_control_max_age_shortens_the_cache(
    provider: Provider, clock: Clock, header: str, lifetime: int
) -> None:
    provider.add_rsa("k1")
    provider.cache_control = header
    keys = make_keys(provider, clock)
    await keys.ensure("k1", "RS256")
    clock.now += lifetime - 1
    await keys.ensure("k1", "RS256")
    assert provider.requests == 1
    clock.now += 2
    await keys.ensure("k1", "RS256")
    assert provider.requests == 2


async def test_provider_down_keeps_cached_keys_for_the_grace_period(
    provider: Provider, clock: Clock
) -> None:
    key = provider.add_rsa("k1")
    keys = make_keys(provider, clock)
    await keys.ensure("k1", "RS256")
    provider.down = True
    clock.now += 300 + 500  # expired, within the 600 s grace
    await keys.ensure("k1", "RS256")
    assert verifies(keys, "k1", key)
    clock.now += 200  # past the grace period: fail closed
    with pytest.raises(KeySourceUnavailableError):
        await keys.ensure("k1", "RS256")
    assert not verifies(keys, "k1", key)
    provider.down = False
    clock.now += 31
    await keys.ensure("k1", "RS256")  # recovers by itself
    assert verifies(keys, "k1", key)


async def test_a_provider_that_never_answered_fails_closed_without_hammering(
    provider: Provider, clock: Clock
) -> None:
    provider.add_rsa("k1")
    provider.down = True
    keys = make_keys(provider, clock)
    for _ in range(20):
        with pytest.raises(KeySourceUnavailableError):
            await keys.ensure("k1", "RS256")
    assert provider.requests == 1


async def test_algorithms_outside_the_allow_list_cause_no_fetch(
    provider: Provider, clock: Clock
) -> None:
    provider.add_rsa("k1")
    keys = make_keys(provider, clock)
    await keys.ensure("k1", "HS256")
    await keys.ensure("k1", "none")
    assert provider.requests == 0
    assert keys.candidates("k1", "HS256") == ()


def test_a_jwk_verifies_only_the_algorithms_of_its_type() -> None:
    rsa_jwk = json.loads(RSAAlgorithm.to_jwk(rsa.generate_private_key(65537, 2048).public_key()))
    ec_jwk = json.loads(ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key()))
    allowed = ("RS256", "PS256", "ES256", "ES384", "HS256")
    assert jwk_algorithms(rsa_jwk, allowed) == ("RS256", "PS256")
    assert jwk_algorithms({**rsa_jwk, "alg": "PS256"}, allowed) == ("PS256",)
    assert jwk_algorithms(ec_jwk, allowed) == ("ES256",)
    assert jwk_algorithms({**rsa_jwk, "use": "enc"}, allowed) == ()
    assert jwk_algorithms({"kty": "oct", "k": "c2VjcmV0"}, allowed) == ()


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://idp.example.com", True),
        ("http://127.0.0.1:8080/realms/x", True),
        ("http://localhost:9000", True),
        ("http://[::1]:9000", True),
        ("http://idp.example.com", False),
        ("ftp://idp.example.com", False),
        ("idp.example.com", False),
    ],
)
def test_provider_urls_must_be_https_except_on_loopback(url: str, ok: bool) -> None:
    if ok:
        assert check_provider_url(url, "JWT_JWKS_URL") == url
    else:
        with pytest.raises(BadConfigurationError, match="JWT_JWKS_URL"):
            check_provider_url(url, "JWT_JWKS_URL")


async def test_an_issuer_with_a_trailing_slash_is_discovered_without_a_double_slash(
    provider: Provider, clock: Clock
) -> None:
    # Auth0 issuers end with "/"; OpenID Connect Discovery 4 removes it before the path.
    provider.add_rsa("k1")
    seen: list[str] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(
                200, json={"issuer": "https://idp.test/", "jwks_uri": "https://idp.test/jwks"}
            )
        return await provider.handle(request)

    keys = ProviderKeys(
        issuer="https://idp.test/",
        jwks_url=None,
        algorithms=("RS256",),
        cache_seconds=300,
        min_refetch_seconds=30,
        grace_seconds=600,
        clock=clock,
        client=httpx.AsyncClient(transport=httpx.MockTransport(handle)),
    )
    await keys.ensure("k1", "RS256")
    assert seen == ["https://idp.test/.well-known/openid-configuration", "https://idp.test/jwks"]
    assert keys.usable()


async def test_a_discovery_document_of_another_issuer_is_refused(clock: Clock) -> None:
    async def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"issuer": "https://evil.test", "jwks_uri": "https://evil.test/jwks"}
        )

    keys = ProviderKeys(
        issuer="https://idp.test",
        jwks_url=None,
        algorithms=("RS256",),
        cache_seconds=300,
        min_refetch_seconds=30,
        grace_seconds=600,
        clock=clock,
        client=httpx.AsyncClient(transport=httpx.MockTransport(handle)),
    )
    with pytest.raises(KeySourceUnavailableError):
        await keys.ensure("k1", "RS256")
