"""The authentication of one WebSocket: one record, under one scope key, owned here.

The record is written only after every check passed (token found, verified, not
revoked, limits respected), as Starlette sets ``scope["auth"]`` once; every
WebSocket dependency and helper reads the same record, so authenticating a
connection twice returns the same result instead of doing the work again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from authx._verify import ScopeRequirement
from authx.schema import TokenLocation, TokenPayload

if TYPE_CHECKING:
    from collections.abc import MutableMapping

    from authx.websocket.session import WebSocketSession

__all__ = ["AuthResult", "forget", "read", "write"]

#: The one scope key holding a connection's :class:`AuthResult`.
SCOPE_KEY = "authx.auth"


@dataclass(frozen=True, slots=True)
class AuthResult:
    """How a WebSocket was authenticated: the verified payload, where the token was
    found, and the live session when the connection has one."""

    payload: TokenPayload
    location: TokenLocation
    session: WebSocketSession | None = None
    #: Scope requirements of the endpoint, kept for in-band refreshes.
    requirements: tuple[ScopeRequirement, ...] = ()
    #: The raw token, for a session created later; never shown.
    token: str = field(default="", repr=False)


def read(scope: MutableMapping[str, Any]) -> AuthResult | None:
    result = scope.get(SCOPE_KEY)
    return result if isinstance(result, AuthResult) else None


def write(scope: MutableMapping[str, Any], result: AuthResult) -> None:
    scope[SCOPE_KEY] = result


def forget(scope: MutableMapping[str, Any]) -> None:
    scope.pop(SCOPE_KEY, None)
