"""Issuing tokens: the claims of a new access or refresh token, signed with the
configuration's signing key."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from authx import token
from authx._keys import KeySet
from authx.config import AuthXConfig
from authx.schema import TokenResponse

__all__ = ["Issuer"]


class Issuer:
    """Creates tokens for one AuthX: its expiries, issuer, audience and ``login_type``."""

    def __init__(
        self,
        config: Callable[[], AuthXConfig],
        keys: Callable[[], KeySet],
        login_type: str | None = None,
    ) -> None:
        self._config = config
        self._keys = keys
        self._login_type = login_type

    def create(
        self,
        uid: str,
        type: str,
        fresh: bool = False,
        headers: dict[str, Any] | None = None,
        expiry: datetime | timedelta | None = None,
        data: dict[str, Any] | None = None,
        audience: str | Sequence[str] | None = None,
        scopes: Sequence[str] | None = None,
    ) -> str:
        config = self._config()
        if expiry is None:
            access = type == "access"
            expiry = config.JWT_ACCESS_TOKEN_EXPIRES if access else config.JWT_REFRESH_TOKEN_EXPIRES
        extra = dict(data or {})
        if self._login_type is not None:
            extra.setdefault("login_type", self._login_type)
        # Tokens carry a CSRF value whenever cookies may carry them.
        csrf = config.has_location("cookies") and config.JWT_COOKIE_CSRF_PROTECT
        claims = token.build_claims(
            uid,
            type=type,
            expiry=expiry,
            fresh=fresh,
            csrf=True if csrf else "",
            audience=audience or config.JWT_ENCODE_AUDIENCE,
            issuer=config.JWT_ENCODE_ISSUER,
            not_before=config.JWT_ENCODE_NBF,
            data=extra,
            scopes=scopes,
            identity_claim=config.JWT_IDENTITY_CLAIM,
        )
        return token.encode(claims, self._keys(), headers)

    def create_access_token(
        self,
        uid: str,
        fresh: bool = False,
        headers: dict[str, Any] | None = None,
        expiry: datetime | timedelta | None = None,
        data: dict[str, Any] | None = None,
        audience: str | Sequence[str] | None = None,
        scopes: Sequence[str] | None = None,
    ) -> str:
        """A signed access token for ``uid``; an unknown option is a ``TypeError``."""
        return self.create(uid, "access", fresh, headers, expiry, data, audience, scopes)

    def create_refresh_token(
        self,
        uid: str,
        headers: dict[str, Any] | None = None,
        expiry: datetime | timedelta | None = None,
        data: dict[str, Any] | None = None,
        audience: str | Sequence[str] | None = None,
        scopes: Sequence[str] | None = None,
    ) -> str:
        """A signed refresh token for ``uid``; an unknown option is a ``TypeError``."""
        return self.create(uid, "refresh", False, headers, expiry, data, audience, scopes)

    def create_token_pair(
        self,
        uid: str,
        fresh: bool = False,
        headers: dict[str, Any] | None = None,
        access_expiry: datetime | timedelta | None = None,
        refresh_expiry: datetime | timedelta | None = None,
        data: dict[str, Any] | None = None,
        audience: str | Sequence[str] | None = None,
        access_scopes: Sequence[str] | None = None,
        refresh_scopes: Sequence[str] | None = None,
    ) -> TokenResponse:
        """An access and a refresh token in one :class:`TokenResponse`."""
        return TokenResponse(
            access_token=self.create(
                uid, "access", fresh, headers, access_expiry, data, audience, access_scopes
            ),
            refresh_token=self.create(
                uid, "refresh", False, headers, refresh_expiry, data, audience, refresh_scopes
            ),
        )
