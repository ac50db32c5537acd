"""The live registry: every authenticated WebSocket of this process, by subject and token."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from starlette.websockets import WebSocket

from authx._verify import ScopeRequirement, Verifier
from authx.config import AuthXConfig
from authx.exceptions import AuthXException, TooManyConnectionsError
from authx.schema import TokenPayload
from authx.stores import RevocationEvent
from authx.websocket import _result
from authx.websocket._deadlines import CALLBACK_CONTEXT, Deadlines
from authx.websocket._sweep import Job, Sweeper
from authx.websocket.session import WebSocketSession

__all__ = ["LiveRegistry"]

logger = logging.getLogger("authx")

#: Asks the store whether each payload is revoked (``Revocations.revoked_among``).
RevokedAmong = Callable[[Sequence[TokenPayload]], Awaitable[list[bool]]]
#: Sessions asked about per store round trip, and the retries while the store is away.
_RESYNC_BATCH = 500
_RESYNC_ATTEMPTS, _RESYNC_RETRY = 60, 1.0
#: Loop time per iteration for expiry closes and warnings, so other connections are
#: served between slices (the endpoints of the closed connections finish in between).
_SWEEP_SLICE = 0.002
#: Loop time a revocation writes close frames for before letting the loop run once:
#: a revocation is urgent (a thousand frames take 30-50 ms on two cores).
_REVOCATION_SLICE = 0.1


class _Index:
    """Key to sessions, oldest first. Most keys (a subject, a token) have one session,
    stored bare; a container is made only for the second one (it saves ~250 bytes)."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[str, WebSocketSession | dict[WebSocketSession, None]] = {}

    def add(self, key: str, session: WebSocketSession) -> None:
        current = self._entries.get(key)
        if current is None:
            self._entries[key] = session
        elif isinstance(current, dict):
            current[session] = None
        elif current is not session:
            self._entries[key] = {current: None, session: None}

    def discard(self, key: str, session: WebSocketSession) -> None:
        current = self._entries.get(key)
        if current is session:
            del self._entries[key]
        elif isinstance(current, dict):
            current.pop(session, None)
            if len(current) == 1:
                self._entries[key] = next(iter(current))
            elif not current:
                del self._entries[key]

    def get(self, key: str) -> list[WebSocketSession]:
        current = self._entries.get(key)
        if current is None:
            return []
        return list(current) if isinstance(current, dict) else [current]

    def all(self) -> list[WebSocketSession]:
        found: list[WebSocketSession] = []
        for current in self._entries.values():
            if isinstance(current, dict):
                found.extend(current)
            else:
                found.append(current)
        return found

    def __len__(self) -> int:
        return len(self._entries)


class LiveRegistry:
    """Index of open sessions; closes the ones a revocation or a limit concerns."""

    def __init__(
        self, config: Callable[[], AuthXConfig], verifier: Verifier, revoked_among: RevokedAmong
    ) -> None:
        self._config = config
        #: Asks the store about many tokens at once (the re-check after a gap in events).
        self._revoked_among = revoked_among
        self._resync: asyncio.Task[None] | None = None
        self._resync_again = False
        #: Checks the tokens and scopes of in-band refreshes.
        self.verifier = verifier
        self._by_subject = _Index()
        self._by_token = _Index()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper = Sweeper(self.spawn, _SWEEP_SLICE)
        self.expiries: Deadlines[WebSocketSession] = Deadlines(WebSocketSession.expire)
        self.warnings: Deadlines[WebSocketSession] = Deadlines(WebSocketSession.warn)

    @property
    def config(self) -> AuthXConfig:
        return self._config()

    # Membership ------------------------------------------------------------

    def attach(
        self,
        websocket: WebSocket,
        payload: TokenPayload,
        token: str,
        subprotocol_auth: bool = False,
        requirements: Sequence[ScopeRequirement] = (),
    ) -> WebSocketSession:
        """A new session for ``websocket``, indexed and scheduled (the caller records it)."""
        self._enforce_limit(payload.sub)
        session = WebSocketSession(websocket, payload, token, self, subprotocol_auth)
        for requirement in requirements:
            session.keep_requiring(requirement)
        self._by_subject.add(payload.sub, session)
        if payload.jti:
            self._by_token.add(payload.jti, session)
        task = asyncio.current_task()
        if task is not None:
            # The connection's own task ending (however it ends) frees the session.
            task.add_done_callback(session, context=CALLBACK_CONTEXT)
        session.schedule()
        return session

    def _enforce_limit(self, sub: str) -> None:
        limit = self.config.JWT_WS_MAX_CONNECTIONS_PER_SUBJECT
        if limit is None:
            return
        open_sessions = self._by_subject.get(sub)
        if len(open_sessions) < limit:
            return
        if self.config.JWT_WS_CONNECTION_LIMIT == "reject":
            raise TooManyConnectionsError("Too many connections")
        for oldest in open_sessions[: len(open_sessions) - limit + 1]:
            self.remove(oldest)  # counted out now; closed by the task below
            self.spawn(
                oldest.server_close(self.config.JWT_WS_CLOSE_CODE_TOO_MANY, "too_many_connections")
            )

    def remove(self, session: WebSocketSession) -> None:
        self._by_subject.discard(session.payload.sub, session)
        if session.payload.jti:
            self._by_token.discard(session.payload.jti, session)

    def reindex(self, session: WebSocketSession, old_jti: str | None) -> None:
        """Move ``session`` under its new token id after a refresh."""
        if old_jti:
            self._by_token.discard(old_jti, session)
        if session.payload.jti and not session.ended:
            self._by_token.add(session.payload.jti, session)

    def sessions(self, sub: str | None = None) -> list[WebSocketSession]:
        return self._by_subject.get(sub) if sub is not None else self._by_subject.all()

    def stats(self) -> dict[str, int]:
        """Open sessions, armed timers and pending close tasks (all 0 when idle)."""
        sessions = self.sessions()
        return {
            "connections": len(sessions),
            "subjects": len(self._by_subject),
            "tokens": len(self._by_token),
            "timers": sum(s.timers for s in sessions),
            "timer_slots": len(self.expiries) + len(self.warnings),
            "tasks": len(self._tasks) + len(self._sweeper),
        }

    # Revocation ------------------------------------------------------------

    def matching(self, event: RevocationEvent) -> list[WebSocketSession]:
        if event.kind == "token":
            return self._by_token.get(event.value)
        before = event.before
        return [
            s
            for s in self._by_subject.get(event.value)
            if before is None or s.payload.iat is None or s.payload.iat <= before
        ]

    async def apply(self, event: RevocationEvent) -> int:
        """Close the sessions ``event`` revokes (``token_revoked``); return how many.

        A ``resync`` event (the store may have missed events) starts a re-check of
        every session against the store, in the background.
        """
        if event.kind == "resync":
            self._start_resync()
            return 0
        targets = self.matching(event)
        if targets:
            await self._close_revoked(targets)
            logger.info("closed %d connection(s) after a %s revocation", len(targets), event.kind)
        return len(targets)

    # Re-check after a gap in events -----------------------------------------

    def _start_resync(self) -> None:
        if self._resync is not None and not self._resync.done():
            self._resync_again = True  # sessions may have been revoked since it began
            return
        self._resync = asyncio.get_running_loop().create_task(self._resync_until_done())

    async def _resync_until_done(self) -> None:
        for attempt in range(_RESYNC_ATTEMPTS):
            self._resync_again = False
            try:
                checked, closed = await self.recheck()
            except Exception as exc:  # noqa: BLE001 - the store is still away: try again
                if attempt == 0:
                    logger.warning(
                        "cannot re-check live connections against the store yet "
                        "(%s); retrying every %g s",
                        type(exc).__name__,
                        _RESYNC_RETRY,
                    )
                await asyncio.sleep(_RESYNC_RETRY)
                continue
            logger.info(
                "re-checked %d connection(s) after a gap in revocation events; closed %d",
                checked,
                closed,
            )
            if not self._resync_again:
                return
        logger.warning("gave up re-checking live connections against the store")

    async def recheck(self) -> tuple[int, int]:
        """Ask the store about every session, in batches; close the revoked ones.

        Returns how many sessions were checked and how many were closed.
        """
        sessions = [s for s in self.sessions() if not s.ended]
        closed = 0
        for start in range(0, len(sessions), _RESYNC_BATCH):
            batch = sessions[start : start + _RESYNC_BATCH]
            revoked = await self._revoked_among([s.payload for s in batch])
            targets = [s for s, is_revoked in zip(batch, revoked, strict=True) if is_revoked]
            await self._close_revoked(targets)
            closed += len(targets)
        return len(sessions), closed

    async def _close_revoked(self, targets: Sequence[WebSocketSession]) -> None:
        """Close ``targets`` with the revocation's code and reason (``token_revoked``).

        The frames are written now, one after the other, with no task per connection;
        only a close the transport cannot take at once is awaited afterwards.
        """
        code = self.config.JWT_WS_CLOSE_CODE_REVOKED
        reason = self.config.JWT_WS_REVOKED_CLOSE_REASON
        rests = []
        failure: Exception | None = None
        ends = time.perf_counter() + _REVOCATION_SLICE
        for session in targets:
            try:
                rest = session.close_now(code, reason)
            except Exception as exc:  # noqa: BLE001 - raised below, once every close is sent
                failure = failure or exc
                continue
            if rest is not None:
                rests.append(rest)
            if time.perf_counter() >= ends:
                await asyncio.sleep(0)
                ends = time.perf_counter() + _REVOCATION_SLICE
        if rests:
            await asyncio.gather(*rests)
        if failure is not None:
            raise failure

    # Helpers for sessions --------------------------------------------------

    def sweep(self, job: Job) -> None:
        self._sweeper.add(job)

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def release(self, session: WebSocketSession) -> None:
        """The connection's task ended: its scope no longer holds its authentication."""
        _result.forget(session.websocket.scope)

    def log_refresh_failure(self, session: WebSocketSession, exc: AuthXException) -> None:
        logger.info(
            "in-band refresh refused on %s: %s (%s)",
            session.websocket.scope.get("path", ""),
            type(exc).__name__,
            exc.message,
        )
