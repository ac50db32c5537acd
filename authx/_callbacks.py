"""Calling user callbacks that may be plain functions, coroutine functions or awaitables."""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["call"]


async def call(callback: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``callback`` and await its result when it is awaitable."""
    result = callback(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result
