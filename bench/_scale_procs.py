"""The processes of bench/live_connections.py: one uvicorn server, a few client processes.

The server (bench/_live_app.py) runs in its own process with its descriptor limit
raised to the hard limit; the connections are held by client processes
(bench/_scale_client.py), each opening from its own loopback address, so that one
server can hold more connections than one process could open. Everything is on
127.0.0.0/8; every process is terminated on exit.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import re
import resource
import sys
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
SETTLE = 1.5  # seconds after a gc before reading VmRSS
#: Descriptors a server keeps for itself: listening socket, pipes, files, HTTP calls.
SERVER_RESERVE = 100
_RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


def raise_fd_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to the hard limit; return the new limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def rss(pid: int) -> int:
    """Resident set size of ``pid`` in bytes (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Server:
    """uvicorn serving bench._live_app on 127.0.0.1, port 0; always terminated on exit."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = {**os.environ, **env}
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self.log: collections.deque[str] = collections.deque(maxlen=20)
        self._drain: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def http(self) -> httpx.AsyncClient:
        assert self._http is not None
        return self._http

    async def __aenter__(self) -> Server:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "uvicorn", "bench._live_app:app", "--host", "127.0.0.1", "--port", "0"),
            *("--log-level", "warning", "--backlog", "4096"),
            cwd=ROOT,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=raise_fd_limit,  # the server holds one descriptor per connection
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
        self._http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=60)
        self._drain = asyncio.create_task(self._drain_log())
        return self

    async def _readline(self) -> str:
        assert self.proc is not None
        assert self.proc.stderr is not None
        raw = await self.proc.stderr.readline()
        if not raw:
            raise RuntimeError("uvicorn exited:\n" + "\n".join(self.log))
        line = raw.decode(errors="replace").rstrip()
        self.log.append(line)
        return line

    async def _drain_log(self) -> None:
        # Keep the pipe from filling up; the last lines help when something fails.
        while True:
            await self._readline()

    async def __aexit__(self, *_exc: object) -> None:
        if self._http is not None:
            await self._http.aclose()
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

    async def settled_rss(self) -> int:
        (await self.http.post("/gc")).raise_for_status()
        await asyncio.sleep(SETTLE)
        return rss(self.pid)

    async def stats(self) -> dict[str, int]:
        answer: dict[str, int] = (await self.http.get("/stats")).json()
        return answer

    async def wait_for_connections(self, count: int, seconds: float = 20) -> int:
        """Poll /stats until it shows ``count`` sessions (or time runs out); the last count."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            shown = (await self.stats())["connections"]
            if shown == count or loop.time() > deadline:
                return shown
            await asyncio.sleep(0.1)


class ClientProcess:
    """One bench/_scale_client.py process, opening from ``source``."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "bench" / "_scale_client.py"),
            self.source,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=2**26,  # a report of 20,000 timestamps is one long line
        )

    async def call(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc is not None
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        async with self._lock:
            self.proc.stdin.write(json.dumps(cmd).encode() + b"\n")
            await self.proc.stdin.drain()
            line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"client process {self.source} exited")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b'{"cmd": "exit"}\n')
            await asyncio.wait_for(self.proc.wait(), 10)
        except (TimeoutError, ConnectionError):
            self.proc.kill()
            await self.proc.wait()


class Clients:
    """A few client processes; each command is split over them and run in parallel."""

    def __init__(self, processes: int | list[ClientProcess]) -> None:
        # 127.0.0.2, .3, ...: each process has the whole ephemeral port range to itself.
        self.processes = (
            processes
            if isinstance(processes, list)
            else [ClientProcess(f"127.0.0.{2 + i}") for i in range(processes)]
        )

    def halves(self) -> tuple[Clients, Clients]:
        """Two groups of the same processes (to load two servers side by side)."""
        middle = len(self.processes) // 2
        return Clients(self.processes[:middle]), Clients(self.processes[middle:])

    async def __aenter__(self) -> Clients:
        await asyncio.gather(*(p.start() for p in self.processes))
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await asyncio.gather(*(p.stop() for p in self.processes))

    async def open(self, group: str, count: int, port: int, **options: Any) -> dict[str, Any]:
        """Open ``count`` connections in ``group``, split evenly; merged answers."""
        shares = [count // len(self.processes)] * len(self.processes)
        for i in range(count % len(self.processes)):
            shares[i] += 1
        firsts = [sum(shares[:i]) for i in range(len(shares))]
        answers = await asyncio.gather(
            *(
                p.call(
                    cmd="open",
                    group=group,
                    count=share,
                    first=first,
                    host="127.0.0.1",
                    port=port,
                    **options,
                )
                for p, share, first in zip(self.processes, shares, firsts, strict=True)
                if share
            )
        )
        failures: collections.Counter[str] = collections.Counter()
        for answer in answers:
            failures.update(answer["failures"])
        return {
            "opened": sum(a["opened"] for a in answers),
            "seconds": max(a["seconds"] for a in answers),
            "failures": failures,
        }

    async def report(self, group: str) -> dict[str, Any]:
        answers = await asyncio.gather(*(p.call(cmd="report", group=group) for p in self.processes))
        codes: collections.Counter[str] = collections.Counter()
        for answer in answers:
            codes.update(answer["codes"])
        return {
            "count": sum(a["count"] for a in answers),
            "open": sum(a["open"] for a in answers),
            "frames": sorted(t for a in answers for t in a["frames"]),
            "lost": sorted(t for a in answers for t in a["lost"]),
            "codes": codes,
        }

    async def ping(self, group: str, sample: int) -> tuple[int, int]:
        share = max(1, sample // len(self.processes))
        answers = await asyncio.gather(
            *(p.call(cmd="ping", group=group, sample=share) for p in self.processes)
        )
        return sum(a["answered"] for a in answers), sum(a["sampled"] for a in answers)

    async def drop(self, group: str | None = None, keep: int = 0) -> None:
        """Reset a group's connections (every group's without one), keeping ``keep`` in all."""
        per_process = -(-keep // len(self.processes)) if keep else 0
        await asyncio.gather(
            *(p.call(cmd="drop", group=group, keep=per_process) for p in self.processes)
        )
