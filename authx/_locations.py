"""Finding a token in an HTTP request: one function per place, one that walks them."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import unquote_plus

from starlette.requests import HTTPConnection, Request

from authx.config import AuthXConfig
from authx.exceptions import BadConfigurationError, MissingTokenError, TokenTooLargeError
from authx.schema import RequestToken

__all__ = ["check_locations", "get_token_from_request", "query_value", "token_from_header"]

Getter = Callable[[Request, AuthXConfig, bool], Awaitable[RequestToken]]


def _kind(refresh: bool) -> Any:
    return "refresh" if refresh else "access"


def query_value(connection: HTTPConnection, name: str) -> str | None:
    """The last value of query parameter ``name``, as ``query_params.get`` gives it.

    Read straight from the raw query string: building Starlette's ``QueryParams``
    costs more than the rest of a handshake's token lookup.
    """
    raw: bytes = connection.scope.get("query_string", b"")
    key = name.encode()
    found: bytes | None = None
    for part in raw.split(b"&"):
        if part.startswith(key):
            rest = part[len(key) :]
            if not rest:
                found = b""
            elif rest[:1] == b"=":
                found = rest[1:]
    if found is None:
        return None
    text = found.decode("latin-1")
    if b"%" in found or b"+" in found:
        return unquote_plus(text, errors="replace")
    return text


def token_from_header(connection: HTTPConnection, config: AuthXConfig) -> str | None:
    """The token in ``JWT_HEADER_NAME``, its ``JWT_HEADER_TYPE`` prefix (any case) removed."""
    value = connection.headers.get(config.JWT_HEADER_NAME)
    if value is None:
        return None
    value = value.strip()
    header_type = config.JWT_HEADER_TYPE
    if header_type:
        prefix, _, rest = value.partition(" ")
        if prefix.lower() == header_type.lower():
            # "Bearer" with nothing after it carries no token.
            return rest.strip() or None
        # A raw token without the prefix is accepted, as AuthX does.
        return value if " " not in value else None
    return value


async def _from_headers(request: Request, config: AuthXConfig, refresh: bool) -> RequestToken:
    token = token_from_header(request, config)
    if not token:
        kind = config.JWT_HEADER_TYPE or "raw token"
        raise MissingTokenError(f"Missing '{kind}' in '{config.JWT_HEADER_NAME}' header.")
    return RequestToken.found(token, "headers", _kind(refresh))


async def _csrf_value(request: Request, config: AuthXConfig, refresh: bool) -> str | None:
    header = config.JWT_REFRESH_CSRF_HEADER_NAME if refresh else config.JWT_ACCESS_CSRF_HEADER_NAME
    value = request.headers.get(header)
    if value or not config.JWT_CSRF_CHECK_FORM or request.method.upper() in {"GET", "HEAD"}:
        return value
    field = config.JWT_REFRESH_CSRF_FIELD_NAME if refresh else config.JWT_ACCESS_CSRF_FIELD_NAME
    try:
        form = await request.form()
    except Exception:  # noqa: BLE001 - an unreadable form simply has no CSRF field
        return None
    candidate = form.get(field)
    return candidate if isinstance(candidate, str) and candidate else None


async def _from_cookies(request: Request, config: AuthXConfig, refresh: bool) -> RequestToken:
    name = config.JWT_REFRESH_COOKIE_NAME if refresh else config.JWT_ACCESS_COOKIE_NAME
    token = request.cookies.get(name)
    if not token:
        raise MissingTokenError(f"Missing cookie '{name}'.")
    csrf = await _csrf_value(request, config, refresh) if config.JWT_COOKIE_CSRF_PROTECT else None
    return RequestToken.found(token, "cookies", _kind(refresh), csrf)


async def _from_query(request: Request, config: AuthXConfig, refresh: bool) -> RequestToken:
    name = config.JWT_QUERY_STRING_NAME
    token = query_value(request, name)
    if token is None:
        raise MissingTokenError(f"Missing '{name}' in query parameters")
    return RequestToken.found(token, "query", _kind(refresh))


async def _from_json(request: Request, config: AuthXConfig, refresh: bool) -> RequestToken:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise MissingTokenError("Invalid content-type. Must be application/json")
    key = config.JWT_REFRESH_JSON_KEY if refresh else config.JWT_JSON_KEY
    try:
        body = json.loads(await request.body())
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        raise MissingTokenError("Token is not parsable") from None
    token = body.get(key) if isinstance(body, dict) else None
    if token is None:
        raise MissingTokenError("Missing token in json data")
    if not isinstance(token, str):
        raise MissingTokenError("Token is not parsable")
    return RequestToken.found(token, "json", _kind(refresh))


GETTERS: dict[str, Getter] = {
    "headers": _from_headers,
    "cookies": _from_cookies,
    "query": _from_query,
    "json": _from_json,
}


def check_size(token: str, config: AuthXConfig) -> None:
    """Refuse a token larger than ``JWT_MAX_TOKEN_SIZE`` before any decoding."""
    if len(token) > config.JWT_MAX_TOKEN_SIZE:
        raise TokenTooLargeError(
            f"Token is larger than JWT_MAX_TOKEN_SIZE ({config.JWT_MAX_TOKEN_SIZE} bytes)"
        )


def _unknown_locations(unknown: list[str]) -> BadConfigurationError:
    return BadConfigurationError(
        f"locations has unknown value(s) {unknown}; allowed: {', '.join(GETTERS)}"
    )


def check_locations(locations: Sequence[str] | None) -> None:
    """Refuse unknown places to look (a route's ``locations=``): a setup mistake, not a 401."""
    unknown = [place for place in locations or () if place not in GETTERS]
    if unknown:
        raise _unknown_locations(unknown)


async def get_token_from_request(
    request: Request,
    config: AuthXConfig,
    refresh: bool = False,
    locations: Sequence[str] | None = None,
) -> RequestToken:
    """The first token found in ``locations`` (default ``JWT_TOKEN_LOCATION``), in order.

    When none has a token, the :class:`MissingTokenError` lists every place tried.
    """
    places = list(config.JWT_TOKEN_LOCATION if locations is None else locations)
    if not places:
        raise MissingTokenError("No token found in request from '[]'")
    misses: list[str] = []
    for place in places:
        try:
            getter = GETTERS[place]
        except KeyError:
            raise _unknown_locations([place]) from None
        try:
            found = await getter(request, config, refresh)
        except MissingTokenError as exc:
            misses.append(exc.message)
            continue
        check_size(found.token, config)
        return found
    raise MissingTokenError(" ".join(misses))
