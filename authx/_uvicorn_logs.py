"""Quieting uvicorn's false alarm after a WebSocket denial response.

uvicorn's default WebSocket implementation (websockets-sansio) logs
``ERROR: ASGI callable returned without completing handshake.`` after an
application has *correctly* rejected a handshake through the
``websocket.http.response`` extension (uvicorn pull request #3138). Every
rejected token would then page whoever watches ERROR lines. AuthX marks the
connections it denied (a context variable, set in the connection's own task)
and drops exactly that record for exactly those connections.
"""

from __future__ import annotations

import contextvars
import logging

__all__ = ["mark_denied"]

_MESSAGE = "ASGI callable returned without completing handshake."
_denied: contextvars.ContextVar[bool] = contextvars.ContextVar("authx_ws_denied", default=False)


class _DenialNoiseFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.msg == _MESSAGE and _denied.get())


_filter = _DenialNoiseFilter()


def mark_denied() -> None:
    """Record that this connection's handshake was answered with a denial response."""
    _denied.set(True)
    logger = logging.getLogger("uvicorn.error")
    if _filter not in logger.filters:
        logger.addFilter(_filter)
