"""The store protocols: revocations, single-use tickets, revocation events and rate limits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = ["BatchRevocationStore", "RateLimitStore", "RevocationEvent", "Store", "Subscriber"]


@dataclass(frozen=True)
class RevocationEvent:
    """A token (``jti``) or every token of a subject issued up to ``before`` was revoked.

    ``kind="resync"`` is never published: a store hands it to its own subscribers
    when events may have been missed (a lost connection, a poll that failed), so
    that they re-check what they hold against the store.
    """

    kind: Literal["token", "subject", "resync"]
    value: str
    before: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RevocationEvent:
        kind = data.get("kind")
        value = data.get("value")
        before = data.get("before")
        if kind not in ("token", "subject") or not isinstance(value, str):
            raise ValueError("not a revocation event")
        if before is not None and not isinstance(before, int | float):
            raise ValueError("not a revocation event")
        return cls(kind=kind, value=value, before=before)


Subscriber = Callable[[RevocationEvent], Awaitable[object]]


@runtime_checkable
class Store(Protocol):
    """Where revocations and tickets live; every method is a coroutine.

    Times are POSIX timestamps. ``expires_at`` is when an entry may be forgotten
    (a revoked token's own ``exp``): stores purge entries past it.
    """

    url: str

    async def revoke_token(self, jti: str, expires_at: float) -> None:
        """Mark ``jti`` revoked until ``expires_at``."""

    async def revoke_subject(self, sub: str, before: float, expires_at: float) -> None:
        """Mark every token of ``sub`` issued at or before ``before`` as revoked."""

    async def is_revoked(self, jti: str | None, sub: str | None, iat: float | None) -> bool:
        """Whether the token ``jti`` is revoked, or its subject was revoked after ``iat``."""

    async def put_ticket(self, ticket: str, data: dict[str, Any], ttl: float) -> None:
        """Store a single-use ``ticket`` for ``ttl`` seconds."""

    async def take_ticket(self, ticket: str) -> dict[str, Any] | None:
        """Return and delete ``ticket`` atomically; None if absent, expired or taken."""

    async def publish(self, event: RevocationEvent) -> None:
        """Tell every subscriber, in every process sharing the store, about ``event``."""

    async def subscribe(self, subscriber: Subscriber) -> None:
        """Call ``subscriber`` for each published event until :meth:`close`."""

    async def purge(self) -> int:
        """Delete expired entries; return how many were deleted."""

    async def close(self) -> None:
        """Release connections and stop delivering events."""


@runtime_checkable
class RateLimitStore(Protocol):
    """A store that can keep token buckets shared by every process using it.

    A bucket holds up to ``burst`` tokens and gains ``rate`` tokens a second; an
    unknown ``key`` is a full bucket, and a bucket may be forgotten once full again.
    """

    async def take_token(self, key: str, rate: float, burst: float) -> float:
        """Take one token from bucket ``key``.

        Return 0.0 if admitted, else the seconds until a token is available.
        """

    async def add_penalty(self, key: str, rate: float, burst: float, cost: float) -> None:
        """Remove ``cost`` tokens from bucket ``key`` (after a failed authentication).

        The bucket never goes below ``-burst`` tokens.
        """


#: A token to re-check: its ``jti``, ``sub`` and ``iat`` (each may be unknown).
Entry = tuple[str | None, str | None, float | None]


@runtime_checkable
class BatchRevocationStore(Protocol):
    """A store that answers many ``is_revoked`` questions in one round trip."""

    async def revoked_among(self, entries: Sequence[Entry]) -> list[bool]:
        """``is_revoked`` of each entry, in order."""
