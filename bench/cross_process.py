"""Revocations across processes: Redis pub/sub delivery, SQLite polling delay and idle cost.

    .venv/bin/python bench/cross_process.py [--revocations 1000] [--sqlite-revocations 200]
        [--bystanders 100] [--idle-seconds 10] [--gap-ms 0] [--pin-server]
        [--skip-redis] [--skip-sqlite] [--timeout 110]

Three kinds of process, as in a deployment: uvicorn servers serving bench/_live_app.py
(``JWT_STORE_URL`` from the environment), one client process per server holding idle
authenticated WebSockets to it (bench/cluster.py's Sans-I/O client: one subject per
connection, ``user-N-0``, ``user-N-1``, ...; it notes when each close frame arrives), and
this process, the revoker, with an ``AuthX`` of its own on the same store: it calls
``revoke_subject`` for one subject after the other, awaiting each call (``--gap-ms``
pauses between two), and notes when each call began. Latency = close frame seen by the
client - call begun, on CLOCK_MONOTONIC, which every process of the machine shares.
``--bystanders`` more connections are never revoked: each must stay open, and each
revocation must close its connection with 4004 ``token_revoked`` within 5 s (otherwise
it counts as lost). Beside each run: the CPU time each process spent per revocation and
how busy the machine's CPUs were meanwhile (others' load included), since revocations
back to back are a race between the revoker and the server, decided by CPU.

1. Redis (a redis-server without persistence on a free 127.0.0.1 port): ``--revocations``
   revocations in a row reach the client of the server process with p99 at most 20 ms.
   ``--pin-server`` gives the server a CPU of its own (every other process of the run on
   the others), as when the revoker, Redis and the clients are other machines.
2. SQLite: the same, ``--sqlite-revocations`` in a row, against one server per
   ``poll_interval`` (0.05 s, the default, then 0.2 s and 1 s), each on its own file. The
   documented bound: every revocation arrives within ``poll_interval`` + 50 ms. Before
   that, every server sits idle for ``--idle-seconds`` with its connections open, beside
   the same app on ``memory://`` (no poller), all at the same time: CPU time of each server
   process (all its threads, /proc/PID/task/*/schedstat, ns resolution) in ms per second
   and % of one core; the poller's share is the extra over ``memory://``, bounded at 1 ms
   of CPU per poll (so 20 ms/s, 2 % of a core, at the default interval).

Each figure is printed with its target and ``met``/``MISSED``, then as
``SUMMARY key=value`` lines. Exit status 1 when a target is missed, 2 when the run could
not be made (no redis-server, a server that does not start, connections that do not
open). On a 2-core machine the default run takes about 25 s; ``--timeout`` caps it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authx import AuthX, AuthXConfig
from authx.exceptions import StoreUnavailableError
from bench._scale_report import percentile
from bench.cluster import (
    HUGE_RATE,
    ClientProcess,
    Close,
    RedisServer,
    Worker,
    collect,
    now,
    raise_fd_limit,
    stop,
    tail,
)
from bench.summary import summary_line, verdict

# Thousands of handshakes from 127.0.0.1 on purpose: admission control runs under limits
# it never reaches (the servers inherit this environment).
for _name in ("JWT_WS_RATE_LIMIT", "JWT_WS_SUBJECT_RATE_LIMIT", "JWT_WS_MAX_PENDING_PER_ADDRESS"):
    os.environ.setdefault(_name, HUGE_RATE)

TARGET_REDIS_P99_MS = 20.0
SQLITE_MARGIN_MS = 50.0  # processing allowed beyond one poll interval
POLL_INTERVALS = (0.05, 0.2, 1.0)
IDLE_MS_PER_POLL = 1.0  # bound on the CPU an idle poll costs
LOST_AFTER = 5.0  # seconds after its call when a revocation not seen is lost
OPEN_TIMEOUT = 30.0
INFLIGHT = 50  # handshakes under way at once in a client process
SETTLE = 1.0  # seconds between opening and timing
STRAY_WAIT = 0.5  # seconds of looking for stray closes after the last expected one
ASK_EVERY = 0.1  # seconds between two questions to a client while closes are expected
REVOKED = "4004 token_revoked"
BASELINE_URL = "memory://"


# Measurements ------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """CPU time of every live thread of ``pid`` so far (schedstat, nanoseconds)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def machine_ticks() -> tuple[int, int]:
    """Busy and total clock ticks of every CPU of the machine so far (/proc/stat)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)  # idle and iowait are not busy


@dataclass
class CpuMeter:
    """CPU time of some processes over a window, and how busy the whole machine was."""

    pids: dict[str, int]
    used: dict[str, float] = field(default_factory=dict)  # seconds per process
    busy: float = 0.0  # fraction of all the machine's CPUs
    _before: dict[str, float] = field(default_factory=dict)
    _ticks: tuple[int, int] = (0, 0)

    def start(self) -> None:
        self._before = {k: cpu_seconds(pid) for k, pid in self.pids.items()}
        self._ticks = machine_ticks()

    def stop(self) -> None:
        (busy, total), (busy_now, total_now) = self._ticks, machine_ticks()
        self.used = {k: cpu_seconds(pid) - self._before[k] for k, pid in self.pids.items()}
        self.busy = (busy_now - busy) / max(1, total_now - total)

    def describe(self, count: int, seconds: float) -> str:
        cpus = os.cpu_count() or 1
        ours = sum(self.used.values()) / max(seconds, 1e-9) / cpus
        return (
            "CPU per revocation: "
            + ", ".join(f"{k} {v * 1e6 / count:.0f} us" for k, v in self.used.items())
            + f"; the {cpus} CPUs were {self.busy:.0%} busy over those {seconds:.2f} s"
            + f" ({max(0.0, self.busy - ours):.0%} by other processes)"
        )


@dataclass
class Delivery:
    """One run of revocations in a row against one server, and what its client saw."""

    label: str
    revoked: int
    bystanders: int
    calls_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0  # from the first call to the return of the last
    latencies_ms: list[float] = field(default_factory=list)
    lost: int = 0
    codes: collections.Counter[str] = field(default_factory=collections.Counter)
    strays: int = 0  # closes of connections never revoked, or closed twice
    open_after: int = 0
    meter: CpuMeter | None = None
    window: float = 0.0  # from the first call until every close was seen (or given up)

    @property
    def clean(self) -> bool:
        """Nothing lost, every close a 4004, every bystander still open."""
        return (
            self.lost == 0
            and self.codes[REVOKED] == self.revoked
            and self.strays == 0
            and self.open_after == self.bystanders
        )

    def spread(self) -> str:
        t = self.latencies_ms
        return (
            f"p50 {percentile(t, 50):.1f} / p90 {percentile(t, 90):.1f} / p99"
            f" {percentile(t, 99):.1f} / max {percentile(t, 100):.1f} ms"
        )

    def describe(self) -> None:
        others = {code: n for code, n in self.codes.items() if code != REVOKED}
        print(f"\n{self.label}: {self.revoked} revoke_subject in a row from this process")
        print(
            f"  {len(self.latencies_ms)}/{self.revoked} delivered ({self.codes[REVOKED]} closed"
            f" with {REVOKED}), {self.lost} lost (none within {LOST_AFTER:.0f} s),"
            f" {self.strays} stray closes, {self.open_after}/{self.bystanders} bystanders open"
            + (f"; other closes: {others}" if others else "")
        )
        print(f"  latency, call -> close frame at the client: {self.spread()}")
        calls = self.calls_ms
        print(
            f"  revoke_subject at the revoker: p50 {percentile(calls, 50):.2f} / p99"
            f" {percentile(calls, 99):.2f} / max {percentile(calls, 100):.2f} ms per call;"
            f" {len(calls)} calls in {self.seconds:.2f} s ({len(calls) / self.seconds:,.0f}/s)",
            flush=True,
        )
        if self.meter is not None:
            print(f"  {self.meter.describe(self.revoked, self.window)}", flush=True)


@dataclass
class Report:
    summary: list[str] = field(default_factory=list)
    failed: bool = False

    def figure(self, key: str, value: float, target: float, unit: str, ok: bool) -> None:
        self.failed |= not ok
        self.summary.append(summary_line("cross_process", key, value, target, unit, ok))


# Servers, clients, the revoker ---------------------------------------------------


async def start_worker(number: int, directory: Path, url: str, secret: str) -> Worker:
    worker = Worker(number, directory, url, secret)
    await worker.start()
    return worker


async def open_client(worker: Worker, directory: Path, count: int, stop_by: float) -> ClientProcess:
    """A client process holding ``count`` connections to ``worker``, subjects user-N-i."""
    client = ClientProcess(worker, directory)
    plan = {
        "worker": worker.number,
        "port": worker.port,
        "others": count,
        "victims": {},
        "inflight": INFLIGHT,
        "deadline": now() + OPEN_TIMEOUT,
        "stop_by": stop_by,  # in case this process cannot say quit
    }
    await client.start(plan)
    answer = await client.answer(OPEN_TIMEOUT + 30)
    opened = int(answer["opened"]["all"])
    if opened != count:
        raise RuntimeError(
            f"worker {worker.number}: {opened}/{count} connections opened: {answer['failures']}"
        )
    return client


def subjects(worker: Worker, count: int) -> list[str]:
    """The client's first ``count`` subjects (bench/cluster.py's client_plan: user-N-i)."""
    return [f"user-{worker.number}-{i}" for i in range(count)]


def revoker(secret: str, url: str) -> AuthX[Any]:
    return AuthX(config=AuthXConfig(JWT_SECRET_KEY=secret, JWT_STORE_URL=url))


async def close_store(auth: AuthX[Any]) -> None:
    """Release the revoker's store (opened by its first revocation)."""
    await (await auth.get_store()).close()


async def revoke_in_a_row(
    auth: AuthX[Any], victims: Sequence[str], gap: float, run: Delivery
) -> dict[str, float]:
    """``revoke_subject`` of each victim, one awaited after the other; when each began."""
    begun: dict[str, float] = {}
    first = now()
    for sub in victims:
        begun[sub] = started = now()
        await auth.revoke_subject(sub)
        run.calls_ms.append((now() - started) * 1000)
        if gap:
            await asyncio.sleep(gap)
    run.seconds = now() - first
    return begun


async def closes_until(client: ClientProcess, victims: set[str], until: float) -> list[Close]:
    """What the client saw close, until every victim is closed (or ``until``)."""
    seen: list[Close] = []
    while now() < until:
        seen += (await collect([client]))[0]
        if victims <= {c.sub for c in seen}:
            break
        await asyncio.sleep(ASK_EVERY)
    return seen


async def deliver(
    auth: AuthX[Any], worker: Worker, client: ClientProcess, run: Delivery, gap: float
) -> None:
    """Revoke ``run.revoked`` subjects in a row; fill ``run`` with what the client saw."""
    strays_before = len((await collect([client]))[0])
    victims = subjects(worker, run.revoked)
    if run.meter is not None:
        run.meter.start()
    begun = await revoke_in_a_row(auth, victims, gap, run)
    closes = await closes_until(client, set(victims), now() + LOST_AFTER)
    run.window = now() - min(begun.values())
    if run.meter is not None:
        run.meter.stop()
    await asyncio.sleep(STRAY_WAIT)  # then a last look for stray closes
    closes += (await collect([client]))[0]
    first: dict[str, Close] = {}
    for close in closes:
        if close.sub in begun and close.sub not in first:
            first[close.sub] = close
        else:
            run.strays += 1
    run.strays += strays_before
    for sub, close in first.items():
        latency = (close.at - begun[sub]) * 1000
        run.codes[f"{close.code} {close.reason}"] += 1
        if 0 <= latency <= LOST_AFTER * 1000:
            run.latencies_ms.append(latency)
    run.lost = run.revoked - len(run.latencies_ms)
    run.open_after = (await collect([client]))[1]


# Part 1: Redis -------------------------------------------------------------------


async def redis_part(args: argparse.Namespace, directory: Path, report: Report) -> None:
    redis = RedisServer(directory)
    worker: Worker | None = None
    client: ClientProcess | None = None
    auth: AuthX[Any] | None = None
    try:
        await redis.start()
        worker = await start_worker(1, directory, redis.url, args.secret)
        client = await open_client(
            worker, directory, args.revocations + args.bystanders, args.stop_by
        )
        print(
            f"redis-server :{redis.port}, server :{worker.port} holding"
            f" {args.revocations + args.bystanders} connections",
            flush=True,
        )
        pids = {"server": pid_of(worker), "client": pid_of(client), "redis": pid_of(redis)}
        pids["revoker"] = os.getpid()
        if args.pin_server:
            pin_server(pids)
        auth = revoker(args.secret, redis.url)
        await auth.revoke_subject("warm-up")  # subscribed, connected, scripts loaded
        await asyncio.sleep(SETTLE)
        label = "Redis" + (" (the server alone on a CPU)" if args.pin_server else "")
        run = Delivery(label, args.revocations, args.bystanders, meter=CpuMeter(pids))
        await deliver(auth, worker, client, run, args.gap_ms / 1000)
        run.describe()
        judge_redis(run, report)
        show_problems(worker)
    finally:
        if auth is not None:
            await close_store(auth)
        if client is not None:
            await client.quit()
        await stop(worker.proc if worker is not None else None, grace=5)
        await stop(redis.proc)


def pid_of(process: Worker | ClientProcess | RedisServer) -> int:
    assert process.proc is not None
    return process.proc.pid


def pin_server(pids: dict[str, int]) -> None:
    """The server's threads on the last CPU, every other process of the run on the others."""
    last = (os.cpu_count() or 1) - 1
    if last == 0:
        print("  --pin-server: one CPU only, nothing pinned")
        return
    for name, pid in pids.items():
        cpus = {last} if name == "server" else set(range(last))
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                os.sched_setaffinity(int(task.name), cpus)


def judge_redis(run: Delivery, report: Report) -> None:
    p99 = percentile(run.latencies_ms, 99) if run.latencies_ms else float("inf")
    ok = p99 <= TARGET_REDIS_P99_MS and run.clean
    print(
        f"[1] Redis: p99 {p99:.1f} ms from the call to the close frame on another process,"
        f" {run.lost} lost, {run.strays} stray [target <= {TARGET_REDIS_P99_MS:.0f} ms, none"
        f" lost: {verdict(ok)}]",
        flush=True,
    )
    report.figure("redis_p99_ms", p99, TARGET_REDIS_P99_MS, "ms", ok)
    for name, q in (("p50", 50), ("max", 100)):
        value = percentile(run.latencies_ms, q) if run.latencies_ms else float("inf")
        report.figure(f"redis_{name}_ms", value, TARGET_REDIS_P99_MS, "ms", True)
    report.figure("redis_lost", run.lost + run.strays, 0, "revocations", run.clean)


def show_problems(worker: Worker) -> None:
    for line in worker.problems()[:5]:
        print(f"  server {worker.number} log: {line}")
    for message, count in worker.warnings().most_common(3):
        print(f"  server {worker.number} log, {count} x WARNING {message}")


# Part 2: SQLite ------------------------------------------------------------------


@dataclass
class Deployment:
    """One server and its client: ``memory://`` (the baseline) or a SQLite file."""

    url: str
    poll: float | None
    worker: Worker
    client: ClientProcess | None = None
    idle_ms_per_s: float = 0.0

    @property
    def label(self) -> str:
        return BASELINE_URL if self.poll is None else f"sqlite poll {self.poll:g} s"


async def sqlite_part(args: argparse.Namespace, directory: Path, report: Report) -> None:
    deployments: list[Deployment] = []
    try:
        urls = [(BASELINE_URL, None)] + [
            (f"sqlite:///{directory}/authx-{n}.db?poll_interval={p:g}", p)
            for n, p in enumerate(POLL_INTERVALS)
        ]
        for number, (url, poll) in enumerate(urls, start=10):
            worker = await start_worker(number, directory, url, args.secret)
            deployments.append(Deployment(url, poll, worker))
        count = args.sqlite_revocations + args.bystanders
        for d in deployments:
            d.client = await open_client(d.worker, directory, count, args.stop_by)
        print(
            f"\nSQLite: {len(deployments)} servers ({', '.join(d.label for d in deployments)}),"
            f" {count} connections each",
            flush=True,
        )
        await asyncio.sleep(SETTLE)
        await idle_window(deployments, args.idle_seconds)
        judge_idle(deployments, report)
        for d in deployments[1:]:
            await sqlite_latency(args, d, report)
            show_problems(d.worker)
    finally:
        await asyncio.gather(*(d.client.quit() for d in deployments if d.client))
        await asyncio.gather(*(stop(d.worker.proc, grace=5) for d in deployments))


async def idle_window(deployments: Sequence[Deployment], seconds: float) -> None:
    """Every server's CPU time over the same ``seconds`` of no traffic at all."""
    pids = [d.worker.proc.pid for d in deployments if d.worker.proc]
    began, before = now(), [cpu_seconds(pid) for pid in pids]
    await asyncio.sleep(seconds)
    after, elapsed = [cpu_seconds(pid) for pid in pids], now() - began
    for d, b, a in zip(deployments, before, after, strict=True):
        d.idle_ms_per_s = (a - b) * 1000 / elapsed


def idle_bound(poll: float) -> float:
    """The documented ceiling of the poller's idle CPU, in ms per second."""
    return IDLE_MS_PER_POLL / poll


def judge_idle(deployments: Sequence[Deployment], report: Report) -> None:
    base = deployments[0].idle_ms_per_s
    print(
        f"  idle CPU of the server process, {deployments[0].label} beside every poll interval"
        f" at the same time:\n  {'server':<22} {'ms/s':>7} {'% core':>7} {'extra ms/s':>11}"
        f" {'per poll ms':>12} {'bound ms/s':>11}"
    )
    print(f"  {deployments[0].label:<22} {base:>7.2f} {base / 10:>7.3f} {'-':>11} {'-':>12}")
    for d in deployments[1:]:
        assert d.poll is not None
        extra, bound = d.idle_ms_per_s - base, idle_bound(d.poll)
        ok = extra <= bound
        print(
            f"  {d.label:<22} {d.idle_ms_per_s:>7.2f} {d.idle_ms_per_s / 10:>7.3f}"
            f" {extra:>11.2f} {extra * d.poll:>12.3f} {bound:>11.2f}  {verdict(ok)}"
        )
        report.figure(f"sqlite_idle_extra_ms_per_s_poll_{d.poll:g}", extra, bound, "ms/s", ok)


async def sqlite_latency(args: argparse.Namespace, d: Deployment, report: Report) -> None:
    assert d.client is not None
    assert d.poll is not None
    auth = revoker(args.secret, d.url)
    try:
        await auth.revoke_subject("warm-up")  # the revoker's own file connection and poller
        pids = {"server": pid_of(d.worker), "client": pid_of(d.client), "revoker": os.getpid()}
        run = Delivery(d.label, args.sqlite_revocations, args.bystanders, meter=CpuMeter(pids))
        await deliver(auth, d.worker, d.client, run, args.gap_ms / 1000)
    finally:
        await close_store(auth)
    run.describe()
    bound = d.poll * 1000 + SQLITE_MARGIN_MS
    worst = percentile(run.latencies_ms, 100) if run.latencies_ms else float("inf")
    ok = worst <= bound and run.clean
    print(
        f"[2] {d.label}: max {worst:.1f} ms, p99 {percentile(run.latencies_ms, 99):.1f} ms"
        f" [target: every one <= poll interval + {SQLITE_MARGIN_MS:.0f} ms = {bound:.0f} ms,"
        f" none lost: {verdict(ok)}]",
        flush=True,
    )
    key = f"sqlite_poll_{d.poll:g}"
    report.figure(f"{key}_max_ms", worst, bound, "ms", ok)
    report.figure(f"{key}_p50_ms", percentile(run.latencies_ms, 50), bound, "ms", True)


# Main ----------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> int:
    report = Report()
    started = now()
    args.secret = secrets.token_hex(32)
    args.stop_by = now() + args.timeout + 30
    with tempfile.TemporaryDirectory(prefix="authx-cross-") as tmp:
        directory = Path(tmp)
        try:
            async with asyncio.timeout(args.timeout):
                if not args.skip_redis:
                    await redis_part(args, directory, report)
                if not args.skip_sqlite:
                    await sqlite_part(args, directory, report)
        except TimeoutError:
            print(f"!! stopped by the overall cap of {args.timeout:.0f} s")
            return 2
        except (RuntimeError, OSError, StoreUnavailableError) as exc:
            print(f"!! the run could not be made: {type(exc).__name__}: {exc}")
            print_logs(directory)
            return 2
    print(f"\nwhole run: {now() - started:.0f} s")
    for line in report.summary:
        print(line)
    return 1 if report.failed else 0


def print_logs(directory: Path) -> None:
    for log in sorted(directory.glob("*.log")):
        print(f"--- {log.name}:\n{tail(log, 1500)}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--revocations", type=int, default=1000, help="Redis: in a row")
    parser.add_argument("--sqlite-revocations", type=int, default=200, help="SQLite: in a row")
    parser.add_argument(
        "--bystanders", type=int, default=100, help="connections never revoked, per server"
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=10.0, help="SQLite: idle window for the CPU time"
    )
    parser.add_argument(
        "--gap-ms", type=float, default=0.0, help="pause between two revocations (0: back to back)"
    )
    parser.add_argument(
        "--pin-server",
        action="store_true",
        help="Redis part: the server alone on the last CPU, the other processes on the others",
    )
    parser.add_argument("--skip-redis", action="store_true", help="no Redis part")
    parser.add_argument("--skip-sqlite", action="store_true", help="no SQLite part")
    parser.add_argument("--timeout", type=float, default=110, help="overall cap in seconds")
    args = parser.parse_args()
    if min(args.revocations, args.sqlite_revocations) <= 0 or args.bystanders < 0:
        parser.error("--revocations and --sqlite-revocations must be positive")
    if args.idle_seconds <= 0 or args.gap_ms < 0:
        parser.error("--idle-seconds must be positive, --gap-ms not negative")
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if not arguments.skip_redis and shutil.which("redis-server") is None:
        print("!! redis-server is not installed (needed for the Redis part; --skip-redis)")
        sys.exit(2)
    limit = raise_fd_limit()
    print(
        f"cross_process: Redis {0 if arguments.skip_redis else arguments.revocations} and SQLite"
        f" {0 if arguments.skip_sqlite else arguments.sqlite_revocations} revocations in a row,"
        f" {arguments.bystanders} bystanders per server, RLIMIT_NOFILE {limit},"
        f" {os.cpu_count()} CPUs, python {sys.version.split()[0]}",
        flush=True,
    )
    sys.exit(asyncio.run(main(arguments)))
