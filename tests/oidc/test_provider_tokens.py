"""Tokens of a real OpenID Connect provider at real uvicorn servers, over HTTP and every
WebSocket transport, with the real ``websockets`` client.

One provider (oidc-provider-mock on 127.0.0.1, see tests/oidc/provider.py) serves the
whole module; three servers of tests/oidc/provider_app.py discover it through
``JWT_OIDC_ISSUER``:

* ``deny``: every WebSocket transport, ``JWT_WS_REJECTION="deny"``, the app's own
  HS256 secret beside the provider, ``JWT_SCOPES_CLAIM="scope"``;
* ``close``: the same in ``"close"`` mode;
* ``es256``: an allow-list (``JWT_DECODE_ALGORITHMS=["ES256"]``) the provider's RS256
  tokens are not in.

``deny`` and ``close`` cache the provider's keys for about a second
(``CACHE_SECONDS``, ``MIN_REFETCH_SECONDS``, ``GRACE_SECONDS``), so that a rotation and
an outage play out in a few seconds. The tests that rotate the provider's keys and
stop it come last and leave it serving, with both servers knowing its current key.
The last tests pin library bugs found on the way (now fixed).
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import jwt
import pytest
import websockets
from cryptography.hazmat.primitives.asymmetric import rsa
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from tests.conftest import SECRET, LiveServer
from tests.oidc.conftest import require_oidc_provider_mock
from tests.oidc.provider import DEFAULT_AUDIENCE, OIDCProvider, ProviderFactory, forge_hs256
from tests.websocket.client import closed_after

APP = "tests.oidc.provider_app:app"
ORIGIN = "http://app.test"
WS_LOCATIONS = ["query", "headers", "subprotocol", "cookies", "ticket", "message"]
CACHE_SECONDS = 1.0
MIN_REFETCH_SECONDS = 0.3
GRACE_SECONDS = 1.5
#: Bound of every single exchange with a server.
TIMEOUT = 5.0
#: Seconds the servers get to write the log lines of the last exchange.
LOG_SETTLE = 0.1

T = TypeVar("T")


# Servers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def provider() -> Iterator[OIDCProvider]:
    """One provider for the module (the servers are configured with its issuer URL)."""
    require_oidc_provider_mock()
    provider = OIDCProvider()
    provider.start()
    yield provider
    provider.stop()


def server_env(provider: OIDCProvider, **overrides: str) -> dict[str, str]:
    env = {
        "JWT_OIDC_ISSUER": provider.issuer,
        "JWT_DECODE_AUDIENCE": DEFAULT_AUDIENCE,
        # The app's own tokens carry the same audience, so they pass the same check.
        "JWT_ENCODE_AUDIENCE": DEFAULT_AUDIENCE,
        "JWT_SECRET_KEY": SECRET,
        "JWT_DECODE_ALGORITHMS": '["HS256", "RS256"]',
        "JWT_SCOPES_CLAIM": "scope",
        "JWT_WS_TOKEN_LOCATION": json.dumps(WS_LOCATIONS),
        "JWT_WS_ALLOWED_ORIGINS": json.dumps([ORIGIN]),
        "JWT_WS_AUTH_MESSAGE_TIMEOUT": "3",
        "JWT_JWKS_CACHE_SECONDS": str(CACHE_SECONDS),
        "JWT_JWKS_MIN_REFETCH_SECONDS": str(MIN_REFETCH_SECONDS),
        "JWT_JWKS_GRACE_SECONDS": str(GRACE_SECONDS),
    }
    env.update(overrides)
    return env


@pytest.fixture(scope="module")
def servers(
    provider: OIDCProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, LiveServer]]:
    """The three servers, started side by side and stopped with the module."""
    logs = tmp_path_factory.mktemp("oidc-server-logs")
    configs = {
        "deny": server_env(provider),
        "close": server_env(provider, JWT_WS_REJECTION="close"),
        # Its allow-list fits none of the provider's keys, so load_keys() would fail.
        "es256": server_env(
            provider,
            JWT_DECODE_ALGORITHMS='["ES256"]',
            JWT_WS_REJECTION="close",
            PROVIDER_APP_LOAD_KEYS="0",
        ),
    }
    started = {
        name: LiveServer(app=APP, env=env, log_path=logs / f"{name}.log")
        for name, env in configs.items()
    }
    try:
        with ThreadPoolExecutor(len(started)) as pool:
            for future in [pool.submit(server.start) for server in started.values()]:
                future.result()
        yield started
    finally:
        for server in started.values():
            server.stop()


def _marked(server: LiveServer) -> LiveServer:
    server.mark()  # the log checks read this test's lines only
    return server


@pytest.fixture
def deny(servers: dict[str, LiveServer]) -> LiveServer:
    return _marked(servers["deny"])


@pytest.fixture
def close(servers: dict[str, LiveServer]) -> LiveServer:
    return _marked(servers["close"])


@pytest.fixture
def es256(servers: dict[str, LiveServer]) -> LiveServer:
    return _marked(servers["es256"])


# What a client sees --------------------------------------------------------------------------


@dataclass
class Seen:
    """The first thing a WebSocket client saw: a message, a close, or an HTTP denial."""

    kind: str  # "open", "closed" or "denied"
    message: Any = None
    subprotocol: str | None = None
    code: int | None = None  # the close code
    reason: str = ""
    status: int | None = None  # the denial's HTTP status
    body: Any = None
    #: Everything the client was shown (close reason, denial body and headers).
    texts: list[str] = field(default_factory=list)

    @property
    def error_type(self) -> str | None:
        return self.body.get("error_type") if isinstance(self.body, dict) else None


def _client(server: LiveServer) -> httpx.AsyncClient:
    # Plain http on loopback: verify=False skips loading the CA bundle.
    return httpx.AsyncClient(base_url=server.http, timeout=TIMEOUT, verify=False)  # noqa: S501


async def get_me(server: LiveServer, token: str) -> httpx.Response:
    async with _client(server) as client:
        return await client.get("/me", headers={"Authorization": f"Bearer {token}"})


async def post(server: LiveServer, path: str, **kwargs: Any) -> httpx.Response:
    async with _client(server) as client:
        return await client.post(path, **kwargs)


def shown(response: httpx.Response) -> list[str]:
    return [response.text, *(f"{k}: {v}" for k, v in response.headers.items())]


async def ws_open(
    server: LiveServer,
    path: str = "/ws",
    query: str = "",
    headers: dict[str, str] | None = None,
    subprotocols: list[str] | None = None,
    first: str | None = None,
) -> Seen:
    """Connect (sending ``first`` if given) and report the first thing the server does."""
    try:
        async with asyncio.timeout(TIMEOUT):
            async with websockets.connect(
                f"{server.ws}{path}{query}",
                additional_headers=headers,
                subprotocols=[Subprotocol(p) for p in subprotocols or []] or None,
            ) as ws:
                if first is not None:
                    await ws.send(first)
                try:
                    raw = await ws.recv()
                except ConnectionClosed as closed:
                    rcvd = closed.rcvd
                    reason = rcvd.reason if rcvd else ""
                    return Seen("closed", code=rcvd.code if rcvd else None, reason=reason,
                                texts=[reason])  # fmt: skip
                return Seen("open", message=json.loads(raw), subprotocol=ws.subprotocol)
    except InvalidStatus as exc:
        response = exc.response
        raw_body = bytes(response.body or b"")
        body = json.loads(raw_body) if raw_body.startswith(b"{") else raw_body.decode()
        texts = [raw_body.decode(), *(f"{k}: {v}" for k, v in response.headers.raw_items())]
        return Seen("denied", status=response.status_code, body=body, texts=texts)


async def get_ticket(server: LiveServer, token: str) -> str:
    response = await post(server, "/ws-ticket", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return str(response.json()["ticket"])


def query_of(token: str) -> str:
    return f"?token={quote(token, safe='')}"


# The WebSocket transports, each presenting ``token`` to ``path``.


async def via_query(server: LiveServer, token: str, path: str = "/ws") -> Seen:
    return await ws_open(server, path, query=query_of(token))


async def via_headers(server: LiveServer, token: str, path: str = "/ws") -> Seen:
    return await ws_open(server, path, headers={"Authorization": f"Bearer {token}"})


async def via_subprotocol(server: LiveServer, token: str, path: str = "/ws") -> Seen:
    return await ws_open(server, path, subprotocols=[f"authx.bearer.{token}", "chat.v1"])


async def via_cookies(server: LiveServer, token: str, path: str = "/ws") -> Seen:
    headers = {"Cookie": f"access_token_cookie={token}", "Origin": ORIGIN}
    return await ws_open(server, path, headers=headers)


async def via_ticket(server: LiveServer, token: str, path: str = "/ws") -> Seen:
    ticket = await get_ticket(server, token)
    return await ws_open(server, path, query=f"?ticket={ticket}")


async def via_message(server: LiveServer, token: str, path: str = "/ws") -> Seen:
    return await ws_open(server, path, first=json.dumps({"type": "authx.auth", "token": token}))


TRANSPORTS: dict[str, Callable[[LiveServer, str], Awaitable[Seen]]] = {
    "query": via_query,
    "headers": via_headers,
    "subprotocol": via_subprotocol,
    "cookies": via_cookies,
    "ticket": via_ticket,
    "message": via_message,
}


async def eventually(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], within: float
) -> T:
    """Call ``probe`` every 50 ms until ``done`` holds or ``within`` seconds passed;
    the last value either way (the caller asserts on it)."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if done(value) or time.monotonic() >= deadline:
            return value
        await asyncio.sleep(0.05)


async def me_until(
    server: LiveServer, token: str, done: Callable[[httpx.Response], bool], within: float
) -> httpx.Response:
    """``GET /me`` with ``token`` until ``done`` holds (or ``within`` seconds passed)."""
    return await eventually(lambda: get_me(server, token), done, within)


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def secrets_of(token: str) -> list[str]:
    """The token and its signature: neither may be shown to a client or logged."""
    return [token, token.rsplit(".", 1)[1]]


def assert_not_shown(texts: list[str], *tokens: str) -> None:
    for text in texts:
        for token in tokens:
            for secret in secrets_of(token):
                assert secret not in text, f"a token was shown to the client: {text[:200]}"


# 1. Every transport ---------------------------------------------------------------------------


@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_provider_token_opens_a_websocket_through_every_transport(
    deny: LiveServer, provider: OIDCProvider, transport: str
) -> None:
    token = provider.token("alice")

    seen = await TRANSPORTS[transport](deny, token)

    assert seen.kind == "open", seen
    assert seen.message == {
        "sub": "alice",
        "iss": provider.issuer,
        "scopes": None,
        "via": transport,
    }
    if transport == "subprotocol":
        # The application protocol is selected; the token is never echoed back.
        assert seen.subprotocol == "chat.v1"
    deny.assert_log_clean(*secrets_of(token), wait=LOG_SETTLE)


async def test_provider_token_is_accepted_by_an_http_route(
    deny: LiveServer, provider: OIDCProvider
) -> None:
    token = provider.token("alice", scopes=["chat:read", "chat:write"])

    response = await get_me(deny, token)

    assert response.status_code == 200, response.text
    # JWT_SCOPES_CLAIM="scope": the provider's space-separated scope claim, as a list.
    assert response.json() == {
        "sub": "alice",
        "iss": provider.issuer,
        "scopes": ["chat:read", "chat:write"],
    }
    deny.assert_log_clean(*secrets_of(token), wait=LOG_SETTLE)


# 2. Refusals --------------------------------------------------------------------------------


@functools.cache
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _other_provider(provider: OIDCProvider, factory: ProviderFactory) -> str:
    # A second real provider's own token, claiming the first one's issuer; its kid is the
    # second provider's, unknown to the first's JWKS (one refetch, then no key).
    return factory().token("alice", claims={"iss": provider.issuer})


def _same_kid_other_key(provider: OIDCProvider, factory: ProviderFactory) -> str:
    # The provider's own claims and kid, signed RS256 by a key it does not publish. The
    # mock signs only with its own key (its kid is that key's thumbprint), so no real
    # provider can issue this token: the signature is made here.
    return jwt.encode(
        claims_of(provider.token("alice")),
        other_key(),
        algorithm="RS256",
        headers={"kid": provider.kid},
    )


def _wrong_issuer(provider: OIDCProvider, factory: ProviderFactory) -> str:
    # Signed by the provider, but not naming it: never checked with its keys.
    return provider.token("alice", claims={"iss": "http://127.0.0.1:1"})


def _wrong_audience(provider: OIDCProvider, factory: ProviderFactory) -> str:
    return provider.token("alice", audience="another-api")


def _expired(provider: OIDCProvider, factory: ProviderFactory) -> str:
    return provider.token("alice", claims={"exp": int(time.time()) - 600})


def _hs256_with_public_key(provider: OIDCProvider, factory: ProviderFactory) -> str:
    # Key confusion: HMAC keyed with the provider's public key PEM, the provider's kid.
    claims = claims_of(provider.token("alice"))
    return forge_hs256(claims, provider.public_key_pem, headers={"kid": provider.kid})


def _hs256_app_secret_provider_issuer(provider: OIDCProvider, factory: ProviderFactory) -> str:
    # A valid HMAC with the app's own secret, but the provider's iss: provider keys only.
    return forge_hs256(claims_of(provider.token("alice")), SECRET)


REFUSALS: dict[str, tuple[Callable[[OIDCProvider, ProviderFactory], str], str]] = {
    # case: (the token, the error the HTTP route answers)
    "other-provider": (_other_provider, "JWTDecodeError"),
    "same-kid-other-key": (_same_kid_other_key, "TokenInvalidSignatureError"),
    "wrong-issuer": (_wrong_issuer, "JWTDecodeError"),
    "wrong-audience": (_wrong_audience, "TokenInvalidAudienceError"),
    "expired": (_expired, "TokenExpiredError"),
    "hs256-with-public-key": (_hs256_with_public_key, "JWTDecodeError"),
    "hs256-app-secret-provider-issuer": (_hs256_app_secret_provider_issuer, "JWTDecodeError"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_bad_provider_tokens_are_refused_everywhere(
    deny: LiveServer,
    close: LiveServer,
    provider: OIDCProvider,
    oidc_provider_factory: ProviderFactory,
    case: str,
) -> None:
    make, error_type = REFUSALS[case]
    reason = "token_expired" if error_type == "TokenExpiredError" else "invalid_token"
    code = 4002 if reason == "token_expired" else 4001
    token = make(provider, oidc_provider_factory)

    http = await get_me(deny, token)
    ws_denied = await via_query(deny, token)
    ws_header_closed = await via_headers(close, token)
    ws_message_closed = await via_message(deny, token)

    assert http.status_code == 401, http.text
    assert (http.json()["error_type"], http.json()["reason"]) == (error_type, reason)
    assert http.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert http.headers["www-authenticate"].endswith(f'reason="{reason}"')
    assert (ws_denied.kind, ws_denied.status, ws_denied.error_type) == ("denied", 401, error_type)
    assert ws_denied.body["reason"] == reason
    assert (ws_header_closed.kind, ws_header_closed.code, ws_header_closed.reason) == (
        "closed",
        code,
        reason,
    )
    # The first-message transport has accepted the socket: its refusal is a close.
    assert (ws_message_closed.kind, ws_message_closed.code, ws_message_closed.reason) == (
        "closed",
        code,
        reason,
    )
    for texts in (shown(http), ws_denied.texts, ws_header_closed.texts, ws_message_closed.texts):
        assert_not_shown(texts, token)
    deny.assert_log_clean(*secrets_of(token), wait=LOG_SETTLE)
    close.assert_log_clean(*secrets_of(token), wait=0)


async def test_alg_outside_the_allow_list_is_refused(
    es256: LiveServer, provider: OIDCProvider
) -> None:
    token = provider.token("alice")  # genuine, RS256; the server allows ES256 only

    http = await get_me(es256, token)
    ws = await via_query(es256, token)

    assert http.status_code == 401, http.text
    assert http.json()["error_type"] == "JWTDecodeError"
    assert (ws.kind, ws.code) == ("closed", 4001)
    assert_not_shown([*shown(http), *ws.texts], token)
    es256.assert_log_clean(*secrets_of(token), wait=LOG_SETTLE)


# 5. Live connections ------------------------------------------------------------------------


async def test_connections_close_at_the_provider_tokens_exp_unless_refreshed(
    deny: LiveServer, provider: OIDCProvider
) -> None:
    exp = math.ceil(time.time()) + 2  # 2 to 3 s from now, in whole seconds as providers write
    short = provider.token("erin", claims={"exp": exp})
    longer = provider.token("erin")
    ticket = await get_ticket(deny, short)

    async def idle(query: str) -> tuple[int | None, str | None, float]:
        async with websockets.connect(f"{deny.ws}/ws{query}") as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            assert hello["sub"] == "erin"
            return await closed_after(ws, timeout=exp - time.time() + TIMEOUT)

    async def refreshed() -> tuple[Any, Any]:
        async with websockets.connect(f"{deny.ws}/ws{query_of(short)}") as ws:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
            await ws.send(json.dumps({"type": "authx.refresh", "token": longer}))
            answer = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            await asyncio.sleep(exp + 0.5 - time.time())  # past the first token's exp
            await ws.send("still here?")
            return answer, json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))

    by_query, by_ticket, (answer, echo) = await asyncio.gather(
        idle(query_of(short)), idle(f"?ticket={ticket}"), refreshed()
    )

    for code, reason, seen_at in (by_query, by_ticket):
        assert (code, reason) == (4002, "token_expired")
        assert exp - 0.05 <= seen_at <= exp + 1.0, seen_at - exp
    longer_exp = claims_of(longer)["exp"]
    assert answer == {"type": "authx.refreshed", "exp": longer_exp}
    assert echo == {"echo": "still here?", "sub": "erin", "exp": longer_exp}
    deny.assert_log_clean(*secrets_of(short), *secrets_of(longer), ticket, wait=LOG_SETTLE)


async def test_inband_refresh_with_another_subjects_token_closes(
    deny: LiveServer, provider: OIDCProvider
) -> None:
    token, other = provider.token("fay"), provider.token("mallory")

    async with websockets.connect(f"{deny.ws}/ws{query_of(token)}") as ws:
        await asyncio.wait_for(ws.recv(), TIMEOUT)
        await ws.send(json.dumps({"type": "authx.refresh", "token": other}))
        code, reason, _ = await closed_after(ws, timeout=TIMEOUT)

    assert (code, reason) == (4001, "invalid_token")
    deny.assert_log_clean(*secrets_of(token), *secrets_of(other), wait=LOG_SETTLE)


async def test_revoke_subject_closes_provider_token_connections(
    deny: LiveServer, provider: OIDCProvider
) -> None:
    token, bystander = provider.token("rita"), provider.token("sam")
    ticket = await get_ticket(deny, token)

    async with (
        websockets.connect(f"{deny.ws}/ws{query_of(token)}") as by_query,
        websockets.connect(f"{deny.ws}/ws?ticket={ticket}") as by_ticket,
        websockets.connect(f"{deny.ws}/ws{query_of(bystander)}") as other,
    ):
        for ws in (by_query, by_ticket, other):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        revoked = await post(deny, "/test/revoke-subject", params={"sub": "rita"})
        assert revoked.status_code == 200
        closes = [await closed_after(ws, timeout=TIMEOUT) for ws in (by_query, by_ticket)]
        await other.send("still here?")
        echo = json.loads(await asyncio.wait_for(other.recv(), TIMEOUT))

    assert [(code, reason) for code, reason, _ in closes] == [(4004, "token_revoked")] * 2
    assert echo["sub"] == "sam"
    again = await via_query(deny, token)
    assert (again.kind, again.status, again.error_type) == ("denied", 401, "RevokedTokenError")
    assert again.body["reason"] == "token_revoked"
    body = (await get_me(deny, token)).json()
    assert (body["error_type"], body["reason"]) == ("RevokedTokenError", "token_revoked")
    deny.assert_log_clean(*secrets_of(token), ticket, wait=LOG_SETTLE)


# 6. Scopes from the provider's "scope" claim ----------------------------------------------------


async def test_scope_claim_grants_websocket_scopes(
    deny: LiveServer, close: LiveServer, provider: OIDCProvider
) -> None:
    token = provider.token("sue", scopes=["chat:read"])

    chat = [await via_query(server, token, "/ws/chat") for server in (deny, close)]
    admin_denied = await via_query(deny, token, "/ws/admin")
    admin_closed = await via_query(close, token, "/ws/admin")
    admin_message = await via_message(deny, token, "/ws/admin")

    for seen in chat:
        assert seen.kind == "open", seen
        assert seen.message["scopes"] == ["chat:read"]
    assert admin_denied.kind == "denied"
    assert (admin_denied.status, admin_denied.error_type) == (403, "InsufficientScopeError")
    assert (admin_closed.kind, admin_closed.code) == ("closed", 4003)
    assert (admin_message.kind, admin_message.code) == ("closed", 4003)
    deny.assert_log_clean(*secrets_of(token), wait=LOG_SETTLE)
    close.assert_log_clean(*secrets_of(token), wait=0)


async def test_refresh_without_the_endpoints_scope_closes_with_4003(
    deny: LiveServer, provider: OIDCProvider
) -> None:
    token = provider.token("sue", scopes=["chat:read"])
    unscoped = provider.token("sue")

    async with websockets.connect(f"{deny.ws}/ws/chat{query_of(token)}") as ws:
        await asyncio.wait_for(ws.recv(), TIMEOUT)
        await ws.send(json.dumps({"type": "authx.refresh", "token": unscoped}))
        code, _, _ = await closed_after(ws, timeout=TIMEOUT)

    assert code == 4003
    deny.assert_log_clean(*secrets_of(token), *secrets_of(unscoped), wait=LOG_SETTLE)


# 7. The app's own tokens beside the provider's -------------------------------------------------


async def test_own_hs256_tokens_work_beside_provider_tokens(
    deny: LiveServer, close: LiveServer, provider: OIDCProvider
) -> None:
    issued = await post(deny, "/login", params={"sub": "svc"})
    own = issued.json()["access_token"]
    theirs = provider.token("alice")
    assert jwt.get_unverified_header(own)["alg"] == "HS256"

    for server in (deny, close):  # the same secret on both
        own_http, their_http = await get_me(server, own), await get_me(server, theirs)
        own_ws, their_ws = await via_headers(server, own), await via_headers(server, theirs)

        assert own_http.status_code == their_http.status_code == 200
        assert own_http.json() == {"sub": "svc", "iss": None, "scopes": None}
        assert their_http.json()["iss"] == provider.issuer
        assert (own_ws.kind, own_ws.message["sub"]) == ("open", "svc")
        assert (their_ws.kind, their_ws.message["sub"]) == ("open", "alice")
    deny.assert_log_clean(*secrets_of(own), *secrets_of(theirs), wait=LOG_SETTLE)
    close.assert_log_clean(*secrets_of(own), *secrets_of(theirs), wait=0)


# 3. Key rotation at the provider ------------------------------------------------------------


async def test_key_rotation_is_picked_up_without_a_restart(
    deny: LiveServer, close: LiveServer, provider: OIDCProvider
) -> None:
    first = provider.token("rhea")
    assert (await get_me(deny, first)).status_code == 200

    # Rollover: a second key published beside the first. Its first token refetches the
    # JWKS (an unknown kid: at most one refetch per MIN_REFETCH_SECONDS).
    second_kid = provider.rotate_keys(keep_previous=True)
    second = provider.token("rhea")
    assert jwt.get_unverified_header(second)["kid"] == second_kid
    accepted = await me_until(deny, second, lambda r: r.status_code == 200, MIN_REFETCH_SECONDS + 2)
    assert accepted.status_code == 200, accepted.text
    assert (await get_me(deny, first)).status_code == 200  # both keys are published

    # The provider drops the first two keys. No token with a new kid is shown: the
    # cache expires by itself, and its refresh leaves the removed keys out.
    dropped_at = time.monotonic()
    provider.rotate_keys()
    refused = await me_until(deny, second, lambda r: r.status_code != 200, CACHE_SECONDS + 2)
    assert refused.status_code == 401, refused.text
    assert time.monotonic() - dropped_at <= CACHE_SECONDS + 1
    assert (await get_me(deny, first)).status_code == 401
    assert (await via_query(deny, second)).status == 401
    assert (await via_query(close, second)).code == 4001

    third = provider.token("rhea")
    for server in (deny, close):
        accepted = await me_until(
            server, third, lambda r: r.status_code == 200, MIN_REFETCH_SECONDS + 2
        )
        assert accepted.status_code == 200, accepted.text
        seen = await via_query(server, third)
        assert (seen.kind, seen.message["sub"]) == ("open", "rhea")
    for server in (deny, close):
        server.assert_log_clean(*secrets_of(first), *secrets_of(second), *secrets_of(third))


# 4. The provider down ----------------------------------------------------------------------


async def test_provider_outage_grace_then_fail_closed_then_recovery(
    deny: LiveServer, close: LiveServer, provider: OIDCProvider
) -> None:
    token = provider.token("olga")
    own = (await post(deny, "/login", params={"sub": "svc"})).json()["access_token"]
    warning = f"WARNING:     authx: cannot fetch identity provider keys from {provider.jwks_uri}"
    for server in (deny, close):
        assert (await get_me(server, token)).status_code == 200  # the keys are cached

    provider.stop()
    try:
        # Within the grace period: the cache expires, its refresh fails (the WARNING),
        # and the cached key keeps verifying, over HTTP and WebSocket.
        async def within_grace(server: LiveServer) -> tuple[list[int], int, Seen]:
            statuses: list[int] = []

            async def probe() -> None:
                statuses.append((await get_me(server, token)).status_code)

            await eventually(probe, lambda _: warning in server.new_log(), CACHE_SECONDS + 2)
            after = (await get_me(server, token)).status_code
            return statuses, after, await via_query(server, token)

        for statuses, after, seen in await asyncio.gather(within_grace(deny), within_grace(close)):
            assert set(statuses) == {200}
            assert after == 200
            assert (seen.kind, seen.message["sub"]) == ("open", "olga")
        assert warning in deny.new_log()
        assert warning in close.new_log()

        # Past the grace period: fail closed.
        failed = await asyncio.gather(
            *(
                me_until(server, token, lambda r: r.status_code != 200, GRACE_SECONDS + 2)
                for server in (deny, close)
            )
        )
        for response in failed:
            assert response.status_code == 503, response.text
            assert response.json()["error_type"] == "KeySourceUnavailableError"
            assert response.json()["reason"] == "keys_unavailable"
            assert_not_shown(shown(response), token)
        denied = await via_query(deny, token)
        closed = await via_query(close, token)
        assert (denied.kind, denied.status) == ("denied", 503)
        assert (denied.error_type, denied.body["reason"]) == (
            "KeySourceUnavailableError",
            "keys_unavailable",
        )
        assert (closed.kind, closed.code, closed.reason) == ("closed", 1013, "keys_unavailable")
        assert_not_shown([*denied.texts, *closed.texts], token)
        # The app's own tokens never depend on the provider.
        assert (await get_me(deny, own)).status_code == 200
    finally:
        provider.start()

    # Back: the next refetch (at most MIN_REFETCH_SECONDS away) restores the keys.
    recovered = await asyncio.gather(
        *(
            me_until(server, token, lambda r: r.status_code == 200, MIN_REFETCH_SECONDS + 2)
            for server in (deny, close)
        )
    )
    assert [response.status_code for response in recovered] == [200, 200]
    for server in (deny, close):
        seen = await via_query(server, token)
        assert (seen.kind, seen.message["sub"]) == ("open", "olga")
        server.assert_log_clean(*secrets_of(token), *secrets_of(own), wait=LOG_SETTLE)


# Found by these tests, fixed in the library ------------------------------------------------


async def test_default_allow_list_accepts_the_providers_rs256_tokens(
    provider: OIDCProvider, tmp_path: Path
) -> None:
    env = server_env(provider)
    del env["JWT_DECODE_ALGORITHMS"]  # "RS256 by default"; load_keys() at start-up too
    server = LiveServer(app=APP, env=env, log_path=tmp_path / "default-algorithms.log")
    server.start()
    try:
        response = await get_me(server, provider.token("alice"))
    finally:
        server.stop()

    assert response.status_code == 200, response.text


async def test_the_readme_provider_example_serves_provider_tokens(
    provider: OIDCProvider, tmp_path: Path
) -> None:
    env = {
        "JWT_OIDC_ISSUER": provider.issuer,
        "JWT_DECODE_AUDIENCE": "chat-api",
        "JWT_SCOPES_CLAIM": "scope",
    }
    server = LiveServer(app="examples.provider:app", env=env, log_path=tmp_path / "example.log")
    server.start()
    try:
        token = provider.token("alice", audience="chat-api", scopes=["chat:read"])
        me = await get_me(server, token)
        chat = await via_query(server, token, "/chat")
    finally:
        server.stop()

    assert me.json() == {"sub": "alice", "scopes": ["chat:read"]}
    assert (chat.kind, chat.message) == ("open", {"hello": "alice"})
