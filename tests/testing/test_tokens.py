"""Minting tokens and carrying them without a login route."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from authx import AuthX
from authx.testing import bearer, make_token, subprotocols, token_url
from tests.testing.app import create_app


def test_a_minted_token_opens_http_routes(client: TestClient, auth: AuthX[Any]) -> None:
    token = make_token(auth, "alice", scopes=["read"], claims={"role": "admin"})
    response = client.get("/me", headers=bearer(token))
    assert response.json() == {"user": "alice", "scopes": ["read"], "role": "admin"}


@pytest.mark.parametrize(("fresh", "status"), [(True, 200), (False, 401)])
def test_fresh_tokens(client: TestClient, auth: AuthX[Any], fresh: bool, status: int) -> None:
    token = make_token(auth, "alice", fresh=fresh)
    assert client.get("/fresh", headers=bearer(token)).status_code == status


def test_refresh_tokens(client: TestClient, auth: AuthX[Any]) -> None:
    refresh = make_token(auth, "alice", type="refresh")
    response = client.post("/refresh", headers=bearer(refresh))
    assert response.status_code == 200
    assert client.get("/me", headers=bearer(refresh)).json()["error_type"] == (
        "AccessTokenRequiredError"
    )
    with pytest.raises(ValueError, match="fresh"):
        make_token(auth, "alice", type="refresh", fresh=True)
    with pytest.raises(ValueError, match="type"):
        make_token(auth, "alice", type="id")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "expires", [timedelta(seconds=-1), datetime(2020, 1, 1, tzinfo=UTC)], ids=["ago", "moment"]
)
def test_an_expired_token_is_refused(client: TestClient, auth: AuthX[Any], expires: Any) -> None:
    response = client.get("/me", headers=bearer(make_token(auth, "alice", expires=expires)))
    assert response.status_code == 401
    assert response.json()["error_type"] == "TokenExpiredError"


def test_lifetime_defaults_to_the_config(auth: AuthX[Any]) -> None:
    payload = auth._decode_token(make_token(auth, "alice"))
    assert payload.time_until_expiry == pytest.approx(
        timedelta(minutes=15), abs=timedelta(seconds=2)
    )


def test_claims_and_audience(auth: AuthX[Any]) -> None:
    with pytest.raises(TypeError, match="reserved"):
        make_token(auth, "alice", claims={"exp": 1})
    token = make_token(auth, "alice", audience="api")
    assert auth._decode_token(token, verify=False).aud == "api"


def test_headers_follow_the_config() -> None:
    app, auth = create_app(JWT_HEADER_NAME="X-Token", JWT_HEADER_TYPE="JWT")
    token = make_token(auth, "alice")
    assert bearer(token) == {"Authorization": f"Bearer {token}"}
    assert bearer(token, auth=auth) == {"X-Token": f"JWT {token}"}
    with TestClient(app) as client:
        assert client.get("/me", headers=bearer(token, auth=auth)).json()["user"] == "alice"
        assert client.get("/me", headers=bearer(token)).status_code == 401
    _, raw = create_app(JWT_HEADER_TYPE="")
    assert bearer(token, auth=raw) == {"Authorization": token}


def test_every_websocket_transport(client: TestClient, auth: AuthX[Any]) -> None:
    token = make_token(auth, "alice")
    with client.websocket_connect(token_url("/ws", token)) as ws:
        assert ws.receive_json() == {"user": "alice"}
    with client.websocket_connect("/ws", headers=bearer(token)) as ws:
        assert ws.receive_json() == {"user": "alice"}
    with client.websocket_connect("/ws", subprotocols=subprotocols(token, "chat.v1")) as ws:
        assert ws.receive_json() == {"user": "alice"}
        assert ws.accepted_subprotocol == "chat.v1"
    with client.websocket_connect("/ws", subprotocols=subprotocols(token)) as ws:
        assert ws.accepted_subprotocol == "authx"


def test_token_url_follows_the_config() -> None:
    _, auth = create_app(JWT_QUERY_STRING_NAME="access")
    assert token_url("/ws", "a.b.c") == "/ws?token=a.b.c"
    assert token_url("/ws?room=1", "a.b.c", auth=auth) == "/ws?room=1&access=a.b.c"
