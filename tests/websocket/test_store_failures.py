"""When the revocation store cannot answer: fail closed (503 / 1013) unless told to fail open."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from authx import AuthX, AuthXConfig
from tests.conftest import SECRET
from tests.websocket.client import handshake

APP = "tests.apps.ws_app:app"
# Nothing listens on port 1 of the loopback: every call is refused at once.
DEAD_STORE = "redis://:hunter2@127.0.0.1:1/0"
issuer = AuthX(AuthXConfig(JWT_SECRET_KEY=SECRET))


def get_me(server, token: str) -> tuple[int, dict[str, str]]:  # type: ignore[no-untyped-def]
    request = urllib.request.Request(
        f"{server.http}/me", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


@pytest.mark.parametrize("mode", ["deny", "close"])
async def test_unreachable_store_fails_closed(live_server_factory, mode: str) -> None:  # type: ignore[no-untyped-def]
    server = live_server_factory(
        APP, JWT_SECRET_KEY=SECRET, JWT_STORE_URL=DEAD_STORE, JWT_WS_REJECTION=mode
    )
    token = issuer.create_access_token("alice")
    status, body = get_me(server, token)
    assert (status, body["error_type"], body["reason"]) == (
        503,
        "StoreUnavailableError",
        "store_unavailable",
    )
    outcome = await handshake(f"{server.ws}/ws?token={token}")
    if mode == "deny":
        assert (outcome.status, outcome.body["error_type"], outcome.body["reason"]) == (
            503,
            "StoreUnavailableError",
            "store_unavailable",
        )
    else:
        assert (outcome.kind, outcome.code, outcome.reason) == (
            "closed",
            1013,
            "store_unavailable",
        )
    log = server.assert_log_clean(token, "hunter2")
    assert "redis://:***@127.0.0.1:1/0 unavailable" in log


async def test_fail_open_when_asked(live_server_factory) -> None:  # type: ignore[no-untyped-def]
    server = live_server_factory(
        APP, JWT_SECRET_KEY=SECRET, JWT_STORE_URL=DEAD_STORE, JWT_STORE_FAIL_OPEN="true"
    )
    token = issuer.create_access_token("alice")
    assert get_me(server, token) == (200, {"user": "alice"})
    assert (await handshake(f"{server.ws}/ws?token={token}")).message["user"] == "alice"
    server.assert_log_clean(token, "hunter2")
