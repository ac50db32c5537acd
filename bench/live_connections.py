"""Live connections: server memory per idle authenticated WebSocket, and revocation latency.

    .venv/bin/python bench/live_connections.py [--connections N] [--victims 1000]

Each mode gets its own uvicorn process (bench/_live_app.py on 127.0.0.1) holding N
idle connections opened from this process:

- ``session``: ``auth.WS_AUTH_REQUIRED`` with the live-session machinery (the default);
- ``no session``: the same endpoint with ``JWT_WS_ENFORCE_LIFETIME=false``;
- ``plain``: an endpoint without authentication, for reference.

Memory is the server's VmRSS after a gc and a pause, before and after opening the
connections. Then, on the ``session`` server with its N connections still open as
bystanders, ``--victims`` connections of subject "victim" are opened and an HTTP call
makes the server run ``auth.revoke_subject("victim")``; each victim records when its
close frame arrives. Last, ``--tracemalloc`` connections per mode are opened again under
tracemalloc, to count the server's Python allocations per connection and show where
the difference between the modes is allocated.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import resource
import secrets
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from authx import AuthX, AuthXConfig

# A benchmark opens thousands of handshakes from 127.0.0.1 on purpose: admission
# control runs (its buckets are part of the measured path) under limits it never reaches.
os.environ.setdefault("JWT_WS_RATE_LIMIT", "1000000000")
os.environ.setdefault("JWT_WS_SUBJECT_RATE_LIMIT", "1000000000")

ROOT = Path(__file__).resolve().parents[1]
BATCH = 200  # connections opened concurrently: no SYN flood on the listen backlog
FD_RESERVE = 64  # descriptors kept for /proc reads, HTTP calls and the server's pipe
SETTLE = 1.5  # seconds after a gc before reading VmRSS
TARGET_BYTES = 1024
TARGET_REVOCATION_MS = 200.0
_RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


def raise_fd_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to the hard limit; return the new limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_descriptors() -> int:
    """File descriptors this process may still open, keeping ``FD_RESERVE`` for itself."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(0, soft - len(os.listdir("/proc/self/fd")) - FD_RESERVE)


def rss(pid: int) -> int:
    """Resident set size of ``pid`` in bytes (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


# Server ----------------------------------------------------------------------


class Server:
    """uvicorn serving bench._live_app on 127.0.0.1, port 0; always terminated on exit."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = {**os.environ, **env}
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self.log: collections.deque[str] = collections.deque(maxlen=20)
        self._drain: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Server:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "uvicorn", "bench._live_app:app", "--host", "127.0.0.1", "--port", "0"),
            *("--log-level", "warning"),
            cwd=ROOT,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=raise_fd_limit,  # the server holds one descriptor per connection too
        )
        try:
            async with asyncio.timeout(30):
                while not self.port:
                    line = await self._readline()
                    if match := _RUNNING.search(line):
                        self.port = int(match.group(1))
        except BaseException:
            await self.__aexit__()
            raise
        self._drain = asyncio.create_task(self._drain_log())
        return self

    async def _readline(self) -> str:
        assert self.proc is not None
        assert self.proc.stderr is not None
        raw = await self.proc.stderr.readline()
        if not raw:
            raise RuntimeError("uvicorn exited before serving:\n" + "\n".join(self.log))
        line = raw.decode(errors="replace").rstrip()
        self.log.append(line)
        return line

    async def _drain_log(self) -> None:
        # Keep the pipe from filling up; the last lines help when something fails.
        while True:
            await self._readline()

    async def __aexit__(self, *_exc: object) -> None:
        if self._drain is not None:
            self._drain.cancel()
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    async def settled_rss(self, http: httpx.AsyncClient) -> int:
        (await http.post("/gc")).raise_for_status()
        await asyncio.sleep(SETTLE)
        return rss(self.pid)


# Clients ---------------------------------------------------------------------


class TimedConnection(ClientConnection):
    """A client connection that notes when the server's close frame arrives."""

    close_frame_at: float | None = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.close_frame_at is None and self.protocol.close_rcvd is not None:
            self.close_frame_at = time.perf_counter()


@dataclass
class Client:
    ws: TimedConnection
    reader: asyncio.Task[None] = field(init=False)
    closed_at: float | None = None  # when the connection was fully closed

    def __post_init__(self) -> None:
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        # Keep reading so pings, close frames and EOF are processed.
        try:
            while True:
                await self.ws.recv()
        except ConnectionClosed:
            self.closed_at = time.perf_counter()

    @property
    def close_code(self) -> int | None:
        frame = self.ws.protocol.close_rcvd
        return None if frame is None else frame.code

    @property
    def close_reason(self) -> str:
        frame = self.ws.protocol.close_rcvd
        return "" if frame is None else frame.reason


@dataclass
class Opened:
    clients: list[Client]
    failures: collections.Counter[str]
    seconds: float


async def open_one(url: str, token: str | None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    ws = await connect(
        url,
        additional_headers=headers,
        create_connection=TimedConnection,
        compression=None,  # zlib state would dwarf what is measured here
        proxy=None,
        ping_interval=None,
        open_timeout=20,
        close_timeout=5,
    )
    assert isinstance(ws, TimedConnection)
    try:
        # The greeting proves the endpoint ran and now sits in receive().
        await asyncio.wait_for(ws.recv(), 20)
    except BaseException:
        ws.transport.abort()
        raise
    return Client(ws)


async def open_many(url: str, tokens: Sequence[str | None], spare: int = 0) -> Opened:
    """Open one connection per token, ``BATCH`` at a time; stop when a batch mostly fails.

    ``spare`` file descriptors are left for connections opened later.
    """
    started = time.perf_counter()
    clients: list[Client] = []
    failures: collections.Counter[str] = collections.Counter()
    for start in range(0, len(tokens), BATCH):
        batch = tokens[start : start + min(BATCH, free_descriptors() - spare)]
        if not batch:
            failures["this process ran out of file descriptors (RLIMIT_NOFILE)"] += (
                len(tokens) - start
            )
            break
        results = await asyncio.gather(
            *(open_one(url, token) for token in batch), return_exceptions=True
        )
        failed = 0
        for result in results:
            if isinstance(result, Client):
                clients.append(result)
            elif isinstance(result, Exception):
                failed += 1
                failures[f"{type(result).__name__}: {result}"[:120]] += 1
            else:
                raise result
        if failed * 2 > len(batch):
            break
    return Opened(clients, failures, time.perf_counter() - started)


async def close_all(clients: Iterable[Client]) -> None:
    """Drop the connections at once (TCP reset) and wait for the readers to finish."""
    readers = []
    for client in clients:
        client.ws.transport.abort()
        readers.append(client.reader)
    if readers:
        await asyncio.wait(readers, timeout=20)


async def wait_for_stats(http: httpx.AsyncClient, connections: int, seconds: float = 10) -> int:
    """Poll /stats until it shows ``connections`` sessions (or time runs out); return the last."""
    deadline = time.perf_counter() + seconds
    while True:
        shown: int = (await http.get("/stats")).json()["connections"]
        if shown == connections or time.perf_counter() > deadline:
            return shown
        await asyncio.sleep(0.1)


def make_tokens(secret: str, subjects: Iterable[str]) -> list[str | None]:
    auth: AuthX[Any] = AuthX(config=AuthXConfig(JWT_SECRET_KEY=secret))
    return [auth.create_access_token(uid=sub) for sub in subjects]


# Measurements ----------------------------------------------------------------


@dataclass(frozen=True)
class Mode:
    name: str
    path: str
    enforce_lifetime: bool


SESSION = Mode("session", "/ws", True)
NO_SESSION = Mode("no session", "/ws", False)
PLAIN = Mode("plain", "/ws/plain", False)


@dataclass
class MemoryResult:
    mode: Mode
    requested: int
    opened: int
    open_seconds: float
    before: int
    after: int
    stats_connections: int
    failures: collections.Counter[str]
    traced: dict[str, Any] | None = None

    @property
    def per_connection(self) -> float:
        return (self.after - self.before) / self.opened if self.opened else float("nan")


@dataclass
class RevocationResult:
    victims: int
    bystanders: int
    request_ms: float
    close_frame_ms: list[float]
    fully_closed_ms: list[float]
    codes: collections.Counter[str]
    bystanders_open: int
    bystanders_pinged: tuple[int, int]
    stats_before: int
    stats_after: int
    failures: collections.Counter[str]


async def run_mode(
    mode: Mode,
    tokens: Sequence[str | None],
    secret: str,
    tracing: bool = False,
    victims: int = 0,
) -> tuple[MemoryResult, RevocationResult | None]:
    env = {"JWT_SECRET_KEY": secret, "JWT_WS_ENFORCE_LIFETIME": str(mode.enforce_lifetime)}
    if tracing:
        env["PYTHONTRACEMALLOC"] = "1"
    clients: list[Client] = []
    async with Server(env) as server, httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        url = f"ws://127.0.0.1:{server.port}{mode.path}"
        try:
            # Warm up: imports, caches and the revocation store are created on first use.
            warmup = await open_many(url, tokens[:50])
            await close_all(warmup.clients)
            await wait_for_stats(http, 0)
            if tracing:
                (await http.post("/tracemalloc/baseline")).raise_for_status()
            before = await server.settled_rss(http)
            opened = await open_many(url, tokens, spare=victims)
            clients = opened.clients
            after = await server.settled_rss(http)
            traced = (await http.get("/tracemalloc/diff")).json() if tracing else None
            stats = await wait_for_stats(http, len(clients) if mode.enforce_lifetime else 0)
            memory = MemoryResult(
                mode,
                len(tokens),
                len(clients),
                opened.seconds,
                before,
                after,
                stats,
                opened.failures,
                traced,
            )
            revocation = None
            if victims:
                revocation = await revoke_victims(http, url, secret, victims, clients)
            return memory, revocation
        finally:
            await close_all(clients)
            if mode.enforce_lifetime:
                left = await wait_for_stats(http, 0)
                if left:
                    print(f"!! {left} sessions still registered after all clients left")


async def revoke_victims(
    http: httpx.AsyncClient, url: str, secret: str, victims: int, clients: list[Client]
) -> RevocationResult:
    """Revoke ``victims`` new connections among ``clients``, which gains them (to close later)."""
    bystanders = list(clients)
    opened = await open_many(url, make_tokens(secret, ["victim"] * victims))
    targets = opened.clients
    clients += targets
    stats_before = await wait_for_stats(http, len(targets) + len(bystanders))
    await asyncio.sleep(0.5)  # let the opening burst settle before timing

    started = time.perf_counter()
    response = await http.post("/revoke/victim")
    request_ms = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    if targets:
        await asyncio.wait([t.reader for t in targets], timeout=10)

    def since(moments: Iterable[float | None]) -> list[float]:
        return sorted((m - started) * 1000 for m in moments if m is not None)

    codes = collections.Counter(f"{t.close_code} {t.close_reason}" for t in targets)
    still_open = [b for b in bystanders if b.ws.state is State.OPEN and not b.reader.done()]
    sample = still_open[:100]
    pongs = await asyncio.gather(*(_ping(b.ws) for b in sample))
    return RevocationResult(
        victims=len(targets),
        bystanders=len(bystanders),
        request_ms=request_ms,
        close_frame_ms=since(t.ws.close_frame_at for t in targets),
        fully_closed_ms=since(t.closed_at for t in targets),
        codes=codes,
        bystanders_open=len(still_open),
        bystanders_pinged=(sum(pongs), len(sample)),
        stats_before=stats_before,
        stats_after=await wait_for_stats(http, len(bystanders)),
        failures=opened.failures,
    )


async def _ping(ws: ClientConnection) -> bool:
    try:
        pong = await ws.ping()
        await asyncio.wait_for(pong, 5)
    except (ConnectionClosed, TimeoutError):
        return False
    return True


# Report ----------------------------------------------------------------------


def kib(value: float) -> str:
    return f"{value / 1024:,.2f} KiB"


def report_memory(results: list[MemoryResult]) -> None:
    print(
        f"\n{'mode':<12} {'opened':>13} {'open s':>7} {'RSS before':>12} {'RSS after':>12}"
        f" {'per connection':>15} {'/stats':>7}"
    )
    for r in results:
        print(
            f"{r.mode.name:<12} {f'{r.opened}/{r.requested}':>13} {r.open_seconds:>7.1f}"
            f" {r.before / 2**20:>9.1f} MB {r.after / 2**20:>9.1f} MB {kib(r.per_connection):>15}"
            f" {r.stats_connections:>7}"
        )
        for failure, count in r.failures.most_common(3):
            print(f"    {count} not opened: {failure}")
    by_name = {r.mode.name: r for r in results}
    on, off = by_name.get(SESSION.name), by_name.get(NO_SESSION.name)
    if on and off:
        extra = on.per_connection - off.per_connection
        verdict = "ok" if extra <= TARGET_BYTES else "ABOVE TARGET"
        print(
            f"\nsession machinery adds {extra:,.0f} B per connection (RSS)"
            f" [target <= {TARGET_BYTES} B: {verdict}]"
        )
        matches = on.stats_connections == on.opened and off.stats_connections == 0
        print(
            f"/stats connections: {on.stats_connections} with sessions (expected {on.opened}),"
            f" {off.stats_connections} without (expected 0): {'ok' if matches else 'MISMATCH'}"
        )
    plain = by_name.get(PLAIN.name)
    if off and plain:
        print(
            f"authentication without sessions adds {off.per_connection - plain.per_connection:,.0f}"
            " B per connection over the plain endpoint (RSS)"
        )


def report_traced(results: list[MemoryResult]) -> None:
    traced = {r.mode.name: r for r in results if r.traced and r.traced["tracing"] and r.opened}
    print("\ntracemalloc: Python allocations in the server per connection")
    for name, r in traced.items():
        assert r.traced is not None
        print(
            f"  {name:<12} {r.opened:>6} connections: {r.traced['total'] / r.opened:>8,.0f} B,"
            f" of which in authx/ {r.traced['authx'] / r.opened:>6,.0f} B"
        )
    on, off = traced.get(SESSION.name), traced.get(NO_SESSION.name)
    if on is None or off is None or on.traced is None or off.traced is None:
        return
    extra = on.traced["total"] / on.opened - off.traced["total"] / off.opened
    print(f"  session machinery adds {extra:,.0f} B per connection; by source line:")
    per_line: collections.Counter[str] = collections.Counter()
    for r, sign in ((on, 1), (off, -1)):
        assert r.traced is not None
        for where, size in r.traced["lines"]:
            per_line[where] += sign * size / r.opened
    shown = [(where, size) for where, size in per_line.most_common() if abs(size) >= 30]
    for where, size in shown[:14]:
        print(f"    {size:>+8,.0f}  {where}")


def report_revocation(r: RevocationResult) -> None:
    frames = r.close_frame_ms
    print(
        f"\nrevoke_subject('victim'): {r.victims} victim connections,"
        f" {r.bystanders} bystanders of other subjects (/stats before: {r.stats_before})"
    )
    for failure, count in r.failures.most_common(3):
        print(f"    {count} victims not opened: {failure}")
    print(f"  HTTP call returned after      {r.request_ms:8.1f} ms")
    if frames:
        last = frames[-1]
        verdict = "ok" if last <= TARGET_REVOCATION_MS and len(frames) == r.victims else "MISSED"
        print(f"  close frames seen             {len(frames)}/{r.victims}")
        print(
            f"  first / median / last frame   {frames[0]:8.1f} / {statistics.median(frames):.1f}"
            f" / {last:.1f} ms [target last <= {TARGET_REVOCATION_MS:.0f} ms: {verdict}]"
        )
    if r.fully_closed_ms:
        print(f"  last connection fully closed  {r.fully_closed_ms[-1]:8.1f} ms")
    print(f"  close codes: {dict(r.codes)}")
    pinged, sampled = r.bystanders_pinged
    print(
        f"  bystanders still open: {r.bystanders_open}/{r.bystanders},"
        f" {pinged}/{sampled} answered a ping, /stats after: {r.stats_after}"
    )


# Main ------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    secret = secrets.token_hex(32)
    n = args.connections
    # One subject and one token per connection, as with that many distinct users.
    tokens = make_tokens(secret, (f"user-{i}" for i in range(n)))
    modes = [SESSION, NO_SESSION] + ([] if args.no_plain else [PLAIN])
    results: list[MemoryResult] = []
    revocation = None
    for mode in modes:
        victims = args.victims if mode is SESSION else 0
        memory, rev = await run_mode(mode, tokens, secret, victims=victims)
        print(
            f"  {mode.name}: opened {memory.opened}/{n} in {memory.open_seconds:.1f} s", flush=True
        )
        results.append(memory)
        revocation = revocation or rev
    report_memory(results)
    if revocation is not None:
        report_revocation(revocation)
    if args.tracemalloc:
        traced_tokens = tokens[: args.tracemalloc]
        traced = [
            (await run_mode(mode, traced_tokens, secret, tracing=True))[0]
            for mode in (SESSION, NO_SESSION)
        ]
        report_traced(traced)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--connections", type=int, default=10_000, help="idle connections per mode")
    parser.add_argument("--victims", type=int, default=1_000, help="connections revoked at once")
    parser.add_argument("--no-plain", action="store_true", help="skip the unauthenticated mode")
    parser.add_argument(
        "--tracemalloc",
        type=int,
        default=2_000,
        metavar="N",
        help="then count the server's Python allocations over N connections per mode (0: skip)",
    )
    parser.add_argument("--timeout", type=float, default=240, help="overall cap in seconds")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    limit = raise_fd_limit()
    print(
        f"live connections: {arguments.connections} per mode, {arguments.victims} victims,"
        f" RLIMIT_NOFILE {limit}, {os.cpu_count()} CPUs, python {sys.version.split()[0]}",
        flush=True,
    )

    async def capped() -> None:
        async with asyncio.timeout(arguments.timeout):
            await main(arguments)

    asyncio.run(capped())
