"""AuthXConfig: every ``JWT_*`` setting, read from arguments or the environment.

Structural mistakes (an unknown algorithm, location or mode) fail when the
config is built, with a :class:`BadConfigurationError` that names the setting.
Keys are checked once, when an :class:`~authx.AuthX` prepares them.
"""

from __future__ import annotations

import warnings
from datetime import timedelta
from typing import Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import SettingsConfigDict

from authx._config_websocket import WebSocketSettings, check_choices
from authx._jwks import check_provider_url
from authx.exceptions import BadConfigurationError

__all__ = ["AuthXConfig"]

SYMMETRIC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
_RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
ASYMMETRIC_ALGORITHMS = frozenset((*_RSA_ALGORITHMS, "ES256", "ES256K", "ES384", "ES512", "EdDSA"))
TOKEN_LOCATIONS = ("headers", "cookies", "query", "json")
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})

TokenLocation = Literal["headers", "cookies", "query", "json"]


class AuthXConfig(WebSocketSettings):
    """Settings for :class:`~authx.AuthX`; each may come from an environment variable.

    The ``JWT_WS_*`` settings are declared in :mod:`authx._config_websocket`.
    """

    model_config = SettingsConfigDict(extra="forbid", case_sensitive=False)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            # One error type for every bad setting; the values are left out (keys are secret).
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
                for error in exc.errors()
            )
            raise BadConfigurationError(f"Invalid AuthX settings: {problems}") from None

    # Keys and algorithms
    JWT_SECRET_KEY: str | None = None
    JWT_ALGORITHM: str = "HS256"
    JWT_DECODE_ALGORITHMS: list[str] | None = None
    JWT_PRIVATE_KEY: str | None = None
    JWT_PUBLIC_KEY: str | None = None
    JWT_PREVIOUS_SECRET_KEY: str | None = None
    JWT_PREVIOUS_PUBLIC_KEY: str | None = None

    # Claims
    JWT_ACCESS_TOKEN_EXPIRES: timedelta | None = timedelta(minutes=15)
    JWT_REFRESH_TOKEN_EXPIRES: timedelta | None = timedelta(days=20)
    JWT_ENCODE_ISSUER: str | None = None
    JWT_DECODE_ISSUER: str | None = None
    JWT_ENCODE_AUDIENCE: str | list[str] | None = None
    JWT_DECODE_AUDIENCE: str | list[str] | None = None
    JWT_DECODE_LEEWAY: float = Field(default=0, ge=0)
    JWT_ENCODE_NBF: bool = True
    JWT_IDENTITY_CLAIM: str = "sub"
    JWT_MAX_TOKEN_SIZE: int = Field(default=8192, gt=0)

    # Locations
    JWT_TOKEN_LOCATION: list[str] = Field(default_factory=lambda: ["headers"])
    JWT_HEADER_NAME: str = "Authorization"
    JWT_HEADER_TYPE: str = "Bearer"
    JWT_QUERY_STRING_NAME: str = "token"
    JWT_JSON_KEY: str = "access_token"
    JWT_REFRESH_JSON_KEY: str = "refresh_token"

    # Cookies and CSRF (double submit)
    JWT_ACCESS_COOKIE_NAME: str = "access_token_cookie"
    JWT_ACCESS_COOKIE_PATH: str = "/"
    JWT_REFRESH_COOKIE_NAME: str = "refresh_token_cookie"
    JWT_REFRESH_COOKIE_PATH: str = "/"
    JWT_COOKIE_DOMAIN: str | None = None
    JWT_COOKIE_SECURE: bool = True
    JWT_COOKIE_SAMESITE: Literal["lax", "strict", "none"] | None = "lax"
    JWT_COOKIE_HTTP_ONLY: bool = True
    JWT_COOKIE_MAX_AGE: int | None = None
    JWT_COOKIE_CSRF_PROTECT: bool = True
    JWT_CSRF_IN_COOKIES: bool = True
    JWT_CSRF_METHODS: list[str] = Field(default_factory=lambda: ["POST", "PUT", "PATCH", "DELETE"])
    JWT_ACCESS_CSRF_COOKIE_NAME: str = "csrf_access_token"
    JWT_ACCESS_CSRF_COOKIE_PATH: str = "/"
    JWT_ACCESS_CSRF_HEADER_NAME: str = "X-CSRF-TOKEN"
    JWT_ACCESS_CSRF_FIELD_NAME: str = "csrf_token"
    JWT_REFRESH_CSRF_COOKIE_NAME: str = "csrf_refresh_token"
    JWT_REFRESH_CSRF_COOKIE_PATH: str = "/"
    JWT_REFRESH_CSRF_HEADER_NAME: str = "X-CSRF-TOKEN"
    JWT_REFRESH_CSRF_FIELD_NAME: str = "csrf_token"
    JWT_CSRF_CHECK_FORM: bool = False

    # Implicit refresh of cookie sessions (authx/_implicit_refresh.py)
    JWT_IMPLICIT_REFRESH_ROUTE_EXCLUDE: list[str] = Field(default_factory=list)
    JWT_IMPLICIT_REFRESH_ROUTE_INCLUDE: list[str] = Field(default_factory=list)
    JWT_IMPLICIT_REFRESH_METHOD_EXCLUDE: list[str] = Field(default_factory=list)
    JWT_IMPLICIT_REFRESH_METHOD_INCLUDE: list[str] = Field(default_factory=list)
    JWT_IMPLICIT_REFRESH_DELTATIME: timedelta = Field(timedelta(minutes=10), ge=timedelta(0))

    # Identity providers (JWKS, OpenID Connect discovery)
    JWT_OIDC_ISSUER: str | None = None
    JWT_JWKS_URL: str | None = None
    JWT_JWKS_CACHE_SECONDS: float = Field(default=300, gt=0)
    JWT_JWKS_MIN_REFETCH_SECONDS: float = Field(default=30, ge=0)
    JWT_JWKS_GRACE_SECONDS: float = Field(default=3600, ge=0)
    JWT_SCOPES_CLAIM: str = Field(default="scopes", min_length=1)

    # Stores
    JWT_STORE_URL: str = "memory://"
    JWT_STORE_FAIL_OPEN: bool = False

    # Logging
    JWT_REDACT_SERVER_LOGS: bool = True

    #: Bumped on every assignment, so AuthX knows when to prepare its keys again.
    _revision: int = PrivateAttr(default=0)
    #: Whether JWT_DECODE_ALGORITHMS was given (not filled in from JWT_ALGORITHM).
    _decode_algorithms_chosen: bool = PrivateAttr(default=False)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if not name.startswith("_"):
            self._revision += 1

    @property
    def revision(self) -> int:
        # Read from pydantic's private storage directly: going through the private
        # attribute costs ~1.8 us, and the hot path asks on every verification.
        private = self.__pydantic_private__
        return int(private["_revision"]) if private else 0

    @field_validator("JWT_ALGORITHM", mode="before")
    @classmethod
    def _known_algorithm(cls, value: Any) -> Any:
        check_choices(
            "JWT_ALGORITHM",
            [value],
            sorted(SYMMETRIC_ALGORITHMS) + sorted(ASYMMETRIC_ALGORITHMS),
        )
        return value

    @field_validator("JWT_DECODE_ALGORITHMS", mode="before")
    @classmethod
    def _known_decode_algorithms(cls, value: Any) -> Any:
        if value is None:
            return value
        return check_choices(
            "JWT_DECODE_ALGORITHMS",
            value,
            sorted(SYMMETRIC_ALGORITHMS) + sorted(ASYMMETRIC_ALGORITHMS),
        )

    @field_validator("JWT_TOKEN_LOCATION", mode="before")
    @classmethod
    def _known_locations(cls, value: Any) -> Any:
        return check_choices("JWT_TOKEN_LOCATION", value, TOKEN_LOCATIONS)

    @field_validator(
        "JWT_CSRF_METHODS",
        "JWT_IMPLICIT_REFRESH_METHOD_EXCLUDE",
        "JWT_IMPLICIT_REFRESH_METHOD_INCLUDE",
        mode="before",
    )
    @classmethod
    def _known_methods(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            value = [value]
        return check_choices(
            str(info.field_name), [str(m).upper() for m in value], sorted(HTTP_METHODS)
        )

    @field_validator("JWT_IMPLICIT_REFRESH_ROUTE_EXCLUDE", "JWT_IMPLICIT_REFRESH_ROUTE_INCLUDE")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        # Matched exactly against request.url.path, which always starts with "/".
        wrong = [path for path in value if not path.startswith("/")]
        if wrong:
            raise ValueError(f"paths must start with '/': {wrong}")
        return value

    @field_validator(
        "JWT_ACCESS_TOKEN_EXPIRES",
        "JWT_REFRESH_TOKEN_EXPIRES",
        "JWT_IMPLICIT_REFRESH_DELTATIME",
        mode="before",
    )
    @classmethod
    def _seconds_from_strings(cls, value: Any) -> Any:
        # Environment variables are strings: "3600" means seconds, as the int 3600 does.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return value
        return value

    @model_validator(mode="after")
    def _decode_algorithms_follow_algorithm(self) -> AuthXConfig:
        if self.JWT_DECODE_ALGORITHMS is None:
            self.JWT_DECODE_ALGORITHMS = [self.JWT_ALGORITHM]
        else:
            self._decode_algorithms_chosen = True
        return self

    @model_validator(mode="after")
    def _provider_urls_are_safe(self) -> AuthXConfig:
        if self.JWT_OIDC_ISSUER is not None:
            check_provider_url(self.JWT_OIDC_ISSUER, "JWT_OIDC_ISSUER")
        if self.JWT_JWKS_URL is not None:
            check_provider_url(self.JWT_JWKS_URL, "JWT_JWKS_URL")
        return self

    # Derived values -------------------------------------------------------

    @property
    def has_provider(self) -> bool:
        """Whether tokens of an identity provider are accepted (JWKS or discovery)."""
        return self.JWT_OIDC_ISSUER is not None or self.JWT_JWKS_URL is not None

    @property
    def provider_algorithms(self) -> tuple[str, ...]:
        """The asymmetric algorithms of ``JWT_DECODE_ALGORITHMS``, or RS256 by default."""
        if self._decode_algorithms_chosen and self.JWT_DECODE_ALGORITHMS:
            chosen = [a for a in self.JWT_DECODE_ALGORITHMS if a in ASYMMETRIC_ALGORITHMS]
            return tuple(chosen)
        return ("RS256",)

    @property
    def decode_algorithms(self) -> list[str]:
        """Algorithms accepted on decode: the explicit setting, else ``JWT_ALGORITHM``."""
        if "JWT_DECODE_ALGORITHMS" in self.model_fields_set and self.JWT_DECODE_ALGORITHMS:
            return list(self.JWT_DECODE_ALGORITHMS)
        return [self.JWT_ALGORITHM]

    @property
    def is_algo_symmetric(self) -> bool:
        return self.JWT_ALGORITHM in SYMMETRIC_ALGORITHMS

    @property
    def is_algo_asymmetric(self) -> bool:
        return self.JWT_ALGORITHM in ASYMMETRIC_ALGORITHMS

    def has_location(self, location: str) -> bool:
        return location in self.JWT_TOKEN_LOCATION

    def _get_key(self, crypto_value: str | None) -> str:
        if not (self.is_algo_symmetric or self.is_algo_asymmetric):
            raise BadConfigurationError(
                f"JWT_ALGORITHM {self.JWT_ALGORITHM} is not supported, please use one of "
                f"{sorted(SYMMETRIC_ALGORITHMS | ASYMMETRIC_ALGORITHMS)}"
            )
        key = self.JWT_SECRET_KEY if self.is_algo_symmetric else crypto_value
        if not key:
            needed = "JWT_SECRET_KEY" if self.is_algo_symmetric else "JWT_PRIVATE_KEY"
            raise BadConfigurationError(
                f"JWT_ALGORITHM {self.JWT_ALGORITHM} requires a key, please set {needed}"
            )
        return key

    # Deprecated: AuthX prepares its keys itself (``_keys``); nothing reads these.

    @property
    def private_key(self) -> str:
        _deprecated("AuthXConfig.private_key", "JWT_SECRET_KEY / JWT_PRIVATE_KEY")
        return self._get_key(self.JWT_PRIVATE_KEY)

    @property
    def public_key(self) -> str:
        _deprecated("AuthXConfig.public_key", "JWT_SECRET_KEY / JWT_PUBLIC_KEY")
        return self._get_key(self.JWT_PUBLIC_KEY)

    @property
    def previous_public_key(self) -> str | None:
        _deprecated("AuthXConfig.previous_public_key", "JWT_PREVIOUS_SECRET_KEY / _PUBLIC_KEY")
        if self.is_algo_symmetric:
            return self.JWT_PREVIOUS_SECRET_KEY
        if self.is_algo_asymmetric:
            return self.JWT_PREVIOUS_PUBLIC_KEY
        return None


def _deprecated(name: str, instead: str) -> None:
    warnings.warn(
        f"{name} is deprecated and will be removed; read {instead} instead",
        DeprecationWarning,
        stacklevel=3,
    )
