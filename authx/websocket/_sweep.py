"""Writing to many sockets at once without holding up the event loop.

Ten thousand tokens issued in the same second expire in the same second. Closing
each connection in a task of its own would create ten thousand tasks in one
callback and run them all in the next loop iteration, a pause of a second or more
for every other connection. Instead each close is started at once with
:func:`start_now` (the ASGI ``send`` of a close usually completes without waiting:
the frame is written before it returns) and a :class:`Sweeper` runs such jobs in
slices of a few milliseconds, one slice per loop iteration, so other connections
are served in between.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

from authx.websocket._deadlines import CALLBACK_CONTEXT

__all__ = ["Job", "Steps", "Sweeper", "start_now", "steps"]

#: A job writes to one connection now; it returns what is left to await, if anything.
Job = Callable[[], Coroutine[Any, Any, None] | None]
#: What ``await`` iterates over: a coroutine, or the iterator ``__await__`` returns.
Steps = Generator[Any, Any, Any] | Coroutine[Any, Any, Any]


def steps(awaitable: Awaitable[Any]) -> Steps:
    """What ``await awaitable`` iterates over (``send``, ``throw`` and ``close`` included)."""
    if isinstance(awaitable, Coroutine):
        return awaitable
    iterator: Generator[Any, Any, Any] = awaitable.__await__()
    return iterator


def start_now(awaitable: Awaitable[None]) -> Coroutine[Any, Any, None] | None:
    """Run ``awaitable`` until it first waits: None when it finished, else the rest of it.

    What ``await`` would do, without a task: a close frame is written before this returns.
    Exceptions raised before the first wait propagate to the caller.
    """
    started = steps(awaitable)
    try:
        waiting_for = started.send(None)
    except StopIteration:
        return None
    return _rest(started, waiting_for)


class _Resume:
    """Awaiting it goes on with a coroutine that already waits for ``waiting_for``."""

    __slots__ = ("_coroutine", "_waiting_for")

    def __init__(self, coroutine: Steps, waiting_for: Any) -> None:
        self._coroutine = coroutine
        self._waiting_for = waiting_for

    def __await__(self) -> Generator[Any, Any, None]:
        coroutine, waiting_for = self._coroutine, self._waiting_for
        while True:
            try:
                value = yield waiting_for
            except BaseException as exc:  # noqa: BLE001 - thrown into the coroutine it is
                step: Callable[[Any], Any] = coroutine.throw
                value = exc
            else:
                step = coroutine.send
            try:
                waiting_for = step(value)
            except StopIteration:
                return


async def _rest(coroutine: Steps, waiting_for: Any) -> None:
    await _Resume(coroutine, waiting_for)


class Sweeper:
    """Runs jobs in the order they came, at most ``budget`` seconds per loop iteration."""

    def __init__(self, spawn: Callable[[Coroutine[Any, Any, None]], None], budget: float) -> None:
        self._spawn = spawn
        self._budget = budget
        #: Jobs waiting, per event loop (an AuthX may serve apps on several loops).
        self._queues: dict[asyncio.AbstractEventLoop, collections.deque[Job]] = {}

    def add(self, job: Job) -> None:
        """Run ``job`` soon (in a later iteration of the running loop)."""
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = collections.deque()
            loop.call_soon(self._run_slice, loop, queue, context=CALLBACK_CONTEXT)
        queue.append(job)

    def _run_slice(self, loop: asyncio.AbstractEventLoop, queue: collections.deque[Job]) -> None:
        ends = time.perf_counter() + self._budget
        try:
            while queue:
                rest = queue.popleft()()
                if rest is not None:
                    self._spawn(rest)
                if time.perf_counter() >= ends:
                    break
        finally:  # a job that raised is the loop's to report; the others still run
            if queue:
                loop.call_soon(self._run_slice, loop, queue, context=CALLBACK_CONTEXT)
            else:
                del self._queues[loop]

    def __len__(self) -> int:
        """Jobs waiting, on every loop."""
        return sum(len(queue) for queue in self._queues.values())
