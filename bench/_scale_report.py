"""Results of bench/live_connections.py, printed against their targets and as SUMMARY lines."""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.summary import summary_line, verdict

ISSUE_CONNECTIONS = 50_000
TARGET_BYTES = 512
TARGET_REVOCATION_MS = 50.0
TARGET_EXPIRY_MS = 1000.0
TARGET_PROBE_P99_MS = 50.0


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (nan when empty)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def spread(values: Sequence[float]) -> str:
    return (
        f"p50 {percentile(values, 50):.1f} / p99 {percentile(values, 99):.1f}"
        f" / max {percentile(values, 100):.1f} ms"
    )


@dataclass
class MemoryResult:
    mode: str
    requested: int
    opened: int
    open_seconds: float
    before: int
    after: int
    stats_connections: int
    failures: collections.Counter[str]
    traced: dict[str, Any] | None = None
    gc_ms: list[tuple[float, int]] = field(default_factory=list)

    @property
    def per_connection(self) -> float:
        return (self.after - self.before) / self.opened if self.opened else math.nan


def gc_note(pauses: Sequence[tuple[float, int]]) -> str:
    if not pauses:
        return "none"
    longest, generation = max(pauses)
    return f"{len(pauses)}, longest {longest:.1f} ms (generation {generation})"


@dataclass
class RevocationRun:
    gc_ms: list[tuple[float, int]]
    victims: int
    server_ms: float
    returned_ms: float
    frames_ms: list[float]
    codes: collections.Counter[str]
    open_after: int
    failures: collections.Counter[str]

    @property
    def last_ms(self) -> float:
        return max(self.frames_ms) if len(self.frames_ms) == self.victims else math.inf

    @property
    def brief(self) -> str:
        return (
            f"{len(self.frames_ms)}/{self.victims} close frames, last {self.last_ms:.1f} ms"
            f" after the call (server: all written after {self.server_ms:.1f} ms,"
            f" revoke_subject returned after {self.returned_ms:.1f} ms); GC pauses:"
            f" {gc_note(self.gc_ms)}"
        )


@dataclass
class ExpiryResult:
    gc_ms: list[tuple[float, int]]
    expiring: int
    bystanders: int
    opened_before_exp: bool
    closes_ms: list[float]
    codes: collections.Counter[str]
    probe_ms: list[float]
    probe_before_ms: list[float]
    failures: collections.Counter[str]

    @property
    def last_ms(self) -> float:
        return max(self.closes_ms) if len(self.closes_ms) == self.expiring else math.inf

    @property
    def brief(self) -> str:
        return (
            f"{len(self.closes_ms)}/{self.expiring} closed, last {self.last_ms:.0f} ms after exp;"
            f" probe p99 {percentile(self.probe_ms, 99):.1f} ms over {len(self.probe_ms)} echoes;"
            f" GC pauses: {gc_note(self.gc_ms)}"
        )


@dataclass
class Report:
    requested: int
    victims: int
    expiring: int
    hard_limit: int = 0
    capacity: int = 0
    memory: list[MemoryResult] = field(default_factory=list)
    revocations: list[RevocationRun] = field(default_factory=list)
    bystanders: tuple[int, tuple[int, int]] | None = None
    expiry: ExpiryResult | None = None
    traced: list[MemoryResult] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)

    def limits(self, requested: int, idle: int, hard: int, capacity: int) -> None:
        self.hard_limit, self.capacity = hard, capacity
        print(f"  RLIMIT_NOFILE raised to the hard limit, {hard}", flush=True)
        if idle < requested:
            print(
                f"!! the hard RLIMIT_NOFILE of {hard} lets one server process hold at most"
                f" ~{capacity} connections (raising it needs CAP_SYS_RESOURCE, absent here):"
                f" {requested} idle connections cannot be held; measuring with {idle} idle"
                f" (+ {self.victims} victims)",
                flush=True,
            )

    def progress(self, r: MemoryResult) -> None:
        print(
            f"  {r.mode}: opened {r.opened}/{r.requested} in {r.open_seconds:.1f} s,"
            f" {r.per_connection / 1024:.2f} KiB per connection; GC pauses while opening:"
            f" {gc_note(r.gc_ms)}, {sum(ms for ms, _ in r.gc_ms):.0f} ms in all",
            flush=True,
        )

    def figure(
        self, key: str, value: float, target: float | None, unit: str, ok: bool | None
    ) -> None:
        """A SUMMARY line; a figure shown for information has no target (``-``)."""
        self.summary.append(
            summary_line("live_connections", key, value, target, unit, ok, digits=1)
        )

    def print(self, elapsed: float) -> None:
        self._memory()
        self._revocation()
        self._expiry()
        self._traced()
        print(f"\nwhole run: {elapsed:.0f} s")
        for line in self.summary:
            print(line)

    def _memory(self) -> None:
        if not self.memory:
            return
        print(f"\n{'mode':<12} {'opened':>13} {'open s':>7} {'RSS before':>12} {'RSS after':>12}"
              f" {'per connection':>15} {'/stats':>7}")  # fmt: skip
        for r in self.memory:
            print(
                f"{r.mode:<12} {f'{r.opened}/{r.requested}':>13} {r.open_seconds:>7.1f}"
                f" {r.before / 2**20:>9.1f} MB {r.after / 2**20:>9.1f} MB"
                f" {r.per_connection / 1024:>11.2f} KiB {r.stats_connections:>7}"
            )
            for failure, count in r.failures.most_common(3):
                print(f"    {count} not opened: {failure}")
        modes = {r.mode: r for r in self.memory}
        on, off = modes.get("session"), modes.get("no session")
        if on is not None:
            held = on.opened
            ok = held >= self.requested
            print(
                f"\n[1] idle authenticated connections held by one server process: {held}"
                f" [target {self.requested}: {verdict(ok)}]"
                + (f" (hard RLIMIT_NOFILE {self.hard_limit})" if held < self.requested else "")
                + (f"; the issue's target is {ISSUE_CONNECTIONS}"
                   if self.requested < ISSUE_CONNECTIONS else "")
            )  # fmt: skip
            # Against the issue's number, whatever was asked for: the table must not
            # call 10,000 connections a success.
            self.figure("held_connections", held, ISSUE_CONNECTIONS, "connections",
                        held >= ISSUE_CONNECTIONS)  # fmt: skip
        if on is not None and off is not None:
            extra = on.per_connection - off.per_connection
            ok = extra <= TARGET_BYTES
            print(
                f"[2] session machinery adds {extra:,.0f} B per connection (RSS, {on.opened}"
                f" with vs {off.opened} without) [target <= {TARGET_BYTES} B: {verdict(ok)}]"
            )
            self.figure("session_bytes_per_connection", extra, TARGET_BYTES, "B", ok)
            matches = on.stats_connections == on.opened and off.stats_connections == 0
            print(
                f"    /stats: {on.stats_connections} sessions with (expected {on.opened}),"
                f" {off.stats_connections} without (expected 0): {'ok' if matches else 'MISMATCH'}"
            )
        plain = modes.get("plain")
        if off is not None and plain is not None:
            print(
                f"    authentication without sessions adds"
                f" {off.per_connection - plain.per_connection:,.0f} B over the plain endpoint"
            )

    def _revocation(self) -> None:
        runs = self.revocations
        if not runs:
            return
        idle = next((r.opened for r in self.memory if r.mode == "session"), 0)
        lasts = [r.last_ms for r in runs]
        server = [r.server_ms for r in runs]
        frames = [t for r in runs for t in r.frames_ms]
        ok = max(lasts) <= TARGET_REVOCATION_MS
        print(
            f"\n[3] revoke_subject: {self.victims} victims among {idle} idle connections,"
            f" {len(runs)} runs; from the call in the server to the close frame in the client"
        )
        print(f"    last frame per run: {', '.join(f'{v:.1f}' for v in lasts)} ms")
        print(
            f"    last frame over runs: {spread(lasts)} [target max <= {TARGET_REVOCATION_MS:.0f}"
            f" ms: {verdict(ok)}]"
        )
        print(f"    every victim's frame: {spread(frames)}")
        print(f"    server side, every close frame written: {spread(server)}")
        returned = [r.returned_ms for r in runs]
        print(f"    server side, returned (after publishing): {spread(returned)}")
        codes: collections.Counter[str] = collections.Counter()
        for r in runs:
            codes.update(r.codes)
        print(f"    close codes: {dict(codes)}")
        if self.bystanders is not None:
            shown, (answered, sampled) = self.bystanders
            print(f"    idle after the runs: /stats {shown}, {answered}/{sampled} answered a ping")
        self.figure("revoke_last_frame_p50_ms", percentile(lasts, 50), TARGET_REVOCATION_MS,
                    "ms", percentile(lasts, 50) <= TARGET_REVOCATION_MS)  # fmt: skip
        self.figure("revoke_last_frame_max_ms", max(lasts), TARGET_REVOCATION_MS, "ms", ok)
        self.figure("revoke_server_max_ms", max(server), TARGET_REVOCATION_MS, "ms",
                    max(server) <= TARGET_REVOCATION_MS)  # fmt: skip

    def _expiry(self) -> None:
        e = self.expiry
        if e is None:
            return
        print(
            f"\n[4] expiry sweep: {e.expiring} connections with one exp, among {e.bystanders}"
            f" idle, a probe echoing every 10 ms"
            + ("" if e.opened_before_exp else " (!! opening ran past exp)")
        )
        for failure, count in e.failures.most_common(3):
            print(f"    {count} not opened: {failure}")
        closed_ok = e.last_ms <= TARGET_EXPIRY_MS
        print(
            f"    close frames seen {len(e.closes_ms)}/{e.expiring}, after exp:"
            f" {spread(e.closes_ms)} [target all <= {TARGET_EXPIRY_MS:.0f} ms:"
            f" {verdict(closed_ok)}]"
        )
        probe_ok = percentile(e.probe_ms, 99) < TARGET_PROBE_P99_MS
        print(
            f"    probe echo during the sweep ({len(e.probe_ms)} echoes): {spread(e.probe_ms)}"
            f" [target p99 < {TARGET_PROBE_P99_MS:.0f} ms: {verdict(probe_ok)}]"
        )
        print(f"    probe echo in the second before exp: {spread(e.probe_before_ms)}")
        print(f"    server GC pauses during the sweep: {gc_note(e.gc_ms)}")
        print(f"    close codes: {dict(e.codes)}")
        self.figure("expiry_last_close_ms", e.last_ms, TARGET_EXPIRY_MS, "ms", closed_ok)
        self.figure("expiry_probe_p99_ms", percentile(e.probe_ms, 99), TARGET_PROBE_P99_MS,
                    "ms", probe_ok)  # fmt: skip
        self.figure("expiry_probe_max_ms", percentile(e.probe_ms, 100), None, "ms", None)

    def _traced(self) -> None:
        traced = {r.mode: r for r in self.traced if r.traced and r.traced["tracing"] and r.opened}
        if not traced:
            return
        print("\ntracemalloc: Python allocations in the server per connection")
        for name, r in traced.items():
            assert r.traced is not None
            print(
                f"  {name:<12} {r.opened:>6} connections: {r.traced['total'] / r.opened:>8,.0f} B,"
                f" of which in authx/ {r.traced['authx'] / r.opened:>6,.0f} B"
            )
        on, off = traced.get("session"), traced.get("no session")
        if on is None or off is None or on.traced is None or off.traced is None:
            return
        extra = on.traced["total"] / on.opened - off.traced["total"] / off.opened
        print(f"  session machinery adds {extra:,.0f} B per connection; by source line:")
        per_line: collections.Counter[str] = collections.Counter()
        for r, sign in ((on, 1), (off, -1)):
            assert r.traced is not None
            for where, size in r.traced["lines"]:
                per_line[where] += sign * size / r.opened
        shown = [(where, size) for where, size in per_line.most_common() if abs(size) >= 20]
        for where, size in shown[:14]:
            print(f"    {size:>+8,.0f}  {where}")
