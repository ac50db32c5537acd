"""Finding the token of a WebSocket handshake, in ``JWT_WS_TOKEN_LOCATION`` order.

Transports: ``query`` (``?token=``), ``headers`` (``Authorization: Bearer``),
``subprotocol`` (``Sec-WebSocket-Protocol: authx.bearer.<token>``), ``cookies``
(the access cookie, with an Origin allow-list), ``ticket`` (``?ticket=``, a
one-time ticket from the store) and ``message`` (accept, then a first message
``{"type": "authx.auth", "token": ...}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import cast

from starlette.websockets import WebSocket

from authx._locations import check_size, query_value, token_from_header
from authx._starlette import transport
from authx.config import AuthXConfig
from authx.exceptions import (
    AuthMessageTimeoutError,
    MissingTokenError,
    OriginNotAllowedError,
)
from authx.schema import RequestToken, TokenLocation
from authx.websocket._protocol import auth_token

__all__ = [
    "SUBPROTOCOL_PREFIX",
    "Handshake",
    "check_origin",
    "handshake_state",
    "safe_subprotocol",
    "ws_request_token",
]

SUBPROTOCOL_PREFIX = "authx.bearer."
#: Scope key holding the :class:`Handshake` state when AuthX accepted the socket itself.
_HANDSHAKE = "authx.handshake"


class Handshake(enum.Enum):
    """What AuthX did to a socket before the endpoint could (first-message transport)."""

    #: Accepted to read the authentication message; the endpoint's accept() is a no-op.
    ACCEPTED_BY_AUTHX = "accepted"
    #: Accepted, then the client left before authenticating: nothing more to send.
    CLIENT_LEFT = "client-left"


def handshake_state(websocket: WebSocket) -> Handshake | None:
    """What AuthX did to ``websocket`` itself, or None when it left the handshake alone."""
    state = websocket.scope.get(_HANDSHAKE)
    return state if isinstance(state, Handshake) else None


Finder = Callable[[WebSocket, AuthXConfig], str | None]


def _from_query(websocket: WebSocket, config: AuthXConfig) -> str | None:
    return query_value(websocket, config.JWT_QUERY_STRING_NAME)


def _from_headers(websocket: WebSocket, config: AuthXConfig) -> str | None:
    return token_from_header(websocket, config)


def _from_subprotocol(websocket: WebSocket, config: AuthXConfig) -> str | None:
    offered: list[str] = list(websocket.scope.get("subprotocols") or [])
    for value in offered:
        if value.startswith(SUBPROTOCOL_PREFIX):
            # Hide the token from the app, so it cannot be echoed back by mistake.
            websocket.scope["subprotocols"] = [
                v for v in offered if not v.startswith(SUBPROTOCOL_PREFIX)
            ]
            return value[len(SUBPROTOCOL_PREFIX) :]
    return None


def _from_cookies(websocket: WebSocket, config: AuthXConfig) -> str | None:
    return websocket.cookies.get(config.JWT_ACCESS_COOKIE_NAME) or None


def _from_ticket(websocket: WebSocket, config: AuthXConfig) -> str | None:
    return query_value(websocket, config.JWT_WS_TICKET_QUERY_NAME)


FINDERS: dict[str, tuple[Finder, str]] = {
    "query": (_from_query, "query parameter '{c.JWT_QUERY_STRING_NAME}'"),
    "headers": (_from_headers, "'{c.JWT_HEADER_NAME}' header"),
    "subprotocol": (_from_subprotocol, f"'{SUBPROTOCOL_PREFIX}' subprotocol"),
    "cookies": (_from_cookies, "cookie '{c.JWT_ACCESS_COOKIE_NAME}'"),
    "ticket": (_from_ticket, "ticket parameter '{c.JWT_WS_TICKET_QUERY_NAME}'"),
}


def check_origin(websocket: WebSocket, allowed: Sequence[str]) -> None:
    """Refuse a handshake whose ``Origin`` is not in ``allowed`` (or is missing)."""
    origin = websocket.headers.get("origin")
    if origin is None or origin not in allowed:
        raise OriginNotAllowedError("Origin not allowed")


def safe_subprotocol(websocket: WebSocket, chosen: str | None = None) -> str | None:
    """The subprotocol to accept with: never a token-carrying one.

    When the app chose none, the first application protocol the client offered
    is selected (browsers fail a handshake that offered protocols and got none).
    """
    if chosen is not None and not chosen.startswith(SUBPROTOCOL_PREFIX):
        return chosen
    for offered in websocket.scope.get("subprotocols") or []:
        if not offered.startswith(SUBPROTOCOL_PREFIX):
            return str(offered)
    return None


async def ws_request_token(
    websocket: WebSocket,
    config: AuthXConfig,
    hold: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
    first_message: bool = True,
) -> RequestToken:
    """The first token found in the handshake; MissingTokenError names every place tried.

    ``hold`` counts the socket while it waits for a first-message token (it may
    refuse it: too many held open). Without ``first_message`` (no socket to read
    from) the ``message`` transport is passed over.
    """
    tried: list[str] = []
    for place in config.JWT_WS_TOKEN_LOCATION:
        if place == "message":
            if not first_message:
                continue
            with hold():
                return await _from_first_message(websocket, config)
        finder, description = FINDERS[place]
        found = finder(websocket, config)
        if found is not None:
            check_size(found, config)
            if place == "cookies":
                check_origin(websocket, config.JWT_WS_ALLOWED_ORIGINS)
            return RequestToken.found(found, cast(TokenLocation, place))
        tried.append(description.format(c=config))
    raise MissingTokenError(f"Missing token in WebSocket {' or '.join(tried) or 'handshake'}")


async def _from_first_message(websocket: WebSocket, config: AuthXConfig) -> RequestToken:
    """Accept, then wait ``JWT_WS_AUTH_MESSAGE_TIMEOUT`` for the authentication message.

    The socket is accepted at the ASGI level only; the endpoint's own
    ``accept()`` later becomes a no-op (see ``WebSocketSession``).
    """
    receive, send = transport(websocket)
    message = await receive()
    if message["type"] != "websocket.connect":
        raise MissingTokenError("Connection closed before authenticating")
    await send({"type": "websocket.accept", "subprotocol": safe_subprotocol(websocket)})
    websocket.scope[_HANDSHAKE] = Handshake.ACCEPTED_BY_AUTHX
    try:
        message = await asyncio.wait_for(receive(), config.JWT_WS_AUTH_MESSAGE_TIMEOUT)
    except TimeoutError:
        raise AuthMessageTimeoutError("No authentication message in time") from None
    if message["type"] != "websocket.receive":
        websocket.scope[_HANDSHAKE] = Handshake.CLIENT_LEFT
        raise MissingTokenError("Connection closed before authenticating")
    token = auth_token(message.get("text"), config.JWT_WS_MESSAGE_PREFIX, config.JWT_MAX_TOKEN_SIZE)
    if token is None:
        raise MissingTokenError("The first message must be the authentication message")
    check_size(token, config)
    return RequestToken.found(token, "message")
