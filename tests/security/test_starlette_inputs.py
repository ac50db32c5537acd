"""The attack corpus at the entry points added for plain Starlette and AuthX code:
``AuthXBackend`` (HTTP header and cookie), ``WebSocketAuthMiddleware`` (query) and
``implicit_refresh_middleware`` (the access cookie). Every variant is refused as an
authentication failure (401 / close 4001, reason ``invalid_token``) or, for the
implicit refresh, ignored: never a 500, never a new cookie, never the token echoed.
The corpus at the other entry points, on real servers, is test_corpus.py.
"""

from __future__ import annotations

import json
import warnings
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from authx import AuthX, AuthXConfig
from authx.starlette import AuthXBackend, WebSocketAuthMiddleware
from tests.security.corpus import CORPUS, SUBJECT, corpus, genuine, server_env
from tests.security.entries import _cookie_safe, _header_safe, _url_safe

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

ATTACKS = sorted(set(CORPUS) - {"embedded-keys"})  # that one needs a JWKS server


def _auth(**overrides: str) -> AuthX[Any]:
    env = server_env(JWT_WS_REJECTION="close", **overrides)
    settings = {k: json.loads(v) if v.startswith("[") else v for k, v in env.items()}
    return AuthX(config=AuthXConfig(**settings))


def starlette_client() -> TestClient:
    auth = _auth()

    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"user": request.user.display_name})

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(websocket.user.display_name)
        await websocket.close()

    app = Starlette(
        routes=[Route("/me", me), WebSocketRoute("/ws", ws)],
        middleware=[
            Middleware(
                AuthenticationMiddleware, backend=AuthXBackend(auth), on_error=AuthXBackend.on_error
            )
        ],
    )
    return TestClient(WebSocketAuthMiddleware(app, auth=auth))


def refresh_client() -> TestClient:
    auth = _auth(JWT_TOKEN_LOCATION='["cookies"]', JWT_IMPLICIT_REFRESH_DELTATIME="100000")
    app = FastAPI()
    app.middleware("http")(auth.implicit_refresh_middleware)

    @app.get("/public")
    def public() -> dict[str, bool]:
        return {"ok": True}

    return TestClient(app)


@pytest.fixture(scope="module")
def starlette() -> TestClient:
    return starlette_client()


@pytest.fixture(scope="module")
def refreshing() -> TestClient:
    return refresh_client()


def test_every_entry_point_accepts_a_genuine_token(
    starlette: TestClient, refreshing: TestClient
) -> None:
    token = genuine()
    me = starlette.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json() == {"user": SUBJECT}
    with starlette.websocket_connect(f"/ws?token={token}") as ws:
        assert ws.receive_text() == SUBJECT
    refreshing.cookies.clear()
    refreshing.cookies.set("access_token_cookie", token)
    refreshed = refreshing.get("/public")
    assert "access_token_cookie" in refreshed.headers.get("set-cookie", "")


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_backend_refuses_every_variant(starlette: TestClient, attack: str) -> None:
    for label, token in corpus(attack):
        if _header_safe(token):
            answer = starlette.get("/me", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 401, (label, answer.status_code)
            assert answer.json()["reason"] == "invalid_token", label
            assert token not in answer.text, label
        if _cookie_safe(token):
            starlette.cookies.clear()
            starlette.cookies.set("access_token_cookie", token)
            answer = starlette.get("/me")
            starlette.cookies.clear()
            assert answer.status_code == 401, (label, answer.status_code)
            assert answer.json()["reason"] == "invalid_token", label


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_websocket_middleware_refuses_every_variant(starlette: TestClient, attack: str) -> None:
    for label, token in corpus(attack):
        if not _url_safe(token):
            continue
        url = f"/ws?token={quote(token, safe='')}"
        with pytest.raises(WebSocketDisconnect) as closed, starlette.websocket_connect(url) as ws:
            ws.receive_text()
        assert (closed.value.code, closed.value.reason) == (4001, "invalid_token"), label


@pytest.mark.parametrize("attack", ATTACKS)
def test_implicit_refresh_ignores_every_variant(refreshing: TestClient, attack: str) -> None:
    for label, token in corpus(attack):
        if not _cookie_safe(token):
            continue
        refreshing.cookies.clear()
        refreshing.cookies.set("access_token_cookie", token)
        answer = refreshing.get("/public")
        assert answer.status_code == 200, (label, answer.status_code)
        assert "set-cookie" not in answer.headers, label
