"""A `--json` result as a Markdown table (for benchmarks/README.md): `python -m benchmarks.markdown FILE...`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _v(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "ms":
        return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
    return f"{value:,.0f}"


def table(data: dict[str, Any]) -> str:
    meta = data["meta"]
    lines = [
        f"**{meta['dialect']}, {meta['sessions']:,} sessions ({meta['vital_signs']:,} vitals), "
        f"{'quick' if meta['quick'] else 'full'} run, {meta['when']}**, load average {meta['load_average']:.2f} "
        f"at the start; cold = {meta['cold']}.",
        "",
        "| figure | median | min–max | floor | ratio | n | target |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in data["rows"]:
        unit = row["unit"]
        span = "—" if row["low"] is None else f"{_v(row['low'], unit)}–{_v(row['high'], unit)}"
        ratio = "—" if row["ratio"] is None else f"{row['ratio']:,.2f}×"
        suffix = "" if unit == "ms" else f" {unit}"
        median = _v(row["median"], unit) + (suffix if row["median"] is not None else "")
        lines.append(
            f"| {row['name']} | {median} | {span} | {_v(row['floor_median'], unit)} | {ratio} | {row['samples']} | "
            f"{row['verdict']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(table(json.loads(Path(name).read_text())))
        print()
