"""Handing a store's revocation events to its subscribers: in order, back to back,
a failing subscriber logged (the listener lives on), and the loop let run in a burst."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from authx.stores._base import RevocationEvent
from authx.stores._delivery import EventListener


def _event(i: int) -> RevocationEvent:
    return RevocationEvent("subject", f"user-{i}", before=float(i))


async def test_events_reach_the_only_subscriber_in_order_in_the_listeners_task() -> None:
    listener = EventListener()
    seen: list[tuple[str, asyncio.Task[object] | None]] = []

    async def subscriber(event: RevocationEvent) -> None:
        seen.append((event.value, asyncio.current_task()))

    listener.subscribers.append(subscriber)
    for i in range(5):
        await listener.deliver(_event(i))
    assert [value for value, _ in seen] == [f"user-{i}" for i in range(5)]
    # No task per event: the subscriber runs in the task that delivers.
    assert {task for _, task in seen} == {asyncio.current_task()}


@pytest.mark.parametrize("others", [0, 1])
async def test_a_failing_subscriber_is_logged_and_the_next_event_still_arrives(
    others: int, caplog: pytest.LogCaptureFixture
) -> None:
    listener = EventListener()
    calls: list[str] = []

    async def failing(event: RevocationEvent) -> None:
        calls.append("failing:" + event.value)
        if event.value == "user-0":
            raise RuntimeError("subscriber broke")

    async def healthy(event: RevocationEvent) -> None:
        calls.append("healthy:" + event.value)

    listener.subscribers.append(failing)
    listener.subscribers.extend([healthy] * others)
    with caplog.at_level(logging.WARNING, logger="authx"):
        await listener.deliver(_event(0))
        await listener.deliver(_event(1))
    assert [r.getMessage() for r in caplog.records] == [
        "a revocation subscriber failed (RuntimeError: subscriber broke)"
    ]
    assert calls.count("failing:user-1") == 1
    assert calls.count("healthy:user-0") == calls.count("healthy:user-1") == others


async def test_a_burst_lets_the_loop_run_every_10_ms_and_not_after_each_event() -> None:
    listener = EventListener()
    ticks = 0

    async def slow(event: RevocationEvent) -> None:
        ends = time.perf_counter() + 0.001  # a millisecond of work (closing connections)
        while time.perf_counter() < ends:
            pass

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    listener.subscribers.append(slow)
    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        ticks = 0
        for i in range(60):  # 60 ms of delivery, back to back
            await listener.deliver(_event(i))
    finally:
        task.cancel()
    # Other tasks ran during the burst (about every 10 ms), not once per event.
    assert 3 <= ticks <= 20
