"""Stores that several processes share: what one instance writes, another one sees."""

from __future__ import annotations

import asyncio
import time

from authx.stores import RevocationEvent

from .conftest import Backend
from .test_contract import Inbox


async def test_revocations_are_seen_by_another_instance(shared_backend: Backend) -> None:
    writer, reader = shared_backend.open(), shared_backend.open()
    before = time.time()

    await writer.revoke_token("jti-1", before + 60)
    await writer.revoke_subject("alice", before, before + 60)

    assert await reader.is_revoked("jti-1", None, None)
    assert await reader.is_revoked(None, "alice", before - 1)
    assert not await reader.is_revoked(None, "alice", before + 1)


async def test_ticket_is_taken_once_across_instances(shared_backend: Backend) -> None:
    first, second = shared_backend.open(), shared_backend.open()
    await first.put_ticket("t-1", {"sub": "alice"}, ttl=30)

    taken = await asyncio.gather(
        *(store.take_ticket("t-1") for _ in range(25) for store in (first, second))
    )

    assert [t for t in taken if t is not None] == [{"sub": "alice"}]


async def test_event_reaches_every_instance(shared_backend: Backend) -> None:
    publisher, listener = shared_backend.open(), shared_backend.open()
    heard_by_publisher, heard_by_listener = Inbox(), Inbox()
    await publisher.subscribe(heard_by_publisher)
    await listener.subscribe(heard_by_listener)
    event = RevocationEvent("token", "jti-1")

    await publisher.publish(event)

    assert await heard_by_listener.wait_for(1) == [event]
    assert await heard_by_publisher.wait_for(1) == [event]


async def test_subscriber_hears_only_later_events(shared_backend: Backend) -> None:
    publisher, listener = shared_backend.open(), shared_backend.open()
    await publisher.publish(RevocationEvent("token", "earlier"))
    inbox = Inbox()
    await listener.subscribe(inbox)

    await publisher.publish(RevocationEvent("token", "later"))

    assert await inbox.wait_for(1) == [RevocationEvent("token", "later")]
    await asyncio.sleep(0.2)
    assert len(inbox.events) == 1


async def test_one_listener_task_serves_every_subscriber(shared_backend: Backend) -> None:
    store = shared_backend.open()
    inboxes = [Inbox(), Inbox(), Inbox()]
    for inbox in inboxes:
        await store.subscribe(inbox)

    await shared_backend.open().publish(RevocationEvent("subject", "alice", before=1.0))

    for inbox in inboxes:
        assert await inbox.wait_for(1) == [RevocationEvent("subject", "alice", before=1.0)]
    listeners = [t for t in asyncio.all_tasks() if t.get_name().startswith("authx-")]
    assert len(listeners) == 1


async def test_failing_subscriber_does_not_stop_delivery(shared_backend: Backend) -> None:
    store = shared_backend.open()
    inbox = Inbox()

    async def broken(event: RevocationEvent) -> None:
        raise RuntimeError("subscriber bug")

    await store.subscribe(broken)
    await store.subscribe(inbox)

    await store.publish(RevocationEvent("token", "one"))
    await store.publish(RevocationEvent("token", "two"))

    assert [e.value for e in await inbox.wait_for(2)] == ["one", "two"]
