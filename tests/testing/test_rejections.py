"""Asserting WebSocket rejections with TestClient, in both rejection modes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from authx import AuthX
from authx.close_codes import Action
from authx.testing import bearer, expect_ws_rejection, make_token, token_url

#: What each mode's client sees for an invalid token.
SEEN = {"deny": {"status": 401}, "close": {"code": 4001}}


def first_message(client: TestClient, url: str, **kwargs: Any) -> Any:
    """Connect and read the endpoint's first message (in "close" mode, the close)."""
    with client.websocket_connect(url, **kwargs) as ws:
        return ws.receive_json()


@pytest.mark.parametrize("path", ["/ws", "/ws/seed"])
def test_reason_matches_either_mode(client: TestClient, mode: str, path: str) -> None:
    with (
        expect_ws_rejection(reason="invalid_token") as rejection,
        client.websocket_connect(token_url(path, "nope")) as ws,
    ):
        ws.receive_json()
    assert rejection.mode == mode
    assert rejection.reason == "invalid_token"
    assert rejection.action is Action.STOP
    if mode == "deny":
        assert (rejection.status, rejection.code) == (401, None)
        assert rejection.body is not None
        assert rejection.body["error_type"] == "JWTDecodeError"
    else:
        assert (rejection.status, rejection.code, rejection.body) == (None, 4001, None)


def test_code_or_status_for_one_mode(client: TestClient, mode: str) -> None:
    with expect_ws_rejection(reason="invalid_token", **SEEN[mode]):
        first_message(client, "/ws")


def test_code_and_status_together_accept_either_mode(client: TestClient, auth: AuthX[Any]) -> None:
    reader = make_token(auth, "alice", scopes=["read"])
    with expect_ws_rejection(code=4003, status=403, reason="insufficient_scope"):
        first_message(client, "/ws/admin", headers=bearer(reader))
    admin = make_token(auth, "alice", scopes=["admin"])
    assert first_message(client, "/ws/admin", headers=bearer(admin)) == {"admin": "alice"}


def test_expired_token_at_the_handshake(client: TestClient, auth: AuthX[Any]) -> None:
    expired = make_token(auth, "alice", expires=timedelta(seconds=-1))
    with expect_ws_rejection(reason="token_expired", code=4002, status=401) as rejection:
        first_message(client, "/ws", headers=bearer(expired))
    assert rejection.action is Action.REFRESH


def test_an_accepted_socket_fails_the_assertion(client: TestClient, auth: AuthX[Any]) -> None:
    token = make_token(auth, "alice")
    with (
        pytest.raises(AssertionError, match=r"reason 'invalid_token'.*was accepted") as failure,
        expect_ws_rejection(reason="invalid_token"),
    ):
        first_message(client, token_url("/ws", token))
    assert "ws.receive_json()" in str(failure.value)


def test_close_mode_needs_a_read_in_the_block(client: TestClient, mode: str) -> None:
    if mode == "deny":
        with expect_ws_rejection(status=401), client.websocket_connect("/ws"):
            pass  # the denial is raised by the connection itself
    else:
        with (
            pytest.raises(AssertionError, match='In "close" mode'),
            expect_ws_rejection(code=4001),
            client.websocket_connect("/ws"),
        ):
            pass  # accepted, and nothing read the close that followed


def test_a_different_rejection_fails_with_what_the_client_saw(
    client: TestClient, mode: str
) -> None:
    saw = {
        "deny": r"denied with HTTP 401 \(reason 'invalid_token', error_type 'MissingTokenError'\)",
        "close": "closed with code 4001 and reason 'invalid_token'",
    }[mode]
    with (
        pytest.raises(
            AssertionError, match=f"{saw}: reason 'invalid_token' is not 'token_revoked'"
        ),
        expect_ws_rejection(reason="token_revoked"),
    ):
        first_message(client, "/ws")


def test_a_wrong_number_fails(client: TestClient, mode: str) -> None:
    wrong = {"deny": {"status": 403}, "close": {"code": 4003}}[mode]
    expected = {"deny": "HTTP status 401 is not 403", "close": "close code 4001 is not 4003"}
    with pytest.raises(AssertionError, match=expected[mode]), expect_ws_rejection(**wrong):
        first_message(client, "/ws")


def test_the_other_mode_fails_with_a_hint(client: TestClient, mode: str) -> None:
    other = {"deny": {"code": 4001}, "close": {"status": 401}}[mode]
    hint = {"deny": "expect status= for it", "close": "expect code= for it"}[mode]
    with (
        pytest.raises(AssertionError, match=f'rejects in "{mode}" mode.*{hint}, or reason='),
        expect_ws_rejection(**other),
    ):
        first_message(client, "/ws")


def test_other_errors_pass_through() -> None:
    with pytest.raises(RuntimeError, match="boom"), expect_ws_rejection(code=4001):
        raise RuntimeError("boom")


def test_a_close_reason_with_a_delay() -> None:
    with expect_ws_rejection(reason="rate_limited", code=4029) as rejection:
        raise WebSocketDisconnect(4029, "rate_limited; retry_after=3")
    assert (rejection.retry_after, rejection.action) == (3, Action.RETRY)
    assert repr(rejection) == (
        "Rejection(mode='close', reason='rate_limited', code=4029, status=None, retry_after=3)"
    )


def test_expectations_are_checked() -> None:
    with pytest.raises(TypeError, match="code=, reason= or status="):
        expect_ws_rejection()
    with pytest.raises(ValueError, match=r"unknown reason 'expired'.*token_expired"):
        expect_ws_rejection(reason="expired")


def test_live_expiry_with_a_short_lived_token(client: TestClient, auth: AuthX[Any]) -> None:
    token = make_token(auth, "alice", expires=timedelta(seconds=0.5))
    with client.websocket_connect("/ws", headers=bearer(token)) as ws:
        assert ws.receive_json() == {"user": "alice"}
        # A live connection is closed in either mode: the close arrives when exp passes.
        with expect_ws_rejection(code=4002, reason="token_expired"):
            ws.receive_json()


def test_revocation_closes_and_refuses(client: TestClient, auth: AuthX[Any], mode: str) -> None:
    token = make_token(auth, "alice")
    with client.websocket_connect("/ws", headers=bearer(token)) as ws:
        ws.receive_json()
        client.portal.call(auth.revoke_token, token)  # type: ignore[union-attr] # the app's loop
        with expect_ws_rejection(code=4004, reason="token_revoked"):
            ws.receive_json()
    with expect_ws_rejection(reason="token_revoked") as rejection:
        first_message(client, "/ws", headers=bearer(token))
    assert rejection.mode == mode
    assert client.get("/me", headers=bearer(token)).json()["error_type"] == "RevokedTokenError"
