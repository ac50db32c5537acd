"""Deadlines for many connections: one event-loop timer per 100 ms slot, not per connection.

Tens of thousands of sessions expire at scattered times. A ``loop.call_at`` handle
each would cost ~200 bytes and a heap entry per connection; grouping deadlines
into slots costs one set entry per connection and one handle per slot. A
deadline fires at the end of its slot: never early, at most one slot late.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["CALLBACK_CONTEXT", "Deadlines", "Slot"]

M = TypeVar("M")

#: Deadline and task-done callbacks need no context variables; sharing one empty
#: context saves the copy asyncio would otherwise make for each of them.
CALLBACK_CONTEXT = contextvars.Context()


class Slot(Generic[M]):
    """The members due at the end of one slot, and the loop timer that fires them."""

    __slots__ = ("handle", "key", "members")

    def __init__(self, key: tuple[asyncio.AbstractEventLoop, int]) -> None:
        self.key = key
        self.members: set[M] = set()
        self.handle: asyncio.TimerHandle | None = None


class Deadlines(Generic[M]):
    """Calls ``fire(member)`` once each member's deadline has passed."""

    def __init__(self, fire: Callable[[M], None], resolution: float = 0.1) -> None:
        self._fire = fire
        self._resolution = resolution
        self._slots: dict[tuple[asyncio.AbstractEventLoop, int], Slot[M]] = {}

    def add(self, delay: float, member: M) -> Slot[M]:
        """Fire ``member`` in ``delay`` seconds (rounded up to its slot); returns the slot."""
        loop = asyncio.get_running_loop()
        index = math.ceil((loop.time() + max(delay, 0.0)) / self._resolution)
        key = (loop, index)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = Slot(key)
            slot.handle = loop.call_at(
                index * self._resolution, self._run, slot, context=CALLBACK_CONTEXT
            )
        slot.members.add(member)
        return slot

    def cancel(self, slot: Slot[M], member: M) -> None:
        slot.members.discard(member)
        if not slot.members and slot.handle is not None:
            slot.handle.cancel()
            slot.handle = None
            self._slots.pop(slot.key, None)

    def _run(self, slot: Slot[M]) -> None:
        self._slots.pop(slot.key, None)
        slot.handle = None
        members, slot.members = slot.members, set()
        for member in members:
            self._fire(member)

    def __len__(self) -> int:
        """Armed slots (loop timers) of every loop."""
        return len(self._slots)
