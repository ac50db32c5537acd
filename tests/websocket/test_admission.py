"""Admission control under a real uvicorn: limits hit and lifted, an honest Retry-After,
failures that cost extra, proxies trusted only when configured, held-socket caps,
and a flood that is logged once.

The suite switches the limits off for every other test (tests/conftest.py); each
server here sets the ones it tests. uvicorn's own proxy-header handling is off
(``UVICORN_PROXY_HEADERS=false``) so that the address AuthX sees is the socket's,
and ``X-Forwarded-For`` counts only through ``JWT_WS_TRUSTED_PROXIES``.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any

import pytest
import websockets

from authx import AuthX, AuthXConfig
from tests.conftest import SECRET, LiveServer
from tests.websocket.client import Outcome, closed_after, handshake

APP = "tests.apps.admission_app:app"
issuer = AuthX(AuthXConfig(JWT_SECRET_KEY=SECRET))
DEFAULTS = AuthXConfig.model_fields


def token(sub: str = "alice", seconds: float = 300) -> str:
    return issuer.create_access_token(uid=sub, expiry=timedelta(seconds=seconds))


def serve(factory: Any, case: str, **settings: str) -> LiveServer:
    """A fresh server per test (``case`` keys the factory's cache): buckets start full."""
    env = {
        "JWT_SECRET_KEY": SECRET,
        "UVICORN_PROXY_HEADERS": "false",
        "AUTHX_TEST_CASE": case,
        **settings,
    }
    return factory(APP, **env)  # type: ignore[no-any-return]


async def connect(server: LiveServer, sub: str = "alice", forwarded: str | None = None) -> Outcome:
    headers = {"X-Forwarded-For": forwarded} if forwarded else None
    return await handshake(f"{server.ws}/ws?token={token(sub)}", headers=headers)


async def bad(server: LiveServer, forwarded: str | None = None) -> Outcome:
    headers = {"X-Forwarded-For": forwarded} if forwarded else None
    return await handshake(f"{server.ws}/ws?token=forged.bad.token", headers=headers)


def refused(seen: Outcome) -> bool:
    return seen.status == 429 and seen.body["reason"] == "rate_limited"


async def test_limit_is_hit_then_lifted_after_the_retry_after_it_announced(
    live_server_factory: Any,
) -> None:
    server = serve(live_server_factory, "lifted", JWT_WS_RATE_LIMIT="1", JWT_WS_RATE_BURST="3")
    for _ in range(3):
        assert (await connect(server)).kind == "open"
    seen = await connect(server)
    assert refused(seen), seen
    wait = int(seen.headers["retry-after"])
    assert wait == seen.body["retry_after"] == 1
    assert seen.body["error_type"] == "RateLimitedError"
    await asyncio.sleep(wait)
    assert (await connect(server)).kind == "open"  # honest: waiting that long was enough


async def test_close_mode_closes_4029_with_the_delay_in_the_reason(
    live_server_factory: Any,
) -> None:
    server = serve(
        live_server_factory,
        "close-mode",
        JWT_WS_REJECTION="close",
        JWT_WS_RATE_LIMIT="0.5",
        JWT_WS_RATE_BURST="1",
    )
    assert (await connect(server)).kind == "open"
    seen = await connect(server)
    # The answer was held back a second (the tarpit), so one second is left to wait.
    assert (seen.kind, seen.code, seen.reason) == ("closed", 4029, "rate_limited; retry_after=1")
    await asyncio.sleep(1)
    assert (await connect(server)).kind == "open"


async def test_refusals_are_held_back_up_to_the_delay_and_the_cap(
    live_server_factory: Any,
) -> None:
    server = serve(
        live_server_factory,
        "tarpit",
        JWT_WS_RATE_LIMIT="0.1",
        JWT_WS_RATE_BURST="1",
        JWT_WS_REFUSAL_DELAY="1.5",
        JWT_WS_MAX_DELAYED="3",
    )
    assert (await connect(server)).kind == "open"

    async def timed() -> tuple[Outcome, float]:
        started = time.monotonic()
        seen = await bad(server)
        return seen, time.monotonic() - started

    results = await asyncio.gather(*(timed() for _ in range(10)))
    assert all(refused(seen) for seen, _ in results)
    held = sorted(elapsed for _, elapsed in results)
    # Three refusals were held back 1.5 s; beyond the cap the others were answered
    # without waiting for a slot.
    assert [e >= 1.4 for e in held].count(True) == 3, held
    # The announced wait is what is left after the delay: 10 s - 1.5 s, rounded up.
    slow = [seen for seen, elapsed in results if elapsed >= 1.4]
    assert {seen.headers["retry-after"] for seen in slow} == {"9"}


async def test_failed_authentications_cost_extra_for_their_address_only(
    live_server_factory: Any,
) -> None:
    server = serve(
        live_server_factory,
        "failures",
        JWT_WS_RATE_LIMIT="0.2",
        JWT_WS_RATE_BURST="12",
        JWT_WS_FAILURE_COST="5",
        JWT_WS_TRUSTED_PROXIES='["127.0.0.1"]',
    )
    guesser, neighbour = "203.0.113.7", "198.51.100.9"
    # Two bad tokens take 2 x (1 + 5) = 12 tokens: the whole burst.
    for _ in range(2):
        assert (await bad(server, guesser)).status == 401
    assert refused(await connect(server, forwarded=guesser))
    # Twelve good handshakes from the neighbour still go through.
    for _ in range(12):
        assert (await connect(server, forwarded=neighbour)).kind == "open"
    # The penalty has a cap: however many failures, the wait stays bounded.
    for _ in range(30):
        await bad(server, guesser)
    seen = await connect(server, forwarded=guesser)
    assert refused(seen)
    assert int(seen.headers["retry-after"]) <= (12 + 1) / 0.2


async def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(
    live_server_factory: Any,
) -> None:
    untrusting = serve(
        live_server_factory, "untrusting", JWT_WS_RATE_LIMIT="0.1", JWT_WS_RATE_BURST="2"
    )
    # Without trusted proxies, inventing addresses does not buy more handshakes.
    outcomes = [await connect(untrusting, forwarded=f"192.0.2.{i}") for i in range(3)]
    assert [o.kind for o in outcomes[:2]] == ["open", "open"]
    assert refused(outcomes[2])

    trusting = serve(
        live_server_factory,
        "trusting",
        JWT_WS_RATE_LIMIT="0.1",
        JWT_WS_RATE_BURST="2",
        JWT_WS_TRUSTED_PROXIES='["127.0.0.1", "10.0.0.0/8"]',
    )
    # Behind trusted proxies, each client address has its own bucket ...
    for i in range(3):
        assert (await connect(trusting, forwarded=f"192.0.2.{i}")).kind == "open"
    # ... the client is the first untrusted hop from the right, so a client cannot
    # prepend addresses of its own to escape its bucket.
    spoofed = [
        await connect(trusting, forwarded=f"198.18.0.{i}, 203.0.113.50, 10.1.2.3") for i in range(3)
    ]
    assert [o.kind for o in spoofed[:2]] == ["open", "open"]
    assert refused(spoofed[2])


async def test_ipv6_clients_are_counted_per_64_network(live_server_factory: Any) -> None:
    server = serve(
        live_server_factory,
        "ipv6",
        JWT_WS_RATE_LIMIT="0.1",
        JWT_WS_RATE_BURST="2",
        JWT_WS_TRUSTED_PROXIES='["127.0.0.1"]',
    )
    # One host rotating through its /64 stays one client.
    hosts = ["2001:db8:1:2::1", "2001:db8:1:2::beef", "2001:db8:1:2:ffff::9"]
    outcomes = [await connect(server, forwarded=h) for h in hosts]
    assert [o.kind for o in outcomes[:2]] == ["open", "open"]
    assert refused(outcomes[2])
    assert (await connect(server, forwarded="2001:db8:1:3::1")).kind == "open"


async def test_subject_limit_applies_after_verification(live_server_factory: Any) -> None:
    server = serve(
        live_server_factory,
        "subject",
        JWT_WS_SUBJECT_RATE_LIMIT="0.1",
        JWT_WS_SUBJECT_RATE_BURST="2",
    )
    assert [(await connect(server, "sam")).kind for _ in range(2)] == ["open", "open"]
    assert refused(await connect(server, "sam"))
    assert (await connect(server, "bob")).kind == "open"
    # A bad token never reaches the subject's bucket.
    assert (await bad(server)).status == 401


async def _silent(server: LiveServer, forwarded: str | None = None) -> Any:
    headers = {"X-Forwarded-For": forwarded} if forwarded else None
    return await websockets.connect(f"{server.ws}/ws", additional_headers=headers)


async def test_sockets_held_before_authenticating_are_capped_per_address(
    live_server_factory: Any,
) -> None:
    server = serve(
        live_server_factory,
        "pending",
        JWT_WS_TOKEN_LOCATION='["message"]',
        JWT_WS_AUTH_MESSAGE_TIMEOUT="20",
        JWT_WS_MAX_PENDING_PER_ADDRESS="2",
    )
    held = [await _silent(server), await _silent(server)]
    seen = await handshake(f"{server.ws}/ws")
    assert refused(seen), seen
    assert int(seen.headers["retry-after"]) == 20
    # One of the held sockets authenticates: its slot frees up.
    await held[0].send(json.dumps({"type": "authx.auth", "token": token()}))
    assert json.loads(await held[0].recv()) == {"user": "alice"}
    third = await _silent(server)
    await third.send(json.dumps({"type": "authx.auth", "token": token("tia")}))
    assert json.loads(await third.recv()) == {"user": "tia"}
    for ws in (*held, third):
        await ws.close()


async def test_sockets_held_before_authenticating_are_capped_in_total(
    live_server_factory: Any,
) -> None:
    server = serve(
        live_server_factory,
        "pending-total",
        JWT_WS_REJECTION="close",
        JWT_WS_TOKEN_LOCATION='["message"]',
        JWT_WS_AUTH_MESSAGE_TIMEOUT="20",
        JWT_WS_MAX_PENDING="3",
        JWT_WS_TRUSTED_PROXIES='["127.0.0.1"]',
    )
    held = [await _silent(server, f"192.0.2.{i}") for i in range(3)]
    refused_socket = await _silent(server, "192.0.2.99")
    code, reason, _ = await closed_after(refused_socket)
    assert (code, reason) == (4029, "rate_limited; retry_after=20")
    await held[0].close()
    await asyncio.sleep(0.2)
    fourth = await _silent(server, "192.0.2.99")
    await fourth.send(json.dumps({"type": "authx.auth", "token": token()}))
    assert json.loads(await fourth.recv()) == {"user": "alice"}
    for ws in (*held, fourth):
        await ws.close()


async def test_a_flood_is_logged_once_per_address_and_never_as_an_error(
    live_server_factory: Any,
) -> None:
    server = serve(live_server_factory, "flood-log", JWT_WS_RATE_LIMIT="0.1", JWT_WS_RATE_BURST="1")
    await connect(server)
    outcomes = await asyncio.gather(*(bad(server) for _ in range(40)))
    assert all(refused(o) for o in outcomes)
    log = server.assert_log_clean("forged.bad.token")
    lines = [line for line in log.splitlines() if "authx:" in line]
    assert len([line for line in lines if "too many handshakes from 127.0.0.1" in line]) == 1
    assert [line for line in lines if line.startswith("WARNING")] == [
        line for line in lines if "too many handshakes" in line
    ]
    assert "ERROR" not in log
    assert "rejected WebSocket" not in log  # refused before the token was read


async def test_defaults_never_bother_a_normal_page(live_server_factory: Any) -> None:
    names = ["JWT_WS_RATE_LIMIT", "JWT_WS_RATE_BURST", "JWT_WS_FAILURE_COST"]
    names += ["JWT_WS_SUBJECT_RATE_LIMIT", "JWT_WS_SUBJECT_RATE_BURST"]
    defaults = {name: str(DEFAULTS[name].default) for name in names}
    server = serve(live_server_factory, "defaults", **defaults)
    # A page opening five sockets at once ...
    page = await asyncio.gather(*(connect(server) for _ in range(5)))
    assert [o.kind for o in page] == ["open"] * 5
    # ... then a tab that reconnects with an expired token, refreshes and reconnects,
    # ten times in a row (a laptop waking up with ten tabs: an expired token is not
    # a guess, it costs no extra).
    for _ in range(10):
        stale = await handshake(f"{server.ws}/ws?token={token(seconds=-5)}")
        assert stale.status == 401
        assert (await connect(server)).kind == "open"


async def test_limits_can_be_switched_off(live_server_factory: Any) -> None:
    server = serve(
        live_server_factory, "off", JWT_WS_RATE_LIMIT="off", JWT_WS_SUBJECT_RATE_LIMIT="off"
    )
    outcomes = await asyncio.gather(*(connect(server) for _ in range(80)))
    assert {o.kind for o in outcomes} == {"open"}


@pytest.mark.parametrize("fail_open", ["false", "true"])
async def test_a_store_outage_never_turns_into_a_rate_limit(
    live_server_factory: Any, fail_open: str
) -> None:
    from tests.conftest import free_port

    server = serve(
        live_server_factory,
        f"store-outage-{fail_open}",
        JWT_STORE_URL=f"redis://127.0.0.1:{free_port()}/0",
        JWT_STORE_FAIL_OPEN=fail_open,
        JWT_WS_RATE_LIMIT="0.1",
        JWT_WS_RATE_BURST="2",
    )
    first = await connect(server)
    if fail_open == "true":
        assert first.kind == "open"  # the shared bucket failed open, and so did revocation
    else:
        assert (first.status, first.body["reason"]) == (503, "store_unavailable")
    await connect(server)
    # The local bucket still counts while the shared one is away.
    assert refused(await connect(server))
    log = server.new_log()
    assert log.count("rate-limit store redis://127.0.0.1") == 1
    assert "ERROR" not in log
