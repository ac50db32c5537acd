"""Tokens of an identity provider beside the application's own: which keys and
which issuer a token is checked against, and its claims read as providers write them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jwt.algorithms import Algorithm

from authx._jwks import ProviderKeys
from authx._keys import KeySet
from authx.config import AuthXConfig
from authx.exceptions import JWTDecodeError

__all__ = ["Provider"]

#: JWS ``typ`` values of access tokens (RFC 9068 ``at+jwt``) and plain JWTs.
_ACCESS_TYPES = frozenset({"jwt", "at+jwt", "application/at+jwt"})


class Provider:
    """One identity provider: its keys (cached), its issuer, its claim conventions."""

    def __init__(self, config: AuthXConfig, keys: ProviderKeys | None = None) -> None:
        issuer = config.JWT_OIDC_ISSUER
        if issuer is None:
            # A JWKS URL alone: JWT_DECODE_ISSUER names the provider, as usual.
            issuer = config.JWT_DECODE_ISSUER
        self.issuer = issuer
        self.keys = keys or ProviderKeys(
            issuer=config.JWT_OIDC_ISSUER,
            jwks_url=config.JWT_JWKS_URL,
            algorithms=config.provider_algorithms,
            cache_seconds=config.JWT_JWKS_CACHE_SECONDS,
            min_refetch_seconds=config.JWT_JWKS_MIN_REFETCH_SECONDS,
            grace_seconds=config.JWT_JWKS_GRACE_SECONDS,
        )
        self._scopes_claim = config.JWT_SCOPES_CLAIM
        #: The issuer the application's own tokens are checked against.
        self.own_issuer = (
            config.JWT_DECODE_ISSUER if config.JWT_OIDC_ISSUER else config.JWT_ENCODE_ISSUER
        )

    def owns(self, header: Mapping[str, Any], claims: Mapping[str, Any], own: KeySet) -> bool:
        """Whether a token is the provider's: by issuer, else (a bare JWKS URL) by algorithm.

        A token of one issuer is never checked against the other's keys.
        """
        if self.issuer is not None:
            return claims.get("iss") == self.issuer
        return header["alg"] not in own.verifiers

    def candidates(self, header: Mapping[str, Any]) -> Sequence[tuple[Algorithm, Any]]:
        typ = header.get("typ")
        if typ is not None and typ.lower() not in _ACCESS_TYPES:
            return ()  # a plain or access-token typ is fine; a logout or other token is not
        return self.keys.candidates(header.get("kid"), header["alg"])

    def access_claims(self, claims: dict[str, Any]) -> dict[str, Any]:
        """The claims of a provider token as AuthX reads its own: an access ``type``
        (a provider refresh token is refused) and ``scopes`` from ``JWT_SCOPES_CLAIM``."""
        declared = claims.get("type", claims.get("typ"))
        if isinstance(declared, str) and declared.lower() == "refresh":
            raise JWTDecodeError("Invalid token: a provider refresh token is not an access token")
        claims = {**claims, "type": "access"}
        if self._scopes_claim != "scopes":
            claims.pop("scopes", None)
            scopes = _scopes(claims, self._scopes_claim)
            if scopes is not None:
                claims["scopes"] = scopes
        return claims


def _scopes(claims: Mapping[str, Any], path: str) -> list[str] | None:
    """Scopes at ``path`` (``scope``, ``scp``, ``permissions``, ``realm_access.roles``):
    a space-separated string or a list of strings."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise JWTDecodeError(f"Invalid token: {path} must be a string or a list of strings")
