"""Handing revocation events to subscribers, shared by the stores with a background listener."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from authx.stores._base import RevocationEvent, Subscriber

__all__ = ["EventListener", "deliver"]

logger = logging.getLogger("authx")


async def deliver(subscribers: Sequence[Subscriber], event: RevocationEvent) -> None:
    """Call every subscriber with ``event``; a failing one is logged so the listener lives on."""
    results = await asyncio.gather(
        *(subscriber(event) for subscriber in list(subscribers)), return_exceptions=True
    )
    for result in results:
        if isinstance(result, Exception):
            logger.warning("a revocation subscriber failed (%s: %s)", type(result).__name__, result)


Listen = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class EventListener:
    """A store's subscribers and the one background task that feeds them all."""

    def __init__(self) -> None:
        self.subscribers: list[Subscriber] = []
        self.closed = False
        self.task: asyncio.Task[None] | None = None

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
