"""Load and fault run: many WebSocket clients, bad tokens, revocations and a Redis outage.

    .venv/bin/python bench/load.py [--clients 2000] [--bad-ratio 0.2]   (or ``make load``)

One uvicorn process (bench/load_app.py) on 127.0.0.1 authenticates WebSocket handshakes
with ``auth.WS_AUTH_REQUIRED`` and the Redis store (``JWT_STORE_URL=redis://...``) of a
redis-server started here on a free loopback port, in a temporary directory. Then:

- ``--clients`` client tasks run at once for ``--duration`` seconds, each reconnecting
  in a loop with a token of its own: good ones hold their connection a few seconds
  (greeting, one echo), bad ones (``--bad-ratio``) are spread over the kinds in
  ``BAD_KINDS`` (expired, wrong signature, alg none, '!!!!' appended to the signature,
  refresh token, revoked by token or subject before the run, a seed blocklist callback
  with and without '!!!!', garbage), half of all clients with ``?token=``, half with
  ``Authorization: Bearer``; at most ``--inflight`` handshakes are under way at a time;
- twice during the run, tokens and subjects of connected good clients are revoked through
  an HTTP admin route: their connections must be closed with 4004 (`token_revoked`) and every later
  handshake with those tokens refused;
- redis-server is killed (SIGKILL) mid-run and restarted on the same port after
  ``--outage`` seconds. Meanwhile handshakes must fail closed (503, JWT_STORE_FAIL_OPEN is
  False); the recovery time is from Redis answering PING again to the first good
  handshake accepted. Redis runs with an fsync'ed append-only file, as a store of
  revocations must, so the revocations made before the crash are still there after it.

Counted: server errors (ERROR/Traceback lines in the uvicorn log and HTTP 500 answers,
target 0), wrong accepts (a bad, revoked or mismatched token accepted, or a revoked
connection left open; target 0), wrong rejects (a good token refused, or not answered,
outside the outage window [kill, first good accept after the restart]; target 0).
The exit status is 1 when any of the three is not 0 or the store never recovered, 2 when
the run could not be made.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import re
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from jwt.utils import base64url_encode
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from authx import AuthX, AuthXConfig

# A benchmark opens thousands of handshakes from 127.0.0.1 on purpose: admission
# control runs (its buckets are part of the measured path) under limits it never reaches.
os.environ.setdefault("JWT_WS_RATE_LIMIT", "1000000000")
os.environ.setdefault("JWT_WS_SUBJECT_RATE_LIMIT", "1000000000")

ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT = 30.0
OPEN_TIMEOUT = 10.0  # a handshake's deadline (connect, upgrade, answer)
GREETING_TIMEOUT = 5.0
REVOKE_WAIT = 10.0  # how long a revoked connection is kept open, waiting for a late close
PROBE_INTERVAL = 0.02  # seconds between recovery probes after the restart
GRACE = 20.0  # seconds the clients get to finish after the run ends
_RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")

GOOD = "good"
BAD_KINDS = (
    "expired",
    "wrong signature",
    "alg none",
    "signature + '!!!!'",
    "refresh token",
    "revoked token",
    "revoked subject",
    "blocklisted",
    "blocklisted + '!!!!'",
    "garbage",
)


def now() -> float:
    return time.monotonic()


def raise_fd_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to the hard limit; return the new limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Redis -----------------------------------------------------------------------


class RedisServer:
    """redis-server on 127.0.0.1:``port`` with its files in ``directory``; killable."""

    def __init__(self, executable: str, directory: Path, port: int) -> None:
        self.executable = executable
        self.directory = directory
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def _spawn(self) -> subprocess.Popen[bytes]:
        with (self.directory / "redis.log").open("ab") as log:
            return subprocess.Popen(
                [
                    self.executable,
                    *("--port", str(self.port), "--bind", "127.0.0.1"),
                    *("--dir", str(self.directory), "--daemonize", "no"),
                    *("--save", "", "--appendonly", "yes", "--appendfsync", "always"),
                    *("--protected-mode", "yes", "--maxclients", "10000"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def start(self, within: float = 15.0) -> float:
        """Start (or restart) and wait until it answers PING; return when it did."""
        self.starts += 1
        self.proc = self._spawn()
        deadline = now() + within
        while now() < deadline:
            if self.proc.poll() is not None:
                break
            if await self.ping():
                return now()
            await asyncio.sleep(0.01)
        raise RuntimeError(f"redis-server did not start:\n{self.log()}")

    async def ping(self) -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        try:
            writer.write(b"PING\r\n")
            line = await asyncio.wait_for(reader.readline(), 1.0)
            return line == b"+PONG\r\n"
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown, no save."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


# uvicorn ---------------------------------------------------------------------

LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"startup_only": {"()": "bench.load_app.StartupOnly"}},
    "formatters": {"plain": {"format": "%(created).3f %(levelname)s: %(name)s: %(message)s"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["startup_only"],
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "authx": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
    },
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}


class UvicornServer:
    """One uvicorn process serving bench.load_app on 127.0.0.1; its log kept in a file."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.directory = directory
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self.log_path = directory / "uvicorn.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def _spawn(self) -> subprocess.Popen[bytes]:
        config = self.directory / "logging.json"
        config.write_text(json.dumps(LOG_CONFIG))
        with self.log_path.open("wb") as log:
            return subprocess.Popen(
                [
                    sys.executable,
                    *("-m", "uvicorn", "bench.load_app:app", "--host", "127.0.0.1", "--port", "0"),
                    *("--backlog", "4096", "--no-access-log", "--log-config", str(config)),
                    *("--ws-ping-interval", "0", "--timeout-graceful-shutdown", "5"),
                ],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=raise_fd_limit,  # one descriptor per connection
            )

    async def start(self) -> None:
        self.proc = self._spawn()
        deadline = now() + STARTUP_TIMEOUT
        while now() < deadline and self.proc.poll() is None:
            if match := _RUNNING.search(self.log()):
                self.port = int(match.group(1))
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"uvicorn did not start:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cpu_seconds(self) -> float | None:
        if self.proc is None:
            return None
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Clients ---------------------------------------------------------------------


@dataclass
class Revocation:
    how: str  # "token" or "subject"
    round: int
    requested_at: float
    done_at: float = float("inf")
    status: int | None = None


@dataclass
class Client:
    index: int
    kind: str
    token: str  # as sent
    sub: str
    header: bool  # Authorization header instead of ?token=
    revoked: Revocation | None = None  # revoked during the run
    conns: list[Connection] = field(default_factory=list)
    open: ClientConnection | None = None

    @property
    def expects_accept(self) -> bool:
        return self.kind == GOOD


@dataclass
class Attempt:
    client: Client | None  # None for the recovery probe
    start: float
    end: float
    outcome: str  # "accepted", "HTTP 401", "close 1013", "timeout", "error ...", "wrong subject"

    @property
    def accepted(self) -> bool:
        return self.outcome == "accepted"

    @property
    def latency_ms(self) -> float:
        return (self.end - self.start) * 1000


@dataclass
class Connection:
    handshake_at: float  # when its handshake began
    opened_at: float
    closed_at: float | None = None
    by_server: bool = False
    code: int | None = None
    reason: str = ""
    echo_ok: bool = False


@dataclass
class Run:
    """Everything measured, filled while the clients run."""

    args: argparse.Namespace
    url: str
    clients: list[Client]
    inflight: asyncio.Semaphore
    started_at: float = 0.0
    started_wall: float = 0.0  # time.time() at started_at, for the server log's timestamps
    stop_at: float = float("inf")
    attempts: list[Attempt] = field(default_factory=list)
    probe_attempts: list[Attempt] = field(default_factory=list)
    open_now: int = 0
    open_peak: int = 0
    kill_at: float | None = None
    restart_at: float | None = None
    ready_at: float | None = None
    recovered_at: float | None = None
    outage_revoke_status: int | str | None = None
    revocations: list[Revocation] = field(default_factory=list)
    admin_500: int = 0
    admin_failures: collections.Counter[str] = field(default_factory=collections.Counter)
    server_cpu: float | None = None
    sessions_left: int | None = None
    server_exit: int | None = None  # uvicorn's exit status, had it died during the run

    def at(self, moment: float | None) -> str:
        return "-" if moment is None else f"+{moment - self.started_at:.2f} s"


def handshake_args(client_token: str, header: bool, base: str) -> tuple[str, dict[str, str]]:
    if header:
        return base, {"Authorization": f"Bearer {client_token}"}
    return f"{base}?token={quote(client_token, safe='')}", {}


async def handshake(
    url: str, token: str, header: bool, sub: str
) -> tuple[str, float, ClientConnection | None]:
    """One handshake: the outcome, when it ended, and the open connection if accepted."""
    uri, headers = handshake_args(token, header, url)
    ws: ClientConnection | None = None
    try:
        ws = await connect(
            uri,
            additional_headers=headers,
            open_timeout=OPEN_TIMEOUT,
            close_timeout=2,
            compression=None,
            ping_interval=None,
            proxy=None,
        )
        ended = now()
        greeting = json.loads(await asyncio.wait_for(ws.recv(), GREETING_TIMEOUT))
        if not isinstance(greeting, dict) or greeting.get("sub") != sub:
            ws.transport.abort()
            return "wrong subject", ended, None
        return "accepted", ended, ws
    except InvalidStatus as exc:
        return f"HTTP {exc.response.status_code}", now(), None
    except ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd is not None else "none"
        return f"close {code}", now(), None
    except TimeoutError:
        outcome = "timeout"
    except (OSError, WebSocketException, ValueError) as exc:
        outcome = f"error {type(exc).__name__}"
    if ws is not None:
        ws.transport.abort()
    return outcome, now(), None


async def hold(run: Run, client: Client, ws: ClientConnection, conn: Connection) -> None:
    """Echo once, then keep the connection until its time is up or the server closes it."""
    rng = random.Random()
    end = min(conn.opened_at + rng.uniform(run.args.hold_min, run.args.hold_max), run.stop_at)
    closed = asyncio.ensure_future(ws.wait_closed())
    try:
        text = f"echo {client.index}"
        await ws.send(text)
        conn.echo_ok = await asyncio.wait_for(ws.recv(), GREETING_TIMEOUT) == text
        while not closed.done():
            if client.revoked is not None:
                # A revoked connection is kept until the server closes it, or the limit.
                wait = max(REVOKE_WAIT, run.args.revoke_close_limit + 2)
                end = max(end, client.revoked.requested_at + wait)
            remaining = end - now()
            if remaining <= 0:
                break
            await asyncio.wait([closed], timeout=remaining)
    except (ConnectionClosed, TimeoutError, OSError):
        pass
    protocol = ws.protocol
    if closed.done() or protocol.close_rcvd is not None:
        # The server's close frame came first (False: it answered ours).
        conn.by_server = protocol.close_rcvd is not None and protocol.close_rcvd_then_sent is True
    else:
        closed.cancel()
        try:
            await ws.close()
        except (OSError, WebSocketException):
            ws.transport.abort()
    conn.closed_at = now()
    frame = protocol.close_rcvd
    conn.code, conn.reason = (frame.code, frame.reason) if frame is not None else (None, "")


async def run_client(run: Run, client: Client, start_at: float) -> None:
    rng = random.Random(client.index)
    await asyncio.sleep(max(0.0, start_at - now()))
    while now() < run.stop_at:
        async with run.inflight:
            started = now()
            outcome, ended, ws = await handshake(run.url, client.token, client.header, client.sub)
        run.attempts.append(Attempt(client, started, ended, outcome))
        if ws is None:
            await asyncio.sleep(rng.uniform(run.args.retry_min, run.args.retry_max))
            continue
        conn = Connection(handshake_at=started, opened_at=ended)
        client.conns.append(conn)
        client.open = ws
        run.open_now += 1
        run.open_peak = max(run.open_peak, run.open_now)
        try:
            await hold(run, client, ws, conn)
        finally:
            run.open_now -= 1
            client.open = None
        await asyncio.sleep(rng.uniform(0, 0.3))


async def probe_recovery(run: Run, token: str) -> None:
    """After the restart, try a good token every PROBE_INTERVAL until one is accepted."""
    while run.recovered_at is None and now() < run.stop_at:
        started = now()
        outcome, ended, ws = await handshake(run.url, token, False, "probe")
        run.probe_attempts.append(Attempt(None, started, ended, outcome))
        if ws is not None:
            await ws.close()
            if run.ready_at is not None and started >= run.ready_at:
                return
        await asyncio.sleep(PROBE_INTERVAL)


def first_recovery(run: Run) -> float | None:
    """End of the first good handshake accepted that began after Redis was back."""
    if run.ready_at is None:
        return None
    ready = run.ready_at
    ends = [
        a.end
        for a in [*run.attempts, *run.probe_attempts]
        if a.accepted
        and a.start >= ready
        and (a.client is None or (a.client.kind == GOOD and a.client.revoked is None))
    ]
    return min(ends, default=None)


# Admin calls -----------------------------------------------------------------


async def admin(
    run: Run, http: httpx.AsyncClient, path: str, body: Any = None, expect: int = 200
) -> int | str:
    route = "/admin/revoke-subject" if path.startswith("/admin/revoke-subject/") else path
    try:
        response = await http.post(path, json=body)
    except httpx.HTTPError as exc:
        run.admin_failures[f"{route}: {type(exc).__name__}"] += 1
        return type(exc).__name__
    if response.status_code == 500:
        run.admin_500 += 1
    if response.status_code != expect:
        run.admin_failures[f"{route}: HTTP {response.status_code}"] += 1
    return response.status_code


async def gather_limited(calls: Iterable[Any], limit: int = 20) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def one(call: Any) -> Any:
        async with semaphore:
            return await call

    return await asyncio.gather(*(one(call) for call in calls))


async def prepare_bad_tokens(run: Run, http: httpx.AsyncClient, raw: dict[int, str]) -> None:
    """Revoke and blocklist the tokens of those kinds before any client connects."""
    calls = []
    for client in run.clients:
        token = raw.get(client.index, client.token)
        if client.kind == "revoked token":
            calls.append(admin(run, http, "/admin/revoke-token", {"token": token}))
        elif client.kind == "revoked subject":
            calls.append(admin(run, http, f"/admin/revoke-subject/{client.sub}"))
        elif client.kind.startswith("blocklisted"):
            calls.append(admin(run, http, "/admin/blocklist", {"token": token}))
    statuses = await gather_limited(calls)
    if any(status != 200 for status in statuses):
        raise RuntimeError(f"preparing the revoked tokens failed: {dict(run.admin_failures)}")


async def revoke_round(run: Run, http: httpx.AsyncClient, number: int) -> None:
    """Revoke the tokens of some connected good clients and the subjects of others."""
    connected = [c for c in run.clients if c.kind == GOOD and c.open and c.revoked is None]
    random.Random(number).shuffle(connected)
    n_tokens, n_subjects = run.args.revoke_tokens, run.args.revoke_subjects
    picked = [("token", c) for c in connected[:n_tokens]]
    picked += [("subject", c) for c in connected[n_tokens : n_tokens + n_subjects]]

    async def revoke(how: str, client: Client) -> None:
        revocation = Revocation(how, number, requested_at=now())
        client.revoked = revocation
        if how == "token":
            status = await admin(run, http, "/admin/revoke-token", {"token": client.token})
        else:
            status = await admin(run, http, f"/admin/revoke-subject/{client.sub}")
        revocation.done_at = now()
        revocation.status = status if isinstance(status, int) else None
        run.revocations.append(revocation)
        if status != 200:
            client.revoked = None  # not revoked after all; counted in admin_failures

    await gather_limited(revoke(how, client) for how, client in picked)


async def outage(run: Run, redis: RedisServer, http: httpx.AsyncClient, probe: str) -> None:
    redis.kill()
    run.kill_at = now()
    await asyncio.sleep(min(0.5, run.args.outage / 2))
    # A revocation that cannot be stored must answer 503, never 500 nor 200.
    run.outage_revoke_status = await admin(
        run, http, "/admin/revoke-subject/outage-check", expect=503
    )
    await asyncio.sleep(max(0.0, run.kill_at + run.args.outage - now()))
    run.restart_at = now()
    prober = asyncio.create_task(probe_recovery(run, probe))
    run.ready_at = await redis.start()
    await prober


async def schedule(run: Run, redis: RedisServer, http: httpx.AsyncClient, probe: str) -> None:
    args = run.args

    async def at(offset: float) -> None:
        await asyncio.sleep(max(0.0, run.started_at + offset - now()))

    await at(args.revoke_at)
    await revoke_round(run, http, 1)
    await at(args.kill_at)
    await outage(run, redis, http, probe)
    await asyncio.sleep(args.revoke_after_recovery)
    await revoke_round(run, http, 2)


# The run ---------------------------------------------------------------------


def make_clients(args: argparse.Namespace, secret: str) -> tuple[list[Client], dict[int, str]]:
    """The clients in a shuffled order, and the raw tokens of those that send them mangled."""
    issuer: AuthX[Any] = AuthX(config=AuthXConfig(JWT_SECRET_KEY=secret))
    forger: AuthX[Any] = AuthX(config=AuthXConfig(JWT_SECRET_KEY=secrets.token_hex(32)))
    rng = random.Random(args.seed)
    bad = round(args.clients * args.bad_ratio)
    kinds = [BAD_KINDS[i % len(BAD_KINDS)] for i in range(bad)] + [GOOD] * (args.clients - bad)
    rng.shuffle(kinds)
    none_header = base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    clients: list[Client] = []
    raw: dict[int, str] = {}
    for index, kind in enumerate(kinds):
        sub = f"{kind.split()[0]}-{index}" if kind != GOOD else f"user-{index}"
        token = issuer.create_access_token(uid=sub)
        if kind == "expired":
            token = issuer.create_access_token(uid=sub, expiry=timedelta(seconds=-120))
        elif kind == "wrong signature":
            token = forger.create_access_token(uid=sub)
        elif kind == "alg none":
            token = f"{none_header}.{token.split('.')[1]}."
        elif kind in ("signature + '!!!!'", "blocklisted + '!!!!'"):
            raw[index] = token
            token += "!!!!"
        elif kind == "refresh token":
            token = issuer.create_refresh_token(uid=sub)
        elif kind == "garbage":
            token = (
                secrets.token_urlsafe(60)
                if index % 2
                else ".".join(secrets.token_urlsafe(n) for n in (12, 48, 32))
            )
        clients.append(Client(index, kind, token, sub, header=index % 2 == 1))
    return clients, raw


def find_redis_server() -> str:
    found = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(found).exists():
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    return found


async def execute(args: argparse.Namespace, tmp: Path) -> Run:
    secret = secrets.token_hex(32)
    redis = RedisServer(find_redis_server(), tmp / "redis", free_port())
    redis.directory.mkdir()
    server = UvicornServer(
        tmp,
        {
            "JWT_SECRET_KEY": secret,
            "JWT_STORE_URL": f"redis://127.0.0.1:{redis.port}/0{args.store_options}",
        },
    )
    clients, raw = make_clients(args, secret)
    probe = AuthX(config=AuthXConfig(JWT_SECRET_KEY=secret)).create_access_token(uid="probe")
    try:
        await redis.start()
        await server.start()
        base = f"http://127.0.0.1:{server.port}"
        run = Run(
            args, f"ws://127.0.0.1:{server.port}/ws", clients, asyncio.Semaphore(args.inflight)
        )
        limits = httpx.Limits(max_connections=20)
        async with httpx.AsyncClient(
            base_url=base, timeout=10, trust_env=False, limits=limits
        ) as http:
            await prepare_bad_tokens(run, http, raw)
            # Warm-up: the store is opened and subscribed on the first handshake.
            for _ in range(3):
                outcome, _, ws = await handshake(run.url, probe, False, "probe")
                if ws is not None:
                    await ws.close()
            if outcome != "accepted":
                raise RuntimeError(f"warm-up handshake: {outcome}\n{server.log()}")
            cpu_before = server.cpu_seconds()
            run.started_at, run.started_wall = now(), time.time()
            run.stop_at = run.started_at + args.duration
            spacing = args.ramp / max(1, len(clients))
            tasks = [
                asyncio.create_task(run_client(run, c, run.started_at + i * spacing))
                for i, c in enumerate(clients)
            ]
            print(
                f"  started {len(clients)} clients over {args.ramp:.0f} s; the run lasts "
                f"{args.duration:.0f} s",
                flush=True,
            )
            await schedule(run, redis, http, probe)
            print(
                f"  Redis killed at {run.at(run.kill_at)}, answering again at "
                f"{run.at(run.ready_at)}; waiting for the clients",
                flush=True,
            )
            done, pending = await asyncio.wait(tasks, timeout=max(0.0, run.stop_at - now()) + GRACE)
            for task in pending:
                task.cancel()
            for client in clients:
                if client.open is not None:
                    client.open.transport.abort()
            await asyncio.gather(*pending, return_exceptions=True)
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            cpu_after = server.cpu_seconds()
            if cpu_before is not None and cpu_after is not None:
                run.server_cpu = cpu_after - cpu_before
            run.sessions_left = await sessions_left(http)
            run.server_exit = server.proc.poll() if server.proc is not None else None
        run.recovered_at = first_recovery(run)
        await asyncio.sleep(0.5)  # let the server write its last log lines
        return run
    finally:
        server.stop()
        redis.stop()


async def sessions_left(http: httpx.AsyncClient, seconds: float = 5.0) -> int | None:
    """The server's open sessions once every client has gone (0 expected)."""
    deadline = now() + seconds
    shown: int | None = None
    while now() < deadline:
        try:
            shown = int((await http.get("/admin/stats")).json()["connections"])
        except (httpx.HTTPError, ValueError, KeyError):
            return None
        if shown == 0:
            return 0
        await asyncio.sleep(0.2)
    return shown


# Report ----------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


@dataclass
class Verdicts:
    wrong_accepts: collections.Counter[str] = field(default_factory=collections.Counter)
    wrong_rejects: collections.Counter[str] = field(default_factory=collections.Counter)
    outage_rejects: collections.Counter[str] = field(default_factory=collections.Counter)
    wrong_reject_seconds: collections.Counter[str] = field(default_factory=collections.Counter)
    by_kind: dict[str, collections.Counter[str]] = field(default_factory=dict)
    either: int = 0


def expectation(attempt: Attempt) -> str:
    client = attempt.client
    if client is None or client.kind != GOOD:
        return "accept" if client is None else "reject"
    revoked = client.revoked
    if revoked is None or attempt.end < revoked.requested_at:
        return "accept"
    # A handshake under way while the revocation was being made may go either way.
    return "reject" if attempt.start >= revoked.done_at else "either"


def judge(run: Run) -> Verdicts:
    verdicts = Verdicts()
    window = (run.kill_at or float("inf"), run.recovered_at or float("inf"))
    for attempt in run.attempts:
        assert attempt.client is not None
        client = attempt.client
        label = client.kind if client.revoked is None else f"revoked mid-run ({client.revoked.how})"
        if client.kind == GOOD and client.revoked is not None:
            label += {"reject": ", after", "accept": ", before", "either": ", during"}[
                expectation(attempt)
            ]
        verdicts.by_kind.setdefault(label, collections.Counter())[attempt.outcome] += 1
        expected = expectation(attempt)
        in_outage = attempt.end >= window[0] and attempt.start <= window[1]
        if attempt.outcome == "wrong subject":
            verdicts.wrong_accepts["greeting with another subject"] += 1
        elif expected == "either":
            verdicts.either += 1
        elif expected == "accept" and not attempt.accepted:
            if in_outage:
                verdicts.outage_rejects[attempt.outcome] += 1
            else:
                verdicts.wrong_rejects[attempt.outcome] += 1
                second = int(attempt.end - run.started_at)
                verdicts.wrong_reject_seconds[str(second)] += 1
        elif expected == "reject" and attempt.accepted:
            verdicts.wrong_accepts[label] += 1
    return verdicts


@dataclass
class RevocationCheck:
    revoked: collections.Counter[str] = field(default_factory=collections.Counter)
    live: int = 0
    closed_4004: int = 0
    left_open: collections.Counter[str] = field(default_factory=collections.Counter)
    late: list[float] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    close_ms: list[float] = field(default_factory=list)
    later_refused: int = 0
    later_accepted: int = 0


def check_revocations(run: Run) -> RevocationCheck:
    check = RevocationCheck()
    for client in run.clients:
        revoked = client.revoked
        if revoked is None:
            continue
        check.revoked[f"round {revoked.round} by {revoked.how}"] += 1
        for conn in client.conns:
            if conn.closed_at is not None and conn.closed_at < revoked.requested_at:
                continue  # closed before the revocation
            if conn.opened_at >= revoked.done_at:
                continue  # accepted after it: a wrong accept, counted with the handshakes
            if (
                not conn.by_server
                and conn.closed_at is not None
                and conn.closed_at < revoked.done_at
            ):
                continue  # the client left on its own while the revocation was under way
            check.live += 1
            closed_ms = (
                None if conn.closed_at is None else (conn.closed_at - revoked.requested_at) * 1000
            )
            if conn.by_server and conn.code == 4004 and closed_ms is not None:
                if closed_ms <= run.args.revoke_close_limit * 1000:
                    check.closed_4004 += 1
                    check.close_ms.append(closed_ms)
                    continue
                check.late.append(closed_ms)
            else:
                who = "server" if conn.by_server else "client, still open after the wait"
                check.left_open[f"closed by {who}: {conn.code} {conn.reason!r}"] += 1

            def rel(moment: float, revoked: Revocation = revoked) -> str:
                return f"{(moment - revoked.requested_at) * 1000:+.0f} ms"

            check.details.append(
                f"{client.sub} (by {revoked.how}, round {revoked.round}): handshake began "
                f"{rel(conn.handshake_at)}, accepted {rel(conn.opened_at)}, revocation "
                f"answered {rel(revoked.done_at)}, closed {rel(conn.closed_at or now())} "
                f"by {'server' if conn.by_server else 'client'} ({conn.code})"
            )
        for attempt in run.attempts:
            if attempt.client is client and attempt.start >= revoked.done_at:
                if attempt.accepted:
                    check.later_accepted += 1
                else:
                    check.later_refused += 1
    return check


_STAMPED = re.compile(r"^(\d+\.\d+) (WARNING: .*)$")


@dataclass
class Warned:
    count: int = 0
    first: float = float("inf")
    last: float = float("-inf")


def server_log_problems(log: str) -> tuple[list[str], dict[str, Warned]]:
    """ERROR and Traceback lines, and the WARNING lines by message (with their times)."""
    errors = [line for line in log.splitlines() if "ERROR" in line or "Traceback" in line]
    warnings: dict[str, Warned] = {}
    for line in log.splitlines():
        if match := _STAMPED.match(line):
            message = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", match.group(2))
            warned = warnings.setdefault(message[:120], Warned())
            warned.count += 1
            warned.first = min(warned.first, float(match.group(1)))
            warned.last = max(warned.last, float(match.group(1)))
    return errors, warnings


def counts(counter: collections.Counter[str], by_key: bool = False) -> str:
    items = sorted(counter.items(), key=lambda kv: int(kv[0])) if by_key else counter.most_common()
    return ", ".join(f"{key}: {n}" for key, n in items) or "-"


def report(run: Run, log: str, wall: float) -> int:
    args = run.args
    verdicts = judge(run)
    revocations = check_revocations(run)
    errors, warnings = server_log_problems(log)
    denial_500 = sum(a.outcome == "HTTP 500" for a in [*run.attempts, *run.probe_attempts])
    window_end = run.recovered_at
    outside = [
        a
        for a in run.attempts
        if a.accepted
        and a.client is not None
        and a.client.kind == GOOD
        and (run.kill_at is None or a.end < run.kill_at or (window_end and a.start > window_end))
    ]
    refused = [a for a in run.attempts if a.outcome.startswith("HTTP 4")]
    accepted = sum(a.accepted for a in run.attempts)
    no_answer = sum(a.outcome == "timeout" or a.outcome.startswith("error") for a in run.attempts)
    good = sum(c.kind == GOOD for c in run.clients)
    server_errors = len(errors) + denial_500 + run.admin_500 + (run.server_exit is not None)
    # Accepted handshakes of revoked tokens are among verdicts.wrong_accepts already.
    wrong_accepts = sum(verdicts.wrong_accepts.values()) + sum(revocations.left_open.values())
    wrong_accepts += len(revocations.late)
    wrong_rejects = sum(verdicts.wrong_rejects.values())
    recovery_ms = (
        (run.recovered_at - run.ready_at) * 1000
        if run.recovered_at is not None and run.ready_at is not None
        else None
    )

    def row(label: str, value: str, target: str = "") -> None:
        print(f"  {label:<38} {value}{f'   [{target}]' if target else ''}")

    def ok(value: int) -> str:
        return "target 0: ok" if value == 0 else "target 0: FAILED"

    print(
        f"\nLoad run: {len(run.clients)} WebSocket clients ({good} good, "
        f"{len(run.clients) - good} bad over {len(BAD_KINDS)} kinds), one uvicorn process, "
        f"Redis store{args.store_options}, 127.0.0.1, {args.duration:.0f} s"
    )
    row(
        "handshakes",
        f"{len(run.attempts)} ({accepted} accepted, {len(refused)} refused 4xx, "
        f"{sum(a.outcome.startswith('HTTP 5') for a in run.attempts)} refused 5xx, "
        f"{no_answer} unanswered) + {len(run.probe_attempts)} recovery probes",
    )
    rate = len(run.attempts) / args.duration
    cpu = f", server CPU {run.server_cpu:.1f} s" if run.server_cpu is not None else ""
    row("rate / peak open connections", f"{rate:.0f} handshakes/s / {run.open_peak}{cpu}")
    row(
        "server errors",
        f"{server_errors} (log ERROR/Traceback lines {len(errors)}, HTTP 500 handshake "
        f"answers {denial_500}, admin 500s {run.admin_500}"
        f"{'' if run.server_exit is None else f', UVICORN EXITED ({run.server_exit})'})",
        ok(server_errors),
    )
    row("wrong accepts", f"{wrong_accepts}", ok(wrong_accepts))
    for what, n in verdicts.wrong_accepts.most_common():
        row(f"  {what}", str(n))
    for what, n in revocations.left_open.most_common():
        row("  revoked connection left open", f"{n} ({what})")
    if revocations.late:
        late = ", ".join(f"{ms:.0f}" for ms in sorted(revocations.late))
        row("  revoked connection closed late", f"{len(revocations.late)} (after {late} ms)")
    row("wrong rejects outside the outage", f"{wrong_rejects}", ok(wrong_rejects))
    if wrong_rejects:
        row("  by outcome", counts(verdicts.wrong_rejects))
        row("  when (second of the run: count)", counts(verdicts.wrong_reject_seconds, True))
    row(
        "rejects during the outage (good tokens)",
        f"{sum(verdicts.outage_rejects.values())} ({counts(verdicts.outage_rejects)})",
    )
    accepted_ms = [a.latency_ms for a in outside]
    refused_ms = [a.latency_ms for a in refused]
    row(
        "handshake latency, accepted (p50/p99)",
        f"{percentile(accepted_ms, 50):.1f} / {percentile(accepted_ms, 99):.1f} ms "
        f"({len(accepted_ms)} good handshakes outside the outage)",
    )
    row(
        "handshake latency, refused 4xx (p50/p99)",
        f"{percentile(refused_ms, 50):.1f} / {percentile(refused_ms, 99):.1f} ms",
    )
    if run.kill_at is not None and run.restart_at is not None:
        row(
            "Redis outage",
            f"SIGKILL at {run.at(run.kill_at)}, restarted at {run.at(run.restart_at)}, "
            f"answering PING at {run.at(run.ready_at)}",
        )
    row(
        "recovery time after Redis returns",
        "NOT RECOVERED"
        if recovery_ms is None
        else f"{recovery_ms:.0f} ms (first good handshake accepted at {run.at(run.recovered_at)})",
    )
    row(
        "revocation during the outage",
        f"HTTP {run.outage_revoke_status}",
        "expected 503: ok" if run.outage_revoke_status == 503 else "expected 503: UNEXPECTED",
    )
    closes = sorted(revocations.close_ms)
    row(
        "revoked mid-run",
        f"{counts(revocations.revoked)}; live connections closed with 4004: "
        f"{revocations.closed_4004}/{revocations.live}",
    )
    if closes:
        row(
            "  revocation to close (median/max)",
            f"{percentile(closes, 50):.0f} / {closes[-1]:.0f} ms",
            f"limit {args.revoke_close_limit * 1000:.0f} ms",
        )
    row(
        "  later handshakes with them",
        f"{revocations.later_refused} refused, {revocations.later_accepted} accepted",
    )
    row("server sessions after the clients left", str(run.sessions_left), "expected 0")
    if run.admin_failures:
        row("admin calls not answered 200", counts(run.admin_failures))
    row("wall time", f"{wall:.1f} s")

    print("\n  handshakes by token kind (outcome: count)")
    order = [GOOD, *BAD_KINDS]
    for kind in sorted(verdicts.by_kind, key=lambda k: (order.index(k) if k in order else 99, k)):
        print(f"    {kind:<34} {counts(verdicts.by_kind[kind])}")
    if revocations.details:
        print("\n  revoked connections not closed in time:")
        for line in revocations.details[:10]:
            print(f"    {line}")
    if errors:
        print("\n  server log errors (first 10):")
        for line in errors[:10]:
            print(f"    {line[:200]}")
    if warnings:
        print("\n  server log warnings (count, first and last second of the run, message):")
        for line, warned in sorted(warnings.items(), key=lambda kv: -kv[1].count)[:8]:
            first, last = warned.first - run.started_wall, warned.last - run.started_wall
            print(f"    {warned.count:>6}  +{first:5.1f} .. +{last:5.1f} s  {line}")
    failed = server_errors or wrong_accepts or wrong_rejects or recovery_ms is None
    print(f"\n  result: {'FAILED' if failed else 'ok'}")
    return 1 if failed else 0


# Main ------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n", 1)[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--clients", type=int, default=2000, help="concurrent client tasks")
    parser.add_argument("--bad-ratio", type=float, default=0.2, help="share with bad tokens")
    parser.add_argument("--duration", type=float, default=40.0, help="seconds of load")
    parser.add_argument("--ramp", type=float, default=6.0, help="seconds to start the clients")
    parser.add_argument("--inflight", type=int, default=200, help="handshakes under way at most")
    parser.add_argument("--hold-min", type=float, default=3.0, help="seconds a good client stays")
    parser.add_argument("--hold-max", type=float, default=8.0)
    parser.add_argument("--retry-min", type=float, default=1.0, help="pause after a refusal")
    parser.add_argument("--retry-max", type=float, default=3.0)
    parser.add_argument("--revoke-at", type=float, default=10.0, help="first revocation round")
    parser.add_argument("--kill-at", type=float, default=17.0, help="when Redis is killed")
    parser.add_argument("--outage", type=float, default=3.0, help="seconds Redis stays down")
    parser.add_argument(
        "--revoke-after-recovery", type=float, default=5.0, help="second round, after restart"
    )
    parser.add_argument("--revoke-tokens", type=int, default=20, help="tokens revoked per round")
    parser.add_argument("--revoke-subjects", type=int, default=20, help="subjects per round")
    parser.add_argument(
        "--store-options",
        default="",
        help="appended to the store URL, e.g. '?max_connections=1000' (redis-py pool size)",
    )
    parser.add_argument(
        "--revoke-close-limit",
        type=float,
        default=3.0,
        help="seconds within which a revoked connection must be closed",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=150.0, help="overall cap in seconds")
    args = parser.parse_args()
    if not 0 <= args.bad_ratio <= 1 or args.clients < 1:
        parser.error("--clients must be positive and --bad-ratio within [0, 1]")
    if not args.revoke_at < args.kill_at < args.duration:
        parser.error("expected --revoke-at < --kill-at < --duration")
    return args


async def main(args: argparse.Namespace) -> int:
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="authx-load-") as tmp:
        try:
            async with asyncio.timeout(args.timeout):
                run = await execute(args, Path(tmp))
        except TimeoutError:
            print(f"!! hard timeout of {args.timeout:.0f} s reached", file=sys.stderr)
            return 2
        except RuntimeError as exc:
            print(f"!! {exc}", file=sys.stderr)
            return 2
        log = (Path(tmp) / "uvicorn.log").read_text(errors="replace")
    return report(run, log, time.perf_counter() - wall)


if __name__ == "__main__":
    arguments = parse_args()
    limit = raise_fd_limit()
    needed = 2 * arguments.clients + 200
    print(
        f"load: {arguments.clients} clients, bad ratio {arguments.bad_ratio}, RLIMIT_NOFILE "
        f"{limit}{' (too low: ' + str(needed) + ' needed)' if limit < needed else ''}, "
        f"{os.cpu_count()} CPUs, python {sys.version.split()[0]}",
        flush=True,
    )
    sys.exit(asyncio.run(main(arguments)))
