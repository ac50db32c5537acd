"""WebSocketSession: an authenticated connection whose authority lasts only as long as its token.

A session wraps the connection's ASGI ``send`` and ``receive`` so that the
server can close it at expiry or on revocation (the endpoint then sees an
ordinary :class:`~starlette.websockets.WebSocketDisconnect`), and can take
in-band refresh messages. Deadlines are slots of the registry's shared timers
(``_deadlines``), not tasks, and the wrapped ``receive`` is a small object
(``_session_receive``), not a coroutine frame: an idle session costs about half a kilobyte.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Coroutine
from typing import Any, Protocol

from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from authx._starlette import transport, wrap_transport
from authx._verify import ScopeRequirement, Verifier
from authx.config import AuthXConfig
from authx.errors import close_code, close_reason_for
from authx.exceptions import AuthXException
from authx.schema import TokenPayload
from authx.websocket._deadlines import Deadlines, Slot
from authx.websocket._protocol import refresh_token, server_message
from authx.websocket._session_receive import AGAIN, SessionReceive
from authx.websocket._sweep import Job, start_now
from authx.websocket._transports import (
    SUBPROTOCOL_PREFIX,
    Handshake,
    handshake_state,
    safe_subprotocol,
)


class SessionHost(Protocol):
    """What a session needs of the registry that holds it (``LiveRegistry``)."""

    verifier: Verifier
    expiries: Deadlines[WebSocketSession]
    warnings: Deadlines[WebSocketSession]

    @property
    def config(self) -> AuthXConfig: ...

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None: ...

    def sweep(self, job: Job) -> None:
        """Run ``job`` soon, with other sessions' jobs, a few milliseconds per loop iteration."""

    def remove(self, session: WebSocketSession) -> None: ...

    def reindex(self, session: WebSocketSession, old_jti: str | None) -> None: ...

    def log_refresh_failure(self, session: WebSocketSession, exc: AuthXException) -> None: ...

    def release(self, session: WebSocketSession) -> None:
        """The connection's task ended: drop every reference the connection holds."""


__all__ = ["WebSocketSession"]

#: Bits of ``WebSocketSession._flags``.
_PENDING_ACCEPT, _ACCEPTED, _SUBPROTOCOL_AUTH, _ENDED = 1, 2, 4, 8


class WebSocketSession:
    """An authenticated WebSocket; use it like the ``WebSocket`` it wraps.

    >>> @app.websocket("/ws")
    ... async def ws(session: WebSocketSession = auth.WS_SESSION):
    ...     await session.accept()
    ...     async for text in session.iter_text():
    ...         await session.send_json({"user": session.sub, "echo": text})
    """

    # One slot per field and the flags in one int: tens of thousands of sessions stay
    # resident, each field costs 8 bytes per connection.
    __slots__ = (
        "_closed",
        "_flags",
        "_raw_receive",
        "_raw_send",
        "_registry",
        "_requirements",
        "_timer",
        "_warning",
        "payload",
        "token",
        "websocket",
    )

    def __init__(
        self,
        websocket: WebSocket,
        payload: TokenPayload,
        token: str,
        registry: SessionHost,
        subprotocol_auth: bool = False,
    ) -> None:
        self.websocket = websocket
        self.payload = payload
        self.token = token
        self._registry = registry
        self._requirements: tuple[ScopeRequirement, ...] = ()
        self._timer: Slot[WebSocketSession] | None = None
        self._warning: Slot[WebSocketSession] | None = None
        flags = _SUBPROTOCOL_AUTH if subprotocol_auth else 0
        if handshake_state(websocket) is Handshake.ACCEPTED_BY_AUTHX:
            # First-message authentication accepted at the ASGI level already: the
            # endpoint's own accept() must see a "connect" and must not re-accept.
            flags |= _PENDING_ACCEPT | _ACCEPTED
        self._flags = flags
        #: (code, reason) once the server closed the connection.
        self._closed: tuple[int, str] | None = None
        self._raw_receive, self._raw_send = transport(websocket)
        wrap_transport(websocket, SessionReceive(self), _SessionSend(self))

    # What the endpoint sees ------------------------------------------------

    @property
    def accepted(self) -> bool:
        """Whether the connection was accepted."""
        return bool(self._flags & _ACCEPTED)

    @property
    def ended(self) -> bool:
        """Whether the session is over (closed, disconnected, or its task ended)."""
        return bool(self._flags & _ENDED)

    @property
    def close_code(self) -> int | None:
        """The code the server closed the connection with (expiry, revocation, refresh)."""
        return None if self._closed is None else self._closed[0]

    @property
    def close_reason(self) -> str:
        return "" if self._closed is None else self._closed[1]

    @property
    def sub(self) -> str:
        return self.payload.sub

    @property
    def scopes(self) -> list[str] | None:
        return self.payload.scopes

    @property
    def expires_at(self) -> float | None:
        """When the current token expires (POSIX time), or None."""
        return self.payload.expires_at

    def __getattr__(self, name: str) -> Any:
        # accept, send_json, receive_text, iter_text, close, ... of the WebSocket. Own
        # slots not set yet and dunder lookups (copy, pickle) must not recurse into it.
        if name in WebSocketSession.__slots__ or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.websocket, name)

    def require_scopes(self, *scopes: str, all_required: bool = True) -> TokenPayload:
        """Check ``scopes`` against the *current* token; raise InsufficientScopeError."""
        self._registry.verifier.check_scopes(self.payload, scopes, all_required)
        return self.payload

    def keep_requiring(self, requirement: ScopeRequirement) -> None:
        """Scopes every later token of this session must grant (the endpoint's)."""
        if requirement not in self._requirements:
            self._requirements = (*self._requirements, requirement)

    def has_scopes(self, *scopes: str, all_required: bool = True) -> bool:
        return self.payload.has_scopes(*scopes, all_required=all_required)

    async def refresh(self, token: str) -> TokenPayload:
        """Replace the session's token with a new access token for the same subject.

        The new token must pass every check the handshake passed, the endpoint's
        scopes included. Raises the AuthX error when it does not (the connection
        stays open; the in-band protocol closes it with that error's close code).
        """
        new = await self._registry.verifier.verify_refresh(
            token, self.payload.sub, self._requirements
        )
        old_jti = self.payload.jti
        _replace(self.payload, new)
        self.token = token
        self._registry.reindex(self, old_jti)
        self.schedule()
        return self.payload

    # Deadlines -------------------------------------------------------------

    def schedule(self) -> None:
        """(Re)arm the expiry timer, and the warning timer when configured."""
        self._cancel_timers()
        expires_at = self.payload.expires_at
        if expires_at is None or self.ended:
            return
        registry = self._registry
        config = registry.config
        deadline = expires_at + config.JWT_DECODE_LEEWAY
        self._timer = registry.expiries.add(deadline, self)
        warning = config.JWT_WS_EXPIRY_WARNING
        if warning is not None and deadline - warning > time.time():
            self._warning = registry.warnings.add(deadline - warning, self)

    def _cancel_timers(self) -> None:
        if self._timer is not None:
            self._registry.expiries.cancel(self._timer, self)
            self._timer = None
        if self._warning is not None:
            self._registry.warnings.cancel(self._warning, self)
            self._warning = None

    @property
    def timers(self) -> int:
        return (self._timer is not None) + (self._warning is not None)

    def expire(self) -> None:
        """The token's deadline passed: close with the expiry code (in the registry's sweep)."""
        self._timer = None
        self._registry.sweep(self._close_expired)

    def _close_expired(self) -> Coroutine[Any, Any, None] | None:
        if self._timer is not None:
            return None  # refreshed while the close waited: the new token holds
        config = self._registry.config
        return self.close_now(config.JWT_WS_EXPIRED_CLOSE_CODE, config.JWT_WS_EXPIRED_CLOSE_REASON)

    def warn(self) -> None:
        """Tell the client its token expires soon (in the registry's sweep)."""
        self._warning = None
        self._registry.sweep(self._send_warning)

    def _send_warning(self) -> Coroutine[Any, Any, None] | None:
        if not self.accepted or self.ended:
            return None
        prefix = self._registry.config.JWT_WS_MESSAGE_PREFIX
        return start_now(self._send_text(server_message(prefix, "expiring", self.expires_at)))

    # ASGI plumbing ---------------------------------------------------------

    async def _send_text(self, text: str) -> None:
        try:
            await self._raw_send({"type": "websocket.send", "text": text})
        except (OSError, RuntimeError):
            self.end()

    async def server_close(self, code: int, reason: str) -> None:
        """Close from the server's side; the endpoint sees a disconnect with ``code``."""
        rest = self.close_now(code, reason)
        if rest is not None:
            await rest

    def close_now(self, code: int, reason: str) -> Coroutine[Any, Any, None] | None:
        """Close from the server's side, the frame written before this returns when the
        transport takes it at once; else returns the rest of the close, to await."""
        if self.ended:
            return None
        self._closed = (code, reason)
        self.end()
        try:
            rest = start_now(
                self._raw_send({"type": "websocket.close", "code": code, "reason": reason})
            )
        except (OSError, RuntimeError):  # the client is already gone
            return None
        return None if rest is None else _quietly(rest)

    def end(self) -> None:
        """Forget the session: timers cancelled, registry entries removed (idempotent)."""
        if self._flags & _ENDED:
            return
        self._flags |= _ENDED
        self._cancel_timers()
        self._registry.remove(self)

    def on_task_done(self, _task: object) -> None:
        """The connection's task ended: forget it, and undo the wrapping.

        The wrappers and the scope entries tie the WebSocket and the session in
        reference cycles; breaking them here lets reference counting free a
        finished connection at once instead of leaving it to the cyclic GC.
        """
        self.end()
        websocket = self.websocket
        wrap_transport(websocket, self._raw_receive, self._raw_send)
        self._registry.release(self)

    # The registry hands the session itself to ``task.add_done_callback``: a bound
    # method would cost another object (72 bytes) per connection.
    __call__ = on_task_done

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if self._closed is not None:
            if kind == "websocket.close":
                return
            raise WebSocketDisconnect(*self._closed)
        if kind == "websocket.accept":
            if self._flags & _PENDING_ACCEPT:
                self._flags &= ~_PENDING_ACCEPT
                return
            self._flags |= _ACCEPTED
            chosen = message.get("subprotocol")
            if self._flags & _SUBPROTOCOL_AUTH or (chosen or "").startswith(SUBPROTOCOL_PREFIX):
                message = {**message, "subprotocol": safe_subprotocol(self.websocket, chosen)}
        await self._raw_send(message)
        if kind == "websocket.close" or (
            kind == "websocket.http.response.body" and not message.get("more_body")
        ):
            self.end()

    # What SessionReceive asks of the session (ReceiveHost) ---------------------

    def _first_message(self) -> Message | None:
        if (
            self._flags & _PENDING_ACCEPT
            and self.websocket.client_state == WebSocketState.CONNECTING
        ):
            return {"type": "websocket.connect"}
        return None

    def _transport_receive(self) -> Awaitable[Message]:
        return self._raw_receive()

    def _take(self, message: Message) -> Coroutine[Any, Any, Message] | None:
        """None to hand ``message`` to the endpoint; the in-band refresh it carries otherwise."""
        kind = message["type"]
        if kind == "websocket.disconnect":
            self.end()
        elif kind == "websocket.receive" and self._registry.config.JWT_WS_INBAND_REFRESH:
            config = self._registry.config
            token = refresh_token(
                message.get("text"), config.JWT_WS_MESSAGE_PREFIX, config.JWT_MAX_TOKEN_SIZE
            )
            if token is not None:
                return self._inband_refresh(token)
        return None

    async def _inband_refresh(self, token: str) -> Message:
        """Refresh with ``token``; the endpoint never sees the message (``AGAIN``: receive on)."""
        try:
            await self.refresh(token)
        except AuthXException as exc:
            self._registry.log_refresh_failure(self, exc)
            await self.server_close(close_code(exc, self._registry.config), close_reason_for(exc))
            return AGAIN
        prefix = self._registry.config.JWT_WS_MESSAGE_PREFIX
        await self._send_text(server_message(prefix, "refreshed", self.expires_at))
        return AGAIN


class _SessionSend:
    """The session's ASGI ``send`` (a bound method would cost 16 bytes more per connection)."""

    __slots__ = ("_session",)

    def __init__(self, session: WebSocketSession) -> None:
        self._session = session

    def __call__(self, message: Message) -> Coroutine[Any, Any, None]:
        return self._session._send(message)


async def _quietly(rest: Coroutine[Any, Any, None]) -> None:
    with contextlib.suppress(OSError, RuntimeError):  # the client is already gone
        await rest


def _replace(payload: TokenPayload, new: TokenPayload) -> None:
    """Update ``payload`` in place, so endpoints holding it see the new claims."""
    for name in type(new).model_fields:
        setattr(payload, name, getattr(new, name))
    payload.__pydantic_extra__ = dict(new.__pydantic_extra__ or {})
