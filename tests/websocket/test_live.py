"""Live connections through a real uvicorn server: expiry, warning, in-band refresh,
revocation, limits and scopes over time."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from datetime import timedelta
from typing import Any

import pytest
import websockets

from authx import AuthX, AuthXConfig
from tests.conftest import SECRET
from tests.websocket.client import closed_after, handshake

APP = "tests.apps.live_app:app"
issuer = AuthX(AuthXConfig(JWT_SECRET_KEY=SECRET))


def token(sub: str = "alice", seconds: float = 60, **kwargs: Any) -> str:
    return issuer.create_access_token(uid=sub, expiry=timedelta(seconds=seconds), **kwargs)


def post(server, path: str) -> None:  # type: ignore[no-untyped-def]
    request = urllib.request.Request(server.http + path, method="POST")
    with urllib.request.urlopen(request) as response:
        assert response.status == 200


def get(server, path: str) -> Any:  # type: ignore[no-untyped-def]
    with urllib.request.urlopen(server.http + path) as response:
        return json.load(response)


@pytest.fixture
def server(live_server_factory):  # type: ignore[no-untyped-def]
    return live_server_factory(APP, JWT_SECRET_KEY=SECRET, JWT_WS_EXPIRY_WARNING="1")


@pytest.mark.parametrize("path", ["/ws", "/ws/push", "/ws/session"])
async def test_expired_token_closes_connection(server, path: str) -> None:  # type: ignore[no-untyped-def]
    t = token(seconds=2)
    exp = issuer._decode_token(t).expires_at
    assert exp is not None
    async with websockets.connect(f"{server.ws}{path}?token={t}") as ws:
        assert "Hello" in json.loads(await ws.recv())["message"]
        code, reason, at = await closed_after(ws)
    assert (code, reason) == (4002, "token_expired")
    assert exp - 0.05 <= at <= exp + 1.0
    server.assert_log_clean(t)


async def test_endpoint_blocked_in_receive_sees_a_disconnect(server) -> None:  # type: ignore[no-untyped-def]
    t = token(seconds=2)
    async with websockets.connect(f"{server.ws}/ws?token={t}") as ws:
        await ws.recv()
        await ws.send("hello")
        assert json.loads(await ws.recv())["echo"] == "hello"
        code, reason, _ = await closed_after(ws)
    assert (code, reason) == (4002, "token_expired")
    await asyncio.sleep(0.2)
    assert get(server, "/stats")["connections"] == 0
    server.assert_log_clean(t)


async def test_expiry_warning_arrives_on_time(server) -> None:  # type: ignore[no-untyped-def]
    t = token(seconds=2.5)
    exp = issuer._decode_token(t).expires_at
    assert exp is not None
    async with websockets.connect(f"{server.ws}/ws/session?token={t}") as ws:
        await ws.recv()
        warning = json.loads(await asyncio.wait_for(ws.recv(), 5))
        arrived = time.time()
        assert warning == {"type": "authx.expiring", "exp": pytest.approx(exp)}
        assert exp - 1.0 - 0.05 <= arrived <= exp - 1.0 + 0.5
        code, reason, _ = await closed_after(ws)
    assert (code, reason) == (4002, "token_expired")


async def test_inband_refresh_keeps_the_connection(server) -> None:  # type: ignore[no-untyped-def]
    first = token(seconds=2, scopes=["admin"])
    async with websockets.connect(f"{server.ws}/ws?token={first}") as ws:
        await ws.recv()
        fresh = token(seconds=30, scopes=["read"])
        await ws.send(json.dumps({"type": "authx.refresh", "token": fresh}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 5))
        new_exp = issuer._decode_token(fresh).expires_at
        assert ack == {"type": "authx.refreshed", "exp": pytest.approx(new_exp)}
        await asyncio.sleep(2.5)  # past the first token's expiry
        await ws.send("still here")
        reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
        # The seed-style endpoint's payload object was updated in place.
        assert reply["echo"] == "still here"
        assert reply["exp"] == pytest.approx(new_exp)
    server.assert_log_clean(first, fresh)


def _other_subject() -> str:
    return token("mallory")


def _refresh_token() -> str:
    return issuer.create_refresh_token(uid="alice")


@pytest.mark.parametrize(
    ("make_token", "expected"),
    [
        (_other_subject, (4001, "invalid_token")),
        (_refresh_token, (4001, "invalid_token")),
        (lambda: "garbage", (4001, "invalid_token")),
        (lambda: "revoked", (4004, "token_revoked")),
    ],
    ids=["other-subject", "refresh-token", "garbage", "revoked"],
)
async def test_bad_inband_refresh_closes(server, make_token, expected) -> None:  # type: ignore[no-untyped-def]
    t = token(seconds=30)
    offered = make_token()
    if offered == "revoked":
        offered = token(seconds=30)
        post(server, f"/revoke/token?token={offered}")
    async with websockets.connect(f"{server.ws}/ws?token={t}") as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "authx.refresh", "token": offered}))
        code, reason, _ = await closed_after(ws)
    assert (code, reason) == expected
    server.assert_log_clean(t, offered)


async def test_revoke_token_closes_exactly_its_holders(server) -> None:  # type: ignore[no-untyped-def]
    a, b = token("alice"), token("alice")
    async with (
        websockets.connect(f"{server.ws}/ws?token={a}") as a1,
        websockets.connect(f"{server.ws}/ws/session?token={a}") as a2,
        websockets.connect(f"{server.ws}/ws?token={b}") as b1,
    ):
        for ws in (a1, a2, b1):
            await ws.recv()
        started = time.time()
        post(server, f"/revoke/token?token={a}")
        for ws in (a1, a2):
            code, reason, at = await closed_after(ws)
            assert (code, reason) == (4004, "token_revoked")
            assert at - started < 1.0
        await b1.send("ok?")
        assert json.loads(await asyncio.wait_for(b1.recv(), 5))["echo"] == "ok?"
    outcome = await handshake(f"{server.ws}/ws?token={a}")
    assert (outcome.status, outcome.body["error_type"], outcome.body["reason"]) == (
        401,
        "RevokedTokenError",
        "token_revoked",
    )
    server.assert_log_clean(a, b)


async def test_revoke_subject_closes_only_that_subject(server) -> None:  # type: ignore[no-untyped-def]
    alice1, alice2, bob = token("alice"), token("alice"), token("bob")
    async with (
        websockets.connect(f"{server.ws}/ws?token={alice1}") as a1,
        websockets.connect(f"{server.ws}/ws/push?token={alice2}") as a2,
        websockets.connect(f"{server.ws}/ws?token={bob}") as b1,
    ):
        for ws in (a1, a2, b1):
            await ws.recv()
        assert get(server, "/connections?sub=alice")["count"] == 2
        post(server, "/revoke/subject?sub=alice")
        for ws in (a1, a2):
            code, reason, _ = await closed_after(ws)
            assert (code, reason) == (4004, "token_revoked")
        await b1.send("bob here")
        assert json.loads(await asyncio.wait_for(b1.recv(), 5))["user"] == "bob"
        assert get(server, "/connections?sub=alice")["count"] == 0
    await asyncio.sleep(1.1)  # tokens issued after the revocation second are valid
    outcome = await handshake(f"{server.ws}/ws?token={token('alice')}")
    assert outcome.kind == "open"
    server.assert_log_clean(alice1, alice2, bob)


async def test_scopes_follow_the_current_token(server) -> None:  # type: ignore[no-untyped-def]
    admin = token(scopes=["admin"])
    async with websockets.connect(f"{server.ws}/ws/session?token={admin}") as ws:
        assert json.loads(await ws.recv())["scopes"] == ["admin"]
        await ws.send("admin")
        assert json.loads(await ws.recv()) == {"echo": "admin", "scopes": ["admin"]}
        narrower = token(scopes=["read"])
        await ws.send(json.dumps({"type": "authx.refresh", "token": narrower}))
        assert json.loads(await ws.recv())["type"] == "authx.refreshed"
        await ws.send("admin")
        code, reason, _ = await closed_after(ws)
    assert (code, reason) == (4003, "insufficient_scope")
    server.assert_log_clean(admin, narrower)


@pytest.mark.parametrize(
    ("mode", "policy"), [("close", "reject"), ("deny", "reject"), ("close", "close_oldest")]
)
async def test_connection_limit(live_server_factory, mode: str, policy: str) -> None:  # type: ignore[no-untyped-def]
    server = live_server_factory(
        APP,
        JWT_SECRET_KEY=SECRET,
        JWT_WS_REJECTION=mode,
        JWT_WS_MAX_CONNECTIONS_PER_SUBJECT="2",
        JWT_WS_CONNECTION_LIMIT=policy,
    )
    t = token("limited")
    async with (
        websockets.connect(f"{server.ws}/ws?token={t}") as first,
        websockets.connect(f"{server.ws}/ws?token={t}") as second,
    ):
        await first.recv()
        await second.recv()
        third = await handshake(f"{server.ws}/ws?token={t}")
        if policy == "close_oldest":
            assert third.kind == "open"
            code, reason, _ = await closed_after(first)
            assert (code, reason) == (4009, "too_many_connections")
        elif mode == "close":
            assert (third.kind, third.code, third.reason) == (
                "closed",
                4009,
                "too_many_connections",
            )
        else:
            assert (third.status, third.body["error_type"], third.body["reason"]) == (
                429,
                "TooManyConnectionsError",
                "too_many_connections",
            )
        # Another subject is not affected.
        assert (await handshake(f"{server.ws}/ws?token={token('other')}")).kind == "open"
    server.assert_log_clean(t)


async def test_registry_empty_after_many_connections(server) -> None:  # type: ignore[no-untyped-def]
    tokens = [token(f"user{i % 7}") for i in range(20)]

    async def cycle(i: int) -> None:
        t = tokens[i % len(tokens)]
        async with websockets.connect(f"{server.ws}/ws?token={t}") as ws:
            await ws.recv()
            if i % 3 == 0:
                await ws.send("x")
                await ws.recv()

    for start in range(0, 300, 30):
        await asyncio.gather(*(cycle(i) for i in range(start, start + 30)))
    await asyncio.sleep(0.3)
    assert get(server, "/stats") == {
        "connections": 0,
        "subjects": 0,
        "tokens": 0,
        "timers": 0,
        "timer_slots": 0,
        "tasks": 0,
    }
