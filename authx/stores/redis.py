"""The distributed store: Redis shared by every process and host, events over pub/sub.

``redis://[user:password@]host:port/db`` or ``rediss://...``. Besides the options
``redis-py`` reads from the query string (``socket_timeout=...`` and so on), the
URL may carry ``prefix`` (default ``authx``), the start of every key and of the
event channel, so several apps can share one Redis.

Key layout, each key expiring with the entry (TTL = remaining life):

- ``{prefix}:revoked:jti:{jti}``: ``1``, a revoked token;
- ``{prefix}:revoked:sub:{sub}``: the latest ``before`` timestamp of the subject;
- ``{prefix}:ticket:{ticket}``: the ticket's JSON data, taken with ``GETDEL``;
- ``{prefix}:rate:{key}``: a rate-limit bucket, a hash of ``tokens`` and ``at`` (Redis
  server time in microseconds), expiring when the bucket would be full again;
- channel ``{prefix}:revocations``: JSON revocation events.

Timeouts are short (0.5 s by default) so that a dead Redis fails a request
quickly, to be answered by the fail-closed or fail-open policy, instead of
hanging it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from authx.stores._base import Entry, RevocationEvent, Subscriber
from authx.stores._delivery import EventListener

__all__ = ["RedisStore"]

logger = logging.getLogger("authx")

#: Seconds to connect and to wait for an answer before a command fails.
DEFAULT_TIMEOUT = 0.5
#: Connections per process, and seconds a command may wait for a free one.
DEFAULT_MAX_CONNECTIONS, POOL_WAIT = 64, 2.0
#: Seconds between the listener's reconnection attempts: first, then doubled up to the last.
_BACKOFF_START, _BACKOFF_CAP = 0.05, 0.5

# Keep the larger value and the later expiry, so a revocation never shortens another.
_REVOKE_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if (not current) or tonumber(current) < tonumber(ARGV[1]) then
    redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
"""

#: Milliseconds a bucket's key outlives the moment it is full again.
_BUCKET_TTL_MARGIN_MS = 100

# Refill bucket KEYS[1], then take a token (ARGV[3] == 'take') or remove ARGV[4] tokens;
# return the seconds to wait (0 when admitted). The clock is Redis's own, so that hosts
# with skewed clocks agree; TIME before a write is allowed since scripts replicate their
# effects (Redis 5 and later). Numbers are returned as strings: Redis truncates Lua floats.
_BUCKET_SCRIPT = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = burst
if state[1] and state[2] then
    local elapsed = math.max(0, now - tonumber(state[2])) / 1000000
    tokens = math.min(burst, tonumber(state[1]) + elapsed * rate)
end
local wait = 0
if ARGV[3] == 'take' then
    if tokens >= 1 then
        tokens = tokens - 1
    else
        wait = (1 - tokens) / rate
    end
else
    tokens = math.max(-burst, tokens - tonumber(ARGV[4]))
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
    'at', string.format('%.17g', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + tonumber(ARGV[5]))
return string.format('%.17g', wait)
"""


class RedisStore:
    """Revocations, tickets and rate-limit buckets as expiring Redis keys; events on pub/sub."""

    def __init__(self, url: str, *, prefix: str | None = None) -> None:
        self.url = url
        client_url, url_prefix = _split_prefix(url)
        self.prefix = prefix or url_prefix or "authx"
        self.channel = f"{self.prefix}:revocations"
        # A blocking pool: under a burst of handshakes, a command waits (up to
        # POOL_WAIT seconds) for a free connection instead of failing at once, which
        # would refuse valid tokens with 503 while Redis is healthy. ``max_connections``
        # in the URL's query string overrides the default size.
        pool = BlockingConnectionPool.from_url(
            client_url,
            max_connections=DEFAULT_MAX_CONNECTIONS,
            timeout=POOL_WAIT,
            socket_connect_timeout=DEFAULT_TIMEOUT,
            socket_timeout=DEFAULT_TIMEOUT,
            health_check_interval=10,
            # Retry a lost connection once (a pooled one dies when Redis restarts), but not a
            # timeout: retries nest (connect, then command) and would multiply the wait.
            retry=Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
        )
        self._redis: Redis = Redis.from_pool(pool)  # closing the client closes the pool
        self._revoke = self._redis.register_script(_REVOKE_SCRIPT)
        self._bucket = self._redis.register_script(_BUCKET_SCRIPT)
        self._events = EventListener()

    async def revoke_token(self, jti: str, expires_at: float) -> None:
        await self._keep_until(self._key("revoked:jti", jti), "1", expires_at)

    async def revoke_subject(self, sub: str, before: float, expires_at: float) -> None:
        await self._keep_until(self._key("revoked:sub", sub), repr(float(before)), expires_at)

    async def is_revoked(self, jti: str | None, sub: str | None, iat: float | None) -> bool:
        if jti is None and sub is None:
            return False
        # One round trip for both questions; a missing argument asks for a key never written.
        token, subject = await self._redis.mget(
            self._key("revoked:jti", jti or ""), self._key("revoked:sub", sub or "")
        )
        if jti is not None and token is not None:
            return True
        if sub is not None and subject is not None:
            return iat is None or iat <= float(subject)
        return False

    async def revoked_among(self, entries: Sequence[Entry]) -> list[bool]:
        """``is_revoked`` of each entry, in one round trip (one MGET)."""
        if not entries:
            return []
        keys: list[str] = []
        for jti, sub, _ in entries:
            keys += [self._key("revoked:jti", jti or ""), self._key("revoked:sub", sub or "")]
        values = await self._redis.mget(keys)
        found: list[bool] = []
        for i, (jti, sub, iat) in enumerate(entries):
            token, subject = values[2 * i], values[2 * i + 1]
            if jti is not None and token is not None:
                found.append(True)
            elif sub is not None and subject is not None:
                found.append(iat is None or iat <= float(subject))
            else:
                found.append(False)
        return found

    async def put_ticket(self, ticket: str, data: dict[str, Any], ttl: float) -> None:
        milliseconds = math.ceil(ttl * 1000)
        if milliseconds > 0:
            await self._redis.set(self._key("ticket", ticket), json.dumps(data), px=milliseconds)

    async def take_ticket(self, ticket: str) -> dict[str, Any] | None:
        raw = await self._redis.getdel(self._key("ticket", ticket))
        if raw is None:
            return None
        data: dict[str, Any] = json.loads(raw)
        return data

    async def take_token(self, key: str, rate: float, burst: float) -> float:
        """Take a token from the bucket ``key`` shared by every client of this Redis."""
        return await self._spend(key, rate, burst, "take", 0.0)

    async def add_penalty(self, key: str, rate: float, burst: float, cost: float) -> None:
        """Remove ``cost`` tokens from the bucket ``key``, down to ``-burst`` at most."""
        await self._spend(key, rate, burst, "penalty", cost)

    async def publish(self, event: RevocationEvent) -> None:
        """Send ``event`` on the channel; every subscribed process, this one included, hears it."""
        await self._redis.publish(self.channel, json.dumps(event.to_dict()))

    async def subscribe(self, subscriber: Subscriber) -> None:
        """Call ``subscriber`` for every event on the channel; wait briefly to be subscribed."""
        # Events published before Redis confirms SUBSCRIBE would be lost. When Redis is
        # unreachable, carry on: the listener subscribes once it is back.
        await self._events.subscribe(
            subscriber, self._listen, "authx-redis-events", ready_timeout=4 * DEFAULT_TIMEOUT
        )

    async def purge(self) -> int:
        """Nothing to do: Redis drops every key itself when its TTL runs out; always 0."""
        return 0

    async def close(self) -> None:
        if await self._events.close():
            await self._redis.aclose()

    async def _keep_until(self, key: str, value: str, expires_at: float) -> None:
        milliseconds = math.ceil((expires_at - time.time()) * 1000)
        if milliseconds > 0:
            await self._revoke(keys=[key], args=[value, milliseconds])

    async def _spend(self, key: str, rate: float, burst: float, action: str, cost: float) -> float:
        """Run the bucket script once: refill, then take a token or remove ``cost`` tokens."""
        args: list[str | float] = [rate, burst, action, cost, _BUCKET_TTL_MARGIN_MS]
        wait = await self._bucket(keys=[self._key("rate", key)], args=args)
        return float(wait)

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}:{kind}:{name}"

    async def _listen(self, ready: asyncio.Event) -> None:
        """Deliver events; when Redis goes away, reconnect with backoff and subscribe again."""
        backoff = _BACKOFF_START
        outage = False
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        # Redis confirmed: from now on no event on the channel is missed.
                        ready.set()
                        if outage:
                            logger.info("authx: subscribed again to %s", self.channel)
                            # Events published during the gap were not heard here.
                            await self._events.deliver(RevocationEvent("resync", ""))
                        outage, backoff = False, _BACKOFF_START
                    elif message["type"] == "message":
                        await self._deliver(message["data"])
            except Exception as exc:  # noqa: BLE001 - the listener must outlive any outage
                ready.set()  # subscribe() must not wait out an outage
                if not outage:
                    logger.warning(
                        "authx: lost the Redis event subscription on %s (%s); reconnecting",
                        self.channel,
                        type(exc).__name__,
                    )
                outage = True
            finally:
                await _close_quietly(pubsub)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_CAP)

    async def _deliver(self, data: bytes) -> None:
        try:
            event = RevocationEvent.from_dict(json.loads(data))
        except (ValueError, TypeError, AttributeError):
            logger.warning("authx: ignoring a malformed revocation event on %s", self.channel)
            return
        await self._events.deliver(event)


def _split_prefix(url: str) -> tuple[str, str | None]:
    """``url`` without the ``prefix`` query option (unknown to redis-py), and that option."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for name, value in query if name == "prefix"]
    kept = urlencode([(name, value) for name, value in query if name != "prefix"])
    return urlunsplit(parts._replace(query=kept)), (prefixes[-1] if prefixes else None)


async def _close_quietly(pubsub: PubSub) -> None:
    # The connection may already be gone; there is nothing left to release then.
    with contextlib.suppress(Exception):
        await pubsub.aclose()  # type: ignore[no-untyped-call]
