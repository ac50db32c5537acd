"""One-time WebSocket tickets, in-process: issued once, redeemed once, never worth more
than the token they came from, and refused cleanly when the store misbehaves."""

from __future__ import annotations

import asyncio
import json
import re
import types
from typing import Any

import pytest
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

import authx.stores.memory
import authx.websocket.tickets
from authx import AuthX, AuthXConfig, TokenPayload
from authx.exceptions import InvalidTicketError, StoreUnavailableError
from authx.stores import MemoryStore
from tests.conftest import SECRET
from tests.websocket.asgi import Connection, connect

NOW = 1_700_000_000.5


def make_app(**overrides: Any) -> tuple[FastAPI, AuthX[Any]]:
    settings: dict[str, Any] = {"JWT_SECRET_KEY": SECRET, "JWT_WS_TOKEN_LOCATION": ["ticket"]}
    settings.update(overrides)
    auth = AuthX(config=AuthXConfig(**settings))
    app = FastAPI()
    auth.handle_errors(app)

    @app.websocket("/ws")
    async def echo(websocket: WebSocket, payload: TokenPayload = auth.WS_AUTH_REQUIRED) -> None:
        await websocket.accept()
        await websocket.send_json({"user": payload.sub, "scopes": payload.scopes})
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass

    return app, auth


async def redeem(app: FastAPI, ticket: str) -> Connection:
    connection = await connect(app, query=f"ticket={ticket}")
    if connection.kind == "open":
        await connection.disconnect()
    else:
        await asyncio.wait_for(connection.task, 5)
    return connection


def refused(connection: Connection) -> tuple[int | None, str, str]:
    assert connection.kind == "denied", connection.sent
    return connection.status, connection.body["error_type"], connection.body["message"]


async def ticket_for(
    auth: AuthX[Any], sub: str = "alice", keep_token: bool = True, **kw: Any
) -> str:
    token = auth.create_access_token(sub, **kw)
    payload = auth._decode_token(token)
    return await auth.create_ws_ticket(payload, token=token if keep_token else None)


# Issued and redeemed once ----------------------------------------------------------------------


@pytest.mark.parametrize("keep_token", [True, False])
async def test_ticket_opens_once_with_the_token_subject_and_scopes(keep_token: bool) -> None:
    app, auth = make_app()
    ticket = await ticket_for(auth, scopes=["chat", "read"], keep_token=keep_token)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", ticket)
    first = await redeem(app, ticket)
    assert first.messages == [{"user": "alice", "scopes": ["chat", "read"]}]
    assert refused(await redeem(app, ticket)) == (
        401,
        "InvalidTicketError",
        "Invalid or already used ticket",
    )


async def test_tickets_are_all_different() -> None:
    _, auth = make_app()
    assert len({await ticket_for(auth) for _ in range(20)}) == 20


async def test_ticket_lives_for_the_configured_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = types.SimpleNamespace(now=NOW)
    monkeypatch.setattr(authx.stores.memory, "time", types.SimpleNamespace(time=lambda: clock.now))
    app, auth = make_app(JWT_WS_TICKET_TTL=12)
    token = auth.create_access_token("alice")
    payload = auth._decode_token(token)
    early, late = await auth.create_ws_ticket(payload), await auth.create_ws_ticket(payload)
    clock.now = NOW + 12 - 0.001
    assert (await redeem(app, early)).kind == "open"
    clock.now = NOW + 12
    assert refused(await redeem(app, late))[:2] == (401, "InvalidTicketError")


# Never worth more than its token ---------------------------------------------------------------


@pytest.mark.parametrize("leeway", [0, 30])
async def test_ticket_of_an_expired_payload_is_refused_at_the_boundary(
    monkeypatch: pytest.MonkeyPatch, leeway: float
) -> None:
    clock = types.SimpleNamespace(now=NOW)
    fake_time = types.SimpleNamespace(time=lambda: clock.now)
    monkeypatch.setattr(authx.websocket.tickets, "time", fake_time)
    app, auth = make_app(JWT_DECODE_LEEWAY=leeway)
    payload = TokenPayload(sub="alice", exp=NOW, iat=NOW - 60, type="access")
    valid, expired = await auth.create_ws_ticket(payload), await auth.create_ws_ticket(payload)
    clock.now = NOW + leeway - 0.001
    assert (await redeem(app, valid)).messages[0]["user"] == "alice"
    clock.now = NOW + leeway
    assert refused(await redeem(app, expired)) == (401, "TokenExpiredError", "Token has expired")


async def test_ticket_without_expiry_does_not_expire_by_itself() -> None:
    app, auth = make_app(JWT_ACCESS_TOKEN_EXPIRES=None)
    ticket = await ticket_for(auth, keep_token=False)
    assert (await redeem(app, ticket)).kind == "open"


async def test_ticket_with_its_token_is_refused_once_the_token_is_revoked() -> None:
    app, auth = make_app()
    token = auth.create_access_token("alice")
    ticket = await auth.create_ws_ticket(auth._decode_token(token), token=token)
    await auth.revoke_token(token)
    assert refused(await redeem(app, ticket))[:2] == (401, "RevokedTokenError")


async def test_ticket_without_its_token_is_refused_once_the_subject_is_revoked() -> None:
    app, auth = make_app()
    ticket = await ticket_for(auth, keep_token=False)
    await asyncio.sleep(0)
    await auth.revoke_subject("alice")
    assert refused(await redeem(app, ticket))[:2] == (401, "RevokedTokenError")


# A store that misbehaves -------------------------------------------------------------------------


class BrokenStore(MemoryStore):
    def __init__(self, taken: Any = None, fail: str = "") -> None:
        super().__init__()
        self.taken = taken
        self.fail = fail

    async def put_ticket(self, ticket: str, data: dict[str, Any], ttl: float) -> None:
        if self.fail == "put":
            raise ConnectionError("down")
        await super().put_ticket(ticket, data, ttl)

    async def take_ticket(self, ticket: str) -> dict[str, Any] | None:
        if self.fail == "take":
            raise ConnectionError("down")
        if self.fail == "authx":
            raise InvalidTicketError("refused by the store")
        return self.taken  # type: ignore[no-any-return]


async def test_ticket_not_stored_is_not_handed_out() -> None:
    _, auth = make_app()
    auth.set_store(BrokenStore(fail="put"))
    with pytest.raises(StoreUnavailableError) as raised:
        await ticket_for(auth)
    assert raised.value.message == "Ticket store unavailable"


async def test_store_failing_to_take_is_a_503() -> None:
    app, auth = make_app()
    auth.set_store(BrokenStore(fail="take"))
    assert refused(await redeem(app, "any")) == (
        503,
        "StoreUnavailableError",
        "Ticket store unavailable",
    )


async def test_authx_error_from_the_store_is_kept() -> None:
    app, auth = make_app()
    auth.set_store(BrokenStore(fail="authx"))
    assert refused(await redeem(app, "any")) == (
        401,
        "InvalidTicketError",
        "refused by the store",
    )


CLAIMS = {"sub": "alice", "type": "access", "iat": NOW, "exp": None}


@pytest.mark.parametrize(
    "taken",
    [
        None,
        [],
        "claims",
        {},
        {"claims": None},
        {"claims": ["sub"]},
        {"claims": CLAIMS, "token": 7},
        {"claims": {**CLAIMS, "sub": None}},
        {"claims": {**CLAIMS, "scopes": "admin"}},
    ],
    ids=[
        "none",
        "list",
        "string",
        "empty",
        "claims-none",
        "claims-list",
        "token-not-a-string",
        "no-subject",
        "scopes-not-a-list",
    ],
)
async def test_malformed_ticket_data_is_an_invalid_ticket(taken: Any) -> None:
    app, auth = make_app()
    auth.set_store(BrokenStore(taken=taken))
    assert refused(await redeem(app, "any")) == (
        401,
        "InvalidTicketError",
        "Invalid or already used ticket",
    )


async def test_well_formed_ticket_data_opens() -> None:
    app, auth = make_app()
    auth.set_store(BrokenStore(taken={"claims": CLAIMS, "origin": None}))
    assert (await redeem(app, "any")).messages == [{"user": "alice", "scopes": None}]


class JSONStore(MemoryStore):
    """Keeps tickets as JSON text, as the SQLite and Redis stores do."""

    async def put_ticket(self, ticket: str, data: dict[str, Any], ttl: float) -> None:
        await super().put_ticket(ticket, {"json": json.dumps(data)}, ttl)

    async def take_ticket(self, ticket: str) -> dict[str, Any] | None:
        taken = await super().take_ticket(ticket)
        return None if taken is None else json.loads(taken["json"])  # type: ignore[no-any-return]


@pytest.mark.parametrize("keep_token", [True, False])
async def test_ticket_data_survives_a_store_that_keeps_json(keep_token: bool) -> None:
    app, auth = make_app()
    auth.set_store(JSONStore())
    ticket = await ticket_for(auth, scopes=["chat"], keep_token=keep_token)
    assert (await redeem(app, ticket)).messages == [{"user": "alice", "scopes": ["chat"]}]


@pytest.mark.parametrize("kept", [True, False])
async def test_ticket_with_its_token_goes_through_the_blocklist_again(kept: bool) -> None:
    """A ticket made with its token is checked like that token: a blocklisted token's
    ticket is refused; a ticket made from a payload alone has no token to look up."""
    app, auth = make_app()
    blocked: set[str] = set()
    auth.set_callback_token_blocklist(lambda token: token in blocked)
    token = auth.create_access_token("alice")
    ticket = await auth.create_ws_ticket(auth._decode_token(token), token=token if kept else None)
    blocked.add(token)
    outcome = await redeem(app, ticket)
    if kept:
        assert refused(outcome)[:2] == (401, "RevokedTokenError")
    else:
        assert outcome.kind == "open"
