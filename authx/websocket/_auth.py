"""The WebSocket half of AuthX: handshake authentication, rejections, sessions,
tickets and revocation of live connections. ``AuthX`` inherits it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
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
from authx.websocket import _result
from authx.websocket._registry import LiveRegistry
from authx.websocket._result import AuthResult, ScopeRequirement
from authx.websocket._transports import ws_request_token
from authx.websocket.session import WebSocketSession
from authx.websocket.tickets import Tickets

__all__ = ["WebSocketAuth"]


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

        async def _authenticate_request(
            self, request: Request
        ) -> tuple[RequestToken, TokenPayload]: ...

    async def _ws_auth_required(self, websocket: WebSocket) -> TokenPayload:
        """The verified access-token payload of a WebSocket handshake.

        Looks in ``JWT_WS_TOKEN_LOCATION`` (query parameter, then header by default);
        raises an :class:`AuthXException` the handlers turn into a clear rejection.
        """
        return (await self._ws_authenticate(websocket, session_required=False)).payload

    async def _ws_authenticate(self, websocket: WebSocket, session_required: bool) -> AuthResult:
        current = _result.read(websocket.scope)
        if current is not None and (current.session is not None or not session_required):
            return current
        self.ensure_request_exception_handlers(websocket)
        config = self._config
        try:
            if current is None:
                found = await ws_request_token(websocket, config)
                payload, raw = await self._ws_verify(found, websocket)
                current = AuthResult(payload, found.location, token=raw)
            session = None
            if (
                session_required
                or config.JWT_WS_ENFORCE_LIFETIME
                or current.location in ("subprotocol", "message")
            ):
                session = self._live.attach(
                    websocket,
                    current.payload,
                    current.token,
                    subprotocol_auth=current.location == "subprotocol",
                    requirements=current.requirements,
                )
        except AuthXException as exc:
            exc.login_type = self.login_type
            raise
        result = replace(current, session=session)
        _result.write(websocket.scope, result)
        return result

    async def _ws_verify(
        self, found: RequestToken, websocket: WebSocket
    ) -> tuple[TokenPayload, str]:
        """The verified payload of the handshake's token, and the raw access token."""
        if found.location != "ticket":
            payload = self.verify_token(found, verify_type=True, verify_csrf=False)
            await self._check_revoked(found.token, payload)
            return payload, found.token
        payload, token = await self._tickets.redeem(found.token, websocket)
        if token is None:
            # A ticket made from a payload alone: its claims were verified when it was made.
            if await self._revocations.is_revoked(payload):
                raise RevokedTokenError("Token has been revoked")
            return payload, ""
        # A ticket is never worth more than its token: verify that token again, now.
        payload = self.verify_token(
            RequestToken.found(token, "ticket"), verify_type=True, verify_csrf=False
        )
        await self._check_revoked(token, payload)
        return payload, token

    async def _ws_session(self, websocket: WebSocket) -> WebSocketSession:
        session = (await self._ws_authenticate(websocket, session_required=True)).session
        assert session is not None  # noqa: S101 - session_required guarantees one
        return session

    async def create_ws_ticket(
        self, payload: TokenPayload, origin: str | None = None, *, token: str | None = None
    ) -> str:
        """A single-use ticket (``JWT_WS_TICKET_TTL`` seconds) for ``?ticket=`` handshakes.

        It carries ``payload``'s subject, scopes and expiry; with ``origin`` it only
        opens connections from that origin. Pass the access ``token`` the payload came
        from so that redeeming the ticket verifies that token again (expiry,
        revocation and the blocklist callback), as ``WS_TICKET`` does.
        """
        return await self._tickets.issue(payload, origin, token=token)

    def _ws_ticket_dependency(self) -> Callable[..., Any]:
        async def _ws_ticket(request: Request, **_schemes: Any) -> str:
            self.ensure_request_exception_handlers(request)
            found, payload = await self._authenticate_request(request)
            return await self._tickets.issue(
                payload, request.headers.get("origin"), token=found.token
            )

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

    async def _verify_ws_refresh(
        self, encoded: str, sub: str, requirements: Sequence[ScopeRequirement] = ()
    ) -> TokenPayload:
        """Verify a token offered to replace a live session's token for ``sub``.

        It passes every check the handshake passed: size, signature and claims, type,
        subject, the endpoint's scopes, the blocklist callback and the store.
        """
        _locations.check_size(encoded, self._config)
        found = RequestToken.found(encoded, "message")
        payload = self.verify_token(found, verify_type=True, verify_csrf=False)
        if payload.sub != sub:
            raise TokenSubjectMismatchError("Token subject mismatch")
        for scopes, all_required in requirements:
            self._check_scopes(payload, scopes, all_required)
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

        required: ScopeRequirement = (tuple(scopes), all_required)

        async def _ws_scopes_required(websocket: WebSocket) -> TokenPayload:
            result = await self._ws_authenticate(websocket, session_required=False)
            try:
                self._check_scopes(result.payload, scopes, all_required)
            except AuthXException as exc:
                exc.login_type = self.login_type
                raise
            # An in-band refresh must keep satisfying the endpoint's scopes.
            if result.session is not None:
                result.session.keep_requiring(required)
            elif required not in result.requirements:
                requirements = (*result.requirements, required)
                _result.write(websocket.scope, replace(result, requirements=requirements))
            return result.payload

        return Depends(_ws_scopes_required)

    async def ws_reject(self, websocket: WebSocket, exc: AuthXException) -> None:
        """Reject ``websocket`` for ``exc`` as ``JWT_WS_REJECTION`` says, whatever its state."""
        await reject_websocket(websocket, exc, self._error_message(exc), self._config)
