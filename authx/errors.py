"""Answering AuthX errors: JSON for HTTP routes, a deliberate rejection for WebSockets.

Every decision comes from the data the exception carries (its status code,
its RFC 6750 error code, whether it is an authentication or an authorization
failure) and from the config; there is one table, not a chain of ``isinstance``.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable
from typing import Any, ClassVar

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket, WebSocketState

from authx import exceptions
from authx._starlette import mark_closed, transport
from authx._uvicorn_logs import mark_denied
from authx.close_codes import CloseCode, close_reason, lookup
from authx.config import AuthXConfig
from authx.exceptions import (
    AuthXException,
    InsufficientScopeError,
    KeySourceUnavailableError,
    RateLimitedError,
    StoreUnavailableError,
)
from authx.websocket._transports import Handshake, handshake_state, safe_subprotocol

# Outages are logged by the store and the key source, once per outage, with their cause.
_LOGGED_WHERE_RAISED = (StoreUnavailableError, KeySourceUnavailableError)

__all__ = [
    "HANDLED",
    "ErrorMessages",
    "error_response",
    "log_failure",
    "make_handler",
    "reject_websocket",
    "www_authenticate",
]

logger = logging.getLogger("authx")

MessageFor = Callable[[AuthXException], str]


class ErrorMessages:
    """The messages of the JSON error bodies, overridable per instance or subclass
    (``auth.MSG_RevokedTokenError = "..."``); None means the exception's own message."""

    MSG_TokenError: ClassVar[str | None] = "Token Error"
    MSG_MissingTokenError: ClassVar[str | None] = None
    MSG_MissingCSRFTokenError: ClassVar[str | None] = None
    MSG_TokenTypeError: ClassVar[str | None] = "Bad token type"
    MSG_RevokedTokenError: ClassVar[str | None] = "Invalid token"
    MSG_TokenRequiredError: ClassVar[str | None] = "Token required"
    MSG_FreshTokenRequiredError: ClassVar[str | None] = "Fresh token required"
    MSG_AccessTokenRequiredError: ClassVar[str | None] = "Access token required"
    MSG_RefreshTokenRequiredError: ClassVar[str | None] = "Refresh token required"
    MSG_CSRFError: ClassVar[str | None] = "CSRF double submit does not match"
    MSG_JWTDecodeError: ClassVar[str | None] = "Invalid Token"
    MSG_InsufficientScopeError: ClassVar[str | None] = None

    def _error_message(self, exc: AuthXException) -> str:
        message = getattr(self, f"MSG_{type(exc).__name__}", None)
        return str(message) if message is not None else exc.message

    def error_message(self, exc: AuthXException) -> str:
        """The message AuthX answers ``exc`` with (its ``MSG_*`` override, if any)."""
        return self._error_message(exc)


def _quoted(value: str) -> str:
    return value.replace("\\", "").replace('"', "'")


def www_authenticate(exc: AuthXException, message: str) -> str:
    """The RFC 6750 ``WWW-Authenticate`` challenge for ``exc``."""
    if exc.bearer_error is None:
        return "Bearer"
    challenge = f'Bearer error="{exc.bearer_error}", error_description="{_quoted(message)}"'
    if isinstance(exc, InsufficientScopeError):
        challenge += f', scope="{_quoted(" ".join(exc.required))}"'
    # RFC 6750 keeps ``error`` to its three registered codes; the finer reason token
    # travels as an extension parameter.
    return challenge + f', reason="{close_row(exc).reason}"'


def error_response(exc: AuthXException, message: str) -> JSONResponse:
    """The JSON response for ``exc``: ``{"message", "error_type"}`` with its status."""
    headers: dict[str, str] = {}
    if exc.status_code in (401, 403):
        headers["WWW-Authenticate"] = www_authenticate(exc, message)
    reason = close_row(exc).reason
    body: dict[str, Any] = {"message": message, "error_type": type(exc).__name__, "reason": reason}
    if exc.retry_after is not None:
        seconds = max(1, math.ceil(exc.retry_after))
        headers["Retry-After"] = str(seconds)
        body["retry_after"] = seconds
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


def close_row(exc: AuthXException) -> CloseCode:
    """The row of the close-code table for ``exc`` (a reason token of a user's own
    subclass that is not in the table counts as ``invalid_token`` or ``server_error``)."""
    try:
        return lookup(exc.reason)
    except KeyError:
        return lookup("server_error" if exc.status_code >= 500 else "invalid_token")


def close_code(exc: AuthXException, config: AuthXConfig) -> int:
    """The WebSocket close code for ``exc``, from its row's setting."""
    return int(getattr(config, close_row(exc).setting))


def close_reason_for(exc: AuthXException) -> str:
    """The close reason for ``exc``: its reason token, and the delay when it has one."""
    return close_reason(close_row(exc).reason, exc.retry_after)


def log_rejection(connection: HTTPConnection, exc: AuthXException, message: str) -> None:
    if isinstance(exc, RateLimitedError):
        return  # admission logs once per address and interval: a flood is not a log flood
    # The path only: the query string may hold the token.
    logger.log(
        logging.INFO if connection.scope["type"] == "websocket" else logging.DEBUG,
        "rejected %s %s: %s (%s)",
        "WebSocket" if connection.scope["type"] == "websocket" else "request",
        connection.scope.get("path", ""),
        type(exc).__name__,
        message,
    )


def log_failure(connection: HTTPConnection, exc: AuthXException, message: str) -> None:
    """Log an HTTP answer to ``exc``: a server-side failure as a WARNING, except outages
    (logged where they are raised, once per outage); the rest as :func:`log_rejection`."""
    if exc.status_code >= 500 and not isinstance(exc, _LOGGED_WHERE_RAISED):
        logger.warning("%s: %s", type(exc).__name__, message)
    else:
        log_rejection(connection, exc, message)


async def reject_websocket(
    websocket: WebSocket, exc: AuthXException, message: str, config: AuthXConfig
) -> None:
    """Refuse ``websocket`` in the way ``JWT_WS_REJECTION`` asks, so the client can see why.

    ``"deny"`` answers the handshake with the HTTP error response (ASGI
    ``websocket.http.response`` extension) or, without it, a plain close; ``"close"``
    accepts and closes at once with 4001/4003. An accepted socket is closed.
    """
    log_rejection(websocket, exc, message)
    state = websocket.application_state
    if state == WebSocketState.DISCONNECTED or state == WebSocketState.RESPONSE:
        return
    handshake = handshake_state(websocket)
    if state == WebSocketState.CONNECTING and handshake is not None:
        # AuthX accepted it to read the authentication message: close with the code.
        if handshake is Handshake.ACCEPTED_BY_AUTHX:
            _, send = transport(websocket)
            with contextlib.suppress(OSError, RuntimeError):
                await send(
                    {
                        "type": "websocket.close",
                        "code": close_code(exc, config),
                        "reason": close_reason_for(exc),
                    }
                )
        mark_closed(websocket)
        return
    if state == WebSocketState.CONNECTING and config.JWT_WS_REJECTION == "deny":
        if "websocket.http.response" in websocket.scope.get("extensions", {}):
            await websocket.send_denial_response(error_response(exc, message))
            mark_denied()
        else:
            await websocket.close()
        return
    if state == WebSocketState.CONNECTING:
        await websocket.accept(subprotocol=safe_subprotocol(websocket))
    await websocket.close(code=close_code(exc, config), reason=close_reason_for(exc))


def make_handler(
    config: Callable[[], AuthXConfig], message_for: MessageFor
) -> Callable[[HTTPConnection, Exception], Any]:
    """An exception handler for ``app.add_exception_handler`` covering HTTP and WebSocket."""

    async def handler(connection: HTTPConnection, exc: Exception) -> Response | None:
        assert isinstance(exc, AuthXException)  # noqa: S101 - registered for AuthX errors only
        message = message_for(exc)
        if isinstance(connection, WebSocket):
            await reject_websocket(connection, exc, message, config())
            return None
        log_failure(connection, exc, message)
        return error_response(exc, message)

    return handler


#: Every AuthX error class, registered by ``handle_errors`` (subclasses listed so that
#: a user handler for a parent class does not shadow ours by accident).
HANDLED: tuple[type[AuthXException], ...] = tuple(
    cls
    for cls in (getattr(exceptions, name) for name in exceptions.__all__)
    if isinstance(cls, type) and issubclass(cls, AuthXException)
)
