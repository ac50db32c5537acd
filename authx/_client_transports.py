"""How the client presents its token: one handshake shape per transport, and the ticket fetch.

The ticket route is called with the standard library (``urllib`` in a thread), so
the client needs nothing beyond ``websockets``.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from authx._client_protocol import Ending, auth_message, failure, from_denial
from authx._json import loads_object
from authx.websocket._transports import SUBPROTOCOL_PREFIX

__all__ = [
    "TRANSPORTS",
    "Handshake",
    "TicketRefusedError",
    "Transport",
    "fetch_ticket",
    "handshake",
    "ticket_endpoint",
]

Transport = Literal["ticket", "subprotocol", "message", "query", "header"]
TRANSPORTS: tuple[str, ...] = get_args(Transport)

#: A ticket answer is ~60 bytes; read no more than this of it.
_TICKET_BODY_MAX = 8192


@dataclass(frozen=True, slots=True)
class Handshake:
    """What to connect with: the URL, subprotocols, headers and an optional first message."""

    url: str
    subprotocols: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    first_message: str | None = None


class TicketRefusedError(Exception):
    """The ticket route did not give a ticket; ``ending`` says what that means."""

    def __init__(self, ending: Ending) -> None:
        super().__init__(ending.reason)
        self.ending = ending


def with_param(url: str, name: str, value: str) -> str:
    """``url`` with the query parameter ``name`` set to ``value`` (others kept)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    return urlunsplit(parts._replace(query=urlencode([*query, (name, value)])))


def ticket_endpoint(ticket_url: str, ws_url: str) -> str:
    """The absolute http(s) URL of the ticket route (a path is taken relative to ``ws_url``)."""
    ws = urlsplit(ws_url)
    base = urlunsplit(ws._replace(scheme="https" if ws.scheme == "wss" else "http"))
    url = urljoin(base, ticket_url)
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"ticket_url must be an http(s) URL or a path, got {ticket_url!r}")
    return url


def _post(url: str, token: str, timeout: float) -> tuple[int, bytes, str | None]:
    request = urllib.request.Request(  # noqa: S310 - ticket_endpoint allows http(s) only
        url,
        data=b"",
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read(_TICKET_BODY_MAX), None
    except urllib.error.HTTPError as error:
        try:
            return error.code, error.read(_TICKET_BODY_MAX), error.headers.get("Retry-After")
        finally:
            error.close()


async def fetch_ticket(url: str, token: str, open_timeout: float) -> str:
    """POST the bearer token to the ticket route and return ``{"ticket": ...}``'s ticket.

    An HTTP error is read as a refused handshake would be (an expired token is
    ``token_expired``: refresh); network errors raise ``OSError``.
    """
    status, body, retry_after = await asyncio.to_thread(_post, url, token, open_timeout)
    if status >= 300:
        raise TicketRefusedError(from_denial(status, body, retry_after))
    data = loads_object(body)
    ticket = data.get("ticket") if data is not None else None
    if not isinstance(ticket, str) or not ticket:
        raise TicketRefusedError(failure("bad_ticket_response"))
    return ticket


async def handshake(
    transport: Transport,
    url: str,
    token: str,
    *,
    protocols: Sequence[str],
    prefix: str,
    ticket_url: str | None,
    open_timeout: float,
) -> Handshake:
    """The handshake that carries ``token`` with ``transport`` (the ticket one fetches a ticket)."""
    offered = list(protocols)
    if transport == "subprotocol":
        return Handshake(url, [f"{SUBPROTOCOL_PREFIX}{token}", *offered])
    if transport == "query":
        return Handshake(with_param(url, "token", token), offered)
    if transport == "header":
        return Handshake(url, offered, {"Authorization": f"Bearer {token}"})
    if transport == "message":
        return Handshake(url, offered, first_message=auth_message(prefix, token))
    assert ticket_url is not None  # noqa: S101 - AuthXClient checks it
    ticket = await fetch_ticket(ticket_url, token, open_timeout)
    return Handshake(with_param(url, "ticket", ticket), offered)
