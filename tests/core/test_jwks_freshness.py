"""When the identity-provider key cache answers without a fetch: a known kid (or a token
without one) before the keys expire, and nothing else."""

from __future__ import annotations

import pytest
from test_jwks_cache import Clock, Provider, clock, make_keys, provider

from authx._jwks import check_provider_url
from authx.exceptions import BadConfigurationError, KeySourceUnavailableError

__all__ = ["clock", "provider"]  # the fixtures, shared with test_jwks_cache.py


async def test_a_known_kid_is_fresh_until_the_keys_expire(provider: Provider, clock: Clock) -> None:
    provider.add_rsa("k1")
    keys = make_keys(provider, clock)
    assert not keys.fresh("k1", "RS256")  # nothing fetched yet
    await keys.ensure("k1", "RS256")
    fetched = clock.now
    assert keys.fresh("k1", "RS256")
    assert keys.fresh(None, "RS256")  # a token without kid: any key of its algorithm
    assert keys.fresh(7, "RS256")  # a kid that is not a string counts as none
    clock.now = fetched + 299.5
    assert keys.fresh("k1", "RS256")
    clock.now = fetched + 300  # the instant the keys expire: a fetch is due
    assert not keys.fresh("k1", "RS256")
    assert not keys.fresh(None, "RS256")


async def test_an_unknown_kid_or_algorithm_is_never_fresh(provider: Provider, clock: Clock) -> None:
    provider.add_rsa("k1")
    keys = make_keys(provider, clock)
    await keys.ensure("k1", "RS256")
    assert not keys.fresh("k2", "RS256")
    assert not keys.fresh("k1", "ES256")
    assert not keys.fresh(None, "ES256")


async def test_the_keys_expire_at_their_lifetime_exactly(provider: Provider, clock: Clock) -> None:
    provider.add_rsa("k1")
    keys = make_keys(provider, clock)
    await keys.ensure("k1", "RS256")
    fetched = clock.now
    clock.now = fetched + 299.9
    await keys.ensure("k1", "RS256")
    assert provider.requests == 1
    clock.now = fetched + 300
    await keys.ensure("k1", "RS256")
    assert provider.requests == 2


async def test_an_unknown_kid_refetches_once_the_interval_has_passed_exactly(
    provider: Provider, clock: Clock
) -> None:
    provider.add_rsa("k1")
    keys = make_keys(provider, clock)
    await keys.ensure("k1", "RS256")
    clock.now += 29.9
    await keys.ensure("junk", "RS256")
    assert provider.requests == 1
    clock.now += 0.1  # 30 s since the last fetch: the minimum interval
    await keys.ensure("junk", "RS256")
    assert provider.requests == 2


async def test_a_kid_that_is_not_a_string_counts_as_none(provider: Provider, clock: Clock) -> None:
    provider.add_rsa("k1")
    keys = make_keys(provider, clock)
    await keys.ensure("k1", "RS256")
    clock.now += 60  # a refetch would be allowed, were the kid unknown
    await keys.ensure(7, "RS256")
    await keys.ensure(None, "RS256")
    assert provider.requests == 1
    assert keys.candidates(7, "RS256") == ()


async def test_cached_keys_verify_until_the_end_of_the_grace_period_exactly(
    provider: Provider, clock: Clock
) -> None:
    provider.add_rsa("k1")
    keys = make_keys(provider, clock)
    await keys.ensure("k1", "RS256")
    end = clock.now + 300 + 600  # lifetime plus grace
    clock.now = end
    assert keys.candidates("k1", "RS256")
    assert keys.usable()
    clock.now = end + 0.001
    assert keys.candidates("k1", "RS256") == ()
    assert not keys.usable()


async def test_no_usable_key_says_so(provider: Provider, clock: Clock) -> None:
    provider.down = True
    keys = make_keys(provider, clock)
    with pytest.raises(KeySourceUnavailableError) as raised:
        await keys.ensure("k1", "RS256")
    assert raised.value.message == "Identity provider keys unavailable"


@pytest.mark.parametrize("url", ["https:///jwks", "https://", "http:///jwks"])
def test_a_provider_url_without_a_host_is_refused(url: str) -> None:
    with pytest.raises(BadConfigurationError, match="JWT_JWKS_URL must"):
        check_provider_url(url, "JWT_JWKS_URL")
