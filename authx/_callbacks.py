"""The application's callbacks, and calling them whether they are sync or async."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Callbacks", "call"]


async def call(callback: Any, *args: Any) -> Any:
    """Call ``callback`` and await its result when it is awaitable."""
    result = callback(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


@dataclass
class Callbacks:
    """What the application registered: ``blocklist(token) -> bool`` and
    ``subject_getter(uid) -> subject``, each sync or async."""

    blocklist: Callable[..., Any] | None = None
    subject_getter: Callable[..., Any] | None = None

    async def is_blocklisted(self, token: str) -> bool:
        return self.blocklist is not None and bool(await call(self.blocklist, token))

    async def subject(self, uid: str) -> Any:
        if self.subject_getter is None:
            raise AttributeError(
                "No subject getter set: call auth.set_subject_getter(fn) to use CURRENT_SUBJECT"
            )
        return await call(self.subject_getter, uid)
