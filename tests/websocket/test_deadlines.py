"""Slotted deadlines: never early, at most one slot late, one loop timer per slot."""

from __future__ import annotations

import asyncio

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
