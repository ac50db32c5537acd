"""Reaching the Redis store's data: one server, the master Sentinel names, or a Cluster.

Each deployment gives the store a command client and what differs between them: a
multi-key read, a pub/sub connection for events (and a check that it still hears them
all), and a connection of its own to the master holding a key (for the writes that
replicas must acknowledge).

Timeouts are short (0.5 s by default) so that a dead Redis fails a request quickly, to
be answered by the fail-closed or fail-open policy, instead of hanging it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import AbstractConnection, Connection, RedisSSLContext, SSLConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MovedError, RedisError

from authx.exceptions import BadConfigurationError
from authx.stores._redis_urls import RedisURL

__all__ = [
    "DEFAULT_TIMEOUT",
    "MASTER_CHECK_INTERVAL",
    "Deployment",
    "MasterChangedError",
    "connect",
]

#: Seconds to connect and to wait for an answer before a command fails.
DEFAULT_TIMEOUT = 0.5
#: Connections per process, and seconds a command may wait for a free one.
DEFAULT_MAX_CONNECTIONS, POOL_WAIT = 64, 2.0
#: Seconds between the event listener's checks that it listens to the master (Sentinel).
MASTER_CHECK_INTERVAL = 1.0


class MasterChangedError(RedisConnectionError):
    """Sentinel names another master than the one the event subscription is on."""


class Deployment(Protocol):
    """What the store needs from a deployment, beyond the command client."""

    client: Redis | RedisCluster

    async def mget(self, keys: Sequence[str]) -> list[Any]:
        """The values of ``keys``, in order (None for a missing key)."""

    async def pubsub(self) -> PubSub:
        """A new pub/sub connection, on a node that hears every event."""

    async def check_master(self, pubsub: PubSub) -> None:
        """Raise MasterChangedError when ``pubsub`` no longer hears every event."""

    def connection(self, key: str) -> contextlib.AbstractAsyncContextManager[AbstractConnection]:
        """A connection of its own to the master holding ``key``, closed if a use fails."""

    async def aclose(self) -> None:
        """Close every connection."""


def connect(url: RedisURL) -> Deployment:
    """The deployment ``url`` names; no connection is opened yet."""
    if url.deployment == "cluster":
        return _Cluster(url)
    return _Pooled(url)


def _retry_once() -> Retry:
    # Retry a lost connection once (a pooled one dies when Redis restarts or a failover
    # kills its clients), but not a timeout: retries nest (connect, then command) and
    # would multiply the wait.
    return Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,))


def _defaults() -> dict[str, Any]:
    return {
        "socket_connect_timeout": DEFAULT_TIMEOUT,
        "socket_timeout": DEFAULT_TIMEOUT,
        "health_check_interval": 10,
        "retry": _retry_once(),
    }


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """The master's connections, found through Sentinel; a burst waits for a free one."""


class _SharedContext:
    """One pool's SSL context, built by its first connection."""

    def __init__(self) -> None:
        self.context: RedisSSLContext | None = None


class _TLSConnection(SSLConnection):
    """A TLS connection that uses its pool's SSL context.

    redis-py builds a context per connection, and each build reads the system's CA bundle
    (some 20 ms of blocked event loop): a burst of new connections stalled for seconds.
    """

    def __init__(self, *, shared: _SharedContext, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if shared.context is None:
            shared.context = self.ssl_context
        self.ssl_context = shared.context


class _SentinelTLSConnection(SentinelManagedConnection, _TLSConnection):
    """A TLS connection to the master Sentinel names, with its pool's SSL context."""


def _connection_class(
    options: dict[str, Any], plain: type[Connection], tls: type[Connection]
) -> dict[str, Any]:
    """``options`` with the connection class: ``tls`` (and a shared context) for TLS."""
    options = dict(options)
    if options.pop("ssl", False):
        return {**options, "connection_class": tls, "shared": _SharedContext()}
    return {**options, "connection_class": plain}


class _Pooled:
    """One server, or the master Sentinel names: one ``Redis`` client over a blocking pool.

    A blocking pool: under a burst of handshakes, a command waits (up to POOL_WAIT
    seconds) for a free connection instead of failing at once, which would refuse valid
    tokens with 503 while Redis is healthy. ``max_connections`` in the URL overrides the
    default size.
    """

    def __init__(self, url: RedisURL) -> None:
        options: dict[str, Any] = {"max_connections": DEFAULT_MAX_CONNECTIONS, "timeout": POOL_WAIT}
        options.update(_defaults(), **url.connection)
        self._sentinel: Sentinel | None = None
        self._sentinel_pool: _BlockingSentinelPool | None = None
        if url.deployment == "server":
            host, port = url.nodes[0]
            options = _connection_class(options, Connection, _TLSConnection)
            pool = BlockingConnectionPool(host=host, port=port, **options)
            self._redis = Redis.from_pool(pool)  # closing the client closes the pool
            self.client: Redis | RedisCluster = self._redis
            return
        # Sentinels answer "who is the master?": each is asked in turn, quickly, once.
        sentinel_options = {**_defaults(), "retry": Retry(NoBackoff(), retries=0)}
        self._sentinel = Sentinel(  # type: ignore[no-untyped-call]
            url.nodes, sentinel_kwargs={**sentinel_options, **url.sentinel}
        )
        # redis-py asks the sentinels again whenever it connects, so after a failover
        # (whose clients the sentinels kill) the retry reaches the new master.
        options = _connection_class(options, SentinelManagedConnection, _SentinelTLSConnection)
        self._redis = self._sentinel.master_for(
            url.service, connection_pool_class=_BlockingSentinelPool, **options
        )
        self._sentinel_pool = self._redis.connection_pool  # type: ignore[assignment]
        self.client = self._redis

    async def mget(self, keys: Sequence[str]) -> list[Any]:
        return await self._redis.mget(keys)

    async def pubsub(self) -> PubSub:
        return self._redis.pubsub()

    async def check_master(self, pubsub: PubSub) -> None:
        """Ask Sentinel who the master is; idle connections to a former one are closed.

        Sentinel does not disconnect the clients of a master it demotes: reads there
        would go on (and lag), and its subscribers would miss what the new master
        publishes until it replicates from it.
        """
        connection: Any = pubsub.connection  # redis-py types it as always None
        if self._sentinel_pool is None or connection is None:
            return
        listening = (connection.host, connection.port)
        try:
            master = await self._sentinel_pool.get_master_address()  # type: ignore[no-untyped-call]
        except RedisError:
            return  # no answer is no news: an outage of the master shows by itself
        if listening != tuple(master):
            raise MasterChangedError(f"the master is now {master[0]}:{master[1]}")

    @contextlib.asynccontextmanager
    async def connection(self, key: str) -> AsyncIterator[AbstractConnection]:
        pool = self._redis.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            yield connection
        except BaseException:
            await connection.disconnect()
            raise
        finally:
            await pool.release(connection)

    async def aclose(self) -> None:
        await self._redis.aclose()
        if self._sentinel is not None:
            await self._sentinel.aclose()


class _TopologyFirst(RedisCluster):
    """A cluster client that learns the topology before any command goes out.

    redis-py 8.1 learns it during the first commands, and commands sent meanwhile may
    use connections its refresh then closes ("Connection lost", or an AttributeError):
    in our tests a third of a first burst of 25 commands failed so.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._learning = asyncio.Lock()
        self._learned = False

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if not self._learned:
            async with self._learning:
                if not self._learned:
                    await self.initialize()
                    self._learned = True
        return await super().execute_command(*args, **kwargs)


class _Cluster:
    """A Redis Cluster: keys spread over the masters by slot; events heard on any node.

    ``PUBLISH`` in a cluster reaches the subscribers of every node, so the listener may
    subscribe anywhere: each new subscription goes to the next known node, so one that
    died is left behind. (Sharded pub/sub would pin the channel to one shard and follow
    its slot; the event traffic is far too small to need it.)
    """

    def __init__(self, url: RedisURL) -> None:
        if not hasattr(RedisCluster, "pubsub"):  # pragma: no cover - redis-py before 8.0
            raise BadConfigurationError(
                "JWT_STORE_URL: redis+cluster:// needs redis-py 8.0 or later (its asyncio "
                "cluster client has no pub/sub before): pip install -U 'redis>=8'"
            )
        options = {**_defaults(), **url.connection}
        self._cluster = _TopologyFirst(
            startup_nodes=[ClusterNode(host, port) for host, port in url.nodes], **options
        )
        self.client: Redis | RedisCluster = self._cluster
        self._turn = 0

    async def mget(self, keys: Sequence[str]) -> list[Any]:
        # A token's key and its subject's key lie in different slots (a subject's key is
        # shared by all its tokens, so no hash tag can put them together): one MGET per
        # slot, sent to each master in parallel.
        return await self._cluster.mget_nonatomic(keys)

    async def check_master(self, pubsub: PubSub) -> None:
        """Nothing to check: every node hears every event."""

    async def pubsub(self) -> PubSub:
        cluster = self._cluster
        await cluster.initialize()
        nodes = cluster.get_nodes()
        node = nodes[self._turn % len(nodes)]
        self._turn += 1
        return cluster.pubsub(node=node)

    @contextlib.asynccontextmanager
    async def connection(self, key: str) -> AsyncIterator[AbstractConnection]:
        cluster = self._cluster
        await cluster.initialize()
        node = cluster.get_node_from_key(key)
        if node is None:  # pragma: no cover - initialize() raises when a slot is uncovered
            raise RedisConnectionError(f"no cluster node holds {key!r}")
        connection = node.acquire_connection()
        try:
            yield connection
        except (MovedError, RedisConnectionError):
            await connection.disconnect()
            # The slot moved (resharding) or its node died (failover): a command through
            # the cluster client learns the new map, so that a retry finds the right node.
            with contextlib.suppress(RedisError):
                await cluster.exists(key)
            raise RedisConnectionError(f"the node holding {key!r} changed") from None
        except BaseException:
            await connection.disconnect()
            raise
        finally:
            node.release(connection)

    async def aclose(self) -> None:
        await self._cluster.aclose()
