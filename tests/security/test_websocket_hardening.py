"""The hardening issue's WebSocket and HTTP cases, each under a live uvicorn server:
dependency pairs, in-band refresh against the endpoint's scopes and the blocklist,
subject revocation of tokens without ``iat``, tickets of blocklisted tokens, deeply
nested JSON in messages and bodies, and the subject getter returning None."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any
from urllib.parse import quote

import pytest
import websockets

from tests.conftest import LiveServer
from tests.security.corpus import (
    DEPTH,
    DROP,
    ISSUER,
    claims,
    forge,
    genuine,
    respellable,
    respellings,
)
from tests.security.entries import (
    LogWatch,
    Seen,
    http_get,
    http_post,
    leaks,
    log_errors,
    secrets_of,
    ws_open,
    ws_refresh,
    ws_send_after_open,
)
from tests.websocket.client import closed_after


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def assert_clean(watch: LogWatch, *tokens: str) -> None:
    """No ERROR / Traceback line since ``watch`` started, and none of ``tokens``."""
    log = "".join(watch.read().values())
    errors = log_errors(log)
    assert not errors, f"server logged errors:\n{log}"
    for token in tokens:
        for secret in secrets_of(token):
            assert secret not in log, f"a token leaked into the server log:\n{log}"


#: The reason token each close code here stands for (authx.close_codes' defaults).
CLOSE_REASONS = {4001: "invalid_token", 4003: "insufficient_scope", 4004: "token_revoked"}


def assert_refused(seen: Seen, code: int, *tokens: str, reason: str | None = None) -> None:
    """Refused with ``code`` and ``reason`` (by default, the close code's reason token;
    an HTTP status's reason is checked only when given)."""
    assert not seen.accepted, seen
    assert seen.code == code, seen
    expected = reason or CLOSE_REASONS.get(code)
    if expected is not None:
        assert seen.reason == expected, seen
    for token in tokens:
        assert not leaks(seen, secrets_of(token)), seen


# 4. Every pair of WebSocket dependencies on one endpoint ---------------------------

PAIRS = [
    "auth-scopes",
    "scopes-auth",
    "session-scopes",
    "scopes-session",
    "auth-session",
    "session-auth",
    "auth-body",
    "scopes-body",
    "session-body",
    "body-body",
]


def _open_pair(server: LiveServer, path: str, token: str, transport: str) -> Any:
    if transport == "query":
        return websockets.connect(f"{server.ws}{path}?token={token}")
    if transport == "subprotocol":
        return websockets.connect(
            f"{server.ws}{path}", subprotocols=[f"authx.bearer.{token}", "chat.v1"]
        )
    return websockets.connect(f"{server.ws}{path}")


async def _present_pair(server: LiveServer, path: str, token: str, transport: str) -> Seen:
    if transport == "query":
        return await ws_open(f"{server.ws}{path}?token={token}")
    if transport == "subprotocol":
        return await ws_open(
            f"{server.ws}{path}", subprotocols=[f"authx.bearer.{token}", "chat.v1"]
        )
    return await ws_open(
        f"{server.ws}{path}", first=json.dumps({"type": "authx.auth", "token": token})
    )


@pytest.mark.parametrize("transport", ["query", "subprotocol", "message"])
@pytest.mark.parametrize("pair", PAIRS)
async def test_dependency_pair_sees_one_payload(
    server: LiveServer, pair: str, transport: str
) -> None:
    """Both dependencies of the endpoint hold the connection's payload, before and after
    an in-band refresh; a token lacking the scope is refused once, cleanly."""
    watch = LogWatch(server)
    path = f"/ws/pair/{pair}"
    sub = unique("pair")
    token = genuine(sub, scopes=["read"])
    wider = genuine(sub, scopes=["read", "write"])
    async with _open_pair(server, path, token, transport) as ws:
        if transport == "message":
            await ws.send(json.dumps({"type": "authx.auth", "token": token}))
        hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert hello == {"subs": [sub, sub], "scopes": [["read"], ["read"]]}
        await ws.send("one")
        echo = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert echo == {"echo": "one", "subs": [sub, sub], "scopes": [["read"], ["read"]]}
        await ws.send(json.dumps({"type": "authx.refresh", "token": wider}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert ack["type"] == "authx.refreshed"
        await ws.send("two")
        echo = json.loads(await asyncio.wait_for(ws.recv(), 5))
        both = [["read", "write"], ["read", "write"]]
        assert echo == {"echo": "two", "subs": [sub, sub], "scopes": both}
    deny = transport != "message"
    if "scopes" in pair:
        narrow = genuine(sub, scopes=["write"])
        seen = await _present_pair(server, path, narrow, transport)
        assert_refused(seen, 403 if deny else 4003, narrow)
        assert seen.error_type in (None, "InsufficientScopeError")
    garbage = forge(payload=claims(sub), signer=None)
    seen = await _present_pair(server, path, garbage, transport)
    assert_refused(seen, 401 if deny else 4001, garbage)
    log = "".join(watch.read().values())
    assert not log_errors(log), log
    # Refused once: one rejection record per refused handshake, not one per dependency.
    refused = 2 if "scopes" in pair else 1
    assert log.count("authx: rejected WebSocket") == refused, log


# 5. In-band refresh must pass every check the handshake passed ----------------------


#: case -> the close code of the refresh, or None when the refresh is accepted.
REFRESH_CASES = {
    "read-only": 4003,
    "admin-without-wildcard": 4003,
    "admin-sub-scope": 4003,
    "no-scopes": 4003,
    "blocklisted": 4004,
    "blocklisted-respelled": 4001,
    "refresh-type": 4001,
    "other-subject": 4001,
    "admin-wildcard": None,
}


async def _offered(server: LiveServer, case: str, sub: str) -> list[str]:
    scopes = {
        "read-only": ["read"],
        "admin-without-wildcard": ["admin"],
        "admin-sub-scope": ["admin:users"],
        "admin-wildcard": ["admin:*"],
    }
    if case in scopes:
        return [genuine(sub, scopes=scopes[case])]
    if case == "no-scopes":
        return [genuine(sub)]
    if case == "refresh-type":
        return [ISSUER.create_refresh_token(sub, scopes=["admin:*"])]
    if case == "other-subject":
        return [genuine(unique("mallory"), scopes=["admin:*"])]
    token = respellable(sub, scopes=["admin:*"])
    await http_post(server, f"/test/revoke?token={token}")
    if case == "blocklisted":
        return [token]
    return [variant for _, variant in respellings(token)]


@pytest.mark.parametrize("case", list(REFRESH_CASES))
async def test_inband_refresh_on_scoped_endpoint(server: LiveServer, case: str) -> None:
    """On ``ws_scopes_required("admin:*")`` (a literal requirement: the token must hold
    ``admin:*``) a refresh to a token without it closes 4003; a blocklisted token closes
    4004; a respelled blocklisted, refresh-type or other subject's token closes 4001; a
    token holding ``admin:*`` is accepted."""
    watch = LogWatch(server)
    sub = unique("admin")
    opener = genuine(sub, scopes=["admin:*"])
    expected = REFRESH_CASES[case]
    offered = await _offered(server, case, sub)
    for token in offered:
        seen = await ws_refresh(server, token, path="/ws/admin", opener=opener)
        if expected is None:
            assert seen.accepted, seen
        else:
            assert_refused(seen, expected, token, opener)
    assert_clean(watch, opener, *offered)


async def test_refreshed_scopes_are_enforced_on_later_refreshes(server: LiveServer) -> None:
    """The endpoint's requirement outlives the first refresh."""
    sub = unique("admin")
    opener = genuine(sub, scopes=["admin:*"])
    async with websockets.connect(f"{server.ws}/ws/admin?token={opener}") as ws:
        await ws.recv()
        again = genuine(sub, scopes=["admin:*", "x"])
        await ws.send(json.dumps({"type": "authx.refresh", "token": again}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "authx.refreshed"
        await ws.send(json.dumps({"type": "authx.refresh", "token": genuine(sub, scopes=["x"])}))
        code, _, _ = await closed_after(ws)
    assert code == 4003


# 6. revoke_subject also refuses tokens without iat (fail closed) -------------------


async def test_revoke_subject_refuses_tokens_without_iat(server: LiveServer) -> None:
    watch = LogWatch(server)
    sub = unique("no-iat")
    no_iat = forge(payload=claims(sub, iat=DROP))
    assert (await http_get(server, "/me", headers=_bearer(no_iat))).accepted
    async with websockets.connect(f"{server.ws}/ws?token={no_iat}") as ws:
        await ws.recv()
        await http_post(server, f"/test/revoke-subject?sub={sub}")
        code, reason, _ = await closed_after(ws)
    assert (code, reason) == (4004, "token_revoked")
    # Past the revocation's second, so that a token issued now is not revoked.
    await asyncio.sleep(1.1)
    later = genuine(sub)
    assert (await http_get(server, "/me", headers=_bearer(later))).accepted
    assert (await ws_open(f"{server.ws}/ws?token={later}")).accepted
    # Without iat the issue time is unknown: it counts as before the revocation.
    seen = await http_get(server, "/me", headers=_bearer(no_iat))
    assert_refused(seen, 401, no_iat, reason="token_revoked")
    assert seen.error_type == "RevokedTokenError"
    seen = await ws_open(f"{server.ws}/ws?token={no_iat}")
    assert_refused(seen, 401, no_iat, reason="token_revoked")
    assert seen.error_type == "RevokedTokenError"
    seen = await ws_open(
        f"{server.ws}/ws", first=json.dumps({"type": "authx.auth", "token": no_iat})
    )
    assert_refused(seen, 4004, no_iat)
    assert_refused(await ws_refresh(server, no_iat, opener=genuine(sub)), 4004, no_iat)
    assert_clean(watch, no_iat, later)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# 7. A ticket is never worth more than its token -------------------------------------


@pytest.mark.parametrize("route", ["/ws-ticket", "/test/ticket-by-hand"])
@pytest.mark.parametrize("mode", ["deny", "close"])
async def test_ticket_of_a_blocklisted_token_does_not_open(
    servers: dict[str, LiveServer], mode: str, route: str
) -> None:
    """Tickets from ``WS_TICKET`` and from ``create_ws_ticket(payload, token=...)``."""
    server = servers[mode]
    watch = LogWatch(server)
    token = genuine(unique("ticket"))
    issued = await http_post(server, route, headers=_bearer(token))
    assert issued.accepted, issued
    ticket = json.loads(issued.texts[0])["ticket"]
    control = json.loads((await http_post(server, route, headers=_bearer(token))).texts[0])
    assert (await ws_open(f"{server.ws}/ws?ticket={control['ticket']}")).accepted
    await http_post(server, f"/test/revoke?token={token}")
    seen = await ws_open(f"{server.ws}/ws?ticket={ticket}")
    assert_refused(seen, 401 if mode == "deny" else 4004, token, ticket, reason="token_revoked")
    assert_clean(watch, token, ticket)


# 2. Deeply nested JSON in messages and bodies ----------------------------------------

NESTED = "[" * DEPTH + "]" * DEPTH


def _first_messages(token: str) -> dict[str, str]:
    quoted = json.dumps(token)
    return {
        "pad-after-token": f'{{"type":"authx.auth","token":{quoted},"pad":{NESTED}}}',
        "pad-before-type": f'{{"pad":{NESTED},"type":"authx.auth","token":{quoted}}}',
        "token-is-nested": f'{{"type":"authx.auth","token":{NESTED}}}',
        "top-level-array": NESTED,
        "unclosed": '{"type":"authx.auth","token":' + "[" * (DEPTH + 400),
        "objects": '{"type":"authx.auth","x":' + '{"a":' * DEPTH + "1" + "}" * DEPTH + "}",
    }


@pytest.mark.parametrize("form", list(_first_messages("t")))
async def test_nested_first_message_closes_4001(server: LiveServer, form: str) -> None:
    watch = LogWatch(server)
    token = genuine(unique("nested"))
    seen = await ws_open(f"{server.ws}/ws", first=_first_messages(token)[form])
    assert_refused(seen, 4001, token)
    assert_clean(watch, token)


#: Valid JSON refresh messages nested too deep for Python's parser.
INBAND_FORMS = ["pad-after-token", "pad-before-type", "token-is-nested", "objects"]


@pytest.mark.parametrize("form", INBAND_FORMS)
async def test_nested_inband_refresh_closes_4001(server: LiveServer, form: str) -> None:
    """A refresh message the server cannot read is still a refresh message: it never
    reaches the endpoint, and the connection closes with 4001."""
    watch = LogWatch(server)
    sub = unique("nested")
    opener, offered = genuine(sub), genuine(sub)
    message = _first_messages(offered)[form].replace("authx.auth", "authx.refresh")
    seen = await ws_send_after_open(server, message, "/ws", opener)
    assert_refused(seen, 4001, opener, offered)
    assert_clean(watch, opener, offered)


@pytest.mark.parametrize("form", ["top-level-array", "unclosed"])
async def test_nested_non_refresh_message_is_harmless(server: LiveServer, form: str) -> None:
    """Deep text that is not a refresh message (not an object, or not JSON): the endpoint
    gets it as it is, or the connection closes with 4001; never an error."""
    watch = LogWatch(server)
    opener = genuine(unique("nested"))
    message = _first_messages(opener)[form].replace("authx.auth", "authx.refresh")
    seen = await ws_send_after_open(server, message, "/ws", opener)
    if seen.code is None:
        assert json.loads(seen.texts[0])["echo"] == message, seen
    else:
        assert_refused(seen, 4001, opener)
    assert_clean(watch, opener)


@pytest.mark.parametrize(
    "body",
    [
        f'{{"access_token":{NESTED}}}',
        f'{{"pad":{NESTED},"access_token":"x"}}',
        NESTED,
        "[" * (DEPTH + 400),
        '{"access_token":' + '{"a":' * DEPTH + "1" + "}" * DEPTH + "}",
    ],
    ids=["token-is-nested", "pad-before-token", "top-level-array", "unclosed", "objects"],
)
async def test_nested_json_body_is_401(server: LiveServer, body: str) -> None:
    watch = LogWatch(server)
    seen = await http_post(
        server, "/me", content=body, headers={"Content-Type": "application/json"}
    )
    assert_refused(seen, 401)
    assert seen.error_type is not None
    assert_clean(watch)


# 11. A subject getter returning None, and tokens without a type ----------------------


async def test_unknown_subject_is_401_on_current_subject(server: LiveServer) -> None:
    watch = LogWatch(server)
    known = await http_get(server, "/subject", headers=_bearer(genuine("alice")))
    assert known.accepted
    assert json.loads(known.texts[0]) == {"subject": {"name": "Alice"}}
    ghost = genuine(unique("ghost"))
    seen = await http_get(server, "/subject", headers=_bearer(ghost))
    assert_refused(seen, 401, ghost)
    assert_clean(watch, ghost)


async def test_token_without_type_is_refused_where_a_type_is_required(server: LiveServer) -> None:
    watch = LogWatch(server)
    refresh = ISSUER.create_refresh_token("alice")
    assert (await http_get(server, "/refresh", headers=_bearer(refresh))).accepted
    no_type = forge(payload=claims(type=DROP))
    for path in ("/me", "/refresh"):
        assert_refused(await http_get(server, path, headers=_bearer(no_type)), 401, no_type)
    assert_refused(await ws_open(f"{server.ws}/ws?token={quote(no_type)}"), 401, no_type)
    assert_clean(watch, refresh, no_type)


# 9. Junk tokens do not break later genuine tokens ----------------------------------


async def test_junk_flood_does_not_break_genuine_tokens(servers: dict[str, LiveServer]) -> None:
    server = servers["deny"]
    watch = LogWatch(server)
    fresh_kid = unique("kid")
    before = time.monotonic()
    junk = []
    for i in range(96):
        header = {"alg": "RS256", "typ": "JWT", "kid": f"{fresh_kid}-{i}", "x": "j" * (i % 7)}
        junk.append(forge(header, signer=lambda d: b"\x00" * 256))
        # The genuine token's header, first seen with a bad signature.
        shared = {"alg": "RS256", "typ": "JWT", "kid": fresh_kid}
        junk.append(forge(shared, claims(f"junk-{i}"), signer=None))
    for token in junk:
        seen = await http_get(server, "/me", headers=_bearer(token))
        assert_refused(seen, 401)
    for token in junk[:40]:
        assert_refused(await ws_open(f"{server.ws}/ws?token={token}"), 401)
    for _ in range(3):
        token = genuine(headers={"kid": fresh_kid})
        assert (await http_get(server, "/me", headers=_bearer(token))).accepted
        assert (await ws_open(f"{server.ws}/ws?token={token}")).accepted
        assert (await http_get(server, "/me", headers=_bearer(genuine()))).accepted
    assert time.monotonic() - before < 30
    assert_clean(watch)
