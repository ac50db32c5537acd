"""The Verifier: everything that decides whether a token is good.

Keys (prepared once per configuration), the signature and claims, the kind of
token (type, freshness, CSRF), revocation (the application's blocklist callback
and the store) and scopes. The HTTP and WebSocket front ends and the live
sessions all ask it, so a token passes the same checks wherever it arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from authx import token as _token
from authx._callbacks import Callbacks
from authx._keys import KeySet, keyset_for
from authx._locations import check_size
from authx._revocation import Revocations
from authx.config import AuthXConfig
from authx.exceptions import (
    AuthXException,
    InsufficientScopeError,
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
            self._stamp = (config, config.revision)
        return self._keyset

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
        claims = _token.decode_jws(encoded, self.keys, verify=verify)
        if verify:
            _token.validate_claims(
                claims,
                audience=audience or config.JWT_DECODE_AUDIENCE,
                issuer=issuer or config.JWT_DECODE_ISSUER,
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
        payload = self.verify(RequestToken.found(encoded, "message"), verify_csrf=False)
        if payload.sub != sub:
            raise TokenSubjectMismatchError("Token subject mismatch", login_type=self.login_type)
        for scopes, all_required in requirements:
            self.check_scopes(payload, scopes, all_required)
        await self.check_revoked(encoded, payload)
        return payload
