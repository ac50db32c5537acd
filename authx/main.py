"""AuthX: the object applications hold. It wires config, keys, locations,
callbacks and error handling together; the logic lives in the modules it calls."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from fastapi import Depends, Request, Response
from starlette.requests import HTTPConnection

from authx import _cookies, _locations, exceptions, token
from authx._callbacks import call
from authx._keys import KeySet, keyset_for
from authx._openapi import security_schemes, with_security_schemes
from authx._revocation import Revocations
from authx.config import AuthXConfig
from authx.errors import make_handler
from authx.exceptions import (
    AuthXException,
    InsufficientScopeError,
    JWTDecodeError,
    MissingTokenError,
    RevokedTokenError,
    UnknownSubjectError,
)
from authx.redaction import RedactTokensFilter
from authx.schema import RequestToken, TokenPayload, TokenResponse
from authx.scopes import has_required_scopes
from authx.websocket._auth import WebSocketAuth
from authx.websocket._registry import LiveRegistry
from authx.websocket.tickets import Tickets

if TYPE_CHECKING:
    from fastapi import FastAPI

    from authx.dependencies import AuthXDependency

__all__ = ["AuthX"]

T = TypeVar("T")

_DEFAULT_CONFIG = AuthXConfig()


class AuthX(WebSocketAuth, Generic[T]):
    """JWT authentication for a FastAPI or Starlette application.

    >>> auth = AuthX(config=AuthXConfig(JWT_SECRET_KEY="..."))
    >>> @app.get("/protected", dependencies=[auth.ACCESS_REQUIRED])
    """

    # Messages of the JSON error bodies, overridable per instance; None means str(exc).
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

    def __init__(
        self,
        config: AuthXConfig | None = None,
        model: T | None = None,
        login_type: str | None = None,
    ) -> None:
        self.model: Any = model if model is not None else {}
        self.login_type = login_type
        self._config = config if config is not None else _DEFAULT_CONFIG
        self._keys_stamp: tuple[AuthXConfig, int] | None = None
        self._keyset: KeySet
        self.callback_get_model_instance: Callable[..., Any] | None = None
        self.callback_is_token_in_blocklist: Callable[..., Any] | None = None
        self._live = LiveRegistry(self)
        self._revocations = Revocations(self)
        self._tickets = Tickets(self)
        if config is not None:
            self._keys  # noqa: B018 - fail at start-up, not on the first request
        self._redact_logs()

    def _redact_logs(self) -> None:
        # uvicorn logs request paths with their query strings, tokens included.
        if self._config.JWT_REDACT_SERVER_LOGS:
            RedactTokensFilter.install(params=(self._config.JWT_QUERY_STRING_NAME, "ticket"))

    # Configuration ---------------------------------------------------------

    @property
    def config(self) -> AuthXConfig:
        return self._config

    def load_config(self, config: AuthXConfig) -> None:
        self._config = config
        self._keys  # noqa: B018
        self._redact_logs()

    @property
    def _keys(self) -> KeySet:
        config = self._config
        stamp = self._keys_stamp
        if stamp is None or stamp[0] is not config or stamp[1] != config.revision:
            self._keyset = keyset_for(config)
            self._keys_stamp = (config, config.revision)
        return self._keyset

    # Token creation --------------------------------------------------------

    def _create_token(
        self,
        uid: str,
        type: str,
        fresh: bool = False,
        headers: dict[str, Any] | None = None,
        expiry: datetime | timedelta | None = None,
        data: dict[str, Any] | None = None,
        audience: str | Sequence[str] | None = None,
        scopes: Sequence[str] | None = None,
    ) -> str:
        config = self._config
        if expiry is None:
            expiry = (
                config.JWT_ACCESS_TOKEN_EXPIRES
                if type == "access"
                else config.JWT_REFRESH_TOKEN_EXPIRES
            )
        csrf = config.has_location("cookies") and config.JWT_COOKIE_CSRF_PROTECT
        extra = dict(data or {})
        if self.login_type is not None:
            extra.setdefault("login_type", self.login_type)
        claims = token.build_claims(
            uid,
            type=type,
            expiry=expiry,
            fresh=fresh,
            csrf=True if csrf else "",
            audience=audience or config.JWT_ENCODE_AUDIENCE,
            issuer=config.JWT_ENCODE_ISSUER,
            not_before=config.JWT_ENCODE_NBF,
            data=extra,
            scopes=scopes,
            identity_claim=config.JWT_IDENTITY_CLAIM,
        )
        return token.encode(claims, self._keys, headers)

    def create_access_token(
        self,
        uid: str,
        fresh: bool = False,
        headers: dict[str, Any] | None = None,
        expiry: datetime | timedelta | None = None,
        data: dict[str, Any] | None = None,
        audience: str | Sequence[str] | None = None,
        scopes: Sequence[str] | None = None,
    ) -> str:
        """A signed access token for ``uid``; an unknown option is a ``TypeError``."""
        return self._create_token(uid, "access", fresh, headers, expiry, data, audience, scopes)

    def create_refresh_token(
        self,
        uid: str,
        headers: dict[str, Any] | None = None,
        expiry: datetime | timedelta | None = None,
        data: dict[str, Any] | None = None,
        audience: str | Sequence[str] | None = None,
        scopes: Sequence[str] | None = None,
    ) -> str:
        """A signed refresh token for ``uid``; an unknown option is a ``TypeError``."""
        return self._create_token(uid, "refresh", False, headers, expiry, data, audience, scopes)

    def create_token_pair(
        self,
        uid: str,
        fresh: bool = False,
        headers: dict[str, Any] | None = None,
        access_expiry: datetime | timedelta | None = None,
        refresh_expiry: datetime | timedelta | None = None,
        data: dict[str, Any] | None = None,
        audience: str | Sequence[str] | None = None,
        access_scopes: Sequence[str] | None = None,
        refresh_scopes: Sequence[str] | None = None,
    ) -> TokenResponse:
        """An access and a refresh token in one :class:`TokenResponse`."""
        return TokenResponse(
            access_token=self.create_access_token(
                uid, fresh, headers, access_expiry, data, audience, access_scopes
            ),
            refresh_token=self.create_refresh_token(
                uid, headers, refresh_expiry, data, audience, refresh_scopes
            ),
        )

    # Verification ----------------------------------------------------------

    def _decode_token(
        self,
        encoded: str,
        verify: bool = True,
        audience: str | Sequence[str] | None = None,
        issuer: str | None = None,
    ) -> TokenPayload:
        config = self._config
        claims = token.decode_jws(encoded, self._keys, verify=verify)
        if verify:
            token.validate_claims(
                claims,
                audience=audience or config.JWT_DECODE_AUDIENCE,
                issuer=issuer or config.JWT_DECODE_ISSUER,
                leeway=config.JWT_DECODE_LEEWAY,
            )
        return TokenPayload.from_claims(claims, config.JWT_IDENTITY_CLAIM)

    def verify_token(
        self,
        token: RequestToken,
        verify_type: bool = True,
        verify_fresh: bool = False,
        verify_csrf: bool = True,
    ) -> TokenPayload:
        """Verify signature and claims, then type, freshness and CSRF (not the blocklist)."""
        try:
            payload = self._decode_token(token.token)
            token.check(payload, verify_type, verify_csrf, verify_fresh)
        except AuthXException as exc:
            if exc.login_type is None:
                exc.login_type = self.login_type
            raise
        return payload

    async def _check_revoked(self, encoded: str, payload: TokenPayload) -> None:
        if await self.is_token_in_blocklist(encoded) or await self._revocations.is_revoked(payload):
            raise RevokedTokenError("Token has been revoked", login_type=self.login_type)

    async def _get_token_from_request(
        self,
        request: Request,
        locations: Sequence[str] | None = None,
        refresh: bool = False,
        optional: bool = False,
    ) -> RequestToken | None:
        try:
            return await _locations.get_token_from_request(
                request, self._config, refresh=refresh, locations=locations
            )
        except MissingTokenError as exc:
            if optional:
                return None
            exc.login_type = self.login_type
            raise

    async def get_token_from_request(
        self,
        request: Request,
        type: str = "access",
        optional: bool = True,
        locations: Sequence[str] | None = None,
    ) -> RequestToken | None:
        return await self._get_token_from_request(
            request, locations=locations, refresh=type == "refresh", optional=optional
        )

    async def get_access_token_from_request(
        self, request: Request, locations: Sequence[str] | None = None
    ) -> RequestToken:
        found = await self._get_token_from_request(request, locations=locations)
        assert found is not None  # noqa: S101 - not optional, so it raised instead
        return found

    async def get_refresh_token_from_request(
        self, request: Request, locations: Sequence[str] | None = None
    ) -> RequestToken:
        found = await self._get_token_from_request(request, locations=locations, refresh=True)
        assert found is not None  # noqa: S101
        return found

    async def _auth_required(
        self,
        request: Request,
        type: str = "access",
        verify_type: bool = True,
        verify_fresh: bool = False,
        verify_csrf: bool | None = None,
        locations: Sequence[str] | None = None,
    ) -> TokenPayload:
        _, payload = await self._authenticate_request(
            request, type, verify_type, verify_fresh, verify_csrf, locations
        )
        return payload

    async def _authenticate_request(
        self,
        request: Request,
        type: str = "access",
        verify_type: bool = True,
        verify_fresh: bool = False,
        verify_csrf: bool | None = None,
        locations: Sequence[str] | None = None,
    ) -> tuple[RequestToken, TokenPayload]:
        """The token found in ``request`` and its payload, after every check passed."""
        config = self._config
        if verify_csrf is None:
            verify_csrf = (
                config.JWT_COOKIE_CSRF_PROTECT and request.method.upper() in config.JWT_CSRF_METHODS
            )
        found = (
            await self.get_access_token_from_request(request, locations)
            if type == "access"
            else await self.get_refresh_token_from_request(request, locations)
        )
        payload = self.verify_token(found, verify_type, verify_fresh, verify_csrf)
        await self._check_revoked(found.token, payload)
        return found, payload

    # FastAPI dependencies --------------------------------------------------

    def token_required(
        self,
        type: str = "access",
        verify_type: bool = True,
        verify_fresh: bool = False,
        verify_csrf: bool | None = None,
        locations: Sequence[str] | None = None,
    ) -> Callable[..., Any]:
        """A dependency returning the verified :class:`TokenPayload` of the request."""
        _locations.check_locations(locations)

        async def _token_required(request: Request, **_schemes: Any) -> TokenPayload:
            self.ensure_request_exception_handlers(request)
            return await self._auth_required(
                request, type, verify_type, verify_fresh, verify_csrf, locations
            )

        return with_security_schemes(
            _token_required, security_schemes(self._config, type, locations)
        )

    @property
    def access_token_required(self) -> Callable[..., Any]:
        return self.token_required(type="access")

    @property
    def refresh_token_required(self) -> Callable[..., Any]:
        return self.token_required(type="refresh")

    @property
    def fresh_token_required(self) -> Callable[..., Any]:
        return self.token_required(type="access", verify_fresh=True)

    def scopes_required(
        self,
        *scopes: str,
        all_required: bool = True,
        verify_type: bool = True,
        verify_fresh: bool = False,
        verify_csrf: bool | None = None,
        locations: Sequence[str] | None = None,
    ) -> Callable[..., Any]:
        """A dependency requiring an access token that grants ``scopes`` (else 403)."""
        _locations.check_locations(locations)

        async def _scopes_required(request: Request, **_schemes: Any) -> TokenPayload:
            self.ensure_request_exception_handlers(request)
            payload = await self._auth_required(
                request, "access", verify_type, verify_fresh, verify_csrf, locations
            )
            self._check_scopes(payload, scopes, all_required)
            return payload

        return with_security_schemes(
            _scopes_required, security_schemes(self._config, "access", locations)
        )

    def _check_scopes(
        self, payload: TokenPayload, scopes: Sequence[str], all_required: bool
    ) -> None:
        if not has_required_scopes(scopes, payload.scopes, all_required):
            raise InsufficientScopeError(
                required=list(scopes), provided=payload.scopes, login_type=self.login_type
            )

    @property
    def ACCESS_REQUIRED(self) -> Any:
        return Depends(self.access_token_required)

    @property
    def REFRESH_REQUIRED(self) -> Any:
        return Depends(self.refresh_token_required)

    @property
    def FRESH_REQUIRED(self) -> Any:
        return Depends(self.fresh_token_required)

    async def _optional_access_token(self, request: Request) -> RequestToken | None:
        return await self.get_token_from_request(request, "access", optional=True)

    async def _optional_refresh_token(self, request: Request) -> RequestToken | None:
        return await self.get_token_from_request(request, "refresh", optional=True)

    @property
    def ACCESS_TOKEN(self) -> Any:
        """The unverified access token of the request, or None."""
        return Depends(self._optional_access_token)

    @property
    def REFRESH_TOKEN(self) -> Any:
        """The unverified refresh token of the request, or None."""
        return Depends(self._optional_refresh_token)

    @property
    def CURRENT_SUBJECT(self) -> Any:
        async def _current_subject(request: Request, **_schemes: Any) -> T | None:
            return await self.get_current_subject(request)

        # Wrapped so that the route lists the security schemes, as the other dependencies do.
        return Depends(
            with_security_schemes(_current_subject, security_schemes(self._config, "access", None))
        )

    @property
    def DEPENDENCY(self) -> Any:
        return Depends(self.get_dependency)

    @property
    def BUNDLE(self) -> Any:
        return Depends(self.get_dependency)

    def get_dependency(self, request: Request, response: Response) -> AuthXDependency[T]:
        from authx.dependencies import AuthXDependency

        return AuthXDependency(self, request=request, response=response)

    # Cookies ---------------------------------------------------------------

    def _csrf_claim(self, encoded: str) -> str | None:
        return self._decode_token(encoded).csrf or None

    def set_access_cookies(
        self, token: str, response: Response, max_age: int | None = None
    ) -> None:
        _cookies.set_token_cookies(
            response, self._config, "access", token, self._csrf_claim(token), max_age
        )

    def set_refresh_cookies(
        self, token: str, response: Response, max_age: int | None = None
    ) -> None:
        _cookies.set_token_cookies(
            response, self._config, "refresh", token, self._csrf_claim(token), max_age
        )

    def unset_access_cookies(self, response: Response) -> None:
        _cookies.unset_token_cookies(response, self._config, "access")

    def unset_refresh_cookies(self, response: Response) -> None:
        _cookies.unset_token_cookies(response, self._config, "refresh")

    def unset_cookies(self, response: Response) -> None:
        self.unset_access_cookies(response)
        self.unset_refresh_cookies(response)

    # Callbacks -------------------------------------------------------------

    def set_callback_get_model_instance(self, callback: Callable[..., Any]) -> None:
        self.callback_get_model_instance = callback

    def set_subject_getter(self, callback: Callable[..., Any]) -> None:
        """Register ``callback(uid) -> subject`` (sync or async) for ``CURRENT_SUBJECT``."""
        self.set_callback_get_model_instance(callback)

    def set_callback_token_blocklist(self, callback: Callable[..., Any]) -> None:
        self.callback_is_token_in_blocklist = callback

    def set_token_blocklist(self, callback: Callable[..., Any]) -> None:
        """Register ``callback(token) -> bool`` (sync or async); True means revoked."""
        self.set_callback_token_blocklist(callback)

    @property
    def is_model_callback_set(self) -> bool:
        return self.callback_get_model_instance is not None

    @property
    def is_token_callback_set(self) -> bool:
        return self.callback_is_token_in_blocklist is not None

    async def is_token_in_blocklist(self, token: str | None, **kwargs: Any) -> bool:
        """Whether the blocklist callback reports the raw ``token`` as revoked."""
        if token is None or self.callback_is_token_in_blocklist is None:
            return False
        return bool(await call(self.callback_is_token_in_blocklist, token, **kwargs))

    async def _get_current_subject(self, uid: str, **kwargs: Any) -> T | None:
        if self.callback_get_model_instance is None:
            raise AttributeError(
                "No subject getter set: call auth.set_subject_getter(fn) to use CURRENT_SUBJECT"
            )
        result: T | None = await call(self.callback_get_model_instance, uid, **kwargs)
        return result

    async def get_current_subject(self, request: Request) -> T | None:
        """The subject returned by the subject getter for the request's access token."""
        self.ensure_request_exception_handlers(request)
        payload = await self._auth_required(request)
        subject = await self._get_current_subject(payload.sub)
        if subject is None:
            # As Flask-JWT-Extended's user lookup error: the token is fine, its user is gone.
            raise UnknownSubjectError("Unknown subject", login_type=self.login_type)
        return subject

    # Errors ----------------------------------------------------------------

    def _error_message(self, exc: AuthXException) -> str:
        message = getattr(self, f"MSG_{type(exc).__name__}", None)
        if message is None and type(exc) is JWTDecodeError:
            message = self.MSG_JWTDecodeError
        return str(message) if message is not None else exc.message

    def _exception_handler(self) -> Callable[..., Any]:
        return make_handler(lambda: self._config, self._error_message)

    def handle_errors(self, app: FastAPI) -> None:
        """Answer AuthX errors: JSON with a status on HTTP, a deliberate rejection on WebSocket."""
        handler = self._exception_handler()
        for exc_class in _HANDLED:
            app.add_exception_handler(exc_class, handler)

    def ensure_request_exception_handlers(self, connection: HTTPConnection) -> None:
        """Install the handlers for this app when ``handle_errors`` was not called."""
        handlers = connection.scope.get("starlette.exception_handlers")
        if not handlers:
            return
        exception_handlers = handlers[0]
        if AuthXException not in exception_handlers:
            # Subclass handlers the app registered still win: Starlette walks the MRO.
            exception_handlers[AuthXException] = self._exception_handler()


#: Every AuthX error class, registered by ``handle_errors`` (subclasses listed so that
#: a user handler for a parent class does not shadow ours by accident).
_HANDLED: tuple[type[AuthXException], ...] = tuple(
    cls
    for cls in (getattr(exceptions, name) for name in exceptions.__all__)
    if isinstance(cls, type) and issubclass(cls, AuthXException)
)
