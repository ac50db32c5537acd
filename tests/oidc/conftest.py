"""OpenID Connect provider fixtures: a real provider (oidc-provider-mock) on 127.0.0.1.

See tests/oidc/provider.py for what the provider is and what a test can ask of it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.oidc.provider import PACKAGE, OIDCProvider, ProviderFactory


def require_oidc_provider_mock() -> None:
    """Skip without oidc-provider-mock, except on CI where its absence is a failure."""
    if importlib.util.find_spec(PACKAGE) is not None:
        return
    reason = 'oidc-provider-mock is not installed (pip install -e ".[test]")'
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; it is required when CI=true")
    pytest.skip(reason)


@pytest.fixture
def oidc_provider_factory() -> Iterator[ProviderFactory]:
    """Starts providers, each on its own free port with its own key; all stop afterwards.

    ``oidc_provider_factory(token_max_age=timedelta(seconds=5), publish_alg=False)``;
    a second provider is a real other issuer, with a key the first does not publish.
    """
    require_oidc_provider_mock()
    started: list[OIDCProvider] = []

    def start(**options: Any) -> OIDCProvider:
        provider = OIDCProvider(**options)
        provider.start()
        started.append(provider)
        return provider

    yield start
    for provider in started:
        provider.stop()


@pytest.fixture
def oidc_provider(oidc_provider_factory: ProviderFactory) -> OIDCProvider:
    """A provider of this test's own, serving on 127.0.0.1 (about 50 ms to set up)."""
    return oidc_provider_factory()
