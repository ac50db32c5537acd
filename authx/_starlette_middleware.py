"""One ASGI middleware that authenticates every WebSocket of an app or a mount.

Django Channels' ``AuthMiddlewareStack`` pattern, with AuthX's WebSocket
authentication: every transport, admission control, the ``JWT_WS_REJECTION``
mode and its close codes, and a live session that closes the connection at
expiry (4002) and on revocation (4004) and takes in-band refreshes. The inner
app runs on the session's ``receive`` and ``send``, so the session sees and
closes the very socket the app uses; HTTP and lifespan pass through untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from authx._starlette import transport
from authx._starlette_backend import credentials, take_failure
from authx.exceptions import AuthXException
from authx.websocket._result import AuthResult

if TYPE_CHECKING:
    from authx import AuthX

__all__ = ["WebSocketAuthMiddleware"]


class WebSocketAuthMiddleware:
    """Authenticate every WebSocket of ``app`` with ``auth`` before ``app`` sees it.

    >>> app = WebSocketAuthMiddleware(app, auth=auth, scopes=["chat"])
    >>> Mount("/ws", app=WebSocketAuthMiddleware(ws_routes, auth=auth))
    >>> Starlette(middleware=[Middleware(WebSocketAuthMiddleware, auth=auth)])

    A refused handshake never reaches ``app``. An accepted one does, with
    ``scope["user"]`` (an :class:`AuthXUser` whose ``session`` is the live session)
    and ``scope["auth"]`` (:class:`AuthXCredentials`); ``auth.authenticate_websocket``
    returns the same result there without verifying again. When the token came in
    the first message the socket is already open: the app's ``accept()`` is then a
    no-op (the subprotocol AuthX accepted with stays), and no message is lost.
    ``scopes`` are required at the handshake and of every in-band refresh (403 /
    4003), all of them or, with ``all_required=False``, any.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        auth: AuthX,
        scopes: Sequence[str] = (),
        all_required: bool = True,
    ) -> None:
        if isinstance(scopes, str):
            raise TypeError("scopes must be a list of strings, not a single string")
        self.app = app
        self._auth = auth
        self._require: Callable[[WebSocket], Awaitable[object]] | None = (
            auth.ws_scopes_required(*scopes, all_required=all_required).dependency
            if scopes
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        websocket = WebSocket(scope, receive, send)
        failure = take_failure(scope)
        result: AuthResult | None = None
        if failure is None:
            try:
                result = await self._authenticate(websocket)
            except AuthXException as exc:
                failure = exc
        if result is None:
            assert failure is not None  # noqa: S101 - one or the other
            await self._auth.ws_reject(websocket, failure)
            return
        session = result.session
        scope["auth"], scope["user"] = credentials(result.payload, session)
        # The session's wrappers when it has one: its timers close the app's socket,
        # its receive takes the in-band messages and turns a second accept into a no-op.
        receive, send = transport(websocket)
        try:
            await self.app(scope, receive, send)
        finally:
            if session is not None:
                session.end()  # out of the registry now, however the app ended

    async def _authenticate(self, websocket: WebSocket) -> AuthResult:
        result = await self._auth.authenticate_websocket(websocket)
        if self._require is not None:
            await self._require(websocket)
        return result
