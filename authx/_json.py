"""Parsing JSON that came from a client: strictly, once, and without ever raising."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["loads_object"]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


#: JSON as RFC 8259 defines it: NaN and Infinity are refused.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def loads_object(text: str | bytes) -> dict[str, Any] | None:
    """The JSON object in untrusted ``text``, or None for anything else.

    Malformed JSON, invalid UTF-8, values that are not objects, NaN/Infinity and
    nesting deep enough to exhaust the parser's recursion limit are all "not an
    object"; nothing else is raised. Callers bound the size of ``text`` first.
    """
    try:
        text = (text if isinstance(text, str) else text.decode("utf-8")).strip()
        # raw_decode: the scanner alone, without decode()'s two whitespace regexes.
        value, end = _DECODER.raw_decode(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return value if end == len(text) and isinstance(value, dict) else None
