"""Handing revocation events to subscribers, shared by the stores with a background listener."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from authx.stores._base import RevocationEvent, Subscriber

__all__ = ["EventListener", "deliver"]

logger = logging.getLogger("authx")

#: Loop time a listener may spend on events back to back (a burst read at once, a batch
#: of rows) before it lets the loop run once.
_DELIVERY_SLICE = 0.01


async def deliver(subscribers: Sequence[Subscriber], event: RevocationEvent) -> None:
    """Call every subscriber with ``event``, one after the other in the caller's task; a
    failing one is logged so the listener lives on.

    No task per event or per subscriber: with one, each event of a burst waited a whole
    loop iteration behind the connection teardowns of the events before it, and the
    burst queued up.
    """
    for subscriber in list(subscribers):
        try:
            await subscriber(event)
        except Exception as exc:  # noqa: BLE001 - the listener must outlive a subscriber
            logger.warning("a revocation subscriber failed (%s: %s)", type(exc).__name__, exc)


Listen = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class EventListener:
    """A store's subscribers and the one background task that feeds them all."""

    def __init__(self) -> None:
        self.subscribers: list[Subscriber] = []
        self.closed = False
        self.task: asyncio.Task[None] | None = None
        self._slice_ends = 0.0

    async def subscribe(
        self, subscriber: Subscriber, listen: Listen, name: str, ready_timeout: float | None
    ) -> None:
        """Add ``subscriber``; on the first one start ``listen(ready)`` and wait until ready.

        ``ready_timeout`` bounds the wait (None: wait until ``listen`` sets ``ready``).
        """
        self.subscribers.append(subscriber)
        if self.task is not None or self.closed:
            return
        ready = asyncio.Event()
        self.task = asyncio.create_task(listen(ready), name=name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), timeout=ready_timeout)

    async def deliver(self, event: RevocationEvent) -> None:
        await deliver(self.subscribers, event)
        # Events read together (a Redis burst, a batch of SQLite rows) are delivered without
        # the loop running in between: let it run once a slice, for the other connections.
        now = time.perf_counter()
        if now >= self._slice_ends:
            self._slice_ends = now + _DELIVERY_SLICE
            await asyncio.sleep(0)

    async def close(self) -> bool:
        """Stop the task and forget the subscribers; False when already closed."""
        if self.closed:
            return False
        self.closed = True
        self.subscribers.clear()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None
        return True
