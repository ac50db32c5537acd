"""The mutation score of each mutated module, and every mutant the tests did not kill.

Run after ``mutmut run`` from the repository root (``make mutation`` does both)::

    python -m tools.mutation_report [--min-score 90]

A mutant is *killed* when a test failed against it (or it hung, or crashed the
test process). A surviving mutant is either *equivalent* -- it changes nothing
observable, and ``tools/mutation_equivalents.toml`` says why -- or a gap in the
tests. The exit status is 1 when a module's killed share is below ``--min-score``
or when a survivor is not listed as equivalent, so that each one gets a decision.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code
from mutmut.utils.file_utils import walk_mutatable_files
from mutmut.utils.format_utils import (
    get_module_from_key,
    mangled_name_from_mutant_name,
    orig_function_and_class_names_from_key,
)

EQUIVALENTS = Path(__file__).with_name("mutation_equivalents.toml")
#: mutmut statuses that count as a kill: a test failed, the tests hung (the mutant
#: made a loop endless), or the test process died.
KILLED = frozenset({"killed", "timeout", "segfault", "caught by type check"})


@dataclass(frozen=True)
class Equivalent:
    function: str
    original: str
    mutants: tuple[str, ...]
    reason: str


@dataclass
class Mutant:
    name: str
    path: str
    status: str
    function: str = ""
    line: int | None = None
    removed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    equivalent: Equivalent | None = None


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _squash(text: str) -> str:
    return " ".join(text.split())


def load_equivalents(path: Path = EQUIVALENTS) -> list[Equivalent]:
    if not path.exists():
        return []
    entries = tomllib.loads(path.read_text("utf-8")).get("equivalent", [])
    return [
        Equivalent(
            function=e["function"],
            original=_squash(e["original"]),
            # ``mutant = "..."``, or ``mutant = ["...", "..."]`` for several alike.
            mutants=tuple(
                _squash(m) for m in ([e["mutant"]] if isinstance(e["mutant"], str) else e["mutant"])
            ),
            reason=e["reason"],
        )
        for e in entries
    ]


def readable_function(mutant_name: str) -> str:
    """``authx.token.decode_jws`` or ``authx.websocket._registry.LiveRegistry.apply``."""
    mangled = mangled_name_from_mutant_name(mutant_name)
    name, class_name = orig_function_and_class_names_from_key(mutant_name)
    module = get_module_from_key(mangled)
    return f"{module}.{class_name}.{name}" if class_name else f"{module}.{name}"


def _function_lines(source: str, function: str) -> tuple[int, int] | None:
    parts = function.split(".")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == parts[-2]:
            body: list[ast.stmt] = node.body
        elif isinstance(node, ast.Module):
            body = node.body
        else:
            continue
        for child in body:
            if (
                isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
                and child.name == parts[-1]
            ):
                return child.lineno, child.end_lineno or child.lineno
    return None


def describe(mutant: Mutant, source: str) -> None:
    """Fill in the function, the changed lines and the source line of ``mutant``."""
    mutant.function = readable_function(mutant.name)
    diff = get_diff_for_mutant(mutant.name, path=mutant.path)
    for line in diff.splitlines()[2:]:
        if line.startswith("-"):
            mutant.removed.append(line[1:])
        elif line.startswith("+"):
            mutant.added.append(line[1:])
    span = _function_lines(source, mutant.function)
    if span is not None and mutant.removed:
        wanted = mutant.removed[0].strip()
        lines = source.splitlines()
        for number in range(span[0], span[1] + 1):
            if lines[number - 1].strip() == wanted:
                mutant.line = number
                break


def match(mutant: Mutant, equivalents: list[Equivalent]) -> Equivalent | None:
    removed, added = _squash(" ".join(mutant.removed)), _squash(" ".join(mutant.added))
    for entry in equivalents:
        # An empty ``mutant`` stands for a deletion: the mutant added nothing.
        added_matches = any((m in added) if m else not added for m in entry.mutants)
        if entry.function == mutant.function and entry.original in removed and added_matches:
            return entry
    return None


def collect(equivalents: list[Equivalent]) -> dict[str, list[Mutant]]:
    by_module: dict[str, list[Mutant]] = {}
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        source = Path(path).read_text("utf-8")
        mutants = []
        for name, exit_code in sorted(data.exit_code_by_key.items(), key=_natural):
            mutant = Mutant(name=name, path=str(path), status=status_by_exit_code[exit_code])
            if mutant.status not in KILLED:
                describe(mutant, source)
                if mutant.status == "survived":
                    mutant.equivalent = match(mutant, equivalents)
            mutants.append(mutant)
        by_module[str(path)] = mutants
    return by_module


def _natural(item: tuple[str, object]) -> list[object]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", item[0])]


def report(by_module: dict[str, list[Mutant]], min_score: float) -> int:
    """Print the table and the survivors; the exit status for ``--min-score``."""
    header = (
        f"{'module':34} {'mutants':>7} {'killed':>7} {'equiv.':>6} {'other':>6} "
        f"{'killed %':>8} {'score %':>8}"
    )
    say(header)
    say("-" * len(header))
    low: list[str] = []
    totals: Counter[str] = Counter()
    for path, mutants in sorted(by_module.items()):
        if not mutants:
            continue
        killed = sum(m.status in KILLED for m in mutants)
        equivalent = sum(m.equivalent is not None for m in mutants)
        other = len(mutants) - killed - equivalent
        killed_share = 100 * killed / len(mutants)
        # The score leaves out the mutants no test can kill.
        score = 100 * killed / max(len(mutants) - equivalent, 1)
        totals.update(mutants=len(mutants), killed=killed, equivalent=equivalent, other=other)
        flag = "" if killed_share >= min_score else "  < target"
        say(
            f"{path:34} {len(mutants):7} {killed:7} {equivalent:6} {other:6} "
            f"{killed_share:8.1f} {score:8.1f}{flag}"
        )
        if flag:
            low.append(path)
    say("-" * len(header))
    total_share = 100 * totals["killed"] / max(totals["mutants"], 1)
    total_score = 100 * totals["killed"] / max(totals["mutants"] - totals["equivalent"], 1)
    say(
        f"{'all':34} {totals['mutants']:7} {totals['killed']:7} {totals['equivalent']:6} "
        f"{totals['other']:6} {total_share:8.1f} {total_score:8.1f}"
    )

    open_cases = [
        m
        for mutants in by_module.values()
        for m in mutants
        if m.status not in KILLED and m.equivalent is None
    ]
    equivalents = [m for mutants in by_module.values() for m in mutants if m.equivalent]
    say()
    say(f"Survivors listed as equivalent ({len(equivalents)}):")
    for m in equivalents:
        reason = m.equivalent.reason if m.equivalent else ""
        say(f"  {m.name}  [{m.path}:{m.line}] {reason}")
    say()
    say(f"Survivors to decide on ({len(open_cases)}): kill each with a test, or list it")
    say(f"as equivalent in {EQUIVALENTS.relative_to(Path.cwd())} with the reason")
    for m in open_cases:
        say(f"  {m.name}  ({m.status}) {m.path}:{m.line}  in {m.function}")
        for line in m.removed:
            say(f"      - {line.strip()}")
        for line in m.added:
            say(f"      + {line.strip()}")
    if low:
        say(f"\nBelow {min_score:g}% killed: {', '.join(low)}")
    return 1 if low or open_cases else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-score", type=float, default=90.0, help="killed %% per module")
    args = parser.parse_args(argv)
    if not Path("mutants").is_dir():
        say("No mutants/ directory: run `make mutation` (or `mutmut run`) first.")
        return 2
    return report(collect(load_equivalents()), args.min_score)


if __name__ == "__main__":
    sys.exit(main())
