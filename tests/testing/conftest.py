"""An app per rejection mode, and a TestClient running it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from authx import AuthX
from tests.testing.app import create_app


@pytest.fixture(params=["deny", "close"])
def mode(request: pytest.FixtureRequest) -> str:
    """Each ``JWT_WS_REJECTION`` mode."""
    return str(request.param)


@pytest.fixture
def app_and_auth(mode: str) -> tuple[FastAPI, AuthX[Any]]:
    return create_app(JWT_WS_REJECTION=mode)


@pytest.fixture
def auth(app_and_auth: tuple[FastAPI, AuthX[Any]]) -> AuthX[Any]:
    return app_and_auth[1]


@pytest.fixture
def client(app_and_auth: tuple[FastAPI, AuthX[Any]]) -> Iterator[TestClient]:
    # Entered, so that every connection and portal.call share one event loop.
    with TestClient(app_and_auth[0]) as client:
        yield client
