"""What an application calling AuthX directly is told about a provider token no key may
verify (HTTP clients see the generic "Invalid Token"; see test_providers.py)."""

from __future__ import annotations

import pytest
from test_providers import FakeProvider, provider, provider_auth

from authx import RequestToken
from authx.exceptions import JWTDecodeError, TokenInvalidSignatureError

__all__ = ["provider"]  # the fixture, shared with test_providers.py


@pytest.mark.parametrize(
    "headers", [{"kid": "unknown-kid"}, {}], ids=["unknown-kid", "algorithm-not-allowed"]
)
async def test_no_key_may_verify_it(provider: FakeProvider, headers: dict[str, str]) -> None:
    auth = provider_auth(provider)
    await auth.load_keys()
    algorithm = "RS256" if headers else "RS384"
    token = provider.token(algorithm=algorithm, headers=headers)
    with pytest.raises(JWTDecodeError) as raised:
        auth.verify_token(RequestToken(token=token, location="headers"))
    assert not isinstance(raised.value, TokenInvalidSignatureError)
    assert raised.value.message == "Invalid token: no key may verify it (alg or kid not allowed)"
