"""Every use of Starlette's private attributes, in one place, each with its reason.

AuthX speaks ASGI below Starlette's ``WebSocket`` in three situations: it accepts
a socket itself to read a first authentication message, it wraps a live
connection's ``send``/``receive`` so that it can close the connection at expiry
or on revocation and take in-band messages, and it installs its exception
handler for apps that did not call ``handle_errors``. Starlette offers no
public hook for these; if a release renames the attributes, this module is
the only one to change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import Receive, Send
from starlette.websockets import WebSocket, WebSocketState

__all__ = ["exception_handlers", "mark_closed", "transport", "wrap_transport"]


def transport(websocket: WebSocket) -> tuple[Receive, Send]:
    """The ASGI ``receive`` and ``send`` the ``WebSocket`` was built with (or wrapped in)."""
    # Private: Starlette keeps the ASGI callables as _receive and _send.
    return websocket._receive, websocket._send


def wrap_transport(websocket: WebSocket, receive: Receive, send: Send) -> None:
    """Make the ``WebSocket`` (and so the endpoint) go through ``receive`` and ``send``."""
    # Private: replacing them is the only way to sit between an endpoint and its socket
    # after Starlette built the WebSocket (dependencies run after that).
    websocket._receive = receive
    websocket._send = send


def mark_closed(websocket: WebSocket) -> None:
    """Tell Starlette the application side is done after AuthX closed the socket itself."""
    # Public attribute, but Starlette only sets it from its own send(); AuthX sent the
    # close below it, so Starlette must not try to answer the handshake again.
    websocket.application_state = WebSocketState.DISCONNECTED


def exception_handlers(connection: HTTPConnection) -> dict[Any, Callable[..., Any]] | None:
    """The app's exception-handler map for this connection, or None outside Starlette's."""
    # Private: ExceptionMiddleware puts (handlers, status_handlers) in the scope; adding
    # ours there is what handle_errors would have done at start-up.
    handlers = connection.scope.get("starlette.exception_handlers")
    if not handlers:
        return None
    mapping: dict[Any, Callable[..., Any]] = handlers[0]
    return mapping
