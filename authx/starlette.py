"""Plain Starlette: AuthX behind Starlette's ``AuthenticationMiddleware``, and one
middleware that authenticates every WebSocket of an app or a mount.

>>> from starlette.middleware import Middleware
>>> from starlette.middleware.authentication import AuthenticationMiddleware
>>> from authx.starlette import AuthXBackend, WebSocketAuthMiddleware
>>> app = Starlette(routes=routes, middleware=[
...     Middleware(AuthenticationMiddleware, backend=AuthXBackend(auth),
...                on_error=AuthXBackend.on_error),
...     Middleware(WebSocketAuthMiddleware, auth=auth),
... ])

See ``docs/starlette.md``.
"""

from authx._starlette_backend import (
    AuthXAuthenticationError,
    AuthXBackend,
    AuthXCredentials,
    AuthXUser,
    GrantedScopes,
)
from authx._starlette_middleware import WebSocketAuthMiddleware

__all__ = [
    "AuthXAuthenticationError",
    "AuthXBackend",
    "AuthXCredentials",
    "AuthXUser",
    "GrantedScopes",
    "WebSocketAuthMiddleware",
]
