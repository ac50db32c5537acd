"""Implicit refresh of cookie sessions: after a route answered, a valid access cookie
close to its expiry is replaced by a new one, so a browser session stays alive
without a refresh route.

``app.middleware("http")(auth.implicit_refresh_middleware)`` installs it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from starlette.middleware.base import RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response

from authx._cookies import Cookies
from authx._http import HTTPAuth
from authx._issue import Issuer
from authx.config import AuthXConfig
from authx.exceptions import AuthXException
from authx.schema import TokenPayload

__all__ = ["ImplicitRefresh", "refresh_applies"]

logger = logging.getLogger("authx")


def refresh_applies(config: AuthXConfig, path: str, method: str) -> bool:
    """Whether the ``JWT_IMPLICIT_REFRESH_*`` lists allow a refresh for ``method path``.

    An excluded path never refreshes; an included path always does (whatever the
    method lists say); then an excluded method never does, and a non-empty
    ``METHOD_INCLUDE`` limits refreshes to its methods.
    """
    if path in config.JWT_IMPLICIT_REFRESH_ROUTE_EXCLUDE:
        return False
    if path in config.JWT_IMPLICIT_REFRESH_ROUTE_INCLUDE:
        return True
    method = method.upper()
    if method in config.JWT_IMPLICIT_REFRESH_METHOD_EXCLUDE:
        return False
    included = config.JWT_IMPLICIT_REFRESH_METHOD_INCLUDE
    return not included or method in included


class ImplicitRefresh:
    """Replaces a request's access cookie when it expires within ``JWT_IMPLICIT_REFRESH_DELTATIME``.

    The cookie is checked as a route's ``access_token_required`` checks it
    (signature, claims, type, CSRF on unsafe methods, blocklist and store), after
    the route ran, so a route that revoked the token or set its own cookies wins.
    """

    def __init__(
        self,
        config: Callable[[], AuthXConfig],
        http: HTTPAuth,
        issuer: Issuer,
        cookies: Cookies,
    ) -> None:
        self._config = config
        self._http = http
        self._issuer = issuer
        self._cookies = cookies

    async def middleware(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        """An HTTP middleware: ``app.middleware("http")(auth.implicit_refresh_middleware)``."""
        response = await call_next(request)
        try:
            await self.refresh(request, response)
        except AuthXException:
            pass  # no token, or not a good one: the route's own dependency decided already
        except Exception as exc:  # noqa: BLE001 - the route answered: never turn that into a 500
            # The type only: a message or traceback could quote the token.
            logger.warning("implicit refresh failed (%s); response unchanged", type(exc).__name__)
        return response

    async def refresh(self, request: Request, response: Response) -> bool:
        """Set a new access cookie on ``response`` if the request's is due; True if it did."""
        config = self._config()
        if not config.has_location("cookies"):
            return False
        if not refresh_applies(config, request.url.path, request.method):
            return False
        if self._sets_access_cookie(response, config):
            return False  # a login or logout route set or deleted it: leave it alone
        _, payload = await self._http.authenticate(request, "access", locations=["cookies"])
        if not self._due(payload, config) or not self._own(payload, config):
            return False
        # The same subject, audience, scopes and claims; never fresh (no password was typed).
        token = self._issuer.create_access_token(
            payload.sub,
            fresh=False,
            data=payload.extra_dict,
            audience=payload.aud,
            scopes=payload.scopes,
        )
        self._cookies.set("access", token, response, None)
        return True

    @staticmethod
    def _due(payload: TokenPayload, config: AuthXConfig) -> bool:
        expires_at = payload.expires_at
        if expires_at is None:
            return False  # a token that never expires needs no refresh
        remaining = expires_at - time.time()
        return remaining < config.JWT_IMPLICIT_REFRESH_DELTATIME.total_seconds()

    @staticmethod
    def _own(payload: TokenPayload, config: AuthXConfig) -> bool:
        # An identity provider's token is the provider's to renew: re-issuing it as
        # ours would outlive the provider's own expiry and revocation.
        return not config.has_provider or payload.iss == config.JWT_ENCODE_ISSUER

    @staticmethod
    def _sets_access_cookie(response: Response, config: AuthXConfig) -> bool:
        prefix = f"{config.JWT_ACCESS_COOKIE_NAME}=".encode("latin-1")
        return any(
            name == b"set-cookie" and value.startswith(prefix)
            for name, value in response.raw_headers
        )
