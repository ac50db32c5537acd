"""Scope matching: exact names, and ``ns:*`` wildcards that cover a namespace."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["has_required_scopes", "match_scope"]


def match_scope(required: str, provided: str) -> bool:
    """Whether the granted scope ``provided`` covers the ``required`` one.

    ``admin:*`` covers ``admin``, ``admin:users`` and ``admin:users:edit`` but not
    ``adminx``; a wildcard in ``required`` is literal.
    """
    if required == provided:
        return True
    if provided.endswith(":*"):
        namespace = provided[:-2]
        return required == namespace or required.startswith(namespace + ":")
    return False


def has_required_scopes(
    required: Sequence[str] | Iterable[str],
    provided: Sequence[str] | None,
    all_required: bool = True,
) -> bool:
    """Whether ``provided`` satisfies ``required``: all of them, or any with ``all_required=False``.

    A token without scopes satisfies only an empty requirement. A bare string is
    refused (``TypeError``): it is not a list of scopes, and reading it as one
    would grant ``"admin:*"`` every one-letter scope it contains.
    """
    if isinstance(required, str | bytes) or isinstance(provided, str | bytes):
        raise TypeError("scopes must be a list of strings, not a single string")
    required = list(required)
    if not required:
        return True
    if provided is None:
        return False
    granted = list(provided)
    check = all if all_required else any
    return check(any(match_scope(r, p) for p in granted) for r in required)
