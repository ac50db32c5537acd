"""The table ``make bench`` ends with: every ``SUMMARY`` line of a benchmark log, aligned.

    .venv/bin/python -m bench.summary .bench-cache/bench.log

Each benchmark prints its figures as ``SUMMARY bench=... key=... value=... target=...
unit=... status=met|MISSED|-`` lines (:func:`summary_line` writes them, :func:`rows` reads
them); one run's table compares with the next's.
"""

from __future__ import annotations

import sys
from pathlib import Path

COLUMNS = ("bench", "key", "value", "target", "unit", "status")


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def summary_line(
    bench: str,
    key: str,
    value: float,
    target: float | None,
    unit: str,
    ok: bool | None,
    digits: int = 2,
) -> str:
    """One SUMMARY line; a figure shown for information has no target nor status (``-``)."""
    return (
        f"SUMMARY bench={bench} key={key} value={value:.{digits}f}"
        f" target={'-' if target is None else f'{target:g}'} unit={unit}"
        f" status={'-' if ok is None else verdict(ok)}"
    )


def rows(text: str) -> list[dict[str, str]]:
    found = []
    for line in text.splitlines():
        if line.startswith("SUMMARY "):
            fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
            found.append({column: fields.get(column, "-") for column in COLUMNS})
    return found


def table(found: list[dict[str, str]]) -> str:
    widths = {c: max([len(c), *(len(row[c]) for row in found)]) for c in COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS)]
    lines += ["  ".join(row[c].ljust(widths[c]) for c in COLUMNS) for row in found]
    return "\n".join(line.rstrip() for line in lines)


if __name__ == "__main__":
    found = rows(Path(sys.argv[1]).read_text(errors="replace"))
    print(table(found) if found else "no SUMMARY lines")
    missed = sum(row["status"] == "MISSED" for row in found)
    print(f"\n{len(found)} figures, {missed} targets missed")
