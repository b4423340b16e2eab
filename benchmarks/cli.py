"""python -m benchmarks [--database-url URL] [--sessions N] [--only NAME] [--quick] [--json PATH] [--explain]

Measures, on one database (built with `python -m infusion.demo` if it has no sessions):
  trends   each Trends figure (and trends.load) for one year and the whole history, warm and cold,
           against one hand-written SQL statement computing the same numbers
  page     the whole Trends page through Streamlit's AppTest, cold and warm
  screens  Due list, Chair board, Chairside list, one session timeline
  saves    record_vitals p50/p95 against a bare one-row insert + commit
  export   one year of vitals to CSV against the sqlite3 shell / psql COPY, with peak RSS
  browser  every page each demo role opens, in Chromium against the real app, until it is idle
  demo     the demo build's rows/s
and prints one table of medians (min–max), the ratio to the floor and each target met or missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from benchmarks import browser, database, explain, export, page, saves, screens, trends
from benchmarks.timing import Row, Target, interleaved, percentile, settled, timed_row
from db.engine import Database, make_engine
from infusion.accounts.actor import Actor

GROUPS = ("trends", "page", "screens", "saves", "browser", "export", "demo")
MS = "ms"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        help="SQLite or PostgreSQL URL; a PostgreSQL URL without a database name gets a scratch database "
        "(default: /tmp/chairside_bench/sessions_<N>.sqlite, kept between runs)",
    )
    parser.add_argument("--sessions", type=int, default=10_000, help="demo sessions to build when empty (%(default)s)")
    parser.add_argument("--days", type=int, default=None, help="demo history in days when building (demo default 365)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help=f"run only this group ({', '.join(GROUPS)}) or Trends figure; repeat or comma-separate",
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run, not a measurement)")
    parser.add_argument("--json", type=Path, help="write the rows and run details to this file")
    parser.add_argument("--explain", action="store_true", help="print the plan of each hot query")
    parser.add_argument("--keep", action="store_true", help="keep a scratch PostgreSQL database (prints its URL)")
    return parser.parse_args(argv)


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.quick = args.quick
        self.warm_rounds = 3 if args.quick else 7
        self.cold_rounds = 2 if args.quick else 5
        self.page_rounds = 1 if args.quick else 3
        self.saves = 20 if args.quick else 200
        self.export_rounds = 1 if args.quick else 3
        wanted = {w.strip() for item in args.only for w in item.split(",") if w.strip()}
        unknown = wanted - set(GROUPS) - set(trends.FIGURES) - {"load"}
        if unknown:
            raise SystemExit(f"--only: unknown {', '.join(sorted(unknown))} (groups: {', '.join(GROUPS)})")
        self.figures = [f for f in trends.FIGURES if not wanted or "trends" in wanted or f in wanted]
        self.load = not wanted or "trends" in wanted or "load" in wanted
        self.groups = {g for g in GROUPS if not wanted or g in wanted}
        if self.figures or self.load:
            self.groups.add("trends")
        self.rows: list[Row] = []
        self.plans: dict[str, Any] = {}

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(f"  {row.name}: {_value(row.median, row.unit)}  {row.verdict()}", file=sys.stderr, flush=True)

    def guarded(self, name: str, group: str, body: Callable[[], None]) -> None:
        """Run a section; a failure becomes a FAILED row (the table still prints) and the exit code 1."""
        try:
            body()
        except Exception as exc:  # noqa: BLE001 - reported in the table, the run goes on
            self.rows.append(Row(name, group, error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"))
            print(f"  {name}: FAILED {exc!r}", file=sys.stderr, flush=True)


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == MS:
        return f"{value:,.1f} ms" if value < 100 else f"{value:,.0f} ms"
    if unit == "s":
        return f"{value:,.1f} s"
    if unit == "rows/s":
        return f"{value:,.0f} rows/s"
    if unit == "MiB":
        return f"{value:,.0f} MiB"
    return f"{value:,.2f} {unit}"


# ------------------------------------------------------------------------------------------ trends
#: (warm, cold) ms: the issue's targets for each Trends figure, and for the whole page's data the whole
#: page's (its table puts 50 / 300 ms on each figure and 0.5 / 2 s on the page with all of them)
FIGURE_LIMITS_MS = (50.0, 300.0)
PAGE_LIMITS_MS = (500.0, 2000.0)


def trend_rows(run: Run, db: Database, url: str, manager: Actor) -> None:
    today = trends.utc_today()
    zones = trends.site_zones(db)
    for period in trends.periods(db, today):
        f = period.filters
        params = trends.floor_params(db, f, zones)
        span = f"{f.start}…{f.end}"
        cases: list[tuple[str, Callable[[Database], Any], Callable[[Database], Any], str, tuple[float, float]]] = [
            (
                name,
                partial(trends.run_figure, figure=name, f=f),
                partial(trends.run_floor, figure=name, params=params),
                "; ".join(n for n in (trends.NOTES.get(name, ""), trends.ZONES_NOTE if len(zones) > 1 else "") if n),
                FIGURE_LIMITS_MS,
            )
            for name in run.figures
        ]
        if run.load:
            cases.append(
                (
                    "trends.load (whole page data)",
                    partial(trends.run_load, actor=manager, f=f),
                    partial(trends.run_all_floors, params=params),
                    "floor = every figure's floor in turn; target = the whole page's",
                    PAGE_LIMITS_MS,
                )
            )
        for name, figure, floor, note, (warm_ms, cold_ms) in cases:
            label = f"Trends {name} · {period.name}"
            about = f"{span}; {note}"
            run.guarded(
                f"{label} · warm", "trends", partial(_trend_warm, run, db, label, figure, floor, about, warm_ms)
            )
            run.guarded(
                f"{label} · cold", "trends", partial(_trend_cold, run, url, label, figure, floor, about, cold_ms)
            )
            run.guarded(
                f"{label} · cold, connected",
                "trends",
                partial(_trend_cold, run, url, label, figure, floor, about, cold_ms, connected=True),
            )
            if run.args.explain and period.name == "year":
                run.plans[label] = explain.show(label, db, partial(figure, db))
                run.plans[f"{label} · floor"] = explain.show(f"{label} · floor", db, partial(floor, db))


def _trend_warm(
    run: Run,
    db: Database,
    label: str,
    figure: Callable[[Database], Any],
    floor: Callable[[Database], Any],
    note: str,
    limit_ms: float,
) -> None:
    ours, theirs, after = settled(partial(figure, db), partial(floor, db), run.warm_rounds)
    row = timed_row(f"{label} · warm", "trends", ours, theirs, "hand-written SQL", note)
    row.extra["right after the floor, ms"] = round(1000 * statistics.median(after), 2)
    row.targets = _trend_targets(row, limit_ms)
    run.add(row)


def _cold_call(url: str, function: Callable[[Database], Any], *, connected: bool = False) -> float:
    """Seconds of one call on a cold database (fresh engine, OS cache dropped; see benchmarks.database).
    `connected`: the engine's first connection is opened (`SELECT 1`) before the clock starts, as an app
    server's pool holds its connections: the data caches are as cold, the connection set-up (a new
    PostgreSQL backend: 12–14 ms here) is not timed."""
    with database.cold_database(url) as fresh:
        if connected:
            with fresh.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        started = time.perf_counter()
        function(fresh)
        return time.perf_counter() - started


def _trend_cold(
    run: Run,
    url: str,
    label: str,
    figure: Callable[[Database], Any],
    floor: Callable[[Database], Any],
    note: str,
    limit_ms: float,
    *,
    connected: bool = False,
) -> None:
    ours: list[float] = []
    theirs: list[float] = []
    for r in range(run.cold_rounds):
        if r % 2:
            theirs.append(_cold_call(url, floor, connected=connected))
        ours.append(_cold_call(url, figure, connected=connected))
        if not r % 2:
            theirs.append(_cold_call(url, floor, connected=connected))
    name = f"{label} · cold, connected" if connected else f"{label} · cold"
    row = timed_row(name, "trends", ours, theirs, "hand-written SQL", note)
    row.targets = _trend_targets(row, limit_ms)
    run.add(row)


def _trend_targets(row: Row, limit_ms: float) -> list[Target]:
    assert row.median is not None
    out = [Target(f"≤ {limit_ms:.0f} ms", row.median, limit_ms, "<=", MS)]
    if row.floor_median:
        out.append(Target("≥ 30× faster than floor", row.floor_median / row.median, 30, ">=", "speedup"))
    return out


# ------------------------------------------------------------------------------------------- page
def page_rows(run: Run, url: str, manager: Actor) -> None:
    def body() -> None:
        cold, warm = page.measure(url, manager, run.page_rounds)
        row = timed_row("Trends page (AppTest) · cold", "page", cold, note=database.cold_how(url) + "; caches cleared")
        assert row.median is not None
        row.targets = [Target("≤ 2000 ms", row.median, 2000, "<=", MS)]
        run.add(row)
        row = timed_row("Trends page (AppTest) · warm", "page", warm, note="rerun, cached frames")
        assert row.median is not None
        row.targets = [Target("≤ 500 ms", row.median, 500, "<=", MS)]
        run.add(row)

    run.guarded("Trends page (AppTest)", "page", body)


# ---------------------------------------------------------------------------------------- screens
def screen_rows(run: Run, db: Database, who: screens.Staff) -> None:
    def body() -> None:
        for name, figure, floor_name, floor, note in screens.cases(db, who, trends.utc_today()):

            def one(
                name: str = name, figure: Any = figure, floor: Any = floor, fn: str = floor_name, n: str = note
            ) -> None:
                ours, theirs = interleaved(figure, floor, run.warm_rounds)
                row = timed_row(name, "screens", ours, theirs, fn, n)
                assert row.median is not None
                row.targets = [Target("≤ 100 ms", row.median, 100, "<=", MS)]
                run.add(row)

            run.guarded(name, "screens", one)
            if run.args.explain:
                run.plans[name] = explain.show(name, db, figure)

    run.guarded("screens", "screens", body)


def _screen(
    run: Run, name: str, figure: Callable[[], Any], floor_name: str, floor: Callable[[], Any], note: str
) -> None:
    ours, theirs = interleaved(figure, floor, run.warm_rounds)
    row = timed_row(name, "screens", ours, theirs, floor_name, note)
    assert row.median is not None
    row.targets = [Target("≤ 100 ms", row.median, 100, "<=", MS)]
    run.add(row)


# ------------------------------------------------------------------------------------------ saves
def save_rows(run: Run, db: Database, who: screens.Staff) -> None:
    def body() -> None:
        ours, theirs, sid = saves.measure(db, who, run.saves)
        for q in (50, 95):
            row = Row(
                f"Save vitals (record_vitals) p{q}",
                "saves",
                median=1000 * percentile(ours, q),
                low=1000 * min(ours),
                high=1000 * max(ours),
                floor_name="bare one-row insert + commit",
                floor_median=1000 * percentile(theirs, q),
                floor_low=1000 * min(theirs),
                floor_high=1000 * max(theirs),
                samples=len(ours),
                note=f"session {sid}; min–max over all saves",
            )
            if q == 95:
                assert row.median is not None and row.ratio is not None
                row.targets = [
                    Target("p95 ≤ 20 ms", row.median, 20, "<=", MS),
                    Target("≤ 3× bare insert", row.ratio, 3, "<=", "×"),
                ]
            run.add(row)

    run.guarded("Save vitals (record_vitals)", "saves", body)


# ---------------------------------------------------------------------------------------- browser
def browser_rows(run: Run, url: str) -> None:
    def body() -> None:
        missing = browser.available()
        if missing:
            print(f"  browser: left out, {missing}", file=sys.stderr, flush=True)
            return
        roles = {user: role for user, _, role in browser.STAFF}
        with tempfile.TemporaryDirectory(prefix="chairside_bench_app_") as folder:
            for user, name, first, again in browser.measure(url, Path(folder) / "streamlit.log"):
                for label, seconds in (("first visit", first), ("again", again)):
                    row = timed_row(
                        f"Page {name} ({roles[user]}) · {label}",
                        "browser",
                        [seconds],
                        note=f"{user} in Chromium, 1280×900: the click until the app is idle",
                    )
                    run.add(row)

    run.guarded("Pages in Chromium", "browser", body)


# ----------------------------------------------------------------------------------------- export
def export_rows(run: Run, url: str) -> None:
    def body() -> None:
        start, end = export.year_filters(trends.utc_today())
        sql = export.floor_sql(url, start, end)
        with tempfile.TemporaryDirectory(prefix="chairside_bench_csv_") as folder:
            ours: list[float] = []
            theirs: list[float] = []
            rss: list[float] = []
            floor_rss: list[float] = []
            rows = 0
            for r in range(run.export_rounds):
                steps = ["export", "floor"] if r % 2 == 0 else ["floor", "export"]
                for step in steps:
                    if step == "export":
                        seconds, peak, rows = export.run_export(url, start, end, Path(folder) / "export.csv")
                        ours.append(seconds)
                        rss.append(peak)
                    else:
                        seconds, peak = export.run_floor(url, sql, Path(folder) / "floor.csv")
                        theirs.append(seconds)
                        floor_rss.append(peak)
            lines = sum(1 for _ in open(Path(folder) / "floor.csv", "rb")) - 1
        rate = [rows / s for s in ours]
        floor_rate = [rows / s for s in theirs]
        shell = "sqlite3 .mode csv" if make_url(url).get_backend_name() == "sqlite" else "psql COPY TO STDOUT"
        row = Row(
            "Vitals CSV, one year (write_csv) throughput",
            "export",
            unit="rows/s",
            median=statistics.median(rate),
            low=min(rate),
            high=max(rate),
            floor_name=shell,
            floor_median=statistics.median(floor_rate),
            floor_low=min(floor_rate),
            floor_high=max(floor_rate),
            samples=len(ours),
            note=f"{rows:,} rows ({lines:,} from the shell), {start}…{end}; "
            f"median {statistics.median(ours):.2f} s vs {statistics.median(theirs):.2f} s",
        )
        assert row.median is not None and row.floor_median
        row.targets = [Target("≥ 50 % of shell", 100 * row.median / row.floor_median, 50, ">=", "%")]
        run.add(row)
        row = Row(
            "Vitals CSV, one year (write_csv) peak RSS",
            "export",
            unit="MiB",
            median=statistics.median(rss),
            low=min(rss),
            high=max(rss),
            floor_name=f"{shell} peak RSS",
            floor_median=statistics.median(floor_rss),
            floor_low=min(floor_rss),
            floor_high=max(floor_rss),
            samples=len(rss),
            note="whole child process (interpreter and imports included)",
        )
        assert row.median is not None
        row.targets = [Target("≤ 300 MB", row.median * 1.048576, 300, "<=", "MB")]
        run.add(row)

    run.guarded("Vitals CSV, one year (write_csv)", "export", body)


# ------------------------------------------------------------------------------------------- demo
def demo_rows(run: Run, target: database.Target, sessions: int) -> None:
    def body() -> None:
        if target.built_seconds is not None:
            seconds, rows, built = target.built_seconds, target.build_rows, target.counts.get("infusion_session", 0)
            where = "this run's database"
        else:
            seconds, rows, built, where = _scratch_build(target, sessions, run.args.days)
        projected = seconds * 1_000_000 / max(built, 1)
        limit = 180 if target.dialect == "sqlite" else 240
        row = Row(
            f"Demo build, {built:,} sessions",
            "demo",
            unit="rows/s",
            median=rows / seconds,
            samples=1,
            note=f"{where}: {rows:,} rows in {seconds:,.1f} s ({built / seconds:,.0f} sessions/s, migrations "
            f"included); 1 M sessions projected linearly: {projected / 60:,.1f} min",
            extra={"seconds": seconds, "rows": rows, "sessions": built},
        )
        row.targets = [Target(f"1 M sessions ≤ {limit // 60} min (projected)", projected / 60, limit / 60, "<=", "min")]
        run.add(row)

    run.guarded("Demo build", "demo", body)


def _scratch_build(target: database.Target, sessions: int, days: int | None) -> tuple[float, int, int, str]:
    """Build N sessions into a scratch database of the same kind (dropped afterwards)."""
    if target.dialect == "sqlite":
        with tempfile.TemporaryDirectory(prefix="chairside_bench_demo_") as folder:
            url = f"sqlite:///{Path(folder) / 'demo.sqlite'}"
            seconds = database.build_demo(url, sessions, days, label="demo build")
            counts = database.table_counts(url)
        return seconds, sum(counts.values()), counts["infusion_session"], "scratch SQLite file"
    base = make_url(target.url).set(database="").render_as_string(hide_password=False)
    scratch = database.resolve(base, sessions)
    try:
        seconds = database.build_demo(scratch.url, sessions, days, label="demo build")
        counts = database.table_counts(scratch.url)
    finally:
        database.finish(scratch, keep=False)
    return seconds, sum(counts.values()), counts["infusion_session"], "scratch PostgreSQL database"


# ------------------------------------------------------------------------------------------ table
def table(rows: list[Row]) -> str:
    header = ("figure", "median", "min–max", "floor", "ratio", "n", "target")
    lines = []
    for row in rows:
        span = "—" if row.low is None else f"{_short(row.low, row.unit)}–{_short(row.high, row.unit)}"
        ratio = "—" if row.ratio is None else f"{row.ratio:,.2f}×"
        lines.append(
            (
                row.name,
                _value(row.median, row.unit),
                span,
                _value(row.floor_median, row.unit),
                ratio,
                str(row.samples),
                row.verdict(),
            )
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    widths[-1] = len(header[-1])

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i in (0, 6) else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return "\n".join([fmt(header), fmt(tuple("-" * w for w in widths)), *(fmt(line) for line in lines)])


def _short(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == MS:
        return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
    return f"{value:,.0f}"


def _git_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=database.ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "infusion", "db", "pages", "ui"],
            cwd=database.ROOT,
            capture_output=True,
            text=True,
        )
        return done.stdout.strip() + ("+uncommitted changes in infusion/db/pages/ui" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


# ------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = Run(args)
    target = database.resolve(args.database_url, args.sessions)
    started = time.perf_counter()
    try:
        database.ensure_built(target, args.sessions, args.days)
        db = Database(make_engine(target.url))
        try:
            who = screens.staff(db)
            c = target.counts
            meta = {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "dialect": target.dialect,
                "database": database.shown(target.url),
                "sessions": c.get("infusion_session", 0),
                "vital_signs": c.get("vital_sign", 0),
                "reactions": c.get("reaction", 0),
                "counts": c,
                "quick": args.quick,
                "cold": database.cold_how(target.url),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "load_average": os.getloadavg()[0],
                "commit": _git_commit(),
            }
            print(
                f"{target.dialect} {meta['database']}: {meta['sessions']:,} sessions, {meta['vital_signs']:,} vitals, "
                f"{meta['reactions']:,} reactions; {os.cpu_count()} CPUs, load {meta['load_average']:.2f}; "
                f"cold = {meta['cold']}",
                file=sys.stderr,
                flush=True,
            )
            # Order matters: saves and timelines write audit events, which invalidate the page's cached trends.
            if "trends" in run.groups:
                trend_rows(run, db, target.url, who.manager)
            if "page" in run.groups:
                page_rows(run, target.url, who.manager)
            if "screens" in run.groups:
                screen_rows(run, db, who)
            if "saves" in run.groups:
                save_rows(run, db, who)
            if "browser" in run.groups:
                browser_rows(run, target.url)
        finally:
            db.engine.dispose()
        if "export" in run.groups:
            export_rows(run, target.url)
        if "demo" in run.groups:
            demo_rows(run, target, args.sessions)
    finally:
        database.finish(target, args.keep)
    meta["seconds"] = time.perf_counter() - started
    print(
        f"\n{target.dialect}, {meta['sessions']:,} sessions ({meta['vital_signs']:,} vitals), "
        f"{'quick' if args.quick else 'full'} run, medians of interleaved rounds; cold = {meta['cold']}"
    )
    print(table(run.rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"meta": meta, "rows": [r.to_json() for r in run.rows], "plans": run.plans}
        args.json.write_text(json.dumps(payload, indent=2, default=str))
        print(f"\nwritten: {args.json}")
    return 1 if any(r.error for r in run.rows) else 0
