"""What the identity provider's JWKS may contain, and how much of it is read: bounded
documents, JSON objects only, usable public signing keys only, Cache-Control max-age."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from test_jwks_cache import JWKS_URL, Clock, clock, verifies

from authx._jwks import ProviderKeys, jwk_algorithms
from authx.exceptions import KeySourceUnavailableError

__all__ = ["clock"]  # the fixture, shared with test_jwks_cache.py

LIMIT = 512 * 1024


def rsa_key() -> tuple[Any, dict[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, json.loads(RSAAlgorithm.to_jwk(key.public_key()))


def serving(clock: Clock, body: bytes, status: int = 200, **headers: str) -> ProviderKeys:
    async def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers)

    return ProviderKeys(
        issuer=None,
        jwks_url=JWKS_URL,
        algorithms=("RS256",),
        cache_seconds=300,
        min_refetch_seconds=30,
        grace_seconds=600,
        clock=clock,
        client=httpx.AsyncClient(transport=httpx.MockTransport(handle)),
    )


def padded(document: dict[str, Any], size: int) -> bytes:
    base = json.dumps({**document, "pad": ""}).encode()
    return json.dumps({**document, "pad": "x" * (size - len(base))}).encode()


async def test_a_document_of_the_largest_size_is_read_and_no_larger(clock: Clock) -> None:
    key, jwk = rsa_key()
    fits = padded({"keys": [{**jwk, "kid": "k1"}]}, LIMIT)
    assert len(fits) == LIMIT
    keys = serving(clock, fits)
    await keys.ensure("k1", "RS256")
    assert verifies(keys, "k1", key)
    too_large = padded({"keys": [{**jwk, "kid": "k1"}]}, LIMIT + 1)
    with pytest.raises(KeySourceUnavailableError):
        await serving(clock, too_large).ensure("k1", "RS256")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"[]", 200),
        (b"not json", 200),
        (b'{"keys": {}}', 200),
        (b'{"nokeys": []}', 200),
        (b'{"keys": []}', 500),
        (b'{"keys": []}', 302),
    ],
)
async def test_anything_but_a_jwks_object_gives_no_keys(
    clock: Clock, body: bytes, status: int
) -> None:
    keys = serving(clock, body, status)
    with pytest.raises(KeySourceUnavailableError):
        await keys.ensure("k1", "RS256")
    assert not keys.usable()


async def test_only_public_signing_keys_with_a_string_kid_are_used(clock: Clock) -> None:
    good, good_jwk = rsa_key()
    bad_kid, bad_kid_jwk = rsa_key()
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_jwk = json.loads(RSAAlgorithm.to_jwk(private))
    document = {
        "keys": [
            "not-a-jwk",
            {**bad_kid_jwk, "kid": 5},
            {**private_jwk, "kid": "private"},
            {"kty": "RSA", "kid": "broken", "n": "AQAB"},
            {**good_jwk, "kid": "good"},
        ]
    }
    keys = serving(clock, json.dumps(document).encode())
    await keys.ensure("good", "RS256")
    assert verifies(keys, "good", good)
    assert verifies(keys, None, good)
    assert not verifies(keys, None, bad_kid)
    assert not verifies(keys, None, private)
    assert keys.candidates("private", "RS256") == ()
    assert keys.candidates("broken", "RS256") == ()
    assert len(keys.candidates(None, "RS256")) == 1


@pytest.mark.parametrize(
    ("header", "lifetime"),
    [("Max-Age=60", 60), ("no-cache, max-age = 120", 120), ("s-maxage=10", 300), ("", 300)],
)
async def test_max_age_is_read_from_cache_control(clock: Clock, header: str, lifetime: int) -> None:
    _, jwk = rsa_key()
    body = json.dumps({"keys": [{**jwk, "kid": "k1"}]}).encode()
    keys = serving(clock, body, **({"Cache-Control": header} if header else {}))
    await keys.ensure("k1", "RS256")
    start = clock.now
    clock.now = start + lifetime - 0.5
    assert keys.fresh("k1", "RS256")
    clock.now = start + lifetime
    assert not keys.fresh("k1", "RS256")


def test_the_curve_of_an_rsa_jwk_is_ignored() -> None:
    _, jwk = rsa_key()
    assert jwk_algorithms({**jwk, "crv": "P-256"}, ("RS256", "ES256")) == ("RS256",)


def chunked(clock: Clock, body: bytes, size: int, seen: list[httpx.Request]) -> ProviderKeys:
    async def chunks() -> Any:
        for start in range(0, len(body), size):
            yield body[start : start + size]

    async def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=chunks())

    return ProviderKeys(
        issuer=None,
        jwks_url=JWKS_URL,
        algorithms=("RS256",),
        cache_seconds=300,
        min_refetch_seconds=30,
        grace_seconds=600,
        clock=clock,
        client=httpx.AsyncClient(transport=httpx.MockTransport(handle)),
    )


async def test_a_document_sent_in_chunks_is_read_whole_and_bounded(clock: Clock) -> None:
    key, jwk = rsa_key()
    seen: list[httpx.Request] = []
    body = json.dumps({"keys": [{**jwk, "kid": "k1"}]}).encode()
    keys = chunked(clock, body, 64, seen)
    await keys.ensure("k1", "RS256")
    assert verifies(keys, "k1", key)
    # Each chunk is small; together they pass the limit.
    too_large = padded({"keys": [{**jwk, "kid": "k1"}]}, LIMIT + 1)
    with pytest.raises(KeySourceUnavailableError):
        await chunked(clock, too_large, 64 * 1024, seen).ensure("k1", "RS256")


async def test_the_provider_is_asked_with_a_five_second_timeout(clock: Clock) -> None:
    _, jwk = rsa_key()
    seen: list[httpx.Request] = []
    body = json.dumps({"keys": [{**jwk, "kid": "k1"}]}).encode()
    keys = chunked(clock, body, 1024, seen)
    await keys.ensure("k1", "RS256")
    assert seen[0].method == "GET"
    assert seen[0].extensions["timeout"] == dict.fromkeys(("connect", "read", "write", "pool"), 5.0)


@pytest.mark.parametrize(
    ("discovery", "jwks", "reason"),
    [
        (
            {"issuer": "https://evil.test", "jwks_uri": "https://idp.test/jwks"},
            None,
            "discovery document names another issuer",
        ),
        ({"issuer": "https://idp.test"}, None, "discovery document has no jwks_uri"),
        (
            {"issuer": "https://idp.test", "jwks_uri": "http://idp.test/jwks"},
            None,
            "jwks_uri must use https",
        ),
        (
            {"issuer": "https://idp.test", "jwks_uri": "https://idp.test/jwks"},
            {"nokeys": []},
            "JWKS has no keys list",
        ),
        (
            {"issuer": "https://idp.test", "jwks_uri": "https://idp.test/jwks"},
            "[1, 2]",
            "not a JSON object",
        ),
    ],
)
async def test_the_warning_says_why_the_keys_could_not_be_had(
    discovery: Any, jwks: Any, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    # An operator reading the log learns what is wrong with the provider's documents.
    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json=discovery)
        if isinstance(jwks, str):
            return httpx.Response(200, content=jwks.encode())
        return httpx.Response(200, json=jwks)

    keys = ProviderKeys(
        issuer="https://idp.test",
        jwks_url=None,
        algorithms=("RS256",),
        cache_seconds=300,
        min_refetch_seconds=30,
        grace_seconds=600,
        client=httpx.AsyncClient(transport=httpx.MockTransport(handle)),
    )
    with caplog.at_level(logging.WARNING, logger="authx"):
        await keys.refresh()
    assert not keys.usable()
    assert [r.getMessage() for r in caplog.records if reason in r.getMessage()], caplog.text
