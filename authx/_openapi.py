"""OpenAPI security schemes for AuthX dependencies (they document, never reject)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import Security
from fastapi.security import APIKeyCookie, APIKeyHeader, APIKeyQuery, HTTPBearer
from fastapi.security.base import SecurityBase

from authx.config import AuthXConfig

__all__ = ["with_security_schemes"]


def security_schemes(
    config: AuthXConfig, kind: str, locations: Sequence[str] | None
) -> list[SecurityBase]:
    """The schemes for the configured locations, ordered header, cookie, query."""
    places = set(config.JWT_TOKEN_LOCATION if locations is None else locations)
    schemes: list[SecurityBase] = []
    if "headers" in places:
        if (
            config.JWT_HEADER_NAME.lower() == "authorization"
            and config.JWT_HEADER_TYPE.lower() == "bearer"
        ):
            schemes.append(
                HTTPBearer(scheme_name="AuthXBearer", bearerFormat="JWT", auto_error=False)
            )
        else:
            schemes.append(
                APIKeyHeader(
                    name=config.JWT_HEADER_NAME, scheme_name="AuthXHeader", auto_error=False
                )
            )
    if "cookies" in places:
        if kind == "refresh":
            schemes.append(
                APIKeyCookie(
                    name=config.JWT_REFRESH_COOKIE_NAME,
                    scheme_name="AuthXRefreshCookie",
                    auto_error=False,
                )
            )
        else:
            schemes.append(
                APIKeyCookie(
                    name=config.JWT_ACCESS_COOKIE_NAME,
                    scheme_name="AuthXAccessCookie",
                    auto_error=False,
                )
            )
    if "query" in places:
        schemes.append(
            APIKeyQuery(
                name=config.JWT_QUERY_STRING_NAME, scheme_name="AuthXQuery", auto_error=False
            )
        )
    return schemes


def with_security_schemes(
    dependency: Callable[..., Any], schemes: Sequence[SecurityBase]
) -> Callable[..., Any]:
    """Give ``dependency`` one keyword-only parameter per scheme so FastAPI lists them.

    ``dependency`` must accept ``**_schemes``; the values are ignored.
    """
    signature = inspect.signature(dependency)
    params = [p for p in signature.parameters.values() if p.kind != p.VAR_KEYWORD]
    for index, scheme in enumerate(schemes):
        params.append(
            inspect.Parameter(
                f"_authx_scheme_{index}",
                inspect.Parameter.KEYWORD_ONLY,
                default=Security(scheme),  # type: ignore[arg-type]
                annotation=Any,
            )
        )
    dependency.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    return dependency
