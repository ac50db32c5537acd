"""A handshake flood from one address against the valid handshakes of everyone else.

Run with ``.venv/bin/python bench/flood.py`` (or ``make bench``). From the issue: one
address floods 5,000 bad handshakes while other clients keep opening valid ones; print
the flood's server CPU per rejected handshake against a full authentication, and the
valid clients' handshake rate during the flood as a ratio of their rate without it
(goal: at least 0.8).

Three uvicorn processes (``bench/flood_app.py``) on 127.0.0.1, each with uvicorn's proxy
headers off and ``JWT_WS_TRUSTED_PROXIES=["127.0.0.1"]``, so that the ``X-Forwarded-For``
each client sends is the address AuthX counts:

- limit on: every other setting the default, the tarpit included: a refused handshake is
  held ``JWT_WS_REFUSAL_DELAY`` (1 s) before its 429, at most ``JWT_WS_MAX_DELAYED``
  (1,000) at a time;
- limit on, no tarpit: the same with ``JWT_WS_REFUSAL_DELAY=0``, every refusal answered
  at once: what the limit alone buys, and so what the tarpit adds to it;
- limit off: ``JWT_WS_RATE_LIMIT=off``, every flood handshake verified (HMAC and all)
  and answered 401.

Each serves ``/ws`` (``WS_AUTH_REQUIRED``; accepts, sends the subject and closes),
``/ws/refused`` (429 without AuthX, the floor of any refusal on this stack) and
``GET /settings`` (the admission settings the process runs with, printed first). The
bare 429 flood runs on the no-tarpit server, in its rounds (its settings do not touch
``/ws/refused``; its rounds are the short ones, and it fits in the time). A round on a server:

- A, no flood: the valid client opens ``VALID_HANDSHAKES`` handshakes one after another;
  its rate, and the server's CPU time per handshake (a full authentication, the accept,
  one message and the close);
- then each flood (on ``/ws`` with an HS256 token signed with the wrong key; on the
  no-tarpit server also on ``/ws/refused``; the order rotates), twice:

  - alone: ``FLOOD_HANDSHAKES`` handshakes from 203.0.113.66, ``FLOOD_CONCURRENCY`` at a
    time, nothing beside them. The server's CPU time during it over its handshakes is
    the flood's CPU per handshake;
  - beside the valid client, which keeps going as in A until the flood is over: its
    rate then over its rate in A is the ratio of the goal.

  The two take turns at going first, round by round.

Why the flood alone for the CPU: with the tarpit the valid client runs at nearly full
speed beside the flood and does most of the server's work then; taking its handshakes
out at A's cost each (as this bench first did) left an error larger than the flood's
own cost, which came out above a full authentication.

The flood runs 256 at a time: with the tarpit a flooder that waits for its answers gets
its concurrency per ``JWT_WS_REFUSAL_DELAY``, and 48 at a time (the first default here)
would take 100 s for 5,000 handshakes. 256 take about 20 s, within ``PHASE_CAP``, and
stay under ``JWT_WS_MAX_DELAYED``, so that every refusal is held. Those 20 s are the
same on any machine, twice a round: two rounds of the four floods take about two
minutes, and a third round starts only if it should end within ``RUN_BUDGET`` (the
longest round so far its guide), so at most ``ROUNDS``, at least ``MIN_ROUNDS``. The
output says how many ran. Phase A runs ``VALID_HANDSHAKES`` (about 2 s): shorter, its
rate was the noisy half of the ratio.

A slow flood costs the server more per handshake than a fast one: at a few hundred a
second each turn of the event loop serves a handshake or two, where thousands a second
share their turns (``--rate 240`` shows it without the tarpit). The tarpitted flood's
CPU per handshake is read with that in mind: what the server spends on it in total
falls with its rate.

Choices that keep the numbers about the server:

- The valid client stands for everyone but the flooder: it rotates through ``USERS``
  addresses of the benchmarking network 198.18.0.0/15, one subject each. From a single
  address it would be held to the default ``JWT_WS_RATE_LIMIT`` (10/s) by its own bucket,
  and the ratio would measure the bucket, not the server.
- The flooder runs in a process of its own, so that its work does not delay the valid
  client's event loop, and it writes a raw HTTP Upgrade request on an asyncio stream and
  reads the answer to the end instead of using the ``websockets`` client, which costs
  about twice the client CPU per handshake (both are measured and printed). The machine
  has two CPUs for the server, the flooder and the valid client: the cheaper the
  flooder, the less it takes from the server.
- The servers take turns, round by round (the first one rotating), so that the noise of
  a shared machine falls on all alike.
- Server CPU time is read from ``/proc/<pid>/stat`` (Linux; resolution one clock tick),
  as in ``bench/ws_auth.py``; it includes uvicorn's own ticks (ten a second, a few µs a
  flood handshake over a 20 s flood). Medians over the rounds.

By default the flood is closed-loop, as an attacker's tool would run: each of its
connections starts the next handshake as soon as the last one is answered, so it takes
whatever the server gives. ``--rate`` paces it instead (``--flood 1000 --rate 250``),
``--concurrency`` sets how many are under way at a time.

Every phase stops at ``PHASE_CAP``; a flood cut short is reported. A benchmark reports:
the exit status is 0 unless the run could not be made.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import jwt
import websockets
from websockets.exceptions import InvalidStatus, WebSocketException

from authx import AuthX, AuthXConfig
from bench.summary import summary_line

ROOT = Path(__file__).resolve().parent.parent
SECRET = "flood-bench-secret-key-that-is-long-enough-for-hs256"
WRONG_SECRET = "not-the-server-key-but-just-as-long-for-hs256-signing"

FLOODER = "203.0.113.66"
USERS = 500  # valid client addresses and subjects, 198.18.0.0/15
FLOOD_HANDSHAKES = 5000  # per flood; --flood
FLOOD_CONCURRENCY = 256  # flood handshakes under way at a time; --concurrency
VALID_HANDSHAKES = 1500  # per phase A (about 2 s); beside a flood, it runs as long as that
WARMUP_HANDSHAKES = 50
CLIENT_COST_HANDSHAKES = 200
ROUNDS = 3  # at most, a server
MIN_ROUNDS = 2  # at least, whatever the time
PHASE_CAP = 30.0  # seconds, any phase
RUN_BUDGET = 150.0  # seconds from the start, within which a round past MIN_ROUNDS must end
OPEN_TIMEOUT = 5.0
STARTUP_TIMEOUT = 20.0
GOAL = 0.8

TRUSTED = {"JWT_WS_TRUSTED_PROXIES": '["127.0.0.1"]'}
LIMIT_ON, NO_TARPIT, LIMIT_OFF = "limit on", "limit on, no tarpit", "limit off"
#: Each server's environment beyond ``TRUSTED`` and the secret.
SERVERS: dict[str, dict[str, str]] = {
    LIMIT_ON: {},
    NO_TARPIT: {"JWT_WS_REFUSAL_DELAY": "0"},
    LIMIT_OFF: {"JWT_WS_RATE_LIMIT": "off"},
}


# Server ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the server so far (Linux only)."""
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def settings(self) -> dict[str, object]:
        """The admission settings the server runs with (``GET /settings``)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=OPEN_TIMEOUT)
        try:
            connection.request("GET", "/settings")
            body = connection.getresponse().read()
        finally:
            connection.close()
        settings: dict[str, object] = json.loads(body)
        return settings


def _accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def uvicorn_server(settings: dict[str, str]) -> Iterator[Server]:
    """uvicorn serving ``bench.flood_app`` on 127.0.0.1 with ``settings`` in its environment."""
    with tempfile.TemporaryDirectory(prefix="authx-flood-") as tmp:
        log_path = Path(tmp) / "server.log"
        port = free_port()
        command = [
            sys.executable,
            *("-m", "uvicorn", "bench.flood_app:app", "--host", "127.0.0.1"),
            *("--port", str(port), "--log-level", "warning", "--no-access-log"),
            *("--no-proxy-headers", "--backlog", "2048"),
        ]
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "UVICORN_PROXY_HEADERS": "false",
            "JWT_SECRET_KEY": SECRET,
            **settings,
        }
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while not _accepting(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"uvicorn did not start:\n{log_path.read_text()}")
                time.sleep(0.05)
            yield Server(process, log_path, port)
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)


# Flooder (in a process of its own) -------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How the flooder floods: ``count`` handshakes, ``concurrency`` at a time, and
    either as fast as the server answers (``rate`` 0) or started ``rate`` a second."""

    count: int
    concurrency: int
    rate: float

    def describe(self) -> str:
        pace = f"started at {self.rate:g}/s" if self.rate else "as fast as the server answers"
        return f"{self.count} handshakes, {self.concurrency} at a time, {pace}"


@dataclass
class Flood:
    statuses: Counter[str]
    seconds: float
    client_cpu: float  # the flooder's own CPU time

    @property
    def handshakes(self) -> int:
        return sum(self.statuses.values())


def upgrade_request(port: int, target: str, forwarded: str) -> bytes:
    return (
        f"GET {target} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        f"X-Forwarded-For: {forwarded}\r\n"
        "\r\n"
    ).encode("ascii")


async def raw_handshake(port: int, request: bytes) -> str:
    """Send ``request``, read the answer until the server closes; the status code."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        answer = await reader.read()
    finally:
        writer.close()
    status = answer.split(b" ", 2)[1:2]
    return status[0].decode("ascii", "replace") if status else "no answer"


async def _flood(port: int, target: str, plan: Plan) -> Flood:
    request = upgrade_request(port, target, FLOODER)
    statuses: Counter[str] = Counter()
    started = 0
    start = time.perf_counter()
    deadline = start + PHASE_CAP

    async def worker() -> None:
        nonlocal started
        while started < plan.count and time.perf_counter() < deadline:
            index, started = started, started + 1
            if plan.rate:
                await asyncio.sleep(max(0.0, start + index / plan.rate - time.perf_counter()))
            try:
                async with asyncio.timeout(OPEN_TIMEOUT):
                    statuses[await raw_handshake(port, request)] += 1
            except (OSError, TimeoutError) as exc:
                statuses[type(exc).__name__] += 1

    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(plan.concurrency)))
    return Flood(statuses, time.perf_counter() - start, time.process_time() - cpu)


def flood(port: int, target: str, plan: Plan) -> Flood:
    """The flood of ``plan`` on ``target`` from ``FLOODER``, within ``PHASE_CAP``."""
    return asyncio.run(_flood(port, target, plan))


# Valid client ----------------------------------------------------------------


@dataclass
class Users:
    """Tokens and addresses of ``USERS`` valid users, used in turn."""

    tokens: list[str]
    next: int = 0

    def take(self) -> tuple[str, str, str]:
        """(subject, token, address) of the next user."""
        i = self.next % len(self.tokens)
        self.next += 1
        return f"user-{i}", self.tokens[i], f"198.18.{i // 250}.{i % 250 + 1}"


@dataclass
class Valid:
    handshakes: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.handshakes / self.seconds if self.seconds else 0.0


async def valid_handshake(port: int, users: Users) -> str | None:
    """One complete session as a user sees it; None when it went as expected, else why."""
    sub, token, address = users.take()
    try:
        async with asyncio.timeout(OPEN_TIMEOUT):
            async with websockets.connect(
                f"ws://127.0.0.1:{port}/ws?token={token}",
                additional_headers={"X-Forwarded-For": address},
                compression=None,
            ) as ws:
                greeting = await ws.recv()
    except InvalidStatus as exc:
        return f"HTTP {exc.response.status_code}"
    except (OSError, TimeoutError, WebSocketException) as exc:
        return type(exc).__name__
    return None if greeting == sub else "wrong greeting"


async def valid_client(
    port: int, users: Users, count: int, until: asyncio.Future[Flood] | None = None
) -> Valid:
    """Handshakes one after another: ``count`` of them, or while ``until`` is pending."""
    result = Valid()
    deadline = time.monotonic() + PHASE_CAP
    start = time.perf_counter()
    while time.monotonic() < deadline and (
        result.handshakes < count if until is None else not until.done()
    ):
        failure = await valid_handshake(port, users)
        if failure is None:
            result.handshakes += 1
        else:
            result.failures[failure] += 1
    result.seconds = time.perf_counter() - start
    return result


# Rounds ----------------------------------------------------------------------


@dataclass
class FloodPhases:
    """One flood alone, and the same flood beside the valid client."""

    alone: Flood
    alone_cpu: float  # the server's CPU time during the flood alone
    beside: Flood
    during: Valid  # the valid client beside the flood


@dataclass
class Round:
    baseline: Valid
    baseline_cpu: float
    floods: dict[str, FloodPhases]

    @property
    def valid_cpu_us(self) -> float:
        """Server CPU per valid handshake, without a flood: a full authentication."""
        return self.baseline_cpu / self.baseline.handshakes * 1e6

    def flood_cpu_us(self, name: str) -> float:
        """Server CPU per flood handshake, from the flood alone."""
        phases = self.floods[name]
        return phases.alone_cpu / phases.alone.handshakes * 1e6

    def ratio(self, name: str) -> float:
        """The valid client's rate beside the flood over its rate alone."""
        return self.floods[name].during.rate / self.baseline.rate


async def flood_phases(
    pool: ProcessPoolExecutor,
    server: Server,
    users: Users,
    target: str,
    plan: Plan,
    alone_first: bool,
) -> FloodPhases:
    """The flood on ``target`` (in the flooder's process) alone, and again beside the
    valid client (here), in either order."""
    loop = asyncio.get_running_loop()

    async def alone() -> tuple[Flood, float]:
        cpu = server.cpu_seconds()
        result = await loop.run_in_executor(pool, flood, server.port, target, plan)
        return result, server.cpu_seconds() - cpu

    async def beside() -> tuple[Flood, Valid]:
        flooding = loop.run_in_executor(pool, flood, server.port, target, plan)
        during = await valid_client(server.port, users, 0, until=flooding)
        return await flooding, during

    if alone_first:
        (alone_flood, alone_cpu), (beside_flood, during) = await alone(), await beside()
    else:
        (beside_flood, during), (alone_flood, alone_cpu) = await beside(), await alone()
    return FloodPhases(alone_flood, alone_cpu, beside_flood, during)


def rotated(names: list[str], shift: int) -> list[str]:
    shift %= len(names)
    return names[shift:] + names[:shift]


async def one_round(
    pool: ProcessPoolExecutor,
    server: Server,
    users: Users,
    targets: dict[str, str],
    plan: Plan,
    shift: int,
) -> Round:
    """A (the valid client alone), then each of ``targets`` flooded alone and beside the
    valid client; the order of the floods, and of alone and beside, set by ``shift``."""
    cpu = server.cpu_seconds()
    baseline = await valid_client(server.port, users, VALID_HANDSHAKES)
    baseline_cpu = server.cpu_seconds() - cpu
    floods = {
        name: await flood_phases(pool, server, users, targets[name], plan, shift % 2 == 0)
        for name in rotated(list(targets), shift)
    }
    return Round(baseline, baseline_cpu, floods)


async def rounds(
    pool: ProcessPoolExecutor,
    servers: dict[str, tuple[Server, dict[str, str]]],
    users: Users,
    plan: Plan,
    deadline: float,
) -> tuple[dict[str, list[Round]], list[float]]:
    """Rounds on every server in turn (the first server rotating), so that the noise of a
    shared machine falls on all alike: ``MIN_ROUNDS``, then up to ``ROUNDS`` as long as
    one more should end before ``deadline``. The rounds, and how long each took."""
    for server, _ in servers.values():
        warm = await valid_client(server.port, users, WARMUP_HANDSHAKES)
        if warm.failures or not warm.handshakes:
            raise RuntimeError(f"warm-up failed: {dict(warm.failures)}\n{server.log()}")
    done: dict[str, list[Round]] = {name: [] for name in servers}
    took: list[float] = []
    for index in range(ROUNDS):
        if index >= MIN_ROUNDS and time.monotonic() + max(took) > deadline:
            break
        start = time.monotonic()
        for name in rotated(list(servers), index):
            server, targets = servers[name]
            done[name].append(await one_round(pool, server, users, targets, plan, index))
        took.append(time.monotonic() - start)
    return done, took


def server_errors(server: Server) -> list[str]:
    return [line for line in server.log().splitlines() if "ERROR" in line or "Traceback" in line]


async def client_cost(port: int, target: str) -> tuple[float, float]:
    """The flooder's CPU per refused handshake (µs): raw request, and ``websockets``."""
    request = upgrade_request(port, target, FLOODER)
    n = CLIENT_COST_HANDSHAKES
    cpu = time.process_time()
    for _ in range(n):
        await raw_handshake(port, request)
    raw = (time.process_time() - cpu) / n * 1e6
    cpu = time.process_time()
    for _ in range(n):
        with contextlib.suppress(InvalidStatus):
            async with websockets.connect(
                f"ws://127.0.0.1:{port}{target}",
                additional_headers={"X-Forwarded-For": FLOODER},
                compression=None,
            ):
                pass
    return raw, (time.process_time() - cpu) / n * 1e6


# Report ----------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class Column:
    """One kind of flood on one server, summarized over its rounds (medians)."""

    label: str
    rounds: list[Round]
    target: str

    def _phases(self) -> list[FloodPhases]:
        return [r.floods[self.target] for r in self.rounds]

    @property
    def round_flood_cpu(self) -> list[float]:
        return [r.flood_cpu_us(self.target) for r in self.rounds]

    @property
    def flood_cpu_us(self) -> float:
        return median(self.round_flood_cpu)

    @property
    def flood_cpu_share(self) -> float:
        """The server's CPU time during the flood alone over its length, in % of a CPU."""
        return median([p.alone_cpu / p.alone.seconds * 100 for p in self._phases()])

    @property
    def valid_cpu_us(self) -> float:
        return median([r.valid_cpu_us for r in self.rounds])

    @property
    def rate_without(self) -> float:
        return median([r.baseline.rate for r in self.rounds])

    @property
    def rate_during(self) -> float:
        return median([p.during.rate for p in self._phases()])

    @property
    def ratio(self) -> float:
        return self.rate_during / self.rate_without

    @property
    def round_ratios(self) -> list[float]:
        return [r.ratio(self.target) for r in self.rounds]

    @property
    def flood_rate_alone(self) -> float:
        return median([p.alone.handshakes / p.alone.seconds for p in self._phases()])

    @property
    def flood_rate_beside(self) -> float:
        return median([p.beside.handshakes / p.beside.seconds for p in self._phases()])

    @property
    def longest_floods(self) -> str:
        """The longest flood alone, and beside the valid client (s)."""
        alone = max(p.alone.seconds for p in self._phases())
        beside = max(p.beside.seconds for p in self._phases())
        return f"{alone:.1f} / {beside:.1f}"

    @property
    def flooder_cpu_us(self) -> float:
        return median([p.alone.client_cpu / p.alone.handshakes * 1e6 for p in self._phases()])

    @property
    def statuses(self) -> Counter[str]:
        return sum((p.alone.statuses + p.beside.statuses for p in self._phases()), Counter())

    @property
    def failures(self) -> Counter[str]:
        return sum((p.during.failures for p in self._phases()), Counter())

    def cut_short(self, plan: Plan) -> int:
        """Floods that did not complete within ``PHASE_CAP``."""
        return sum(f.handshakes < plan.count for p in self._phases() for f in (p.alone, p.beside))


def counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key} x {n}" for key, n in counter.most_common()) or "none"


def verdict(ratio: float) -> str:
    return "PASS" if ratio >= GOAL else "MISS"


def report(columns: dict[str, Column], plan: Plan, took: list[float]) -> None:
    shown = list(columns.values())
    on, bare = columns[LIMIT_ON], columns.get("bare")
    no_tarpit, off = columns[NO_TARPIT], columns[LIMIT_OFF]

    def row(label: str, *cells: str) -> None:
        print(f"  {label:<40}" + "".join(f"{cell:>22}" for cell in cells))

    def number(label: str, value: Callable[[Column], float], digits: int = 0) -> None:
        row(label, *(f"{value(c):.{digits}f}" for c in shown))

    def each(values: Callable[[Column], list[float]], digits: int = 0) -> list[str]:
        return [" ".join(f"{x:.{digits}f}" for x in values(c)) for c in shown]

    print(
        f"\n{len(took)} rounds a server (each round, all servers: "
        f"{', '.join(f'{t:.0f}' for t in took)} s), the servers taking turns; medians. "
        f"A round: {VALID_HANDSHAKES} valid handshakes alone (A), then each flood "
        f"({plan.describe()}) alone, and again beside the valid client."
    )
    row("", *(c.label for c in shown))
    number("server CPU per flood handshake (µs)", lambda c: c.flood_cpu_us)
    row("  flood alone, in each round", *each(lambda c: c.round_flood_cpu))
    number("  server busy, flood alone (% of a CPU)", lambda c: c.flood_cpu_share)
    number("server CPU per valid handshake, A (µs)", lambda c: c.valid_cpu_us)
    number("  ratio flood/valid", lambda c: c.flood_cpu_us / c.valid_cpu_us, 2)
    number("valid handshakes/s without flood (A)", lambda c: c.rate_without)
    number("valid handshakes/s beside the flood", lambda c: c.rate_during)
    row(
        f"  ratio beside/without (goal >= {GOAL})",
        *(f"{c.ratio:.2f} {verdict(c.ratio)}" for c in shown),
    )
    row("  ratio in each round", *each(lambda c: c.round_ratios, 2))
    number("flood handshakes/s, alone", lambda c: c.flood_rate_alone)
    number("  per flood connection", lambda c: c.flood_rate_alone / plan.concurrency, 1)
    number("flood handshakes/s, beside valid client", lambda c: c.flood_rate_beside)
    row(f"longest flood, alone / beside (cap {PHASE_CAP:g} s)", *(c.longest_floods for c in shown))
    number("flooder's own CPU per handshake (µs)", lambda c: c.flooder_cpu_us)
    print()
    for column in shown:
        print(
            f"  {column.label}: flood statuses {counts(column.statuses)}; "
            f"valid client refused or failed: {counts(column.failures)}"
        )
    short = {c.label: c.cut_short(plan) for c in shown if c.cut_short(plan)}
    if short:
        print(f"  floods cut short at {PHASE_CAP:g} s (their rates still count): {short}")
    print(
        f"\n  What the limit alone buys ({off.label} -> {no_tarpit.label}): server CPU per "
        f"flood handshake {off.flood_cpu_us:.0f} -> {no_tarpit.flood_cpu_us:.0f} µs; valid "
        f"client beside the flood {off.ratio:.2f} -> {no_tarpit.ratio:.2f} of its rate alone."
        f"\n  What the tarpit adds ({no_tarpit.label} -> {on.label}): "
        f"{no_tarpit.flood_cpu_us:.0f} -> {on.flood_cpu_us:.0f} µs per flood handshake; "
        f"flood {no_tarpit.flood_rate_beside:.0f} -> {on.flood_rate_beside:.0f} handshakes/s; "
        f"valid client {no_tarpit.ratio:.2f} -> {on.ratio:.2f}."
    )
    if bare is not None:
        print(
            f"  Any refusal by this uvicorn and FastAPI (bare 429): {bare.flood_cpu_us:.0f} µs; "
            f"the WS_AUTH_REQUIRED dependency and its 429, without tarpit: "
            f"{no_tarpit.flood_cpu_us - bare.flood_cpu_us:+.0f} µs."
        )
    print(
        f"\nflood: {on.flood_cpu_us:.0f} µs server CPU per refused handshake "
        f"({on.flood_cpu_us / on.valid_cpu_us:.2f} x a full authentication); "
        f"valid client during the flood: {on.ratio:.2f} of its rate alone "
        f"(goal >= {GOAL}): {verdict(on.ratio)}"
    )
    # The table make bench ends with (bench/summary.py), the default settings' column.
    print()
    print(
        summary_line("flood", "valid_rate_beside_flood", on.ratio, GOAL, "ratio", on.ratio >= GOAL)
    )
    print(
        summary_line(
            "flood", "flood_cpu_per_refusal_us", on.flood_cpu_us, None, "us", None, digits=0
        )
    )
    cost = on.flood_cpu_us / on.valid_cpu_us
    print(summary_line("flood", "flood_cpu_over_full_auth", cost, None, "ratio", None))


def show(value: object) -> str:
    return "off" if value is None else json.dumps(value)


def print_settings(settings: dict[str, dict[str, object]]) -> None:
    """The admission settings of each server, the first in full, the others as changes."""
    (first, base), *others = settings.items()
    print(
        f"Admission settings, {first}: "
        + ", ".join(f"{name}={show(value)}" for name, value in base.items())
    )
    for name, values in others:
        changed = [f"{k}={show(v)}" for k, v in values.items() if base.get(k) != v]
        print(f"  {name}: the same but {', '.join(changed) or 'nothing'}")


def arguments() -> Plan:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--flood", type=int, default=FLOOD_HANDSHAKES, help="handshakes a flood")
    parser.add_argument(
        "--concurrency", type=int, default=FLOOD_CONCURRENCY, help="flood handshakes at a time"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="start flood handshakes at this rate a second (0: as fast as the server answers)",
    )
    args = parser.parse_args()
    if args.flood < 1 or args.concurrency < 1 or args.rate < 0:
        parser.error("--flood and --concurrency must be positive, --rate at least 0")
    return Plan(args.flood, args.concurrency, args.rate)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def main(plan: Plan) -> int:
    started = time.monotonic()
    issuer: AuthX[Any] = AuthX(AuthXConfig(JWT_SECRET_KEY=SECRET))
    users = Users([issuer.create_access_token(uid=f"user-{i}") for i in range(USERS)])
    bad_token = AuthX(AuthXConfig(JWT_SECRET_KEY=WRONG_SECRET)).create_access_token(uid="user-0")
    authx_flood = {"AuthX": f"/ws?token={bad_token}"}
    print(
        f"Python {sys.version.split()[0]}, PyJWT {jwt.__version__}, "
        f"websockets {version('websockets')}, {os.cpu_count()} CPUs, load average {load()}. "
        f"Flood from {FLOODER}: an HS256 token signed with the wrong key; valid client: "
        f"{USERS} users of 198.18.0.0/15 in turn, one handshake at a time."
    )
    spawn = multiprocessing.get_context("spawn")
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(ProcessPoolExecutor(max_workers=1, mp_context=spawn))
        servers = {
            name: stack.enter_context(uvicorn_server({**TRUSTED, **settings}))
            for name, settings in SERVERS.items()
        }
        pool.submit(time.monotonic).result()  # the flooder's process, started before any clock
        print_settings(
            {name: await asyncio.to_thread(server.settings) for name, server in servers.items()}
        )
        raw, library = await client_cost(servers[NO_TARPIT].port, "/ws/refused")
        print(
            f"Flooder's CPU per refused handshake: raw Upgrade request {raw:.0f} µs, "
            f"websockets.connect {library:.0f} µs; the raw request is used."
        )
        targets = dict.fromkeys(servers, authx_flood)
        targets[NO_TARPIT] = {**authx_flood, "bare": "/ws/refused"}
        done, took = await rounds(
            pool,
            {name: (server, targets[name]) for name, server in servers.items()},
            users,
            plan,
            started + RUN_BUDGET,
        )
        errors = [line for server in servers.values() for line in server_errors(server)]
    if not took:
        print("no complete round")
        return 1
    columns = {name: Column(name, done[name], "AuthX") for name in SERVERS}
    columns["bare"] = Column("no AuthX: bare 429", done[NO_TARPIT], "bare")
    report(columns, plan, took)
    if errors:
        print("\n  server logged errors:", *errors[:5], sep="\n    ")
    print(f"\nTotal run time {time.monotonic() - started:.0f} s; load average {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(arguments())))
