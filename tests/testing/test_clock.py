"""Moving the wall clock: what it expires, and what it does not move."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from authx import AuthX
from authx.testing import bearer, expect_ws_rejection, freeze_clock, make_token


def test_advancing_expires_an_http_token(client: TestClient, auth: AuthX[Any]) -> None:
    with freeze_clock() as clock:
        token = make_token(auth, "alice", expires=timedelta(minutes=15))
        clock.advance(timedelta(minutes=14, seconds=59))
        assert client.get("/me", headers=bearer(token)).status_code == 200
        clock.advance(1)  # a token is expired at exp itself
        response = client.get("/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["error_type"] == "TokenExpiredError"
    # Back to the real time: the token is valid again.
    assert client.get("/me", headers=bearer(token)).status_code == 200


def test_advancing_expires_a_handshake_token(client: TestClient, auth: AuthX[Any]) -> None:
    token = make_token(auth, "alice", expires=timedelta(minutes=15))
    with freeze_clock() as clock:
        clock.advance(timedelta(hours=1))
        with (
            expect_ws_rejection(reason="token_expired"),
            client.websocket_connect("/ws", headers=bearer(token)) as ws,
        ):
            ws.receive_json()


def test_an_open_connection_is_not_closed_by_advancing(
    client: TestClient, auth: AuthX[Any]
) -> None:
    # Its close at exp is a loop timer armed when it opened: only real time fires it.
    with freeze_clock() as clock:
        token = make_token(auth, "alice", expires=timedelta(seconds=60))
        with client.websocket_connect("/ws", headers=bearer(token)) as ws:
            ws.receive_json()
            clock.advance(120)
            ws.send_text("still here")
            assert ws.receive_json() == {"echo": "still here"}


def test_a_fixed_start_and_a_ticking_clock() -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    with freeze_clock(start) as clock:
        assert clock.now() == start.timestamp()
        clock.advance(timedelta(days=1))
        assert time.time() == (start + timedelta(days=1)).timestamp()
        assert datetime.now(tz=UTC) == start + timedelta(days=1)
    with freeze_clock(start, tick=True) as clock:
        time.sleep(0.01)
        assert clock.now() > start.timestamp()
    assert time.time() > start.timestamp() - 10 * 365 * 86400  # really back


def test_advance_outside_the_block() -> None:
    clock = freeze_clock()
    with pytest.raises(RuntimeError, match="inside the freeze_clock"):
        clock.advance(1)


def test_time_machine_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "time_machine", None)
    with (
        pytest.raises(ImportError, match=r"pip install \"authx-ws\[testing\]\""),
        freeze_clock(),
    ):
        pass
