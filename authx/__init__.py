"""AuthX: JWT authentication for FastAPI and Starlette, over HTTP and WebSocket."""

from authx.config import AuthXConfig
from authx.dependencies import AuthXDependency
from authx.exceptions import (
    AccessTokenRequiredError,
    AuthXException,
    BadConfigurationError,
    CSRFError,
    FreshTokenRequiredError,
    InsufficientScopeError,
    JWTDecodeError,
    MissingCSRFTokenError,
    MissingTokenError,
    RefreshTokenRequiredError,
    RevokedTokenError,
    TokenError,
    TokenExpiredError,
    TokenInvalidAudienceError,
    TokenInvalidIssuerError,
    TokenInvalidSignatureError,
    TokenRequiredError,
    TokenTypeError,
)
from authx.main import AuthX
from authx.redaction import RedactTokensFilter
from authx.schema import RequestToken, TokenPayload, TokenResponse

__version__ = "0.1.0"

__all__ = [
    "AccessTokenRequiredError",
    "AuthX",
    "AuthXConfig",
    "AuthXDependency",
    "AuthXException",
    "BadConfigurationError",
    "CSRFError",
    "FreshTokenRequiredError",
    "InsufficientScopeError",
    "JWTDecodeError",
    "MissingCSRFTokenError",
    "MissingTokenError",
    "RedactTokensFilter",
    "RefreshTokenRequiredError",
    "RequestToken",
    "RevokedTokenError",
    "TokenError",
    "TokenExpiredError",
    "TokenInvalidAudienceError",
    "TokenInvalidIssuerError",
    "TokenInvalidSignatureError",
    "TokenPayload",
    "TokenRequiredError",
    "TokenResponse",
    "TokenTypeError",
    "__version__",
]
