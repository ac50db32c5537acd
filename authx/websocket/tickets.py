"""One-time WebSocket tickets: a valid access token is exchanged over HTTP for a short-lived,
single-use opaque ticket held in the store; the browser connects with ``?ticket=...``."""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.websockets import WebSocket

from authx.config import AuthXConfig
from authx.exceptions import (
    AuthXException,
    InvalidTicketError,
    StoreUnavailableError,
    TokenExpiredError,
)
from authx.schema import TokenPayload
from authx.stores import Store
from authx.websocket._transports import check_origin

__all__ = ["Tickets"]


class Tickets:
    """Issue and redeem tickets through the AuthX store."""

    def __init__(
        self, config: Callable[[], AuthXConfig], store: Callable[[], Awaitable[Store]]
    ) -> None:
        self._config = config
        self._store = store

    async def issue(
        self, payload: TokenPayload, origin: str | None = None, *, token: str | None = None
    ) -> str:
        """A ticket carrying ``payload`` (subject, scopes, expiry), bound to ``origin`` if given.

        With ``token`` (the access token ``payload`` came from), redeeming the ticket
        verifies that token again, so the ticket is never worth more than it.
        """
        claims = payload.model_dump()
        claims["exp"] = payload.expires_at
        ticket = secrets.token_urlsafe(32)
        store = await self._store()
        data: dict[str, Any] = {"claims": claims, "origin": origin}
        if token is not None:
            data["token"] = token
        try:
            await store.put_ticket(ticket, data, self._config().JWT_WS_TICKET_TTL)
        except Exception:  # noqa: BLE001 - a ticket that was not stored must not be handed out
            raise StoreUnavailableError("Ticket store unavailable") from None
        return ticket

    async def redeem(self, ticket: str, websocket: WebSocket) -> tuple[TokenPayload, str | None]:
        """The payload of ``ticket``, now used up, and the token it was made from (if kept).

        Unknown, expired or reused tickets fail; so does a ticket bound to another origin.
        """
        store = await self._store()
        try:
            data = await store.take_ticket(ticket)
        except AuthXException:
            raise
        except Exception:  # noqa: BLE001
            raise StoreUnavailableError("Ticket store unavailable") from None
        if not isinstance(data, dict) or not isinstance(data.get("claims"), dict):
            raise InvalidTicketError("Invalid or already used ticket")
        origin = data.get("origin")
        if origin is not None:
            check_origin(websocket, [origin])
        token = data.get("token")
        if token is not None and not isinstance(token, str):
            raise InvalidTicketError("Invalid or already used ticket")
        try:
            payload = TokenPayload.model_validate(data["claims"])
        except ValueError:
            raise InvalidTicketError("Invalid or already used ticket") from None
        expires_at = payload.expires_at
        if expires_at is not None and expires_at + self._config().JWT_DECODE_LEEWAY <= time.time():
            raise TokenExpiredError("Token has expired")
        return payload, token
