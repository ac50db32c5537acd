"""Token buckets shared through the SQLite and Redis stores, for handshake rate limiting."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pytest_redis.executor import RedisExecutor
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from authx.stores import RateLimitStore
from authx.stores.redis import RedisStore
from authx.stores.sqlite import SQLiteStore

from .conftest import Backend, url_of

#: Float rounding only: a wait is never longer than the bucket's arithmetic allows.
EPSILON = 1e-6


def open_buckets(backend: Backend) -> RateLimitStore:
    store = backend.open()
    assert isinstance(store, RateLimitStore)
    return store


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def test_a_fresh_bucket_admits_a_burst_then_says_how_long_to_wait(
    shared_backend: Backend,
) -> None:
    # rate=5: a token every 200 ms, so a slow machine does not refill one between takes.
    buckets, rate, burst = open_buckets(shared_backend), 5.0, 3.0

    assert [await buckets.take_token("peer", rate, burst) for _ in range(3)] == [0.0] * 3
    wait = await buckets.take_token("peer", rate, burst)
    assert 0 < wait <= 1 / rate + EPSILON

    await asyncio.sleep(wait + 0.02)
    assert await buckets.take_token("peer", rate, burst) == 0.0
    assert await buckets.take_token("peer", rate, burst) > 0


async def test_a_penalty_lengthens_the_wait_down_to_a_floor(shared_backend: Backend) -> None:
    buckets, rate, burst = open_buckets(shared_backend), 5.0, 3.0
    await buckets.add_penalty("fresh", rate, burst, cost=1)
    # A penalty on an unknown key starts from a full bucket.
    assert [await buckets.take_token("fresh", rate, burst) for _ in range(2)] == [0.0, 0.0]
    assert await buckets.take_token("fresh", rate, burst) > 0

    for _ in range(3):
        await buckets.take_token("peer", rate, burst)
    await buckets.add_penalty("peer", rate, burst, cost=2)
    # About -2 tokens: three to regain before the next one is admitted.
    assert await buckets.take_token("peer", rate, burst) > 2 / rate

    await buckets.add_penalty("peer", rate, burst, cost=1_000)
    wait = await buckets.take_token("peer", rate, burst)
    assert 2 / rate < wait <= (burst + 1) / rate + EPSILON


async def test_instances_share_buckets_and_keys_are_independent(shared_backend: Backend) -> None:
    first, second = open_buckets(shared_backend), open_buckets(shared_backend)
    rate, burst = 0.5, 2.0

    assert await first.take_token("shared", rate, burst) == 0.0
    assert await second.take_token("shared", rate, burst) == 0.0
    assert await first.take_token("shared", rate, burst) > 0
    assert await second.take_token("shared", rate, burst) > 0
    assert await second.take_token("other", rate, burst) == 0.0

    await first.add_penalty("penalised", rate, burst, cost=2)
    assert await second.take_token("penalised", rate, burst) > 0


@pytest.mark.parametrize(
    "key",
    ["sub:alice:admin", "2001:db8::1", "::ffff:127.0.0.1", "[fe80::1%eth0]:443", "ü * ?\n"],
)
async def test_keys_may_hold_any_characters(shared_backend: Backend, key: str) -> None:
    buckets = open_buckets(shared_backend)

    assert await buckets.take_token(key, 0.5, 1) == 0.0
    assert await buckets.take_token(key, 0.5, 1) > 0
    # A key that is a prefix of another, or differs only after a colon, is another bucket.
    assert await buckets.take_token(key[:-1], 0.5, 1) == 0.0
    assert await buckets.take_token(f"{key}:", 0.5, 1) == 0.0


@pytest.mark.parametrize("instances", [1, 2])
async def test_concurrent_takes_admit_exactly_the_burst(
    shared_backend: Backend, instances: int
) -> None:
    stores = [open_buckets(shared_backend) for _ in range(instances)]

    waits = await asyncio.gather(
        *(stores[n % instances].take_token("crowd", 0.01, 10) for n in range(50))
    )

    assert sum(wait == 0.0 for wait in waits) == 10
    assert all(wait > 0 for wait in waits if wait != 0.0)


async def test_redis_bucket_is_one_expiring_hash(redis_url: str, raw: Redis) -> None:
    prefix = f"rate-{uuid.uuid4().hex[:12]}"
    store = RedisStore(redis_url, prefix=prefix)
    key = "2001:db8::1"
    try:
        await store.take_token(key, 20, 3)
        bucket = await raw.hgetall(f"{prefix}:rate:{key}")
        assert float(bucket["tokens"]) == pytest.approx(2.0)
        assert set(bucket) == {"tokens", "at"}
        # Full again in 50 ms, plus the margin.
        assert 0 < await raw.pttl(f"{prefix}:rate:{key}") <= 150

        await store.add_penalty(key, 20, 3, cost=1_000)
        assert float(await raw.hget(f"{prefix}:rate:{key}", "tokens")) == -3.0
        assert 150 < await raw.pttl(f"{prefix}:rate:{key}") <= 400

        deadline = time.monotonic() + 5
        while await raw.exists(f"{prefix}:rate:{key}") and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not await raw.exists(f"{prefix}:rate:{key}")
        # Forgotten means full.
        assert [await store.take_token(key, 0.01, 3) for _ in range(3)] == [0.0] * 3
        assert await store.take_token(key, 0.01, 3) > 0
    finally:
        await store.close()


async def test_sqlite_purge_forgets_full_buckets(tmp_path: Path) -> None:
    path = tmp_path / "authx.db"
    store = SQLiteStore(f"sqlite:///{path}")
    try:
        await store.take_token("refills-soon", 20, 3)  # full again in 50 ms
        await store.add_penalty("stays", 0.01, 3, cost=1)  # full again in 100 s
        await asyncio.sleep(0.1)

        assert await store.purge() == 1
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT key, tokens FROM authx_rate_buckets").fetchall()
        assert rows == [("stays", pytest.approx(2.0))]
        assert await store.take_token("refills-soon", 20, 3) == 0.0
    finally:
        await store.close()


async def test_redis_outage_fails_fast(fault_redis: RedisExecutor) -> None:
    store = RedisStore(url_of(fault_redis))
    try:
        assert await store.take_token("peer", 1, 5) == 0.0
        fault_redis.stop()

        for call in (store.take_token("peer", 1, 5), store.add_penalty("peer", 1, 5, 1)):
            started = time.monotonic()
            with pytest.raises(RedisConnectionError):
                await call
            assert time.monotonic() - started < 2.0

        fault_redis.start()
        assert await store.take_token("after-outage", 1, 5) == 0.0
    finally:
        await store.close()


async def test_unreachable_redis_fails_fast() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = RedisStore(f"redis://127.0.0.1:{port}/0")
    try:
        started = time.monotonic()
        with pytest.raises(RedisConnectionError):
            await store.take_token("peer", 1, 5)
        assert time.monotonic() - started < 2.0
    finally:
        await store.close()


async def test_locked_sqlite_file_fails_fast_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "authx.db"
    store = SQLiteStore(f"sqlite:///{path}", busy_timeout=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        assert await store.take_token("peer", 0.01, 5) == 0.0
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock

        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await store.take_token("peer", 0.01, 5)
        assert time.monotonic() - started < 2.0

        other.execute("COMMIT")
        # The refused call changed nothing: 4 tokens, less the penalty of 3.
        await store.add_penalty("peer", 0.01, 5, cost=3)
        assert await store.take_token("peer", 0.01, 5) == 0.0
        assert await store.take_token("peer", 0.01, 5) > 0
    finally:
        other.close()
        await store.close()
