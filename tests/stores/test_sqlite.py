"""The SQLite store: its URL, WAL mode, durability after a killed process, a free event loop."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from authx.exceptions import BadConfigurationError
from authx.stores import RevocationEvent, store_from_url
from authx.stores.sqlite import SQLiteStore

from .conftest import ROOT


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///authx.db", "authx.db"),
        ("sqlite:///var/lib/authx.db", "var/lib/authx.db"),
        ("sqlite:////srv/authx.db", "/srv/authx.db"),
        ("SQLITE:////srv/authx.db?poll_interval=0.1", "/srv/authx.db"),
    ],
)
def test_url_names_a_relative_or_absolute_file(url: str, path: str) -> None:
    assert SQLiteStore(url).path == path


def test_url_options_and_keywords() -> None:
    store = SQLiteStore("sqlite:///a.db?poll_interval=0.2&busy_timeout=1", purge_interval=5)

    assert (store.poll_interval, store.busy_timeout, store.purge_interval) == (0.2, 1.0, 5.0)
    assert store.event_retention == 600.0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://host/a.db", "not a SQLite URL"),
        ("sqlite:///", "not a SQLite URL"),
        ("sqlite:///a.db?poll=1", "'poll' is unknown"),
        ("sqlite:///a.db?poll_interval=fast", "number of seconds"),
        ("sqlite:///a.db?poll_interval=0", "positive"),
    ],
)
def test_bad_url_fails_early(url: str, message: str) -> None:
    with pytest.raises(BadConfigurationError, match=message):
        SQLiteStore(url)


async def test_file_and_directories_are_created_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "authx.db"
    store = store_from_url(f"sqlite:///{path}")
    await store.revoke_token("jti", time.time() + 60)
    await store.close()

    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_revocation_survives_a_killed_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'authx.db'}"
    script = (
        "import asyncio, os, signal, time\n"
        "from authx.stores.sqlite import SQLiteStore\n"
        "async def main():\n"
        f"    store = SQLiteStore({url!r})\n"
        "    await store.revoke_token('killed-jti', time.time() + 60)\n"
        "    await store.revoke_subject('alice', time.time(), time.time() + 60)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "asyncio.run(main())\n"
    )
    child = subprocess.run([sys.executable, "-c", script], cwd=ROOT, timeout=30, check=False)
    assert child.returncode == -signal.SIGKILL

    store = SQLiteStore(url)
    try:
        assert await store.is_revoked("killed-jti", None, None)
        assert await store.is_revoked(None, "alice", time.time() - 5)
    finally:
        await store.close()


async def test_waiting_for_a_locked_file_does_not_block_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "authx.db"
    store = SQLiteStore(f"sqlite:///{path}", busy_timeout=5)
    await store.revoke_token("warm-up", time.time() + 60)
    # Another process holds the write lock for half a second.
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    asyncio.get_running_loop().call_later(0.5, other.execute, "COMMIT")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    await store.revoke_token("jti", time.time() + 60)
    waited = time.monotonic() - started
    ticker.cancel()
    other.close()
    await store.close()

    assert waited >= 0.4
    assert ticks >= 20


async def test_listener_purges_and_old_events_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "authx.db"
    store = SQLiteStore(
        f"sqlite:///{path}", poll_interval=0.01, purge_interval=0.1, event_retention=0.1
    )

    async def ignore(event: RevocationEvent) -> None:
        pass

    await store.subscribe(ignore)
    await store.revoke_token("gone", time.time() + 0.05)
    await store.publish(RevocationEvent("token", "gone"))
    await asyncio.sleep(0.5)
    await store.close()

    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM authx_revoked_tokens").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM authx_revocation_events").fetchone() == (0,)


async def test_event_ids_are_not_reused_after_a_purge(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'authx.db'}"
    publisher = SQLiteStore(url, event_retention=0.01)
    listener = SQLiteStore(url, poll_interval=0.01)
    heard: list[RevocationEvent] = []

    async def keep(event: RevocationEvent) -> None:
        heard.append(event)

    await publisher.publish(RevocationEvent("token", "first"))
    await listener.subscribe(keep)
    await asyncio.sleep(0.05)
    await publisher.purge()  # empties the events table
    await publisher.publish(RevocationEvent("token", "second"))
    await asyncio.sleep(0.2)
    await publisher.close()
    await listener.close()

    assert heard == [RevocationEvent("token", "second")]


async def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'authx.db'}")
    await store.close()
    await store.close()

    with pytest.raises(RuntimeError, match="closed"):
        await store.is_revoked("jti", None, None)
