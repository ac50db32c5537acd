"""Writing to many sockets at once: ``start_now`` and the Sweeper's slices."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from authx.websocket._sweep import Sweeper, start_now


async def test_start_now_runs_a_coroutine_that_does_not_wait_to_its_end() -> None:
    done: list[str] = []

    async def close() -> None:
        done.append("frame written")

    assert start_now(close()) is None
    assert done == ["frame written"]


async def test_start_now_returns_the_rest_of_a_coroutine_that_waits() -> None:
    gate = asyncio.Event()
    steps: list[str] = []

    async def close() -> None:
        steps.append("started")
        await gate.wait()
        steps.append("finished")

    rest = start_now(close())
    assert steps == ["started"]
    assert rest is not None
    task = asyncio.create_task(rest)
    await asyncio.sleep(0)
    assert not task.done()
    gate.set()
    await asyncio.wait_for(task, 1)
    assert steps == ["started", "finished"]


async def test_the_rest_can_be_cancelled_like_the_coroutine() -> None:
    cancelled: list[bool] = []

    async def close() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    rest = start_now(close())
    assert rest is not None
    task = asyncio.create_task(rest)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled == [True]


async def test_start_now_raises_what_the_coroutine_raises_before_waiting() -> None:
    async def close() -> None:
        raise OSError("client gone")

    with pytest.raises(OSError, match="client gone"):
        start_now(close())


def job(log: list[int], n: int, rest: Coroutine[Any, Any, None] | None = None) -> Any:
    def run() -> Coroutine[Any, Any, None] | None:
        log.append(n)
        return rest

    return run


async def test_jobs_run_in_order_in_slices_with_other_callbacks_between() -> None:
    loop = asyncio.get_running_loop()
    spawned: list[Coroutine[Any, Any, None]] = []
    sweeper = Sweeper(spawned.append, budget=0.0)  # one job per slice
    log: list[int] = []
    for n in range(5):
        sweeper.add(job(log, n))
    assert len(sweeper) == 5
    assert log == []  # nothing runs inside add()

    ticks: list[int] = []

    def tick() -> None:
        ticks.append(len(log))
        if len(ticks) < 10:
            loop.call_soon(tick)

    loop.call_soon(tick)
    for _ in range(10):
        await asyncio.sleep(0)
    assert log == [0, 1, 2, 3, 4]
    assert len(sweeper) == 0
    # The loop ran other callbacks between the slices: the ticks saw the jobs one by one.
    assert ticks[:5] == [1, 2, 3, 4, 5]
    assert spawned == []


async def test_a_generous_budget_runs_every_job_in_one_slice() -> None:
    sweeper = Sweeper(lambda _: None, budget=10.0)
    log: list[int] = []
    for n in range(100):
        sweeper.add(job(log, n))
    await asyncio.sleep(0)
    assert log == list(range(100))
    assert len(sweeper) == 0


async def test_what_a_job_leaves_to_await_is_spawned() -> None:
    spawned: list[Coroutine[Any, Any, None]] = []
    sweeper = Sweeper(spawned.append, budget=10.0)

    async def rest() -> None:
        pass

    pending = rest()
    sweeper.add(job([], 0, pending))
    await asyncio.sleep(0)
    assert spawned == [pending]
    await pending


async def test_a_failing_job_is_reported_and_the_others_still_run() -> None:
    loop = asyncio.get_running_loop()
    reported: list[Any] = []
    loop.set_exception_handler(lambda _, context: reported.append(context["exception"]))
    try:
        sweeper = Sweeper(lambda _: None, budget=10.0)
        log: list[int] = []

        def fails() -> None:
            raise RuntimeError("bad job")

        sweeper.add(job(log, 1))
        sweeper.add(fails)
        sweeper.add(job(log, 2))
        for _ in range(3):
            await asyncio.sleep(0)
        assert log == [1, 2]
        assert [str(e) for e in reported] == ["bad job"]
        assert len(sweeper) == 0
    finally:
        loop.set_exception_handler(None)
