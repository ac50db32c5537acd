"""The admission parts on their own: token buckets (with a fake clock), the client
address behind proxies, and the memory bound."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.websockets import WebSocket

from authx.websocket import _admission
from authx.websocket._admission import Buckets, client_address


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_admits_a_burst_then_says_how_long_to_wait() -> None:
    clock = Clock()
    buckets = Buckets(clock)
    assert [buckets.take("k", rate=2, burst=3) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("k", rate=2, burst=3) == pytest.approx(0.5)
    clock.now += 0.25
    assert buckets.take("k", rate=2, burst=3) == pytest.approx(0.25)
    clock.now += 0.25
    assert buckets.take("k", rate=2, burst=3) == 0.0
    assert buckets.take("other", rate=2, burst=3) == 0.0  # keys are independent


def test_bucket_refills_to_the_burst_and_no_more() -> None:
    clock = Clock()
    buckets = Buckets(clock)
    buckets.take("k", rate=1, burst=2)
    clock.now += 3600
    assert [buckets.take("k", rate=1, burst=2) for _ in range(3)][2] == pytest.approx(1.0)


def test_penalty_is_capped_at_one_burst_of_debt() -> None:
    clock = Clock()
    buckets = Buckets(clock)
    for _ in range(100):
        buckets.penalize("k", rate=1, burst=4, cost=5)
    assert buckets.take("k", rate=1, burst=4) == pytest.approx(5.0)  # (burst + 1) / rate


def test_bucket_table_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_admission, "_MAX_ENTRIES", 100)
    clock = Clock()
    buckets = Buckets(clock)
    for i in range(1000):
        buckets.take(f"addr-{i}", rate=1, burst=5)
        clock.now += 0.001
    assert len(buckets) <= 100
    # A bucket that filled up again is dropped first: it is the same as no bucket.
    clock.now += 10
    buckets.take("fresh", rate=1, burst=5)
    assert len(buckets) <= 100


def _ws(peer: str | None, forwarded: list[str] | None = None) -> WebSocket:
    scope: dict[str, Any] = {
        "type": "websocket",
        "path": "/ws",
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded or []],
        "client": (peer, 50000) if peer is not None else None,
    }

    async def receive() -> Any:
        raise AssertionError

    async def send(message: Any) -> None:
        raise AssertionError

    return WebSocket(scope, receive, send)


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.7", ["198.51.100.1"], (), "203.0.113.7"),  # no trusted proxy: the peer
        ("203.0.113.7", ["198.51.100.1"], ("10.0.0.0/8",), "203.0.113.7"),  # untrusted peer
        ("10.0.0.2", ["198.51.100.1"], ("10.0.0.0/8",), "198.51.100.1"),
        ("10.0.0.2", ["6.6.6.6, 198.51.100.1, 10.0.0.9"], ("10.0.0.0/8",), "198.51.100.1"),
        ("10.0.0.2", ["6.6.6.6", "198.51.100.1"], ("10.0.0.0/8",), "198.51.100.1"),  # 2 headers
        ("10.0.0.2", ["198.51.100.1:4711"], ("10.0.0.0/8",), "198.51.100.1"),
        ("10.0.0.2", ["[2001:db8::1]:443"], ("10.0.0.0/8",), "2001:db8::/64"),
        ("10.0.0.2", ["garbage, 10.0.0.7"], ("10.0.0.0/8",), "10.0.0.7"),  # stop at junk
        ("10.0.0.2", [], ("10.0.0.0/8",), "10.0.0.2"),
        ("2001:db8:0:1:aaaa::1", [], (), "2001:db8:0:1::/64"),
        ("::ffff:192.0.2.5", [], (), "192.0.2.5"),
        (None, ["198.51.100.1"], ("10.0.0.0/8",), "unknown"),
        ("not-an-ip", [], (), "unknown"),
    ],
)
def test_client_address(
    peer: str | None, forwarded: list[str], trusted: tuple[str, ...], expected: str
) -> None:
    assert client_address(_ws(peer, forwarded), trusted) == expected
