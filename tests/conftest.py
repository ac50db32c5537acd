"""Shared fixtures: real uvicorn servers on 127.0.0.1 and the clients that talk to them."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# Admission control has its own tests (tests/websocket/test_admission.py), which set
# its limits explicitly; elsewhere a test opening hundreds of sockets from 127.0.0.1,
# or sending a corpus of bad tokens, is not an attack. Servers started by the tests
# inherit this environment.
os.environ.setdefault("JWT_WS_RATE_LIMIT", "off")
os.environ.setdefault("JWT_WS_SUBJECT_RATE_LIMIT", "off")

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-secret-key-that-is-long-enough-for-hs256"


@dataclass
class LiveServer:
    """A uvicorn process serving one app; its log is kept for assertions."""

    app: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    _log_offset: int = field(default=0)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), **self.env}
        port = str(self.port)
        offset = len(self.log())
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", self.app, "--host", "127.0.0.1", "--port", port],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", self.log()[offset:])
            if match:
                self.port = int(match.group(1))
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"uvicorn {self.app} did not start:\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would (no shutdown, no flush)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.port = 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def mark(self) -> None:
        """Start a new section of the log for :meth:`new_log`."""
        self._log_offset = len(self.log())

    def new_log(self) -> str:
        return self.log()[self._log_offset :]

    def assert_log_clean(self, *secrets: str, wait: float = 0.3) -> str:
        """No ERROR line and none of ``secrets`` in the log since :meth:`mark`."""
        time.sleep(wait)  # let the server flush the lines of the last connection
        text = self.new_log()
        errors = [line for line in text.splitlines() if "ERROR" in line or "Traceback" in line]
        assert not errors, f"server logged errors:\n{text}"
        for secret in secrets:
            assert secret not in text, f"a token leaked into the server log:\n{text}"
        return text


def free_port() -> int:
    """A port free on 127.0.0.1 right now (for servers whose config must name their origin)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def live_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[object]:
    """``factory(app, **env)`` starts (once per app and env) a uvicorn server."""
    servers: dict[tuple[str, tuple[tuple[str, str], ...]], LiveServer] = {}
    logs = tmp_path_factory.mktemp("server-logs")

    def factory(app: str, port: int = 0, **env: str) -> LiveServer:
        """``port`` 0 lets the kernel choose; pass :func:`free_port` to know it in advance."""
        key = (app, tuple(sorted(env.items())))
        server = servers.get(key)
        if server is None:
            name = re.sub(r"\W+", "_", f"{app}_{len(servers)}")
            server = LiveServer(app=app, env=env, log_path=logs / f"{name}.log", port=port)
            server.start()
            servers[key] = server
        server.mark()
        return server

    yield factory
    for server in servers.values():
        server.stop()
