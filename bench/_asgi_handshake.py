"""Where an authenticated handshake's extra CPU goes, inside the application.

bench/_ws_app.py's ASGI app is called in-process (no socket, no uvicorn) with a
handshake on each route: open, with one trivial dependency, with an unused token in
the query string, with PyJWT's ``jwt.decode`` in the endpoint and nothing else, with
AuthX without and with the live session. Each handshake runs in its own task, as
uvicorn runs one per connection; routes are interleaved, the best of the repeats kept.
"""

from __future__ import annotations

import asyncio
import time

from starlette.types import Message, Scope

from bench._ws_app import app

__all__ = ["ROUTES", "asgi_handshake_costs", "websocket_scope"]

#: label -> (path, whether the handshake carries ?token=)
ROUTES: dict[str, tuple[str, bool]] = {
    "open": ("/ws/open", False),
    "open, one trivial dependency": ("/ws/dependency", False),
    "open, unused ?token= in the query": ("/ws/open", True),
    "jwt.decode in the endpoint, nothing else": ("/ws/pyjwt", True),
    "AuthX without the live session": ("/ws/sessionless", True),
    "AuthX (WS_AUTH_REQUIRED)": ("/ws", True),
}


def websocket_scope(path: str, query: str) -> Scope:
    """The ASGI scope of a WebSocket handshake from 127.0.0.1 to ``path?query``."""
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"127.0.0.1:8000"), (b"upgrade", b"websocket")],
        "subprotocols": [],
        "state": {},
        "extensions": {"websocket.http.response": {}},
    }


async def _handshake(path: str, query: str) -> None:
    messages = iter(({"type": "websocket.connect"}, {"type": "websocket.disconnect"}))
    sent: list[str] = []

    async def receive() -> Message:
        return next(messages)

    async def send(message: Message) -> None:
        sent.append(message["type"])

    await app(websocket_scope(path, query), receive, send)
    assert sent == ["websocket.accept", "websocket.close"], sent


async def _per_handshake(path: str, query: str, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        await asyncio.create_task(_handshake(path, query))
    return (time.perf_counter() - start) / count * 1e6


async def asgi_handshake_costs(token: str, count: int, repeats: int) -> dict[str, float]:
    """Microseconds per handshake on each route of :data:`ROUTES` (best of ``repeats``)."""
    queries = {label: f"token={token}" if carries else "" for label, (_, carries) in ROUTES.items()}
    for label, (path, _) in ROUTES.items():  # warm-up
        await _per_handshake(path, queries[label], count // 10)
    best = dict.fromkeys(ROUTES, float("inf"))
    for _ in range(repeats):
        for label, (path, _) in ROUTES.items():
            best[label] = min(best[label], await _per_handshake(path, queries[label], count))
    return best
