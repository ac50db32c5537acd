"""The in-band WebSocket messages: which client texts carry a token, and what the server sends."""

from __future__ import annotations

import json
from typing import Any

import pytest

from authx.websocket._protocol import auth_token, refresh_token, server_message

PREFIX = "authx."
MAX = 100


def message(kind: str, token: object = "tok", **extra: object) -> str:  # noqa: S107
    return json.dumps({"type": f"{PREFIX}{kind}", "token": token, **extra})


def test_an_auth_message_yields_its_token() -> None:
    assert auth_token(message("auth"), PREFIX, MAX) == "tok"
    assert auth_token("  \n" + message("auth"), PREFIX, MAX) == "tok"


def test_a_refresh_message_yields_its_token() -> None:
    assert refresh_token(message("refresh"), PREFIX, MAX) == "tok"
    assert refresh_token("\t" + message("refresh"), PREFIX, MAX) == "tok"


def test_the_prefix_is_part_of_the_type() -> None:
    text = json.dumps({"type": "other.auth", "token": "tok"})
    assert auth_token(text, "other.", MAX) == "tok"
    assert auth_token(text, PREFIX, MAX) is None
    assert auth_token(message("auth"), "other.", MAX) is None


@pytest.mark.parametrize(
    "text",
    [
        None,
        b'{"type": "authx.auth", "token": "tok"}',  # a binary frame is not a message
        "hello",
        '"authx.auth"',
        '["authx.auth", "tok"]',
        json.dumps({"type": "authx.refresh", "token": "tok"}),
        json.dumps({"type": "authx.authx", "token": "tok", "note": "authx.auth"}),
        json.dumps({"kind": "authx.auth", "token": "tok"}),
    ],
)
def test_other_texts_are_not_auth_messages(text: object) -> None:
    assert auth_token(text, PREFIX, MAX) is None


@pytest.mark.parametrize(
    "text",
    [
        None,
        "hello authx.refresh",
        json.dumps({"type": "authx.auth", "token": "tok"}),
        json.dumps({"type": "chat", "text": "authx.refresh"}),
        json.dumps({"token": "tok", "note": "authx.refresh"}),
    ],
)
def test_other_texts_are_not_refresh_messages(text: object) -> None:
    assert refresh_token(text, PREFIX, MAX) is None


@pytest.mark.parametrize(
    "text",
    [
        message("refresh", token=None),
        message("refresh", token=123),
        message("refresh", token=["tok"]),
        message("refresh", token=""),
        json.dumps({"type": "authx.refresh"}),
        '{"type": "authx.refresh", "token": "tok"',  # not JSON
        '{"type": "authx.refresh", "token": NaN}',
        '{"type": "authx.refresh", "token": "tok"} trailing',
    ],
)
def test_a_refresh_message_without_a_usable_token_is_refused_not_ignored(text: str) -> None:
    assert refresh_token(text, PREFIX, MAX) == ""


@pytest.mark.parametrize(
    "text",
    [
        message("auth", token=None),
        message("auth", token=7),
        message("auth", token=""),
        "{authx.auth",
    ],
)
def test_an_auth_message_without_a_usable_token_gives_none(text: str) -> None:
    assert auth_token(text, PREFIX, MAX) is None


@pytest.mark.parametrize(("kind", "read"), [("auth", auth_token), ("refresh", refresh_token)])
def test_a_message_may_hold_a_token_of_the_largest_size_and_no_more(kind: str, read: Any) -> None:
    # Room for the envelope: the text may be max_token_size + 256 characters long.
    room = MAX + 256 - len(message(kind, token=""))
    fits = message(kind, token="t" * room)
    assert len(fits) == MAX + 256
    assert read(fits, PREFIX, MAX) == "t" * room
    too_large = message(kind, token="t" * (room + 1))
    assert read(too_large, PREFIX, MAX) == ("" if kind == "refresh" else None)
    assert read(too_large, PREFIX, MAX + 1) == "t" * (room + 1)


def test_server_messages_carry_the_type_and_expiry() -> None:
    assert json.loads(server_message(PREFIX, "expiring", 1234.5)) == {
        "type": "authx.expiring",
        "exp": 1234.5,
    }
    assert json.loads(server_message("x-", "refreshed", None)) == {
        "type": "x-refreshed",
        "exp": None,
    }
