"""The Redis store: key layout and TTLs, an optional dependency, and surviving a Redis outage."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest
from pytest_redis.executor import RedisExecutor
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from authx.stores import RevocationEvent
from authx.stores.redis import RedisStore

from .conftest import ROOT, url_of
from .test_contract import Inbox


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


def test_importing_authx_does_not_need_redis() -> None:
    script = (
        "import sys\n"
        "sys.modules['redis'] = None  # any import of redis now fails\n"
        "import authx, authx.stores\n"
        "from authx.stores import store_from_url\n"
        "store_from_url('memory://')\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=60)


async def test_keys_expire_with_the_revocation(redis_url: str, raw: Redis) -> None:
    store = RedisStore(f"{redis_url}?prefix=layout")
    before = time.time()
    try:
        await store.revoke_token("jti-1", before + 100)
        await store.revoke_subject("alice", before, before + 50)
        await store.put_ticket("t-1", {"sub": "alice"}, ttl=10)

        assert await raw.get("layout:revoked:jti:jti-1") == "1"
        assert 99_000 < await raw.pttl("layout:revoked:jti:jti-1") <= 100_000
        assert float(await raw.get("layout:revoked:sub:alice")) == before
        assert 49_000 < await raw.pttl("layout:revoked:sub:alice") <= 50_000
        assert 9_000 < await raw.pttl("layout:ticket:t-1") <= 10_000
    finally:
        await store.close()


async def test_a_burst_larger_than_the_pool_waits_instead_of_failing(redis_url: str) -> None:
    # Found by bench/load.py: past the pool's size, redis-py's default pool raised
    # MaxConnectionsError at once, and valid tokens got 503 while Redis was healthy.
    store = RedisStore(f"{redis_url}?prefix=burst&max_connections=2")
    try:
        await store.revoke_token("burst-jti", time.time() + 60)
        answers = await asyncio.gather(
            *(
                store.is_revoked("burst-jti" if n % 2 else f"other-{n}", None, None)
                for n in range(200)
            )
        )
        assert answers == [n % 2 == 1 for n in range(200)]
    finally:
        await store.close()


async def test_an_already_expired_revocation_writes_nothing(redis_url: str, raw: Redis) -> None:
    store = RedisStore(redis_url, prefix="expired")
    try:
        await store.revoke_token("old", time.time() - 1)
        assert await raw.exists("expired:revoked:jti:old") == 0
    finally:
        await store.close()


async def test_events_go_over_the_prefixed_channel(redis_url: str, raw: Redis) -> None:
    store = RedisStore(f"{redis_url}?prefix=chan")
    inbox = Inbox()
    try:
        await store.subscribe(inbox)
        await raw.publish("chan:revocations", '{"kind": "token", "value": "from-elsewhere"}')
        await raw.publish("chan:revocations", "not json")
        await raw.publish("other:revocations", '{"kind": "token", "value": "not-ours"}')
        await store.publish(RevocationEvent("token", "ours"))

        assert [e.value for e in await inbox.wait_for(2)] == ["from-elsewhere", "ours"]
    finally:
        await store.close()


async def test_redis_outage_fails_fast_and_recovers(fault_redis: RedisExecutor) -> None:
    url = url_of(fault_redis)
    store, publisher = RedisStore(url), RedisStore(url)
    inbox = Inbox()
    try:
        await store.subscribe(inbox)
        await publisher.publish(RevocationEvent("token", "before-outage"))
        await inbox.wait_for(1)
        listener = store._events.task
        assert listener is not None

        fault_redis.stop()
        started = time.monotonic()
        with pytest.raises(RedisConnectionError):
            await store.is_revoked("jti", "alice", time.time())
        assert time.monotonic() - started < 2.0
        await asyncio.sleep(1.0)  # the listener meets the outage and keeps retrying
        assert not listener.done()

        fault_redis.start()
        await store.revoke_token("after-outage", time.time() + 60)
        assert await store.is_revoked("after-outage", None, None)
        # Same store objects: the listener subscribes again by itself.
        after = RevocationEvent("token", "after-outage")
        deadline = time.monotonic() + 5
        while after not in inbox.events and time.monotonic() < deadline:
            await publisher.publish(after)
            await asyncio.sleep(0.2)
        # Subscribed again, the store first says events may have been missed.
        assert inbox.events[1] == RevocationEvent("resync", "")
        assert after in inbox.events[2:]
        assert store._events.task is listener
    finally:
        await store.close()
        await publisher.close()


async def test_unresponsive_redis_times_out_instead_of_hanging(
    fault_redis: RedisExecutor,
) -> None:
    store = RedisStore(url_of(fault_redis))
    await store.subscribe(Inbox())
    assert fault_redis.process is not None
    pid = fault_redis.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises((RedisTimeoutError, RedisConnectionError)):
            await store.is_revoked("jti", "alice", time.time())
        assert time.monotonic() - started < 2.0
    finally:
        os.kill(pid, signal.SIGCONT)
    assert await store.is_revoked("jti", "alice", time.time()) is False
    await store.close()


async def test_subscribing_while_redis_is_down_does_not_stall(fault_redis: RedisExecutor) -> None:
    fault_redis.stop()
    store, publisher = RedisStore(url_of(fault_redis)), RedisStore(url_of(fault_redis))
    inbox = Inbox()
    try:
        started = time.monotonic()
        await store.subscribe(inbox)
        assert time.monotonic() - started < 0.5

        fault_redis.start()
        late = RevocationEvent("token", "late")
        deadline = time.monotonic() + 5
        while late not in inbox.events and time.monotonic() < deadline:
            await publisher.publish(late)
            await asyncio.sleep(0.1)
        # The first subscription came after an outage: a resync is asked for first.
        assert inbox.events[0] == RevocationEvent("resync", "")
        assert late in inbox.events
    finally:
        await store.close()
        await publisher.close()
