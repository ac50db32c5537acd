"""The distributed store: Redis shared by every process and host, events over pub/sub.

One server (``redis://``, ``rediss://`` for TLS), a master watched by Sentinel
(``redis+sentinel://``) or a Redis Cluster (``redis+cluster://``): the URL grammar and
every option is in :mod:`authx.stores._redis_urls`. Among the options, ``prefix``
(default ``authx``) starts every key and the event channel, so several apps can share
one Redis; ``wait_replicas`` and ``wait_timeout`` make a revocation wait until replicas
hold it (:mod:`authx.stores._redis_replication`).

Key layout, each key expiring with the entry (TTL = remaining life):

- ``{prefix}:revoked:jti:{jti}``: ``1``, a revoked token;
- ``{prefix}:revoked:sub:{sub}``: the latest ``before`` timestamp of the subject;
- ``{prefix}:ticket:{ticket}``: the ticket's JSON data, taken with ``GETDEL``;
- ``{prefix}:rate:{key}``: a rate-limit bucket, a hash of ``tokens`` and ``at`` (Redis
  server time in microseconds), expiring when the bucket would be full again;
- channel ``{prefix}:revocations``: JSON revocation events.

Every command and script touches one key, except the ``MGET`` of ``is_revoked``, which a
cluster splits by slot: no key needs a hash tag. (A ``prefix`` holding one, such as
``{authx}``, would put every key on one cluster node.)
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

from redis.asyncio.client import PubSub

from authx.stores._base import Entry, RevocationEvent, Subscriber
from authx.stores._delivery import EventListener
from authx.stores._redis_deployments import DEFAULT_TIMEOUT, MASTER_CHECK_INTERVAL, connect
from authx.stores._redis_replication import ReplicaAcknowledgement, ReplicationError
from authx.stores._redis_urls import parse_redis_url

__all__ = ["RedisStore", "ReplicationError"]

logger = logging.getLogger("authx")

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
        parsed = parse_redis_url(url)
        self.prefix = prefix or parsed.prefix or "authx"
        self.channel = f"{self.prefix}:revocations"
        self._deployment = connect(parsed)
        self._redis = self._deployment.client
        self._acknowledged = ReplicaAcknowledgement(parsed.wait_replicas, parsed.wait_timeout)
        self._bucket = self._redis.register_script(_BUCKET_SCRIPT)
        self._events = EventListener()

    async def revoke_token(self, jti: str, expires_at: float) -> None:
        await self._keep_until(self._key("revoked:jti", jti), "1", expires_at)

    async def revoke_subject(self, sub: str, before: float, expires_at: float) -> None:
        await self._keep_until(self._key("revoked:sub", sub), repr(float(before)), expires_at)

    async def is_revoked(self, jti: str | None, sub: str | None, iat: float | None) -> bool:
        if jti is None and sub is None:
            return False
        return (await self.revoked_among([(jti, sub, iat)]))[0]

    async def revoked_among(self, entries: Sequence[Entry]) -> list[bool]:
        """``is_revoked`` of each entry, in one round trip (one MGET, one per node in a cluster)."""
        if not entries:
            return []
        keys: list[str] = []
        for jti, sub, _ in entries:  # a missing jti or sub asks for a key never written
            keys += [self._key("revoked:jti", jti or ""), self._key("revoked:sub", sub or "")]
        values = await self._deployment.mget(keys)
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
            await self._deployment.aclose()

    async def _keep_until(self, key: str, value: str, expires_at: float) -> None:
        """Write a revocation; return once the replicas ``wait_replicas`` asks for hold it."""
        milliseconds = math.ceil((expires_at - time.time()) * 1000)
        if milliseconds > 0:
            await self._acknowledged.write(
                self._deployment, _REVOKE_SCRIPT, key, [value, milliseconds]
            )

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
            pubsub: PubSub | None = None
            try:
                pubsub = await self._deployment.pubsub()
                await pubsub.subscribe(self.channel)
                check_at = time.monotonic() + MASTER_CHECK_INTERVAL
                while True:
                    message = await pubsub.get_message(timeout=MASTER_CHECK_INTERVAL)
                    if time.monotonic() >= check_at:
                        check_at = time.monotonic() + MASTER_CHECK_INTERVAL
                        # A master demoted by a failover keeps its subscribers, but
                        # events published on the new one do not reach it.
                        await self._deployment.check_master(pubsub)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        # Redis confirmed: from now on no event on the channel is missed.
                        ready.set()
                        if outage:
                            logger.info("subscribed again to %s", self.channel)
                            # Events published during the gap were not heard here.
                            await self._events.deliver(RevocationEvent("resync", ""))
                        outage, backoff = False, _BACKOFF_START
                    elif message["type"] == "message":
                        await self._deliver(message["data"])
            except Exception as exc:  # noqa: BLE001 - the listener must outlive any outage
                ready.set()  # subscribe() must not wait out an outage
                if not outage:
                    logger.warning(
                        "lost the Redis event subscription on %s (%s); reconnecting",
                        self.channel,
                        type(exc).__name__,
                    )
                outage = True
            finally:
                if pubsub is not None:
                    await _close_quietly(pubsub)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_CAP)

    async def _deliver(self, data: bytes) -> None:
        try:
            event = RevocationEvent.from_dict(json.loads(data))
        except (ValueError, TypeError, AttributeError):
            logger.warning("ignoring a malformed revocation event on %s", self.channel)
            return
        await self._events.deliver(event)


async def _close_quietly(pubsub: PubSub) -> None:
    # The connection may already be gone; there is nothing left to release then.
    with contextlib.suppress(Exception):
        connection: Any = pubsub.connection  # redis-py types it as always None
        if connection is not None:
            # Wait until it is closed (over TLS, once the goodbyes are exchanged):
            # aclose() does not wait, and a socket left closing outlived its loop.
            await connection.disconnect()
        await pubsub.aclose()  # type: ignore[no-untyped-call]
