"""WebSocket connections driven in-process at the ASGI level (no server, no network).

Fast enough for unit tests and mutation testing: the app runs in the test's
event loop and every ASGI message it sends is kept in ``Connection.sent``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: Messages after which the handshake's outcome is known.
DECIDED = ("websocket.send", "websocket.close", "websocket.http.response.body")


@dataclass
class Connection:
    """One WebSocket connection to an ASGI app; ``sent`` is what the app sent, in order."""

    task: asyncio.Task[None]
    inbox: asyncio.Queue[dict[str, Any]]
    sent: list[dict[str, Any]] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, *types: str, timeout: float = 5.0) -> dict[str, Any]:
        """The first message the app sent of one of ``types`` (waiting for it)."""
        async with asyncio.timeout(timeout):
            while True:
                for message in self.sent:
                    if message["type"] in types:
                        return message
                if self.task.done():
                    raise AssertionError(f"the app ended without sending {types}: {self.sent}")
                self._arrived.clear()
                await self._arrived.wait()

    async def send_text(self, text: str) -> None:
        self.inbox.put_nowait({"type": "websocket.receive", "text": text})
        await asyncio.sleep(0)

    async def disconnect(self, code: int = 1000) -> None:
        self.inbox.put_nowait({"type": "websocket.disconnect", "code": code})
        await asyncio.wait_for(self.task, 5)

    @property
    def kind(self) -> str:
        """One of open, denied (HTTP response to the handshake), closed or pending."""
        types = [m["type"] for m in self.sent]
        if "websocket.http.response.start" in types:
            return "denied"
        if "websocket.close" in types:
            return "closed"
        return "open" if "websocket.accept" in types else "pending"

    @property
    def status(self) -> int | None:
        for message in self.sent:
            if message["type"] == "websocket.http.response.start":
                return int(message["status"])
        return None

    @property
    def body(self) -> Any:
        raw = b"".join(
            m.get("body", b"") for m in self.sent if m["type"] == "websocket.http.response.body"
        )
        return json.loads(raw) if raw else None

    @property
    def close(self) -> tuple[int, str] | None:
        for message in self.sent:
            if message["type"] == "websocket.close":
                return int(message.get("code", 1000)), str(message.get("reason") or "")
        return None

    @property
    def messages(self) -> list[Any]:
        """The JSON text messages the app sent."""
        return [json.loads(m["text"]) for m in self.sent if m["type"] == "websocket.send"]

    @property
    def subprotocol(self) -> str | None:
        for message in self.sent:
            if message["type"] == "websocket.accept":
                return message.get("subprotocol")
        return None


def scope_for(
    path: str = "/ws",
    query: str = "",
    headers: Sequence[tuple[str, str]] = (),
    subprotocols: Sequence[str] = (),
    deny_extension: bool = True,
) -> dict[str, Any]:
    return {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "subprotocols": list(subprotocols),
        "extensions": {"websocket.http.response": {}} if deny_extension else {},
    }


async def open_connection(app: Any, scope: dict[str, Any]) -> Connection:
    """Start the app on ``scope`` (the client has sent its ``websocket.connect``)."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    inbox.put_nowait({"type": "websocket.connect"})
    holder: list[Connection] = []

    async def send(message: dict[str, Any]) -> None:
        connection = holder[0]
        connection.sent.append(message)
        connection._arrived.set()

    task = asyncio.get_running_loop().create_task(app(scope, inbox.get, send))
    connection = Connection(task=task, inbox=inbox)
    holder.append(connection)
    task.add_done_callback(lambda _: connection._arrived.set())
    return connection


async def connect(app: Any, path: str = "/ws", query: str = "", **options: Any) -> Connection:
    """Open a connection and wait until the handshake is decided (a message, a close, a denial)."""
    connection = await open_connection(app, scope_for(path, query, **options))
    await connection.wait_for(*DECIDED)
    return connection
