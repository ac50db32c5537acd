"""One connection of :class:`authx.client.AuthXClient`: open, refresh in band, read to the end.

:func:`run_connection` opens a socket with the transport's handshake, sends what
was queued, hands application messages on, answers ``authx.expiring`` with a new
token, and returns how the connection ended. Whether and when to reconnect is
the client's decision (:class:`authx._client_protocol.Reconnection`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from authx._client_protocol import (
    AuthError,
    Ending,
    failure,
    from_close,
    from_denial,
    refresh_message,
    server_message_type,
)
from authx._client_transports import TicketRefusedError, Transport, handshake
from authx.redaction import RedactTokensFilter

__all__ = ["Endpoint", "Live", "Message", "Tokens", "call", "run_connection", "where"]

logger = logging.getLogger("authx.client")


class _WireFilter(logging.Filter):
    """Keeps tokens out of websockets' debug log of headers and (truncated) frames."""

    # The value after each place the client puts a token: the subprotocol, the
    # Authorization header, a JSON "token" field (cut short in frame logs) and the URL.
    _AFTER = re.compile(r'(authx\.bearer\.|Bearer\s+|"token"\s*:\s*")[^\s"&,]*')
    _urls_and_jwts = RedactTokensFilter(("token", "ticket"))

    def filter(self, record: logging.LogRecord) -> bool:
        text = self._urls_and_jwts.redact(record.getMessage())
        record.msg, record.args = self._AFTER.sub(r"\g<1>[redacted]", text), None
        return True


#: websockets' own (debug) log of handshakes and frames, with tokens and tickets removed.
_wire = logging.getLogger("authx.client.wire")
_wire.addFilter(_WireFilter())

Message = str | bytes
#: A connection open this long without any message still counts as one that worked.
STABLE_AFTER = 5.0


def where(url: str) -> str:
    """``url`` without its query string, for logs and errors (the query may hold a token)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


async def call(callback: Callable[..., Any] | None, *args: Any) -> None:
    """Run an app's callback (plain or async); its failure is logged, never fatal."""
    if callback is None:
        return
    try:
        result = callback(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception("callback %s failed", getattr(callback, "__name__", "?"))


class Tokens:
    """The app's ``get_token`` and the token in use (what the next connection presents)."""

    def __init__(self, source: Callable[[], Awaitable[str]] | str) -> None:
        self._source = source
        self.current: str | None = None

    async def fresh(self) -> str:
        """A token from the app (a fixed token is returned as it is)."""
        if isinstance(self._source, str):
            return self._source
        token: object = await self._source()
        if not isinstance(token, str) or not token:
            raise TypeError(f"get_token returned {type(token).__name__}, not a token")
        return token


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to connect: fixed for the client's lifetime."""

    url: str
    transport: Transport
    ticket_url: str | None
    protocols: list[str]
    prefix: str
    open_timeout: float

    async def open(self, token: str) -> tuple[ClientConnection, str | None] | Ending:
        """An open socket and the first message to send on it, or why the handshake failed."""
        try:
            opening = await handshake(
                self.transport,
                self.url,
                token,
                protocols=self.protocols,
                prefix=self.prefix,
                ticket_url=self.ticket_url,
                open_timeout=self.open_timeout,
            )
            ws = await connect(
                opening.url,
                subprotocols=[Subprotocol(p) for p in opening.subprotocols] or None,
                additional_headers=opening.headers or None,
                open_timeout=self.open_timeout,
                logger=_wire,
            )
        except TicketRefusedError as refused:
            return refused.ending
        except InvalidStatus as denied:
            response = denied.response
            body = bytes(response.body or b"")
            return from_denial(response.status_code, body, response.headers.get("Retry-After"))
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            return failure(type(exc).__name__)
        return ws, opening.first_message


def ending_of(closed: ConnectionClosed) -> Ending:
    """How a socket ended: its close frame, or a lost connection (1006)."""
    if closed.rcvd is None:
        return failure("connection_lost")
    return from_close(closed.rcvd.code, closed.rcvd.reason)


@dataclass
class Live:
    """One open connection, and what was sent on it before it proved itself.

    A refused handshake in ``"close"`` mode opens, then closes at once: what was
    sent meanwhile is lost, so it is queued again (``queueing``) unless the
    connection worked (an application message came, or it stayed open a while).
    """

    ws: ClientConnection
    unconfirmed: deque[Message] | None  # None: nothing is queued again (queue="reject")
    opened_at: float = field(default_factory=time.monotonic)
    heard: bool = False  # an application message arrived
    refresh: asyncio.Task[None] | None = None

    @property
    def worked(self) -> bool:
        return self.heard or time.monotonic() - self.opened_at >= STABLE_AFTER

    async def send(self, message: Message) -> None:
        """Send on the socket (``ConnectionClosed`` when it is gone)."""
        await self.ws.send(message)
        if self.unconfirmed is not None and not self.worked:
            self.unconfirmed.append(message)


async def run_connection(
    endpoint: Endpoint,
    tokens: Tokens,
    renew: bool,
    outbox: deque[Message],
    *,
    queueing: bool,
    on_open: Callable[[Live], Awaitable[None]],
    deliver: Callable[[Message], Awaitable[None]],
) -> tuple[Ending, bool]:
    """Connect once and read until the end: how it ended, and whether it worked for a while.

    ``outbox`` (the bounded send queue) is sent first; with ``queueing``, what was
    sent before the connection worked is queued again if it ends early.
    """
    try:
        if renew or tokens.current is None:
            tokens.current = await tokens.fresh()
    except AuthError:
        raise  # the app says stop
    except Exception as exc:  # noqa: BLE001 - the app's refresh failed: retried with backoff
        logger.warning("get_token failed (%s)", type(exc).__name__)
        return failure("get_token_failed"), False
    opened = await endpoint.open(tokens.current)
    if isinstance(opened, Ending):
        return opened, False
    ws, first = opened
    live = Live(ws, deque(maxlen=outbox.maxlen) if queueing else None)
    try:
        if first is not None:
            await ws.send(first)
        while outbox:  # before "open": a send() meanwhile queues behind these
            message = outbox.popleft()
            try:
                await live.send(message)
            except ConnectionClosed:
                outbox.appendleft(message)
                raise
        await on_open(live)
        ending = await _read(live, endpoint.prefix, tokens, deliver)
    except ConnectionClosed as closed:
        ending = ending_of(closed)
    finally:
        if live.refresh is not None:
            live.refresh.cancel()
        await ws.close()
    worked = live.worked
    if not worked and live.unconfirmed:  # None or empty: nothing to queue again
        waiting = [*live.unconfirmed, *outbox]
        outbox.clear()
        outbox.extend(waiting)  # the newest kept when over the limit
    return ending, worked


async def _read(
    live: Live, prefix: str, tokens: Tokens, deliver: Callable[[Message], Awaitable[None]]
) -> Ending:
    while True:
        try:
            message = await live.ws.recv()
        except ConnectionClosed as closed:
            return ending_of(closed)
        kind = server_message_type(message, prefix) if isinstance(message, str) else None
        if kind == "expiring":
            if live.refresh is None or live.refresh.done():
                live.refresh = asyncio.create_task(_refresh_in_band(live.ws, prefix, tokens))
        elif kind is None:
            live.heard = True
            await deliver(message)


async def _refresh_in_band(ws: ClientConnection, prefix: str, tokens: Tokens) -> None:
    """Answer ``expiring`` with a new token on the same socket (a refused one closes it)."""
    try:
        token = await tokens.fresh()
    except Exception as exc:  # noqa: BLE001 - the server closes with token_expired: handled then
        logger.warning("get_token failed for a refresh (%s)", type(exc).__name__)
        return
    if token == tokens.current:
        return  # a fixed token: nothing to renew
    tokens.current = token
    with contextlib.suppress(ConnectionClosed):
        await ws.send(refresh_message(prefix, token))
