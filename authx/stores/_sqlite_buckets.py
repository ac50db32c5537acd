"""SQLite rate-limit buckets: one row per key, read and written in one transaction."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

__all__ = ["update_bucket"]


def update_bucket(
    db: sqlite3.Connection,
    key: str,
    rate: float,
    burst: float,
    spend: Callable[[float], tuple[float, float]],
) -> float:
    """Refill bucket ``key``, let ``spend`` map its tokens to (tokens, wait); return the wait.

    The read and the write are one transaction that holds the file's write lock, so two
    processes never spend the same token.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        # Read the clock under the lock, so that the writers' times come in order.
        now = time.time()
        row = db.execute(
            "SELECT tokens, updated_at FROM authx_rate_buckets WHERE key = ?", (key,)
        ).fetchone()
        tokens = burst if row is None else min(burst, row[0] + max(0.0, now - row[1]) * rate)
        tokens, wait = spend(tokens)
        db.execute(
            "INSERT INTO authx_rate_buckets (key, tokens, updated_at, full_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, "
            "updated_at = excluded.updated_at, full_at = excluded.full_at",
            (key, tokens, now, now + (burst - tokens) / rate),
        )
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return wait
