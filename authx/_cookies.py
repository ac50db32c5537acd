"""Setting and deleting the token cookies and their CSRF companions."""

from __future__ import annotations

from typing import Literal

from starlette.responses import Response

from authx.config import AuthXConfig

__all__ = ["set_token_cookies", "unset_token_cookies"]

Kind = Literal["access", "refresh"]


def _names(config: AuthXConfig, kind: str) -> tuple[str, str, str, str]:
    if kind == "access":
        return (
            config.JWT_ACCESS_COOKIE_NAME,
            config.JWT_ACCESS_COOKIE_PATH,
            config.JWT_ACCESS_CSRF_COOKIE_NAME,
            config.JWT_ACCESS_CSRF_COOKIE_PATH,
        )
    if kind == "refresh":
        return (
            config.JWT_REFRESH_COOKIE_NAME,
            config.JWT_REFRESH_COOKIE_PATH,
            config.JWT_REFRESH_CSRF_COOKIE_NAME,
            config.JWT_REFRESH_CSRF_COOKIE_PATH,
        )
    raise ValueError("Token type must be 'access' | 'refresh'")


def _csrf_cookies_on(config: AuthXConfig) -> bool:
    return config.JWT_COOKIE_CSRF_PROTECT and config.JWT_CSRF_IN_COOKIES


def set_token_cookies(
    response: Response,
    config: AuthXConfig,
    kind: str,
    token: str,
    csrf: str | None,
    max_age: int | None = None,
) -> None:
    """Set the token cookie, and its readable CSRF cookie when double submit is on."""
    name, path, csrf_name, csrf_path = _names(config, kind)
    age = max_age or config.JWT_COOKIE_MAX_AGE
    response.set_cookie(
        key=name,
        value=token,
        path=path,
        domain=config.JWT_COOKIE_DOMAIN,
        secure=config.JWT_COOKIE_SECURE,
        httponly=config.JWT_COOKIE_HTTP_ONLY,
        samesite=config.JWT_COOKIE_SAMESITE,
        max_age=age,
    )
    if _csrf_cookies_on(config) and csrf:
        response.set_cookie(
            key=csrf_name,
            value=csrf,
            path=csrf_path,
            domain=config.JWT_COOKIE_DOMAIN,
            secure=config.JWT_COOKIE_SECURE,
            httponly=False,
            samesite=config.JWT_COOKIE_SAMESITE,
            max_age=age,
        )


def unset_token_cookies(response: Response, config: AuthXConfig, kind: str) -> None:
    """Delete the token cookie and its CSRF cookie."""
    name, path, csrf_name, csrf_path = _names(config, kind)
    response.delete_cookie(
        key=name,
        path=path,
        domain=config.JWT_COOKIE_DOMAIN,
        secure=config.JWT_COOKIE_SECURE,
        httponly=config.JWT_COOKIE_HTTP_ONLY,
        samesite=config.JWT_COOKIE_SAMESITE,
    )
    if _csrf_cookies_on(config):
        response.delete_cookie(
            key=csrf_name,
            path=csrf_path,
            domain=config.JWT_COOKIE_DOMAIN,
            secure=config.JWT_COOKIE_SECURE,
            httponly=False,
            samesite=config.JWT_COOKIE_SAMESITE,
        )
