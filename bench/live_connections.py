"""Live connections at scale: memory per session, revocation latency, an expiry sweep.

    .venv/bin/python bench/live_connections.py [--connections 10000] [--victims 1000]
        [--runs 5] [--expiring 10000] [--tracemalloc 2000] [--plain] [--timeout 600]

One uvicorn process (bench/_live_app.py on 127.0.0.1) holds the connections; a few
client processes (bench/_scale_client.py, minimal RFC 6455 clients) open them from
127.0.0.2, 127.0.0.3, ... Targets (issue: scale of live connections):

1. ``--connections`` idle authenticated WebSockets in one server process (50,000);
2. the session machinery adds at most 512 B per connection: server VmRSS per
   connection with ``JWT_WS_ENFORCE_LIFETIME`` on, minus the same app with it off
   (two servers loaded side by side, at the same time, each by its own clients);
3. ``revoke_subject`` of ``--victims`` connections among the idle ones: the last
   victim's close frame at most 50 ms after the call. Measured from the moment the
   server's handler calls ``revoke_subject`` to the moment each client process sees
   the close frame (``time.monotonic()``, one clock for every process); beside it the
   server-side figure: the registry's revocation listener returned, every frame written;
4. ``--expiring`` connections whose tokens expire in the same second are all closed
   (close frame seen by the client) within 1 s of ``exp``, while a probe connection
   with a long-lived token sends an echo every 10 ms: its p99 under 50 ms. The server
   runs a full GC after opening them, before ``exp`` (GC pauses in the sweep are listed).

Each figure is printed with its target and ``met``/``MISSED``, then as
``SUMMARY key=value`` lines. Every phase is bounded in count and time (``--timeout``
caps the whole run). On a 2-core machine the default run takes about 75 s,
``--connections 50000`` about 2 minutes. Every process raises its soft
RLIMIT_NOFILE to the hard limit; when that hard limit cannot hold the connections
asked for in one server process, the run says so and measures with what fits.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from websockets.asyncio.client import connect

from authx import AuthX, AuthXConfig
from bench._scale_procs import SERVER_RESERVE, Clients, Server, raise_fd_limit
from bench._scale_report import ExpiryResult, MemoryResult, Report, RevocationRun

# A benchmark opens thousands of handshakes per client address on purpose: admission
# control runs (its buckets are part of the measured path) under limits it never reaches.
for _name in ("JWT_WS_RATE_LIMIT", "JWT_WS_SUBJECT_RATE_LIMIT", "JWT_WS_MAX_PENDING_PER_ADDRESS"):
    os.environ.setdefault(_name, "1000000000")

PER_CLIENT_PROCESS = 12_500  # connections per client process, at most
CONCURRENCY = 100  # handshakes in flight per client process
PROBE_INTERVAL = 0.01


class Probe:
    """One connection with a long-lived token to /ws/echo, timing an echo every 10 ms."""

    def __init__(self, port: int, token: str) -> None:
        self.url = f"ws://127.0.0.1:{port}/ws/echo"
        self.token = token
        self.samples: list[tuple[float, float]] = []  # (sent at, round trip in s)

    async def run(self, start_at: float, stop: asyncio.Event, cap: float) -> None:
        async with connect(
            self.url,
            additional_headers={"Authorization": f"Bearer {self.token}"},
            compression=None,
            proxy=None,
            ping_interval=None,
        ) as ws:
            await asyncio.wait_for(ws.recv(), 20)  # the greeting
            await asyncio.sleep(max(0.0, start_at - time.monotonic()))
            next_at, ends_at = time.monotonic(), time.monotonic() + cap
            while not stop.is_set() and time.monotonic() < ends_at:
                sent = time.monotonic()
                await ws.send("probe")
                await asyncio.wait_for(ws.recv(), 5)
                self.samples.append((sent, time.monotonic() - sent))
                next_at = max(next_at + PROBE_INTERVAL, time.monotonic())
                await asyncio.sleep(next_at - time.monotonic())


# Phases ----------------------------------------------------------------------


async def gc_pauses(server: Server, start: float, end: float) -> list[tuple[float, int]]:
    """The server's GC pauses between ``start`` and ``end``: (milliseconds, generation)."""
    pauses = (await server.http.get("/gc/pauses", params={"since": start - 5})).json()
    return [(s * 1000, g) for at, s, g in pauses if at + s >= start and at <= end]


async def memory(
    clients: Clients, server: Server, mode: str, idle: int, secret: str
) -> MemoryResult:
    """Server VmRSS before and after opening ``idle`` connections."""
    path = "/ws/plain" if mode == "plain" else "/ws"
    warmup = await clients.open("warmup", 50, server.port, path=path, secret=secret, prefix="w")
    await clients.drop("warmup")
    if mode == "session":
        await server.wait_for_connections(0)
    assert warmup["opened"], f"warm-up failed: {warmup['failures']}"
    before = await server.settled_rss()
    started = time.monotonic()
    opened = await clients.open(
        "idle", idle, server.port, path=path, secret=secret, prefix="user-",
        concurrency=CONCURRENCY, seconds=300,
    )  # fmt: skip
    pauses = await gc_pauses(server, started, time.monotonic())
    after = await server.settled_rss()
    shown = await server.wait_for_connections(opened["opened"] if mode == "session" else 0)
    return MemoryResult(
        mode, idle, opened["opened"], opened["seconds"], before, after, shown, opened["failures"],
        gc_ms=pauses,
    )  # fmt: skip


async def revocation(
    clients: Clients, server: Server, run: int, victims: int, idle: int, secret: str
) -> RevocationRun:
    """Open ``victims`` connections of one subject among the idle ones, then revoke it."""
    sub = f"victim-{run}"
    opened = await clients.open(
        sub, victims, server.port, path="/ws", secret=secret, prefix=sub, same_subject=True,
        concurrency=CONCURRENCY, seconds=60,
    )  # fmt: skip
    await server.wait_for_connections(idle + opened["opened"])
    await asyncio.sleep(0.5)  # let the opening burst settle before timing
    answer = (await server.http.post(f"/revoke/{sub}")).json()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        seen = await clients.report(sub)
        if len(seen["frames"]) >= opened["opened"] or loop.time() > deadline:
            break
        await asyncio.sleep(0.1)
    await clients.drop(sub)
    called = answer["called"]
    last = max(seen["frames"], default=called)
    return RevocationRun(
        gc_ms=await gc_pauses(server, called, last),
        victims=opened["opened"],
        server_ms=(answer["frames_written"] - called) * 1000,
        returned_ms=(answer["returned"] - called) * 1000,
        frames_ms=[(t - called) * 1000 for t in seen["frames"]],
        codes=seen["codes"],
        open_after=answer["open"],
        failures=opened["failures"],
    )


async def expiry(
    clients: Clients, server: Server, expiring: int, secret: str, open_rate: float
) -> ExpiryResult:
    """Open ``expiring`` connections whose tokens share one ``exp``; time the sweep."""
    bystanders = (await server.stats())["connections"]
    # Room to open every connection before exp, with a margin; exp is a whole second.
    lead = expiring / max(open_rate, 100.0) * 1.5 + 5
    exp = int(time.time() + lead) + 1
    auth: AuthX[Any] = AuthX(config=AuthXConfig(JWT_SECRET_KEY=secret))
    probe = Probe(server.port, auth.create_access_token(uid="probe", expiry=timedelta(hours=1)))
    opened = await clients.open(
        "expiring", expiring, server.port, path="/ws", secret=secret, prefix="exp-", exp=exp,
        concurrency=CONCURRENCY, seconds=lead,
    )  # fmt: skip
    # A full collection now, as before each RSS reading: the cyclic GC's full pass takes
    # ~1 ms per 10 connections held (any Python process with that many objects), and the
    # ones just opened bring the next one near; it would land in the sweep by chance.
    (await server.http.post("/gc")).raise_for_status()
    opened_before_exp = time.time() < exp - 0.5
    exp_mono = exp - (time.time() - time.monotonic())
    stop = asyncio.Event()
    probing = asyncio.create_task(probe.run(exp_mono - 1.0, stop, cap=30))
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, exp_mono + 1.5 - time.monotonic()))
    deadline = loop.time() + 10
    while True:
        seen = await clients.report("expiring")
        if len(seen["frames"]) >= opened["opened"] or loop.time() > deadline:
            break
        await asyncio.sleep(0.5)
    stop.set()
    await asyncio.wait_for(probing, 10)
    last = seen["frames"][-1] if seen["frames"] else exp_mono
    window = [rtt * 1000 for sent, rtt in probe.samples if exp_mono <= sent <= last]
    before = [rtt * 1000 for sent, rtt in probe.samples if sent < exp_mono]
    await clients.drop("expiring")
    return ExpiryResult(
        gc_ms=await gc_pauses(server, exp_mono, last),
        expiring=opened["opened"],
        bystanders=bystanders,
        opened_before_exp=opened_before_exp,
        closes_ms=[(t - exp_mono) * 1000 for t in seen["frames"]],
        codes=seen["codes"],
        probe_ms=window,
        probe_before_ms=before,
        failures=opened["failures"],
    )


async def traced(clients: Clients, mode: str, count: int, secret: str) -> MemoryResult:
    """``memory`` again under tracemalloc: where the server's Python allocations are."""
    env = {"JWT_SECRET_KEY": secret, "JWT_WS_ENFORCE_LIFETIME": str(mode == "session")}
    async with Server({**env, "PYTHONTRACEMALLOC": "1"}) as server:
        warm = await clients.open("warmup", 50, server.port, path="/ws", secret=secret, prefix="w")
        await clients.drop("warmup")
        await server.wait_for_connections(0)
        assert warm["opened"]
        (await server.http.post("/tracemalloc/baseline")).raise_for_status()
        opened = await clients.open(
            "idle", count, server.port, path="/ws", secret=secret, prefix="user-",
            concurrency=CONCURRENCY,
        )  # fmt: skip
        result = MemoryResult(mode, count, opened["opened"], 0, 0, 0, 0, opened["failures"])
        result.traced = (await server.http.get("/tracemalloc/diff")).json()
        await clients.drop()
        return result


# Main ------------------------------------------------------------------------


async def main(args: argparse.Namespace, report: Report) -> None:
    secret = secrets.token_hex(32)
    hard = raise_fd_limit()
    capacity = hard - SERVER_RESERVE
    idle = min(args.connections, capacity - args.victims - 1)
    expiring = min(args.expiring, capacity - 1)
    report.limits(args.connections, idle, hard, capacity)
    # The memory phase loads both servers at once, each from its half of the processes.
    processes = 2 * max(1, -(-max(idle + args.victims, expiring + 1) // PER_CLIENT_PROCESS))
    env = {"JWT_SECRET_KEY": secret}
    async with Clients(processes) as clients:
        print(f"  {processes} client processes", flush=True)
        off_clients, on_clients = clients.halves()
        if args.plain:
            async with Server({**env, "JWT_WS_ENFORCE_LIFETIME": "False"}) as server:
                report.memory.append(await memory(off_clients, server, "plain", idle, secret))
                await off_clients.drop()
            report.progress(report.memory[-1])
        async with Server({**env, "JWT_WS_ENFORCE_LIFETIME": "True"}) as server:
            async with Server({**env, "JWT_WS_ENFORCE_LIFETIME": "False"}) as off_server:
                # Side by side: both servers see the same load, the same moments of the run.
                off, result = await asyncio.gather(
                    memory(off_clients, off_server, "no session", idle, secret),
                    memory(on_clients, server, "session", idle, secret),
                )
                await off_clients.drop()
            report.memory += [off, result]
            report.progress(off)
            report.progress(result)
            for run in range(args.runs):
                report.revocations.append(
                    await revocation(clients, server, run, args.victims, result.opened, secret)
                )
                print(f"  revocation run {run + 1}: {report.revocations[-1].brief}", flush=True)
            pinged = await on_clients.ping("idle", 100)
            report.bystanders = (await server.stats())["connections"], pinged
            if expiring:
                keep = min(result.opened, capacity - expiring - 11)
                await on_clients.drop("idle", keep=keep)
                await server.wait_for_connections(keep)
                rate = result.opened / result.open_seconds if result.open_seconds else 1000.0
                report.expiry = await expiry(clients, server, expiring, secret, rate)
                print(f"  expiry sweep: {report.expiry.brief}", flush=True)
            await clients.drop()
        if args.tracemalloc:
            count = min(args.tracemalloc, capacity)
            report.traced = [
                await traced(clients, mode, count, secret) for mode in ("session", "no session")
            ]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--connections", type=int, default=10_000, help="idle connections")
    parser.add_argument("--victims", type=int, default=1_000, help="connections revoked at once")
    parser.add_argument("--runs", type=int, default=5, help="revocation runs")
    parser.add_argument("--expiring", type=int, default=10_000, help="tokens expiring together")
    parser.add_argument("--plain", action="store_true", help="also an unauthenticated endpoint")
    parser.add_argument(
        "--tracemalloc",
        type=int,
        default=2_000,
        metavar="N",
        help="then count the server's Python allocations over N connections per mode (0: skip)",
    )
    parser.add_argument("--timeout", type=float, default=600, help="overall cap in seconds")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    print(
        f"live connections: {arguments.connections} idle, {arguments.victims} victims x"
        f" {arguments.runs} runs, {arguments.expiring} expiring; {os.cpu_count()} CPUs,"
        f" python {sys.version.split()[0]}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        flush=True,
    )
    started = time.monotonic()
    outcome = Report(arguments.connections, arguments.victims, arguments.expiring)

    async def capped() -> None:
        async with asyncio.timeout(arguments.timeout):
            await main(arguments, outcome)

    try:
        asyncio.run(capped())
    finally:
        outcome.print(time.monotonic() - started)
