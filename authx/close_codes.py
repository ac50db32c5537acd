"""Why a WebSocket was refused or closed, and what its client should do about it.

One row per kind of failure: a stable, machine-readable reason token, the close
code (a setting, with a default), and the client's action. The same token is
the close reason (``"close"`` mode, and every close of a live connection) and
the ``reason`` of the HTTP denial's JSON body (``"deny"`` mode), so a client
reads the same thing on either path.

A close reason is the token alone, or, when the client should wait, the token
and the delay in whole seconds: ``"rate_limited; retry_after=3"``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

__all__ = ["CLOSE_CODES", "Action", "CloseCode", "close_reason", "lookup"]


class Action(enum.StrEnum):
    """What a client does when it sees a close code."""

    #: Get a new token (refresh), then reconnect at once.
    REFRESH = "refresh"
    #: Reconnect after the delay in the reason, or with backoff when there is none.
    RETRY = "retry"
    #: Do not reconnect: the user must log in again, or the app must change.
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class CloseCode:
    """One row of the table."""

    reason: str
    setting: str
    default: int
    action: Action
    meaning: str


CLOSE_CODES: tuple[CloseCode, ...] = (
    CloseCode(
        "invalid_token",
        "JWT_WS_CLOSE_CODE_UNAUTHENTICATED",
        4001,
        Action.STOP,
        "No token, or one that is malformed, badly signed, of the wrong type, "
        "audience or issuer, not fresh, or for an unknown subject",
    ),
    CloseCode(
        "token_expired",
        "JWT_WS_EXPIRED_CLOSE_CODE",
        4002,
        Action.REFRESH,
        "The token expired (at the handshake, or while the connection was open)",
    ),
    CloseCode(
        "insufficient_scope",
        "JWT_WS_CLOSE_CODE_FORBIDDEN",
        4003,
        Action.STOP,
        "The token lacks a scope the endpoint requires",
    ),
    CloseCode(
        "token_revoked",
        "JWT_WS_CLOSE_CODE_REVOKED",
        4004,
        Action.STOP,
        "The token, or every token of its subject, was revoked (logout)",
    ),
    CloseCode(
        "origin_not_allowed",
        "JWT_WS_CLOSE_CODE_ORIGIN",
        4005,
        Action.STOP,
        "Cookie authentication from a page whose Origin is not allowed",
    ),
    CloseCode(
        "auth_timeout",
        "JWT_WS_CLOSE_CODE_AUTH_TIMEOUT",
        4008,
        Action.RETRY,
        "No authentication message in time (first-message transport)",
    ),
    CloseCode(
        "too_many_connections",
        "JWT_WS_CLOSE_CODE_TOO_MANY",
        4009,
        Action.STOP,
        "The subject holds its maximum of open connections; with "
        "close_oldest, this connection made room for a newer one",
    ),
    CloseCode(
        "rate_limited",
        "JWT_WS_CLOSE_CODE_RATE_LIMITED",
        4029,
        Action.RETRY,
        "Too many handshakes from this address or subject, or too many "
        "unauthenticated sockets held open; the reason says how long to wait",
    ),
    CloseCode(
        "store_unavailable",
        "JWT_WS_CLOSE_CODE_UNAVAILABLE",
        1013,
        Action.RETRY,
        "The revocation store cannot answer (RFC 6455 1013: try again later)",
    ),
    CloseCode(
        "keys_unavailable",
        "JWT_WS_CLOSE_CODE_UNAVAILABLE",
        1013,
        Action.RETRY,
        "The identity provider's keys cannot be fetched (try again later)",
    ),
    CloseCode(
        "server_error",
        "JWT_WS_CLOSE_CODE_SERVER_ERROR",
        1011,
        Action.RETRY,
        "The server is misconfigured (RFC 6455 1011: internal error)",
    ),
)

_BY_REASON: dict[str, CloseCode] = {row.reason: row for row in CLOSE_CODES}


def lookup(reason: str) -> CloseCode:
    """The row of ``reason``; ``KeyError`` for a token not in the table."""
    return _BY_REASON[reason]


def close_reason(reason: str, retry_after: float | None = None) -> str:
    """The close reason: the token, with the whole seconds to wait when there is a delay."""
    if retry_after is None:
        return reason
    return f"{reason}; retry_after={max(1, math.ceil(retry_after))}"
