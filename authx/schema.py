"""The data AuthX hands out: TokenPayload, RequestToken and TokenResponse."""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from authx.exceptions import (
    AccessTokenRequiredError,
    CSRFError,
    FreshTokenRequiredError,
    JWTDecodeError,
    MissingCSRFTokenError,
    RefreshTokenRequiredError,
)
from authx.scopes import has_required_scopes

__all__ = ["RequestToken", "TokenLocation", "TokenPayload", "TokenResponse", "TokenType"]

TokenType = Literal["access", "refresh"]
TokenLocation = Literal["headers", "cookies", "json", "query", "subprotocol", "ticket", "message"]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The whole seconds a datetime can hold (0001-01-01 to 9999-12-31T23:59:59 UTC).
_FIRST, _LAST = -62_135_596_800, 253_402_300_799


def _aware(value: datetime) -> datetime:
    # A naive datetime is UTC, as PyJWT reads it (and as datetime.utcnow() meant it).
    return value if value.utcoffset() is not None else value.replace(tzinfo=UTC)


def _from_text(text: str) -> float | int:
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    try:
        return _aware(datetime.fromisoformat(text)).timestamp()
    except ValueError:
        raise ValueError("a time must be a number, a datetime or an ISO 8601 string") from None


def _numeric_date(value: Any) -> float | int | None:
    """``exp``, ``iat`` or ``nbf`` as POSIX seconds, from what applications pass.

    A number (or a string spelling one), a datetime (naive means UTC) or an ISO 8601
    string, or a timedelta counted from now. Booleans, other strings, NaN, infinities
    and times outside the years 1-9999 are refused.
    """
    seconds: float | int
    if type(value) is int or type(value) is float:  # what decoded tokens carry: first
        if not _FIRST <= value <= _LAST:  # NaN fails this too
            raise ValueError("a time must be a finite number of seconds within years 1-9999")
        return value
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = time.time() + value.total_seconds()
    elif isinstance(value, datetime):
        seconds = _aware(value).timestamp()
    elif isinstance(value, str):
        seconds = _from_text(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value
    else:
        raise ValueError(f"a time must be a number or a datetime, not {type(value).__name__}")
    if not _FIRST <= seconds <= _LAST:  # NaN fails this too
        raise ValueError("a time must be a finite number of seconds within years 1-9999")
    return seconds


class TokenPayload(BaseModel):
    """The claims of a verified token; claims passed with ``data=`` are attributes too."""

    model_config = ConfigDict(extra="allow", from_attributes=True)

    jti: str | None = Field(default_factory=lambda: str(uuid.uuid4()))
    iss: str | None = None
    sub: str
    aud: str | list[str] | None = None
    exp: datetime | None = None
    nbf: float | int | None = None
    iat: float | int | None = Field(default_factory=lambda: int(time.time()))
    type: str | None = "access"
    csrf: str | None = ""
    scopes: list[str] | None = None
    fresh: bool = False
    login_type: str | None = None

    @field_validator("iat", "nbf", mode="before")
    @classmethod
    def _timestamps(cls, value: Any) -> float | int | None:
        return _numeric_date(value)

    @field_validator("exp", mode="before")
    @classmethod
    def _expiry(cls, value: Any) -> datetime | None:
        # Converted here, not by pydantic, which reads numbers above 2e10 as milliseconds.
        seconds = _numeric_date(value)
        return None if seconds is None else _EPOCH + timedelta(seconds=seconds)

    @property
    def extra_dict(self) -> dict[str, Any]:
        """The claims that are not standard fields (those passed with ``data=``)."""
        return dict(self.__pydantic_extra__ or {})

    @property
    def issued_at(self) -> datetime:
        if isinstance(self.iat, int | float):
            return datetime.fromtimestamp(self.iat, tz=UTC)
        raise TypeError("iat is not set")

    @property
    def expiry_datetime(self) -> datetime:
        if self.exp is None:
            raise TypeError("the token has no exp claim")
        return self.exp

    @property
    def time_until_expiry(self) -> timedelta:
        return self.expiry_datetime - datetime.now(tz=UTC)

    @property
    def time_since_issued(self) -> timedelta:
        return datetime.now(tz=UTC) - self.issued_at

    @property
    def expires_at(self) -> float | None:
        """``exp`` as a POSIX timestamp, or None for a token that never expires."""
        return None if self.exp is None else self.exp.timestamp()

    def has_scopes(self, *scopes: str, all_required: bool = True) -> bool:
        """Whether the token grants ``scopes`` (all of them, or any with ``all_required=False``)."""
        return has_required_scopes(scopes, self.scopes, all_required)

    def encode(
        self,
        key: str,
        algorithm: str = "HS256",
        ignore_errors: bool = True,
        headers: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
    ) -> str:
        from authx.token import create_token

        return create_token(
            uid=self.sub,
            key=key,
            type=self.type or "access",
            jti=self.jti,
            expiry=self.exp,
            issued=self.iat,
            fresh=self.fresh,
            csrf=self.csrf,
            algorithm=algorithm,
            headers=headers,
            audience=self.aud,
            issuer=self.iss,
            not_before=self.nbf,
            data={**self.extra_dict, **(data or {})},
            ignore_errors=ignore_errors,
            scopes=self.scopes,
        )

    @classmethod
    def decode(
        cls,
        token: str,
        key: str,
        algorithms: Sequence[str] | None = None,
        audience: str | Sequence[str] | None = None,
        issuer: str | None = None,
        verify: bool = True,
    ) -> TokenPayload:
        from authx.token import decode_token

        claims = decode_token(token, key, algorithms, audience, issuer, verify)
        return cls.from_claims(claims)

    @classmethod
    def from_claims(cls, claims: dict[str, Any], identity_claim: str = "sub") -> TokenPayload:
        """Validate decoded claims into a payload; a malformed claim set is a JWTDecodeError."""
        if identity_claim != "sub":
            if identity_claim not in claims:
                # Never fall back to "sub": the identity is where the config says it is.
                raise JWTDecodeError(f"Invalid token: missing claim '{identity_claim}'")
            claims = {**claims, "sub": claims[identity_claim]}
            claims.pop(identity_claim)
        if "iat" not in claims or "type" not in claims or "jti" not in claims:
            # Unknown, not "now", "access" or a random id: a token whose issue time is
            # unknown counts as issued before any subject revocation, a token without
            # a type is refused wherever a type is required, and a token without a
            # jti has none to revoke (an invented one would revoke nothing).
            claims = {"iat": None, "type": None, "jti": None, **claims}
        try:
            # pydantic-core directly: model_validate adds a Python call and keyword handling.
            payload: TokenPayload = cls.__pydantic_validator__.validate_python(claims)
            return payload
        except ValidationError as exc:
            fields = sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]})
            raise JWTDecodeError(f"Invalid token: bad claims {fields}") from None


class RequestToken(BaseModel):
    """A token found in a request, not yet verified."""

    token: str
    csrf: str | None = None
    type: TokenType = "access"
    location: TokenLocation

    @classmethod
    def found(
        cls,
        token: str,
        location: TokenLocation,
        type: TokenType = "access",
        csrf: str | None = None,
    ) -> RequestToken:
        """A token AuthX's own lookup found.

        Validated all the same, straight through pydantic-core: half the cost of
        ``cls(...)`` (whose Python wrapper takes keywords), a third of ``model_construct``.
        """
        fields = {"token": token, "csrf": csrf, "type": type, "location": location}
        found: RequestToken = cls.__pydantic_validator__.validate_python(fields)
        return found

    def verify(
        self,
        key: str,
        algorithms: Sequence[str] | None = None,
        audience: str | Sequence[str] | None = None,
        issuer: str | None = None,
        verify_jwt: bool = True,
        verify_type: bool = True,
        verify_csrf: bool = True,
        verify_fresh: bool = False,
    ) -> TokenPayload:
        """Decode with ``key`` and check type, freshness and CSRF."""
        payload = TokenPayload.decode(self.token, key, algorithms, audience, issuer, verify_jwt)
        self.check(payload, verify_type, verify_csrf, verify_fresh)
        return payload

    def check(
        self,
        payload: TokenPayload,
        verify_type: bool = True,
        verify_csrf: bool = True,
        verify_fresh: bool = False,
    ) -> None:
        """Check the token's type, freshness and CSRF value against a decoded payload."""
        if verify_type and payload.type != self.type:
            error = AccessTokenRequiredError if self.type == "access" else RefreshTokenRequiredError
            raise error(f"'{self.type}' token required, '{payload.type}' token received")
        if verify_fresh and not payload.fresh:
            raise FreshTokenRequiredError("Fresh token required")
        if verify_csrf and self.location == "cookies":
            if not self.csrf:
                raise MissingCSRFTokenError(
                    "Missing CSRF token in request. Send the value of the CSRF cookie in the "
                    "CSRF header. To disable CSRF protection, set JWT_COOKIE_CSRF_PROTECT=False."
                )
            if not payload.csrf or not hmac.compare_digest(
                self.csrf.encode(), payload.csrf.encode()
            ):
                raise CSRFError("CSRF token mismatch")


class TokenResponse(BaseModel):
    """An access and a refresh token, as returned by ``create_token_pair``."""

    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth 2 token type, not a secret
