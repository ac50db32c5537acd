"""Setting and deleting the token cookies and their CSRF companions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from starlette.responses import Response

from authx.config import AuthXConfig

__all__ = ["Cookies", "set_token_cookies", "unset_token_cookies"]

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


class Cookies:
    """Sets and deletes one AuthX's token cookies with their CSRF cookies."""

    def __init__(
        self, config: Callable[[], AuthXConfig], csrf_of: Callable[[str], str | None]
    ) -> None:
        self._config = config
        self._csrf_of = csrf_of

    def set(self, kind: str, token: str, response: Response, max_age: int | None) -> None:
        """Set the ``kind`` cookie to ``token`` (verified first) and its CSRF cookie."""
        csrf = self._csrf_of(token) or None
        set_token_cookies(response, self._config(), kind, token, csrf, max_age)

    def unset(self, kind: str, response: Response) -> None:
        unset_token_cookies(response, self._config(), kind)

    def set_access_cookies(
        self, token: str, response: Response, max_age: int | None = None
    ) -> None:
        """Set the access-token cookie (and its CSRF cookie) on ``response``."""
        self.set("access", token, response, max_age)

    def set_refresh_cookies(
        self, token: str, response: Response, max_age: int | None = None
    ) -> None:
        """Set the refresh-token cookie (and its CSRF cookie) on ``response``."""
        self.set("refresh", token, response, max_age)

    def unset_access_cookies(self, response: Response) -> None:
        """Delete the access-token cookie and its CSRF cookie."""
        self.unset("access", response)

    def unset_refresh_cookies(self, response: Response) -> None:
        """Delete the refresh-token cookie and its CSRF cookie."""
        self.unset("refresh", response)

    def unset_cookies(self, response: Response) -> None:
        """Delete every token cookie and CSRF cookie."""
        self.unset("access", response)
        self.unset("refresh", response)
