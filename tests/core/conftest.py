"""Fixtures for the core HTTP tests: ``make_config``, ``auth``, ``app`` and ``client``.

A test changes the configuration by parametrising ``config_overrides``; ``auth``,
``app`` and ``client`` are built from it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from core_support import BASE_URL, build_app, make_config
from fastapi import FastAPI

from authx import AuthX, AuthXConfig


@pytest.fixture(name="make_config")
def make_config_fixture() -> Callable[..., AuthXConfig]:
    return make_config


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    """Settings for this test's ``auth``; parametrise it to change them."""
    return {}


@pytest.fixture
def auth(config_overrides: dict[str, Any]) -> AuthX[Any]:
    return AuthX(config=make_config(**config_overrides))


@pytest.fixture
def app(auth: AuthX[Any]) -> FastAPI:
    return build_app(auth)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c:
        yield c
