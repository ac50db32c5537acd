"""The AuthX exception hierarchy.

Each class carries the data needed to answer a client: the HTTP status, the
RFC 6750 ``error`` code for ``WWW-Authenticate`` and the reason token of
:mod:`authx.close_codes` (which close code a WebSocket gets, and what its client
should do).
``authx.errors`` turns that data into responses; nothing here does I/O.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

__all__ = [
    "AccessTokenRequiredError",
    "AuthMessageTimeoutError",
    "AuthXException",
    "BadConfigurationError",
    "CSRFError",
    "FreshTokenRequiredError",
    "InsecureKeyWarning",
    "InsufficientScopeError",
    "InvalidTicketError",
    "JWTDecodeError",
    "KeySourceUnavailableError",
    "MissingCSRFTokenError",
    "MissingTokenError",
    "OriginNotAllowedError",
    "RateLimitedError",
    "RefreshTokenRequiredError",
    "RevokedTokenError",
    "StoreUnavailableError",
    "TokenError",
    "TokenExpiredError",
    "TokenInvalidAudienceError",
    "TokenInvalidIssuerError",
    "TokenInvalidSignatureError",
    "TokenRequiredError",
    "TokenSubjectMismatchError",
    "TokenTooLargeError",
    "TokenTypeError",
    "TooManyConnectionsError",
    "UnknownSubjectError",
]


class AuthXException(Exception):
    """Base class of every AuthX error."""

    status_code: ClassVar[int] = 401
    #: The stable reason token of :mod:`authx.close_codes` (close code, client action).
    reason: ClassVar[str] = "invalid_token"
    #: RFC 6750 error code for ``WWW-Authenticate`` (None: no error attribute).
    bearer_error: ClassVar[str | None] = "invalid_token"
    #: Seconds the client should wait before trying again (``Retry-After``), if any.
    retry_after: float | None = None

    def __init__(self, *args: Any, login_type: str | None = None) -> None:
        super().__init__(*args)
        self.login_type = login_type

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else type(self).__name__


class BadConfigurationError(AuthXException):
    """The configuration cannot work; the message names the setting."""

    status_code = 500
    reason = "server_error"
    bearer_error = None


class JWTDecodeError(AuthXException):
    """The token could not be decoded or one of its claims is invalid."""


class TokenExpiredError(JWTDecodeError):
    """The token's ``exp`` has passed."""

    reason = "token_expired"


class TokenInvalidSignatureError(JWTDecodeError):
    """The signature does not match any configured key."""


class TokenInvalidAudienceError(JWTDecodeError):
    """The ``aud`` claim does not match the expected audience."""


class TokenInvalidIssuerError(JWTDecodeError):
    """The ``iss`` claim does not match the expected issuer."""


class CSRFError(AuthXException):
    """The CSRF double-submit value is missing or does not match."""


class TokenError(AuthXException):
    """Base class of errors about the presence, kind or state of a token."""


class MissingTokenError(TokenError):
    """No token was found in any of the places looked at."""

    bearer_error: ClassVar[str | None] = None


class MissingCSRFTokenError(MissingTokenError):
    """A cookie token was sent without its CSRF value."""

    bearer_error = "invalid_token"


class TokenTooLargeError(TokenError):
    """The presented token is larger than the configured bound; it was not decoded."""

    bearer_error = "invalid_request"


class TokenTypeError(TokenError):
    """The token is of the wrong type (access vs refresh)."""


class AccessTokenRequiredError(TokenTypeError):
    """A refresh token was presented where an access token is required."""


class RefreshTokenRequiredError(TokenTypeError):
    """An access token was presented where a refresh token is required."""


class InvalidTicketError(TokenError):
    """A WebSocket ticket is unknown, expired or already used."""


class OriginNotAllowedError(TokenError):
    """The handshake's Origin is not allowed for cookie (or origin-bound ticket) authentication."""

    status_code = 403
    reason = "origin_not_allowed"
    bearer_error = None


class AuthMessageTimeoutError(TokenError):
    """No authentication message arrived in time after the WebSocket was accepted."""

    status_code = 408
    reason = "auth_timeout"
    bearer_error = None


class TokenSubjectMismatchError(TokenError):
    """A token offered to refresh a live connection belongs to another subject."""


class UnknownSubjectError(TokenError):
    """The subject getter found no subject for the token's ``sub`` (it returned None)."""


class RevokedTokenError(TokenError):
    """The token has been revoked."""

    reason = "token_revoked"


class TokenRequiredError(TokenError):
    """A token is required."""


class FreshTokenRequiredError(TokenError):
    """A fresh access token is required."""


class InsufficientScopeError(TokenError):
    """The token is valid but lacks the required scopes."""

    status_code = 403
    reason = "insufficient_scope"
    bearer_error = "insufficient_scope"

    def __init__(
        self,
        required: Sequence[str],
        provided: Sequence[str] | None = None,
        message: str | None = None,
        login_type: str | None = None,
    ) -> None:
        self.required = list(required)
        self.provided = list(provided or [])
        super().__init__(
            message or f"Missing required scopes: {self.required}. Provided: {self.provided}",
            login_type=login_type,
        )


class TooManyConnectionsError(AuthXException):
    """The subject already holds the maximum number of open WebSocket connections."""

    status_code = 429
    reason = "too_many_connections"
    bearer_error = None


class RateLimitedError(AuthXException):
    """Too many handshakes from one address or subject; ``retry_after`` says how long to wait."""

    status_code = 429
    reason = "rate_limited"
    bearer_error = None

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class KeySourceUnavailableError(AuthXException):
    """The identity provider's keys could not be fetched and the cached ones are too old."""

    status_code = 503
    reason = "keys_unavailable"
    bearer_error = None


class StoreUnavailableError(AuthXException):
    """The revocation store could not answer and the policy is to fail closed."""

    status_code = 503
    reason = "store_unavailable"
    bearer_error = None


class InsecureKeyWarning(UserWarning):
    """The configured HMAC secret is shorter than its algorithm's hash output."""


class _NoAuthorizationError(AuthXException):
    """Deprecated: never raised (a missing token is :class:`MissingTokenError`)."""


class _AuthxArgumentDeprecationWarning(DeprecationWarning):
    """Deprecated: never issued."""


_DEPRECATED: dict[str, type] = {
    "NoAuthorizationError": _NoAuthorizationError,
    "AuthxArgumentDeprecationWarning": _AuthxArgumentDeprecationWarning,
}


def __getattr__(name: str) -> type:
    """Deprecated names still import, with a warning, for one release."""
    if name in _DEPRECATED:
        warnings.warn(
            f"authx.exceptions.{name} is never raised and will be removed",
            DeprecationWarning,
            stacklevel=2,
        )
        return _DEPRECATED[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
