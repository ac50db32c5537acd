"""The WebSocket half of AuthX: handshake authentication, rejections, sessions,
tickets and revocation of live connections. ``AuthX`` inherits it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import Depends, Request
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket

from authx import _locations
from authx._openapi import security_schemes, with_security_schemes
from authx._revocation import Revocations
from authx.config import AuthXConfig
from authx.errors import reject_websocket
from authx.exceptions import AuthXException, RevokedTokenError, TokenSubjectMismatchError
from authx.schema import RequestToken, TokenPayload
from authx.stores import Store
from authx.websocket._registry import LiveRegistry
from authx.websocket._transports import ws_request_token
from authx.websocket.session import WebSocketSession
from authx.websocket.tickets import Tickets

__all__ = ["WebSocketAuth"]

#: Scope key caching a connection's authentication (payload, session, token found).
_WS_AUTHENTICATED = "authx.authenticated"


class WebSocketAuth:
    """WebSocket authentication and live connections, mixed into :class:`~authx.AuthX`."""

    _config: AuthXConfig
    _live: LiveRegistry
    _revocations: Revocations
    _tickets: Tickets
    login_type: str | None

    if TYPE_CHECKING:  # provided by AuthX

        def verify_token(
            self,
            token: RequestToken,
            verify_type: bool = True,
            verify_fresh: bool = False,
            verify_csrf: bool = True,
        ) -> TokenPayload: ...

        async def _check_revoked(self, encoded: str, payload: TokenPayload) -> None: ...

        def _check_scopes(
            self, payload: TokenPayload, scopes: Sequence[str], all_required: bool
        ) -> None: ...

        def ensure_request_exception_handlers(self, connection: HTTPConnection) -> None: ...

        def _error_message(self, exc: AuthXException) -> str: ...

        async def _auth_required(self, request: Request) -> TokenPayload: ...

    async def _ws_auth_required(self, websocket: WebSocket) -> TokenPayload:
        """The verified access-token payload of a WebSocket handshake.

        Looks in ``JWT_WS_TOKEN_LOCATION`` (query parameter, then header by default);
        raises an :class:`AuthXException` the handlers turn into a clear rejection.
        """
        payload, _ = await self._ws_authenticate(websocket, session_required=False)
        return payload

    async def _ws_authenticate(
        self, websocket: WebSocket, session_required: bool
    ) -> tuple[TokenPayload, WebSocketSession | None]:
        cached = websocket.scope.get(_WS_AUTHENTICATED)
        if cached is not None and (cached[1] is not None or not session_required):
            return cached  # type: ignore[no-any-return]
        self.ensure_request_exception_handlers(websocket)
        config = self._config
        try:
            if cached is not None:
                payload, found = cached[0], cached[2]
            else:
                found = await ws_request_token(websocket, config)
                payload = await self._ws_verify(found, websocket)
            session = None
            if (
                session_required
                or config.JWT_WS_ENFORCE_LIFETIME
                or found.location in ("subprotocol", "message")
            ):
                raw = "" if found.location == "ticket" else found.token
                session = self._live.attach(
                    websocket, payload, raw, subprotocol_auth=found.location == "subprotocol"
                )
        except AuthXException as exc:
            exc.login_type = self.login_type
            raise
        websocket.scope[_WS_AUTHENTICATED] = (payload, session, found)
        return payload, session

    async def _ws_verify(self, found: RequestToken, websocket: WebSocket) -> TokenPayload:
        if found.location == "ticket":
            payload = await self._tickets.redeem(found.token, websocket)
            if await self._revocations.is_revoked(payload):
                raise RevokedTokenError("Token has been revoked")
            return payload
        payload = self.verify_token(found, verify_type=True, verify_csrf=False)
        await self._check_revoked(found.token, payload)
        return payload

    async def _ws_session(self, websocket: WebSocket) -> WebSocketSession:
        _, session = await self._ws_authenticate(websocket, session_required=True)
        assert session is not None  # noqa: S101 - session_required guarantees one
        return session

    async def create_ws_ticket(self, payload: TokenPayload, origin: str | None = None) -> str:
        """A single-use ticket (``JWT_WS_TICKET_TTL`` seconds) for ``?ticket=`` handshakes.

        It carries ``payload``'s subject, scopes and expiry; with ``origin`` it only
        opens connections from that origin.
        """
        return await self._tickets.issue(payload, origin)

    def _ws_ticket_dependency(self) -> Callable[..., Any]:
        async def _ws_ticket(request: Request, **_schemes: Any) -> str:
            self.ensure_request_exception_handlers(request)
            payload = await self._auth_required(request)
            return await self._tickets.issue(payload, request.headers.get("origin"))

        return with_security_schemes(_ws_ticket, security_schemes(self._config, "access", None))

    @property
    def WS_TICKET(self) -> Any:
        """An HTTP dependency exchanging the request's access token for a WebSocket ticket.

        The ticket is bound to the request's ``Origin`` when it has one.
        """
        return Depends(self._ws_ticket_dependency())

    @property
    def WS_SESSION(self) -> Any:
        """A WebSocket dependency yielding a :class:`WebSocketSession` (expiry, refresh, scopes)."""
        return Depends(self._ws_session)

    async def _verify_ws_refresh(self, encoded: str, sub: str) -> TokenPayload:
        """Verify a token offered to replace a live session's token for ``sub``."""
        _locations.check_size(encoded, self._config)
        found = RequestToken.found(encoded, "message")
        payload = self.verify_token(found, verify_type=True, verify_csrf=False)
        if payload.sub != sub:
            raise TokenSubjectMismatchError("Token subject mismatch")
        await self._check_revoked(encoded, payload)
        return payload

    # Revocation and live connections ---------------------------------------

    async def revoke_token(self, token_or_jti: str) -> None:
        """Revoke a token (or its ``jti``) everywhere and close the connections holding it."""
        await self._revocations.revoke_token(token_or_jti)

    async def revoke_subject(self, sub: str) -> None:
        """Revoke every token of ``sub`` issued until now and close its connections."""
        await self._revocations.revoke_subject(sub)

    def active_connections(self, sub: str | None = None) -> list[WebSocketSession]:
        """The open authenticated WebSocket sessions of this process (of ``sub``, if given)."""
        return self._live.sessions(sub)

    def live_stats(self) -> dict[str, int]:
        """Counts of open sessions, armed timers and pending closes in this process."""
        return self._live.stats()

    async def get_store(self) -> Store:
        """The revocation and ticket store (``JWT_STORE_URL``), opened on first use."""
        return await self._revocations.store()

    def set_store(self, store: Store) -> None:
        """Use ``store`` instead of the one ``JWT_STORE_URL`` names."""
        self._revocations.set_store(store)

    @property
    def WS_AUTH_REQUIRED(self) -> Any:
        return Depends(self._ws_auth_required)

    def ws_scopes_required(self, *scopes: str, all_required: bool = True) -> Any:
        """A WebSocket dependency requiring ``scopes``; a denial is 403 / close 4003."""

        async def _ws_scopes_required(websocket: WebSocket) -> TokenPayload:
            payload = await self._ws_auth_required(websocket)
            self._check_scopes(payload, scopes, all_required)
            return payload

        return Depends(_ws_scopes_required)

    async def ws_reject(self, websocket: WebSocket, exc: AuthXException) -> None:
        """Reject ``websocket`` for ``exc`` as ``JWT_WS_REJECTION`` says, whatever its state."""
        await reject_websocket(websocket, exc, self._error_message(exc), self._config)
