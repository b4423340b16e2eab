"""Time against sessions per figure, log-log, from several `--json` results.

    python -m benchmarks.plot benchmarks/results/*.json [--out benchmarks/results/scaling]

Writes <out>.csv (the points) and <out>.html (plotly); <out>.png too when kaleido is installed.
Only rows in milliseconds are drawn (the throughput and memory rows are not times).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import plotly.graph_objects as go


def points(paths: list[Path]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for path in paths:
        data = json.loads(path.read_text())
        meta = data["meta"]
        for row in data["rows"]:
            if row.get("unit") == "ms" and row.get("median") is not None:
                out.append(
                    {
                        "dialect": meta["dialect"],
                        "sessions": meta["sessions"],
                        "figure": row["name"],
                        "median_ms": row["median"],
                        "floor_ms": row.get("floor_median"),
                    }
                )
    return sorted(out, key=lambda p: (str(p["dialect"]), str(p["figure"]), int(p["sessions"])))  # type: ignore[call-overload]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plot", description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scaling"))
    args = parser.parse_args(argv)
    rows = points(args.results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["dialect", "sessions", "figure", "median_ms", "floor_ms"])
        writer.writeheader()
        writer.writerows(rows)
    fig = go.Figure()
    for key in sorted({(str(r["dialect"]), str(r["figure"])) for r in rows}):
        series = [r for r in rows if (r["dialect"], r["figure"]) == key]
        fig.add_trace(
            go.Scatter(
                x=[r["sessions"] for r in series],
                y=[r["median_ms"] for r in series],
                mode="lines+markers",
                name=f"{key[0]}: {key[1]}",
            )
        )
    fig.update_layout(
        title="Median time against sessions (log-log)",
        xaxis={"type": "log", "title": "sessions in the database"},
        yaxis={"type": "log", "title": "median ms"},
        height=900,
    )
    fig.write_html(args.out.with_suffix(".html"), include_plotlyjs="cdn")
    written = [args.out.with_suffix(".csv"), args.out.with_suffix(".html")]
    try:
        import kaleido  # noqa: F401

        fig.write_image(args.out.with_suffix(".png"), width=1400, height=900)
        written.append(args.out.with_suffix(".png"))
    except ImportError:
        print("kaleido is not installed: no PNG (the HTML and CSV hold the same points)")
    print("written:", ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
