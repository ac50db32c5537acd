"""A client process of bench/live_connections.py: holds many idle WebSockets, cheaply.

    python bench/_scale_client.py SOURCE_ADDRESS

A minimal RFC 6455 client on asyncio protocols (no per-connection task, no
library state): it sends the upgrade request with a bearer token, waits for the
server's greeting, answers pings, and notes when a close frame arrives
(``time.monotonic()``, the same clock in every process of the machine) before
answering it. The benchmark drives it with one JSON command per line on stdin
and reads one JSON answer per line on stdout. Every connection is opened from
``SOURCE_ADDRESS`` (an address in 127.0.0.0/8), so that several client
processes do not share one range of ephemeral ports.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import resource
import secrets
import sys
import time
from datetime import UTC, datetime
from typing import Any

from authx import AuthX, AuthXConfig

_MASK = b"\x00\x00\x00\x00"  # clients must mask; the key's value does not matter here


def _frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (payloads under 126 bytes)."""
    return bytes((0x80 | opcode, 0x80 | len(payload))) + _MASK + payload


class RawConnection(asyncio.Protocol):
    """One idle WebSocket: open once greeted, closed when the server's close frame came."""

    def __init__(self, request: bytes, greeted: asyncio.Future[RawConnection]) -> None:
        self.request = request
        self.greeted = greeted
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.upgraded = False
        self.close_at: float | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.lost_at: float | None = None
        self.pongs = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            head, found, rest = self.buffer.partition(b"\r\n\r\n")
            if not found:
                return
            status = head.split(b" ", 2)[1:2]
            if status != [b"101"]:
                self._fail(f"HTTP {status[0].decode() if status else '?'}")
                return
            self.upgraded, self.buffer = True, rest
        while len(self.buffer) >= 2:
            first, second = self.buffer[0], self.buffer[1]
            size, start = second & 0x7F, 2
            if size == 126:
                if len(self.buffer) < 4:
                    return
                size, start = int.from_bytes(self.buffer[2:4]), 4
            elif size == 127:
                if len(self.buffer) < 10:
                    return
                size, start = int.from_bytes(self.buffer[2:10]), 10
            if len(self.buffer) < start + size:
                return
            payload = self.buffer[start : start + size]
            self.buffer = self.buffer[start + size :]
            self._on_frame(first & 0x0F, payload)

    def _on_frame(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None
        if opcode in (0x1, 0x2):
            if not self.greeted.done():
                self.greeted.set_result(self)
        elif opcode == 0x8:
            if self.close_at is None:
                self.close_at = time.monotonic()
                self.close_code = int.from_bytes(payload[:2]) if len(payload) >= 2 else 1005
                self.close_reason = payload[2:].decode(errors="replace")
                self.transport.write(_frame(0x8, payload[:2]))
            if not self.greeted.done():
                self._fail(f"closed {self.close_code} {self.close_reason}")
        elif opcode == 0x9:
            self.transport.write(_frame(0xA, payload))
        elif opcode == 0xA:
            self.pongs += 1

    def _fail(self, why: str) -> None:
        if not self.greeted.done():
            self.greeted.set_exception(ConnectionError(why))
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost_at = time.monotonic()
        if not self.greeted.done():
            self.greeted.set_exception(ConnectionError(f"lost before greeting: {exc}"))

    @property
    def is_open(self) -> bool:
        return self.lost_at is None and self.close_at is None


def upgrade_request(host: str, port: int, path: str, token: str) -> bytes:
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()


class Worker:
    """Groups of connections, opened and inspected on the benchmark's command."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.groups: dict[str, list[RawConnection]] = collections.defaultdict(list)

    async def open_one(self, host: str, port: int, path: str, token: str) -> RawConnection:
        loop = asyncio.get_running_loop()
        greeted: asyncio.Future[RawConnection] = loop.create_future()
        request = upgrade_request(host, port, path, token)
        transport, _ = await loop.create_connection(
            lambda: RawConnection(request, greeted), host, port, local_addr=(self.source, 0)
        )
        try:
            return await asyncio.wait_for(greeted, 20)
        except BaseException:
            transport.abort()
            raise

    async def open(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Open ``count`` connections of subjects ``prefix``+i, ``concurrency`` at a time."""
        auth: AuthX[Any] = AuthX(config=AuthXConfig(JWT_SECRET_KEY=cmd["secret"]))
        expiry = datetime.fromtimestamp(cmd["exp"], UTC) if cmd.get("exp") else None
        first, count = cmd.get("first", 0), cmd["count"]
        subjects = [f"{cmd['prefix']}{first + i}" for i in range(count)]
        if cmd.get("same_subject"):
            subjects = [cmd["prefix"]] * count
        tokens = [auth.create_access_token(uid=sub, expiry=expiry) for sub in subjects]
        group = self.groups[cmd["group"]]
        failures: collections.Counter[str] = collections.Counter()
        started = time.monotonic()
        deadline = started + cmd.get("seconds", 120)
        step = cmd.get("concurrency", 100)
        for start in range(0, count, step):
            if time.monotonic() > deadline:
                failures["time cap reached"] += count - start
                break
            results = await asyncio.gather(
                *(
                    self.open_one(cmd["host"], cmd["port"], cmd["path"], token)
                    for token in tokens[start : start + step]
                ),
                return_exceptions=True,
            )
            failed = 0
            for result in results:
                if isinstance(result, RawConnection):
                    group.append(result)
                elif isinstance(result, Exception):
                    failed += 1
                    failures[f"{type(result).__name__}: {result}"[:100]] += 1
                else:
                    raise result
            if failed * 2 > len(results):
                break
        return {
            "opened": len(group),
            "seconds": time.monotonic() - started,
            "failures": dict(failures.most_common(3)),
        }

    def report(self, cmd: dict[str, Any]) -> dict[str, Any]:
        group = self.groups.get(cmd["group"], [])
        codes = collections.Counter(
            f"{c.close_code} {c.close_reason}" for c in group if c.close_code is not None
        )
        return {
            "count": len(group),
            "open": sum(c.is_open for c in group),
            "frames": [c.close_at for c in group if c.close_at is not None],
            "lost": [c.lost_at for c in group if c.lost_at is not None],
            "codes": dict(codes),
        }

    async def ping(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Ping ``sample`` open connections of a group; how many answered within 5 s."""
        sample = [c for c in self.groups.get(cmd["group"], []) if c.is_open][: cmd["sample"]]
        before = [c.pongs for c in sample]
        for c in sample:
            assert c.transport is not None
            c.transport.write(_frame(0x9, b"bench"))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            answered = sum(c.pongs > b for c, b in zip(sample, before, strict=True))
            if answered == len(sample):
                break
            await asyncio.sleep(0.05)
        return {"sampled": len(sample), "answered": answered if sample else 0}

    async def drop(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Reset the connections of a group (or of every group), keeping ``keep`` of them."""
        names = [cmd["group"]] if cmd.get("group") else list(self.groups)
        dropped = 0
        for name in names:
            group = self.groups.get(name, [])
            keep = cmd.get("keep", 0)
            for c in group[keep:]:
                if c.transport is not None and c.lost_at is None:
                    c.transport.abort()
                dropped += 1
            if keep:
                del group[keep:]
            else:
                self.groups.pop(name, None)
        await asyncio.sleep(0.2)  # let connection_lost run
        return {"dropped": dropped}


async def serve(source: str) -> None:
    worker = Worker(source)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        cmd = json.loads(line)
        name = cmd["cmd"]
        if name == "exit":
            break
        if name == "open":
            answer = await worker.open(cmd)
        elif name == "report":
            answer = worker.report(cmd)
        elif name == "ping":
            answer = await worker.ping(cmd)
        elif name == "drop":
            answer = await worker.drop(cmd)
        else:
            answer = {"error": f"unknown command {name!r}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def main() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(serve(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"))


if __name__ == "__main__":
    main()
