"""A session's ASGI ``receive``: a coroutine written by hand, so an idle connection holds no frame.

An idle WebSocket spends its life awaiting ``receive``. Were the session's wrapper an
``async def``, every idle connection would hold that coroutine's frame (~250 bytes)
on top of the transport's own. :class:`SessionReceive` is instead one small object per
session: the callable the endpoint calls and the coroutine it then awaits. It drives
the transport's ``receive`` step by step and lets the session look at each message
before the endpoint sees it (a disconnect ends the session; an in-band refresh is
taken out of the stream and handled before receiving again).

It is a :class:`collections.abc.Coroutine`, so ``asyncio.create_task(receive())``
works as with any ASGI ``receive``. Two overlapping calls each get their own object.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from starlette.types import Message

from authx.websocket._sweep import Steps, steps

__all__ = ["AGAIN", "ReceiveHost", "SessionReceive"]

#: What the coroutine returned by ``ReceiveHost._take`` ends with: receive again.
AGAIN: Message = {"type": "authx.again"}


class ReceiveHost(Protocol):
    """What :class:`SessionReceive` needs of its session."""

    def _first_message(self) -> Message | None:
        """A message to answer at once without the transport (the pending ``connect``)."""

    def _transport_receive(self) -> Awaitable[Message]:
        """The transport's own ``receive()``."""

    def _take(self, message: Message) -> Coroutine[Any, Any, Message] | None:
        """Look at ``message``: None hands it to the endpoint, a coroutine (ending with
        :data:`AGAIN`) is run before receiving the next one."""


class SessionReceive(Coroutine[Any, Any, Message]):
    """The session's ``receive`` callable and, while a call is pending, its coroutine."""

    __slots__ = ("_host", "_step")

    def __init__(self, host: ReceiveHost) -> None:
        self._host = host
        #: None: idle (no call pending); False: called, not started; else the step awaited.
        self._step: Steps | bool | None = None

    def __call__(self) -> SessionReceive:
        receive = self if self._step is None else SessionReceive(self._host)
        receive._step = False
        return receive

    def __await__(self) -> SessionReceive:  # type: ignore[override]
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def send(self, value: Any) -> Any:
        step = self._step
        if step is None:
            raise RuntimeError("cannot reuse already awaited coroutine")
        if step is False:
            self._step = None  # idle again should anything below raise
            if (message := self._host._first_message()) is not None:
                raise StopIteration(message)
            step = self._step = steps(self._host._transport_receive())
        assert step is not True  # noqa: S101 - only None and False are flags
        return self._drive(step.send, value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        step = self._step
        if not isinstance(step, bool | None):
            args = (typ,) if val is None and tb is None else (typ, val, tb)
            return self._drive(step.throw, *args)
        self._step = None  # thrown in before it started: it ends with that exception
        if val is None:
            raise typ
        raise val.with_traceback(tb) if isinstance(val, BaseException) else typ(val)

    def close(self) -> None:
        step, self._step = self._step, None
        if not isinstance(step, bool | None):
            step.close()

    def _drive(self, method: Callable[..., Any], *args: Any) -> Any:
        """Advance the current step; at its end, hand the message over or step again."""
        while True:
            try:
                return method(*args)  # a future the connection's task now waits for
            except StopIteration as done:
                message: Message = done.value
            except BaseException:
                self._step = None
                raise
            self._step = None  # idle again should anything below raise
            if message is AGAIN:
                step: Steps = steps(self._host._transport_receive())
            elif (before := self._host._take(message)) is not None:
                step = before
            else:
                raise StopIteration(message)
            self._step = step
            method, args = step.send, (None,)
