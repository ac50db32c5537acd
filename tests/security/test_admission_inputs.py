"""Hostile X-Forwarded-For values behind a trusted proxy: huge, malformed, non-ASCII,
repeated. The client address is always an address or "unknown", found without
parsing what a client wrote to the left of the proxies' own hops."""

from __future__ import annotations

import time
from typing import Any

import pytest
from starlette.websockets import WebSocket

from authx.websocket._admission import client_address

TRUSTED = ("10.0.0.0/8",)


def _ws(headers: list[tuple[bytes, bytes]]) -> WebSocket:
    scope: dict[str, Any] = {
        "type": "websocket",
        "path": "/ws",
        "headers": headers,
        "client": ("10.0.0.2", 50000),
    }

    async def never(*_: Any) -> Any:
        raise AssertionError

    return WebSocket(scope, never, never)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([b"1.1.1.1, " * 20_000 + b"198.51.100.1"], "198.51.100.1"),  # ~200 kB of prepended hops
        ([b"\xff\xfe\x00garbage"], "10.0.0.2"),  # not an address: the proxy itself
        ([b"[::1"], "10.0.0.2"),
        ([b"999.1.1.1"], "10.0.0.2"),
        ([b",,,,"], "10.0.0.2"),
        ([b""], "10.0.0.2"),
        ([b"198.51.100.1"] * 500, "198.51.100.1"),  # the header repeated
        ([b"2001:db8::1%eth0"], "2001:db8::/64"),  # a scoped address is still its /64
        ([b"198.51.100.7:99999"], "198.51.100.7"),  # the port is dropped, valid or not
    ],
)
def test_hostile_forwarded_for_gives_an_address(values: list[bytes], expected: str) -> None:
    websocket = _ws([(b"x-forwarded-for", value) for value in values])
    started = time.monotonic()
    assert client_address(websocket, TRUSTED) == expected
    assert time.monotonic() - started < 1.0  # linear in the header, never a hang
