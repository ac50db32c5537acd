"""Admission control: which handshakes AuthX even looks at.

Checked before any token is read, so a flood of handshakes costs a dictionary
lookup each, not a JWT verification and a log line:

- a token bucket per client address (``JWT_WS_RATE_LIMIT`` per second, bursts of
  ``JWT_WS_RATE_BURST``); a failed authentication takes ``JWT_WS_FAILURE_COST``
  more tokens (an expired token does not), down to ``-burst`` at most, so the
  longest wait is bounded;
- a token bucket per subject, checked after verification;
- a cap on sockets held open while waiting for the first-message token, per
  address and in total.

A refused handshake is answered after up to ``JWT_WS_REFUSAL_DELAY`` seconds
(at most ``JWT_WS_MAX_DELAYED`` at a time): a client flooding as fast as it is
answered is slowed to its own concurrency per delay, instead of taking every
turn of the event loop from everyone else.

The client address is the socket peer, or, when the peer is one of
``JWT_WS_TRUSTED_PROXIES``, the first untrusted address of ``X-Forwarded-For``
read from the right. IPv6 clients are counted per /64 network, the block one
host usually gets.

Buckets live in this process; with a store that keeps shared buckets (SQLite,
Redis) and ``JWT_WS_RATE_LIMIT_SHARED``, every worker also counts in the store.
A store outage makes the shared check fail open (the local bucket still holds):
a rate limit must not lock everyone out, while authentication keeps failing
closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from functools import lru_cache

from starlette.websockets import WebSocket

from authx._revocation import redact_url
from authx.config import AuthXConfig
from authx.exceptions import RateLimitedError
from authx.stores import RateLimitStore, Store

__all__ = ["Admission", "Buckets", "client_address"]

logger = logging.getLogger("authx")

#: Entries kept per table (buckets, log times) before full or stale ones are dropped.
_MAX_ENTRIES = 100_000
#: Failures that count extra against the address: guesses and replays. Not an expired
#: token: a laptop waking up reconnects every tab with one, and that is no attack.
_PENALIZED = frozenset(("invalid_token", "token_revoked", "origin_not_allowed", "auth_timeout"))

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Buckets:
    """In-process token buckets, bounded in memory.

    An absent key is a full bucket, so a key whose bucket filled up again can be
    dropped; when the table is full, those go first, then the oldest.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        #: key -> (tokens, updated at, full at)
        self._state: dict[str, tuple[float, float, float]] = {}

    def _tokens(self, key: str, rate: float, burst: float, now: float) -> float:
        state = self._state.pop(key, None)  # re-inserted last: the dict stays in age order
        if state is None:
            return burst
        tokens, updated, _ = state
        return min(burst, tokens + (now - updated) * rate)

    def _store(self, key: str, tokens: float, rate: float, burst: float, now: float) -> None:
        if len(self._state) >= _MAX_ENTRIES:
            self._shrink(now)
        self._state[key] = (tokens, now, now + (burst - tokens) / rate)

    def _shrink(self, now: float) -> None:
        for key in [k for k, (_, _, full_at) in self._state.items() if full_at <= now]:
            del self._state[key]
        while len(self._state) >= _MAX_ENTRIES:
            del self._state[next(iter(self._state))]

    def take(self, key: str, rate: float, burst: float) -> float:
        """Take a token: 0.0 when admitted, else the seconds until one is available."""
        now = self._clock()
        tokens = self._tokens(key, rate, burst, now)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
        self._store(key, tokens - 1 if wait == 0.0 else tokens, rate, burst, now)
        return wait

    def penalize(self, key: str, rate: float, burst: float, cost: float) -> None:
        """Take ``cost`` more tokens, never below ``-burst``."""
        now = self._clock()
        tokens = self._tokens(key, rate, burst, now)
        self._store(key, max(-burst, tokens - cost), rate, burst, now)

    def __len__(self) -> int:
        return len(self._state)


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("["):  # "[2001:db8::1]:443"
        text = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:  # "203.0.113.7:5678"
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _key(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


def _trusted(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, proxies: tuple[Network, ...]
) -> bool:
    return any(ip in network for network in proxies)


@lru_cache(maxsize=65_536)
def _peer_key(host: str) -> str:
    peer = _parse_ip(host)
    return "unknown" if peer is None else _key(peer)


def client_address(websocket: WebSocket, trusted_proxies: Sequence[str]) -> str:
    """The address a handshake is counted under (see the module's docstring)."""
    client = websocket.scope.get("client")
    if not client:
        return "unknown"
    if not trusted_proxies:
        return _peer_key(str(client[0]))  # the common case: parsed once per peer
    peer = _parse_ip(str(client[0]))
    if peer is None:
        return "unknown"
    proxies = _networks(tuple(trusted_proxies))
    if not _trusted(peer, proxies):
        return _key(peer)
    forwarded = [
        hop
        for name, value in websocket.scope.get("headers", [])
        if name == b"x-forwarded-for"
        for hop in value.decode("latin-1").split(",")
    ]
    nearest = peer
    for hop in reversed(forwarded):
        ip = _parse_ip(hop)
        if ip is None:
            break  # not written by a proxy we trust: stop at the last trusted hop
        if not _trusted(ip, proxies):
            return _key(ip)
        nearest = ip
    return _key(nearest)


class Admission:
    """The admission checks of one ``AuthX``: buckets, held sockets, rate-limited logging."""

    def __init__(
        self,
        config: Callable[[], AuthXConfig],
        store: Callable[[], Awaitable[Store]],
        current_store: Callable[[], Store | None],
    ) -> None:
        self._config = config
        self._store = store
        self._current_store = current_store
        self.buckets = Buckets()
        self._pending: dict[str, int] = {}
        self._pending_total = 0
        #: Refusals being held back now (see _hold_back).
        self._delayed = 0
        self._logged: dict[str, float] = {}
        #: The last store seen, and itself if it keeps shared buckets.
        self._checked: tuple[Store | None, RateLimitStore | None] = (None, None)

    def address(self, websocket: WebSocket) -> str:
        return client_address(websocket, self._config().JWT_WS_TRUSTED_PROXIES)

    async def admit(self, address: str) -> None:
        """Take a handshake token for ``address``; RateLimitedError when there is none."""
        config = self._config()
        rate = config.JWT_WS_RATE_LIMIT
        if rate is not None:
            await self._take("addr:" + address, rate, config.JWT_WS_RATE_BURST, address, "")

    async def admit_subject(self, sub: str, address: str) -> None:
        """Take a handshake token for the verified subject ``sub``."""
        config = self._config()
        rate = config.JWT_WS_SUBJECT_RATE_LIMIT
        if rate is not None:
            burst = config.JWT_WS_SUBJECT_RATE_BURST
            await self._take("sub:" + sub, rate, burst, address, " of one subject")

    async def failed(self, address: str, reason: str) -> None:
        """A handshake from ``address`` failed authentication: charge the extra cost."""
        config = self._config()
        rate, cost = config.JWT_WS_RATE_LIMIT, config.JWT_WS_FAILURE_COST
        if rate is None or not cost or reason not in _PENALIZED:
            return
        key, burst = "addr:" + address, config.JWT_WS_RATE_BURST
        self.buckets.penalize(key, rate, burst, cost)
        if self._shared() is not None:
            with self._failing_open():
                shared = await self._opened()
                await shared.add_penalty(key, rate, burst, cost)

    @contextlib.contextmanager
    def hold(self, address: str) -> Iterator[None]:
        """Count a socket held open before it authenticated (first-message transport)."""
        config = self._config()
        per_address, total = config.JWT_WS_MAX_PENDING_PER_ADDRESS, config.JWT_WS_MAX_PENDING
        held = self._pending.get(address, 0)
        if (per_address is not None and held >= per_address) or (
            total is not None and self._pending_total >= total
        ):
            self._refuse(address, config.JWT_WS_AUTH_MESSAGE_TIMEOUT, "unauthenticated sockets")
        self._pending[address] = held + 1
        self._pending_total += 1
        try:
            yield
        finally:
            self._pending_total -= 1
            left = self._pending[address] - 1
            if left:
                self._pending[address] = left
            else:
                del self._pending[address]

    async def _take(self, key: str, rate: float, burst: int, address: str, whose: str) -> None:
        wait = self.buckets.take(key, rate, burst)
        if not wait and self._shared() is not None:
            with self._failing_open():
                wait = await (await self._opened()).take_token(key, rate, burst)
        if wait:
            left = max(0.0, wait - await self._hold_back())
            self._refuse(address, left, f"handshakes{whose}")

    async def _hold_back(self) -> float:
        """Answer a refusal late (a tarpit): a client that floods as fast as it is
        answered is slowed to its concurrency per ``JWT_WS_REFUSAL_DELAY`` instead of
        taking the server's every turn. Returns the seconds waited."""
        config = self._config()
        # The whole delay, even when the wait is shorter: a flooder's bucket refills
        # between its attempts, and a short hold would let it back in at once.
        delay = config.JWT_WS_REFUSAL_DELAY
        if delay <= 0 or self._delayed >= config.JWT_WS_MAX_DELAYED:
            return 0.0  # at the cap, refusing at once costs less than a socket more
        self._delayed += 1
        try:
            await asyncio.sleep(delay)
        finally:
            self._delayed -= 1
        return delay

    def _shared(self) -> RateLimitStore | None:
        """The store if it keeps shared buckets and sharing is on (no I/O: a memory
        store costs nothing here)."""
        if not self._config().JWT_WS_RATE_LIMIT_SHARED:
            return None
        store = self._current_store()
        if store is not self._checked[0]:  # a Protocol isinstance costs microseconds
            candidate: object = store  # a Store may also be a RateLimitStore
            shared = candidate if isinstance(candidate, RateLimitStore) else None
            self._checked = (store, shared)
        return self._checked[1]

    async def _opened(self) -> RateLimitStore:
        """The shared store, opened (and subscribed) on first use."""
        store = await self._store()
        if store is self._checked[0] and self._checked[1] is not None:
            return self._checked[1]
        raise RuntimeError("the store was replaced while it was being opened")

    @contextlib.contextmanager
    def _failing_open(self) -> Iterator[None]:
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - fail open: an outage must not lock everyone out
            self._log_once(
                "store",
                "rate-limit store %s unavailable (%s); counting in this process only",
                redact_url(self._config().JWT_STORE_URL),
                type(exc).__name__,
            )

    def _refuse(self, address: str, wait: float, what: str) -> None:
        self._log_once(
            address,
            "too many %s from %s; refusing for %.1f s (not logged again for %g s)",
            what,
            address,
            wait,
            self._config().JWT_WS_ADMISSION_LOG_INTERVAL,
        )
        raise RateLimitedError(f"Too many {what}; retry later", retry_after=wait)

    def _log_once(self, key: str, message: str, *args: object) -> None:
        now = time.monotonic()
        interval = self._config().JWT_WS_ADMISSION_LOG_INTERVAL
        last = self._logged.get(key)
        if last is not None and now - last < interval:
            return
        if len(self._logged) >= _MAX_ENTRIES:
            self._logged = {k: t for k, t in self._logged.items() if now - t < interval}
            if len(self._logged) >= _MAX_ENTRIES:
                return  # a flood from that many addresses: the first lines said it
        self._logged[key] = now
        logger.warning(message, *args)
