"""The Verifier: everything that decides whether a token is good.

Keys (prepared once per configuration), the signature and claims, the kind of
token (type, freshness, CSRF), revocation (the application's blocklist callback
and the store) and scopes. The HTTP and WebSocket front ends and the live
sessions all ask it, so a token passes the same checks wherever it arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from authx import token as _token
from authx._callbacks import Callbacks
from authx._keys import KeySet, keyset_for
from authx._locations import check_size
from authx._provider import Provider
from authx._revocation import Revocations
from authx.config import AuthXConfig
from authx.exceptions import (
    AuthXException,
    InsufficientScopeError,
    KeySourceUnavailableError,
    RevokedTokenError,
    TokenSubjectMismatchError,
)
from authx.schema import RequestToken, TokenPayload
from authx.scopes import has_required_scopes

__all__ = ["ScopeRequirement", "Verifier"]

#: Scopes an endpoint requires and whether all of them are needed.
ScopeRequirement = tuple[tuple[str, ...], bool]


class Verifier:
    """Verifies tokens against one AuthX's configuration, callbacks and store."""

    def __init__(
        self,
        config: Callable[[], AuthXConfig],
        callbacks: Callbacks,
        revocations: Revocations,
        login_type: str | None = None,
    ) -> None:
        self._config = config
        self._callbacks = callbacks
        self._revocations = revocations
        self.login_type = login_type
        self._keyset: KeySet | None = None
        self._provider: Provider | None = None
        self._stamp: tuple[AuthXConfig, int] | None = None

    @property
    def keys(self) -> KeySet:
        """The prepared keys, prepared again only when the configuration changed."""
        config = self._config()
        stamp = self._stamp
        if (
            self._keyset is None
            or stamp is None
            or stamp[0] is not config
            or stamp[1] != config.revision
        ):
            self._keyset = keyset_for(config)
            self._provider = Provider(config) if config.has_provider else None
            self._stamp = (config, config.revision)
        return self._keyset

    @property
    def provider(self) -> Provider | None:
        """The identity provider of the configuration, if any (its keys are cached)."""
        self.keys  # noqa: B018 - rebuilds the provider too when the configuration changed
        return self._provider

    async def load_provider_keys(self) -> None:
        """Fetch the identity provider's keys now; fail if none could be had."""
        provider = self.provider
        if provider is not None:
            await provider.keys.refresh()
            if not provider.keys.usable():
                raise KeySourceUnavailableError("Identity provider keys unavailable")

    def stamp(self, exc: AuthXException) -> AuthXException:
        """``exc`` with this AuthX's ``login_type`` (the error handlers report it)."""
        if exc.login_type is None:
            exc.login_type = self.login_type
        return exc

    def decode(
        self,
        encoded: str,
        verify: bool = True,
        audience: str | Sequence[str] | None = None,
        issuer: str | None = None,
    ) -> TokenPayload:
        """The payload of ``encoded`` after its signature and claims were checked.

        Synchronous: an identity provider's keys come from the cache only (the
        front ends use :meth:`verify_async`, which fetches them when needed).
        """
        keys = self.keys
        if self._provider is None:
            claims = _token.decode_jws(encoded, keys, verify=verify)
            return self._payload(claims, verify, audience, issuer or self._own_issuer())
        parsed = _token.parse_jws(encoded, keys)
        return self._provider_payload(parsed, keys, self._provider, verify, audience, issuer)

    async def decode_async(self, encoded: str) -> TokenPayload:
        """:meth:`decode`, fetching the identity provider's keys when its token needs them."""
        keys, provider = self.keys, self._provider
        if provider is None:
            return self._payload(_token.decode_jws(encoded, keys), True, None, self._own_issuer())
        parsed = _token.parse_jws(encoded, keys)
        header = parsed.header
        theirs = provider.owns(header, parsed.claims, keys)
        if theirs and not provider.keys.fresh(header.get("kid"), header["alg"]):
            await provider.keys.ensure(header.get("kid"), header["alg"])
        return self._provider_payload(parsed, keys, provider, True, None, None, theirs)

    def _provider_payload(
        self,
        parsed: _token.ParsedJWS,
        keys: KeySet,
        provider: Provider,
        verify: bool,
        audience: str | Sequence[str] | None,
        issuer: str | None,
        theirs: bool | None = None,
    ) -> TokenPayload:
        if theirs is None:
            theirs = provider.owns(parsed.header, parsed.claims, keys)
        claims = parsed.claims
        if verify:
            header = parsed.header
            candidates = (
                provider.candidates(header) if theirs else keys.verifiers.get(header["alg"])
            )
            claims = _token.check_signature(parsed, keys, candidates)
        if theirs:
            claims = provider.access_claims(claims)
        # Each token is checked against its own issuer: the provider's, or the app's.
        expected = issuer or (provider.issuer if theirs else provider.own_issuer)
        return self._payload(claims, verify, audience, expected)

    def _own_issuer(self) -> str | None:
        """The issuer the app's own tokens are checked against without a provider."""
        return self._config().JWT_DECODE_ISSUER

    def _payload(
        self,
        claims: dict[str, Any],
        verify: bool,
        audience: str | Sequence[str] | None,
        issuer: str | None,
    ) -> TokenPayload:
        config = self._config()
        if verify:
            _token.validate_claims(
                claims,
                audience=audience or config.JWT_DECODE_AUDIENCE,
                issuer=issuer,
                leeway=config.JWT_DECODE_LEEWAY,
            )
        return TokenPayload.from_claims(claims, config.JWT_IDENTITY_CLAIM)

    def verify(
        self,
        found: RequestToken,
        verify_type: bool = True,
        verify_fresh: bool = False,
        verify_csrf: bool = True,
    ) -> TokenPayload:
        """Signature and claims, then type, freshness and CSRF (not revocation)."""
        try:
            payload = self.decode(found.token)
            found.check(payload, verify_type, verify_csrf, verify_fresh)
        except AuthXException as exc:
            raise self.stamp(exc) from None
        return payload

    async def verify_async(
        self,
        found: RequestToken,
        verify_type: bool = True,
        verify_fresh: bool = False,
        verify_csrf: bool = True,
    ) -> TokenPayload:
        """:meth:`verify`, fetching an identity provider's keys when the token needs them."""
        try:
            payload = await self.decode_async(found.token)
            found.check(payload, verify_type, verify_csrf, verify_fresh)
        except AuthXException as exc:
            raise self.stamp(exc) from None
        return payload

    async def is_blocklisted(self, encoded: str) -> bool:
        return await self._callbacks.is_blocklisted(encoded)

    async def check_revoked(self, encoded: str, payload: TokenPayload) -> None:
        """Refuse a token on the blocklist callback or revoked in the store."""
        if await self._callbacks.is_blocklisted(encoded) or await self._revocations.is_revoked(
            payload
        ):
            raise RevokedTokenError("Token has been revoked", login_type=self.login_type)

    def check_scopes(
        self, payload: TokenPayload, scopes: Sequence[str], all_required: bool
    ) -> None:
        if not has_required_scopes(scopes, payload.scopes, all_required):
            raise InsufficientScopeError(
                required=list(scopes), provided=payload.scopes, login_type=self.login_type
            )

    async def verify_refresh(
        self, encoded: str, sub: str, requirements: Sequence[ScopeRequirement] = ()
    ) -> TokenPayload:
        """Verify a token offered to replace a live session's token for ``sub``.

        It passes every check the handshake passed: size, signature and claims, type,
        subject, the endpoint's scopes, the blocklist callback and the store.
        """
        check_size(encoded, self._config())
        found = RequestToken.found(encoded, "message")
        payload = await self.verify_async(found, verify_csrf=False)
        if payload.sub != sub:
            raise TokenSubjectMismatchError("Token subject mismatch", login_type=self.login_type)
        for scopes, all_required in requirements:
            self.check_scopes(payload, scopes, all_required)
        await self.check_revoked(encoded, payload)
        return payload
