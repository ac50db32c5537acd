"""Keeping tokens out of logs: a filter for uvicorn's access and WebSocket lines."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

__all__ = ["RedactTokensFilter"]

REDACTED = "[redacted]"
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


class RedactTokensFilter(logging.Filter):
    """Replace the values of token-carrying query parameters, and anything shaped like a JWT.

    uvicorn logs the full path with its query string, both in ``uvicorn.access``
    (HTTP) and ``uvicorn.error`` (``"WebSocket /ws?token=..." [accepted]``).

    >>> RedactTokensFilter.install(params=["token", "ticket"])
    """

    DEFAULT_LOGGERS = ("uvicorn.access", "uvicorn.error")

    def __init__(self, params: Iterable[str] = ("token", "ticket")) -> None:
        super().__init__()
        self.params: set[str] = set()
        self.add_params(params)

    def add_params(self, params: Iterable[str]) -> None:
        """Also redact the query parameters ``params``."""
        self.params.update(params)
        names = "|".join(re.escape(p) for p in sorted(self.params))
        self._param = re.compile(rf"([?&](?:{names})=)[^&\s\"']*")

    def redact(self, text: str) -> str:
        return _JWT.sub(REDACTED, self._param.sub(rf"\g<1>{REDACTED}", text))

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self.redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self.redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: self.redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True

    @classmethod
    def install(
        cls,
        params: Iterable[str] = ("token", "ticket"),
        loggers: Iterable[str] = DEFAULT_LOGGERS,
    ) -> RedactTokensFilter:
        """Attach a filter to ``loggers`` (uvicorn's by default), or extend the one there."""
        params = list(params)
        instance: RedactTokensFilter | None = None
        for name in loggers:
            logger = logging.getLogger(name)
            existing = next((f for f in logger.filters if isinstance(f, cls)), None)
            if existing is None:
                existing = instance = instance or cls(params)
                logger.addFilter(existing)
            else:
                existing.add_params(params)
            instance = instance or existing
        return instance or cls(params)
