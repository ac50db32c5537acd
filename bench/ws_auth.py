"""What WebSocket authentication costs: in-process against PyJWT, and through uvicorn.

Run with ``.venv/bin/python bench/ws_auth.py`` (or ``make bench``). Targets from issue 3:
``_ws_auth_required`` costs no more than a raw ``jwt.decode`` of the same token
(ratio <= 1.0), and authenticated handshakes reach at least 0.9x the rate of
unauthenticated ones.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import websockets
from starlette.types import Message, Scope
from starlette.websockets import WebSocket

from authx.token import split_jws
from bench._jwks_compare import measure_provider_tokens
from bench._ws_app import SECRET, auth

# A benchmark opens thousands of handshakes from 127.0.0.1 on purpose: admission
# control runs (its buckets are part of the measured path) under limits it never reaches.
os.environ.setdefault("JWT_WS_RATE_LIMIT", "1000000000")
os.environ.setdefault("JWT_WS_SUBJECT_RATE_LIMIT", "1000000000")

ROOT = Path(__file__).resolve().parent.parent

# In-process: repeats of a batch of calls each, best and median kept.
INPROC_REPEATS = 9
INPROC_OPS = 2000

# Through uvicorn: rounds alternate the two routes so noise hits both alike.
ROUNDS = 5
HANDSHAKES = 2000
WARMUP_HANDSHAKES = 200
CONCURRENCY = 20
OPEN_TIMEOUT = 5.0
RUN_TIME_CAP = 30.0
TOTAL_TIME_CAP = 240.0
STARTUP_TIMEOUT = 20.0


# In-process -------------------------------------------------------------------


async def _receive() -> Message:
    return {"type": "websocket.connect"}


async def _send(message: Message) -> None:
    return None


def handshake_websocket(token: str) -> WebSocket:
    """A fresh Starlette WebSocket whose handshake carries ``?token=<token>``."""
    scope: Scope = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": f"token={token}".encode("ascii"),
        "headers": [(b"host", b"127.0.0.1:8000"), (b"upgrade", b"websocket")],
        "subprotocols": [],
        "state": {},
        "extensions": {},
    }
    return WebSocket(scope, _receive, _send)


async def _raw_decode(websocket: WebSocket, token: str) -> None:
    jwt.decode(token, SECRET, algorithms=["HS256"])


async def _nothing(websocket: WebSocket, token: str) -> None:
    return None


async def _authenticate(websocket: WebSocket, token: str) -> None:
    await auth._ws_auth_required(websocket)


Operation = Callable[[WebSocket, str], Awaitable[None]]
OPERATIONS: dict[str, Operation] = {
    "auth": _authenticate,
    "raw": _raw_decode,
    "task": _nothing,
}


async def time_per_task(operation: Operation, token: str, ops: int) -> float:
    """Microseconds per ``operation``, each in its own task on a fresh WebSocket.

    One task per call, as uvicorn runs one per connection: the session that
    ``_ws_auth_required`` opens is released when its task ends, and that is
    counted too. The sockets are built before the clock starts, since every
    route pays for them, authenticated or not.
    """
    sockets = [handshake_websocket(token) for _ in range(ops)]
    gc.collect()
    start = time.perf_counter()
    for websocket in sockets:
        await asyncio.create_task(operation(websocket, token))
    return (time.perf_counter() - start) / ops * 1e6


@dataclass
class Samples:
    """Per-operation times in microseconds, one per repeat."""

    values: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)


async def measure_in_process(token: str) -> dict[str, Samples]:
    """Interleaved repeats of every operation, rotating which one goes first."""
    payload = await auth._ws_auth_required(handshake_websocket(token))
    assert payload.sub == "bench-user"
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["sub"] == "bench-user"
    names = list(OPERATIONS)
    for name in names:  # warm-up
        await time_per_task(OPERATIONS[name], token, INPROC_OPS // 10)
    samples = {name: Samples() for name in names}
    for repeat in range(INPROC_REPEATS):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].values.append(await time_per_task(OPERATIONS[name], token, INPROC_OPS))
    return samples


# Through uvicorn --------------------------------------------------------------

LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"startup_only": {"()": "bench._ws_app.StartupOnly"}},
    "formatters": {"plain": {"format": "%(levelname)s: %(name)s: %(message)s"}},
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
}


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int = 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cpu_seconds(self) -> float | None:
        """User plus system CPU time of the server so far (Linux only)."""
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def uvicorn_server() -> Iterator[Server]:
    """uvicorn serving ``bench._ws_app`` on 127.0.0.1, a port of the kernel's choosing."""
    with tempfile.TemporaryDirectory(prefix="authx-bench-") as tmp:
        log_config = Path(tmp) / "logging.json"
        log_config.write_text(json.dumps(LOG_CONFIG))
        log_path = Path(tmp) / "server.log"
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "bench._ws_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-access-log",
            "--log-config",
            str(log_config),
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        server = Server(process, log_path)
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while time.monotonic() < deadline and process.poll() is None:
                match = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", server.log())
                if match:
                    server.port = int(match.group(1))
                    break
                time.sleep(0.05)
            if not server.port:
                raise RuntimeError(f"uvicorn did not start:\n{server.log()}")
            yield server
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)


@dataclass
class Run:
    handshakes: int
    failures: int
    seconds: float
    server_cpu: float | None

    @property
    def rate(self) -> float:
        return self.handshakes / self.seconds

    @property
    def cpu_us(self) -> float | None:
        if self.server_cpu is None or not self.handshakes:
            return None
        return self.server_cpu / self.handshakes * 1e6


async def handshake(uri: str) -> bool:
    """Open, let the server accept and close, and report whether that went as expected."""
    async with websockets.connect(uri, open_timeout=OPEN_TIMEOUT, close_timeout=OPEN_TIMEOUT) as ws:
        await ws.wait_closed()
        return ws.close_code == 1000


async def drive(server: Server, uri: str, count: int) -> Run:
    """``count`` handshakes on ``uri``, ``CONCURRENCY`` at a time, within ``RUN_TIME_CAP``."""
    started = failures = done = 0
    deadline = time.monotonic() + RUN_TIME_CAP

    async def worker() -> None:
        nonlocal started, failures, done
        while started < count and time.monotonic() < deadline:
            started += 1
            try:
                ok = await handshake(uri)
            except (OSError, TimeoutError, websockets.WebSocketException):
                ok = False
            done += ok
            failures += not ok

    cpu_before = server.cpu_seconds()
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    seconds = time.perf_counter() - start
    cpu_after = server.cpu_seconds()
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return Run(done, failures, seconds, cpu)


async def measure_server(token: str) -> dict[str, list[Run]]:
    with uvicorn_server() as server:
        base = f"ws://127.0.0.1:{server.port}"
        routes: dict[str, Callable[[int], Awaitable[Run]]] = {
            "auth": lambda n: drive(server, f"{base}/ws?token={token}", n),
            "open": lambda n: drive(server, f"{base}/ws/open", n),
        }
        for name, run in routes.items():
            warm = await run(WARMUP_HANDSHAKES)
            if warm.failures or not warm.handshakes:
                raise RuntimeError(f"warm-up of {name} failed:\n{server.log()}")
        runs: dict[str, list[Run]] = {"auth": [], "open": []}
        deadline = time.monotonic() + TOTAL_TIME_CAP
        for round_ in range(ROUNDS):
            order = ("auth", "open") if round_ % 2 == 0 else ("open", "auth")
            for name in order:
                runs[name].append(await routes[name](HANDSHAKES))
            if time.monotonic() > deadline:
                break
        errors = [line for line in server.log().splitlines() if "ERROR" in line]
        if errors:
            print("server logged errors:", *errors[:5], sep="\n  ")
        return runs


# Report -----------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _lenient_split(token: str) -> tuple[bytes, bytes, bytes, bytes]:
    """The split a decoder without the canonical-encoding check does."""
    raw = token.encode("ascii")
    signing_input, signature = raw.rsplit(b".", 1)
    header, payload = signing_input.split(b".", 1)
    return signing_input, header, payload, signature


def measure_canonical_check(token: str) -> tuple[float, float]:
    """Microseconds per call of the strict split (base64url alphabet, length and unused
    bits of every segment) and of a lenient split, best of interleaved repeats."""
    strict, lenient = [], []
    for _ in range(INPROC_REPEATS):
        strict.append(timeit.timeit(lambda: split_jws(token), number=INPROC_OPS * 10))
        lenient.append(timeit.timeit(lambda: _lenient_split(token), number=INPROC_OPS * 10))
    scale = 1e6 / (INPROC_OPS * 10)
    return min(strict) * scale, min(lenient) * scale


def report_in_process(samples: dict[str, Samples], canonical: tuple[float, float]) -> None:
    task = samples["task"]
    auth_us = Samples([v - task.best for v in samples["auth"].values])
    raw_us = Samples([v - task.best for v in samples["raw"].values])
    ratio = auth_us.best / raw_us.best
    print(
        f"In-process, per handshake ({INPROC_REPEATS} interleaved repeats x {INPROC_OPS} ops, "
        "each op in its own task; best, median in parentheses)"
    )
    print(f"  empty task (subtracted below)      {task.best:8.2f} µs  ({task.median:.2f})")
    print(f"  await auth._ws_auth_required(ws)   {auth_us.best:8.2f} µs  ({auth_us.median:.2f})")
    print(f"  jwt.decode(token, HS256)           {raw_us.best:8.2f} µs  ({raw_us.median:.2f})")
    print(
        f"  ratio auth/raw                     {ratio:8.2f}     "
        f"({auth_us.median / raw_us.median:.2f})  target <= 1.0: {verdict(ratio <= 1.0)}"
    )
    strict, lenient = canonical
    print(
        f"  canonical-encoding check           {strict - lenient:8.2f} µs  "
        f"(strict split {strict:.2f} - lenient split {lenient:.2f}; "
        f"{(strict - lenient) / auth_us.best:.1%} of the authentication)"
    )


def report_server(runs: dict[str, list[Run]]) -> bool:
    print(
        f"\nThrough uvicorn on 127.0.0.1 ({len(runs['auth'])} alternating rounds x {HANDSHAKES} "
        f"handshakes, concurrency {CONCURRENCY}, websockets {websockets.__version__} client; "
        "median, best in parentheses)"
    )
    rates: dict[str, float] = {}
    cpus: dict[str, float] = {}
    for name, label in (
        ("auth", "authenticated   /ws?token="),
        ("open", "unauthenticated /ws/open"),
    ):
        samples = [run.rate for run in runs[name]]
        rates[name] = statistics.median(samples)
        cpu = [run.cpu_us for run in runs[name] if run.cpu_us is not None]
        if cpu:
            cpus[name] = statistics.median(cpu)
        cpu_text = f", server CPU {cpus[name]:6.0f} µs/handshake" if cpu else ""
        failures = sum(run.failures for run in runs[name])
        fail_text = f", {failures} FAILED" if failures else ""
        print(
            f"  {label}  {rates[name]:8.0f} handshakes/s  ({max(samples):.0f}){cpu_text}{fail_text}"
        )
    ratio = rates["auth"] / rates["open"]
    print(
        f"  ratio auth/unauth                 {ratio:8.2f}  target >= 0.9: {verdict(ratio >= 0.9)}"
    )
    if len(cpus) == 2:
        # Throughput also depends on the client sharing this machine; the server's own
        # CPU time per handshake does not.
        print(f"  server CPU ratio unauth/auth      {cpus['open'] / cpus['auth']:8.2f}")
    return not any(run.failures for name in runs for run in runs[name])


async def main() -> int:
    token = auth.create_access_token(uid="bench-user", scopes=["chat:read", "chat:write"])
    print(
        f"Python {sys.version.split()[0]}, PyJWT {jwt.__version__}, "
        f"HS256 token of {len(token)} bytes\n"
    )
    report_in_process(await measure_in_process(token), measure_canonical_check(token))
    own_us, provider_us = await measure_provider_tokens(INPROC_REPEATS, INPROC_OPS // 4)
    ratio = provider_us / own_us
    print(
        f"  own RS256 token                    {own_us:8.2f} µs\n"
        f"  provider RS256 token (cached JWKS) {provider_us:8.2f} µs\n"
        f"  ratio provider/own                 {ratio:8.2f}     target <= 1.1: "
        f"{verdict(ratio <= 1.1)}"
    )
    return 0 if report_server(await measure_server(token)) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
