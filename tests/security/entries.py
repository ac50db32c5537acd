"""Every place a token enters the attacked app, and what a client sees there.

An :class:`Entry` presents one token at one entry point of a live server (HTTP
header, cookie, query and JSON body; WebSocket query, header, subprotocol, cookie,
ticket, first message and in-band refresh) and reports a :class:`Seen`: whether
the token was accepted, the status or close code, and every text the client was
shown (body, headers, close reason), so tests can look for leaked tokens in it,
and the reason token of the refusal (the JSON body's ``reason``, or the close reason).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from tests.conftest import LiveServer
from tests.security.corpus import ALLOWED_ORIGIN, genuine

TIMEOUT = 8.0
#: Request lines and header lines over 8 KiB are refused by the servers themselves.
MAX_LINE = 7800
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


@dataclass
class Seen:
    """What the client observed after presenting a token."""

    accepted: bool
    code: int | None  # HTTP status (HTTP and "deny" handshakes) or WebSocket close code
    texts: list[str] = field(default_factory=list)
    error_type: str | None = None
    note: str = ""
    #: Other secrets the exchange involved (a ticket), for the log checks.
    secrets: list[str] = field(default_factory=list)
    #: The reason token of a refusal: the JSON body's ``reason`` or the close reason.
    reason: str | None = None

    def __str__(self) -> str:
        state = "ACCEPTED" if self.accepted else "refused"
        shown = " | ".join(t[:120] for t in self.texts[:2])
        return f"{state} code={self.code} error_type={self.error_type} {self.note} {shown}"


def _http_seen(response: httpx.Response) -> Seen:
    error_type = reason = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error_type = body.get("error_type")
        reason = body.get("reason")
    texts = [response.text, *(f"{k}: {v}" for k, v in response.headers.items())]
    return Seen(response.status_code == 200, response.status_code, texts, error_type, reason=reason)


def _client(server: LiveServer) -> httpx.AsyncClient:
    # Plain http on loopback: verify=False skips loading the CA bundle (20 ms a client).
    return httpx.AsyncClient(base_url=server.http, timeout=TIMEOUT, verify=False)  # noqa: S501


async def http_get(server: LiveServer, path: str, **kwargs: Any) -> Seen:
    async with _client(server) as client:
        return _http_seen(await client.get(path, **kwargs))


async def http_post(server: LiveServer, path: str, **kwargs: Any) -> Seen:
    async with _client(server) as client:
        return _http_seen(await client.post(path, **kwargs))


async def ws_open(
    url: str,
    headers: dict[str, str] | None = None,
    subprotocols: list[str] | None = None,
    first: str | None = None,
) -> Seen:
    """Connect (optionally sending ``first``) and report the first thing the server does."""
    try:
        async with asyncio.timeout(TIMEOUT):
            async with websockets.connect(
                url,
                additional_headers=headers,
                subprotocols=subprotocols,  # type: ignore[arg-type]
                max_size=None,
            ) as ws:
                if first is not None:
                    await ws.send(first)
                try:
                    raw = await ws.recv()
                except ConnectionClosed as closed:
                    rcvd = closed.rcvd
                    reason = rcvd.reason if rcvd else ""
                    return Seen(False, rcvd.code if rcvd else None, [reason], reason=reason)
                return Seen(True, None, [str(raw)])
    except InvalidStatus as exc:
        response = exc.response
        body = bytes(response.body or b"").decode(errors="replace")
        error_type = reason = None
        if body.startswith("{"):
            data = json.loads(body)
            error_type, reason = data.get("error_type"), data.get("reason")
        headers_seen = [f"{k}: {v}" for k, v in response.headers.raw_items()]
        return Seen(False, response.status_code, [body, *headers_seen], error_type, reason=reason)
    except TimeoutError:
        return Seen(False, None, [], note="no answer in time")
    except (InvalidHandshake, ConnectionClosed, OSError) as exc:
        return Seen(False, None, [], note=f"connection failed: {exc!r}"[:200])


async def ws_refresh(
    server: LiveServer, token: str, path: str = "/ws", opener: str | None = None
) -> Seen:
    """Open ``path`` with a genuine token, then offer ``token`` in an in-band refresh."""
    opener = opener or genuine()
    message = json.dumps({"type": "authx.refresh", "token": token})
    return await ws_send_after_open(server, message, path, opener)


async def ws_send_after_open(server: LiveServer, message: str, path: str, opener: str) -> Seen:
    """Open ``path`` with ``opener``, send ``message`` and report the server's answer."""
    try:
        async with asyncio.timeout(TIMEOUT):
            async with websockets.connect(f"{server.ws}{path}?token={opener}") as ws:
                await ws.recv()
                await ws.send(message)
                try:
                    raw = await ws.recv()
                except ConnectionClosed as closed:
                    rcvd = closed.rcvd
                    reason = rcvd.reason if rcvd else ""
                    return Seen(False, rcvd.code if rcvd else None, [reason], reason=reason)
                answer = json.loads(raw)
                accepted = isinstance(answer, dict) and answer.get("type") == "authx.refreshed"
                return Seen(accepted, None, [str(raw)], note="" if accepted else "not closed")
    except TimeoutError:
        return Seen(False, None, [], note="no answer in time")
    except (InvalidHandshake, ConnectionClosed, OSError) as exc:
        return Seen(False, None, [], note=f"connection failed: {exc!r}"[:200])


# Entry points -------------------------------------------------------------------


def _header_safe(token: str) -> bool:
    return (
        bool(token)
        and len(token) <= MAX_LINE
        and all(" " <= c <= "~" for c in token)
        and token == token.strip()
    )


def _cookie_safe(token: str) -> bool:
    return _header_safe(token) and not set(token) & set(';",\\')


def _url_safe(token: str) -> bool:
    return len(quote(token, safe="")) <= MAX_LINE


def _tchars(token: str) -> bool:
    return bool(token) and len(token) <= MAX_LINE and set(token) <= _TCHAR


def _anything(token: str) -> bool:
    return True


async def _http_header(server: LiveServer, token: str) -> Seen:
    return await http_get(server, "/me", headers={"Authorization": f"Bearer {token}"})


async def _http_cookie(server: LiveServer, token: str) -> Seen:
    return await http_get(server, "/me", headers={"Cookie": f"access_token_cookie={token}"})


async def _http_query(server: LiveServer, token: str) -> Seen:
    return await http_get(server, f"/me?token={quote(token, safe='')}")


async def _http_json(server: LiveServer, token: str) -> Seen:
    body = json.dumps({"access_token": token})
    return await http_post(
        server, "/me", content=body, headers={"Content-Type": "application/json"}
    )


async def _ws_query(server: LiveServer, token: str) -> Seen:
    return await ws_open(f"{server.ws}/ws?token={quote(token, safe='')}")


async def _ws_header(server: LiveServer, token: str) -> Seen:
    return await ws_open(f"{server.ws}/ws", headers={"Authorization": f"Bearer {token}"})


async def _ws_subprotocol(server: LiveServer, token: str) -> Seen:
    return await ws_open(f"{server.ws}/ws", subprotocols=[f"authx.bearer.{token}", "chat.v1"])


async def _ws_cookie(server: LiveServer, token: str) -> Seen:
    headers = {"Cookie": f"access_token_cookie={token}", "Origin": ALLOWED_ORIGIN}
    return await ws_open(f"{server.ws}/ws", headers=headers)


async def _ws_ticket(server: LiveServer, token: str) -> Seen:
    """Exchange the token for a ticket over HTTP, and open a WebSocket with the ticket."""
    issued = await http_post(server, "/ws-ticket", headers={"Authorization": f"Bearer {token}"})
    if not issued.accepted:
        issued.note = "no ticket issued"
        return issued
    ticket = json.loads(issued.texts[0])["ticket"]
    seen = await ws_open(f"{server.ws}/ws?ticket={ticket}")
    seen.note = "ticket issued"
    seen.secrets.append(ticket)
    return seen


async def _ws_message(server: LiveServer, token: str) -> Seen:
    first = json.dumps({"type": "authx.auth", "token": token})
    return await ws_open(f"{server.ws}/ws", first=first)


async def _ws_refresh(server: LiveServer, token: str) -> Seen:
    return await ws_refresh(server, token)


@dataclass(frozen=True)
class Entry:
    name: str
    present: Callable[[LiveServer, str], Awaitable[Seen]]
    carries: Callable[[str], bool]
    #: The attacked server: "deny" (JWT_WS_REJECTION's default) or "close".
    mode: str = "deny"
    #: What refusing an unauthenticated token looks like: HTTP 401 or close 4001.
    refused: int = 401
    #: What refusing a revoked token looks like: HTTP 401 or close 4004.
    revoked: int = 401

    def __str__(self) -> str:
        return self.name


ENTRIES = (
    Entry("http-header", _http_header, _header_safe),
    Entry("http-cookie", _http_cookie, _cookie_safe),
    Entry("http-query", _http_query, _url_safe),
    Entry("http-json", _http_json, _anything),
    Entry("ws-query", _ws_query, _url_safe),
    Entry("ws-query-close-mode", _ws_query, _url_safe, mode="close", refused=4001, revoked=4004),
    Entry("ws-header", _ws_header, _header_safe),
    Entry("ws-subprotocol", _ws_subprotocol, _tchars),
    Entry("ws-cookie", _ws_cookie, _cookie_safe),
    Entry("ws-ticket", _ws_ticket, _header_safe),
    Entry("ws-first-message", _ws_message, _anything, refused=4001, revoked=4004),
    Entry("ws-inband-refresh", _ws_refresh, _anything, refused=4001, revoked=4004),
)


def judge(
    entry: Entry, seen: Seen, error_type: str | None = None, revoked: bool = False
) -> str | None:
    """Why ``seen`` is not the refusal ``entry`` documents (None when it is): of an
    unauthenticated token (``invalid_token``), or of a revoked one (``token_revoked``)."""
    if seen.accepted:
        return f"accepted: {seen}"
    code, reason = (entry.revoked, "token_revoked") if revoked else (entry.refused, "invalid_token")
    if revoked:
        error_type = "RevokedTokenError"
    if seen.code != code:
        return f"expected {code}: {seen}"
    if code == 401 and seen.error_type is None:
        return f"401 without an AuthX error body: {seen}"
    if error_type is not None and seen.error_type not in (None, error_type):
        return f"expected {error_type}: {seen}"
    if seen.reason != reason:
        return f"expected reason {reason!r}, got {seen.reason!r}: {seen}"
    return None


def secrets_of(token: str) -> list[str]:
    """The parts of ``token`` that must never be shown or logged."""
    found = [token] if len(token) >= 16 else []
    last = token.rsplit(".", 1)[-1].strip()
    if len(last) >= 16 and last != token:
        found.append(last)
    return found


def leaks(seen: Seen, secrets: list[str]) -> list[str]:
    return [s[:24] + "..." for s in secrets for text in seen.texts if s in text]


def log_errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if "ERROR" in line or "Traceback" in line]


class LogWatch:
    """New log lines of the servers since the watch started, with marks between phases
    (an entry point each) so that an ERROR line can be traced to the phase it came in."""

    def __init__(self, *servers: LiveServer) -> None:
        self.servers = servers
        self.starts = [len(s.log()) for s in servers]
        self.marks: list[tuple[str, list[int]]] = []

    def mark(self, phase: str) -> None:
        self.marks.append((phase, [len(s.log()) for s in self.servers]))

    def read(self, settle: float = 0.15) -> dict[str, str]:
        """Each phase's lines (``""`` for lines before the first mark)."""
        time.sleep(settle)  # the last connection's lines
        ends = [len(s.log()) for s in self.servers]
        bounds = [("", self.starts), *self.marks, ("", ends)]
        phases: dict[str, str] = {}
        for (phase, begin), (_, end) in itertools.pairwise(bounds):
            phases[phase] = phases.get(phase, "") + "".join(
                s.log()[b:e] for s, b, e in zip(self.servers, begin, end, strict=True)
            )
        return phases
