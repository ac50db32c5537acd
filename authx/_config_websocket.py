"""The WebSocket half of :class:`~authx.config.AuthXConfig`: handshake locations,
close codes, live connections and admission control, with their checks.

``AuthXConfig`` inherits these settings; read and set them there.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings

from authx.close_codes import CLOSE_CODES
from authx.exceptions import BadConfigurationError

__all__ = ["WS_TOKEN_LOCATIONS", "WebSocketSettings", "check_choices"]

WS_TOKEN_LOCATIONS = ("query", "headers", "subprotocol", "cookies", "ticket", "message")

#: Limits that ``off`` (or ``none``) switches off, from the environment too.
_SWITCHABLE = (
    "JWT_WS_RATE_LIMIT",
    "JWT_WS_SUBJECT_RATE_LIMIT",
    "JWT_WS_MAX_PENDING",
    "JWT_WS_MAX_PENDING_PER_ADDRESS",
    "JWT_WS_MAX_CONNECTIONS_PER_SUBJECT",
)

#: An origin as a browser sends it in the Origin header.
_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:[0-9]{1,5})?")


def check_choices(setting: str, values: Sequence[str], allowed: Sequence[str]) -> list[str]:
    """``values`` as a list, or a BadConfigurationError naming ``setting`` and the choices."""
    if isinstance(values, str):
        values = [values]
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise BadConfigurationError(
            f"{setting} has unknown value(s) {unknown}; allowed: {', '.join(allowed)}"
        )
    return list(values)


class WebSocketSettings(BaseSettings):
    """The ``JWT_WS_*`` settings (the README's configuration table describes each)."""

    # WebSocket
    JWT_WS_TOKEN_LOCATION: list[str] = Field(default_factory=lambda: ["query", "headers"])
    JWT_WS_REJECTION: Literal["deny", "close"] = "deny"
    # Close codes (authx.close_codes has the table: reason token, default, client action)
    JWT_WS_CLOSE_CODE_UNAUTHENTICATED: int = Field(default=4001, ge=1000, le=4999)
    JWT_WS_CLOSE_CODE_FORBIDDEN: int = Field(default=4003, ge=1000, le=4999)
    JWT_WS_CLOSE_CODE_REVOKED: int = Field(default=4004, ge=1000, le=4999)
    JWT_WS_CLOSE_CODE_ORIGIN: int = Field(default=4005, ge=1000, le=4999)
    JWT_WS_CLOSE_CODE_RATE_LIMITED: int = Field(default=4029, ge=1000, le=4999)
    JWT_WS_CLOSE_CODE_UNAVAILABLE: int = Field(default=1013, ge=1000, le=4999)
    JWT_WS_CLOSE_CODE_SERVER_ERROR: int = Field(default=1011, ge=1000, le=4999)
    JWT_WS_ALLOWED_ORIGINS: list[str] = Field(default_factory=list)
    JWT_WS_TICKET_TTL: float = Field(default=30, gt=0)
    JWT_WS_TICKET_QUERY_NAME: str = "ticket"
    JWT_WS_AUTH_MESSAGE_TIMEOUT: float = Field(default=5, gt=0)
    JWT_WS_CLOSE_CODE_AUTH_TIMEOUT: int = Field(default=4008, ge=1000, le=4999)

    # Live connections
    JWT_WS_ENFORCE_LIFETIME: bool = True
    JWT_WS_EXPIRED_CLOSE_CODE: int = Field(default=4002, ge=1000, le=4999)
    JWT_WS_EXPIRED_CLOSE_REASON: str = Field(default="token_expired", max_length=123)
    JWT_WS_REVOKED_CLOSE_REASON: str = Field(default="token_revoked", max_length=123)
    JWT_WS_EXPIRY_WARNING: float | None = Field(default=None, gt=0)
    JWT_WS_INBAND_REFRESH: bool = True
    JWT_WS_MESSAGE_PREFIX: str = "authx."
    JWT_WS_MAX_CONNECTIONS_PER_SUBJECT: int | None = Field(default=None, gt=0)
    JWT_WS_CONNECTION_LIMIT: Literal["reject", "close_oldest"] = "reject"
    JWT_WS_CLOSE_CODE_TOO_MANY: int = Field(default=4009, ge=1000, le=4999)

    # Admission control, checked before any token is read (authx/websocket/_admission.py)
    JWT_WS_RATE_LIMIT: float | None = Field(default=10, gt=0)
    JWT_WS_RATE_BURST: int = Field(default=60, ge=1)
    JWT_WS_FAILURE_COST: float = Field(default=5, ge=0)
    JWT_WS_SUBJECT_RATE_LIMIT: float | None = Field(default=5, gt=0)
    JWT_WS_SUBJECT_RATE_BURST: int = Field(default=30, ge=1)
    JWT_WS_MAX_PENDING_PER_ADDRESS: int | None = Field(default=50, ge=1)
    JWT_WS_MAX_PENDING: int | None = Field(default=10_000, ge=1)
    JWT_WS_REFUSAL_DELAY: float = Field(default=1, ge=0, le=30)
    JWT_WS_MAX_DELAYED: int = Field(default=1000, ge=0)
    JWT_WS_TRUSTED_PROXIES: list[str] = Field(default_factory=list)
    JWT_WS_RATE_LIMIT_SHARED: bool = True
    JWT_WS_ADMISSION_LOG_INTERVAL: float = Field(default=60, ge=0)

    @field_validator("JWT_WS_TOKEN_LOCATION", mode="before")
    @classmethod
    def _known_ws_locations(cls, value: Any) -> Any:
        return check_choices("JWT_WS_TOKEN_LOCATION", value, WS_TOKEN_LOCATIONS)

    @field_validator(*sorted({row.setting for row in CLOSE_CODES}))
    @classmethod
    def _sendable_close_code(cls, value: int) -> int:
        # RFC 6455 7.4: 1004-1006 and 1015 must never be sent; 1016-2999 are reserved.
        if value in (1004, 1005, 1006) or 1015 <= value < 3000:
            raise ValueError("a close code an endpoint may send: 1000-1003, 1007-1014 or 3000-4999")
        return value

    @field_validator(*_SWITCHABLE, mode="before")
    @classmethod
    def _off_means_none(cls, value: Any) -> Any:
        # From the environment: JWT_WS_RATE_LIMIT=off switches a limit off.
        if isinstance(value, str) and value.strip().lower() in ("", "off", "none", "null"):
            return None
        return value

    @field_validator("JWT_WS_TRUSTED_PROXIES")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"entry {entry!r} is not an IP address or network (203.0.113.7, 10.0.0.0/8)"
                ) from None
        return value

    @model_validator(mode="after")
    def _cookie_websockets_need_origins(self) -> Self:
        # Browsers attach cookies to cross-site WebSocket handshakes (CSWSH).
        if "cookies" in self.JWT_WS_TOKEN_LOCATION:
            if not self.JWT_WS_ALLOWED_ORIGINS:
                raise BadConfigurationError(
                    "JWT_WS_TOKEN_LOCATION includes 'cookies': set JWT_WS_ALLOWED_ORIGINS to the "
                    "origins allowed to open cookie-authenticated WebSockets"
                )
            for origin in self.JWT_WS_ALLOWED_ORIGINS:
                if origin not in ("*", "null") and not _ORIGIN.fullmatch(origin):
                    # Browsers send a lowercase scheme://host[:port]; anything else
                    # would silently never match.
                    raise BadConfigurationError(
                        f"JWT_WS_ALLOWED_ORIGINS entry {origin!r} is not an origin as browsers "
                        "send it: lowercase scheme://host[:port], no path or trailing slash"
                    )
            if "*" in self.JWT_WS_ALLOWED_ORIGINS or "null" in self.JWT_WS_ALLOWED_ORIGINS:
                raise BadConfigurationError(
                    "JWT_WS_ALLOWED_ORIGINS must list real origins (no '*' or 'null') "
                    "when WebSockets authenticate with cookies"
                )
        return self
