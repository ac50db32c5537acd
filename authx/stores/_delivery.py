"""Handing revocation events to subscribers, shared by the stores with a background listener."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from authx.stores._base import RevocationEvent, Subscriber

__all__ = ["deliver"]

logger = logging.getLogger("authx")


async def deliver(subscribers: Sequence[Subscriber], event: RevocationEvent) -> None:
    """Call every subscriber with ``event``; a failing one is logged so the listener lives on."""
    results = await asyncio.gather(
        *(subscriber(event) for subscriber in list(subscribers)), return_exceptions=True
    )
    for result in results:
        if isinstance(result, Exception):
            logger.warning(
                "authx: a revocation subscriber failed (%s: %s)", type(result).__name__, result
            )
