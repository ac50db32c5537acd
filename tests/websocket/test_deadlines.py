"""Slotted deadlines: never early, at most one slot late, one loop timer per slot,
slots cut on the wall clock so a whole second fires on time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from authx.websocket._deadlines import Deadlines


async def test_deadlines_fire_in_their_slot_and_cancel() -> None:
    loop = asyncio.get_running_loop()
    fired: dict[str, float] = {}
    deadlines: Deadlines[str] = Deadlines(lambda name: fired.setdefault(name, loop.time()))
    start, now = loop.time(), time.time()
    slots = {name: deadlines.add(now + 0.25, name) for name in ("a", "b", "c")}
    late = deadlines.add(now + 0.6, "late")
    assert len(deadlines) == 2  # three members share one slot
    deadlines.cancel(slots["c"], "c")
    deadlines.cancel(late, "late")
    assert len(deadlines) == 1
    await asyncio.sleep(0.5)
    assert set(fired) == {"a", "b"}
    for name in ("a", "b"):
        assert 0.25 <= fired[name] - start <= 0.25 + 0.1 + 0.05
    assert len(deadlines) == 0


async def test_past_deadlines_fire_at_once() -> None:
    fired: list[int] = []
    deadlines: Deadlines[int] = Deadlines(fired.append)
    deadlines.add(time.time() - 5, 1)
    await asyncio.sleep(0.15)
    assert fired == [1]


# Where each deadline's loop timer is set: never early, at most one resolution late ----------

EPSILON = 1e-6
DELAYS = [0.0, 0.001, 0.05, 0.0999, 0.1, 0.1001, 0.123, 0.25, 1.0, 59.95, 900.0]
STARTS = [1000.0, 1000.05, 1000.0999, 1234.5678]


class FrozenClocks:
    """The loop's clock and the wall clock, frozen; ``set`` moves both."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self.wall = 0.0

    def set(self, wall: float, loop_time: float = 50.0) -> None:
        self.wall = wall
        self.loop.now = loop_time

    def deadlines(self, fire: Any = lambda _: None, resolution: float = 0.1) -> Deadlines[Any]:
        return Deadlines(fire, resolution=resolution, clock=lambda: self.wall)


@pytest.fixture
async def clocks(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FrozenClocks]:
    """The running loop with ``loop.now`` as its clock, and a frozen wall clock.

    Tests using it await nothing, and cancel the timers they armed.
    """
    loop = asyncio.get_running_loop()
    loop.now = 0.0  # type: ignore[attr-defined]
    with monkeypatch.context() as patch:
        patch.setattr(loop, "time", lambda: loop.now)  # type: ignore[attr-defined]
        yield FrozenClocks(loop)
    del loop.now  # type: ignore[attr-defined]


@pytest.mark.parametrize("resolution", [0.1, 0.25, 1.0])
@pytest.mark.parametrize("start", STARTS)
async def test_timer_is_never_early_and_at_most_one_resolution_late(
    clocks: FrozenClocks, start: float, resolution: float
) -> None:
    deadlines = clocks.deadlines(resolution=resolution)
    slots = []
    for delay in DELAYS:
        clocks.set(start, loop_time=77.7)
        slot = deadlines.add(start + delay, delay)
        assert slot.handle is not None
        # On the wall clock, the timer fires when the loop reaches this moment:
        when = slot.handle.when() - 77.7 + start
        deadline = start + delay
        assert when >= deadline - EPSILON, (delay, when, deadline)
        assert when <= deadline + resolution + EPSILON, (delay, when, deadline)
        # A slot ends on a multiple of the resolution of the wall clock, so nearby
        # deadlines share it, and a deadline on a whole second fires at that second.
        assert abs(when / resolution - round(when / resolution)) < EPSILON
        slots.append((slot, delay))
    for slot, delay in slots:
        deadlines.cancel(slot, delay)
    assert len(deadlines) == 0


@pytest.mark.parametrize("exp", [1_795_921_775, 1_795_921_776.0, 1_700_000_000.5])
async def test_a_deadline_on_a_slot_boundary_fires_on_time(
    clocks: FrozenClocks, exp: float
) -> None:
    """``exp`` is usually a whole second: its timer is not a slot late."""
    deadlines = clocks.deadlines()
    clocks.set(exp - 12.34, loop_time=500.0)
    slot = deadlines.add(exp, "token")
    assert slot.handle is not None
    assert slot.handle.when() == pytest.approx(500.0 + 12.34, abs=EPSILON)
    deadlines.cancel(slot, "token")


async def test_deadlines_in_one_slot_share_its_timer(clocks: FrozenClocks) -> None:
    deadlines = clocks.deadlines()
    clocks.set(500.0, loop_time=20.0)
    first = deadlines.add(500.01, "a")
    second = deadlines.add(500.09, "b")
    clocks.set(500.05, loop_time=20.05)
    third = deadlines.add(500.09, "c")
    assert first is second is third
    assert first.handle is not None
    assert first.handle.when() == pytest.approx(20.1)
    assert list(first.members) == ["a", "b", "c"]  # in the order they came
    beyond = deadlines.add(500.11, "d")  # the next slot
    assert beyond is not first
    assert beyond.handle is not None
    assert beyond.handle.when() == pytest.approx(20.2)
    assert len(deadlines) == 2
    for slot, member in ((first, "a"), (first, "b"), (first, "c"), (beyond, "d")):
        deadlines.cancel(slot, member)
    assert len(deadlines) == 0


@pytest.mark.parametrize("behind", [5.0, 0.01, 0.0])
async def test_past_deadlines_are_due_in_the_current_slot(
    clocks: FrozenClocks, behind: float
) -> None:
    deadlines = clocks.deadlines()
    clocks.set(700.03, loop_time=30.03)
    slot = deadlines.add(700.03 - behind, 1)
    assert slot.handle is not None
    assert slot.handle.when() == pytest.approx(30.1)
    deadlines.cancel(slot, 1)


def test_the_resolution_divides_a_second() -> None:
    with pytest.raises(ValueError, match="divide a second"):
        Deadlines(lambda _: None, resolution=0.3)


async def test_an_emptied_slot_keeps_its_timer_for_the_next_deadline(
    clocks: FrozenClocks,
) -> None:
    fired: list[str] = []
    deadlines = clocks.deadlines(fired.append)
    clocks.set(10.0)
    slot = deadlines.add(11.0, "a")
    deadlines.add(11.0, "b")
    handle = slot.handle
    assert handle is not None
    deadlines.cancel(slot, "a")
    deadlines.cancel(slot, "b")
    deadlines.cancel(slot, "b")  # twice: nothing more happens
    # Emptied: no longer counted, but its timer stays armed for the next connection.
    assert not handle.cancelled()
    assert (len(deadlines), deadlines.idle) == (0, 1)
    again = deadlines.add(11.0, "c")
    assert again is slot
    assert again.handle is handle  # no new loop timer
    assert (len(deadlines), deadlines.idle) == (1, 0)
    deadlines.cancel(again, "c")
    handle._run()  # the timer of an emptied slot fires: nobody is called, the slot is gone
    assert fired == []
    assert (len(deadlines), deadlines.idle) == (0, 0)
    handle.cancel()
    # A new deadline in that slot gets a new timer.
    fresh = deadlines.add(11.0, "d")
    assert fresh is not slot
    assert fresh.handle is not None
    assert fresh.handle is not handle
    deadlines.cancel(fresh, "d")


async def test_at_most_256_emptied_slots_stay_armed(clocks: FrozenClocks) -> None:
    deadlines = clocks.deadlines()
    clocks.set(100.0)
    slots = [deadlines.add(101.0 + i, i) for i in range(300)]
    for i, slot in enumerate(slots):
        deadlines.cancel(slot, i)
    assert (len(deadlines), deadlines.idle) == (0, 256)
    # The oldest emptied ones were cancelled and forgotten, the newest stay armed.
    assert all(slot.handle is None for slot in slots[:44])
    assert all(slot.handle is not None and not slot.handle.cancelled() for slot in slots[44:])
    assert deadlines.add(101.0, "new") is not slots[0]
    assert deadlines.add(101.0 + 299, "last") is slots[299]


async def test_firing_a_slot_calls_each_member_once_and_forgets_the_slot(
    clocks: FrozenClocks,
) -> None:
    fired: list[str] = []
    deadlines = clocks.deadlines(fired.append)
    clocks.set(20.0)
    slot = deadlines.add(20.5, "a")
    deadlines.add(20.5, "b")
    handle = slot.handle
    assert handle is not None
    handle._run()  # what the loop does at handle.when()
    assert sorted(fired) == ["a", "b"]
    assert slot.handle is None
    assert slot.members == {}
    assert len(deadlines) == 0
    handle.cancel()
