"""What WebSocket authentication costs: in-process against the CPython floor and PyJWT,
and through uvicorn against an open route and against the PyPI ``authx`` package.

Run with ``.venv/bin/python bench/ws_auth.py`` (or ``make bench``). Targets:

- the whole WebSocket authentication of an HS256 token (``_ws_auth_required``: find the
  token, admission, verify, claims, payload, revocation, live session) at most 2x the
  CPython floor (``bench/_floor.py``), and no more than a raw ``jwt.decode``;
- RS256 and ES256 verification within 1.2x of the bare ``cryptography`` verify plus
  the floor's parsing;
- through one uvicorn process: authenticated handshakes at least 0.97x the rate of
  open ones, and server CPU per handshake at most 1.15x.

Every ratio is measured side by side in one run; the last lines (``SUMMARY ...``) are
what ``make bench`` tabulates.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import jwt
import websockets
from starlette.types import Message
from starlette.websockets import WebSocket

from authx.token import split_jws
from bench._asgi_handshake import asgi_handshake_costs, websocket_scope
from bench._floor import asymmetric_auths, floor_call, measure, stage_profile, verification_call
from bench._jwks_compare import measure_provider_tokens
from bench._pypi_authx import PYPI_VERSION, pypi_app_dir, pypi_python
from bench._ws_app import SECRET, auth
from bench.summary import summary_line, verdict

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
    return WebSocket(websocket_scope("/ws", f"token={token}"), _receive, _send)


async def _raw_decode(websocket: WebSocket, token: str) -> None:
    jwt.decode(token, SECRET, algorithms=["HS256"])


async def _nothing(websocket: WebSocket, token: str) -> None:
    return None


async def _authenticate(websocket: WebSocket, token: str) -> None:
    await auth._ws_auth_required(websocket)


Operation = Callable[[WebSocket, str], Coroutine[Any, Any, None]]
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


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int

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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def uvicorn_server(
    python: str | Path = sys.executable, app: str = "bench._ws_app:app", app_dir: Path = ROOT
) -> Iterator[Server]:
    """uvicorn serving ``app`` on 127.0.0.1 with no per-connection logging.

    ``app_dir`` is the working directory and the only path added, so that the PyPI
    package's app (``bench/_pypi_authx.py``) imports that package, not this project.
    """
    with tempfile.TemporaryDirectory(prefix="authx-bench-") as tmp:
        log_path = Path(tmp) / "server.log"
        port = _free_port()
        command = [
            str(python), "-m", "uvicorn", app,
            "--host", "127.0.0.1", "--port", str(port),
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(app_dir)}
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command, cwd=app_dir, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        server = Server(process, log_path, port)
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"uvicorn did not start:\n{server.log()}") from None
                    time.sleep(0.05)
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


Route = Callable[[int], Awaitable[Run]]


async def run_rounds(routes: dict[str, Route]) -> dict[str, list[Run]]:
    """Warm every route, then alternate them round after round (rotating the order)."""
    for name, run in routes.items():
        warm = await run(WARMUP_HANDSHAKES)
        if warm.failures or not warm.handshakes:
            raise RuntimeError(f"warm-up of {name} failed")
    names = list(routes)
    runs: dict[str, list[Run]] = {name: [] for name in names}
    deadline = time.monotonic() + TOTAL_TIME_CAP
    for round_ in range(ROUNDS):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            runs[name].append(await routes[name](HANDSHAKES))
        if time.monotonic() > deadline:
            break
    return runs


async def measure_servers(token: str) -> tuple[dict[str, list[Run]], str | None]:
    """This project's server (authenticated and open routes) and, beside it, the same app
    on the PyPI ``authx`` package; the second element says why that one was skipped."""
    python = pypi_python()
    with contextlib.ExitStack() as stack:
        ours = stack.enter_context(uvicorn_server())
        base = f"ws://127.0.0.1:{ours.port}"
        routes: dict[str, Route] = {
            "auth": lambda n: drive(ours, f"{base}/ws?token={token}", n),
            "open": lambda n: drive(ours, f"{base}/ws/open", n),
        }
        skipped = python if isinstance(python, str) else None
        servers = [ours]
        if not isinstance(python, str):
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="authx-pypi-")))
            theirs = stack.enter_context(
                uvicorn_server(python, "pypi_ws_app:app", pypi_app_dir(tmp))
            )
            servers.append(theirs)
            async with httpx.AsyncClient() as http:
                answer = await http.get(f"http://127.0.0.1:{theirs.port}/token")
            their_token = answer.json()["token"]
            their_base = f"ws://127.0.0.1:{theirs.port}"
            routes["pypi_auth"] = lambda n: drive(theirs, f"{their_base}/ws?token={their_token}", n)
            routes["pypi_open"] = lambda n: drive(theirs, f"{their_base}/ws/open", n)
        runs = await run_rounds(routes)
        for server in servers:
            errors = [line for line in server.log().splitlines() if "ERROR" in line]
            if errors:
                print("server logged errors:", *errors[:5], sep="\n  ")
        return runs, skipped


# Report -----------------------------------------------------------------------


SUMMARY: list[str] = []


def summary(key: str, value: float, target: float | None = None, ok: bool | None = None) -> None:
    """A line of the table ``make bench`` prints at the end; every value here is a ratio."""
    SUMMARY.append(summary_line("ws_auth", key, value, target, "ratio", ok))


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


def report_in_process(
    samples: dict[str, Samples], canonical: tuple[float, float], floor_us: float
) -> None:
    task = samples["task"]
    auth_us = Samples([v - task.best for v in samples["auth"].values])
    raw_us = Samples([v - task.best for v in samples["raw"].values])
    ratio = auth_us.best / raw_us.best
    floor_ratio = auth_us.best / floor_us
    print(
        f"In-process, per handshake ({INPROC_REPEATS} interleaved repeats x {INPROC_OPS} ops, "
        "each op in its own task; best, median in parentheses)"
    )
    print(f"  empty task (subtracted below)      {task.best:8.2f} µs  ({task.median:.2f})")
    print(f"  await auth._ws_auth_required(ws)   {auth_us.best:8.2f} µs  ({auth_us.median:.2f})")
    print(f"  CPython floor (split, C base64, json.loads x2, hmac.digest): {floor_us:.2f} µs")
    print(
        f"  ratio auth/floor                   {floor_ratio:8.2f}     "
        f"target <= 2.0: {verdict(floor_ratio <= 2.0)}"
    )
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
    summary("hs256_auth_over_floor", floor_ratio, 2.0, floor_ratio <= 2.0)
    summary("hs256_auth_over_pyjwt", ratio, 1.0, ratio <= 1.0)


def report_stages(stages: list[tuple[str, float]]) -> None:
    print("\n  Where the HS256 authentication goes (each stage timed alone, best of repeats):")
    whole = stages[-1][1]
    for name, us in stages:
        print(f"    {name:<36} {us:7.2f} µs  {us / whole:6.1%}")


async def report_asymmetric() -> None:
    """RS256 and ES256: verification and the whole authentication against the floor."""
    for algorithm, (asym_auth, public_key) in asymmetric_auths().items():
        token = asym_auth.create_access_token(uid="bench-user", scopes=["chat:read"])
        floor_us = measure(floor_call(token, algorithm, public_key), 2000, INPROC_REPEATS)
        verify_us = measure(verification_call(asym_auth, token), 2000, INPROC_REPEATS)
        sockets = [handshake_websocket(token) for _ in range(INPROC_OPS // 2)]
        whole = []
        for _ in range(3):
            sockets = [handshake_websocket(token) for _ in range(INPROC_OPS // 2)]
            start = time.perf_counter()
            for websocket in sockets:
                await asyncio.create_task(asym_auth._ws_auth_required(websocket))
            whole.append((time.perf_counter() - start) / len(sockets) * 1e6)
        ratio = verify_us / floor_us
        print(
            f"  {algorithm}: floor (cryptography verify + parsing) {floor_us:7.2f} µs, "
            f"verify_token {verify_us:7.2f} µs, ratio {ratio:.2f} target <= 1.2: "
            f"{verdict(ratio <= 1.2)}; whole authentication {min(whole):7.2f} µs "
            f"({min(whole) / floor_us:.2f}x the floor)"
        )
        summary(f"{algorithm.lower()}_verify_over_floor", ratio, 1.2, ratio <= 1.2)
        summary(f"{algorithm.lower()}_auth_over_floor", min(whole) / floor_us)


def _route_figures(runs: list[Run]) -> tuple[float, float | None, int]:
    rate = statistics.median(run.rate for run in runs)
    cpu = [run.cpu_us for run in runs if run.cpu_us is not None]
    return rate, (statistics.median(cpu) if cpu else None), sum(run.failures for run in runs)


def report_servers(runs: dict[str, list[Run]], skipped: str | None) -> tuple[bool, float | None]:
    """Print the figures; returns whether every handshake succeeded, and the server CPU
    per open handshake (µs) when it could be read."""
    print(
        f"\nThrough uvicorn on 127.0.0.1 ({len(runs['auth'])} rotating rounds x {HANDSHAKES} "
        f"handshakes per route, concurrency {CONCURRENCY}, websockets {version('websockets')} "
        "client; median)"
    )
    figures = {name: _route_figures(route_runs) for name, route_runs in runs.items()}
    labels = {
        "auth": "this project, authenticated /ws?token=",
        "open": "this project, open /ws/open",
        "pypi_auth": f"PyPI authx {PYPI_VERSION}, authenticated",
        "pypi_open": f"PyPI authx {PYPI_VERSION}, open",
    }
    for name, (rate, cpu, failures) in figures.items():
        cpu_text = f", server CPU {cpu:6.0f} µs/handshake" if cpu is not None else ""
        fail_text = f", {failures} FAILED" if failures else ""
        print(f"  {labels[name]:<42} {rate:8.0f} handshakes/s{cpu_text}{fail_text}")
    rate_ratio = figures["auth"][0] / figures["open"][0]
    print(
        f"  rate auth/open         {rate_ratio:6.2f}  target >= 0.97: {verdict(rate_ratio >= 0.97)}"
    )
    summary("handshake_rate_auth_over_open", rate_ratio, 0.97, rate_ratio >= 0.97)
    auth_cpu, open_cpu = figures["auth"][1], figures["open"][1]
    if auth_cpu is not None and open_cpu is not None:
        cpu_ratio = auth_cpu / open_cpu
        met = verdict(cpu_ratio <= 1.15)
        print(f"  server CPU auth/open   {cpu_ratio:6.2f}  target <= 1.15: {met}")
        summary("handshake_cpu_auth_over_open", cpu_ratio, 1.15, cpu_ratio <= 1.15)
    if skipped is not None:
        print(f"  PyPI authx: skipped ({skipped})")
    elif "pypi_auth" in figures:
        their_cpu, their_open = figures["pypi_auth"][1], figures["pypi_open"][1]
        if their_cpu is not None and their_open is not None and auth_cpu is not None:
            print(
                f"  PyPI authx server CPU auth/open {their_cpu / their_open:6.2f}; "
                f"this project's authenticated handshake / PyPI's: {auth_cpu / their_cpu:.2f}"
            )
            summary("handshake_cpu_ours_over_pypi_authx", auth_cpu / their_cpu)
    return not any(failures for _, _, failures in figures.values()), open_cpu


def report_asgi_costs(costs: dict[str, float], open_cpu: float | None) -> None:
    """What each part adds to an open handshake inside the app; beside the server CPU of
    an open handshake through uvicorn, what that part alone would make the ratio."""
    base = costs["open"]
    print(
        f"\nInside the app (the ASGI app called in-process, {INPROC_OPS} handshakes per route, "
        f"best of {INPROC_REPEATS} interleaved repeats)"
    )
    for label, us in costs.items():
        extra = us - base
        line = f"  {label:<42} {us:7.1f} µs"
        if label != "open":
            line += f"   +{extra:5.1f} µs"
            if open_cpu is not None:
                line += f"   alone: uvicorn CPU ratio {(open_cpu + extra) / open_cpu:.2f}"
        print(line)
    ours = costs["AuthX (WS_AUTH_REQUIRED)"] - base
    pyjwt = costs["jwt.decode in the endpoint, nothing else"] - base
    summary("in_app_extra_authx_over_pyjwt_alone", ours / pyjwt)


def print_summary() -> None:
    print(*SUMMARY, sep="\n")


async def main() -> int:
    token = auth.create_access_token(uid="bench-user", scopes=["chat:read", "chat:write"])
    print(
        f"Python {sys.version.split()[0]}, PyJWT {jwt.__version__}, "
        f"HS256 token of {len(token)} bytes\n"
    )
    floor_us = measure(floor_call(token, "HS256", SECRET.encode()), INPROC_OPS * 5, INPROC_REPEATS)
    report_in_process(await measure_in_process(token), measure_canonical_check(token), floor_us)
    report_stages(await stage_profile(auth, token, handshake_websocket, INPROC_OPS, 5))
    print()
    await report_asymmetric()
    own_us, provider_us = await measure_provider_tokens(INPROC_REPEATS, INPROC_OPS // 4)
    ratio = provider_us / own_us
    print(
        f"  own RS256 token                    {own_us:8.2f} µs\n"
        f"  provider RS256 token (cached JWKS) {provider_us:8.2f} µs\n"
        f"  ratio provider/own                 {ratio:8.2f}     target <= 1.1: "
        f"{verdict(ratio <= 1.1)}"
    )
    summary("provider_token_over_own", ratio, 1.1, ratio <= 1.1)
    ok, open_cpu = report_servers(*await measure_servers(token))
    report_asgi_costs(await asgi_handshake_costs(token, INPROC_OPS, INPROC_REPEATS), open_cpu)
    print()
    print_summary()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
