"""Redis Cluster: the URL, keys spread over the masters, events heard on every node.

The whole store contract runs on the cluster too (the ``redis-cluster`` kind of
``conftest.py``), the Lua bucket script included (it touches one key).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid

import pytest
import redis

from authx.exceptions import BadConfigurationError
from authx.stores import RevocationEvent
from authx.stores._redis_urls import parse_redis_url
from authx.stores.redis import RedisStore, ReplicationError

from .conftest import ROOT, RedisClusterGroup, RedisProcess
from .test_contract import Inbox


def test_the_cluster_url() -> None:
    parsed = parse_redis_url(
        "rediss+cluster://app:pw@10.0.0.1:7000,10.0.0.2/?ssl_ca_certs=/ca.pem&prefix=p"
    )

    assert parsed.deployment == "cluster"
    assert parsed.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 6379))
    assert parsed.prefix == "p"
    assert parsed.connection == {
        "username": "app",
        "password": "pw",
        "ssl": True,
        "ssl_ca_certs": "/ca.pem",
    }


@pytest.mark.parametrize("url", ["redis+cluster://h:7000/1", "redis+cluster://h:7000/?db=2"])
def test_a_cluster_has_database_0_only(url: str) -> None:
    with pytest.raises(BadConfigurationError, match="database 0"):
        parse_redis_url(url)


def owner(group: RedisClusterGroup, key: str) -> RedisProcess:
    """The master that holds ``key``."""
    with group.masters[0].admin(decode_responses=True) as client:
        slot = int(client.execute_command("CLUSTER KEYSLOT", key))
        for start, end, master, *_ in client.execute_command("CLUSTER SLOTS"):
            if start <= slot <= end:
                return next(m for m in group.masters if m.port == int(master[1]))
    raise AssertionError(f"no master holds slot {slot}")


async def test_keys_spread_over_the_masters(redis_cluster: RedisClusterGroup) -> None:
    prefix = f"spread-{uuid.uuid4().hex[:8]}"
    store = RedisStore(redis_cluster.url(prefix=prefix))
    now = time.time()
    try:
        for n in range(30):
            await store.revoke_token(f"jti-{n}", now + 60)
            await store.revoke_subject(f"sub-{n}", now, now + 60)
        entries = [(f"jti-{n}", f"sub-{n + 15}", now - 1) for n in range(30)]
        entries += [("never", "nobody", now), (None, "sub-3", now + 1), (None, None, None)]

        # One MGET per slot, all answered: the keys of one question lie on several nodes.
        assert await store.revoked_among(entries) == [True] * 30 + [False] * 3
        assert await store.is_revoked("unknown", "sub-29", now - 1)
    finally:
        await store.close()
    holders = set()
    for master in redis_cluster.masters:
        with master.admin() as client:
            if client.keys(f"{prefix}:*"):
                holders.add(master.port)
    assert len(holders) == 3


async def test_an_event_published_on_any_node_reaches_the_subscriber(
    redis_cluster: RedisClusterGroup,
) -> None:
    # Plain PUBLISH in a cluster goes to the subscribers of every node: the listener
    # may be on any one of them.
    prefix = f"nodes-{uuid.uuid4().hex[:8]}"
    store = RedisStore(redis_cluster.url(prefix=prefix))
    inbox = Inbox()
    try:
        await store.subscribe(inbox)
        for node in [*redis_cluster.masters, redis_cluster.replica]:
            with node.admin() as client:
                event = f'{{"kind": "token", "value": "via-{node.port}"}}'
                client.publish(f"{prefix}:revocations", event)
        heard = await inbox.wait_for(4)
        assert sorted(e.value for e in heard) == sorted(
            f"via-{n.port}" for n in [*redis_cluster.masters, redis_cluster.replica]
        )
    finally:
        await store.close()


LISTENER = """
import asyncio, sys
from authx.stores.redis import RedisStore

async def main():
    store = RedisStore(sys.argv[1])
    heard = asyncio.Event()

    async def subscriber(event):
        print(event.kind, event.value, flush=True)
        if event.value == "last":
            heard.set()

    await store.subscribe(subscriber)
    print("ready", flush=True)
    await asyncio.wait_for(heard.wait(), 20)
    await store.close()

asyncio.run(main())
"""


async def test_an_event_reaches_another_process(redis_cluster: RedisClusterGroup) -> None:
    url = redis_cluster.url(prefix=f"process-{uuid.uuid4().hex[:8]}")
    listener = subprocess.Popen(
        [sys.executable, "-c", LISTENER, url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    store = RedisStore(url)
    try:
        assert listener.stdout is not None
        ready = await asyncio.wait_for(asyncio.to_thread(listener.stdout.readline), 20)
        assert ready == "ready\n"
        await store.publish(RevocationEvent("subject", "alice", before=1.5))
        await store.publish(RevocationEvent("token", "last"))
        out, _ = await asyncio.wait_for(asyncio.to_thread(listener.communicate), 20)
        assert out.splitlines() == ["subject alice", "token last"]
        assert listener.returncode == 0
    finally:
        await store.close()
        if listener.poll() is None:
            listener.kill()
            listener.wait(5)


def keys_on(group: RedisClusterGroup, prefix: str, master: RedisProcess) -> str:
    """A token id whose revocation key lies on ``master``."""
    for n in range(1000):
        if owner(group, f"{prefix}:revoked:jti:jti-{n}").port == master.port:
            return f"jti-{n}"
    raise AssertionError("no key found for that master")


async def test_revocations_wait_for_the_replica_of_their_master(
    redis_cluster: RedisClusterGroup,
) -> None:
    # The first master has a replica, the others none (wait_replicas=auto).
    prefix = f"acked-{uuid.uuid4().hex[:8]}"
    store = RedisStore(redis_cluster.url(prefix=prefix, wait_timeout="2"))
    replicated = keys_on(redis_cluster, prefix, redis_cluster.masters[0])
    alone = keys_on(redis_cluster, prefix, redis_cluster.masters[1])
    try:
        await store.revoke_token(replicated, time.time() + 60)
        with redis_cluster.replica.admin() as replica:
            replica.execute_command("READONLY")
            assert replica.get(f"{prefix}:revoked:jti:{replicated}") == b"1"

        redis_cluster.replica.pause()
        try:
            started = time.monotonic()
            with pytest.raises(ReplicationError):
                await store.revoke_token(replicated, time.time() + 120)
            assert 2.0 <= time.monotonic() - started < 4.0
            # A master without replicas does not wait (WAIT would take 2 s).
            started = time.monotonic()
            await store.revoke_token(alone, time.time() + 60)
            assert time.monotonic() - started < 1.5
        finally:
            redis_cluster.replica.resume()
        assert await store.is_revoked(alone, None, None)
    finally:
        await store.close()
    with redis_cluster.replica.admin() as replica:
        deadline = time.monotonic() + 10
        while replica.info("replication")["master_link_status"] != "up":
            assert time.monotonic() < deadline, "the cluster replica did not come back"
            await asyncio.sleep(0.05)


def test_cluster_nodes_refuse_a_key_of_another_slot(redis_cluster: RedisClusterGroup) -> None:
    # Why the store splits its MGET by slot.
    with redis_cluster.masters[0].admin() as client, pytest.raises(redis.ResponseError):
        client.mget(["a", "b", "c", "d", "e", "f"])


def move_slot(group: RedisClusterGroup, slot: int, to: RedisProcess) -> None:
    """Give the empty ``slot`` to master ``to``, as resharding does."""
    with to.admin(decode_responses=True) as target:
        target_id = target.cluster("MYID")
    for master in group.masters:
        with master.admin() as client:
            client.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)


async def test_a_revocation_follows_a_slot_that_moved(redis_cluster: RedisClusterGroup) -> None:
    prefix = f"moved-{uuid.uuid4().hex[:8]}"
    store = RedisStore(redis_cluster.url(prefix=prefix))
    first, second = redis_cluster.masters[1], redis_cluster.masters[2]
    jti = keys_on(redis_cluster, prefix, first)
    key = f"{prefix}:revoked:jti:{jti}"
    with first.admin() as client:
        slot = int(client.execute_command("CLUSTER KEYSLOT", key))
        assert int(client.execute_command("CLUSTER COUNTKEYSINSLOT", slot)) == 0
    try:
        await store.revoke_token("learns-the-map", time.time() + 60)
        move_slot(redis_cluster, slot, second)

        # The store still thinks the slot is on the first master: MOVED, learn, retry.
        await store.revoke_token(jti, time.time() + 60)

        assert await store.is_revoked(jti, None, None)
        with second.admin() as client:
            assert client.get(key) == b"1"
    finally:
        await store.close()
        with second.admin() as client:
            client.delete(key)
        move_slot(redis_cluster, slot, first)
