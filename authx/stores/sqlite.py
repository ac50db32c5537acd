"""The embedded store: one SQLite file shared by every process on a machine, kept across restarts.

``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``, with optional
query options ``poll_interval`` (seconds between event polls, default 0.05),
``busy_timeout`` (seconds to wait for another process's write lock, default 5),
``purge_interval`` (seconds, default 60) and ``event_retention`` (seconds an
event row is kept, default 600), e.g. ``sqlite:///authx.db?poll_interval=0.1``.

The file is in WAL mode, so readers never wait for the writer and a committed
revocation survives the process being killed. All file I/O runs on one worker
thread per store, never on the event loop. Revocation events are rows in a table
that a single background task per store polls; their delay is one poll interval.
Rate-limit buckets are rows, each read and written in one transaction under the
file's write lock.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from authx.exceptions import BadConfigurationError
from authx.stores._base import Entry, RevocationEvent, Subscriber
from authx.stores._delivery import EventListener
from authx.stores._sqlite_buckets import update_bucket

__all__ = ["SQLiteStore"]

logger = logging.getLogger("authx")

T = TypeVar("T")

_DEFAULTS = {
    "poll_interval": 0.05,
    "busy_timeout": 5.0,
    "purge_interval": 60.0,
    "event_retention": 600.0,
}
#: Longest pause between polls while the file cannot be read.
_MAX_BACKOFF = 2.0
#: Events read per poll; a longer backlog is read on the next, immediate poll.
_BATCH = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS authx_revoked_tokens (
    jti TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS authx_revoked_subjects (
    sub TEXT PRIMARY KEY, before REAL NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS authx_tickets (
    ticket TEXT PRIMARY KEY, data TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS authx_revocation_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS authx_rate_buckets (
    key TEXT PRIMARY KEY, tokens REAL NOT NULL, updated_at REAL NOT NULL, full_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS authx_revoked_tokens_expiry ON authx_revoked_tokens (expires_at);
CREATE INDEX IF NOT EXISTS authx_revocation_events_age ON authx_revocation_events (created_at);
CREATE INDEX IF NOT EXISTS authx_rate_buckets_full ON authx_rate_buckets (full_at);
"""


class SQLiteStore:
    """Revocations, tickets, revocation events and rate-limit buckets in one SQLite file."""

    def __init__(
        self,
        url: str,
        *,
        poll_interval: float | None = None,
        busy_timeout: float | None = None,
        purge_interval: float | None = None,
        event_retention: float | None = None,
    ) -> None:
        self.url = url
        self.path, options = _parse_url(url)
        self.poll_interval = _pick(poll_interval, options, "poll_interval")
        self.busy_timeout = _pick(busy_timeout, options, "busy_timeout")
        self.purge_interval = _pick(purge_interval, options, "purge_interval")
        self.event_retention = _pick(event_retention, options, "event_retention")
        # One worker thread owns the connection, so calls are serialised without a lock.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="authx-sqlite")
        self._connection: sqlite3.Connection | None = None
        #: (device, inode) of the open file; None for ":memory:" or before the first use.
        self._file_id: tuple[int, int] | None = None
        self._events = EventListener()

    async def revoke_token(self, jti: str, expires_at: float) -> None:
        await self._execute(
            "INSERT INTO authx_revoked_tokens (jti, expires_at) VALUES (?, ?) "
            "ON CONFLICT (jti) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)",
            (jti, expires_at),
        )

    async def revoke_subject(self, sub: str, before: float, expires_at: float) -> None:
        await self._execute(
            "INSERT INTO authx_revoked_subjects (sub, before, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (sub) DO UPDATE SET before = max(before, excluded.before), "
            "expires_at = max(expires_at, excluded.expires_at)",
            (sub, before, expires_at),
        )

    async def is_revoked(self, jti: str | None, sub: str | None, iat: float | None) -> bool:
        if jti is None and sub is None:
            return False
        return await self._run(lambda db: _is_revoked(db, jti, sub, iat, time.time()))

    async def revoked_among(self, entries: Sequence[Entry]) -> list[bool]:
        """``is_revoked`` of each entry, in one trip to the store's thread."""
        now = time.time()
        return await self._run(lambda db: [_is_revoked(db, *entry, now) for entry in entries])

    async def put_ticket(self, ticket: str, data: dict[str, Any], ttl: float) -> None:
        await self._execute(
            "INSERT OR REPLACE INTO authx_tickets (ticket, data, expires_at) VALUES (?, ?, ?)",
            (ticket, json.dumps(data), time.time() + ttl),
        )

    async def take_ticket(self, ticket: str) -> dict[str, Any] | None:
        # DELETE ... RETURNING is one statement: of many takers, only one gets the row.
        row = await self._run(
            lambda db: db.execute(
                "DELETE FROM authx_tickets WHERE ticket = ? RETURNING data, expires_at", (ticket,)
            ).fetchone()
        )
        if row is None or row[1] <= time.time():
            return None
        data: dict[str, Any] = json.loads(row[0])
        return data

    async def take_token(self, key: str, rate: float, burst: float) -> float:
        """Take a token from the bucket ``key`` shared by every process on this file."""

        def take(tokens: float) -> tuple[float, float]:
            if tokens >= 1:
                return tokens - 1, 0.0
            return tokens, (1 - tokens) / rate

        return await self._run(lambda db: update_bucket(db, key, rate, burst, take))

    async def add_penalty(self, key: str, rate: float, burst: float, cost: float) -> None:
        """Remove ``cost`` tokens from the bucket ``key``, down to ``-burst`` at most."""

        def penalise(tokens: float) -> tuple[float, float]:
            return max(-burst, tokens - cost), 0.0

        await self._run(lambda db: update_bucket(db, key, rate, burst, penalise))

    async def publish(self, event: RevocationEvent) -> None:
        """Append ``event`` to the events table; subscribed stores read it at their next poll."""
        await self._execute(
            "INSERT INTO authx_revocation_events (created_at, data) VALUES (?, ?)",
            (time.time(), json.dumps(event.to_dict())),
        )

    async def subscribe(self, subscriber: Subscriber) -> None:
        """Call ``subscriber`` for events published from now on, by any process on this file."""
        await self._events.subscribe(
            subscriber, self._listen, "authx-sqlite-events", ready_timeout=None
        )

    async def purge(self) -> int:
        """Delete expired revocations, tickets and full rate buckets (counted), and old events."""
        now = time.time()
        return await self._run(lambda db: _purge(db, now, now - self.event_retention))

    async def close(self) -> None:
        if not await self._events.close():
            return
        await asyncio.get_running_loop().run_in_executor(self._executor, self._disconnect)
        self._executor.shutdown(wait=False)

    async def _listen(self, ready: asyncio.Event) -> None:
        """Poll for new events, purge now and then, and back off while the file is unreadable."""
        try:
            await self._poll_forever(ready)
        finally:
            ready.set()

    async def _poll_forever(self, ready: asyncio.Event) -> None:
        last_id: int | None = None
        next_purge = time.monotonic() + self.purge_interval
        failures = 0
        while True:
            delay = self.poll_interval
            try:
                if last_id is None:
                    # Start after the newest event: subscribers hear only what comes next.
                    last_id = await self._run(_newest_event_id)
                    ready.set()
                rows = await self._run(functools.partial(_events_after, after=last_id))
                if rows and rows[0][0] > last_id + 1:
                    # Ids are consecutive (one writer at a time): events between were
                    # purged before this poller read them.
                    await self._events.deliver(RevocationEvent("resync", ""))
                for event_id, data in rows:
                    last_id = event_id
                    event = _decode_event(data)
                    if event is not None:
                        await self._events.deliver(event)
                if len(rows) == _BATCH:
                    delay = 0.0
                if time.monotonic() >= next_purge:
                    next_purge = time.monotonic() + self.purge_interval
                    await self.purge()
                if failures:
                    logger.info("revocation store %s is readable again", self.path)
                    # Events purged while it was unreadable are gone: have them re-checked.
                    await self._events.deliver(RevocationEvent("resync", ""))
                failures = 0
            except Exception as exc:  # noqa: BLE001 - the listener must outlive any failure
                ready.set()
                if not failures:
                    logger.warning(
                        "cannot read revocation events from %s (%s: %s)",
                        self.path,
                        type(exc).__name__,
                        exc,
                    )
                failures += 1
                delay = min(self.poll_interval * 2**failures, _MAX_BACKOFF)
            await asyncio.sleep(delay)

    async def _execute(self, sql: str, parameters: tuple[Any, ...]) -> None:
        await self._run(lambda db: db.execute(sql, parameters))

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` with the connection on the store's own thread, off the event loop."""
        if self._events.closed:
            raise RuntimeError(f"the store {self.path} is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._with_connection, work)

    def _with_connection(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._connection is not None and not self._same_file():
            self._disconnect()
        if self._connection is None:
            if self._file_id is not None and not Path(self.path).exists():
                # The file this store wrote to is gone: its revocations went with it, and
                # a write now would not be seen by the other processes on this URL.
                raise sqlite3.OperationalError(f"the store file {self.path} was deleted")
            self._connection = _connect(self.path, self.busy_timeout)
            self._file_id = _file_id(self.path)
        return work(self._connection)

    def _same_file(self) -> bool:
        """Whether the path still names the file the connection has open."""
        return self._file_id is None or _file_id(self.path) == self._file_id

    def _disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _parse_url(url: str) -> tuple[str, dict[str, float]]:
    """The file path and numeric options of ``sqlite:///path?option=value``."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqlite" or parts.netloc or len(parts.path) < 2:
        raise BadConfigurationError(
            f"JWT_STORE_URL {url!r} is not a SQLite URL: use sqlite:///relative/path.db "
            "or sqlite:////absolute/path.db"
        )
    options: dict[str, float] = {}
    for name, values in parse_qs(parts.query, keep_blank_values=True).items():
        if name not in _DEFAULTS:
            raise BadConfigurationError(
                f"JWT_STORE_URL option {name!r} is unknown; allowed: {', '.join(_DEFAULTS)}"
            )
        try:
            options[name] = float(values[-1])
        except ValueError:
            raise BadConfigurationError(
                f"JWT_STORE_URL option {name!r} must be a number of seconds"
            ) from None
    return parts.path[1:], options


def _pick(value: float | None, options: dict[str, float], name: str) -> float:
    chosen = value if value is not None else options.get(name, _DEFAULTS[name])
    if not chosen > 0:
        raise BadConfigurationError(f"SQLite store option {name!r} must be a positive number")
    return chosen


def _file_id(path: str) -> tuple[int, int] | None:
    if path == ":memory:":
        return None
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return (-1, -1)
    return (stat.st_dev, stat.st_ino)


def _connect(path: str, busy_timeout: float) -> sqlite3.Connection:
    """Open ``path`` in WAL mode with autocommit, creating the file and tables if needed."""
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    try:
        _enable_wal(db, busy_timeout)
        # NORMAL loses nothing when a process dies; only a power cut may drop the last commits.
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
    except BaseException:
        db.close()
        raise
    return db


def _enable_wal(db: sqlite3.Connection, busy_timeout: float) -> None:
    """Switch to WAL mode, waiting up to ``busy_timeout`` for another process doing the same."""
    # Converting a new file needs it to itself, and SQLite then answers SQLITE_BUSY at once
    # instead of calling the busy handler: processes opening a new file together would fail.
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
        time.sleep(0.01)


def _is_revoked(
    db: sqlite3.Connection, jti: str | None, sub: str | None, iat: float | None, now: float
) -> bool:
    if jti is not None:
        row = db.execute(
            "SELECT 1 FROM authx_revoked_tokens WHERE jti = ? AND expires_at > ?", (jti, now)
        ).fetchone()
        if row is not None:
            return True
    if sub is not None:
        row = db.execute(
            "SELECT before FROM authx_revoked_subjects WHERE sub = ? AND expires_at > ?",
            (sub, now),
        ).fetchone()
        if row is not None:
            return iat is None or iat <= row[0]
    return False


def _newest_event_id(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT max(id) FROM authx_revocation_events").fetchone()
    return int(row[0] or 0)


def _events_after(db: sqlite3.Connection, after: int) -> list[tuple[int, str]]:
    rows = db.execute(
        "SELECT id, data FROM authx_revocation_events WHERE id > ? ORDER BY id LIMIT ?",
        (after, _BATCH),
    ).fetchall()
    return [(int(event_id), str(data)) for event_id, data in rows]


def _decode_event(data: str) -> RevocationEvent | None:
    try:
        return RevocationEvent.from_dict(json.loads(data))
    except (ValueError, TypeError, AttributeError):
        logger.warning("ignoring a malformed revocation event in the SQLite store")
        return None


def _purge(db: sqlite3.Connection, now: float, events_before: float) -> int:
    removed = 0
    for table in ("authx_revoked_tokens", "authx_revoked_subjects", "authx_tickets"):
        removed += db.execute(f"DELETE FROM {table} WHERE expires_at <= ?", (now,)).rowcount  # noqa: S608 - fixed table names
    # A bucket that has refilled is the same as no bucket at all.
    removed += db.execute("DELETE FROM authx_rate_buckets WHERE full_at <= ?", (now,)).rowcount
    db.execute("DELETE FROM authx_revocation_events WHERE created_at <= ?", (events_before,))
    return removed
