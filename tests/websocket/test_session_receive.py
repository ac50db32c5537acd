"""SessionReceive: a session's ASGI ``receive``, a coroutine written by hand."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any

import pytest
from starlette.types import Message

from authx.websocket._session_receive import AGAIN, SessionReceive


class Host:
    """A session stand-in: a queue as the transport, and a record of what it was shown."""

    def __init__(self, first: Message | None = None) -> None:
        self.queue: asyncio.Queue[Message] = asyncio.Queue()
        self.first = first
        self.taken: list[Message] = []
        self.refreshed: list[str] = []
        self.transport_calls = 0

    def _first_message(self) -> Message | None:
        first, self.first = self.first, None
        return first

    def _transport_receive(self) -> Awaitable[Message]:
        self.transport_calls += 1
        return self.queue.get()

    def _take(self, message: Message) -> Coroutine[Any, Any, Message] | None:
        self.taken.append(message)
        if message.get("text", "").startswith("refresh:"):
            return self._refresh(message["text"])
        return None

    async def _refresh(self, text: str) -> Message:
        await asyncio.sleep(0)  # a refresh may wait (the store, the keys)
        self.refreshed.append(text)
        return AGAIN


def text(value: str) -> Message:
    return {"type": "websocket.receive", "text": value}


async def test_messages_pass_through_after_the_host_saw_them() -> None:
    host = Host()
    receive = SessionReceive(host)
    host.queue.put_nowait(text("a"))
    host.queue.put_nowait({"type": "websocket.disconnect", "code": 1000})
    assert await receive() == text("a")
    assert await receive() == {"type": "websocket.disconnect", "code": 1000}
    assert host.taken == [text("a"), {"type": "websocket.disconnect", "code": 1000}]


async def test_it_waits_like_a_coroutine_and_works_as_a_task() -> None:
    host = Host()
    receive = SessionReceive(host)
    task = asyncio.create_task(receive())  # needs a coroutine: it is one
    await asyncio.sleep(0)
    assert not task.done()
    host.queue.put_nowait(text("late"))
    assert await asyncio.wait_for(task, 1) == text("late")
    # asyncio.wait_for and gather wrap it too.
    host.queue.put_nowait(text("again"))
    assert await asyncio.wait_for(receive(), 1) == text("again")


async def test_an_in_band_message_is_taken_out_and_the_next_one_handed_over() -> None:
    host = Host()
    receive = SessionReceive(host)
    host.queue.put_nowait(text("refresh:1"))
    host.queue.put_nowait(text("refresh:2"))
    host.queue.put_nowait(text("data"))
    assert await receive() == text("data")
    assert host.refreshed == ["refresh:1", "refresh:2"]
    assert host.transport_calls == 3


async def test_the_first_message_is_answered_without_the_transport() -> None:
    host = Host(first={"type": "websocket.connect"})
    receive = SessionReceive(host)
    assert await receive() == {"type": "websocket.connect"}
    assert host.transport_calls == 0
    assert host.taken == []


async def test_overlapping_receives_each_get_their_own_coroutine() -> None:
    host = Host()
    receive = SessionReceive(host)
    first, second = receive(), receive()
    assert first is not second
    both = asyncio.gather(first, second)
    await asyncio.sleep(0)
    host.queue.put_nowait(text("1"))
    host.queue.put_nowait(text("2"))
    assert sorted(m["text"] for m in await both) == ["1", "2"]
    assert receive() is receive  # idle again: the session's own object is reused


async def test_a_cancelled_receive_leaves_it_ready_for_the_next() -> None:
    host = Host()
    receive = SessionReceive(host)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(receive(), 0.01)
    host.queue.put_nowait(text("after"))
    assert receive() is receive
    assert await receive() == text("after")


async def test_a_transport_failure_propagates_and_leaves_it_idle() -> None:
    class Broken(Host):
        def _transport_receive(self) -> Awaitable[Message]:
            raise RuntimeError("transport gone")

    receive = SessionReceive(Broken())
    with pytest.raises(RuntimeError, match="transport gone"):
        await receive()
    assert receive() is receive


async def test_throw_before_start_and_close_behave_as_for_coroutines() -> None:
    host = Host()
    receive = SessionReceive(host)
    with pytest.raises(ValueError, match="boom"):
        receive().throw(ValueError("boom"))
    assert host.transport_calls == 0
    pending = receive()
    pending.send(None)  # now waits on the queue
    pending.close()
    again = receive()
    assert again is receive  # idle again after close()
    again.close()
    with pytest.raises(RuntimeError, match="cannot reuse"):
        receive.send(None)  # idle: not called, nothing to await
