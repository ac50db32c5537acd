"""The re-check after a gap in revocation events, in-process: sessions revoked in the
store while this process heard nothing are closed; the others stay; a store that is
still away is retried; stores say when they may have missed events."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from authx.stores import MemoryStore, RevocationEvent
from authx.stores import sqlite as sqlite_module
from authx.stores.sqlite import SQLiteStore
from tests.websocket.test_registry import closes, connect, end_all, make_app


class Flaky(MemoryStore):
    """A memory store whose batch answers fail ``failures`` times first."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.batches: list[int] = []

    async def revoked_among(self, entries: Any) -> list[bool]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("still away")
        self.batches.append(len(entries))
        return await super().revoked_among(entries)


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_resync_closes_what_was_revoked_while_nothing_was_heard() -> None:
    app, auth = make_app()
    store = MemoryStore()
    auth.set_store(store)
    revoked = auth.create_access_token(uid="alice")
    kept = auth.create_access_token(uid="bob")
    subject_gone = auth.create_access_token(uid="carol")
    a, b, c = [await connect(app, f"token={t}") for t in (revoked, kept, subject_gone)]
    # Written by another process: this one hears no event.
    jti = auth._decode_token(revoked).jti
    assert jti is not None
    await store.revoke_token(jti, time.time() + 60)
    await store.revoke_subject("carol", time.time() + 1, time.time() + 60)
    assert closes(a[1]) == closes(c[1]) == []

    await auth._live.apply(RevocationEvent("resync", ""))
    await _until(lambda: closes(a[1]) and closes(c[1]))
    assert closes(a[1]) == [(4004, "token_revoked")]
    assert closes(c[1]) == [(4004, "token_revoked")]
    assert closes(b[1]) == []
    assert [s.payload.sub for s in auth.active_connections()] == ["bob"]
    await end_all(a, b, c)


async def test_resync_retries_while_the_store_is_still_away(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from authx.websocket import _registry

    monkeypatch.setattr(_registry, "_RESYNC_RETRY", 0.05)
    app, auth = make_app()
    store = Flaky(failures=3)
    auth.set_store(store)
    token = auth.create_access_token(uid="alice")
    session = await connect(app, f"token={token}")
    await store.revoke_subject("alice", time.time() + 1, time.time() + 60)
    with caplog.at_level("INFO", logger="authx"):
        await auth._live.apply(RevocationEvent("resync", ""))
        await _until(lambda: bool(closes(session[1])))
    assert closes(session[1]) == [(4004, "token_revoked")]
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1  # once, not once per retry
    assert "cannot re-check live connections" in warnings[0].getMessage()
    assert any("re-checked 1 connection(s)" in r.getMessage() for r in caplog.records)
    await end_all(session)


async def test_resync_asks_in_batches() -> None:
    from authx.websocket import _registry

    app, auth = make_app()
    store = Flaky(failures=0)
    auth.set_store(store)
    sessions = [
        await connect(app, f"token={auth.create_access_token(uid=f'u{i}')}")
        for i in range(_registry._RESYNC_BATCH + 20)
    ]
    checked, closed = await auth._live.recheck()
    assert (checked, closed) == (_registry._RESYNC_BATCH + 20, 0)
    assert store.batches == [_registry._RESYNC_BATCH, 20]
    await end_all(*sessions)


async def test_resync_events_are_never_read_from_the_wire() -> None:
    with pytest.raises(ValueError, match="not a revocation event"):
        RevocationEvent.from_dict({"kind": "resync", "value": ""})


async def test_sqlite_store_asks_for_a_resync_after_failed_polls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'gap.db'}?poll_interval=0.02")
    heard: list[RevocationEvent] = []

    async def subscriber(event: RevocationEvent) -> None:
        heard.append(event)

    await store.subscribe(subscriber)
    real = sqlite_module._events_after
    failing = {"left": 3}

    def events_after(db: sqlite3.Connection, after: int) -> Any:
        if failing["left"]:
            failing["left"] -= 1
            raise sqlite3.OperationalError("database is locked")
        return real(db, after=after)

    monkeypatch.setattr(sqlite_module, "_events_after", events_after)
    await _until(lambda: any(e.kind == "resync" for e in heard))
    assert [e.kind for e in heard] == ["resync"]
    await store.close()


async def test_sqlite_store_asks_for_a_resync_when_unread_events_were_purged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'purged.db'}?poll_interval=0.02"
    reader, writer = SQLiteStore(url), SQLiteStore(url)
    heard: list[RevocationEvent] = []

    async def subscriber(event: RevocationEvent) -> None:
        heard.append(event)

    await reader.subscribe(subscriber)
    await writer.publish(RevocationEvent("token", "first"))
    await _until(lambda: len(heard) == 1)
    # The reader falls behind: two events are written and purged before it reads them.
    real = sqlite_module._events_after
    behind = {"on": True}

    def events_after(db: sqlite3.Connection, after: int) -> Any:
        return [] if behind["on"] else real(db, after=after)

    monkeypatch.setattr(sqlite_module, "_events_after", events_after)
    for value in ("missed-1", "missed-2"):
        await writer.publish(RevocationEvent("token", value))
    await writer._run(lambda db: db.execute("DELETE FROM authx_revocation_events WHERE id <= 3"))
    await writer.publish(RevocationEvent("token", "after"))
    behind["on"] = False
    await _until(lambda: len(heard) == 3)
    assert heard == [
        RevocationEvent("token", "first"),
        RevocationEvent("resync", ""),
        RevocationEvent("token", "after"),
    ]
    await reader.close()
    await writer.close()
