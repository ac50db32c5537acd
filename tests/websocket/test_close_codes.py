"""Every row of the close-code table, as a real client sees it under uvicorn.

For each failure: in ``"close"`` mode the close code and the reason token; in
``"deny"`` mode the HTTP status, the same token in the JSON body (and in
``WWW-Authenticate`` when there is one) and ``Retry-After`` when the client must
wait. Live closes (expiry, revocation, a connection limit) are the same in both
modes. The docs' table (docs/close-codes.md) is checked against the module.
"""

from __future__ import annotations

import asyncio
import re
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from authx import AuthX, AuthXConfig, BadConfigurationError
from authx.close_codes import CLOSE_CODES, Action, close_reason, lookup
from tests.conftest import ROOT, SECRET, LiveServer, free_port
from tests.websocket.client import Outcome, closed_after, handshake

APP = "tests.apps.admission_app:app"
MODES = ("deny", "close")
issuer = AuthX(AuthXConfig(JWT_SECRET_KEY=SECRET))

#: What the table promises a client (the test's own copy: changing the module alone fails).
EXPECTED: dict[str, tuple[int, Action, int | None]] = {
    # reason: (close code, client action, HTTP status of the denial)
    "invalid_token": (4001, Action.STOP, 401),
    "token_expired": (4002, Action.REFRESH, 401),
    "insufficient_scope": (4003, Action.STOP, 403),
    "token_revoked": (4004, Action.STOP, 401),
    "origin_not_allowed": (4005, Action.STOP, 403),
    "auth_timeout": (4008, Action.RETRY, None),  # accepted first: always a close
    "too_many_connections": (4009, Action.STOP, 429),
    "rate_limited": (4029, Action.RETRY, 429),
    "store_unavailable": (1013, Action.RETRY, 503),
    "keys_unavailable": (1013, Action.RETRY, 503),
    "server_error": (1011, Action.RETRY, 500),
}


def token(sub: str = "alice", seconds: float = 60, **kwargs: Any) -> str:
    return issuer.create_access_token(uid=sub, expiry=timedelta(seconds=seconds), **kwargs)


def test_the_module_is_the_table_the_tests_expect() -> None:
    assert {row.reason: (row.default, row.action) for row in CLOSE_CODES} == {
        reason: (code, action) for reason, (code, action, _) in EXPECTED.items()
    }
    defaults = AuthXConfig()
    for row in CLOSE_CODES:
        assert getattr(defaults, row.setting) == row.default
        assert len(row.reason.encode()) <= 123
        assert len(close_reason(row.reason, 10**9).encode()) <= 123
    # The seed's clients still work: 4001 not authenticated, 4003 forbidden.
    assert lookup("invalid_token").default == 4001
    assert lookup("insufficient_scope").default == 4003


def test_the_docs_table_is_the_module() -> None:
    readme = (ROOT / "docs" / "close-codes.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| (\d{4}) \| `(\w+)` \| (\w+) \|", readme, re.MULTILINE)
    assert {reason: (int(code), setting, action) for reason, code, setting, action in rows} == {
        row.reason: (row.default, row.setting, row.action.value) for row in CLOSE_CODES
    }


def test_every_close_code_is_configurable() -> None:
    custom = {row.setting: 4100 + i for i, row in enumerate(CLOSE_CODES)}
    config = AuthXConfig(**custom)  # type: ignore[arg-type]
    for row in CLOSE_CODES:
        assert getattr(config, row.setting) == custom[row.setting]


# Scenarios ------------------------------------------------------------------


def _settings(mode: str, **extra: str) -> dict[str, str]:
    return {"JWT_SECRET_KEY": SECRET, "JWT_WS_REJECTION": mode, **extra}


def _post(server: LiveServer, path: str, **params: str) -> None:
    url = f"{server.http}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=5) as r:
        assert r.status == 200


def _private_rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


Scenario = Callable[[Any, str], Awaitable[Outcome]]


async def _invalid_token(factory: Any, mode: str) -> Outcome:
    server = factory(APP, **_settings(mode))
    return await handshake(f"{server.ws}/ws?token=not.a.token")


async def _token_expired(factory: Any, mode: str) -> Outcome:
    server = factory(APP, **_settings(mode))
    return await handshake(f"{server.ws}/ws?token={token(seconds=-30)}")


async def _insufficient_scope(factory: Any, mode: str) -> Outcome:
    server = factory(APP, **_settings(mode))
    return await handshake(f"{server.ws}/admin?token={token(scopes=['read'])}")


async def _token_revoked(factory: Any, mode: str) -> Outcome:
    server = factory(APP, **_settings(mode))
    revoked = token()
    _post(server, "/revoke-token", token=revoked)
    return await handshake(f"{server.ws}/ws?token={revoked}")


async def _origin_not_allowed(factory: Any, mode: str) -> Outcome:
    server = factory(
        APP,
        **_settings(
            mode,
            JWT_WS_TOKEN_LOCATION='["cookies"]',
            JWT_WS_ALLOWED_ORIGINS='["http://app.example"]',
        ),
    )
    headers = {"Cookie": f"access_token_cookie={token()}", "Origin": "http://evil.example"}
    return await handshake(f"{server.ws}/ws", headers=headers)


async def _auth_timeout(factory: Any, mode: str) -> Outcome:
    server = factory(
        APP,
        **_settings(mode, JWT_WS_TOKEN_LOCATION='["message"]', JWT_WS_AUTH_MESSAGE_TIMEOUT="0.3"),
    )
    return await handshake(f"{server.ws}/ws")


async def _too_many_connections(factory: Any, mode: str) -> Outcome:
    server = factory(APP, **_settings(mode, JWT_WS_MAX_CONNECTIONS_PER_SUBJECT="1"))
    async with websockets.connect(f"{server.ws}/ws?token={token('tom')}") as first:
        await first.recv()
        return await handshake(f"{server.ws}/ws?token={token('tom')}")


async def _rate_limited(factory: Any, mode: str) -> Outcome:
    # Answered at once (no tarpit) so that the delay in the answer is the whole wait.
    limits = {"JWT_WS_RATE_LIMIT": "0.5", "JWT_WS_RATE_BURST": "1", "JWT_WS_REFUSAL_DELAY": "0"}
    server = factory(APP, **_settings(mode, **limits))
    await handshake(f"{server.ws}/ws?token={token()}")
    return await handshake(f"{server.ws}/ws?token={token()}")


async def _store_unavailable(factory: Any, mode: str) -> Outcome:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    server = factory(APP, **_settings(mode, JWT_STORE_URL=dead))
    return await handshake(f"{server.ws}/ws?token={token()}")


async def _keys_unavailable(factory: Any, mode: str) -> Outcome:
    dead = f"http://127.0.0.1:{free_port()}/jwks"
    settings = _settings(mode, JWT_JWKS_URL=dead, JWT_DECODE_ALGORITHMS='["HS256", "RS256"]')
    server = factory(APP, **settings)
    foreign = AuthX(AuthXConfig(JWT_ALGORITHM="RS256", JWT_PRIVATE_KEY=_private_rsa_pem()))
    provider_token = foreign.create_access_token(uid="pat")
    return await handshake(f"{server.ws}/ws?token={provider_token}")


async def _server_error(factory: Any, mode: str) -> Outcome:
    server = factory(APP, **_settings(mode))
    return await handshake(f"{server.ws}/misconfigured?token={token()}")


SCENARIOS: dict[str, Scenario] = {
    "invalid_token": _invalid_token,
    "token_expired": _token_expired,
    "insufficient_scope": _insufficient_scope,
    "token_revoked": _token_revoked,
    "origin_not_allowed": _origin_not_allowed,
    "auth_timeout": _auth_timeout,
    "too_many_connections": _too_many_connections,
    "rate_limited": _rate_limited,
    "store_unavailable": _store_unavailable,
    "keys_unavailable": _keys_unavailable,
    "server_error": _server_error,
}


def test_every_row_has_a_scenario() -> None:
    assert set(SCENARIOS) == {row.reason for row in CLOSE_CODES}


@pytest.mark.parametrize("reason", list(SCENARIOS))
async def test_close_mode_sends_the_code_and_the_reason_token(
    live_server_factory: Any, reason: str
) -> None:
    seen = await SCENARIOS[reason](live_server_factory, "close")
    code, _, _ = EXPECTED[reason]
    assert (seen.kind, seen.code) == ("closed", code), seen
    if reason == "rate_limited":
        assert seen.reason == "rate_limited; retry_after=2"
    else:
        assert seen.reason == reason


@pytest.mark.parametrize("reason", list(SCENARIOS))
async def test_deny_mode_answers_with_the_same_reason_token(
    live_server_factory: Any, reason: str
) -> None:
    seen = await SCENARIOS[reason](live_server_factory, "deny")
    code, _, status = EXPECTED[reason]
    if status is None:  # the socket was accepted to read the token: only a close is left
        assert (seen.kind, seen.code, seen.reason) == ("closed", code, reason), seen
        return
    assert (seen.kind, seen.status) == ("denied", status), seen
    assert seen.body["reason"] == reason
    challenge = seen.headers.get("www-authenticate", "")
    if "error=" in challenge:
        assert challenge.endswith(f', reason="{reason}"')
    if reason == "rate_limited":
        assert seen.headers["retry-after"] == "2"
        assert seen.body["retry_after"] == 2
    else:
        assert "retry-after" not in seen.headers


# Live connections: closed by the server whatever the rejection mode -------------


@pytest.mark.parametrize("mode", MODES)
async def test_expiry_closes_with_token_expired(live_server_factory: Any, mode: str) -> None:
    server = live_server_factory(APP, **_settings(mode))
    async with websockets.connect(f"{server.ws}/ws?token={token(seconds=1.5)}") as ws:
        await ws.recv()
        code, reason, _ = await closed_after(ws, timeout=5)
    assert (code, reason) == (4002, "token_expired")
    assert lookup(reason).action is Action.REFRESH


@pytest.mark.parametrize("mode", MODES)
async def test_revocation_closes_with_token_revoked(live_server_factory: Any, mode: str) -> None:
    server = live_server_factory(APP, **_settings(mode))
    async with websockets.connect(f"{server.ws}/ws?token={token('rita')}") as ws:
        await ws.recv()
        await asyncio.to_thread(_post, server, "/revoke-subject", sub="rita")
        code, reason, _ = await closed_after(ws)
    assert (code, reason) == (4004, "token_revoked")
    assert lookup(reason).action is Action.STOP


@pytest.mark.parametrize("mode", MODES)
async def test_close_oldest_closes_with_too_many_connections(
    live_server_factory: Any, mode: str
) -> None:
    server = live_server_factory(
        APP,
        **_settings(
            mode, JWT_WS_MAX_CONNECTIONS_PER_SUBJECT="1", JWT_WS_CONNECTION_LIMIT="close_oldest"
        ),
    )
    async with websockets.connect(f"{server.ws}/ws?token={token('olly')}") as oldest:
        await oldest.recv()
        async with websockets.connect(f"{server.ws}/ws?token={token('olly')}") as newest:
            await newest.recv()
            code, reason, _ = await closed_after(oldest)
            await newest.send("still here")
            assert await newest.recv() == "still here"
    assert (code, reason) == (4009, "too_many_connections")
    # Stop, not reconnect: two tabs would otherwise take turns closing each other.
    assert lookup(reason).action is Action.STOP


async def test_configured_codes_are_used(live_server_factory: Any) -> None:
    server = live_server_factory(
        APP,
        **_settings("close", JWT_WS_EXPIRED_CLOSE_CODE="4402", JWT_WS_CLOSE_CODE_REVOKED="4404"),
    )
    expired = await handshake(f"{server.ws}/ws?token={token(seconds=-30)}")
    assert (expired.code, expired.reason) == (4402, "token_expired")
    revoked = token()
    _post(server, "/revoke-token", token=revoked)
    seen = await handshake(f"{server.ws}/ws?token={revoked}")
    assert (seen.code, seen.reason) == (4404, "token_revoked")


def test_close_codes_the_protocol_forbids_are_refused() -> None:
    for code in (1004, 1005, 1006, 1015, 2000, 999, 5000):
        with pytest.raises(BadConfigurationError, match="JWT_WS_CLOSE_CODE_REVOKED"):
            AuthXConfig(JWT_WS_CLOSE_CODE_REVOKED=code)


def test_reason_with_delay_rounds_up_and_fits() -> None:
    assert close_reason("rate_limited", 0.01) == "rate_limited; retry_after=1"
    assert close_reason("rate_limited", 2.0) == "rate_limited; retry_after=2"
    assert close_reason("rate_limited", 2.1) == "rate_limited; retry_after=3"
    assert close_reason("token_expired") == "token_expired"
