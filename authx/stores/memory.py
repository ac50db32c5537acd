"""The process-local store: the reference implementation the others must match."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from authx.stores._base import Entry, RevocationEvent, Subscriber

__all__ = ["MemoryStore"]


class MemoryStore:
    """Revocations and tickets in dictionaries; events reach this process only."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._tokens: dict[str, float] = {}
        self._subjects: dict[str, tuple[float, float]] = {}
        self._tickets: dict[str, tuple[dict[str, Any], float]] = {}
        self._subscribers: list[Subscriber] = []

    async def revoke_token(self, jti: str, expires_at: float) -> None:
        self._tokens[jti] = max(expires_at, self._tokens.get(jti, 0.0))

    async def revoke_subject(self, sub: str, before: float, expires_at: float) -> None:
        old_before, old_expiry = self._subjects.get(sub, (0.0, 0.0))
        self._subjects[sub] = (max(before, old_before), max(expires_at, old_expiry))

    async def is_revoked(self, jti: str | None, sub: str | None, iat: float | None) -> bool:
        now = time.time()
        if jti is not None:
            expiry = self._tokens.get(jti)
            if expiry is not None and expiry > now:
                return True
        if sub is not None:
            entry = self._subjects.get(sub)
            if entry is not None and entry[1] > now:
                return iat is None or iat <= entry[0]
        return False

    async def revoked_among(self, entries: Sequence[Entry]) -> list[bool]:
        return [await self.is_revoked(*entry) for entry in entries]

    async def put_ticket(self, ticket: str, data: dict[str, Any], ttl: float) -> None:
        self._tickets[ticket] = (dict(data), time.time() + ttl)

    async def take_ticket(self, ticket: str) -> dict[str, Any] | None:
        entry = self._tickets.pop(ticket, None)
        if entry is None or entry[1] <= time.time():
            return None
        return entry[0]

    async def publish(self, event: RevocationEvent) -> None:
        await asyncio.gather(*(subscriber(event) for subscriber in list(self._subscribers)))

    async def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    async def purge(self) -> int:
        now = time.time()
        removed = 0
        for table in (self._tokens, self._subjects, self._tickets):
            expired = [key for key, value in table.items() if _expiry(value) <= now]
            for key in expired:
                del table[key]
            removed += len(expired)
        return removed

    async def close(self) -> None:
        self._subscribers.clear()


def _expiry(value: Any) -> float:
    return float(value[1] if isinstance(value, tuple) else value)
