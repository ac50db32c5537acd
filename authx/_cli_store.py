"""The store a shell command talks to: whether servers share it, and how to name it safely.

A revocation written to ``memory://`` lives in the command's own process and reaches
no server; a SQLite file that does not exist yet is one no server has opened (they
create it on first use), most often a wrong path. Both are refused before any write.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from authx._revocation import redact_url

__all__ = ["missing_sqlite_file", "safe_name", "unshared_reason"]


def safe_name(url: str) -> str:
    """``url`` with its passwords masked, fit for a message."""
    return redact_url(url)


def _scheme(url: str) -> str:
    return url.split(":", 1)[0].lower()


def _sqlite_path(url: str) -> str:
    return urlsplit(url).path[1:]


def unshared_reason(url: str) -> str | None:
    """Why no server can see what is written to the store ``url``, or None if one can."""
    if _scheme(url) == "memory":
        return (
            "JWT_STORE_URL is memory:// (the default): a revocation made here would live in "
            "this command's own memory and reach no server. Set JWT_STORE_URL to the store "
            "your servers use (sqlite:///path/to/file.db or redis://host:6379/0)."
        )
    if _scheme(url) == "sqlite" and _sqlite_path(url) == ":memory:":
        return (
            "JWT_STORE_URL is an in-memory SQLite database, private to this command: set it "
            "to the SQLite file or Redis your servers use."
        )
    return None


def missing_sqlite_file(url: str) -> Path | None:
    """The absolute path of the SQLite file ``url`` names when it does not exist."""
    if _scheme(url) != "sqlite":
        return None
    path = Path(_sqlite_path(url))
    return None if not path.parts or path.exists() else path.resolve()
