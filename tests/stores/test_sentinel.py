"""Redis watched by Sentinel: the URL, replicas acknowledging revocations, and failovers.

The whole store contract runs on Sentinel too (the ``redis-sentinel`` kind of
``conftest.py``). Here: revocations wait for a replica (``WAIT``), so one acknowledged
before the master dies is still there after the failover; and the event listener follows
the new master, says ``resync`` and hears what is published after.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import uuid
from typing import Any

import pytest

from authx import AuthXConfig
from authx._revocation import Revocations, redact_url
from authx.exceptions import BadConfigurationError, StoreUnavailableError
from authx.stores import RevocationEvent, store_from_url
from authx.stores._redis_urls import parse_redis_url
from authx.stores.redis import RedisStore, ReplicationError
from tests.conftest import SECRET

from .conftest import SERVICE, SentinelGroup
from .test_contract import Inbox


def test_the_sentinel_url() -> None:
    url = (
        "redis+sentinel://app:s%40cret@10.0.0.1:26380,10.0.0.2,[::1]:26381/mymaster/2"
        "?sentinel_password=other&socket_timeout=1.5&prefix=p&wait_replicas=2&wait_timeout=0.25"
    )

    parsed = parse_redis_url(url)

    assert parsed.deployment == "sentinel"
    assert parsed.nodes == (("10.0.0.1", 26380), ("10.0.0.2", 26379), ("::1", 26381))
    assert parsed.service == "mymaster"
    assert (parsed.prefix, parsed.wait_replicas, parsed.wait_timeout) == ("p", 2, 0.25)
    assert parsed.connection == {
        "username": "app",
        "password": "s@cret",
        "db": 2,
        "socket_timeout": 1.5,
    }
    # The sentinels get the timeouts and their own password, never the master's.
    assert parsed.sentinel == {"socket_timeout": 1.5, "password": "other"}
    assert "s%40cret" not in redact_url(url)


def test_tls_reaches_the_master_and_the_sentinels() -> None:
    parsed = parse_redis_url("rediss+sentinel://h/svc?ssl_ca_certs=/ca.pem&ssl_cert_reqs=required")

    assert parsed.connection["ssl"] is True
    assert parsed.sentinel == {"ssl": True, "ssl_ca_certs": "/ca.pem", "ssl_cert_reqs": "required"}


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("redis+sentinel://h1,h2", "master's name"),
        ("redis+sentinel://h1/svc/0/extra", "master's name"),
        ("redis+sentinel://h1/svc/zero", "database must be a number"),
        ("redis+sentinel://h1:port/svc", "port must be a number"),
        ("redis+sentinel://h1/svc?wait_replicas=some", "wait_replicas"),
        ("redis+sentinel://h1/svc?wait_timeout=0", "wait_timeout"),
        ("redis+sentinel://h1/svc?wait_timeout=soon", "wait_timeout"),
        ("redis://h1/0?sentinel_password=x", "sentinel_"),
        ("redis://h1,h2/0", "one server"),
        ("redis+sentinel://h1/svc?socket_timeout=slow", "socket_timeout"),
    ],
)
def test_a_malformed_url_is_refused_at_start_up(url: str, complaint: str) -> None:
    with pytest.raises(BadConfigurationError, match=complaint):
        parse_redis_url(url)


def test_store_from_url_accepts_every_redis_deployment() -> None:
    for url in ("redis+sentinel://h/svc", "rediss+sentinel://h/svc", "redis+cluster://h:7000"):
        store = store_from_url(url)
        assert isinstance(store, RedisStore), url


async def test_a_single_redis_waits_for_no_replica_unless_asked(redis_url: str) -> None:
    prefix = f"wait-{uuid.uuid4().hex[:8]}"
    # WAIT would hold a revocation for wait_timeout (5 s): a quick one did not wait.
    automatic = RedisStore(f"{redis_url}?prefix={prefix}&wait_timeout=5")
    insisting = RedisStore(f"{redis_url}?prefix={prefix}&wait_replicas=1&wait_timeout=0.2")
    try:
        started = time.monotonic()
        await automatic.revoke_token("jti-1", time.time() + 60)
        assert time.monotonic() - started < 2.0  # no replica connected: no WAIT

        started = time.monotonic()
        with pytest.raises(ReplicationError) as unacknowledged:
            await insisting.revoke_subject("alice", time.time(), time.time() + 60)
        assert 0.2 <= time.monotonic() - started < 2.0
        assert (unacknowledged.value.acknowledged, unacknowledged.value.required) == (0, 1)
        # Reported as failed, yet written on the master: repeating it is harmless.
        assert await automatic.is_revoked(None, "alice", time.time() - 1)
    finally:
        await automatic.close()
        await insisting.close()


async def test_a_revocation_returns_once_the_replica_holds_it(
    redis_sentinel: SentinelGroup,
) -> None:
    prefix = f"acked-{uuid.uuid4().hex[:8]}"
    store = RedisStore(redis_sentinel.url(prefix=prefix))
    try:
        for n in range(20):
            await store.revoke_token(f"jti-{n}", time.time() + 60)
            await store.revoke_subject(f"sub-{n}", time.time(), time.time() + 60)
            with redis_sentinel.replica.admin() as replica:
                # Read on the replica the moment revoke returns: it is there already.
                assert replica.get(f"{prefix}:revoked:jti:jti-{n}") == b"1"
                assert replica.exists(f"{prefix}:revoked:sub:sub-{n}")
    finally:
        await store.close()


async def test_a_revocation_no_replica_acknowledges_is_reported_as_failed(
    redis_sentinel: SentinelGroup,
) -> None:
    url = redis_sentinel.url(prefix=f"unacked-{uuid.uuid4().hex[:8]}", wait_timeout="0.3")
    store = RedisStore(url)
    revocations = Revocations(lambda: AuthXConfig(JWT_SECRET_KEY=SECRET, JWT_STORE_URL=url))
    try:
        await store.revoke_token("warm-up", time.time() + 60)  # the replica count is known
        redis_sentinel.replica.pause()
        try:
            started = time.monotonic()
            with pytest.raises(ReplicationError):
                await store.revoke_token("jti-1", time.time() + 60)
            assert 0.3 <= time.monotonic() - started < 3.0
            with pytest.raises(StoreUnavailableError) as refused:
                await revocations.revoke_subject("alice")
            assert refused.value.status_code == 503
            # Reads do not need the replica.
            assert await store.is_revoked("warm-up", None, None)
        finally:
            redis_sentinel.replica.resume()
        await wait_for_replica(redis_sentinel)
        await store.revoke_token("jti-2", time.time() + 60)
    finally:
        await store.close()
        current = revocations.current_store()
        if current is not None:
            await current.close()


async def wait_for_replica(group: SentinelGroup, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with group.replica.admin() as replica:
            if replica.info("replication").get("master_link_status") == "up":
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the replica did not come back")


async def until(call: Any, timeout: float, what: str) -> float:
    """Retry ``call()`` until it succeeds (and is not False); return when it did."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):  # the master may still be changing
            result = call()
            if inspect.isawaitable(result):
                result = await result
            if result is not False:
                return time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen in {timeout} s")
        await asyncio.sleep(0.05)


async def wait_for_event(
    inbox: Inbox, store: RedisStore, event: RevocationEvent, timeout: float = 10.0
) -> None:
    """Publish ``event`` until ``inbox`` hears it (the listener may still be reconnecting)."""
    deadline = time.monotonic() + timeout
    while event not in inbox.events:
        if time.monotonic() > deadline:
            raise AssertionError(f"{event} never arrived; heard {inbox.events}")
        with contextlib.suppress(Exception):  # the master may still be changing
            await store.publish(event)
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("how", ["master crash", "SENTINEL FAILOVER"])
async def test_failover_keeps_revocations_and_the_listener_follows(
    failover_sentinel: SentinelGroup, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="authx")
    group = failover_sentinel
    store, publisher = RedisStore(group.url(prefix="fo")), RedisStore(group.url(prefix="fo"))
    inbox = Inbox()
    old_master, issued = group.master_port(), time.time() - 10
    try:
        await store.subscribe(inbox)
        # Subscribed like every process's store: its listener follows the master too.
        await publisher.subscribe(Inbox())
        await store.revoke_token("before", time.time() + 60)
        await store.revoke_subject("alice", time.time(), time.time() + 60)
        await wait_for_event(inbox, publisher, RevocationEvent("token", "before"))

        started = time.monotonic()
        if how == "master crash":
            group.master.kill()
        else:
            with group.sentinels[0].admin() as sentinel:
                sentinel.execute_command("SENTINEL FAILOVER", SERVICE)
        switched = await until(lambda: group.master_port() != old_master, 20, "a failover")
        revoked_again = await until(
            lambda: store.revoke_token("after", time.time() + 60), 10, "a revocation"
        )

        assert await store.is_revoked("before", None, None)
        assert await store.is_revoked(None, "alice", issued)
        assert await store.is_revoked("after", None, None)
        # Events published while the listener changed masters were missed: it says so.
        resynced = await until(lambda: RevocationEvent("resync", "") in inbox.events, 10, "resync")
        await wait_for_event(inbox, publisher, RevocationEvent("token", "after"))
        heard = time.monotonic()
        kinds = [e.kind for e in inbox.events]
        assert kinds == ["token", "resync", "token"]
        assert "subscribed again" in caplog.text
        assert heard - started < 10.0
        logging.getLogger("tests").info(
            "%s: new master after %.2f s, revocations accepted after %.2f s, "
            "listener resynced after %.2f s, events heard after %.2f s; heard %s",
            how,
            switched - started,
            revoked_again - started,
            resynced - started,
            heard - started,
            kinds,
        )
    finally:
        await store.close()
        await publisher.close()
