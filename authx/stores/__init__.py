"""Stores for revocations and tickets: ``memory://``, ``sqlite:///path`` and ``redis://``."""

from __future__ import annotations

from authx.exceptions import BadConfigurationError
from authx.stores._base import (
    BatchRevocationStore,
    RateLimitStore,
    RevocationEvent,
    Store,
    Subscriber,
)
from authx.stores.memory import MemoryStore

__all__ = [
    "BatchRevocationStore",
    "MemoryStore",
    "RateLimitStore",
    "RevocationEvent",
    "Store",
    "Subscriber",
    "store_from_url",
]


#: One server, Sentinel or Cluster, each with or without TLS.
_REDIS_SCHEMES = frozenset(
    f"{base}{deployment}"
    for base in ("redis", "rediss")
    for deployment in ("", "+sentinel", "+cluster")
)


def store_from_url(url: str) -> Store:
    """The store named by ``url`` (the ``JWT_STORE_URL`` setting)."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        return MemoryStore(url)
    if scheme == "sqlite":
        from authx.stores.sqlite import SQLiteStore

        return SQLiteStore(url)
    if scheme in _REDIS_SCHEMES:
        try:
            from authx.stores.redis import RedisStore
        except ImportError:  # pragma: no cover - depends on the optional extra
            raise BadConfigurationError(
                "JWT_STORE_URL uses Redis: install the extra with pip install 'authx-ws[redis]'"
            ) from None
        return RedisStore(url)
    raise BadConfigurationError(
        f"JWT_STORE_URL scheme {scheme!r} is not supported; use memory://, sqlite:///, "
        "redis[s]://, redis[s]+sentinel:// or redis[s]+cluster://"
    )
