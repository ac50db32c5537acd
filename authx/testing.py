"""Helpers for testing applications that use AuthX: tokens without a login route,
WebSocket rejections asserted by their reason, and a wall clock to move.

>>> token = make_token(auth, "alice", scopes=["read"], expires=timedelta(seconds=5))
>>> client.get("/me", headers=bearer(token, auth=auth))
>>> with expect_ws_rejection(reason="invalid_token"):
...     with client.websocket_connect("/ws?token=nope") as ws:
...         ws.receive_json()

A library module: it needs neither pytest nor a test client to import, and fails
with plain ``AssertionError``. ``freeze_clock`` needs ``time-machine``
(``pip install "authx-ws[testing]"``). See ``docs/testing.md`` for recipes.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

from starlette.websockets import WebSocketDisconnect

from authx.close_codes import CLOSE_CODES, Action, lookup
from authx.websocket._transports import SUBPROTOCOL_PREFIX

if TYPE_CHECKING:
    import time_machine

    from authx import AuthX

__all__ = [
    "Clock",
    "Rejection",
    "bearer",
    "expect_ws_rejection",
    "freeze_clock",
    "make_token",
    "subprotocols",
    "token_url",
]

# Tokens --------------------------------------------------------------------


def make_token(
    auth: AuthX[Any],
    sub: str,
    *,
    type: Literal["access", "refresh"] = "access",
    scopes: Sequence[str] | None = None,
    expires: timedelta | datetime | None = None,
    fresh: bool = False,
    claims: Mapping[str, Any] | None = None,
    audience: str | Sequence[str] | None = None,
) -> str:
    """A token signed by ``auth`` for ``sub``, as its login route would issue it.

    ``expires`` is a lifetime or a moment (None: the config's lifetime); a negative
    lifetime, ``timedelta(seconds=-1)``, gives a token that has already expired.
    ``claims`` are extra claims (``payload.role``); reserved ones are a ``TypeError``.
    """
    data = dict(claims) if claims is not None else None
    if type == "access":
        return auth.create_access_token(
            uid=sub, fresh=fresh, expiry=expires, data=data, audience=audience, scopes=scopes
        )
    if type == "refresh":
        if fresh:
            raise ValueError("fresh=True applies to access tokens only")
        return auth.create_refresh_token(
            uid=sub, expiry=expires, data=data, audience=audience, scopes=scopes
        )
    raise ValueError(f"type must be 'access' or 'refresh', not {type!r}")


def bearer(token: str, *, auth: AuthX[Any] | None = None) -> dict[str, str]:
    """The header carrying ``token``: ``{"Authorization": "Bearer <token>"}``, or the
    ``JWT_HEADER_NAME`` and ``JWT_HEADER_TYPE`` of ``auth``'s config when given.

    A new dict each call (Starlette's ``websocket_connect`` adds to the one it gets).
    """
    name, kind = "Authorization", "Bearer"
    if auth is not None:
        name, kind = auth.config.JWT_HEADER_NAME, auth.config.JWT_HEADER_TYPE
    return {name: f"{kind} {token}" if kind else token}


def token_url(url: str, token: str, *, auth: AuthX[Any] | None = None) -> str:
    """``url`` with the token as a query parameter (``?token=``, or ``auth``'s
    ``JWT_QUERY_STRING_NAME``): the seed's WebSocket transport."""
    name = "token" if auth is None else auth.config.JWT_QUERY_STRING_NAME
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{urlencode({name: token})}"


def subprotocols(token: str, *protocols: str) -> list[str]:
    """The ``Sec-WebSocket-Protocol`` offer of the subprotocol transport:
    ``authx.bearer.<token>`` followed by ``protocols`` (``"authx"`` when none are given;
    browsers fail a handshake whose offer gets no protocol back)."""
    return [SUBPROTOCOL_PREFIX + token, *(protocols or ("authx",))]


# WebSocket rejections ------------------------------------------------------


class Rejection:
    """What a refused WebSocket client saw; filled in when the ``expect_ws_rejection``
    block ends.

    ``mode`` is ``"deny"`` (the handshake got an HTTP answer: ``status`` and the JSON
    ``body``) or ``"close"`` (the socket was closed: ``code``). ``reason`` is the
    reason token of the close-code table in both modes (``"invalid_token"``).
    """

    mode: Literal["deny", "close"] | None = None
    reason: str | None = None
    code: int | None = None
    status: int | None = None
    body: dict[str, Any] | None = None
    retry_after: int | None = None
    #: The exception the client raised (``WebSocketDenialResponse``, ``WebSocketDisconnect``,
    #: ``websockets.exceptions.InvalidStatus`` or ``ConnectionClosed``).
    exception: BaseException | None = None

    @property
    def action(self) -> Action | None:
        """What a client should do (the table's action for ``reason``), if known."""
        try:
            return lookup(self.reason or "").action
        except KeyError:
            return None

    def describe(self) -> str:
        """One phrase for assertion messages."""
        if self.mode == "deny":
            error_type = (self.body or {}).get("error_type")
            return (
                f"the handshake was denied with HTTP {self.status} "
                f"(reason {self.reason!r}, error_type {error_type!r})"
            )
        raw = getattr(self.exception, "reason", None)
        if raw is None and self.exception is not None:
            raw = getattr(getattr(self.exception, "rcvd", None), "reason", None)
        return f"the WebSocket was closed with code {self.code} and reason {raw!r}"

    def __repr__(self) -> str:
        fields = ("mode", "reason", "code", "status", "retry_after")
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in fields)
        return f"Rejection({shown})"

    def _denied(self, status: int, content: bytes, exc: BaseException) -> Rejection:
        self.mode, self.status, self.exception = "deny", status, exc
        try:
            body = json.loads(content) if content else None
        except ValueError:
            body = None
        if isinstance(body, dict):
            self.body = body
            reason, retry_after = body.get("reason"), body.get("retry_after")
            self.reason = reason if isinstance(reason, str) else None
            self.retry_after = retry_after if isinstance(retry_after, int) else None
        return self

    def _closed(self, code: int, reason: str, exc: BaseException) -> Rejection:
        self.mode, self.code, self.exception = "close", code, exc
        token, _, rest = reason.partition(";")
        self.reason = token.strip() or None
        name, _, value = rest.strip().partition("=")
        if name == "retry_after" and value.isdigit():
            self.retry_after = int(value)
        return self

    def _fill(self, exc: BaseException) -> bool:
        """Record ``exc`` if it is a client's view of a refusal (denial or close)."""
        # Optional libraries are looked up, not imported: if the block raised one of
        # their exceptions, the module is loaded.
        testclient: Any = sys.modules.get("starlette.testclient")
        if testclient is not None and isinstance(exc, testclient.WebSocketDenialResponse):
            # Before WebSocketDisconnect: a denial response is one too, without a code.
            self._denied(exc.status_code, exc.content, exc)
            return True
        if isinstance(exc, WebSocketDisconnect):
            self._closed(exc.code, exc.reason or "", exc)
            return True
        client: Any = sys.modules.get("websockets.exceptions")
        if client is not None and isinstance(exc, client.InvalidStatus):
            response = exc.response
            self._denied(response.status_code, bytes(response.body or b""), exc)
            return True
        if client is not None and isinstance(exc, client.ConnectionClosed):
            frame = exc.rcvd  # None: no close frame arrived (1006, abnormal closure)
            self._closed(frame.code if frame else 1006, frame.reason if frame else "", exc)
            return True
        return False


class _ExpectRejection(AbstractContextManager[Rejection]):
    def __init__(self, code: int | None, reason: str | None, status: int | None) -> None:
        self._code, self._reason, self._status = code, reason, status
        self._rejection = Rejection()

    def __enter__(self) -> Rejection:
        return self._rejection

    def _expected(self) -> str:
        parts = [f"reason {self._reason!r}"] if self._reason is not None else []
        if self._code is not None:
            parts.append(f"close code {self._code}")
        if self._status is not None:
            parts.append(f"HTTP status {self._status}")
        return "expected a WebSocket rejection with " + " or ".join(parts)

    def _mismatch(self, rejection: Rejection) -> str | None:
        """Why ``rejection`` is not the expected one, or None when it is."""
        modes = {"close"} if self._code is not None else set()
        modes |= {"deny"} if self._status is not None else set()
        if modes and rejection.mode not in modes:
            wanted = "status=" if rejection.mode == "deny" else "code="
            return (
                f'the app rejects in "{rejection.mode}" mode (JWT_WS_REJECTION): '
                f"expect {wanted} for it, or reason= for either mode"
            )
        if rejection.mode == "close" and self._code not in (None, rejection.code):
            return f"close code {rejection.code} is not {self._code}"
        if rejection.mode == "deny" and self._status not in (None, rejection.status):
            return f"HTTP status {rejection.status} is not {self._status}"
        if self._reason is not None and rejection.reason != self._reason:
            return f"reason {rejection.reason!r} is not {self._reason!r}"
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if exc is None:
            raise AssertionError(
                f"{self._expected()}, but the WebSocket was accepted: the block ended "
                'without a close or a denial. (In "close" mode the rejection arrives '
                "after the accept: read from the socket inside the block, e.g. "
                "ws.receive_json() or await ws.recv().)"
            )
        if not self._rejection._fill(exc):
            return False  # not a rejection: let the real error through
        problem = self._mismatch(self._rejection)
        if problem is not None:
            raise AssertionError(
                f"{self._expected()}, but {self._rejection.describe()}: {problem}"
            ) from exc
        return True


def expect_ws_rejection(
    *, code: int | None = None, reason: str | None = None, status: int | None = None
) -> AbstractContextManager[Rejection]:
    """Assert that the WebSocket connection made in the block is refused.

    Works with Starlette's ``TestClient`` and the ``websockets`` client. ``reason``
    (a reason token of :mod:`authx.close_codes`) matches in either rejection mode;
    ``code`` asks for a close (``"close"`` mode, or a live connection's close) and
    ``status`` for an HTTP denial (``"deny"`` mode); give both to accept either.
    An accepted socket or a different rejection is an ``AssertionError`` saying
    what the client saw; other exceptions pass through. Yields a :class:`Rejection`.

    >>> with expect_ws_rejection(reason="token_expired") as rejection:
    ...     with client.websocket_connect(token_url("/ws", expired)) as ws:
    ...         ws.receive_json()  # "close" mode: the close comes after the accept
    >>> rejection.mode, rejection.status
    ('deny', 401)
    """
    if code is None and reason is None and status is None:
        raise TypeError("expect_ws_rejection() needs code=, reason= or status=")
    if reason is not None:
        try:
            lookup(reason)
        except KeyError:
            known = ", ".join(row.reason for row in CLOSE_CODES)
            raise ValueError(f"unknown reason {reason!r}; the reasons are: {known}") from None
    return _ExpectRejection(code, reason, status)


# The clock -----------------------------------------------------------------


class Clock:
    """A frozen (or ticking) wall clock, moved by hand; see :func:`freeze_clock`."""

    def __init__(self, at: datetime | float | None, tick: bool) -> None:
        self._at = at
        self._tick = tick
        self._travel: time_machine.travel | None = None
        self._traveller: time_machine.Traveller | None = None

    def __enter__(self) -> Clock:
        try:
            import time_machine
        except ImportError:
            raise ImportError(
                'authx.testing.freeze_clock needs time-machine: pip install "authx-ws[testing]"'
            ) from None
        start = time.time() if self._at is None else self._at
        self._travel = time_machine.travel(start, tick=self._tick)
        self._traveller = self._travel.start()
        time.time()  # a ticking clock runs from its first reading: start it now
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._travel is not None:
            self._travel.stop()
            self._travel = self._traveller = None

    def advance(self, seconds: float | timedelta) -> None:
        """Move the wall clock forward by ``seconds`` (backward when negative)."""
        if self._traveller is None:
            raise RuntimeError("advance() works inside the freeze_clock() block")
        delta = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
        self._traveller.shift(delta)

    def now(self) -> float:
        """The wall clock's current time, ``time.time()``."""
        return time.time()


def freeze_clock(at: datetime | float | None = None, *, tick: bool = False) -> Clock:
    """Freeze the wall clock at ``at`` (default: now) for the ``with`` block, and move it
    with :meth:`Clock.advance`; ``tick=True`` lets it run on from there.

    Token issuing and verification (``exp``, ``nbf``, ``iat``), tickets and the memory
    store's expiries read the wall clock and follow it, in every thread of this
    process. Event-loop timers do not: a live WebSocket connection's close at
    ``exp`` was armed as a delay on the loop's monotonic clock when it opened, so
    advancing the clock does not close an open connection (test that with a
    short-lived token). A server in another process keeps its own clock.

    >>> with freeze_clock() as clock:
    ...     token = make_token(auth, "alice", expires=timedelta(minutes=15))
    ...     clock.advance(timedelta(minutes=16))
    ...     client.get("/me", headers=bearer(token)).status_code
    401
    """
    return Clock(at, tick)
