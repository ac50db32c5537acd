"""The in-band WebSocket protocol: the JSON messages AuthX reads and writes on a socket.

Pure functions, no I/O. Client messages: ``{"type": "<prefix>auth", "token": ...}``
(first-message authentication) and ``{"type": "<prefix>refresh", "token": ...}``
(in-band refresh). Server messages: ``<prefix>expiring`` and ``<prefix>refreshed``.
"""

from __future__ import annotations

import json
from typing import Any

from authx._json import loads_object

__all__ = ["auth_token", "refresh_token", "server_message"]

#: Room for the JSON around the token in a client message.
_ENVELOPE = 256


def _token_of(text: Any, kind: str, max_token_size: int) -> str | None:
    """The ``token`` of a ``kind`` message; "" when the message has no usable token.

    None means: not a ``kind`` message at all. A text that looks like one (an
    object mentioning ``kind``) but is too large to hold a token of
    ``max_token_size``, or is not parseable JSON (nesting too deep included),
    counts as one with an unusable token: refused, never handed to the app.
    """
    if not isinstance(text, str) or kind not in text or not text.lstrip().startswith("{"):
        return None
    if len(text) > max_token_size + _ENVELOPE:
        return ""
    data = loads_object(text)
    if data is None:
        return ""
    if data.get("type") != kind:
        return None
    token = data.get("token")
    return token if isinstance(token, str) else ""


def auth_token(text: Any, prefix: str, max_token_size: int) -> str | None:
    """The token of a first (authentication) message, or None when it is not one."""
    token = _token_of(text, f"{prefix}auth", max_token_size)
    return token or None


def refresh_token(text: Any, prefix: str, max_token_size: int) -> str | None:
    """The token of an in-band refresh message ("" if unusable), None for other messages."""
    return _token_of(text, f"{prefix}refresh", max_token_size)


def server_message(prefix: str, name: str, exp: float | None) -> str:
    """A server message (``expiring``, ``refreshed``) with the token's expiry."""
    return json.dumps({"type": f"{prefix}{name}", "exp": exp})
