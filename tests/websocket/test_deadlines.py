"""Slotted deadlines: never early, at most one slot late, one loop timer per slot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from authx.websocket._deadlines import Deadlines


async def test_deadlines_fire_in_their_slot_and_cancel() -> None:
    loop = asyncio.get_running_loop()
    fired: dict[str, float] = {}
    deadlines: Deadlines[str] = Deadlines(lambda name: fired.setdefault(name, loop.time()))
    start = loop.time()
    slots = {name: deadlines.add(0.25, name) for name in ("a", "b", "c")}
    late = deadlines.add(0.6, "late")
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
    deadlines.add(-5, 1)
    await asyncio.sleep(0.15)
    assert fired == [1]


# Where each deadline's loop timer is set: never early, at most one resolution late ----------

EPSILON = 1e-6
DELAYS = [0.0, 0.001, 0.05, 0.0999, 0.1, 0.1001, 0.123, 0.25, 1.0, 59.95, 900.0]
STARTS = [1000.0, 1000.05, 1000.0999, 1234.5678]


@pytest.fixture
async def frozen_loop(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """The running loop with ``loop.now`` as its clock (set it before each ``add``).

    Tests using it await nothing, and cancel the timers they armed.
    """
    loop = asyncio.get_running_loop()
    loop.now = 0.0  # type: ignore[attr-defined]
    with monkeypatch.context() as patch:
        patch.setattr(loop, "time", lambda: loop.now)  # type: ignore[attr-defined]
        yield loop
    del loop.now  # type: ignore[attr-defined]


@pytest.mark.parametrize("resolution", [0.1, 0.25, 1.0])
@pytest.mark.parametrize("start", STARTS)
async def test_timer_is_never_early_and_at_most_one_resolution_late(
    frozen_loop: Any, start: float, resolution: float
) -> None:
    deadlines: Deadlines[float] = Deadlines(lambda _: None, resolution=resolution)
    slots = []
    for delay in DELAYS:
        frozen_loop.now = start
        slot = deadlines.add(delay, delay)
        assert slot.handle is not None
        when = slot.handle.when()
        deadline = start + delay
        assert when >= deadline - EPSILON, (delay, when, deadline)
        assert when <= deadline + resolution + EPSILON, (delay, when, deadline)
        # A slot ends on a multiple of the resolution, so nearby deadlines share it.
        assert abs(when / resolution - round(when / resolution)) < EPSILON
        slots.append((slot, delay))
    for slot, delay in slots:
        deadlines.cancel(slot, delay)
    assert len(deadlines) == 0


async def test_deadlines_in_one_slot_share_its_timer(frozen_loop: Any) -> None:
    deadlines: Deadlines[str] = Deadlines(lambda _: None)
    frozen_loop.now = 500.0
    first = deadlines.add(0.01, "a")
    second = deadlines.add(0.09, "b")
    frozen_loop.now = 500.05
    third = deadlines.add(0.04, "c")
    assert first is second is third
    assert first.handle is not None
    assert first.handle.when() == pytest.approx(500.1)
    assert first.members == {"a", "b", "c"}
    beyond = deadlines.add(0.06, "d")  # due at 500.11: the next slot
    assert beyond is not first
    assert beyond.handle is not None
    assert beyond.handle.when() == pytest.approx(500.2)
    assert len(deadlines) == 2
    for slot, member in ((first, "a"), (first, "b"), (first, "c"), (beyond, "d")):
        deadlines.cancel(slot, member)
    assert len(deadlines) == 0


@pytest.mark.parametrize("delay", [-5.0, -0.01, 0.0])
async def test_past_deadlines_are_due_in_the_current_slot(frozen_loop: Any, delay: float) -> None:
    deadlines: Deadlines[int] = Deadlines(lambda _: None)
    frozen_loop.now = 700.03
    slot = deadlines.add(delay, 1)
    assert slot.handle is not None
    assert slot.handle.when() == pytest.approx(700.1)
    deadlines.cancel(slot, 1)


async def test_cancelling_the_last_member_cancels_the_timer(frozen_loop: Any) -> None:
    deadlines: Deadlines[str] = Deadlines(lambda _: None)
    frozen_loop.now = 10.0
    slot = deadlines.add(1.0, "a")
    deadlines.add(1.0, "b")
    handle = slot.handle
    assert handle is not None
    deadlines.cancel(slot, "a")
    assert not handle.cancelled()
    assert slot.handle is handle
    deadlines.cancel(slot, "b")
    assert handle.cancelled()
    assert slot.handle is None
    assert len(deadlines) == 0
    # A new deadline in that slot gets a new timer.
    again = deadlines.add(1.0, "c")
    assert again is not slot
    assert again.handle is not None
    assert not again.handle.cancelled()
    deadlines.cancel(again, "c")


async def test_firing_a_slot_calls_each_member_once_and_forgets_the_slot(
    frozen_loop: Any,
) -> None:
    fired: list[str] = []
    deadlines: Deadlines[str] = Deadlines(fired.append)
    frozen_loop.now = 20.0
    slot = deadlines.add(0.5, "a")
    deadlines.add(0.5, "b")
    handle = slot.handle
    assert handle is not None
    handle._run()  # what the loop does at handle.when()
    assert sorted(fired) == ["a", "b"]
    assert slot.handle is None
    assert slot.members == set()
    assert len(deadlines) == 0
    handle.cancel()
