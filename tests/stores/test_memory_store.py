"""The memory store at the exact instants its entries start and stop counting.

The clock the store reads (``time.time`` as seen by ``authx.stores.memory``) is
pinned, so every case sits on a boundary: a revocation or a ticket stops
counting at its expiry (that instant included), a subject revocation covers
tokens issued up to and including ``before``.
"""

from __future__ import annotations

import asyncio
import types
from typing import Any

import pytest

import authx.stores.memory
from authx.stores import MemoryStore, RevocationEvent

NOW = 1_700_000_000.5
MS = 0.001


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    pinned = types.SimpleNamespace(now=NOW)
    monkeypatch.setattr(authx.stores.memory, "time", types.SimpleNamespace(time=lambda: pinned.now))
    return pinned


async def test_token_revocation_counts_until_its_expiry(clock: Any) -> None:
    store = MemoryStore()
    await store.revoke_token("jti", NOW + 10)
    clock.now = NOW + 10 - MS
    assert await store.is_revoked("jti", None, None)
    clock.now = NOW + 10
    assert not await store.is_revoked("jti", None, None)
    assert not await store.is_revoked("other", None, None)


async def test_token_revocation_keeps_the_later_expiry(clock: Any) -> None:
    store = MemoryStore()
    await store.revoke_token("jti", NOW + 10)
    await store.revoke_token("jti", NOW + 5)
    clock.now = NOW + 7
    assert await store.is_revoked("jti", None, None)
    await store.revoke_token("jti", NOW + 20)
    clock.now = NOW + 15
    assert await store.is_revoked("jti", None, None)


@pytest.mark.parametrize(
    ("iat", "revoked"),
    [(NOW - 100, True), (NOW, True), (NOW + MS, False), (None, True)],
    ids=["issued-before", "issued-at", "issued-after", "unknown-issue-time"],
)
async def test_subject_revocation_covers_tokens_issued_until_before(
    clock: Any, iat: float | None, revoked: bool
) -> None:
    store = MemoryStore()
    await store.revoke_subject("alice", NOW, NOW + 60)
    assert await store.is_revoked(None, "alice", iat) is revoked
    assert await store.is_revoked("any-jti", "alice", iat) is revoked
    assert not await store.is_revoked(None, "bob", iat)


async def test_subject_revocation_counts_until_its_expiry(clock: Any) -> None:
    store = MemoryStore()
    await store.revoke_subject("alice", NOW, NOW + 60)
    clock.now = NOW + 60 - MS
    assert await store.is_revoked(None, "alice", NOW - 1)
    clock.now = NOW + 60
    assert not await store.is_revoked(None, "alice", NOW - 1)


async def test_subject_revocation_keeps_the_later_before_and_expiry(clock: Any) -> None:
    store = MemoryStore()
    await store.revoke_subject("alice", NOW, NOW + 60)
    await store.revoke_subject("alice", NOW - 50, NOW + 10)
    clock.now = NOW + 30
    assert await store.is_revoked(None, "alice", NOW)
    await store.revoke_subject("alice", NOW + 20, NOW + 5)
    assert await store.is_revoked(None, "alice", NOW + 20)
    clock.now = NOW + 59
    assert await store.is_revoked(None, "alice", NOW + 20)


async def test_revoked_token_is_revoked_whatever_its_subject(clock: Any) -> None:
    store = MemoryStore()
    await store.revoke_token("jti", NOW + 60)
    await store.revoke_subject("alice", NOW - 100, NOW + 60)
    assert await store.is_revoked("jti", "alice", NOW)
    assert await store.is_revoked("jti", "bob", None)
    assert not await store.is_revoked("other", "alice", NOW)


async def test_ticket_lives_for_its_ttl(clock: Any) -> None:
    store = MemoryStore()
    await store.put_ticket("t1", {"sub": "alice"}, ttl=30)
    await store.put_ticket("t2", {"sub": "bob"}, ttl=30)
    clock.now = NOW + 30 - MS
    assert await store.take_ticket("t1") == {"sub": "alice"}
    assert await store.take_ticket("t1") is None
    clock.now = NOW + 30
    assert await store.take_ticket("t2") is None


async def test_ticket_data_is_copied_when_stored(clock: Any) -> None:
    store = MemoryStore()
    data: dict[str, Any] = {"sub": "alice"}
    await store.put_ticket("t", data, ttl=30)
    data["sub"] = "mallory"
    assert await store.take_ticket("t") == {"sub": "alice"}


async def test_purge_removes_what_expired_by_now(clock: Any) -> None:
    store = MemoryStore()
    await store.revoke_token("gone", NOW + 10)
    await store.revoke_token("kept", NOW + 11)
    await store.revoke_subject("gone", NOW, NOW + 10)
    await store.revoke_subject("kept", NOW, NOW + 11)
    await store.put_ticket("gone", {}, ttl=10)
    await store.put_ticket("kept", {}, ttl=11)
    clock.now = NOW + 10
    assert await store.purge() == 3
    assert await store.purge() == 0
    assert await store.is_revoked("kept", None, None)
    assert await store.is_revoked(None, "kept", NOW)
    assert await store.take_ticket("kept") == {}


async def test_publish_reaches_every_subscriber_until_closed() -> None:
    store = MemoryStore()
    heard: list[tuple[str, RevocationEvent]] = []

    def subscriber(name: str) -> Any:
        async def hear(event: RevocationEvent) -> None:
            await asyncio.sleep(0)
            heard.append((name, event))

        return hear

    for name in ("a", "b", "c"):
        await store.subscribe(subscriber(name))
    event = RevocationEvent("token", "jti")
    await store.publish(event)
    assert sorted(heard) == [("a", event), ("b", event), ("c", event)]
    await store.close()
    await store.publish(RevocationEvent("token", "after"))
    assert len(heard) == 3


def test_url_is_kept() -> None:
    assert MemoryStore().url == "memory://"
    assert MemoryStore("memory://named").url == "memory://named"
