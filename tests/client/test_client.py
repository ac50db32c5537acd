"""The Python client against a real uvicorn serving tests/apps/client_app.py.

Every behaviour of the shared client spec that a server can show: in-band refresh
on one connection, revocation, restarts, store outages, both rejection modes,
every transport, the send queue and close(). A few pure cases cover what the app
cannot produce (429 with Retry-After, bare HTTP statuses, unknown close codes).
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from authx._client_protocol import Backoff, Ending, Reconnection, from_close, from_denial
from authx.client import AuthError, AuthXClient, NotOpenError
from authx.close_codes import Action
from tests.client.conftest import (
    Account,
    Events,
    expired_token,
    forged_token,
    parsed,
    start_server,
)
from tests.conftest import LiveServer, free_port

Factory = Callable[..., LiveServer]
Login = Callable[[LiveServer], Any]


def client_for(server: LiveServer, account: Account, events: Events, **options: Any) -> AuthXClient:
    return AuthXClient(
        f"{server.ws}/stream", get_token=account.get_token, **events.callbacks(), **options
    )


async def first_messages(client: AuthXClient, count: int, timeout: float = 5.0) -> list[Any]:
    got: list[Any] = []
    async with asyncio.timeout(timeout):
        async for message in client:
            got.append(parsed(message))
            if len(got) == count:
                break
    return got


async def drain(client: AuthXClient) -> None:
    async for _ in client:
        pass


# -- a. expiry: refreshed in band, never dropped -----------------------------------------


async def test_stays_on_one_connection_across_expiries(
    live_server_factory: Factory, login: Login, events: Events
) -> None:
    server = start_server(live_server_factory, short_tokens=True)  # 3 s tokens, warned at 2 s
    account = await login(server)
    numbers: list[int] = []
    async with client_for(server, account, events) as client:
        started = time.monotonic()
        async with asyncio.timeout(15):
            async for message in client:
                data = parsed(message)
                if "n" in data:
                    numbers.append(data["n"])
                if time.monotonic() - started > 10:
                    break
    assert numbers == list(range(len(numbers)))  # one connection: n never restarts
    assert len(numbers) > 50
    assert len(account.given) - 1 >= 3  # the first token, then at least three refreshes
    assert events.count("open") == 1
    assert events.reconnects == []
    assert events.auth_errors == []


# -- b. revocation: stop, once ------------------------------------------------------------


async def test_revocation_stops_the_client(
    live_server_factory: Factory, login: Login, events: Events
) -> None:
    server = start_server(live_server_factory)
    account = await login(server)
    async with client_for(server, account, events) as client:
        assert (await first_messages(client, 1)) == [{"user": account.sub}]
        await account.post("/revoke-subject", sub=account.sub)
        with pytest.raises(AuthError) as raised:
            await asyncio.wait_for(drain(client), 5)
        error = raised.value
        assert (error.code, error.reason, error.action) == (4004, "token_revoked", Action.STOP)
        assert events.auth_errors == [error]
        await asyncio.sleep(1.0)  # time enough for a reconnection, if there were one
        assert events.count("open") == 1
        assert events.reconnects == []
        assert events.states[-1][0] == "closed"
        assert client.state == "closed"
        with pytest.raises(AuthError):
            await client.send("after the stop")
        with pytest.raises(AuthError):
            await client.wait_closed()
    assert len(events.auth_errors) == 1


# -- c. server restart: reconnects by itself with backoff ---------------------------------


@pytest.fixture
def restartable(live_server_factory: Factory) -> LiveServer:
    """A server of its own on a fixed port, so that it can be stopped and started again."""
    server = start_server(live_server_factory, port=free_port(), case="restart")
    if server.process is None or server.process.poll() is not None:
        server.start()
    return server


def assert_backoff(reconnects: list[Any], backoff: Backoff) -> None:
    """Attempts counted 1, 2, 3... with full-jitter delays under the growing cap."""
    attempts = [info.attempt for info in reconnects]
    assert attempts == list(range(1, len(attempts) + 1))
    for info in reconnects:
        assert 0 <= info.delay <= backoff.cap(info.attempt - 1)


async def test_reconnects_after_a_server_restart(
    restartable: LiveServer, login: Login, events: Events
) -> None:
    backoff = Backoff(initial=0.2, max=1.0)
    account = await login(restartable)
    async with client_for(restartable, account, events, backoff=backoff) as client:
        before = await first_messages(client, 3)
        assert before == [{"user": account.sub}, {"n": 0}, {"n": 1}]
        await asyncio.to_thread(restartable.stop)
        await events.until(lambda: len(events.reconnects) >= 3)  # 2 refused while down
        await asyncio.to_thread(restartable.start)
        async with asyncio.timeout(10):
            async for message in client:
                if parsed(message) == {"user": account.sub}:
                    break  # a new connection's first message
        assert parsed(await client.recv()) == {"n": 0}
    assert_backoff(events.reconnects, backoff)
    assert events.reconnects[0].code in (1001, 1006, 1012)  # going away / service restart
    assert {info.code for info in events.reconnects[1:]} == {1006}  # refused while down
    assert events.count("open") == 2
    assert events.auth_errors == []
    assert len(account.given) == 1  # the token was still good: no refresh needed


# -- d. store outage: retry 1013 with backoff, back by itself ----------------------------


@pytest.mark.parametrize("mode", ["close", "deny"])
async def test_store_outage_is_retried_until_it_ends(
    live_server_factory: Factory, login: Login, events: Events, mode: str
) -> None:
    server = start_server(live_server_factory, mode)
    account = await login(server)
    account.hand_out.append(await account.login())  # the refresh route needs the store too
    backoff = Backoff(initial=0.1, max=0.4)
    await account.post("/store", up=0)
    try:
        async with client_for(server, account, events, backoff=backoff) as client:
            await client.send("kept")  # sent to refused sockets ("close" mode) and queued again
            await events.until(lambda: len(events.reconnects) >= 3)
            assert client.state != "closed"
            await account.post("/store", up=1)
            got = await first_messages(client, 3)
            assert got[0] == {"user": account.sub}
            assert {"echo": "kept"} in got
    finally:
        await account.post("/store", up=1)
    refused = events.reconnects
    assert {(info.code, info.reason) for info in refused} == {(1013, "store_unavailable")}
    assert_backoff(refused, backoff)
    assert events.auth_errors == []


# -- e. both rejection modes, same decisions ----------------------------------------------

CASES: dict[str, tuple[Callable[[str], list[str]], list[Any], list[Any], int]] = {
    # first tokens handed out -> reconnections (code, reason, delay), stops, get_token calls
    "expired": (lambda sub: [expired_token(sub)], [(4002, "token_expired", 0.0)], [], 2),
    "expired_again": (
        lambda sub: [expired_token(sub), expired_token(sub)],
        [(4002, "token_expired", 0.0)],
        [(4002, "token_expired", Action.REFRESH)],
        2,
    ),
    "invalid": (lambda sub: [forged_token(sub)], [], [(4001, "invalid_token", Action.STOP)], 1),
}


@pytest.mark.parametrize("mode", ["close", "deny"])
@pytest.mark.parametrize("case", sorted(CASES))
async def test_refused_handshakes_lead_to_the_same_decisions_in_both_modes(
    live_server_factory: Factory, login: Login, events: Events, mode: str, case: str
) -> None:
    tokens, reconnects, stops, calls = CASES[case]
    server = start_server(live_server_factory, mode)
    account = await login(server)
    account.hand_out.extend(tokens(account.sub))
    async with client_for(server, account, events) as client:
        if stops:
            with pytest.raises(AuthError):
                await asyncio.wait_for(client.wait_closed(), 5)
        else:
            assert (await first_messages(client, 1)) == [{"user": account.sub}]
    assert [(i.code, i.reason, i.delay) for i in events.reconnects] == reconnects
    assert [(e.code, e.reason, e.action) for e in events.auth_errors] == stops
    assert {e.status for e in events.auth_errors} <= ({401} if mode == "deny" else {None})
    assert len(account.given) == calls


async def test_ticket_route_refusal_is_read_like_a_handshake_refusal(
    live_server_factory: Factory, login: Login, events: Events
) -> None:
    server = start_server(live_server_factory, "deny")
    account = await login(server)
    account.hand_out.append(expired_token(account.sub))  # the ticket route answers 401
    async with client_for(server, account, events, ticket_url="/ws-ticket") as client:
        assert (await first_messages(client, 1)) == [{"user": account.sub}]
    assert [(i.code, i.reason, i.delay) for i in events.reconnects] == [
        (4002, "token_expired", 0.0)
    ]
    assert len(account.given) == 2


async def test_get_token_failures_back_off_and_auth_error_stops(
    live_server_factory: Factory, login: Login, events: Events
) -> None:
    server = start_server(live_server_factory)
    account = await login(server)
    outcomes: list[Any] = [ConnectionError("refresh route down"), ConnectionError("still down")]

    async def get_token() -> str:
        if outcomes:
            raise outcomes.pop(0)
        return await account.get_token()

    backoff = Backoff(initial=0.05, max=0.1)
    options: dict[str, Any] = {"get_token": get_token, "backoff": backoff, **events.callbacks()}
    async with AuthXClient(f"{server.ws}/stream", **options) as client:
        assert (await first_messages(client, 1)) == [{"user": account.sub}]
    assert [(i.attempt, i.reason) for i in events.reconnects] == [
        (1, "get_token_failed"),
        (2, "get_token_failed"),
    ]

    stopped = Events()
    outcomes.append(AuthError(4001, "invalid_token"))  # the app: log in again
    options |= stopped.callbacks()
    async with AuthXClient(f"{server.ws}/stream", **options) as client:
        with pytest.raises(AuthError, match="invalid_token"):
            await asyncio.wait_for(client.wait_closed(), 5)
    assert [state for state, _ in stopped.states] == ["connecting", "closed"]
    assert len(stopped.auth_errors) == 1


async def test_on_message_receives_instead_of_iteration(
    live_server_factory: Factory, login: Login
) -> None:
    server = start_server(live_server_factory)
    account = await login(server)
    received: list[Any] = []
    enough = asyncio.Event()

    async def on_message(message: str | bytes) -> None:
        received.append(parsed(message))
        if len(received) == 3:
            enough.set()

    url = f"{server.ws}/stream"
    async with AuthXClient(url, get_token=account.get_token, on_message=on_message) as client:
        await asyncio.wait_for(enough.wait(), 5)
        with pytest.raises(RuntimeError, match="on_message"):
            await client.recv()
    await client.wait_closed()
    assert received[:3] == [{"user": account.sub}, {"n": 0}, {"n": 1}]


# -- f. every transport --------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["subprotocol", "query", "message", "ticket", "header"])
async def test_every_transport_connects_and_keeps_tokens_out_of_logs(
    live_server_factory: Factory,
    login: Login,
    events: Events,
    transport: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # "cookie" is a browser transport (HttpOnly cookie + Origin check): not offered here.
    caplog.set_level(logging.DEBUG, logger="authx.client")  # websockets' frames and headers
    server = start_server(live_server_factory)
    account = await login(server)
    ticket_url = "/ws-ticket" if transport == "ticket" else None
    options: dict[str, Any] = {"transport": transport, "ticket_url": ticket_url}
    async with client_for(server, account, events, **options) as client:
        assert (await first_messages(client, 1)) == [{"user": account.sub}]
        await client.send("ping")
        async with asyncio.timeout(5):
            async for message in client:
                if "echo" in parsed(message):
                    assert parsed(message) == {"echo": "ping"}
                    break
    assert events.count("open") == 1
    assert "> GET /stream" in caplog.text  # the wire log is on...
    for token in account.given:
        _header, payload, signature = token.split(".")
        for part in (payload[:12], signature[:12]):  # not even a frame log's truncated copy
            assert part not in caplog.text
    server.assert_log_clean(*account.given)


# -- g. close() and the send queue ---------------------------------------------------------


async def test_close_stops_for_good(
    live_server_factory: Factory, login: Login, events: Events
) -> None:
    server = start_server(live_server_factory)
    account = await login(server)
    client = client_for(server, account, events)
    await client.start()
    await asyncio.wait_for(client.wait_open(), 5)
    await client.close()
    assert [message async for message in client] == []  # iteration ends, no error
    await client.wait_closed()
    await asyncio.sleep(0.5)
    assert [state for state, _ in events.states] == ["connecting", "open", "closed"]
    assert events.states[-1][1].code == 1000
    with pytest.raises(NotOpenError):
        await client.send("after close")
    await client.close()  # idempotent


async def test_send_queues_while_reconnecting_and_drops_the_oldest(
    restartable: LiveServer, login: Login, events: Events
) -> None:
    account = await login(restartable)
    backoff = Backoff(initial=0.1, max=0.3)
    async with client_for(restartable, account, events, backoff=backoff, queue_limit=3) as client:
        await asyncio.wait_for(client.wait_open(), 5)
        await asyncio.to_thread(restartable.stop)
        await events.until(lambda: client.state != "open")
        for i in range(5):
            await client.send(f"m{i}")
        await asyncio.to_thread(restartable.start)
        echoes = []
        async with asyncio.timeout(10):
            async for message in client:
                if "echo" in parsed(message):
                    echoes.append(parsed(message)["echo"])
                    if echoes[-1] == "m4":
                        break
    assert echoes == ["m2", "m3", "m4"]  # the three newest, in order; m0 and m1 dropped


async def test_queue_reject_raises_while_not_connected(events: Events) -> None:
    url = f"ws://127.0.0.1:{free_port()}/stream"  # nobody listens there
    backoff = Backoff(initial=0.05, max=0.1)
    options: dict[str, Any] = {"get_token": "unused", "backoff": backoff, **events.callbacks()}
    async with AuthXClient(url, queue="reject", **options) as rejecting:
        await events.until(lambda: len(events.reconnects) >= 2)
        with pytest.raises(NotOpenError, match="reject"):
            await rejecting.send("hello")
        assert rejecting.state in ("connecting", "reconnecting")
    async with AuthXClient(url, **options) as queueing:
        await queueing.send("hello")  # queued, no error
    assert events.auth_errors == []


# -- what the app cannot show: pure decisions ------------------------------------------


@pytest.mark.parametrize(
    ("ending", "expected"),
    [
        (from_close(4029, "rate_limited; retry_after=3"), (4029, "rate_limited", "retry", 3.0)),
        (from_close(4999, "token_revoked"), (4999, "token_revoked", "stop", None)),  # own code
        (from_close(4001, ""), (4001, "invalid_token", "stop", None)),  # default row
        (from_close(1011, ""), (1011, "server_error", "retry", None)),
        (from_close(4321, "whatever"), (4321, "whatever", None, None)),  # unknown: backoff
        (from_close(1000, ""), (1000, "", None, None)),
        (
            from_denial(429, b'{"reason": "rate_limited"}', "7"),
            (4029, "rate_limited", "retry", 7.0),
        ),
        (from_denial(429, b"", None), (4029, "rate_limited", "retry", None)),
        (
            from_denial(429, b'{"reason": "too_many_connections"}', None),
            (4009, "too_many_connections", "stop", None),
        ),
        (from_denial(503, b"<html>", "2"), (1013, "store_unavailable", "retry", 2.0)),
        (from_denial(403, b"", None), (4001, "invalid_token", "refresh", None)),  # bare 403
        (from_denial(404, b"", None), (1006, "http_404", None, None)),
    ],
)
def test_close_and_denial_parsing(ending: Ending, expected: tuple[Any, ...]) -> None:
    assert (ending.code, ending.reason, ending.action, ending.retry_after) == expected


def test_reconnection_policy() -> None:
    policy = Reconnection(Backoff(initial=0.5, factor=2, max=3), uniform=lambda _, high: high)
    lost = from_close(1006, "")
    assert [policy.next(lost, False).delay for _ in range(5)] == [0.5, 1, 2, 3, 3]  # type: ignore[union-attr]
    assert policy.next(from_close(1013, "rate_limited; retry_after=4"), False).delay == 4.5  # type: ignore[union-attr]
    assert policy.next(lost, True).delay == 0.5  # type: ignore[union-attr]  # worked: reset
    expired = from_close(4002, "token_expired")
    assert policy.next(expired, False).renew  # type: ignore[union-attr]
    assert policy.next(expired, False) is None  # refused again: stop
    policy = Reconnection(Backoff(), uniform=lambda _, high: high)
    assert policy.next(expired, False).renew  # type: ignore[union-attr]
    assert policy.next(lost, False).delay == 0.5  # type: ignore[union-attr]
    assert policy.next(expired, False).renew  # type: ignore[union-attr]  # expired again later
    assert policy.next(from_close(4004, "token_revoked"), True) is None


def test_options_are_checked() -> None:
    url = "ws://127.0.0.1:1/ws"
    with pytest.raises(TypeError):
        AuthXClient(url, get_token="t", tranport="query")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="browser transport"):
        AuthXClient(url, get_token="t", transport="cookie")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ticket_url"):
        AuthXClient(url, get_token="t", transport="ticket")
    with pytest.raises(ValueError, match="ws://"):
        AuthXClient("http://127.0.0.1/ws?token=secret", get_token="t")
    with pytest.raises(ValueError, match="queue"):
        AuthXClient(url, get_token="t", queue="drop")  # type: ignore[arg-type]


def test_import_without_websockets_names_the_extra() -> None:
    code = "import sys; sys.modules['websockets'] = None; import authx.client"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert 'pip install "authx-ws[client]"' in result.stderr
