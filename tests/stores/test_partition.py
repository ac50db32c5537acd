"""No lost revocation: a worker cut off from its store re-checks its connections when
it gets the store back, and closes the ones revoked meanwhile.

Redis: worker B reaches Redis through a TCP proxy in the test that can drop every
connection and refuse new ones (a partition), then heal. SQLite: the file is made
unreadable for the partitioned worker's poller by locking it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.request
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import websockets

from authx import AuthX, AuthXConfig
from tests.conftest import SECRET, LiveServer
from tests.websocket.client import closed_after

APP = "tests.apps.live_app:app"
issuer = AuthX(AuthXConfig(JWT_SECRET_KEY=SECRET))


class Proxy:
    """A TCP proxy on 127.0.0.1 that can drop every connection and refuse new ones."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.partitioned = False
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.partitioned:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._pipes.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            self._pipes.discard(writer)
            writer.close()

    def partition(self) -> None:
        self.partitioned = True
        for writer in list(self._pipes):
            writer.transport.abort()
        self._pipes.clear()

    def heal(self) -> None:
        self.partitioned = False

    async def stop(self) -> None:
        self.partition()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def _post(server: LiveServer, path: str) -> int:
    request = urllib.request.Request(server.http + path, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


async def test_revocation_during_a_partition_closes_connections_when_it_heals(
    live_server_factory: Any, redis_url: str
) -> None:
    redis_port = urlsplit(redis_url).port
    assert redis_port is not None
    proxy = Proxy(redis_port)
    await proxy.start()
    proxied = redis_url.replace(f":{redis_port}", f":{proxy.port}")
    try:
        common = {"JWT_SECRET_KEY": SECRET, "CASE": "partition"}
        a = live_server_factory(APP, JWT_STORE_URL=redis_url, NODE="a", **common)
        b = live_server_factory(APP, JWT_STORE_URL=proxied, NODE="b", **common)
        victim = issuer.create_access_token("victim", expiry=timedelta(minutes=5))
        bystander = issuer.create_access_token("bystander", expiry=timedelta(minutes=5))
        async with (
            websockets.connect(f"{b.ws}/ws?token={victim}") as ws,
            websockets.connect(f"{b.ws}/ws?token={bystander}") as other,
        ):
            await ws.recv()
            await other.recv()
            watcher = asyncio.ensure_future(closed_after(ws, timeout=30))

            proxy.partition()
            await asyncio.sleep(0.5)  # B has lost its subscription
            assert await asyncio.to_thread(_post, a, "/revoke/subject?sub=victim") == 200
            await asyncio.sleep(5)  # the partition lasts: B heard nothing
            assert not watcher.done(), "B cannot have heard of the revocation"

            healed = time.monotonic()
            proxy.heal()
            code, reason, _ = await watcher
            delay = time.monotonic() - healed
            assert (code, reason) == (4004, "token_revoked")
            assert delay < 1.0, f"closed {delay:.2f} s after healing"
            # The bystander's connection was re-checked too, and stays open.
            await other.send("still here?")
            assert "still here?" in await asyncio.wait_for(other.recv(), 5)
        print(f"closed {delay:.3f} s after the partition healed")  # noqa: T201
        log = b.new_log()
        assert "lost the Redis event subscription" in log  # the WARNING, once
        assert "ERROR" not in log
    finally:
        await proxy.stop()
        with contextlib.suppress(Exception):
            b.stop()
