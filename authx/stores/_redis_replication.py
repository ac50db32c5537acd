"""Revocations that replicas hold before they are reported as done, so a failover keeps them.

Redis replicates asynchronously: a master that dies right after a write may take it to
its grave, and the replica promoted in its place never saw it. So the store writes a
revocation and then sends ``WAIT n timeout`` on the same connection (``WAIT`` counts the
replicas that hold this connection's writes); fewer than ``n`` in time is an error, and
the revocation is reported as failed (503), never as done.

How many replicas (the URL's ``wait_replicas``): ``auto`` asks the master
(``INFO replication``, at most every few seconds) and waits for one when it has replicas
connected, for none otherwise (a single Redis); a number always waits for that many.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from authx.stores._redis_deployments import Deployment

__all__ = ["ReplicaAcknowledgement", "ReplicationError"]

logger = logging.getLogger("authx")

#: Seconds a master's count of connected replicas is trusted (``wait_replicas=auto``).
REPLICAS_TTL = 5.0
_CONNECTED_REPLICAS = re.compile(rb"^connected_slaves:(\d+)", re.MULTILINE)


class ReplicationError(RedisError):
    """Fewer replicas than required acknowledged a write in time: a failover could lose it.

    The write did reach the master; repeating it is harmless.
    """

    def __init__(self, acknowledged: int, required: int, timeout: float) -> None:
        super().__init__(
            f"{acknowledged} of {required} replica(s) acknowledged the revocation "
            f"within {timeout:g} s"
        )
        self.acknowledged, self.required, self.timeout = acknowledged, required, timeout


class ReplicaAcknowledgement:
    """Runs a revocation script on the key's master, then waits for its replicas."""

    def __init__(self, replicas: int | None, timeout: float) -> None:
        self.replicas = replicas  # None: auto
        self.timeout = timeout
        #: Per master (``host:port``): connected replicas, and when that was read.
        self._connected: dict[str, tuple[int, float]] = {}
        self._warned = False

    async def write(
        self, deployment: Deployment, script: str, key: str, args: Sequence[str | int]
    ) -> None:
        """Run ``script`` on ``key``; return once enough replicas hold the result."""
        for attempt in range(2):
            try:
                async with deployment.connection(key) as connection:
                    await self._write(connection, script, key, args)
                return
            except RedisConnectionError:
                # A pooled connection may be stale (a restart, a failover killed it):
                # once more on a new one; the script may run twice, which is harmless.
                if attempt:
                    raise

    async def _write(
        self, connection: AbstractConnection, script: str, key: str, args: Sequence[str | int]
    ) -> None:
        required = self.replicas
        if required is None:
            required = min(1, await self._replicas_of(connection, fresh=False))
        await connection.send_command("EVAL", script, 1, key, *args)
        await connection.read_response()
        if required == 0:
            return
        await connection.send_command("WAIT", required, round(self.timeout * 1000))
        # Longer than the socket's own timeout: WAIT itself may take ``self.timeout``.
        socket_timeout = connection.socket_timeout or 0.0
        acknowledged = await connection.read_response(timeout=self.timeout + socket_timeout)
        if acknowledged is None:  # the read timed out and left the answer unread
            await connection.disconnect()
            raise RedisTimeoutError("no answer to WAIT in time")
        if int(acknowledged) >= required:
            return
        # The count may be stale (a replica left, a failover made a master without any):
        # with ``auto``, no replica connected now means none to wait for.
        if self.replicas is None and await self._replicas_of(connection, fresh=True) == 0:
            return
        raise ReplicationError(int(acknowledged), required, self.timeout)

    async def _replicas_of(self, connection: AbstractConnection, *, fresh: bool) -> int:
        """How many replicas the master behind ``connection`` has connected, cached briefly."""
        master = f"{connection.host}:{connection.port}"  # type: ignore[attr-defined]
        known = self._connected.get(master)
        now = time.monotonic()
        if known is not None and not fresh and now - known[1] < REPLICAS_TTL:
            return known[0]
        try:
            await connection.send_command("INFO", "replication")
            info = await connection.read_response()
        except NoPermissionError:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "the Redis user may not run INFO, so revocations do not wait for "
                    "replicas; allow it (+info) or set wait_replicas=N in JWT_STORE_URL"
                )
            info = b""
        found = _CONNECTED_REPLICAS.search(info if isinstance(info, bytes) else b"")
        count = int(found.group(1)) if found else 0
        self._connected[master] = (count, now)
        return count
