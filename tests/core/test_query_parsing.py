"""Reading one query parameter straight from the raw query string, as Starlette would."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from authx._locations import query_value


def value(query: bytes | None, name: str = "token") -> str | None:
    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    if query is not None:
        scope["query_string"] = query
    return query_value(Request(scope), name)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"token=abc", "abc"),
        (b"a=1&token=abc&b=2", "abc"),
        (b"token=first&token=last", "last"),
        (b"token=", ""),
        (b"token", ""),
        (b"tokenx=abc", None),
        (b"xtoken=abc", None),
        (b"a=1", None),
        (b"", None),
        (None, None),
        (b"token=a%2Eb", "a.b"),
        (b"token=a+b", "a b"),
        (b"token=a%2Bb", "a+b"),
        (b"token=%E2%82%AC", "\u20ac"),
        (b"token=%FF", "\ufffd"),
        (b"token=a=b", "a=b"),
        (b"token=caf\xe9", "caf\xe9"),
    ],
)
def test_query_value(query: bytes | None, expected: str | None) -> None:
    assert value(query) == expected


@pytest.mark.parametrize(
    "query", [b"token=abc", b"a=1&token=a%2Eb+c&token=x%20y", b"token=caf%C3%A9&b"]
)
def test_same_answer_as_starlette(query: bytes) -> None:
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": query}
    assert value(query) == Request(scope).query_params.get("token")


def test_other_names() -> None:
    assert value(b"jwt=1&token=2", "jwt") == "1"
    assert value(b"jwt=1&token=2", "ticket") is None
