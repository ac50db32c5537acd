"""The live registry under many connections, driven in-process at the ASGI level."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from typing import Any

import pytest
from fastapi import Depends, FastAPI, WebSocket, WebSocketDisconnect

from authx import AuthX, AuthXConfig, TokenPayload
from authx.exceptions import StoreUnavailableError
from authx.stores import MemoryStore, RevocationEvent
from authx.token import create_token
from authx.websocket.session import WebSocketSession
from tests.conftest import SECRET
from tests.websocket.asgi import connect as ws_connect
from tests.websocket.asgi import open_connection, scope_for


def make_app() -> tuple[FastAPI, AuthX[Any]]:
    app = FastAPI()
    auth = AuthX(config=AuthXConfig(JWT_SECRET_KEY=SECRET, JWT_WS_EXPIRY_WARNING=30))
    auth.handle_errors(app)

    @app.websocket("/ws")
    async def echo(
        websocket: WebSocket, payload: TokenPayload = Depends(auth._ws_auth_required)
    ) -> None:
        await websocket.accept()
        if websocket.query_params.get("end") == "app":
            await websocket.close()
            return
        await websocket.send_json({"user": payload.sub})
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass

    return app, auth


async def connect(app: FastAPI, query: str) -> tuple[asyncio.Queue[Any], list[Any], Any]:
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    outbox: list[Any] = []
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "root_path": "",
        "query_string": query.encode(),
        "headers": [],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
    }
    inbox.put_nowait({"type": "websocket.connect"})
    sent = asyncio.Event()

    async def send(message: Any) -> None:
        outbox.append(message)
        sent.set()

    task = asyncio.get_running_loop().create_task(app(scope, inbox.get, send))
    task.add_done_callback(lambda _: sent.set())
    ends = ("websocket.send", "websocket.close", "websocket.http.response.body")
    while not any(m["type"] in ends for m in outbox):
        if task.done():
            task.result()  # the app failed: its error now, not a timeout later
            raise AssertionError(f"the app ended without answering: {outbox}")
        sent.clear()
        await asyncio.wait_for(sent.wait(), 5)
    return inbox, outbox, task


async def test_ten_thousand_cycles_leave_nothing_behind() -> None:
    app, auth = make_app()
    tokens = [auth.create_access_token(uid=f"user{i}") for i in range(50)]
    for batch in range(100):
        connections = await asyncio.gather(
            *(
                connect(app, f"token={tokens[i % 50]}" + ("&end=app" if i % 4 == 0 else ""))
                for i in range(batch * 100, batch * 100 + 100)
            )
        )
        assert auth.live_stats()["connections"] == sum(
            1 for _, outbox, _ in connections if outbox[-1]["type"] == "websocket.send"
        )
        if batch % 10 == 9:
            # Server-side closes: revoke one subject of the batch.
            await auth.revoke_subject("user1")
        for inbox, _, _ in connections:
            inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await asyncio.gather(*(task for _, _, task in connections))
    await asyncio.sleep(0)
    assert auth.live_stats() == {
        "connections": 0,
        "subjects": 0,
        "tokens": 0,
        "timers": 0,
        "timer_slots": 0,
        "tasks": 0,
    }
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, WebSocketSession)]


async def test_timers_are_armed_while_open_and_cancelled_on_close() -> None:
    app, auth = make_app()
    token = auth.create_access_token(uid="alice")
    inbox, outbox, task = await connect(app, f"token={token}")
    assert outbox[-1]["type"] == "websocket.send"
    # One expiry timer and one warning timer for the open connection.
    assert auth.live_stats()["timers"] == 2
    assert [s.sub for s in auth.active_connections()] == ["alice"]
    inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await task
    assert auth.live_stats()["timers"] == 0
    assert auth.active_connections("alice") == []


# Revocation closes every session it concerns -----------------------------------------------


class PublishFails:
    """A memory store whose ``publish`` always fails: no event echoes back to this process.

    With the plain memory store, the published event comes back to the registry
    and a second pass could close sessions the first one missed.
    """

    url = "redis://:hunter2@store.test:6379/0"

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.published = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def publish(self, event: RevocationEvent) -> None:
        self.published += 1
        raise ConnectionError("store.test: connection refused")


class WritesFail(PublishFails):
    """A store that cannot record a revocation at all."""

    async def revoke_token(self, jti: str, expires_at: float) -> None:
        raise ConnectionError("store.test: connection refused")

    async def revoke_subject(self, sub: str, before: float, expires_at: float) -> None:
        raise ConnectionError("store.test: connection refused")


def closes(outbox: list[Any]) -> list[tuple[int, str]]:
    return [(m["code"], m["reason"]) for m in outbox if m["type"] == "websocket.close"]


async def end_all(*connections: tuple[asyncio.Queue[Any], list[Any], Any]) -> None:
    for inbox, _, _ in connections:
        inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await asyncio.gather(*(task for _, _, task in connections))


@pytest.mark.parametrize("store_kind", ["memory", "publish-fails"])
async def test_subject_revocation_closes_every_session(
    store_kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    app, auth = make_app()
    store = MemoryStore() if store_kind == "memory" else PublishFails()
    auth.set_store(store)  # type: ignore[arg-type]
    tokens = [auth.create_access_token(uid="alice") for _ in range(4)]
    # Five sessions of alice (two share a token), and one of bob.
    alice = [await connect(app, f"token={t}") for t in [*tokens, tokens[0]]]
    bob = await connect(app, f"token={auth.create_access_token(uid='bob')}")
    assert len(auth.active_connections("alice")) == 5

    with caplog.at_level(logging.INFO, logger="authx"):
        await auth.revoke_subject("alice")

    for _, outbox, _ in alice:
        assert closes(outbox) == [(4004, "token_revoked")]
    assert closes(bob[1]) == []
    assert auth.active_connections("alice") == []
    assert [s.sub for s in auth.active_connections()] == ["bob"]
    assert "closed 5 connection(s) after a subject revocation" in caplog.text
    if isinstance(store, PublishFails):
        assert store.published == 1
        assert "could not publish a revocation on redis://:***@store.test:6379/0" in caplog.text
        assert "hunter2" not in caplog.text
    # The revocation holds for new handshakes too.
    again = await connect(app, f"token={tokens[1]}")
    assert (again[1][-1]["type"], again[1][0]["status"]) == ("websocket.http.response.body", 401)
    await end_all(*alice, bob)
    assert auth.live_stats()["connections"] == 0


@pytest.mark.parametrize("store_kind", ["memory", "publish-fails"])
async def test_token_revocation_closes_every_holder(store_kind: str) -> None:
    app, auth = make_app()
    auth.set_store(MemoryStore() if store_kind == "memory" else PublishFails())  # type: ignore[arg-type]
    revoked, kept = auth.create_access_token(uid="alice"), auth.create_access_token(uid="alice")
    holders = [await connect(app, f"token={revoked}") for _ in range(3)]
    other = await connect(app, f"token={kept}")
    await auth.revoke_token(revoked)
    for _, outbox, _ in holders:
        assert closes(outbox) == [(4004, "token_revoked")]
    assert closes(other[1]) == []
    assert len(auth.active_connections("alice")) == 1
    await end_all(*holders, other)


@pytest.mark.parametrize("revoke", ["subject", "token"])
async def test_unrecorded_revocation_fails_and_closes_nothing(
    revoke: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A revocation the store could not record must not look like a success."""
    app, auth = make_app()
    store = WritesFail()
    auth.set_store(store)  # type: ignore[arg-type]
    token = auth.create_access_token(uid="alice")
    sessions = [await connect(app, f"token={token}") for _ in range(3)]
    revocation = auth.revoke_subject("alice") if revoke == "subject" else auth.revoke_token(token)
    with pytest.raises(StoreUnavailableError):
        await revocation
    assert all(closes(outbox) == [] for _, outbox, _ in sessions)
    assert len(auth.active_connections("alice")) == 3
    assert store.published == 0
    assert "revocation store redis://:***@store.test:6379/0 unavailable (ConnectionError)" in (
        caplog.text
    )
    assert "hunter2" not in caplog.text
    await end_all(*sessions)


# Limits, refreshes and counts, in-process --------------------------------------------------------


def limited_app(policy: str, limit: int = 2) -> tuple[FastAPI, AuthX[Any]]:
    app = FastAPI()
    auth = AuthX(
        config=AuthXConfig(
            JWT_SECRET_KEY=SECRET,
            JWT_WS_MAX_CONNECTIONS_PER_SUBJECT=limit,
            JWT_WS_CONNECTION_LIMIT=policy,
            JWT_DECODE_LEEWAY=300,
        )
    )
    auth.handle_errors(app)

    @app.websocket("/ws")
    async def session_endpoint(session: WebSocketSession = auth.WS_SESSION) -> None:
        await session.accept()
        await session.send_json({"user": session.sub})
        try:
            while True:
                await session.send_json({"echo": await session.receive_text()})
        except WebSocketDisconnect:
            pass

    return app, auth


async def test_limit_rejects_the_connection_over_it() -> None:
    app, auth = limited_app("reject")
    token = auth.create_access_token(uid="alice")
    first, second = (
        await ws_connect(app, query=f"token={token}"),
        await ws_connect(app, query=f"token={token}"),
    )
    third = await ws_connect(app, query=f"token={token}")
    assert (third.status, third.body) == (
        429,
        {
            "message": "Too many connections",
            "error_type": "TooManyConnectionsError",
            "reason": "too_many_connections",
        },
    )
    other = await ws_connect(app, query=f"token={auth.create_access_token(uid='bob')}")
    assert other.kind == "open"
    assert [first.kind, second.kind] == ["open", "open"]
    assert first.close is None
    assert second.close is None
    assert len(auth.active_connections("alice")) == 2
    for connection in (first, second, other):
        await connection.disconnect()


@pytest.mark.parametrize("limit", [1, 3])
async def test_limit_closes_only_the_oldest(limit: int) -> None:
    app, auth = limited_app("close_oldest", limit)
    token = auth.create_access_token(uid="alice")
    opened = [await ws_connect(app, query=f"token={token}") for _ in range(limit)]
    newest = await ws_connect(app, query=f"token={token}")
    await asyncio.sleep(0)
    assert newest.kind == "open"
    assert opened[0].close == (4009, "too_many_connections")
    assert all(c.close is None for c in opened[1:])
    assert len(auth.active_connections("alice")) == limit
    for connection in [*opened, newest]:
        await connection.disconnect()
    await asyncio.sleep(0)
    assert auth.live_stats() == dict.fromkeys(auth.live_stats(), 0)


async def test_subject_revocation_spares_tokens_issued_after_it() -> None:
    app, auth = limited_app("reject", limit=10)
    old = auth.create_access_token(uid="alice")
    later = create_token("alice", SECRET, issued=time.time() + 100, type="access")
    old_connection = await ws_connect(app, query=f"token={old}")
    later_connection = await ws_connect(app, query=f"token={later}")
    await auth.revoke_subject("alice")
    assert old_connection.close == (4004, "token_revoked")
    assert later_connection.close is None
    assert [s.sub for s in auth.active_connections("alice")] == ["alice"]
    await later_connection.disconnect()
    await old_connection.disconnect()  # the client's answer to the close


async def test_refreshed_session_is_revoked_by_its_new_token_only() -> None:
    app, auth = limited_app("reject")
    first, second = auth.create_access_token(uid="alice"), auth.create_access_token(uid="alice")
    connection = await ws_connect(app, query=f"token={first}")
    await connection.send_text(json.dumps({"type": "authx.refresh", "token": second}))
    async with asyncio.timeout(5):
        while len(connection.messages) < 2:
            await asyncio.sleep(0.01)
    assert connection.messages[1]["type"] == "authx.refreshed"
    assert auth.live_stats()["tokens"] == 1
    await auth.revoke_token(first)
    assert connection.close is None
    await auth.revoke_token(second)
    assert connection.close == (4004, "token_revoked")
    await connection.disconnect()  # the client's answer to the close
    assert auth.live_stats()["connections"] == 0


async def test_live_stats_count_sessions_subjects_tokens_and_timers() -> None:
    app, auth = make_app()  # with an expiry warning: two timers per session
    alice = auth.create_access_token(uid="alice")
    connections = [
        await connect(app, f"token={t}")
        for t in (alice, alice, auth.create_access_token(uid="bob"))
    ]
    stats = auth.live_stats()
    assert stats == {
        "connections": 3,
        "subjects": 2,
        "tokens": 2,
        "timers": 6,
        "timer_slots": stats["timer_slots"],
        "tasks": 0,
    }
    # Tokens made within one 100 ms slot share their timers: two slots or a few more.
    assert 2 <= stats["timer_slots"] <= 6
    assert sorted(s.sub for s in auth.active_connections()) == ["alice", "alice", "bob"]
    await end_all(*connections)
    assert auth.live_stats() == dict.fromkeys(stats, 0)


# Subject events at their boundaries, and sessions that end without a close ----------------------


def signed_without_iat(sub: str) -> str:
    """An access token with no ``iat`` claim (AuthX never writes one, another issuer may)."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(b'{"alg":"HS256","typ":"JWT"}')
    body = b64(json.dumps({"sub": sub, "jti": f"{sub}-no-iat", "type": "access"}).encode())
    signature = hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


async def test_subject_event_covers_the_issue_second_itself_and_unknown_issue_times() -> None:
    app, auth = limited_app("reject", limit=10)
    store = await auth.get_store()
    token = auth.create_access_token(uid="alice")
    iat = auth._decode_token(token).iat
    assert isinstance(iat, int)
    later = create_token("alice", SECRET, issued=iat + 1, type="access")
    at_before = await ws_connect(app, query=f"token={token}")
    after_before = await ws_connect(app, query=f"token={later}")
    unknown = await ws_connect(app, query=f"token={signed_without_iat('alice')}")
    assert [c.kind for c in (at_before, after_before, unknown)] == ["open"] * 3
    # As another process would publish it: revoked up to (and including) the issue second.
    await store.publish(RevocationEvent("subject", "alice", before=float(iat)))
    assert at_before.close == (4004, "token_revoked")
    assert unknown.close == (4004, "token_revoked")
    assert after_before.close is None
    for connection in (at_before, after_before, unknown):
        await connection.disconnect()


async def test_subject_event_without_a_time_closes_every_session_of_the_subject() -> None:
    app, auth = limited_app("reject", limit=10)
    store = await auth.get_store()
    later = create_token("alice", SECRET, issued=time.time() + 100, type="access")
    connections = [
        await ws_connect(app, query=f"token={t}")
        for t in (auth.create_access_token(uid="alice"), later)
    ]
    other = await ws_connect(app, query=f"token={auth.create_access_token(uid='bob')}")
    await store.publish(RevocationEvent("subject", "alice"))
    assert [c.close for c in connections] == [(4004, "token_revoked")] * 2
    assert other.close is None
    for connection in (*connections, other):
        await connection.disconnect()


async def test_server_closes_leave_no_task_behind() -> None:
    app, auth = make_app()
    token = auth.create_access_token(uid="alice")
    connections = [await connect(app, f"token={token}") for _ in range(3)]
    await auth.revoke_token(token)
    await asyncio.sleep(0)
    await end_all(*connections)
    assert auth.live_stats() == dict.fromkeys(auth.live_stats(), 0)


async def test_endpoint_returning_without_a_close_frees_its_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = FastAPI()
    auth = AuthX(config=AuthXConfig(JWT_SECRET_KEY=SECRET))

    @app.websocket("/ws")
    async def brief(session: WebSocketSession = auth.WS_SESSION) -> None:
        await session.accept()
        await session.send_json({"user": session.sub, "token": session.token})

    token = auth.create_access_token(uid="alice")
    connection = await ws_connect(app, query=f"token={token}")
    assert connection.messages == [{"user": "alice", "token": token}]
    await asyncio.wait_for(connection.task, 5)
    await asyncio.sleep(0)
    assert auth.live_stats() == dict.fromkeys(auth.live_stats(), 0)
    # The clean-up ran to its end: no error from a done-callback.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_refresh_to_a_token_without_jti_leaves_no_index_entry() -> None:
    app, auth = limited_app("reject")
    first = auth.create_access_token(uid="alice")
    without_jti = create_token("alice", SECRET, type="access", data={"jti": None})
    connection = await ws_connect(app, query=f"token={first}")
    await connection.send_text(json.dumps({"type": "authx.refresh", "token": without_jti}))
    async with asyncio.timeout(5):
        while len(connection.messages) < 2:
            await asyncio.sleep(0.01)
    assert connection.messages[1]["type"] == "authx.refreshed"
    assert auth.live_stats()["tokens"] == 0
    await connection.disconnect()
    assert auth.live_stats() == dict.fromkeys(auth.live_stats(), 0)


async def test_session_created_after_a_scope_check_keeps_requiring_the_scopes() -> None:
    """ws_scopes_required before WS_SESSION: the session made later inherits the requirement."""
    app = FastAPI()
    auth = AuthX(config=AuthXConfig(JWT_SECRET_KEY=SECRET, JWT_WS_ENFORCE_LIFETIME=False))
    auth.handle_errors(app)

    @app.websocket("/ws")
    async def admin(
        payload: TokenPayload = auth.ws_scopes_required("admin"),
        session: WebSocketSession = auth.WS_SESSION,
    ) -> None:
        await session.accept()
        await session.send_json({"user": payload.sub})
        try:
            while True:
                await session.send_json({"echo": await session.receive_text()})
        except WebSocketDisconnect:
            pass

    admin_token = auth.create_access_token(uid="alice", scopes=["admin"])
    narrower = auth.create_access_token(uid="alice", scopes=["read"])
    connection = await ws_connect(app, query=f"token={admin_token}")
    await connection.send_text(json.dumps({"type": "authx.refresh", "token": narrower}))
    await connection.wait_for("websocket.close")
    assert connection.close is not None
    assert connection.close[0] == 4003
    await connection.disconnect()


async def test_session_is_warned_then_closed_at_its_token_expiry() -> None:
    app = FastAPI()
    auth = AuthX(config=AuthXConfig(JWT_SECRET_KEY=SECRET, JWT_WS_EXPIRY_WARNING=0.2))

    @app.websocket("/ws")
    async def session_endpoint(session: WebSocketSession = auth.WS_SESSION) -> None:
        await session.accept()
        await session.send_json({"user": session.sub})
        try:
            while True:
                await session.receive_text()
        except WebSocketDisconnect:
            pass

    token = create_token("alice", SECRET, type="access", expiry=time.time() + 0.4)
    connection = await ws_connect(app, query=f"token={token}")
    await connection.wait_for("websocket.close", timeout=3)
    assert connection.close == (4002, "token_expired")
    assert [m["type"] for m in connection.messages[1:]] == ["authx.expiring"]
    await connection.disconnect()
    assert auth.live_stats() == dict.fromkeys(auth.live_stats(), 0)


# Many closes at once: the sweep, and closes written before the call returns -----------------


async def test_tokens_expiring_together_are_closed_in_the_sweep() -> None:
    app, auth = limited_app("reject", limit=1000)
    connections = [
        await ws_connect(app, query=f"token={auth.create_access_token(uid=f'user{i}')}")
        for i in range(300)
    ]
    slots = list(auth._live.expiries._slots.values())
    assert len(slots) <= 3  # tokens of the same second share one slot (or two, at its edge)
    for slot in slots:
        assert slot.handle is not None
        handle = slot.handle
        handle._run()  # what the loop does when the slot ends: every member expires
        handle.cancel()
    # Queued, not yet written: nothing runs inside the timer callback.
    assert auth.live_stats()["tasks"] == 300
    assert all(c.close is None for c in connections)
    async with asyncio.timeout(5):
        while auth.live_stats()["tasks"]:
            await asyncio.sleep(0)
    assert [c.close for c in connections] == [(4002, "token_expired")] * 300
    assert auth.active_connections() == []
    for connection in connections:
        await connection.disconnect()
    assert auth.live_stats() == dict.fromkeys(auth.live_stats(), 0)


async def test_an_expiry_close_waiting_in_the_sweep_spares_a_refreshed_session() -> None:
    app, auth = limited_app("reject")
    connection = await ws_connect(app, query=f"token={auth.create_access_token(uid='alice')}")
    [session] = auth.active_connections()
    assert session._timer is not None
    auth._live.expiries.cancel(session._timer, session)  # the slot fired:
    session.expire()
    session.schedule()  # then a refresh succeeded: a new deadline
    await asyncio.sleep(0.05)
    assert connection.close is None
    assert auth.live_stats()["tasks"] == 0
    assert [s.sub for s in auth.active_connections()] == ["alice"]
    await connection.disconnect()


async def test_revocation_waits_for_a_close_the_transport_could_not_take_at_once() -> None:
    """The frames are written inside the call; a ``send`` that waits is awaited by it."""
    app, auth = limited_app("reject", limit=10)
    token = auth.create_access_token(uid="alice")
    quick = await ws_connect(app, query=f"token={token}")
    scope = scope_for(query=f"token={token}")
    slow = await open_connection(app, scope)
    await slow.wait_for("websocket.send")
    [slow_session] = [s for s in auth.active_connections() if s.websocket.scope is scope]
    transport_send = slow_session._raw_send
    gate = asyncio.Event()

    async def send_that_waits(message: dict[str, Any]) -> None:
        if message["type"] == "websocket.close":
            await gate.wait()
        await transport_send(message)

    slow_session._raw_send = send_that_waits
    revocation = asyncio.create_task(auth.revoke_subject("alice"))
    await asyncio.sleep(0.05)
    assert quick.close == (4004, "token_revoked")  # written at once
    assert not revocation.done()  # still waiting for the slow one
    gate.set()
    await asyncio.wait_for(revocation, 5)
    assert slow.close == (4004, "token_revoked")
    await quick.disconnect()
    await slow.disconnect()
    assert auth.live_stats() == dict.fromkeys(auth.live_stats(), 0)


async def test_a_transport_failing_a_revocation_close_spares_no_other_session() -> None:
    app, auth = limited_app("reject", limit=10)
    token = auth.create_access_token(uid="alice")
    connections = [await ws_connect(app, query=f"token={token}") for _ in range(3)]
    broken = auth.active_connections()[1]

    async def send_that_fails(message: dict[str, Any]) -> None:
        raise ValueError("transport bug")

    broken._raw_send = send_that_fails
    with pytest.raises(ValueError, match="transport bug"):
        await auth.revoke_subject("alice")
    revoked = (4004, "token_revoked")
    assert [c.close for c in connections] == [revoked, None, revoked]
    assert auth.active_connections() == []
    for connection in connections:
        await connection.disconnect()
