"""Interleaved rounds, medians and the target verdicts every row of the table shares."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


def clock(function: Callable[[], Any]) -> float:
    """Seconds one call takes (perf_counter, wall time)."""
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def interleaved(
    figure: Callable[[], Any], floor: Callable[[], Any] | None, rounds: int, warmup: int = 1
) -> tuple[list[float], list[float]]:
    """Warm up both, then alternate figure and floor (order swapped every round) so load from
    other processes on the shared cores lands on both sides alike. Seconds per call."""
    for _ in range(warmup):
        figure()
        if floor is not None:
            floor()
    ours: list[float] = []
    theirs: list[float] = []
    for r in range(rounds):
        if floor is not None and r % 2:
            theirs.append(clock(floor))
        ours.append(clock(figure))
        if floor is not None and not r % 2:
            theirs.append(clock(floor))
    return ours, theirs


def settled(
    figure: Callable[[], Any], floor: Callable[[], Any], rounds: int, warmup: int = 1
) -> tuple[list[float], list[float], list[float]]:
    """`interleaved`, but each timed figure call comes right after an untimed one, and those untimed
    calls' times are returned too: (settled figure, floor, figure right after the floor).

    Why: the floor between rounds is a parallel scan of hundreds of MB that empties the CPU caches. A
    figure of a few ms timed right after it paid 1–3 ms more on both engines (session 11: SQLite rates
    1.8 → 3.0 ms, PostgreSQL 3.3 → 4.6 ms), which is the floor's footprint, not the figure's warm cost.
    The floor keeps one timed call per round: its working set is the database's, not the CPU's."""
    for _ in range(warmup):
        figure()
        floor()
    ours: list[float] = []
    theirs: list[float] = []
    after: list[float] = []
    for r in range(rounds):
        if r % 2:
            theirs.append(clock(floor))
        after.append(clock(figure))
        ours.append(clock(figure))
        if not r % 2:
            theirs.append(clock(floor))
    return ours, theirs, after


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): a value that was measured, not interpolated."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


@dataclass
class Target:
    """One limit: `value` compared with `limit` by `op` ('<=' or '>='), in `unit`."""

    label: str
    value: float
    limit: float
    op: str
    unit: str

    @property
    def met(self) -> bool:
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit

    def verdict(self) -> str:
        if self.met:
            return f"{self.label} met"
        if self.unit == "speedup":
            return (
                f"{self.label} missed: {self.value:.2f}× the floor's speed, needs {self.limit / self.value:,.0f}× more"
            )
        if self.op == "<=":
            times = self.value / self.limit if self.limit else float("inf")
            return f"{self.label} missed by {_amount(self.value - self.limit, self.unit)} ({times:.1f}×)"
        short = self.limit / self.value if self.value else float("inf")
        return f"{self.label} missed by {_amount(self.limit - self.value, self.unit)} ({short:.1f}× short)"


def _amount(delta: float, unit: str) -> str:
    if unit == "ms":
        return f"{delta:,.0f} ms" if delta >= 10 else f"{delta:.1f} ms"
    if unit == "s":
        return f"{delta:,.1f} s"
    if unit == "×":
        return f"{delta:,.1f}×"
    if unit == "%":
        return f"{delta:.0f} points"
    return f"{delta:,.0f} {unit}"


@dataclass
class Row:
    """One line of the table. Times are milliseconds unless `unit` says otherwise."""

    name: str
    group: str
    unit: str = "ms"
    median: float | None = None
    low: float | None = None
    high: float | None = None
    floor_name: str = ""
    floor_median: float | None = None
    floor_low: float | None = None
    floor_high: float | None = None
    samples: int = 0
    note: str = ""
    targets: list[Target] = field(default_factory=list)
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.median is None or not self.floor_median:
            return None
        return self.median / self.floor_median

    def verdict(self) -> str:
        if self.error:
            return f"FAILED: {self.error}"
        if not self.targets:
            return "(no target)"
        return "; ".join(t.verdict() for t in self.targets)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ratio"] = self.ratio
        out["verdict"] = self.verdict()
        out["targets"] = [{**asdict(t), "met": t.met} for t in self.targets]
        return out


def timed_row(
    name: str,
    group: str,
    ours: Sequence[float],
    theirs: Sequence[float] = (),
    floor_name: str = "",
    note: str = "",
) -> Row:
    """A row from samples in seconds: medians and min–max in ms."""
    row = Row(name, group, note=note, floor_name=floor_name, samples=len(ours))
    if ours:
        row.median, row.low, row.high = (1000 * statistics.median(ours), 1000 * min(ours), 1000 * max(ours))
    if theirs:
        row.floor_median, row.floor_low, row.floor_high = (
            1000 * statistics.median(theirs),
            1000 * min(theirs),
            1000 * max(theirs),
        )
    return row
