"""Revocation: the store behind the blocklist, and revoking tokens or subjects everywhere."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from authx import token as _token
from authx.config import AuthXConfig
from authx.exceptions import AuthXException, JWTDecodeError, StoreUnavailableError
from authx.schema import TokenPayload
from authx.stores import BatchRevocationStore, RevocationEvent, Store, store_from_url

#: Called with every revocation, local or heard from the store; returns sessions closed.
Listener = Callable[[RevocationEvent], Awaitable[int]]

__all__ = ["Revocations", "redact_url"]

logger = logging.getLogger("authx")
_OUTAGE_LOG_INTERVAL = 60.0  # seconds between two lines about failed checks in one outage

#: How long a revocation is kept when the token's own expiry is unknown.
_FALLBACK_LIFETIME = 366 * 24 * 3600.0


def redact_url(url: str) -> str:
    """``url`` without its passwords (user info and ``*password=`` options), for logs."""
    url = re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)
    return re.sub(r"([?&][^=&#]*password=)[^&#]*", r"\1***", url, flags=re.IGNORECASE)


class Revocations:
    """The configured store (created on first use) and the revocation operations."""

    def __init__(self, config: Callable[[], AuthXConfig]) -> None:
        self._config = config
        # Built now (no I/O yet) so that a bad URL fails at start-up and the
        # driver import is not paid by the first request.
        self._url = config().JWT_STORE_URL
        self._store: Store | None = store_from_url(self._url)
        self._subscribed: Store | None = None
        self._listeners: list[Listener] = []
        # When a failed check was last logged, while checks keep failing (None: they work).
        self._check_failure_logged: float | None = None

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` for every revocation (this process's and the store's events)."""
        self._listeners.append(listener)

    def current_store(self) -> Store | None:
        """The store in use now, without opening or subscribing it."""
        return self._store

    def set_store(self, store: Store) -> None:
        self._store = store
        self._subscribed = None

    def reconfigure(self) -> None:
        """Follow a new ``JWT_STORE_URL`` (after ``load_config``); the old store is dropped."""
        url = self._config().JWT_STORE_URL
        if url != self._url:
            self._url = url
            self.set_store(store_from_url(url))

    async def _notify(self, event: RevocationEvent) -> None:
        for listener in self._listeners:
            await listener(event)

    async def store(self) -> Store:
        """The store named by ``JWT_STORE_URL``, subscribed to revocation events."""
        store = self._store
        if store is None:
            store = self._store = store_from_url(self._url)
        if self._subscribed is not store:
            self._subscribed = store
            await store.subscribe(self._notify)
        return store

    def _max_lifetime(self) -> float:
        config = self._config()
        if config.has_provider:
            return _FALLBACK_LIFETIME  # a provider's tokens may live longer than ours
        lifetimes = [
            d.total_seconds()
            for d in (config.JWT_ACCESS_TOKEN_EXPIRES, config.JWT_REFRESH_TOKEN_EXPIRES)
            if d is not None
        ]
        return max(lifetimes) if lifetimes else _FALLBACK_LIFETIME

    def _log_unavailable(self, store: Store | None, exc: Exception, check: bool = False) -> None:
        """Log a store failure, naming the store with its password masked. A failed write
        is always logged; failed checks once per outage and then once a minute, since
        every request and handshake makes one."""
        name = redact_url(store.url if store is not None else self._url)
        if check:
            now = time.monotonic()
            last = self._check_failure_logged
            if last is not None and now - last < _OUTAGE_LOG_INTERVAL:
                return
            self._check_failure_logged = now
        logger.warning("revocation store %s unavailable (%s)", name, type(exc).__name__)

    def _check_succeeded(self, store: Store) -> None:
        if self._check_failure_logged is not None:
            self._check_failure_logged = None
            logger.warning("revocation store %s answers again", redact_url(store.url))

    async def is_revoked(self, payload: TokenPayload) -> bool:
        store = self._store
        try:
            store = await self.store()
            revoked = await store.is_revoked(*_entry(payload))
        except AuthXException:
            raise
        except Exception as exc:  # noqa: BLE001 - any store failure is answered by policy
            self._log_unavailable(store, exc, check=True)
            if not self._config().JWT_STORE_FAIL_OPEN:
                raise StoreUnavailableError("Revocation store unavailable") from None
            return False
        self._check_succeeded(store)
        return revoked

    async def revoked_among(self, payloads: Sequence[TokenPayload]) -> list[bool]:
        """Whether each payload is revoked in the store, in as few round trips as the
        store allows; a store failure raises (the caller retries)."""
        store = await self.store()
        entries = [_entry(payload) for payload in payloads]
        if isinstance(store, BatchRevocationStore):
            return await store.revoked_among(entries)
        return [await store.is_revoked(*entry) for entry in entries]

    async def revoke_token(self, token_or_jti: str) -> RevocationEvent:
        now = time.time()
        jti, expires_at = token_or_jti, now + self._max_lifetime()
        if token_or_jti.count(".") == 2:
            try:
                claims = _token.unverified_claims(token_or_jti)
            except JWTDecodeError:
                raise ValueError("revoke_token needs a token or a token id (jti)") from None
            if not isinstance(claims.get("jti"), str):
                raise ValueError("this token has no jti claim to revoke")
            jti = claims["jti"]
            exp = claims.get("exp")
            if isinstance(exp, int | float):
                expires_at = float(exp) + self._config().JWT_DECODE_LEEWAY
        event = RevocationEvent("token", jti)
        await self._record(event, lambda store: store.revoke_token(jti, expires_at))
        return event

    async def revoke_subject(self, sub: str) -> RevocationEvent:
        now = time.time()
        event = RevocationEvent("subject", sub, before=now)
        expires_at = now + self._max_lifetime()
        await self._record(event, lambda store: store.revoke_subject(sub, now, expires_at))
        return event

    async def _record(self, event: RevocationEvent, write: Any) -> None:
        store = self._store
        try:
            store = await self.store()
            await write(store)
        except Exception as exc:  # noqa: BLE001
            # A revocation that cannot be stored must not look like a success.
            self._log_unavailable(store, exc)
            raise StoreUnavailableError("Revocation store unavailable") from None
        await self._notify(event)
        try:
            await store.publish(event)
        except Exception as exc:  # noqa: BLE001
            logger.warning(
                "could not publish a revocation on %s (%s); other processes "
                "will refuse the token at their next check",
                redact_url(store.url),
                type(exc).__name__,
            )


def _entry(payload: TokenPayload) -> tuple[str | None, str | None, float | None]:
    iat = float(payload.iat) if isinstance(payload.iat, int | float) else None
    return payload.jti, payload.sub, iat
