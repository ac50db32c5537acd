"""The behaviour every store shares, proven against memory, SQLite and Redis alike."""

from __future__ import annotations

import asyncio
import time

from authx.stores import RevocationEvent, Store

from .conftest import Backend


class Inbox:
    """A subscriber that keeps what it hears."""

    def __init__(self) -> None:
        self.events: list[RevocationEvent] = []
        self._arrived = asyncio.Condition()

    async def __call__(self, event: RevocationEvent) -> None:
        async with self._arrived:
            self.events.append(event)
            self._arrived.notify_all()

    async def wait_for(self, count: int, timeout: float = 2.0) -> list[RevocationEvent]:
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.events) >= count), timeout
            )
        return self.events


async def test_revoked_token_is_revoked(store: Store) -> None:
    await store.revoke_token("jti-1", time.time() + 60)

    assert await store.is_revoked("jti-1", None, None)
    assert await store.is_revoked("jti-1", "alice", time.time())
    assert not await store.is_revoked("jti-2", None, None)
    assert not await store.is_revoked(None, None, None)


async def test_token_revocation_expires(store: Store) -> None:
    await store.revoke_token("short", time.time() + 0.4)
    assert await store.is_revoked("short", None, None)

    await asyncio.sleep(0.6)

    assert not await store.is_revoked("short", None, None)


async def test_revoking_again_never_shortens(store: Store) -> None:
    await store.revoke_token("jti", time.time() + 60)
    await store.revoke_token("jti", time.time() + 0.2)
    await store.revoke_subject("alice", time.time(), time.time() + 60)
    await store.revoke_subject("alice", time.time() - 100, time.time() + 0.2)

    await asyncio.sleep(0.4)

    assert await store.is_revoked("jti", None, None)
    assert await store.is_revoked(None, "alice", time.time() - 1)


async def test_subject_revocation_covers_tokens_issued_until_then(store: Store) -> None:
    before = time.time()
    await store.revoke_subject("alice", before, before + 60)

    assert await store.is_revoked(None, "alice", before - 10)
    assert await store.is_revoked(None, "alice", before)
    assert await store.is_revoked("unrelated-jti", "alice", int(before))
    assert await store.is_revoked(None, "alice", None)
    assert not await store.is_revoked(None, "alice", before + 1)
    assert not await store.is_revoked(None, "bob", before - 10)


async def test_subject_revocation_expires(store: Store) -> None:
    before = time.time()
    await store.revoke_subject("alice", before, before + 0.4)

    await asyncio.sleep(0.6)

    assert not await store.is_revoked(None, "alice", before - 10)


async def test_ticket_is_taken_once_by_50_concurrent_takers(store: Store) -> None:
    await store.put_ticket("t-1", {"sub": "alice", "scopes": ["read"]}, ttl=30)

    taken = await asyncio.gather(*(store.take_ticket("t-1") for _ in range(50)))

    assert [t for t in taken if t is not None] == [{"sub": "alice", "scopes": ["read"]}]
    assert await store.take_ticket("t-1") is None


async def test_expired_or_unknown_ticket_is_not_returned(store: Store) -> None:
    await store.put_ticket("short", {"sub": "alice"}, ttl=0.3)
    await store.put_ticket("stillborn", {"sub": "alice"}, ttl=0)

    await asyncio.sleep(0.5)

    assert await store.take_ticket("short") is None
    assert await store.take_ticket("stillborn") is None
    assert await store.take_ticket("never-issued") is None


async def test_published_event_reaches_subscriber(store: Store) -> None:
    inbox = Inbox()
    await store.subscribe(inbox)
    event = RevocationEvent("subject", "alice", before=1_700_000_000.25)

    await store.publish(event)

    assert await inbox.wait_for(1) == [event]


async def test_purge_removes_expired_entries(backend: Backend) -> None:
    store = backend.open()
    now = time.time()
    await store.revoke_token("gone", now + 0.2)
    await store.revoke_subject("gone", now, now + 0.2)
    await store.put_ticket("gone", {}, ttl=0.2)
    await store.revoke_token("kept", now + 60)
    await asyncio.sleep(0.4)

    removed = await store.purge()

    # Redis expires keys by itself, so its purge has nothing left to do.
    assert removed == (0 if backend.kind == "redis" else 3)
    assert await store.purge() == 0
    assert await store.is_revoked("kept", None, None)
    assert not await store.is_revoked("gone", "gone", now - 1)


async def test_close_stops_delivery(backend: Backend) -> None:
    store = backend.open()
    inbox = Inbox()
    await store.subscribe(inbox)
    await store.close()

    await backend.open().publish(RevocationEvent("token", "after-close"))
    await asyncio.sleep(0.3)

    assert inbox.events == []


def test_every_store_meets_the_protocol(store: Store) -> None:
    assert isinstance(store, Store)
