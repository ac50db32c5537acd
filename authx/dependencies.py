"""AuthXDependency: the per-request bundle returned by ``auth.DEPENDENCY``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from fastapi import Request, Response

from authx.schema import TokenResponse

__all__ = ["AuthXDependency"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class _Issuer(Protocol[T_co]):
    """What a request bundle uses of :class:`~authx.AuthX` (its public methods)."""

    def create_access_token(
        self,
        uid: str,
        fresh: bool = ...,
        headers: dict[str, Any] | None = ...,
        expiry: datetime | timedelta | None = ...,
        data: dict[str, Any] | None = ...,
        audience: str | Sequence[str] | None = ...,
        scopes: Sequence[str] | None = ...,
    ) -> str: ...

    def create_refresh_token(
        self,
        uid: str,
        headers: dict[str, Any] | None = ...,
        expiry: datetime | timedelta | None = ...,
        data: dict[str, Any] | None = ...,
        audience: str | Sequence[str] | None = ...,
        scopes: Sequence[str] | None = ...,
    ) -> str: ...

    def create_token_pair(
        self,
        uid: str,
        fresh: bool = ...,
        headers: dict[str, Any] | None = ...,
        access_expiry: datetime | timedelta | None = ...,
        refresh_expiry: datetime | timedelta | None = ...,
        data: dict[str, Any] | None = ...,
        audience: str | Sequence[str] | None = ...,
        access_scopes: Sequence[str] | None = ...,
        refresh_scopes: Sequence[str] | None = ...,
    ) -> TokenResponse: ...

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

    def __init__(self, _from: _Issuer[T], request: Request, response: Response) -> None:
        self._auth = _from
        self._request = request
        self._response = response

    @property
    def request(self) -> Request:
        return self._request

    @property
    def response(self) -> Response:
        return self._response

    def create_access_token(
        self,
        uid: str,
        fresh: bool = False,
        headers: dict[str, Any] | None = None,
        expiry: datetime | timedelta | None = None,
        data: dict[str, Any] | None = None,
        audience: str | Sequence[str] | None = None,
        scopes: Sequence[str] | None = None,
    ) -> str:
        return self._auth.create_access_token(
            uid, fresh, headers, expiry, data, audience, scopes=scopes
        )

    def create_refresh_token(
        self,
        uid: str,
        headers: dict[str, Any] | None = None,
        expiry: datetime | timedelta | None = None,
        data: dict[str, Any] | None = None,
        audience: str | Sequence[str] | None = None,
        scopes: Sequence[str] | None = None,
    ) -> str:
        return self._auth.create_refresh_token(uid, headers, expiry, data, audience, scopes=scopes)

    def create_token_pair(
        self,
        uid: str,
        fresh: bool = False,
        headers: dict[str, Any] | None = None,
        access_expiry: datetime | timedelta | None = None,
        refresh_expiry: datetime | timedelta | None = None,
        data: dict[str, Any] | None = None,
        audience: str | Sequence[str] | None = None,
        access_scopes: Sequence[str] | None = None,
        refresh_scopes: Sequence[str] | None = None,
    ) -> TokenResponse:
        return self._auth.create_token_pair(
            uid,
            fresh=fresh,
            headers=headers,
            access_expiry=access_expiry,
            refresh_expiry=refresh_expiry,
            data=data,
            audience=audience,
            access_scopes=access_scopes,
            refresh_scopes=refresh_scopes,
        )

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
