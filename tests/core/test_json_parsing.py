"""Untrusted JSON (in-band WebSocket messages, provider documents): an object or nothing."""

from __future__ import annotations

import pytest

from authx._json import loads_object


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        (b'{"a": [1, 2]}', {"a": [1, 2]}),
        ('  \n{"a": 1}\t ', {"a": 1}),  # whitespace around the object is fine
        (b' {"t": "\xc3\xa9"} ', {"t": "\u00e9"}),  # bytes are UTF-8
        ("{}", {}),
    ],
)
def test_a_json_object_is_returned(text: str | bytes, expected: dict[str, object]) -> None:
    assert loads_object(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "[]",
        '"text"',
        "1",
        "null",
        '{"a": 1} {"b": 2}',  # trailing data
        '{"a": 1}x',
        '{"a": 1',
        '{"a": NaN}',
        '{"a": Infinity}',
        '{"a": -Infinity}',
        b'{"a": "\xff"}',  # invalid UTF-8
        b"\xff\xfe",
        "[" * 100_000 + "]" * 100_000,  # deep enough to exhaust the recursion limit
        '{"a":' * 100_000 + "1" + "}" * 100_000,
    ],
)
def test_anything_else_is_none_and_never_raises(text: str | bytes) -> None:
    assert loads_object(text) is None
