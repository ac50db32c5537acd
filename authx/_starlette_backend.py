"""AuthX as a backend of Starlette's own ``AuthenticationMiddleware``.

The backend finds and verifies the token of an HTTP request (``JWT_TOKEN_LOCATION``)
or of a WebSocket handshake (``JWT_WS_TOKEN_LOCATION``) and answers Starlette's
question with ``(AuthXCredentials, AuthXUser)``, or None when there is no token.
An HTTP request with a token that fails is an :class:`AuthXAuthenticationError`,
which :meth:`AuthXBackend.on_error` answers as every AuthX route does. A WebSocket
handshake is never refused here (Starlette's middleware could only close it with
1000): a failure is kept for :class:`~authx.starlette.WebSocketAuthMiddleware`,
which refuses it with AuthX's rejection, and the connection is unauthenticated.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, NoReturn

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Message
from starlette.websockets import WebSocket

from authx._http import PayloadDependency
from authx.errors import error_response, log_failure
from authx.exceptions import AuthXException
from authx.schema import TokenPayload
from authx.scopes import match_scope

if TYPE_CHECKING:
    from authx import AuthX
    from authx.websocket.session import WebSocketSession

__all__ = [
    "AuthXAuthenticationError",
    "AuthXBackend",
    "AuthXCredentials",
    "AuthXUser",
    "GrantedScopes",
    "credentials",
    "take_failure",
]


#: Scope key of a WebSocket handshake's failed authentication, until a middleware refuses it.
_FAILURE = "authx.starlette.failure"


class GrantedScopes(list[str]):
    """A token's scopes, where ``in`` follows AuthX's matching.

    Starlette's ``@requires("admin:users")`` asks ``"admin:users" in request.auth.scopes``:
    a token granted ``admin:*`` answers yes, as ``scopes_required`` would. Iterating
    and comparing give the token's own strings.
    """

    def __contains__(self, scope: object) -> bool:
        return isinstance(scope, str) and any(match_scope(scope, granted) for granted in self)


class AuthXCredentials(AuthCredentials):
    """``request.auth``: the scopes of the token as it is now (after an in-band refresh too)."""

    def __init__(self, payload: TokenPayload) -> None:
        self.payload = payload

    @property
    def scopes(self) -> GrantedScopes:
        return GrantedScopes(self.payload.scopes or ())

    @scopes.setter
    def scopes(self, value: list[str]) -> NoReturn:
        raise AttributeError("the scopes are the token's; they change with the token only")


class AuthXUser(BaseUser):
    """``request.user`` for a verified token: ``identity`` and ``display_name`` are its subject.

    ``payload`` is the :class:`TokenPayload` (updated in place by an in-band refresh);
    ``session`` the live :class:`WebSocketSession` when ``WebSocketAuthMiddleware``
    authenticated the connection, else None.
    """

    def __init__(self, payload: TokenPayload, session: WebSocketSession | None = None) -> None:
        self.payload = payload
        self.session = session

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.payload.sub

    @property
    def identity(self) -> str:
        return self.payload.sub

    def has_scopes(self, *scopes: str, all_required: bool = True) -> bool:
        """Whether the token grants ``scopes``, wildcards included (``payload.has_scopes``)."""
        return self.payload.has_scopes(*scopes, all_required=all_required)

    def __repr__(self) -> str:
        return f"AuthXUser(sub={self.payload.sub!r})"


def credentials(
    payload: TokenPayload, session: WebSocketSession | None = None
) -> tuple[AuthXCredentials, AuthXUser]:
    """What Starlette keeps in ``scope["auth"]`` and ``scope["user"]`` for ``payload``."""
    return AuthXCredentials(payload), AuthXUser(payload, session)


class AuthXAuthenticationError(AuthenticationError):
    """Starlette's ``AuthenticationError`` holding the AuthX error and its message."""

    def __init__(self, error: AuthXException, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


def take_failure(scope: MutableMapping[str, Any]) -> AuthXException | None:
    """The failed authentication the backend kept for this WebSocket, removed from the scope."""
    failure = scope.pop(_FAILURE, None)
    return failure if isinstance(failure, AuthXException) else None


async def _no_receive() -> Message:
    raise RuntimeError("AuthXBackend reads the handshake, never the socket")


async def _no_send(message: Message) -> None:
    raise RuntimeError("AuthXBackend reads the handshake, never the socket")


class AuthXBackend(AuthenticationBackend):
    """AuthX for ``starlette.middleware.authentication.AuthenticationMiddleware``.

    >>> Middleware(AuthenticationMiddleware, backend=AuthXBackend(auth),
    ...            on_error=AuthXBackend.on_error)

    The token is looked for where an AuthX route would look, except in a JSON body
    (a middleware must leave the body to the endpoint); it must be a valid access
    token, not revoked by the blocklist callback or the store.
    """

    def __init__(self, auth: AuthX) -> None:
        self._auth = auth
        self._verifiers: dict[tuple[str, ...], PayloadDependency] = {}

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        if conn.scope["type"] == "websocket":
            return await self._handshake(conn.scope)
        # No receive channel: nothing here may read the body (json, CSRF form field).
        request = Request(conn.scope)
        places = tuple(place for place in self._auth.config.JWT_TOKEN_LOCATION if place != "json")
        try:
            if await self._auth.get_token_from_request(request, locations=places) is None:
                return None
            payload = await self._verifier(places)(request)
        except AuthXException as exc:
            raise AuthXAuthenticationError(exc, self._auth.error_message(exc)) from exc
        return credentials(payload)

    def _verifier(self, places: tuple[str, ...]) -> PayloadDependency:
        """The access-token dependency for ``places`` (made once per set of places)."""
        verifier = self._verifiers.get(places)
        if verifier is None:
            verifier = self._verifiers[places] = self._auth.token_required(locations=places)
        return verifier

    async def _handshake(
        self, scope: MutableMapping[str, Any]
    ) -> tuple[AuthXCredentials, AuthXUser] | None:
        websocket = WebSocket(scope, _no_receive, _no_send)
        try:
            result = await self._auth.check_websocket(websocket)
        except AuthXException as exc:
            scope[_FAILURE] = exc.with_traceback(None)  # kept as long as the connection
            return None
        if result is None:
            return None
        return credentials(result.payload, result.session)

    @staticmethod
    def on_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
        """The ``on_error`` of ``AuthenticationMiddleware``: AuthX's JSON answer and
        ``WWW-Authenticate`` challenge (401, 403, 429, 503) for an AuthX failure."""
        if not isinstance(exc, AuthXAuthenticationError):
            return PlainTextResponse(str(exc), status_code=400)  # Starlette's own default
        log_failure(conn, exc.error, exc.message)
        return error_response(exc.error, exc.message)
