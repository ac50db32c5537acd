"""A WebSocket client that stays connected to an AuthX endpoint, for services, bots and tests.

::

    from authx.client import AuthError, AuthXClient

    async def get_token() -> str:  # your refresh route
        return (await http.post("/refresh")).json()["access_token"]

    async with AuthXClient("wss://api.example.com/ws", get_token=get_token) as client:
        await client.send("hello")  # queued while reconnecting
        async for message in client:  # str or bytes; AuthX's own messages filtered
            ...

It presents the token with a browser-safe transport, answers ``authx.expiring``
with an in-band refresh (the socket never drops), and follows the close-code table
(:mod:`authx.close_codes`): refresh and reconnect, retry with backoff, or stop with
:class:`AuthError`. It needs ``websockets`` (``pip install "authx-ws[client]"``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Self, cast
from urllib.parse import urlsplit

try:
    import websockets.asyncio.client  # noqa: F401 - the asyncio API arrived in websockets 13
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        'authx.client needs the websockets package (>= 13): pip install "authx-ws[client]"'
    ) from exc

from websockets.exceptions import ConnectionClosed

from authx._client_connection import Endpoint, Live, Message, Tokens, call, run_connection, where
from authx._client_protocol import (
    AuthError,
    Backoff,
    ClientError,
    NotOpenError,
    Reconnection,
)
from authx._client_transports import TRANSPORTS, Transport, ticket_endpoint

__all__ = [
    "AuthError",
    "AuthXClient",
    "Backoff",
    "ClientError",
    "Message",
    "NotOpenError",
    "State",
    "StateInfo",
    "Transport",
]

logger = logging.getLogger("authx.client")

State = Literal["connecting", "open", "reconnecting", "closed"]

#: Received messages held for a slow reader; past it the socket is read no further.
_INBOX_LIMIT = 1024
_QUEUE_MODES = ("queue", "reject")


@dataclass(frozen=True, slots=True)
class StateInfo:
    """A state change's details.

    ``"reconnecting"``: the attempt number, the delay before it, and the close code
    and reason token that ended the last connection; ``"closed"``: the code and
    reason (1000 after :meth:`AuthXClient.close`); ``"open"``: the subprotocol the
    server selected.
    """

    attempt: int = 0
    delay: float | None = None
    code: int | None = None
    reason: str | None = None
    protocol: str | None = None


class _Signal:
    """Wakes every waiter at once; each wait sees the next notification only."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self) -> None:
        await self._event.wait()


class AuthXClient:
    """A WebSocket connection to an AuthX endpoint that survives expiry, restarts and outages.

    ``get_token``: an async callable returning a fresh access token (your refresh
    route), or a fixed token string (which cannot be renewed). Raise
    :class:`AuthError` from it to stop the client; any other exception counts as a
    network failure, retried with backoff.

    ``transport``: ``"ticket"`` (the default with ``ticket_url``), ``"subprotocol"``
    (the default otherwise), ``"message"``, ``"query"`` (the token in the URL) or
    ``"header"`` (``Authorization: Bearer``; not available to browsers). Callbacks
    may be plain or async: ``on_message(data)`` (instead of iterating),
    ``on_state_change(state, info)``, ``on_auth_error(error)`` (once, when it stops).
    """

    def __init__(
        self,
        url: str,
        *,
        get_token: Callable[[], Awaitable[str]] | str,
        transport: Transport | None = None,
        ticket_url: str | None = None,
        protocols: Sequence[str] | None = None,
        message_prefix: str = "authx.",
        backoff: Backoff | None = None,
        queue: Literal["queue", "reject"] = "queue",
        queue_limit: int = 100,
        open_timeout: float = 10.0,
        on_message: Callable[[Message], object] | None = None,
        on_state_change: Callable[[State, StateInfo], object] | None = None,
        on_auth_error: Callable[[AuthError], object] | None = None,
    ) -> None:
        if urlsplit(url).scheme not in ("ws", "wss"):
            raise ValueError(f"url must be a ws:// or wss:// URL, got {where(url)!r}")
        chosen: str = transport or ("ticket" if ticket_url else "subprotocol")
        if chosen not in TRANSPORTS:
            hint = " (cookies are a browser transport)" if chosen == "cookie" else ""
            raise ValueError(f"transport must be one of {TRANSPORTS}, got {chosen!r}{hint}")
        if chosen == "ticket" and not ticket_url:
            raise ValueError('transport="ticket" needs ticket_url (the route answering {"ticket"})')
        if queue not in _QUEUE_MODES or queue_limit < 1:
            raise ValueError(f"queue must be one of {_QUEUE_MODES} and queue_limit >= 1")
        if not isinstance(get_token, str) and not callable(get_token):
            raise TypeError("get_token must be an async callable returning a token, or a token")
        if protocols is None:
            protocols = ["authx"] if chosen == "subprotocol" else []
        self._endpoint = Endpoint(
            url=url,
            transport=cast(Transport, chosen),  # checked against TRANSPORTS above
            ticket_url=ticket_endpoint(ticket_url, url) if ticket_url else None,
            protocols=list(protocols),
            prefix=message_prefix,
            open_timeout=open_timeout,
        )
        self._tokens = Tokens(get_token)
        self._policy = Reconnection(backoff or Backoff())
        self._reject = queue == "reject"
        self._on_message = on_message
        self._on_state_change = on_state_change
        self._on_auth_error = on_auth_error

        self._state: State = "closed"
        self._live: Live | None = None  # the current connection, once open
        self._task: asyncio.Task[None] | None = None
        self._outbox: deque[Message] = deque(maxlen=queue_limit)
        self._inbox: deque[Message] = deque()
        self._error: AuthError | None = None
        self._failure: Exception | None = None
        self._closing = False
        self._finished = False
        self._changed = _Signal()  # a state change, a message in, room in the inbox

    @property
    def state(self) -> State:
        """``"connecting"``, ``"open"``, ``"reconnecting"`` or ``"closed"``."""
        return self._state

    @property
    def url(self) -> str:
        """The endpoint, as given."""
        return self._endpoint.url

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting in the background (``async with`` does it); returns at once."""
        if self._task is not None:
            raise RuntimeError("this AuthXClient was already started")
        await self._set_state("connecting", StateInfo())
        if self._closing:
            return  # close() from the callback
        self._task = asyncio.create_task(self._run(), name=f"authx-client {where(self.url)}")

    async def close(self) -> None:
        """Stop for good: close the socket with 1000, cancel any wait, never reconnect."""
        if self._closing:
            return
        self._closing = True
        self._inbox.clear()
        self._outbox.clear()
        task = self._task
        inside = task is asyncio.current_task()  # close() from a callback of the loop
        if task is not None and not inside:
            task.cancel()
            await asyncio.wait([task])
        if self._state != "closed":
            await self._set_state("closed", StateInfo(code=1000, reason=""))
        self._finished = True
        self._changed.notify()
        if task is not None and inside:
            task.cancel()  # the loop ends at its next await

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def wait_open(self) -> None:
        """Wait until connected; :class:`AuthError` if the client stopped instead."""
        while self._state != "open":
            self._check(started=True)
            await self._changed.wait()

    async def wait_closed(self) -> None:
        """Wait until the client stops: returns after :meth:`close`, raises :class:`AuthError`."""
        self._check(started=True, closed_ok=True)
        while not self._finished:
            await self._changed.wait()
        self._check(closed_ok=True)

    def _check(self, *, started: bool = False, closed_ok: bool = False) -> None:
        if started and self._task is None:
            raise NotOpenError("start the client first (async with, or await client.start())")
        if self._error is not None:
            raise self._error
        if self._failure is not None:
            raise ClientError("the client's connection loop failed") from self._failure
        if (self._finished or self._closing) and not closed_ok:
            raise NotOpenError("the client is closed")

    # -- messages ------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        """Send now if open; else queue it (the oldest dropped past ``queue_limit``) or raise."""
        self._check()
        live = self._live if self._state == "open" else None
        if live is not None:
            try:
                await live.send(message)
                return
            except ConnectionClosed:
                pass  # the loop sees the close too; queue or reject as when not open
        if self._reject:
            raise NotOpenError(f"not connected (state {self._state!r}) and queue='reject'")
        self._outbox.append(message)

    async def recv(self) -> Message:
        """The next application message; :class:`AuthError` when the server said stop."""
        if self._on_message is not None:
            raise RuntimeError("messages go to on_message: do not also iterate")
        while not self._inbox:
            self._check(started=True)
            await self._changed.wait()
        message = self._inbox.popleft()
        self._changed.notify()
        return message

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Message:
        """The next message; the iteration ends after :meth:`close`."""
        try:
            return await self.recv()
        except NotOpenError:
            if self._task is None:
                raise
            raise StopAsyncIteration from None

    # -- the connection loop -------------------------------------------------------

    async def _set_state(self, state: State, info: StateInfo) -> None:
        if state == self._state == "closed":
            return  # close() from on_auth_error: closed once
        self._state = state
        self._changed.notify()
        await call(self._on_state_change, state, info)

    async def _opened(self, live: Live) -> None:
        self._live = live
        await self._set_state("open", StateInfo(protocol=live.ws.subprotocol))

    async def _deliver(self, message: Message) -> None:
        if self._on_message is not None:
            await call(self._on_message, message)
            return
        while len(self._inbox) >= _INBOX_LIMIT:  # a slow reader slows the socket, not memory
            await self._changed.wait()
        self._inbox.append(message)
        self._changed.notify()

    async def _run(self) -> None:
        try:
            await self._loop()
        except asyncio.CancelledError:
            if not self._closing:
                raise
        except Exception as exc:
            logger.exception("the connection loop failed")
            self._failure = exc
            self._state = "closed"
        finally:
            self._finished = True
            self._changed.notify()

    async def _loop(self) -> None:
        renew = False
        while True:
            try:
                ending, worked = await run_connection(
                    self._endpoint,
                    self._tokens,
                    renew,
                    self._outbox,
                    queueing=not self._reject,
                    on_open=self._opened,
                    deliver=self._deliver,
                )
            except AuthError as error:  # raised by get_token: the app says stop
                await self._stop(error)
                return
            finally:
                self._live = None
            plan = self._policy.next(ending, worked)
            if plan is None:
                await self._stop(ending.error())
                return
            renew = plan.renew
            logger.info(
                "%s ended (%s %s); reconnecting in %.2f s",
                where(self.url),
                ending.code,
                ending.reason,
                plan.delay,
            )
            info = StateInfo(plan.attempt, plan.delay, ending.code, ending.reason)
            await self._set_state("reconnecting", info)
            await asyncio.sleep(plan.delay)

    async def _stop(self, error: AuthError) -> None:
        logger.warning("%s stopped: %s", where(self.url), error)
        self._error = error
        self._outbox.clear()
        await self._set_state("closed", StateInfo(code=error.code, reason=error.reason))
        await call(self._on_auth_error, error)
