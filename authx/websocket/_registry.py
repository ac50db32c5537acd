"""The live registry: every authenticated WebSocket of this process, by subject and token."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket

from authx.config import AuthXConfig
from authx.exceptions import AuthXException, TooManyConnectionsError
from authx.schema import TokenPayload
from authx.stores import RevocationEvent
from authx.websocket.session import WebSocketSession

if TYPE_CHECKING:
    from authx.main import AuthX

__all__ = ["LiveRegistry"]

logger = logging.getLogger("authx")

SCOPE_KEY = "authx.session"


class LiveRegistry:
    """Index of open sessions; closes the ones a revocation or a limit concerns."""

    def __init__(self, auth: AuthX[Any]) -> None:
        self.auth = auth
        self._by_subject: dict[str, dict[WebSocketSession, None]] = {}
        self._by_token: dict[str, set[WebSocketSession]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def config(self) -> AuthXConfig:
        return self.auth.config

    # Membership ------------------------------------------------------------

    def attach(
        self,
        websocket: WebSocket,
        payload: TokenPayload,
        token: str,
        subprotocol_auth: bool = False,
    ) -> WebSocketSession:
        """The session of ``websocket``, created and scheduled on first call."""
        existing = websocket.scope.get(SCOPE_KEY)
        if isinstance(existing, WebSocketSession):
            return existing
        self._enforce_limit(payload.sub)
        session = WebSocketSession(websocket, payload, token, self, subprotocol_auth)
        websocket.scope[SCOPE_KEY] = session
        self._by_subject.setdefault(payload.sub, {})[session] = None
        if payload.jti:
            self._by_token.setdefault(payload.jti, set()).add(session)
        task = asyncio.current_task()
        if task is not None:
            # The connection's own task ending (however it ends) frees the session.
            task.add_done_callback(session.on_task_done)
        session.schedule()
        return session

    def _enforce_limit(self, sub: str) -> None:
        limit = self.config.JWT_WS_MAX_CONNECTIONS_PER_SUBJECT
        open_sessions = self._by_subject.get(sub)
        if limit is None or open_sessions is None or len(open_sessions) < limit:
            return
        if self.config.JWT_WS_CONNECTION_LIMIT == "reject":
            raise TooManyConnectionsError("Too many connections")
        for oldest in list(open_sessions)[: len(open_sessions) - limit + 1]:
            self.remove(oldest)  # counted out now; closed by the task below
            self.spawn(
                oldest.server_close(self.config.JWT_WS_CLOSE_CODE_TOO_MANY, "Too many connections")
            )

    def remove(self, session: WebSocketSession) -> None:
        sub = session.payload.sub
        by_subject = self._by_subject.get(sub)
        if by_subject is not None:
            by_subject.pop(session, None)
            if not by_subject:
                del self._by_subject[sub]
        self._forget_token(session, session.payload.jti)

    def _forget_token(self, session: WebSocketSession, jti: str | None) -> None:
        if jti is None:
            return
        holders = self._by_token.get(jti)
        if holders is not None:
            holders.discard(session)
            if not holders:
                del self._by_token[jti]

    def reindex(self, session: WebSocketSession, old_jti: str | None) -> None:
        """Move ``session`` under its new token id after a refresh."""
        self._forget_token(session, old_jti)
        if session.payload.jti and not session.ended:
            self._by_token.setdefault(session.payload.jti, set()).add(session)

    def sessions(self, sub: str | None = None) -> list[WebSocketSession]:
        if sub is not None:
            return list(self._by_subject.get(sub, ()))
        return [s for group in self._by_subject.values() for s in group]

    def stats(self) -> dict[str, int]:
        """Open sessions, armed timers and pending close tasks (all 0 when idle)."""
        sessions = self.sessions()
        return {
            "connections": len(sessions),
            "subjects": len(self._by_subject),
            "tokens": len(self._by_token),
            "timers": sum(s.timers for s in sessions),
            "tasks": len(self._tasks),
        }

    # Revocation ------------------------------------------------------------

    def matching(self, event: RevocationEvent) -> list[WebSocketSession]:
        if event.kind == "token":
            return list(self._by_token.get(event.value, ()))
        before = event.before
        return [
            s
            for s in self._by_subject.get(event.value, ())
            if before is None or s.payload.iat is None or s.payload.iat <= before
        ]

    async def apply(self, event: RevocationEvent) -> int:
        """Close the sessions ``event`` revokes, with 4001 "Token revoked"; return how many."""
        targets = self.matching(event)
        if targets:
            code = self.config.JWT_WS_CLOSE_CODE_UNAUTHENTICATED
            reason = self.config.JWT_WS_REVOKED_CLOSE_REASON
            await asyncio.gather(*(s.server_close(code, reason) for s in targets))
            logger.info(
                "authx: closed %d connection(s) after a %s revocation", len(targets), event.kind
            )
        return len(targets)

    # Helpers for sessions --------------------------------------------------

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def message_type(self, name: str) -> str:
        return f"{self.config.JWT_WS_MESSAGE_PREFIX}{name}"

    def refresh_token_in(self, text: Any) -> str | None:
        """The token of an in-band refresh message, or None for any other message."""
        kind = self.message_type("refresh")
        if not isinstance(text, str) or kind not in text or not text.lstrip().startswith("{"):
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("type") != kind:
            return None
        token = data.get("token")
        return token if isinstance(token, str) else ""

    def log_refresh_failure(self, session: WebSocketSession, exc: AuthXException) -> None:
        logger.info(
            "authx: in-band refresh refused on %s: %s (%s)",
            session.websocket.scope.get("path", ""),
            type(exc).__name__,
            exc.message,
        )
