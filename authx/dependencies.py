"""AuthXDependency: the per-request bundle returned by ``auth.DEPENDENCY``."""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from fastapi import Request, Response

from authx._delegate import delegate
from authx._issue import Issuer

__all__ = ["AuthXDependency"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class _Auth(Protocol[T_co]):
    """What a request bundle uses of :class:`~authx.AuthX` besides token creation
    (forwarded by name below): cookies and the current subject."""

    def set_access_cookies(
        self, token: str, response: Response, max_age: int | None = ...
    ) -> None: ...

    def set_refresh_cookies(
        self, token: str, response: Response, max_age: int | None = ...
    ) -> None: ...

    def unset_access_cookies(self, response: Response) -> None: ...

    def unset_refresh_cookies(self, response: Response) -> None: ...

    def unset_cookies(self, response: Response) -> None: ...

    async def get_current_subject(self, request: Request) -> T_co: ...


class AuthXDependency(Generic[T]):
    """Token and cookie helpers bound to one request and the route's response."""

    def __init__(self, _from: _Auth[T], request: Request, response: Response) -> None:
        self._auth = _from
        self._request = request
        self._response = response

    @property
    def request(self) -> Request:
        return self._request

    @property
    def response(self) -> Response:
        return self._response

    # Forwarded to AuthX, with the signatures of the methods they call.
    create_access_token = delegate("_auth", Issuer.create_access_token)
    create_refresh_token = delegate("_auth", Issuer.create_refresh_token)
    create_token_pair = delegate("_auth", Issuer.create_token_pair)

    def set_access_cookies(
        self, token: str, response: Response | None = None, max_age: int | None = None
    ) -> None:
        self._auth.set_access_cookies(token, response or self._response, max_age)

    def set_refresh_cookies(
        self, token: str, response: Response | None = None, max_age: int | None = None
    ) -> None:
        self._auth.set_refresh_cookies(token, response or self._response, max_age)

    def unset_access_cookies(self, response: Response | None = None) -> None:
        self._auth.unset_access_cookies(response or self._response)

    def unset_refresh_cookies(self, response: Response | None = None) -> None:
        self._auth.unset_refresh_cookies(response or self._response)

    def unset_cookies(self, response: Response | None = None) -> None:
        self._auth.unset_cookies(response or self._response)

    async def get_current_subject(self) -> T:
        return await self._auth.get_current_subject(self._request)
