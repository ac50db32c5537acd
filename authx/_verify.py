"""The Verifier: everything that decides whether a token is good.

Keys (prepared once per configuration), the signature and claims, the kind of
token (type, freshness, CSRF), revocation (the application's blocklist callback
and the store) and scopes. The HTTP and WebSocket front ends and the live
sessions all ask it, so a token passes the same checks wherever it arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
    JWTDecodeError,
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
            or stamp[1] != (config.revision)
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

    async def prepare(self, encoded: str) -> None:
        """Fetch the provider's keys a token needs, if it is a provider token.

        Verification itself is synchronous and uses cached keys only; the async
        front ends call this first. Malformed tokens are left for ``decode`` to refuse.
        """
        provider = self.provider
        if provider is None:
            return
        try:
            _, header, claims = _token.read_unverified(encoded)
        except JWTDecodeError:
            return
        if provider.owns(header, claims, self.keys):
            await provider.keys.ensure(header.get("kid"), header["alg"])

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
        """The payload of ``encoded`` after its signature and claims were checked."""
        config = self._config()
        keys, provider = self.keys, self._provider
        if provider is None:
            claims = _token.decode_jws(encoded, keys, verify=verify)
            expected_issuer = issuer or config.JWT_DECODE_ISSUER
        else:
            routed: list[bool] = []

            def select(header: Mapping[str, Any], claims: Mapping[str, Any]) -> Any:
                routed.append(provider.owns(header, claims, keys))
                return (
                    provider.candidates(header)
                    if routed[0]
                    else keys.verifiers.get(header["alg"], ())
                )

            claims = _token.decode_jws(encoded, keys, verify=verify, select=select)
            theirs = bool(routed and routed[0])
            expected_issuer = issuer or (provider.issuer if theirs else provider.own_issuer)
            if theirs:
                claims = provider.access_claims(claims)
        if verify:
            _token.validate_claims(
                claims,
                audience=audience or config.JWT_DECODE_AUDIENCE,
                issuer=expected_issuer,
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
        await self.prepare(encoded)
        payload = self.verify(RequestToken.found(encoded, "message"), verify_csrf=False)
        if payload.sub != sub:
            raise TokenSubjectMismatchError("Token subject mismatch", login_type=self.login_type)
        for scopes, all_required in requirements:
            self.check_scopes(payload, scopes, all_required)
        await self.check_revoked(encoded, payload)
        return payload
