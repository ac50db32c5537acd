"""Fixtures of the Python client tests: the shared client app on a real uvicorn, an
account that logs in and refreshes like an app, and a recorder of the client's callbacks."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from authx import AuthX, AuthXConfig
from authx.client import AuthError, State, StateInfo
from tests.conftest import SECRET, LiveServer

APP = "tests.apps.client_app:app"
# Every transport the Python client has, "message" last as the README asks.
LOCATIONS = '["ticket", "subprotocol", "query", "headers", "message"]'


def start_server(
    factory: Callable[..., LiveServer],
    mode: str = "close",
    *,
    short_tokens: bool = False,
    port: int = 0,
    case: str = "shared",
) -> LiveServer:
    """The client app (one server per distinct settings, kept for the session)."""
    env = {
        "JWT_SECRET_KEY": SECRET,
        "JWT_WS_REJECTION": mode,
        "JWT_WS_TOKEN_LOCATION": LOCATIONS,
        "JWT_TOKEN_LOCATION": '["headers", "cookies"]',
        "JWT_COOKIE_SECURE": "false",
        "AUTHX_TEST_CASE": case,
    }
    if short_tokens:
        env |= {"JWT_ACCESS_TOKEN_EXPIRES": "3", "JWT_WS_EXPIRY_WARNING": "1"}
    return factory(APP, port=port, **env)


def expired_token(sub: str) -> str:
    """A well-signed access token of ``sub`` that expired a minute ago."""
    auth = AuthX(config=AuthXConfig(JWT_SECRET_KEY=SECRET))
    return auth.create_access_token(uid=sub, expiry=datetime.now(UTC) - timedelta(minutes=1))


def forged_token(sub: str) -> str:
    """An access token of ``sub`` signed with another key."""
    auth = AuthX(config=AuthXConfig(JWT_SECRET_KEY="another-secret-key-that-is-long-enough!"))
    return auth.create_access_token(uid=sub)


@dataclass
class Account:
    """A logged-in user, as an app holds one: ``get_token`` calls the refresh route
    with the refresh cookie and its CSRF header (``hand_out`` tokens come first)."""

    http: httpx.AsyncClient
    sub: str
    hand_out: list[str] = field(default_factory=list)
    given: list[str] = field(default_factory=list)

    async def login(self) -> str:
        response = await self.http.post("/login", params={"sub": self.sub})
        response.raise_for_status()
        return str(response.json()["access_token"])

    async def get_token(self) -> str:
        if self.hand_out:
            token = self.hand_out.pop(0)
        else:
            csrf = self.http.cookies["csrf_refresh_token"]
            response = await self.http.post("/refresh", headers={"X-CSRF-TOKEN": csrf})
            response.raise_for_status()
            token = str(response.json()["access_token"])
        self.given.append(token)
        return token

    async def post(self, path: str, **params: Any) -> None:
        (await self.http.post(path, params=params)).raise_for_status()


@pytest.fixture
async def login() -> AsyncIterator[Callable[..., Any]]:
    """``await login(server)``: a new subject, logged in (refresh cookie set)."""
    clients: list[httpx.AsyncClient] = []

    async def login(server: LiveServer) -> Account:
        http = httpx.AsyncClient(base_url=server.http)
        clients.append(http)
        account = Account(http, f"user-{uuid.uuid4().hex[:8]}")
        await account.login()
        return account

    yield login
    for http in clients:
        await http.aclose()


@dataclass
class Events:
    """What the client told the app through its callbacks."""

    states: list[tuple[State, StateInfo]] = field(default_factory=list)
    auth_errors: list[AuthError] = field(default_factory=list)

    def on_state_change(self, state: State, info: StateInfo) -> None:
        self.states.append((state, info))

    def on_auth_error(self, error: AuthError) -> None:
        self.auth_errors.append(error)

    def callbacks(self) -> dict[str, Any]:
        return {"on_state_change": self.on_state_change, "on_auth_error": self.on_auth_error}

    def count(self, state: State) -> int:
        return sum(1 for seen, _ in self.states if seen == state)

    @property
    def reconnects(self) -> list[StateInfo]:
        return [info for state, info in self.states if state == "reconnecting"]

    async def until(self, check: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"timed out; states: {self.states}"
            await asyncio.sleep(0.02)


@pytest.fixture
def events() -> Events:
    return Events()


def parsed(message: str | bytes) -> dict[str, Any]:
    value = json.loads(message)
    assert isinstance(value, dict)
    return value
