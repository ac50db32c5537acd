"""Revoking through AuthX: what reaches the store (and for how long), what a store
failure does to a request, and events heard from the store."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import pytest
from core_support import bearer, get_access, make_auth, make_config

from authx import AuthX
from authx._revocation import redact_url
from authx.exceptions import BadConfigurationError, RevokedTokenError, StoreUnavailableError
from authx.stores import MemoryStore, RevocationEvent


class Recording(MemoryStore):
    """A memory store that records the writes it gets, and can be made to fail."""

    def __init__(self, url: str = "memory://") -> None:
        super().__init__(url)
        self.writes: list[tuple[Any, ...]] = []
        self.failing = False
        self.raises: Exception | None = None

    async def revoke_token(self, jti: str, expires_at: float) -> None:
        self.writes.append(("token", jti, expires_at))
        await super().revoke_token(jti, expires_at)

    async def revoke_subject(self, sub: str, before: float, expires_at: float) -> None:
        self.writes.append(("subject", sub, before, expires_at))
        await super().revoke_subject(sub, before, expires_at)

    async def is_revoked(self, jti: str | None, sub: str | None, iat: float | None) -> bool:
        if self.raises is not None:
            raise self.raises
        if self.failing:
            raise ConnectionError("down")
        return await super().is_revoked(jti, sub, iat)


def with_store(**overrides: Any) -> tuple[AuthX[Any], Recording]:
    auth = make_auth(**overrides)
    store = Recording("redis://:s3cret@store.test:6379/0")
    auth.set_store(store)
    return auth, store


# What reaches the store ------------------------------------------------------------------------


@pytest.mark.parametrize("leeway", [0, 45])
async def test_revoked_token_is_kept_until_its_expiry_plus_leeway(leeway: float) -> None:
    auth, store = with_store(JWT_DECODE_LEEWAY=leeway)
    token = auth.create_access_token("alice", expiry=timedelta(minutes=5))
    payload = auth._decode_token(token)
    await auth.revoke_token(token)
    assert payload.expires_at is not None
    ((kind, jti, expires_at),) = store.writes
    assert (kind, jti) == ("token", payload.jti)
    assert expires_at == pytest.approx(payload.expires_at + leeway, abs=1e-6)


@pytest.mark.parametrize(
    ("overrides", "lifetime"),
    [
        ({}, 20 * 86400.0),
        ({"JWT_REFRESH_TOKEN_EXPIRES": None}, 15 * 60.0),
        ({"JWT_ACCESS_TOKEN_EXPIRES": timedelta(days=30)}, 30 * 86400.0),
        ({"JWT_ACCESS_TOKEN_EXPIRES": None, "JWT_REFRESH_TOKEN_EXPIRES": None}, 366 * 86400.0),
    ],
)
async def test_revocation_without_a_known_expiry_is_kept_for_the_longest_lifetime(
    overrides: dict[str, Any], lifetime: float
) -> None:
    auth, store = with_store(**overrides)
    before = time.time()
    await auth.revoke_token("some-jti")
    await auth.revoke_subject("alice")
    after = time.time()
    (kind, jti, expires_at), (kind2, sub, revoked_before, subject_expiry) = store.writes
    assert (kind, jti, kind2, sub) == ("token", "some-jti", "subject", "alice")
    assert before + lifetime <= expires_at <= after + lifetime
    assert before <= revoked_before <= after
    assert subject_expiry == pytest.approx(revoked_before + lifetime)


async def test_token_without_exp_is_kept_for_the_longest_lifetime() -> None:
    auth, store = with_store(JWT_ACCESS_TOKEN_EXPIRES=None)
    token = auth.create_access_token("alice")
    await auth.revoke_token(token)
    ((_, _, expires_at),) = store.writes
    assert expires_at == pytest.approx(time.time() + 20 * 86400, abs=5)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a.b.c", "revoke_token needs a token or a token id (jti)"),
        ("é.b.c", "revoke_token needs a token or a token id (jti)"),
    ],
)
async def test_revoking_garbage_is_refused(value: str, message: str) -> None:
    auth, store = with_store()
    with pytest.raises(ValueError, match="revoke_token") as raised:
        await auth.revoke_token(value)
    assert str(raised.value) == message
    assert store.writes == []


async def test_revoking_a_token_without_jti_is_refused() -> None:
    auth, store = with_store()
    token = auth.create_access_token("alice", data={"jti": None})
    with pytest.raises(ValueError, match="jti") as raised:
        await auth.revoke_token(token)
    assert str(raised.value) == "this token has no jti claim to revoke"
    assert store.writes == []


async def test_revoked_token_is_refused_and_others_are_not() -> None:
    auth, _ = with_store()
    revoked, kept = auth.create_access_token("alice"), auth.create_access_token("alice")
    await auth.revoke_token(revoked)
    response = await get_access(auth, revoked)
    assert (response.status_code, response.json()["error_type"]) == (401, "RevokedTokenError")
    assert (await get_access(auth, kept)).status_code == 200


# A store that cannot answer ---------------------------------------------------------------------


async def test_unreachable_store_fails_closed_and_logs_the_masked_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    auth, store = with_store()
    store.failing = True
    with caplog.at_level(logging.WARNING, logger="authx"):
        response = await get_access(auth, auth.create_access_token("alice"))
    assert (response.status_code, response.json()) == (
        503,
        {
            "message": "Revocation store unavailable",
            "error_type": "StoreUnavailableError",
            "reason": "store_unavailable",
        },
    )
    assert "redis://:***@store.test:6379/0" in caplog.text
    assert "s3cret" not in caplog.text


async def test_unreachable_store_fails_open_when_asked() -> None:
    auth, store = with_store(JWT_STORE_FAIL_OPEN=True)
    store.failing = True
    response = await get_access(auth, auth.create_access_token("alice"))
    assert (response.status_code, response.json()["sub"]) == (200, "alice")


async def test_authx_error_from_the_store_is_not_a_store_failure() -> None:
    auth, store = with_store(JWT_STORE_FAIL_OPEN=True)
    store.raises = RevokedTokenError("revoked by the store")
    response = await get_access(auth, auth.create_access_token("alice"))
    assert (response.status_code, response.json()["error_type"]) == (401, "RevokedTokenError")


async def test_store_is_asked_with_the_token_identity() -> None:
    auth, store = with_store()
    token = auth.create_access_token("alice")
    payload = auth._decode_token(token)
    asked: list[tuple[Any, ...]] = []

    async def is_revoked(jti: str | None, sub: str | None, iat: float | None) -> bool:
        asked.append((jti, sub, iat))
        return False

    store.is_revoked = is_revoked  # type: ignore[method-assign]
    assert (await get_access(auth, token)).status_code == 200
    assert asked == [(payload.jti, "alice", float(payload.iat or 0))]
    assert isinstance(asked[0][2], float)


# Stores set later, and events heard from the store ------------------------------------------------


async def test_a_new_store_is_used_and_subscribed_to() -> None:
    auth, first = with_store()
    token = auth.create_access_token("alice")
    await auth.revoke_token(token)
    second = Recording()
    auth.set_store(second)
    assert await auth.get_store() is second
    # The new store knows nothing of the first one's revocations...
    transport_ok = await get_access(auth, token)
    assert transport_ok.status_code == 200
    # ...and its events reach this process.
    assert second._subscribers
    assert first.writes
    assert not second.writes


async def test_event_published_by_another_process_is_applied() -> None:
    auth, store = with_store()
    await auth.get_store()
    heard: list[RevocationEvent] = []
    auth._revocations.add_listener(lambda event: _record(heard, event))
    await store.publish(RevocationEvent("subject", "alice", before=time.time()))
    assert heard == [RevocationEvent("subject", "alice", before=heard[0].before)]


async def _record(heard: list[RevocationEvent], event: RevocationEvent) -> int:
    heard.append(event)
    return 0


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://user:pw@host/0", "redis://user:***@host/0"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("sqlite:///var/authx.db", "sqlite:///var/authx.db"),
        ("memory://", "memory://"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


async def test_revocation_store_unavailable_error_for_writes() -> None:
    auth, store = with_store()

    async def broken(*_: Any) -> None:
        raise ConnectionError("down")

    store.revoke_subject = broken  # type: ignore[method-assign]
    with pytest.raises(StoreUnavailableError) as raised:
        await auth.revoke_subject("alice")
    assert raised.value.message == "Revocation store unavailable"


async def test_header_and_query_tokens_are_both_checked_against_the_store() -> None:
    auth, _ = with_store(JWT_TOKEN_LOCATION=["headers", "query"])
    token = auth.create_access_token("alice")
    await auth.revoke_token(token)
    for kwargs in ({"headers": bearer(token)}, {"params": {"token": token}}):
        from core_support import serve

        async with serve(auth) as client:
            response = await client.get("/access", **kwargs)  # type: ignore[arg-type]
        assert response.json()["error_type"] == "RevokedTokenError"


async def test_revocation_is_published_for_other_processes() -> None:
    auth, store = with_store()
    published: list[RevocationEvent] = []

    async def publish(event: RevocationEvent) -> None:
        published.append(event)

    store.publish = publish  # type: ignore[method-assign]
    await auth.revoke_token("jti-1")
    await auth.revoke_subject("alice")
    assert published[0] == RevocationEvent("token", "jti-1")
    assert (published[1].kind, published[1].value) == ("subject", "alice")
    assert isinstance(published[1].before, float)


async def test_store_failing_to_subscribe_is_logged_under_its_own_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    auth, store = with_store(JWT_STORE_URL="memory://configured")

    async def subscribe(*_: Any) -> None:
        raise ConnectionError("down")

    store.subscribe = subscribe  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="authx"), pytest.raises(StoreUnavailableError):
        await auth.revoke_subject("alice")
    assert "revocation store redis://:***@store.test:6379/0 unavailable (ConnectionError)" in (
        caplog.text
    )
    assert "memory://configured" not in caplog.text


def test_bad_store_url_fails_when_authx_is_made() -> None:
    with pytest.raises(BadConfigurationError, match="JWT_STORE_URL"):
        make_auth(JWT_STORE_URL="bogus://x")


async def test_store_failing_to_subscribe_on_a_request_is_logged_under_its_own_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    auth, store = with_store(JWT_STORE_URL="memory://configured")

    async def subscribe(*_: Any) -> None:
        raise ConnectionError("down")

    store.subscribe = subscribe  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="authx"):
        response = await get_access(auth, auth.create_access_token("alice"))
    assert response.status_code == 503
    assert "revocation store redis://:***@store.test:6379/0 unavailable (ConnectionError)" in (
        caplog.text
    )


async def test_store_is_subscribed_to_once() -> None:
    auth, store = with_store()
    subscriptions: list[object] = []
    subscribe = store.subscribe

    async def counting(subscriber: Any) -> None:
        subscriptions.append(subscriber)
        await subscribe(subscriber)

    store.subscribe = counting  # type: ignore[method-assign]
    token = auth.create_access_token("alice")
    for _ in range(3):
        assert (await get_access(auth, token)).status_code == 200
    await auth.revoke_subject("bob")
    assert len(subscriptions) == 1


async def test_new_config_with_another_store_url_gets_another_store() -> None:
    auth = make_auth(JWT_STORE_URL="memory://first")
    first = await auth.get_store()
    assert first.url == "memory://first"
    auth.load_config(make_config(JWT_STORE_URL="memory://first", JWT_DECODE_LEEWAY=5))
    assert await auth.get_store() is first
    auth.load_config(make_config(JWT_STORE_URL="memory://second"))
    second = await auth.get_store()
    assert second is not first
    assert second.url == "memory://second"
    auth.load_config(make_config(JWT_STORE_URL="memory://second", JWT_DECODE_LEEWAY=5))
    assert await auth.get_store() is second
    # The new store is the one revocations go to and come from.
    token = auth.create_access_token("alice")
    await auth.revoke_token(token)
    assert await second.is_revoked(auth._decode_token(token).jti, None, None)
    assert (await get_access(auth, token)).json()["error_type"] == "RevokedTokenError"


def test_new_config_with_a_bad_store_url_fails_when_loaded() -> None:
    auth = make_auth()
    with pytest.raises(BadConfigurationError, match="JWT_STORE_URL"):
        auth.load_config(make_config(JWT_STORE_URL="bogus://x"))
