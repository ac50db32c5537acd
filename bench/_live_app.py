"""The server side of bench/live_connections.py: idle and echo endpoints, and probes.

Served as ``uvicorn bench._live_app:app``; ``JWT_SECRET_KEY`` and
``JWT_WS_ENFORCE_LIFETIME`` come from the environment, so the same endpoint runs
with the live-session machinery on or off. Times are ``time.monotonic()``, the
clock every process of the machine shares. Every endpoint is ``async``: a sync one
would run in a worker thread, whose malloc arena would blur the RSS measured.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import sysconfig
import time
import tracemalloc
from pathlib import Path
from typing import Any

from fastapi import FastAPI, WebSocket

from authx import AuthX, AuthXConfig, TokenPayload
from authx.stores import RevocationEvent

# Longest first: site-packages lies inside the repository's .venv.
_PREFIXES = sorted(
    {str(Path(__file__).resolve().parents[1]), *sysconfig.get_paths().values()},
    key=len,
    reverse=True,
)

_libc = ctypes.CDLL(ctypes.util.find_library("c")) if ctypes.util.find_library("c") else None

app = FastAPI()
auth: AuthX[Any] = AuthX(config=AuthXConfig())
auth.handle_errors(app)


class _StartupLineOnly(logging.Filter):
    """Under ``--log-level warning``, still let through the line that names the port."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.getMessage().startswith(
            "Uvicorn running on"
        )


# uvicorn configures its loggers before importing the app, so this runs after it.
_uvicorn_error = logging.getLogger("uvicorn.error")
_uvicorn_error.setLevel(logging.INFO)
_uvicorn_error.addFilter(_StartupLineOnly())


async def _until_disconnect(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


@app.websocket("/ws")
async def idle(websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
    """Seed-style: accept, greet, then sit in ``receive`` until the connection ends."""
    await websocket.accept()
    await websocket.send_text(payload.sub)
    await _until_disconnect(websocket)


@app.websocket("/ws/echo")
async def echo(websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
    """The latency probe: every text message comes straight back."""
    await websocket.accept()
    await websocket.send_text(payload.sub)
    while (message := await websocket.receive())["type"] == "websocket.receive":
        await websocket.send_text(message.get("text") or "")


@app.websocket("/ws/plain")
async def plain(websocket: WebSocket) -> None:
    """The same without any authentication, for reference."""
    await websocket.accept()
    await websocket.send_text("plain")
    await _until_disconnect(websocket)


_gc_pauses: list[tuple[float, float, int]] = []  # (start, seconds, generation), monotonic
_gc_started = [0.0]


def _time_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_started[0] = time.monotonic()
    elif (seconds := time.monotonic() - _gc_started[0]) >= 0.001:  # young ones: too many
        _gc_pauses.append((_gc_started[0], seconds, info["generation"]))
        del _gc_pauses[:-10_000]


gc.callbacks.append(_time_gc)


@app.get("/gc/pauses")
async def gc_pauses(since: float = 0.0) -> list[tuple[float, float, int]]:
    """The cyclic collector's pauses of 1 ms or more since ``since`` (monotonic):
    (start, seconds, generation)."""
    return [pause for pause in _gc_pauses if pause[0] >= since]


@app.get("/stats")
async def stats() -> dict[str, int]:
    return auth.live_stats()


@app.post("/gc")
async def collect() -> dict[str, int]:
    """A full collection, then free heap pages handed back to the OS (as RSS is read next)."""
    collected = gc.collect()
    if _libc is not None:
        _libc.malloc_trim(0)
    return {"collected": collected}


_closed_at: list[float] = []


async def _after_live_registry(_event: RevocationEvent) -> int:
    # Listeners run in order and the live registry's came first (when AuthX was built):
    # by now it has written every close frame of the revocation.
    _closed_at.append(time.monotonic())
    return 0  # connections closed by this listener


# Private: the revocation listeners are not public API; a benchmark may look inside.
auth._revocations.add_listener(_after_live_registry)


@app.post("/revoke/{sub}")
async def revoke(sub: str) -> dict[str, float]:
    """Revoke ``sub``: when the call began, when the registry had written every close
    frame, and when ``revoke_subject`` returned (after the store's publication)."""
    _closed_at.clear()
    called = time.monotonic()
    await auth.revoke_subject(sub)
    returned = time.monotonic()
    return {
        "called": called,
        "frames_written": _closed_at[0] if _closed_at else returned,
        "returned": returned,
        "open": len(auth.active_connections()),
    }


_baseline: list[tracemalloc.Snapshot] = []


@app.post("/tracemalloc/baseline")
async def tracemalloc_baseline() -> dict[str, bool]:
    """Remember the allocations now (needs ``PYTHONTRACEMALLOC`` in the server's environment)."""
    if not tracemalloc.is_tracing():
        return {"tracing": False}
    gc.collect()
    _baseline[:] = [tracemalloc.take_snapshot()]
    return {"tracing": True}


@app.get("/tracemalloc/diff")
async def tracemalloc_diff(min_bytes: int = 4096) -> dict[str, Any]:
    """Allocations that appeared since the baseline: in total, in authx, and by source line."""
    if not tracemalloc.is_tracing() or not _baseline:
        return {"tracing": False}
    gc.collect()
    stats = tracemalloc.take_snapshot().compare_to(_baseline[0], "lineno")
    lines = [(_short(stat.traceback[0].filename), stat) for stat in stats]
    return {
        "tracing": True,
        "total": sum(stat.size_diff for stat in stats),
        "authx": sum(stat.size_diff for where, stat in lines if where.startswith("authx/")),
        "lines": [
            [f"{where}:{stat.traceback[0].lineno}", stat.size_diff]
            for where, stat in lines
            if abs(stat.size_diff) >= min_bytes
        ],
    }


def _short(filename: str) -> str:
    """``filename`` relative to site-packages, the standard library or the repository."""
    for prefix in _PREFIXES:
        if filename.startswith(prefix + "/"):
            return filename[len(prefix) + 1 :]
    return filename
