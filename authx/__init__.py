"""AuthX: JWT authentication for FastAPI and Starlette, over HTTP and WebSocket."""

from authx.config import AuthXConfig
from authx.dependencies import AuthXDependency
from authx.exceptions import (
    AccessTokenRequiredError,
    AuthMessageTimeoutError,
    AuthXException,
    BadConfigurationError,
    CSRFError,
    FreshTokenRequiredError,
    InsufficientScopeError,
    InvalidTicketError,
    JWTDecodeError,
    KeySourceUnavailableError,
    MissingCSRFTokenError,
    MissingTokenError,
    OriginNotAllowedError,
    RateLimitedError,
    RefreshTokenRequiredError,
    RevokedTokenError,
    StoreUnavailableError,
    TokenError,
    TokenExpiredError,
    TokenInvalidAudienceError,
    TokenInvalidIssuerError,
    TokenInvalidSignatureError,
    TokenRequiredError,
    TokenSubjectMismatchError,
    TokenTooLargeError,
    TokenTypeError,
    TooManyConnectionsError,
    UnknownSubjectError,
)
from authx.main import AuthX
from authx.redaction import RedactTokensFilter
from authx.schema import RequestToken, TokenPayload, TokenResponse
from authx.websocket._result import AuthResult
from authx.websocket.session import WebSocketSession

__version__ = "0.1.0"

__all__ = [
    "AccessTokenRequiredError",
    "AuthMessageTimeoutError",
    "AuthResult",
    "AuthX",
    "AuthXConfig",
    "AuthXDependency",
    "AuthXException",
    "BadConfigurationError",
    "CSRFError",
    "FreshTokenRequiredError",
    "InsufficientScopeError",
    "InvalidTicketError",
    "JWTDecodeError",
    "KeySourceUnavailableError",
    "MissingCSRFTokenError",
    "MissingTokenError",
    "OriginNotAllowedError",
    "RateLimitedError",
    "RedactTokensFilter",
    "RefreshTokenRequiredError",
    "RequestToken",
    "RevokedTokenError",
    "StoreUnavailableError",
    "TokenError",
    "TokenExpiredError",
    "TokenInvalidAudienceError",
    "TokenInvalidIssuerError",
    "TokenInvalidSignatureError",
    "TokenPayload",
    "TokenRequiredError",
    "TokenResponse",
    "TokenSubjectMismatchError",
    "TokenTooLargeError",
    "TokenTypeError",
    "TooManyConnectionsError",
    "UnknownSubjectError",
    "WebSocketSession",
    "__version__",
]
