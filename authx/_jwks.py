"""Keys of an identity provider: OpenID Connect discovery, the JWKS, and its cache.

The provider is named by configuration only (``JWT_OIDC_ISSUER`` or
``JWT_JWKS_URL``); nothing in a token (``jku``, ``x5u``, ``jwk``, ``kid``) ever
selects a URL or causes a fetch by itself. An unknown ``kid`` may trigger one
refetch per ``JWT_JWKS_MIN_REFETCH_SECONDS``; concurrent requests share one
fetch; a provider that is down leaves the cached keys working for
``JWT_JWKS_GRACE_SECONDS`` past their expiry, after which verification fails
closed. Fetches go through ``httpx.AsyncClient`` and never block the loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from jwt.algorithms import Algorithm, get_default_algorithms
from jwt.exceptions import InvalidKeyError

from authx._json import loads_object
from authx.exceptions import BadConfigurationError, KeySourceUnavailableError

__all__ = ["ProviderKeys", "check_provider_url", "jwk_algorithms"]

logger = logging.getLogger("authx")

#: Largest discovery or JWKS document read, and seconds allowed for one request.
_MAX_DOCUMENT = 512 * 1024
_TIMEOUT = 5.0
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.IGNORECASE)

#: The algorithms a JWK of each key type (and curve) can verify.
_FAMILIES: dict[tuple[str, str | None], tuple[str, ...]] = {
    ("RSA", None): ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    ("EC", "P-256"): ("ES256",),
    ("EC", "P-384"): ("ES384",),
    ("EC", "P-521"): ("ES512",),
    ("EC", "secp256k1"): ("ES256K",),
    ("OKP", "Ed25519"): ("EdDSA",),
    ("OKP", "Ed448"): ("EdDSA",),
}
_ALGORITHMS: dict[str, Algorithm] = get_default_algorithms()


def check_provider_url(url: str, setting: str) -> str:
    """``url`` if it is HTTPS, or HTTP on a loopback address; else BadConfigurationError."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host or parts.scheme not in {"https", "http"}:
        raise BadConfigurationError(f"{setting} must be an https:// URL")
    if parts.scheme == "http" and host not in _LOOPBACK:
        raise BadConfigurationError(
            f"{setting} must use https:// (plain http is allowed on loopback only)"
        )
    return url


def jwk_algorithms(jwk: Mapping[str, Any], allowed: tuple[str, ...]) -> tuple[str, ...]:
    """The allowed algorithms ``jwk`` may verify: by its ``kty`` (and curve), and its
    ``alg`` when it states one; none for symmetric or encryption keys."""
    if jwk.get("use") not in (None, "sig"):
        return ()
    kty, crv = jwk.get("kty"), jwk.get("crv")
    family = _FAMILIES.get((kty, None if kty == "RSA" else crv), ())  # type: ignore[arg-type]
    stated = jwk.get("alg")
    return tuple(name for name in allowed if name in family and (stated is None or stated == name))


@dataclass(frozen=True)
class _Key:
    kid: str | None
    algorithm: str
    verifier: tuple[Algorithm, Any]


@dataclass
class _Cache:
    keys: tuple[_Key, ...] = ()
    expires_at: float = -1.0
    #: When a fetch was last tried (success or not), for the refetch limit.
    tried_at: float = float("-inf")
    index: dict[tuple[str | None, str], tuple[tuple[Algorithm, Any], ...]] = field(
        default_factory=dict
    )


class ProviderKeys:
    """The provider's signing keys, fetched on demand and cached."""

    def __init__(
        self,
        issuer: str | None,
        jwks_url: str | None,
        algorithms: tuple[str, ...],
        cache_seconds: float,
        min_refetch_seconds: float,
        grace_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        client: Any = None,
    ) -> None:
        self.issuer = issuer
        self._jwks_url = jwks_url
        self.algorithms = algorithms
        self._cache_seconds = cache_seconds
        self._min_refetch = min_refetch_seconds
        self._grace = grace_seconds
        self._clock = clock
        self._client = client
        self._cache = _Cache()
        self._fetching: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """Where the keys come from (the issuer until discovery named the JWKS)."""
        return self._jwks_url or self._discovery_url

    @property
    def _discovery_url(self) -> str:
        # OpenID Connect Discovery 4: a trailing "/" of the issuer is removed first;
        # the document's issuer is still compared with the configured one exactly.
        return f"{(self.issuer or '').rstrip('/')}/.well-known/openid-configuration"

    # What verification asks, synchronously, of the cache ----------------------

    def candidates(self, kid: Any, algorithm: str) -> tuple[tuple[Algorithm, Any], ...]:
        """The cached keys that may verify a token with this ``kid`` and ``alg``.

        A token without ``kid`` is checked against every key fitting its algorithm.
        Keys past their grace period verify nothing (the caller refreshes first).
        """
        cache = self._cache
        if algorithm not in self.algorithms or self._clock() > cache.expires_at + self._grace:
            return ()
        if kid is not None and not isinstance(kid, str):
            return ()
        return cache.index.get((kid, algorithm), ())

    def usable(self) -> bool:
        """Whether cached keys may still verify (fetched, and within the grace period)."""
        return bool(self._cache.keys) and self._clock() <= self._cache.expires_at + self._grace

    # Keeping the cache fresh ---------------------------------------------------

    def fresh(self, kid: Any, algorithm: str) -> bool:
        """Whether the cache answers for ``kid``/``algorithm`` without a fetch."""
        key = (kid if isinstance(kid, str) else None, algorithm)
        return key in self._cache.index and self._clock() < self._cache.expires_at

    async def ensure(self, kid: Any, algorithm: str) -> None:
        """Make sure the cache can answer for ``kid``/``algorithm`` if the provider can.

        Fetches when the cache is empty or expired, or (at most once per
        ``min_refetch`` seconds) when ``kid`` is unknown. Raises
        :class:`KeySourceUnavailableError` only when no usable key is left.
        """
        if algorithm not in self.algorithms:
            return
        now = self._clock()
        cache = self._cache
        known = (kid if isinstance(kid, str) else None, algorithm) in cache.index
        if known and now < cache.expires_at:
            return
        # Expired, empty, or an unknown kid: fetch, unless a fetch was tried moments ago
        # (junk kids and a provider that is down must not make us hammer it).
        if now - cache.tried_at >= self._min_refetch:
            await self.refresh()
        if not self.usable():
            raise KeySourceUnavailableError("Identity provider keys unavailable")

    async def refresh(self) -> None:
        """Fetch the JWKS now; concurrent callers share one fetch. Never raises."""
        if self._fetching is None or self._fetching.done():
            self._fetching = asyncio.get_running_loop().create_task(self._fetch())
        await asyncio.shield(self._fetching)

    async def _fetch(self) -> None:
        self._cache.tried_at = self._clock()
        try:
            if self._jwks_url is None:
                self._jwks_url = await self._discover()
            document, max_age = await self._get(self._jwks_url)
            keys = self._parse(document)
        except Exception as exc:  # noqa: BLE001 - any failure is answered by the grace policy
            # Our own reasons (a bad document, a missing extra) are safe to show; other
            # errors are named by their type only.
            own = isinstance(exc, ValueError | BadConfigurationError)
            logger.warning(
                "cannot fetch identity provider keys from %s (%s%s)",
                self.url,
                type(exc).__name__,
                f": {exc}" if own else "",
            )
            return
        now = self._clock()
        lifetime = self._cache_seconds if max_age is None else min(max_age, self._cache_seconds)
        index: dict[tuple[str | None, str], list[tuple[Algorithm, Any]]] = {}
        for key in keys:
            for kid in {key.kid, None}:
                index.setdefault((kid, key.algorithm), []).append(key.verifier)
        self._cache = _Cache(
            keys=keys,
            expires_at=now + lifetime,
            tried_at=now,
            index={k: tuple(v) for k, v in index.items()},
        )

    async def _discover(self) -> str:
        document, _ = await self._get(self._discovery_url)
        if document.get("issuer") != self.issuer:
            raise ValueError("discovery document names another issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise ValueError("discovery document has no jwks_uri")
        return check_provider_url(jwks_uri, "jwks_uri")

    async def _get(self, url: str) -> tuple[dict[str, Any], float | None]:
        client = self._client or _client()
        try:
            async with client.stream("GET", url, timeout=_TIMEOUT) as response:
                response.raise_for_status()
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > _MAX_DOCUMENT:
                        raise ValueError("document too large")
                cache_control = response.headers.get("cache-control", "")
        finally:
            if self._client is None:
                await client.aclose()
        document = loads_object(body)
        if document is None:
            raise ValueError("not a JSON object")
        match = _MAX_AGE.search(cache_control)
        return document, float(match.group(1)) if match else None

    def _parse(self, document: Mapping[str, Any]) -> tuple[_Key, ...]:
        entries = document.get("keys")
        if not isinstance(entries, list):
            raise ValueError("JWKS has no keys list")
        keys: list[_Key] = []
        for jwk in entries:
            if not isinstance(jwk, dict):
                continue
            kid = jwk.get("kid")
            if kid is not None and not isinstance(kid, str):
                continue
            for name in jwk_algorithms(jwk, self.algorithms):
                algorithm = _ALGORITHMS[name]
                try:
                    key = algorithm.from_jwk(jwk)
                except (InvalidKeyError, ValueError, TypeError, KeyError):
                    continue
                if hasattr(key, "private_bytes"):
                    continue  # a published private key is a provider mistake: never use it
                keys.append(_Key(kid, name, (algorithm, key)))
        return tuple(keys)


def _client() -> Any:
    try:
        import httpx
    except ImportError:  # pragma: no cover - depends on the installation
        raise BadConfigurationError(
            "JWT_OIDC_ISSUER / JWT_JWKS_URL need httpx: pip install 'authx-ws[oidc]'"
        ) from None
    return httpx.AsyncClient(follow_redirects=False)
