"""The HTTP front end: finding a request's token, verifying it, and the FastAPI
dependencies built on that (``token_required``, ``scopes_required``, ...)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeAlias, cast

from starlette.requests import HTTPConnection, Request

from authx import _locations
from authx._callbacks import Callbacks
from authx._openapi import security_schemes, with_security_schemes
from authx._verify import Verifier
from authx.config import AuthXConfig
from authx.exceptions import MissingTokenError, UnknownSubjectError
from authx.schema import RequestToken, TokenPayload

__all__ = ["HTTPAuth", "PayloadDependency"]

#: What ``token_required`` and ``scopes_required`` return: FastAPI calls it with the
#: request (and the security schemes it declares) and gets the verified payload.
PayloadDependency: TypeAlias = Callable[..., Awaitable[TokenPayload]]


class HTTPAuth:
    """Authenticates HTTP requests with one AuthX's configuration and verifier."""

    def __init__(
        self,
        config: Callable[[], AuthXConfig],
        verifier: Verifier,
        callbacks: Callbacks,
        install_handlers: Callable[[HTTPConnection], None],
    ) -> None:
        self._config = config
        self._verifier = verifier
        self._callbacks = callbacks
        self._install_handlers = install_handlers

    async def find(
        self,
        request: Request,
        locations: Sequence[str] | None = None,
        refresh: bool = False,
        optional: bool = False,
    ) -> RequestToken | None:
        """The request's token (not verified); None only when ``optional``."""
        try:
            return await _locations.get_token_from_request(
                request, self._config(), refresh=refresh, locations=locations
            )
        except MissingTokenError as exc:
            if optional:
                return None
            raise self._verifier.stamp(exc) from None

    async def get_token_from_request(
        self,
        request: Request,
        type: str = "access",
        optional: bool = True,
        locations: Sequence[str] | None = None,
    ) -> RequestToken | None:
        """The request's token, not verified (None when ``optional`` and there is none)."""
        return await self.find(request, locations, type == "refresh", optional)

    async def get_access_token_from_request(
        self, request: Request, locations: Sequence[str] | None = None
    ) -> RequestToken:
        """The request's access token, not verified; MissingTokenError when there is none."""
        token = await self.find(request, locations)
        assert token is not None  # noqa: S101 - not optional: find raised instead
        return token

    async def get_refresh_token_from_request(
        self, request: Request, locations: Sequence[str] | None = None
    ) -> RequestToken:
        """The request's refresh token, not verified; MissingTokenError when there is none."""
        token = await self.find(request, locations, refresh=True)
        assert token is not None  # noqa: S101 - not optional: find raised instead
        return token

    async def authenticate(
        self,
        request: Request,
        type: str = "access",
        verify_type: bool = True,
        verify_fresh: bool = False,
        verify_csrf: bool | None = None,
        locations: Sequence[str] | None = None,
    ) -> tuple[RequestToken, TokenPayload]:
        """The token found in ``request`` and its payload, after every check passed."""
        config = self._config()
        if verify_csrf is None:
            verify_csrf = (
                config.JWT_COOKIE_CSRF_PROTECT and request.method.upper() in config.JWT_CSRF_METHODS
            )
        found = await self.find(request, locations, refresh=type != "access")
        assert found is not None  # noqa: S101 - not optional, so find() raised instead
        payload = await self._verifier.verify_async(found, verify_type, verify_fresh, verify_csrf)
        await self._verifier.check_revoked(found.token, payload)
        return found, payload

    def _documented(self, dependency: Callable[..., Any], kind: str, locations: Any) -> Any:
        # The OpenAPI schemes are read from the configuration when the dependency is made.
        return with_security_schemes(dependency, security_schemes(self._config(), kind, locations))

    def token_dependency(
        self,
        type: str = "access",
        verify_type: bool = True,
        verify_fresh: bool = False,
        verify_csrf: bool | None = None,
        locations: Sequence[str] | None = None,
    ) -> PayloadDependency:
        """A dependency returning the verified :class:`TokenPayload` of the request."""
        _locations.check_locations(locations)

        async def _token_required(request: Request, **_schemes: Any) -> TokenPayload:
            self._install_handlers(request)
            _, payload = await self.authenticate(
                request, type, verify_type, verify_fresh, verify_csrf, locations
            )
            return payload

        return cast(PayloadDependency, self._documented(_token_required, type, locations))

    def scopes_dependency(
        self,
        scopes: Sequence[str],
        all_required: bool = True,
        verify_type: bool = True,
        verify_fresh: bool = False,
        verify_csrf: bool | None = None,
        locations: Sequence[str] | None = None,
    ) -> PayloadDependency:
        """A dependency requiring an access token that grants ``scopes`` (else 403)."""
        _locations.check_locations(locations)

        async def _scopes_required(request: Request, **_schemes: Any) -> TokenPayload:
            self._install_handlers(request)
            _, payload = await self.authenticate(
                request, "access", verify_type, verify_fresh, verify_csrf, locations
            )
            self._verifier.check_scopes(payload, scopes, all_required)
            return payload

        return cast(PayloadDependency, self._documented(_scopes_required, "access", locations))

    async def current_subject(self, request: Request) -> Any:
        """The subject the subject getter returns for the request's access token."""
        self._install_handlers(request)
        _, payload = await self.authenticate(request)
        subject = await self._callbacks.subject(payload.sub)
        if subject is None:
            # As Flask-JWT-Extended's user lookup error: the token is fine, its user is gone.
            raise self._verifier.stamp(UnknownSubjectError("Unknown subject"))
        return subject

    def current_subject_dependency(self) -> Callable[..., Any]:
        async def _current_subject(request: Request, **_schemes: Any) -> Any:
            return await self.current_subject(request)

        # Wrapped so that the route lists the security schemes, as the other dependencies do.
        return self._documented(_current_subject, "access", None)  # type: ignore[no-any-return]

    def optional_token_dependency(
        self, type: str
    ) -> Callable[[Request], Awaitable[RequestToken | None]]:
        """A dependency returning the request's token of ``type``, unverified, or None."""

        async def _optional(request: Request) -> RequestToken | None:
            return await self.find(request, refresh=type == "refresh", optional=True)

        return _optional

    def ticket_dependency(
        self, issue: Callable[[TokenPayload, str | None, str], Any]
    ) -> Callable[..., Any]:
        """A dependency exchanging the request's access token for ``issue(...)``'s result."""

        async def _ws_ticket(request: Request, **_schemes: Any) -> Any:
            self._install_handlers(request)
            found, payload = await self.authenticate(request)
            return await issue(payload, request.headers.get("origin"), found.token)

        return self._documented(_ws_ticket, "access", None)  # type: ignore[no-any-return]
