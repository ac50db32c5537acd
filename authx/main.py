"""AuthX: the object applications hold. It owns one configuration, builds its
components once, hands each only what it needs, and delegates to them (see
"How it is built" in the README)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic

from fastapi import Depends, Request, Response
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket
from typing_extensions import TypeVar

from authx import _cookies
from authx._callbacks import Callbacks
from authx._delegate import delegate
from authx._http import HTTPAuth, PayloadDependency
from authx._implicit_refresh import ImplicitRefresh
from authx._issue import Issuer
from authx._revocation import Revocations
from authx._starlette import exception_handlers
from authx._verify import Verifier
from authx.config import AuthXConfig
from authx.dependencies import AuthXDependency
from authx.errors import HANDLED, ErrorMessages, make_handler, reject_websocket
from authx.exceptions import AuthXException
from authx.redaction import RedactTokensFilter
from authx.schema import RequestToken, TokenPayload
from authx.stores import Store
from authx.websocket._auth import WebSocketAuthenticator
from authx.websocket._registry import LiveRegistry
from authx.websocket._result import AuthResult
from authx.websocket.session import WebSocketSession
from authx.websocket.tickets import Tickets

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["AuthX"]

#: The type of the subject your subject getter returns (``AuthX[User]``); Any by default.
T = TypeVar("T", default=Any)


class AuthX(ErrorMessages, Generic[T]):
    """JWT authentication for a FastAPI or Starlette application.

    >>> auth = AuthX(config=AuthXConfig(JWT_SECRET_KEY="..."))
    >>> @app.get("/protected", dependencies=[auth.ACCESS_REQUIRED])
    """

    def __init__(
        self,
        config: AuthXConfig | None = None,
        model: T | None = None,
        login_type: str | None = None,
    ) -> None:
        if model is not None:
            warnings.warn(
                "AuthX(model=...) is unused and will be removed", DeprecationWarning, stacklevel=2
            )
        self.model: Any = model if model is not None else {}
        self.login_type = login_type
        self._config = config if config is not None else AuthXConfig()
        self._callbacks = Callbacks()
        current = self._current_config
        self._handler = make_handler(current, self._error_message)
        self._revocations = Revocations(current)
        self._verifier = Verifier(current, self._callbacks, self._revocations, login_type)
        self._issuer = Issuer(current, lambda: self._verifier.keys, login_type)
        self._cookies = _cookies.Cookies(current, lambda token: self._verifier.decode(token).csrf)
        self._live = LiveRegistry(current, self._verifier, self._revocations.revoked_among)
        self._revocations.add_listener(self._live.apply)
        self._tickets = Tickets(current, self._revocations.store)
        install = self.ensure_request_exception_handlers
        self._http = HTTPAuth(current, self._verifier, self._callbacks, install)
        self._refresh = ImplicitRefresh(current, self._http, self._issuer, self._cookies)
        self._ws = WebSocketAuthenticator(
            current, self._verifier, self._revocations, self._live, self._tickets, install
        )
        self.load_config(self._config, prepare_keys=config is not None)

    def _current_config(self) -> AuthXConfig:
        return self._config

    @property
    def config(self) -> AuthXConfig:
        return self._config

    def load_config(self, config: AuthXConfig, *, prepare_keys: bool = True) -> None:
        """Use ``config`` from now on: keys, store and log redaction follow it."""
        self._config = config
        if prepare_keys:
            self._verifier.keys  # noqa: B018 - a bad key fails now, not on the first request
        self._revocations.reconfigure()
        if config.JWT_REDACT_SERVER_LOGS:
            # uvicorn logs request paths with their query strings, tokens included.
            RedactTokensFilter.install(params=(config.JWT_QUERY_STRING_NAME, "ticket"))

    create_access_token = delegate("_issuer", Issuer.create_access_token)
    create_refresh_token = delegate("_issuer", Issuer.create_refresh_token)
    create_token_pair = delegate("_issuer", Issuer.create_token_pair)
    implicit_refresh_middleware = delegate("_refresh", ImplicitRefresh.middleware)

    # Verification ----------------------------------------------------------

    def _decode_token(self, encoded: str, verify: bool = True) -> TokenPayload:
        return self._verifier.decode(encoded, verify)

    def verify_token(
        self,
        token: RequestToken,
        verify_type: bool = True,
        verify_fresh: bool = False,
        verify_csrf: bool = True,
    ) -> TokenPayload:
        """Verify signature and claims, then type, freshness and CSRF (not the blocklist)."""
        return self._verifier.verify(token, verify_type, verify_fresh, verify_csrf)

    get_token_from_request = delegate("_http", HTTPAuth.get_token_from_request)
    get_access_token_from_request = delegate("_http", HTTPAuth.get_access_token_from_request)
    get_refresh_token_from_request = delegate("_http", HTTPAuth.get_refresh_token_from_request)

    # HTTP dependencies -----------------------------------------------------

    def token_required(
        self,
        type: str = "access",
        verify_type: bool = True,
        verify_fresh: bool = False,
        verify_csrf: bool | None = None,
        locations: Sequence[str] | None = None,
    ) -> PayloadDependency:
        """A dependency returning the verified :class:`TokenPayload` of the request."""
        return self._http.token_dependency(type, verify_type, verify_fresh, verify_csrf, locations)

    def scopes_required(
        self,
        *scopes: str,
        all_required: bool = True,
        verify_type: bool = True,
        verify_fresh: bool = False,
        verify_csrf: bool | None = None,
        locations: Sequence[str] | None = None,
    ) -> PayloadDependency:
        """A dependency requiring an access token that grants ``scopes`` (else 403)."""
        return self._http.scopes_dependency(
            scopes, all_required, verify_type, verify_fresh, verify_csrf, locations
        )

    @property
    def access_token_required(self) -> PayloadDependency:
        """The dependency: ``Annotated[TokenPayload, Depends(auth.access_token_required)]``."""
        return self.token_required("access")

    @property
    def refresh_token_required(self) -> PayloadDependency:
        return self.token_required("refresh")

    @property
    def fresh_token_required(self) -> PayloadDependency:
        return self.token_required("access", verify_fresh=True)

    # ``Depends`` markers, typed Any as FastAPI's ``Depends()`` is: each serves both as a
    # parameter's default (``payload: TokenPayload = auth.ACCESS_REQUIRED``) and in a
    # route's ``dependencies=[...]``.
    ACCESS_REQUIRED: Any = property(lambda self: Depends(self.access_token_required))
    REFRESH_REQUIRED: Any = property(lambda self: Depends(self.refresh_token_required))
    FRESH_REQUIRED: Any = property(lambda self: Depends(self.fresh_token_required))
    #: The unverified access (refresh) token of the request, or None.
    ACCESS_TOKEN: Any = property(
        lambda self: Depends(self._http.optional_token_dependency("access"))
    )
    REFRESH_TOKEN: Any = property(
        lambda self: Depends(self._http.optional_token_dependency("refresh"))
    )
    CURRENT_SUBJECT: Any = property(lambda self: Depends(self._http.current_subject_dependency()))
    DEPENDENCY: Any = property(lambda self: Depends(self.get_dependency))
    BUNDLE: Any = DEPENDENCY

    def get_dependency(self, request: Request, response: Response) -> AuthXDependency[T]:
        return AuthXDependency(self, request=request, response=response)

    async def get_current_subject(self, request: Request) -> T:
        """The subject the subject getter returns for the request's access token."""
        subject: T = await self._http.current_subject(request)
        return subject

    # Cookies ---------------------------------------------------------------

    set_access_cookies = delegate("_cookies", _cookies.Cookies.set_access_cookies)
    set_refresh_cookies = delegate("_cookies", _cookies.Cookies.set_refresh_cookies)
    unset_access_cookies = delegate("_cookies", _cookies.Cookies.unset_access_cookies)
    unset_refresh_cookies = delegate("_cookies", _cookies.Cookies.unset_refresh_cookies)
    unset_cookies = delegate("_cookies", _cookies.Cookies.unset_cookies)

    # Callbacks -------------------------------------------------------------

    def set_subject_getter(self, callback: Callable[..., Any]) -> None:
        """Register ``callback(uid) -> subject`` (sync or async) for ``CURRENT_SUBJECT``."""
        self._callbacks.subject_getter = callback

    def set_token_blocklist(self, callback: Callable[..., Any]) -> None:
        """Register ``callback(token) -> bool`` (sync or async); True means revoked."""
        self._callbacks.blocklist = callback

    set_callback_get_model_instance = set_subject_getter
    set_callback_token_blocklist = set_token_blocklist
    callback_get_model_instance = property(lambda self: self._callbacks.subject_getter)
    callback_is_token_in_blocklist = property(lambda self: self._callbacks.blocklist)
    is_model_callback_set = property(lambda self: self._callbacks.subject_getter is not None)
    is_token_callback_set = property(lambda self: self._callbacks.blocklist is not None)

    async def is_token_in_blocklist(self, token: str | None) -> bool:
        """Whether the blocklist callback reports the raw ``token`` as revoked."""
        return token is not None and await self._verifier.is_blocklisted(token)

    # WebSocket -------------------------------------------------------------

    async def authenticate_websocket(self, websocket: WebSocket) -> AuthResult:
        """Authenticate ``websocket`` once: its payload, transport and live session."""
        return await self._ws.authenticate(websocket)

    #: The verified payload of the handshake's access token (the seed's name); the
    #: authenticator's own method, so that a handshake awaits one coroutine less.
    _ws_auth_required = delegate("_ws", WebSocketAuthenticator.payload)
    #: Admission and the handshake's token checked (no session): None without a token.
    check_websocket = delegate("_ws", WebSocketAuthenticator.check)
    WS_AUTH_REQUIRED: Any = property(lambda self: Depends(self._ws.payload))
    #: A WebSocket dependency yielding a :class:`WebSocketSession`.
    WS_SESSION: Any = property(lambda self: Depends(self._ws.session))
    #: An HTTP dependency exchanging the access token for a ticket bound to the Origin.
    WS_TICKET: Any = property(
        lambda self: Depends(self._http.ticket_dependency(self._ws.issue_ticket))
    )

    def ws_scopes_required(self, *scopes: str, all_required: bool = True) -> Any:
        """A WebSocket dependency requiring ``scopes``; a denial is 403 / close 4003."""
        return Depends(self._ws.scopes_dependency(scopes, all_required))

    async def create_ws_ticket(
        self, payload: TokenPayload, origin: str | None = None, *, token: str | None = None
    ) -> str:
        """A single-use ``?ticket=`` for ``payload``; with ``token``, redeeming re-verifies it."""
        return await self._ws.issue_ticket(payload, origin, token)

    async def load_keys(self) -> None:
        """Fetch the identity provider's keys now (at start-up); KeySourceUnavailableError."""
        await self._verifier.load_provider_keys()

    async def ws_reject(self, websocket: WebSocket, exc: AuthXException) -> None:
        """Reject ``websocket`` for ``exc`` as ``JWT_WS_REJECTION`` says, whatever its state."""
        await reject_websocket(websocket, exc, self._error_message(exc), self._config)

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

    # Errors ----------------------------------------------------------------

    def handle_errors(self, app: FastAPI) -> None:
        """Answer AuthX errors: JSON with a status on HTTP, a deliberate rejection on WebSocket."""
        for exc_class in HANDLED:
            app.add_exception_handler(exc_class, self._handler)

    def ensure_request_exception_handlers(self, connection: HTTPConnection) -> None:
        """Install the handlers for this app when ``handle_errors`` was not called."""
        handlers = exception_handlers(connection)
        if handlers is not None and AuthXException not in handlers:
            # Subclass handlers the app registered still win: Starlette walks the MRO.
            handlers[AuthXException] = self._handler
