"""Finding the token of a WebSocket handshake, in ``JWT_WS_TOKEN_LOCATION`` order."""

from __future__ import annotations

from collections.abc import Callable

from starlette.websockets import WebSocket

from authx._locations import check_size, token_from_header
from authx.config import AuthXConfig
from authx.exceptions import MissingTokenError
from authx.schema import RequestToken

__all__ = ["ws_request_token"]

Finder = Callable[[WebSocket, AuthXConfig], str | None]


def _from_query(websocket: WebSocket, config: AuthXConfig) -> str | None:
    return websocket.query_params.get(config.JWT_QUERY_STRING_NAME)


def _from_headers(websocket: WebSocket, config: AuthXConfig) -> str | None:
    return token_from_header(websocket, config)


FINDERS: dict[str, tuple[Finder, str]] = {
    "query": (_from_query, "query parameter '{c.JWT_QUERY_STRING_NAME}'"),
    "headers": (_from_headers, "'{c.JWT_HEADER_NAME}' header"),
}


def ws_request_token(websocket: WebSocket, config: AuthXConfig) -> RequestToken:
    """The first token found in the handshake; MissingTokenError names every place tried."""
    tried: list[str] = []
    for place in config.JWT_WS_TOKEN_LOCATION:
        entry = FINDERS.get(place)
        if entry is None:
            continue
        finder, description = entry
        found = finder(websocket, config)
        if found is not None:
            check_size(found, config)
            return RequestToken(token=found, type="access", location=place)
        tried.append(description.format(c=config))
    raise MissingTokenError(f"Missing token in WebSocket {' or '.join(tried) or 'handshake'}")
