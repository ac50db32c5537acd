"""The WebSocket front end: authenticating a handshake once, the WebSocket
dependencies that read that one result, and tickets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial

from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket

from authx._revocation import Revocations
from authx._verify import ScopeRequirement, Verifier
from authx.config import AuthXConfig
from authx.exceptions import AuthXException, MissingTokenError, RevokedTokenError
from authx.schema import RequestToken, TokenLocation, TokenPayload
from authx.websocket import _result
from authx.websocket._admission import Admission
from authx.websocket._registry import LiveRegistry
from authx.websocket._result import AuthResult
from authx.websocket._transports import ws_request_token
from authx.websocket.session import WebSocketSession
from authx.websocket.tickets import Tickets

__all__ = ["WebSocketAuthenticator"]


class WebSocketAuthenticator:
    """Authenticates WebSocket handshakes; every WebSocket dependency goes through it."""

    def __init__(
        self,
        config: Callable[[], AuthXConfig],
        verifier: Verifier,
        revocations: Revocations,
        live: LiveRegistry,
        tickets: Tickets,
        install_handlers: Callable[[HTTPConnection], None],
    ) -> None:
        self._config = config
        self._verifier = verifier
        self._revocations = revocations
        self._live = live
        self._tickets = tickets
        self._install_handlers = install_handlers
        self._admission = Admission(config, revocations.store, revocations.current_store)

    async def authenticate(
        self, websocket: WebSocket, session_required: bool = False
    ) -> AuthResult:
        """The connection's :class:`AuthResult`: computed on the first call, then read.

        With ``session_required`` (``WS_SESSION``) the result has a live session.
        """
        current = _result.read(websocket.scope)
        config = self._config()
        if current is not None and (
            current.session is not None
            or not _wants_session(config, current.location, session_required)
        ):
            return current
        self._install_handlers(websocket)
        try:
            if current is None:
                payload, raw, location = await self._admit_and_verify(websocket, config)
                requirements: tuple[ScopeRequirement, ...] = ()
            else:
                payload, raw, location = current.payload, current.token, current.location
                requirements = current.requirements
            session = None
            if _wants_session(config, location, session_required):
                session = self._live.attach(
                    websocket,
                    payload,
                    raw,
                    subprotocol_auth=location == "subprotocol",
                    requirements=requirements,
                )
        except AuthXException as exc:
            raise self._verifier.stamp(exc) from None
        result = AuthResult(payload, location, session, requirements, raw)
        _result.write(websocket.scope, result)
        return result

    async def check(self, websocket: WebSocket) -> AuthResult | None:
        """The handshake's authentication without a live session; None when it has no token.

        For a Starlette ``AuthenticationBackend``, which sees the handshake but not the
        socket: a first-message token cannot be read, and no token is not a failure
        (the application decides). The result is recorded, so a later
        :meth:`authenticate` gives the connection its session without verifying again.
        """
        current = _result.read(websocket.scope)
        if current is not None:
            return current
        try:
            payload, raw, location = await self._admit_and_verify(
                websocket, self._config(), socket=False
            )
        except MissingTokenError:
            return None
        except AuthXException as exc:
            raise self._verifier.stamp(exc) from None
        result = AuthResult(payload, location, token=raw)
        _result.write(websocket.scope, result)
        return result

    async def _admit_and_verify(
        self, websocket: WebSocket, config: AuthXConfig, socket: bool = True
    ) -> tuple[TokenPayload, str, TokenLocation]:
        """Admission first (before the token is read), then the token; a failure costs extra.

        Without ``socket`` the first-message transport is passed over.
        """
        admission = self._admission
        address = admission.address(websocket)
        await admission.admit(address)
        try:
            found = await ws_request_token(
                websocket, config, partial(admission.hold, address), first_message=socket
            )
            payload, raw = await self._verify(found, websocket)
        except AuthXException as exc:
            if socket or not isinstance(exc, MissingTokenError):
                # No token where nothing could wait for one is not a failed attempt.
                await admission.failed(address, exc.reason)
            raise
        await admission.admit_subject(payload.sub, address)
        return payload, raw, found.location

    async def _verify(self, found: RequestToken, websocket: WebSocket) -> tuple[TokenPayload, str]:
        """The verified payload of the handshake's token, and the raw access token."""
        if found.location != "ticket":
            payload = await self._verifier.verify_async(found, verify_csrf=False)
            await self._verifier.check_revoked(found.token, payload)
            return payload, found.token
        payload, token = await self._tickets.redeem(found.token, websocket)
        if token is None:
            # A ticket made from a payload alone: its claims were verified when it was made.
            if await self._revocations.is_revoked(payload):
                raise RevokedTokenError("Token has been revoked")
            return payload, ""
        # A ticket is never worth more than its token: verify that token again, now.
        payload = await self._verifier.verify_async(
            RequestToken.found(token, "ticket"), verify_csrf=False
        )
        await self._verifier.check_revoked(token, payload)
        return payload, token

    async def payload(self, websocket: WebSocket) -> TokenPayload:
        """The verified payload (the seed's ``_ws_auth_required``)."""
        return (await self.authenticate(websocket)).payload

    async def session(self, websocket: WebSocket) -> WebSocketSession:
        session = (await self.authenticate(websocket, session_required=True)).session
        assert session is not None  # noqa: S101 - session_required guarantees one
        return session

    def scopes_dependency(
        self, scopes: tuple[str, ...], all_required: bool = True
    ) -> Callable[[WebSocket], object]:
        """A WebSocket dependency requiring ``scopes`` now and after every in-band refresh."""
        required: ScopeRequirement = (scopes, all_required)

        async def _ws_scopes_required(websocket: WebSocket) -> TokenPayload:
            result = await self.authenticate(websocket)
            self._verifier.check_scopes(result.payload, scopes, all_required)
            if result.session is not None:
                result.session.keep_requiring(required)
            elif required not in result.requirements:
                # Kept in the record for a session created later (WS_SESSION after this).
                requirements = (*result.requirements, required)
                _result.write(websocket.scope, replace(result, requirements=requirements))
            return result.payload

        return _ws_scopes_required

    async def issue_ticket(
        self, payload: TokenPayload, origin: str | None = None, token: str | None = None
    ) -> str:
        return await self._tickets.issue(payload, origin, token=token)


def _wants_session(config: AuthXConfig, location: TokenLocation, session_required: bool) -> bool:
    """Whether a connection authenticated at ``location`` is held by a live session."""
    return (
        session_required or config.JWT_WS_ENFORCE_LIFETIME or location in ("subprotocol", "message")
    )
