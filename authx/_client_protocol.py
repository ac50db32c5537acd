"""What the client makes of what a server said: close frames, HTTP denials, in-band messages.

Pure functions, no I/O: :mod:`authx.client` reads the socket and asks this module
what a close or a refused handshake means (a row of :mod:`authx.close_codes`, or
"reconnect with backoff"), and how to spell the in-band messages it sends.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from authx._json import loads_object
from authx.close_codes import CLOSE_CODES, Action, CloseCode, lookup

__all__ = [
    "ABNORMAL",
    "AuthError",
    "Backoff",
    "ClientError",
    "Ending",
    "NotOpenError",
    "Plan",
    "Reconnection",
    "auth_message",
    "failure",
    "from_close",
    "from_denial",
    "refresh_message",
    "server_message_type",
]

#: RFC 6455: the connection ended without a close frame (network drop, server gone).
ABNORMAL = 1006
#: A server's in-band message is a few dozen bytes; anything larger is application data.
_SERVER_MESSAGE_MAX = 1024
#: The part of a denial body worth parsing (AuthX's are ~150 bytes).
_DENIAL_BODY_MAX = 8192
#: A server asking for a longer wait than this is misconfigured or hostile.
_RETRY_AFTER_MAX = 3600.0

_RETRY_AFTER = re.compile(r"retry_after\s*=\s*(\d{1,9}(?:\.\d{1,6})?)")

#: The row of each default close code (the first row wins: 1013 is ``store_unavailable``).
_BY_CODE: dict[int, CloseCode] = {}
for _default_row in CLOSE_CODES:
    _BY_CODE.setdefault(_default_row.default, _default_row)

#: A denial whose body has no reason token: what its status most likely means.
_BY_STATUS: dict[int, str] = {429: "rate_limited", 503: "store_unavailable"}


class ClientError(Exception):
    """Base class of the client's errors."""


class AuthError(ClientError):
    """The server said stop (``invalid_token``, ``token_revoked``, ...), or a refresh did not help.

    ``code`` and ``reason`` are the close code and reason token (for a handshake
    refused in ``"deny"`` mode: the row's default code, with the HTTP ``status``);
    ``action`` is the table's action for the reason. Raise it from ``get_token``
    to stop the client (the user must log in again).
    """

    def __init__(
        self,
        code: int,
        reason: str,
        action: Action = Action.STOP,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{reason} (close code {code}, action {action})")
        self.code = code
        self.reason = reason
        self.action = action
        self.status = status
        self.retry_after = retry_after


class NotOpenError(ClientError):
    """``send`` while not connected with ``queue="reject"``, or a client that is closed."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnection delays: full jitter, ``uniform(0, min(max, initial * factor**attempt))``."""

    initial: float = 0.5
    factor: float = 2.0
    max: float = 30.0

    def __post_init__(self) -> None:
        if not (0 < self.initial <= self.max) or self.factor < 1:
            raise ValueError(
                "Backoff needs 0 < initial <= max and factor >= 1, "
                f"got initial={self.initial}, factor={self.factor}, max={self.max}"
            )

    def cap(self, attempt: int) -> float:
        """The largest delay of the ``attempt``-th reconnection (0 is the first)."""
        # Bounded exponent: factor ** attempt must not overflow a float.
        return min(self.max, self.initial * self.factor ** min(attempt, 64))


@dataclass(frozen=True, slots=True)
class Ending:
    """Why a connection, or an attempt to open one, ended, and what to do next."""

    #: The close code (a denial's row's default code; 1006 for a network failure).
    code: int
    #: The reason token, or a short description of a failure outside the table.
    reason: str
    #: The table's action; None: not in the table, reconnect with backoff.
    action: Action | None
    #: Seconds the server asked the client to wait.
    retry_after: float | None = None
    #: The HTTP status of a handshake refused in ``"deny"`` mode.
    status: int | None = None

    def error(self) -> AuthError:
        """The error that stops the client when this ending says stop."""
        action = self.action or Action.STOP
        return AuthError(
            self.code, self.reason, action, status=self.status, retry_after=self.retry_after
        )


def _seconds(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        return None  # an HTTP-date Retry-After: AuthX never sends one
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, _RETRY_AFTER_MAX)


def _row(reason: object) -> CloseCode | None:
    if not isinstance(reason, str):
        return None
    try:
        return lookup(reason)
    except KeyError:
        return None


def from_close(code: int, reason: str) -> Ending:
    """A close frame: the reason token first, else the code's default row."""
    token, _, rest = reason.partition(";")
    match = _RETRY_AFTER.search(rest)
    retry_after = _seconds(match.group(1)) if match else None
    row = _row(token.strip()) or _BY_CODE.get(code)
    if row is None:
        return Ending(code, token.strip(), None, retry_after)
    return Ending(code, row.reason, row.action, retry_after)


def from_denial(status: int, body: bytes, retry_after: str | None) -> Ending:
    """A handshake refused with an HTTP error (``"deny"`` mode), read as its close would be.

    The JSON body's ``reason`` picks the row. Without one, 429 and 503 mean
    "wait" and a bare 401 or 403 (a server without the denial extension answers
    every refusal so) means "refresh once": a new token cures an expired one,
    and a second refusal stops the client.
    """
    data = loads_object(body[:_DENIAL_BODY_MAX]) if body else None
    reason = data.get("reason") if data is not None else None
    wait = _seconds(retry_after)
    if wait is None and data is not None and isinstance(data.get("retry_after"), int | float):
        wait = _seconds(str(data["retry_after"]))
    row = _row(reason) or _row(_BY_STATUS.get(status))
    if row is not None:
        return Ending(row.default, row.reason, row.action, wait, status)
    if status in (401, 403):
        row = lookup("invalid_token")
        return Ending(row.default, row.reason, Action.REFRESH, wait, status)
    return Ending(ABNORMAL, f"http_{status}", None, wait, status)


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do after an ending: wait ``delay``, then connect (with a new token if ``renew``)."""

    delay: float
    attempt: int
    renew: bool = False


@dataclass
class Reconnection:
    """The reconnection policy of the spec: one state machine fed with each ending.

    Action refresh: a new token and reconnect at once, but when the very next attempt
    ends the same way (nothing worked in between), stop. Retry with ``retry_after``: that wait
    plus a small jitter. Anything else that is not stop: full-jitter backoff. A
    connection that worked (an application message, or open for a while) resets it.
    """

    backoff: Backoff
    uniform: Callable[[float, float], float] = random.uniform
    attempt: int = 0
    refreshed: bool = False

    def next(self, ending: Ending, worked: bool) -> Plan | None:
        """The plan after ``ending``; None: stop (tell the app, never reconnect)."""
        if worked:
            self.attempt, self.refreshed = 0, False
        if ending.action is Action.STOP or (ending.action is Action.REFRESH and self.refreshed):
            return None
        # Only the attempt right after a refresh counts: a token can expire again
        # during a long outage, and then deserves a refresh of its own.
        self.refreshed = ending.action is Action.REFRESH
        if self.refreshed:
            return Plan(0.0, self.attempt, renew=True)
        if ending.retry_after is not None:
            delay = ending.retry_after + self.uniform(0, self.backoff.initial)
        else:
            delay = self.uniform(0, self.backoff.cap(self.attempt))
        self.attempt += 1
        return Plan(delay, self.attempt)


def failure(reason: str) -> Ending:
    """A network failure, a timeout, or a refresh route that did not answer: backoff."""
    return Ending(ABNORMAL, reason, None)


def server_message_type(text: str, prefix: str) -> str | None:
    """``"expiring"`` or ``"refreshed"`` for AuthX's in-band messages, None for app data."""
    if len(text) > _SERVER_MESSAGE_MAX or prefix not in text or not text.startswith("{"):
        return None
    data = loads_object(text)
    kind = data.get("type") if data is not None else None
    if kind in (f"{prefix}expiring", f"{prefix}refreshed"):
        return str(kind)[len(prefix) :]
    return None


def auth_message(prefix: str, token: str) -> str:
    """The first message of the ``"message"`` transport."""
    return json.dumps({"type": f"{prefix}auth", "token": token})


def refresh_message(prefix: str, token: str) -> str:
    """The in-band refresh: the server moves the connection's deadline to the new token's."""
    return json.dumps({"type": f"{prefix}refresh", "token": token})
