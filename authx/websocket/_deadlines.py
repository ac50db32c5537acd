"""Deadlines for many connections: one event-loop timer per 100 ms slot, not per connection.

Tens of thousands of sessions expire at scattered times. A ``loop.call_at`` handle
each would cost ~200 bytes and a heap entry per connection; grouping deadlines
into slots costs one dict entry per connection and one handle per slot. A
deadline fires at the end of its slot: never early, at most one slot late. A slot
whose members all left keeps its timer a while (a few hundred at most), for the next
connection whose deadline falls in it.

Slots are cut on the wall clock (``time.time()``), the clock of ``exp``: a token's
``exp`` is usually a whole second, which is the end of a slot, so it fires on time
rather than up to a slot late. The loop timer of a slot is set on the loop's own
clock, converted when the slot is made.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["CALLBACK_CONTEXT", "Deadlines", "Slot"]

M = TypeVar("M")

#: Emptied slots whose loop timers stay armed, at most: a connection that ends before
#: its token expires, followed by another whose deadline falls in the same slot, then
#: costs no ``call_at`` and ``cancel`` (a microsecond together, per connection). The
#: timer of an empty slot fires and does nothing; beyond this many, the oldest is cancelled.
_IDLE_SLOTS = 256

#: Deadline and task-done callbacks need no context variables; sharing one empty
#: context saves the copy asyncio would otherwise make for each of them.
CALLBACK_CONTEXT = contextvars.Context()


class Slot(Generic[M]):
    """The members due at the end of one slot, and the loop timer that fires them."""

    __slots__ = ("handle", "key", "members")

    def __init__(self, key: tuple[asyncio.AbstractEventLoop, int]) -> None:
        self.key = key
        #: Members in the order they came (a dict of None: smaller than a set when large).
        self.members: dict[M, None] = {}
        self.handle: asyncio.TimerHandle | None = None


class Deadlines(Generic[M]):
    """Calls ``fire(member)`` once each member's deadline has passed.

    ``resolution`` divides a second (0.1, 0.25, 1.0): slots then end on whole seconds.
    """

    def __init__(
        self,
        fire: Callable[[M], None],
        resolution: float = 0.1,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._fire = fire
        self._per_second = round(1 / resolution)
        if not math.isclose(self._per_second * resolution, 1.0):
            raise ValueError("resolution must divide a second (0.1, 0.25, 1.0, ...)")
        #: ``time.time`` unless told otherwise, read at each call (so time can be frozen).
        self._clock = clock
        self._slots: dict[tuple[asyncio.AbstractEventLoop, int], Slot[M]] = {}
        #: The slots in ``_slots`` left without members, oldest first.
        self._idle: dict[tuple[asyncio.AbstractEventLoop, int], Slot[M]] = {}

    def add(self, when: float, member: M) -> Slot[M]:
        """Fire ``member`` at ``when`` (clock time, rounded up to its slot); returns the slot."""
        loop = asyncio.get_running_loop()
        now = time.time() if self._clock is None else self._clock()
        # Multiplying by a whole number keeps a whole second whole: 3 * 10 is 30 exactly,
        # where 3 / 0.1 is 30.000000000000004 and would land a slot late.
        index = math.ceil(max(when, now) * self._per_second)
        key = (loop, index)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = Slot(key)
            slot_end = index / self._per_second
            slot.handle = loop.call_at(
                loop.time() + (slot_end - now), self._run, slot, context=CALLBACK_CONTEXT
            )
        elif not slot.members:
            self._idle.pop(key, None)  # emptied, armed: in use again
        slot.members[member] = None
        return slot

    def cancel(self, slot: Slot[M], member: M) -> None:
        members = slot.members
        if members.pop(member, 0) is not None or members or slot.handle is None:
            return  # not a member, others remain, or the slot already fired
        idle = self._idle
        idle[slot.key] = slot
        if len(idle) > _IDLE_SLOTS:
            oldest = idle.pop(next(iter(idle)))
            if oldest.handle is not None:
                oldest.handle.cancel()
                oldest.handle = None
            self._slots.pop(oldest.key, None)

    def _run(self, slot: Slot[M]) -> None:
        self._slots.pop(slot.key, None)
        self._idle.pop(slot.key, None)
        slot.handle = None
        members, slot.members = slot.members, {}
        for member in members:
            self._fire(member)

    def __len__(self) -> int:
        """Slots with members (loop timers armed for someone), of every loop."""
        return len(self._slots) - len(self._idle)

    @property
    def idle(self) -> int:
        """Emptied slots whose timers stay armed (at most 256), of every loop."""
        return len(self._idle)
