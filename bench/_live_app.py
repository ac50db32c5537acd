"""The server side of bench/live_connections.py: one idle authenticated endpoint and probes.

Served as ``uvicorn bench._live_app:app``; ``JWT_SECRET_KEY`` and
``JWT_WS_ENFORCE_LIFETIME`` come from the environment, so the same endpoint runs
with the live-session machinery on or off.
"""

from __future__ import annotations

import gc
import logging
import sysconfig
import tracemalloc
from pathlib import Path
from typing import Any

from fastapi import FastAPI, WebSocket

from authx import AuthX, AuthXConfig, TokenPayload

# Longest first: site-packages lies inside the repository's .venv.
_PREFIXES = sorted(
    {str(Path(__file__).resolve().parents[1]), *sysconfig.get_paths().values()},
    key=len,
    reverse=True,
)

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


@app.websocket("/ws/plain")
async def plain(websocket: WebSocket) -> None:
    """The same without any authentication, for reference."""
    await websocket.accept()
    await websocket.send_text("plain")
    await _until_disconnect(websocket)


@app.get("/stats")
def stats() -> dict[str, int]:
    return auth.live_stats()


@app.post("/gc")
def collect() -> dict[str, int]:
    return {"collected": gc.collect()}


@app.post("/revoke/{sub}")
async def revoke(sub: str) -> dict[str, int]:
    await auth.revoke_subject(sub)
    return {"open": len(auth.active_connections())}


_baseline: list[tracemalloc.Snapshot] = []


@app.post("/tracemalloc/baseline")
def tracemalloc_baseline() -> dict[str, bool]:
    """Remember the allocations now (needs ``PYTHONTRACEMALLOC`` in the server's environment)."""
    if not tracemalloc.is_tracing():
        return {"tracing": False}
    gc.collect()
    _baseline[:] = [tracemalloc.take_snapshot()]
    return {"tracing": True}


@app.get("/tracemalloc/diff")
def tracemalloc_diff(min_bytes: int = 4096) -> dict[str, Any]:
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
