"""What a real `websockets` client observes of a handshake."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus


async def closed_after(ws: Any, timeout: float = 5.0) -> tuple[int | None, str | None, float]:
    """Wait for the server's close frame, draining (not answering) what the server pushes.

    Returns the close code, the reason and when (``time.time()``) the close was seen.
    """
    async with asyncio.timeout(timeout):
        with contextlib.suppress(ConnectionClosed):
            async for _ in ws:
                pass
    return ws.close_code, ws.close_reason, time.time()


@dataclass
class Outcome:
    kind: str  # "open", "denied" or "closed"
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    code: int | None = None
    reason: str | None = None
    message: Any = None


async def handshake(
    url: str, headers: dict[str, str] | None = None, timeout: float = 5.0
) -> Outcome:
    """Connect, read the first message, and report what the client saw."""
    try:
        async with asyncio.timeout(timeout):
            async with websockets.connect(url, additional_headers=headers) as ws:
                try:
                    raw = await ws.recv()
                except ConnectionClosed as closed:
                    rcvd = closed.rcvd
                    return Outcome(
                        "closed",
                        code=rcvd.code if rcvd else None,
                        reason=rcvd.reason if rcvd else None,
                    )
                return Outcome("open", message=json.loads(raw))
    except InvalidStatus as exc:
        response = exc.response
        body = bytes(response.body or b"")
        return Outcome(
            "denied",
            status=response.status_code,
            body=json.loads(body) if body.startswith(b"{") else body.decode(errors="replace"),
            headers={k.lower(): v for k, v in response.headers.raw_items()},
        )
