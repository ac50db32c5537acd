"""Four workers on one Redis: ``revoke_subject`` across 40,000 live connections, and a partition.

    .venv/bin/python bench/cluster.py [--connections-per-worker 10000] [--victims 1000]

A redis-server without persistence on a free 127.0.0.1 port, and four uvicorn
processes serving bench/_live_app.py with ``JWT_STORE_URL`` on it; worker 4 reaches
Redis through a TCP proxy in this process that forwards until it is told to cut worker
4 off (every connection dropped, new ones refused) and then to heal. One client process
per worker opens ``--connections-per-worker`` idle authenticated WebSockets to it,
with websockets' Sans-I/O protocol on bare asyncio transports (light enough for 10,000
in one process): ``victims / 4`` of subject "victim", as many of "victim2", the others
one subject each; a handshake refused with 503 (Redis too slow to answer under the
opening burst: the store fails closed) is tried again twice at most, and reported. Clients
note when each close frame arrives on CLOCK_MONOTONIC, which every process of the machine
shares; each worker's own log line after its closes is shown beside ("logged ms").

1. ``revoke_subject("victim")`` through worker 1: the last of the victims' close frames,
   on all four workers, must arrive at most 200 ms after the call.
2. Worker 4 is cut off from Redis, ``revoke_subject("victim2")`` goes through worker 1,
   and the partition heals 5 s later. Workers 1-3 close their victims at once (timed
   from the call); worker 4 hears nothing until its listener subscribes again, then
   re-checks all its sessions against Redis (batches of 500) and closes its victims:
   the last must be closed within 1 s of healing.

No other connection may be closed. Exit status 1 when a target is missed, 2 when the
run could not be made.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ctypes
import gc
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from authx import AuthX, AuthXConfig
from bench._scale_report import percentile

# The bench opens tens of thousands of handshakes from 127.0.0.1 on purpose: admission
# control runs (its shared buckets in Redis are part of the path) under limits it never reaches.
HUGE_RATE = "1000000000"
SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parents[1]
APP = "bench._live_app:app"
WORKERS = 4
TARGET_REVOCATION_MS = 200.0
TARGET_HEAL_MS = 1000.0
PARTITION_SECONDS = 5.0
OPEN_TIMEOUT = 20.0  # one handshake, greeting included
CLOSE_WAIT = 5.0  # how long phase 1 (and workers 1-3 in phase 2) may take to close victims
HEAL_WAIT = 10.0  # how long worker 4 may take after healing
STARTUP_TIMEOUT = 30.0
# A handshake refused for want of the store (Redis slow under the opening burst: fail
# closed) is tried again, twice at most; the refusals are reported.
RETRIED, RETRIES, RETRY_DELAY = {"ConnectionError: HTTP 503"}, 2, 0.5
POLL = 0.1  # seconds between two questions to the clients while closes are expected
PROGRESS_EVERY = 2  # seconds between two progress lines of a client process
SECRET_ENV = "CLUSTER_BENCH_SECRET"
_RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
_LOG_LINE = re.compile(r"^(\d+\.\d+) (\w+) [\w.]+: (.*)$")

# With the parent gone (even by SIGKILL), children get SIGKILL too: no orphaned servers.
_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def now() -> float:
    return time.monotonic()


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (children inherit it); return it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _die_with_parent() -> None:
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def proc_status(pid: int, key: str) -> int:
    """A size from /proc/PID/status in bytes (``VmRSS``, ``VmHWM``); 0 when gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


async def spawn(
    argv: Sequence[str], log: Path, env: dict[str, str] | None = None, pipes: bool = False
) -> asyncio.subprocess.Process:
    """A child in a process group of its own, killed with this process, logging to ``log``."""
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            *argv,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdin=asyncio.subprocess.PIPE if pipes else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if pipes else out,
            stderr=out,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


async def stop(proc: asyncio.subprocess.Process | None, grace: float = 10.0) -> None:
    """SIGTERM to the child's process group, SIGKILL after ``grace`` seconds."""
    if proc is None or proc.returncode is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), wait)
            return


# Redis and the proxy -----------------------------------------------------------


class RedisServer:
    """redis-server on 127.0.0.1, no persistence (``--save "" --appendonly no``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        executable = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = await spawn(
            [
                executable,
                *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)),
                *("--save", "", "--appendonly", "no", "--daemonize", "no"),
                *("--protected-mode", "yes", "--maxclients", "10000"),
            ],
            self.directory / "redis.log",
        )
        deadline = now() + STARTUP_TIMEOUT
        while now() < deadline and self.proc.returncode is None:
            if await self._ping():
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("redis-server did not start:\n" + tail(self.directory / "redis.log"))

    async def _ping(self) -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        try:
            writer.write(b"PING\r\n")
            return await asyncio.wait_for(reader.readline(), 1.0) == b"+PONG\r\n"
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()


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
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)


# Workers -----------------------------------------------------------------------

# uvicorn and authx lines with a wall-clock timestamp; bench/_live_app.py keeps only the
# startup line of uvicorn.error's INFO records (no line per connection).
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(created).3f %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "authx": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}


@dataclass
class Worker:
    """One uvicorn process serving bench._live_app on 127.0.0.1."""

    number: int
    directory: Path
    store_url: str
    secret: str
    proc: asyncio.subprocess.Process | None = None
    port: int = 0

    @property
    def log_path(self) -> Path:
        return self.directory / f"worker{self.number}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        config = self.directory / "logging.json"
        config.write_text(json.dumps(LOG_CONFIG))
        env = {
            "JWT_SECRET_KEY": self.secret,
            "JWT_STORE_URL": self.store_url,
            "JWT_WS_RATE_LIMIT": HUGE_RATE,
            "JWT_WS_SUBJECT_RATE_LIMIT": HUGE_RATE,
        }
        self.proc = await spawn(
            [
                sys.executable,
                *("-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", "0"),
                *("--backlog", "4096", "--no-access-log", "--log-config", str(config)),
                *("--ws-ping-interval", "0", "--timeout-graceful-shutdown", "2"),
            ],
            self.log_path,
            env,
        )
        deadline = now() + STARTUP_TIMEOUT
        while now() < deadline and self.proc.returncode is None:
            if match := _RUNNING.search(self.log()):
                self.port = int(match.group(1))
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"worker {self.number} did not start:\n{tail(self.log_path)}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self, since_wall: float, containing: str) -> list[tuple[float, str]]:
        """Log lines after ``since_wall`` (``time.time()``) that contain ``containing``."""
        found = []
        for line in self.log().splitlines():
            match = _LOG_LINE.match(line)
            if match and float(match.group(1)) >= since_wall and containing in match.group(3):
                found.append((float(match.group(1)), match.group(3)))
        return found

    async def logged(self, since_wall: float, containing: str, within: float = 2.0) -> float | None:
        """When (``time.time()``) a line containing ``containing`` was logged, waiting for it."""
        for _ in range(int(within / 0.05)):
            if found := self.events(since_wall, containing):
                return found[0][0]
            await asyncio.sleep(0.05)
        return None

    def warnings(self) -> collections.Counter[str]:
        """The WARNING lines of the whole run, by message."""
        return collections.Counter(
            m.group(3)
            for line in self.log().splitlines()
            if (m := _LOG_LINE.match(line)) and m.group(2) == "WARNING"
        )

    def problems(self) -> list[str]:
        return [
            line
            for line in self.log().splitlines()
            if " ERROR " in line or " CRITICAL " in line or "Traceback" in line
        ]


def tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


# The client process ------------------------------------------------------------


@dataclass
class Ledger:
    """What a client process saw close: ``(sub, monotonic time, code, reason)``, not yet sent."""

    closes: list[tuple[str, float, int | None, str]] = field(default_factory=list)

    def take(self) -> list[tuple[str, float, int | None, str]]:
        taken, self.closes = self.closes, []
        return taken


class Connection(asyncio.Protocol):
    """One idle client WebSocket: websockets' Sans-I/O protocol on an asyncio transport.

    ``ready`` resolves at the server's greeting (the endpoint then sits in ``receive``);
    afterwards the first close frame, or the loss of the connection, goes to the ledger.
    """

    def __init__(self, sub: str, token: str, port: int, ledger: Ledger) -> None:
        self.sub = sub
        self._token: str | None = token
        self.ws = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/ws"), max_size=2**16)
        self.ledger = ledger
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        request = self.ws.connect()
        request.headers["Authorization"] = f"Bearer {self._token}"
        self._token = None
        self.ws.send_request(request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if self.ready.done():
                continue
            if isinstance(event, Response) and event.status_code != 101:
                self.ready.set_exception(ConnectionError(f"HTTP {event.status_code}"))
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self.ready.set_result(None)
        frame = self.ws.close_rcvd
        if frame is not None and not self.closed:
            self._closed(frame.code, frame.reason)
        self._flush()

    def eof_received(self) -> None:
        self.ws.receive_eof()
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self._closed(None, "connection lost")

    def _closed(self, code: int | None, reason: str) -> None:
        at = now()
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed {code} {reason}".strip()))
        elif not self.ready.cancelled() and self.ready.exception() is None:
            self.ledger.closes.append((self.sub, at, code, reason))

    def _flush(self) -> None:
        assert self.transport is not None
        for chunk in self.ws.data_to_send():
            if chunk:
                self.transport.write(chunk)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def open_one(port: int, sub: str, token: str, ledger: Ledger) -> Connection:
    loop = asyncio.get_running_loop()
    connection = Connection(sub, token, port, ledger)
    try:
        async with asyncio.timeout(OPEN_TIMEOUT):
            await loop.create_connection(lambda: connection, "127.0.0.1", port)
            await connection.ready
    except BaseException:
        connection.abort()
        raise
    return connection


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def client_plan(worker: int, others: int, victims: dict[str, int]) -> list[str]:
    """Subjects in opening order: the others, then each victim subject in turn.

    Victims last: their subject is then the last in the worker's index, so the re-check
    after a partition reaches them in its last batch (the worst case).
    """
    subjects = [f"user-{worker}-{i}" for i in range(others)]
    for sub, count in victims.items():
        subjects += [sub] * count
    return subjects


async def run_client(plan: dict[str, Any]) -> None:
    """The client process: open the plan's connections, then answer commands on stdin.

    It ends at ``quit``, when stdin closes, or at the plan's ``stop_by`` at the latest.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(0.0, plan["stop_by"] - now())):
            await _run_client(plan)


async def _run_client(plan: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    issuer: AuthX[Any] = AuthX(config=AuthXConfig(JWT_SECRET_KEY=os.environ[SECRET_ENV]))
    subjects = client_plan(plan["worker"], plan["others"], plan["victims"])
    todo = iter([(sub, issuer.create_access_token(uid=sub)) for sub in subjects])
    port, deadline, ledger = plan["port"], plan["deadline"], Ledger()
    connections: list[Connection] = []
    failures: collections.Counter[str] = collections.Counter()
    retried: collections.Counter[str] = collections.Counter()
    started = now()

    async def opener() -> None:
        for sub, token in todo:  # shared by every opener
            for attempt in range(1 + RETRIES):
                if now() > deadline:
                    failures["not tried: out of time"] += 1
                    break
                try:
                    connections.append(await open_one(port, sub, token, ledger))
                    break
                except (OSError, TimeoutError) as exc:
                    reason = f"{type(exc).__name__}: {exc}"[:100]
                    if reason in RETRIED and attempt < RETRIES:
                        retried[reason] += 1
                        await asyncio.sleep(RETRY_DELAY)
                        continue
                    failures[reason] += 1
                    break

    async def progress() -> None:
        for _ in range(int(deadline - started) // PROGRESS_EVERY + 1):
            await asyncio.sleep(PROGRESS_EVERY)
            emit({"progress": len(connections)})

    reporter = asyncio.create_task(progress())
    await asyncio.gather(*(opener() for _ in range(plan["inflight"])))
    reporter.cancel()
    # The instrument must not pause while it times closes: a full collection over its
    # connections takes hundreds of milliseconds, so they are kept out of the collector's sight.
    gc.collect()
    gc.freeze()
    emit(
        {
            "opened": {
                **collections.Counter(c.sub for c in connections if c.sub in plan["victims"]),
                "all": len(connections),
            },
            "failures": failures,
            "retried": retried,
            "seconds": now() - started,
        }
    )
    try:
        while line := await stdin.readline():
            command = json.loads(line)["do"]
            if command == "report":
                emit({"closes": ledger.take(), "open": sum(not c.closed for c in connections)})
            elif command == "quit":
                break
    finally:
        for connection in connections:
            connection.abort()


# Driving the clients -------------------------------------------------------------


class ClientProcess:
    """A client process and its JSON-lines conversation (commands on stdin, answers on stdout)."""

    def __init__(self, worker: Worker, directory: Path) -> None:
        self.worker = worker
        self.log_path = directory / f"client{worker.number}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.progress = 0
        self.answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    async def start(self, plan: dict[str, Any]) -> None:
        self.proc = await spawn(
            [sys.executable, str(SCRIPT), "--client", json.dumps(plan)],
            self.log_path,
            {SECRET_ENV: self.worker.secret},
            pipes=True,
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            message = json.loads(line)
            if "progress" in message:
                self.progress = message["progress"]
            else:
                await self.answers.put(message)

    async def answer(self, within: float) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(self.answers.get(), within)
        except TimeoutError:
            raise RuntimeError(
                f"client {self.worker.number} did not answer:\n{tail(self.log_path)}"
            ) from None

    async def ask(self, command: str, within: float = 10.0) -> dict[str, Any]:
        assert self.proc is not None
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"do": command}).encode() + b"\n")
        await self.proc.stdin.drain()
        return await self.answer(within)

    async def quit(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        with contextlib.suppress(OSError, RuntimeError):
            assert self.proc.stdin is not None
            self.proc.stdin.write(b'{"do": "quit"}\n')
            await self.proc.stdin.drain()
            self.proc.stdin.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 10)
        await stop(self.proc, grace=2)
        if self._reader is not None:
            self._reader.cancel()


@dataclass
class Close:
    worker: int
    sub: str
    at: float
    code: int | None
    reason: str


async def collect(clients: Sequence[ClientProcess]) -> tuple[list[Close], int]:
    """Every close the clients saw since the last call, and how many connections are open."""
    answers = await asyncio.gather(*(c.ask("report") for c in clients))
    closes = [
        Close(client.worker.number, sub, at, code, reason)
        for client, answer in zip(clients, answers, strict=True)
        for sub, at, code, reason in answer["closes"]
    ]
    return closes, sum(answer["open"] for answer in answers)


async def wait_for_closes(
    clients: Sequence[ClientProcess], sub: str, expected: int, within: float
) -> list[Close]:
    """Collect closes until ``expected`` of ``sub`` were seen, for ``within`` seconds at most."""
    seen: list[Close] = []
    until = now() + within
    for _ in range(int(within / POLL) + 1):
        closes, _ = await collect(clients)
        seen += closes
        if sum(c.sub == sub for c in seen) >= expected or now() > until:
            break
        await asyncio.sleep(POLL)
    return seen


# Report --------------------------------------------------------------------------


@dataclass
class Row:
    label: str
    expected: int
    times_ms: list[float]  # sorted, from the row's origin
    codes: collections.Counter[str]
    others_closed: int
    logged_ms: float | None = None  # when the worker logged its closes, from the same origin

    def cells(self) -> str:
        t = self.times_ms
        figures = (
            f"{percentile(t, 50):>8.1f} {percentile(t, 99):>8.1f} {t[-1]:>8.1f}"
            if t
            else f"{'-':>8} {'-':>8} {'-':>8}"
        )
        ok = self.codes.get("4004 token_revoked", 0)
        logged = "-" if self.logged_ms is None else f"{self.logged_ms:.0f}"
        return (
            f"{self.label:<16} {self.expected:>7} {len(t):>7} {ok:>6} {figures}"
            f" {self.others_closed:>8} {logged:>9}"
        )


HEADER = (
    f"{'worker':<16} {'victims':>7} {'closed':>7} {'4004':>6} {'p50 ms':>8} {'p99 ms':>8}"
    f" {'max ms':>8} {'others':>8} {'logged ms':>9}"
)


def rows_for(
    closes: Iterable[Close], sub: str, expected: dict[int, int], origins: dict[int, float]
) -> list[Row]:
    """One row per worker, its times from ``origins[worker]``, and a row for them all."""
    rows = []
    every: list[float] = []
    every_codes: collections.Counter[str] = collections.Counter()
    every_others = 0
    closes = list(closes)
    for number, origin in sorted(origins.items()):
        mine = [c for c in closes if c.worker == number]
        victims = [c for c in mine if c.sub == sub]
        times = sorted((c.at - origin) * 1000 for c in victims)
        codes = collections.Counter(f"{c.code} {c.reason}" for c in victims)
        others = sum(c.sub != sub for c in mine)
        rows.append(Row(f"{number}", expected[number], times, codes, others))
        every += times
        every_codes += codes
        every_others += others
    total = sum(expected[n] for n in origins)
    rows.append(Row("all", total, sorted(every), every_codes, every_others))
    return rows


def print_rows(rows: Sequence[Row]) -> None:
    print(HEADER)
    for row in rows:
        print(row.cells())
    odd = collections.Counter[str]()
    for row in rows[:-1]:
        odd += collections.Counter(
            {code: n for code, n in row.codes.items() if code != "4004 token_revoked"}
        )
    if odd:
        print(f"  other close codes: {dict(odd)}")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# Main ----------------------------------------------------------------------------


@dataclass
class Cluster:
    directory: Path
    secret: str
    redis: RedisServer
    proxy: Proxy
    workers: list[Worker]
    clients: list[ClientProcess] = field(default_factory=list)
    opened: dict[int, dict[str, int]] = field(default_factory=dict)


async def start_cluster(cluster: Cluster, args: argparse.Namespace) -> None:
    await cluster.redis.start()
    await asyncio.gather(*(w.start() for w in cluster.workers))
    print(
        f"redis-server :{cluster.redis.port}, workers "
        + ", ".join(f"{w.number} :{w.port}" for w in cluster.workers)
        + f" (worker 4 through the proxy :{cluster.proxy.port})",
        flush=True,
    )


async def open_connections(cluster: Cluster, args: argparse.Namespace) -> int:
    per_worker, victims = args.connections_per_worker, args.victims // WORKERS
    others = max(0, per_worker - 2 * victims)
    deadline = now() + args.open_timeout
    cluster.clients = [ClientProcess(w, cluster.directory) for w in cluster.workers]
    started = now()
    for client in cluster.clients:
        plan = {
            "worker": client.worker.number,
            "port": client.worker.port,
            "others": others,
            "victims": {"victim": victims, "victim2": victims},
            "inflight": args.inflight,
            "deadline": deadline,
            "stop_by": now() + args.timeout + 30,  # in case this process cannot say quit
        }
        await client.start(plan)
    total = WORKERS * (others + 2 * victims)
    pending = {asyncio.ensure_future(c.answer(args.open_timeout + 60)): c for c in cluster.clients}
    last_line = now()
    while pending:
        done, _ = await asyncio.wait(pending, timeout=1.0)
        for future in done:
            client = pending.pop(future)
            answer = future.result()
            cluster.opened[client.worker.number] = answer["opened"]
            client.progress = answer["opened"]["all"]
            for failure, count in answer["failures"].items():
                print(f"  worker {client.worker.number}: {count} not opened: {failure}")
            for refusal, count in answer["retried"].items():
                print(
                    f"  worker {client.worker.number}: {count} handshakes retried after {refusal}"
                )
        if now() - last_line >= 5 or not pending:
            last_line = now()
            so_far = sum(c.progress for c in cluster.clients)
            print(
                f"  opening: {so_far:,}/{total:,} after {now() - started:.0f} s ("
                + " ".join(f"w{c.worker.number} {c.progress:,}" for c in cluster.clients)
                + ")",
                flush=True,
            )
    opened = sum(o["all"] for o in cluster.opened.values())
    seconds = now() - started
    print(
        f"opened {opened:,}/{total:,} connections in {seconds:.1f} s"
        f" ({opened / seconds:,.0f}/s; tokens made in the client processes included)",
        flush=True,
    )
    return opened


async def server_stats(http: Sequence[httpx.AsyncClient]) -> list[int]:
    answers = await asyncio.gather(*(h.get("/stats") for h in http))
    return [int(a.json()["connections"]) for a in answers]


def memory_line(cluster: Cluster) -> str:
    def mib(value: int) -> str:
        return f"{value / 2**20:,.0f}"

    workers = [w.proc.pid for w in cluster.workers if w.proc]
    clients = [c.proc.pid for c in cluster.clients if c.proc]
    redis = cluster.redis.proc.pid if cluster.redis.proc else 0
    return (
        "peak RSS MiB (VmHWM): workers "
        + " / ".join(mib(proc_status(pid, "VmHWM")) for pid in workers)
        + ", clients "
        + " / ".join(mib(proc_status(pid, "VmHWM")) for pid in clients)
        + f", redis {mib(proc_status(redis, 'VmHWM'))}"
        + f", this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f}"
    )


async def phase_one(
    cluster: Cluster, http: Sequence[httpx.AsyncClient], open_now: int
) -> tuple[bool, float]:
    expected = {n: cluster.opened[n].get("victim", 0) for n in cluster.opened}
    print(
        f"\nphase 1: revoke_subject('victim') through worker 1,"
        f" {sum(expected.values()):,} victims among {open_now:,} open connections",
        flush=True,
    )
    started, started_wall = now(), time.time()
    response = await http[0].post("/revoke/victim")
    request_ms = (now() - started) * 1000
    response.raise_for_status()
    closes = await wait_for_closes(cluster.clients, "victim", sum(expected.values()), CLOSE_WAIT)
    rows = rows_for(closes, "victim", expected, dict.fromkeys(expected, started))
    for worker, row in zip(cluster.workers, rows, strict=False):
        at = await worker.logged(started_wall, "after a subject revocation")
        row.logged_ms = None if at is None else (at - started_wall) * 1000
    print_rows(rows)
    print("  (logged ms: when the worker's log says it closed them, 1 ms resolution)")
    every = rows[-1]
    last = every.times_ms[-1] if every.times_ms else float("inf")
    ok = (
        len(every.times_ms) == every.expected
        and every.codes.get("4004 token_revoked", 0) == every.expected
        and every.others_closed == 0
        and last <= TARGET_REVOCATION_MS
    )
    print(f"  the HTTP call returned after {request_ms:.1f} ms")
    print(
        f"{verdict(ok)}: phase 1, {len(every.times_ms):,}/{every.expected:,} closed (4004), last"
        f" close frame {last:.1f} ms after the call (target <= {TARGET_REVOCATION_MS:.0f} ms),"
        f" {every.others_closed} other connections closed",
        flush=True,
    )
    return ok, last


async def phase_two(cluster: Cluster, http: Sequence[httpx.AsyncClient]) -> tuple[bool, float]:
    expected = {n: cluster.opened[n].get("victim2", 0) for n in cluster.opened}
    cut = cluster.workers[-1]
    print(
        f"\nphase 2: worker {cut.number} cut off from Redis; revoke_subject('victim2') through"
        f" worker 1 ({sum(expected.values()):,} victims); healed {PARTITION_SECONDS:.0f} s later",
        flush=True,
    )
    cut_wall = time.time()
    cluster.proxy.partition()
    lost = await cut.logged(cut_wall, "lost the Redis event subscription", within=3.0)
    print(
        f"  worker {cut.number} logged the lost subscription"
        + (
            ": NOT within 3 s"
            if lost is None
            else f" {(lost - cut_wall) * 1000:.0f} ms after the cut"
        )
    )

    started, started_wall = now(), time.time()
    response = await http[0].post("/revoke/victim2")
    response.raise_for_status()
    others = {n: e for n, e in expected.items() if n != cut.number}
    closes = await wait_for_closes(cluster.clients, "victim2", sum(others.values()), CLOSE_WAIT)
    await asyncio.sleep(max(0.0, started + PARTITION_SECONDS - now()))
    closes += (await collect(cluster.clients))[0]
    early = [c for c in closes if c.worker == cut.number]

    healed_wall, healed = time.time(), now()
    cluster.proxy.heal()
    closes += await wait_for_closes(cluster.clients, "victim2", expected[cut.number], HEAL_WAIT)
    origins = dict.fromkeys(others, started) | {cut.number: healed}
    rows = rows_for(closes, "victim2", expected, origins)
    for worker, row in zip(cluster.workers, rows, strict=False):
        if worker is cut:
            at = await worker.logged(healed_wall, "re-checked")
            row.logged_ms = None if at is None else (at - healed_wall) * 1000
        else:
            at = await worker.logged(started_wall, "after a subject revocation")
            row.logged_ms = None if at is None else (at - started_wall) * 1000
    print_rows(rows[:-1])
    print(
        f"  (workers {', '.join(str(n) for n in sorted(others))} timed from the call,"
        f" worker {cut.number} from the heal)"
    )

    subscribed = cut.events(healed_wall, "subscribed again")
    rechecked = cut.events(healed_wall, "re-checked")
    for at, message in subscribed[:1] + rechecked:
        print(f"  worker {cut.number}, {(at - healed_wall) * 1000:+.0f} ms: {message}")
    if subscribed and rechecked:
        took = (rechecked[0][0] - subscribed[0][0]) * 1000
        print(f"  its re-check took {took:.0f} ms (log timestamps, 1 ms resolution)")

    by_worker = {row.label: row for row in rows[:-1]}
    cut_row = by_worker[str(cut.number)]
    reached = [by_worker[str(n)] for n in others]
    near_last = max((r.times_ms[-1] for r in reached if r.times_ms), default=float("inf"))
    heal_last = cut_row.times_ms[-1] if cut_row.times_ms else float("inf")
    complete = all(
        len(r.times_ms) == r.expected and r.codes.get("4004 token_revoked", 0) == r.expected
        for r in rows[:-1]
    )
    others_closed = rows[-1].others_closed
    ok = (
        complete
        and not early
        and others_closed == 0
        and near_last <= TARGET_REVOCATION_MS
        and heal_last <= TARGET_HEAL_MS
    )
    print(
        f"{verdict(ok)}: phase 2, worker {cut.number}'s last victim closed {heal_last:.1f} ms after"
        f" the heal (target <= {TARGET_HEAL_MS:.0f} ms), {len(early)} closed during the partition;"
        f" workers 1-3 last close {near_last:.1f} ms after the call (target <="
        f" {TARGET_REVOCATION_MS:.0f} ms); {others_closed} other connections closed",
        flush=True,
    )
    return ok, heal_last


async def report_strays(cluster: Cluster, before: str) -> int:
    """Closes the clients saw outside a phase (none expected); print them, return how many."""
    strays, _ = await collect(cluster.clients)
    if strays:
        kinds = collections.Counter(f"{c.sub.split('-')[0]} {c.code} {c.reason}" for c in strays)
        print(f"!! {len(strays)} connections closed {before}: {dict(kinds)}")
    return len(strays)


def worker_rss(cluster: Cluster) -> list[int]:
    return [proc_status(w.proc.pid, "VmRSS") if w.proc else 0 for w in cluster.workers]


async def run(args: argparse.Namespace, cluster: Cluster) -> int:
    await start_cluster(cluster, args)
    idle_rss = worker_rss(cluster)
    opened = await open_connections(cluster, args)
    clients = [httpx.AsyncClient(base_url=w.url, timeout=30) for w in cluster.workers]
    try:
        stats = await server_stats(clients)
        rss = worker_rss(cluster)
        per_connection = (sum(rss) - sum(idle_rss)) / max(1, sum(stats))
        print(
            "server sessions: "
            + " / ".join(f"{s:,}" for s in stats)
            + f" (clients: {opened:,}); worker RSS MiB: "
            + " / ".join(f"{r / 2**20:,.0f}" for r in rss)
            + f", {per_connection / 1024:.1f} KiB per connection over the idle start",
            flush=True,
        )
        await asyncio.sleep(1.0)  # let the opening burst settle before timing
        strays = await report_strays(cluster, "before phase 1")
        first, _ = await phase_one(cluster, clients, sum(stats))
        await asyncio.sleep(1.0)
        strays += await report_strays(cluster, "between the phases")
        second, _ = await phase_two(cluster, clients)
        await asyncio.sleep(1.0)
        strays += await report_strays(cluster, "after phase 2")
        _, still_open = await collect(cluster.clients)
        stats = await server_stats(clients)
        print(
            "\nafter both phases: server sessions "
            + " / ".join(f"{s:,}" for s in stats)
            + f", client connections open {still_open:,}"
        )
        print(memory_line(cluster))
        for worker in cluster.workers:
            for message, count in worker.warnings().most_common(5):
                print(f"  worker {worker.number} log, {count} x WARNING {message}")
        problems = 0
        for worker in cluster.workers:
            for line in worker.problems()[:5]:
                problems += 1
                print(f"  worker {worker.number} log: {line}")
        return 0 if first and second and not strays and not problems else 1
    finally:
        await asyncio.gather(*(h.aclose() for h in clients))


async def main(args: argparse.Namespace) -> int:
    secret = secrets.token_hex(32)
    with tempfile.TemporaryDirectory(prefix="authx-cluster-") as tmp:
        directory = Path(tmp)
        redis = RedisServer(directory)
        proxy = Proxy(redis.port)
        workers = [Worker(n, directory, redis.url, secret) for n in range(1, WORKERS + 1)]
        cluster = Cluster(directory, secret, redis, proxy, workers)
        started = now()
        try:
            async with asyncio.timeout(args.timeout):
                # The fourth worker's URL names the proxy, whose port is known once it listens.
                await proxy.start()
                workers[-1].store_url = f"redis://127.0.0.1:{proxy.port}/0"
                return await run(args, cluster)
        except TimeoutError:
            print(f"!! stopped by the overall cap of {args.timeout:.0f} s")
            return 2
        except (RuntimeError, OSError, httpx.HTTPError) as exc:
            print(f"!! the run could not be made: {type(exc).__name__}: {exc}")
            return 2
        finally:
            await asyncio.gather(*(c.quit() for c in cluster.clients))
            await asyncio.gather(*(stop(w.proc, grace=5) for w in workers))
            await stop(redis.proc)
            await proxy.stop()
            print(f"total {now() - started:.1f} s, everything stopped")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument(
        "--connections-per-worker",
        type=int,
        default=10_000,
        metavar="N",
        help="idle connections held by each of the four workers (victims included)",
    )
    parser.add_argument(
        "--victims", type=int, default=1_000, help="connections revoked at once, over all workers"
    )
    parser.add_argument(
        "--inflight", type=int, default=50, help="handshakes under way at once per client process"
    )
    parser.add_argument(
        "--open-timeout", type=float, default=150, help="seconds the clients may spend opening"
    )
    parser.add_argument("--timeout", type=float, default=240, help="overall cap in seconds")
    parser.add_argument("--client", help=argparse.SUPPRESS)  # a client process's plan (JSON)
    args = parser.parse_args()
    if args.victims % WORKERS or args.victims <= 0:
        parser.error(f"--victims must be a positive multiple of {WORKERS}")
    if args.connections_per_worker < 2 * args.victims // WORKERS:
        parser.error("--connections-per-worker must hold both victim subjects (2 * victims / 4)")
    return args


if __name__ == "__main__":
    arguments = parse_args()
    limit = raise_fd_limit()
    if arguments.client is not None:
        asyncio.run(run_client(json.loads(arguments.client)))
        sys.exit(0)
    print(
        f"cluster: {WORKERS} workers x {arguments.connections_per_worker:,} connections,"
        f" {arguments.victims:,} victims per phase, RLIMIT_NOFILE {limit},"
        f" {os.cpu_count()} CPUs, python {sys.version.split()[0]}",
        flush=True,
    )
    sys.exit(asyncio.run(main(arguments)))
