"""One year of vitals to CSV: infusion.exports.datasets.write_csv against the database's own shell.

Both run as child processes so each peak RSS is that process's own (ru_maxrss of the
child from os.wait4): the export in a fresh interpreter (`python -m benchmarks.export
URL START END OUT`, imports included in its peak), the floor in `sqlite3` with
`.mode csv` (SQLite) or `psql -c "COPY (…) TO STDOUT WITH (FORMAT csv, HEADER)"`
(PostgreSQL), running the export's own main SELECT (infusion.exports.queries.vitals_query,
compiled with its bounds as literals), so both write the same rows. The export also
formats every cell as the file needs it (each site's zone and offset, spreadsheet-safe
text, true/false, Python's float text), in SQL since issue 14 (infusion.exports.sql_cells:
SQLite returns finished CSV lines, PostgreSQL streams COPY … TO STDOUT); the shell writes
the stored values as they are: that formatting is the cost the throughput ratio shows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import make_url

from benchmarks.database import ROOT


def year_filters(today: date) -> tuple[date, date]:
    return today - timedelta(days=364), today


def floor_sql(url: str, start: date, end: date) -> str:
    from benchmarks.trends import clinic_zone
    from db.engine import Database, make_engine
    from infusion.exports.queries import ExportFilters, bounds, vitals_query

    db = Database(make_engine(url))
    try:
        tz = clinic_zone(db)
        filters = ExportFilters(start, end)
        lo, hi = bounds(filters, ZoneInfo(tz))
        statement = vitals_query(filters, lo, hi)
        return str(statement.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}))
    finally:
        db.engine.dispose()


def _run_child(command: list[str], out: Path | None, stdin: str | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB, stdout text when not redirected) of one child process.

    The peak comes from GNU time (`/usr/bin/time -f %M`): a child forked straight from this
    (large) process would report this process's RSS as its own ru_maxrss, which Linux keeps
    across exec."""
    started = time.perf_counter()
    rss_file = Path(tempfile.mkstemp(prefix="chairside_bench_rss_")[1])
    with open(out, "wb") if out else open(os.devnull, "wb") as sink:
        process = subprocess.Popen(
            ["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *command],
            cwd=ROOT,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=sink if out else subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        if stdin is not None:
            assert process.stdin is not None
            process.stdin.write(stdin.encode())
            process.stdin.close()
        text_out = process.stdout.read().decode() if process.stdout else ""
        errors = process.stderr.read().decode() if process.stderr else ""
        process.wait()
    seconds = time.perf_counter() - started
    peak_kib = rss_file.read_text().strip().splitlines()[-1] if rss_file.stat().st_size else "0"
    rss_file.unlink()
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} exited {process.returncode}: {errors.strip()[-300:]}")
    return seconds, int(peak_kib) / 1024 if peak_kib.isdigit() else float("nan"), text_out


def run_export(url: str, start: date, end: date, out: Path) -> tuple[float, float, int]:
    """(seconds inside the child, peak RSS MiB of the child, rows)."""
    command = [sys.executable, "-m", "benchmarks.export", url, start.isoformat(), end.isoformat(), str(out)]
    _, rss, text_out = _run_child(command, None)
    result = json.loads(text_out.strip().splitlines()[-1])
    return float(result["seconds"]), rss, int(result["rows"])


def run_floor(url: str, sql: str, out: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of the shell writing the same rows as CSV."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        script = f".headers on\n.mode csv\n{sql};\n"
        seconds, rss, _ = _run_child(["sqlite3", "-bail", str(parsed.database)], out, stdin=script)
        return seconds, rss
    libpq = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    copy = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER)"
    seconds, rss, _ = _run_child(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", libpq, "-c", copy], out)
    return seconds, rss


def _child(url: str, start: str, end: str, out: str) -> dict[str, Any]:
    from db.engine import Database, make_engine
    from infusion.exports.datasets import ExportFilters, write_csv

    db = Database(make_engine(url))
    started = time.perf_counter()
    with open(out, "wb") as sink:
        rows = write_csv(
            db, "vitals", ExportFilters(date.fromisoformat(start), date.fromisoformat(end)), sink, actor_role="admin"
        )
    seconds = time.perf_counter() - started
    db.engine.dispose()
    return {"rows": rows, "seconds": seconds}


if __name__ == "__main__":
    print(json.dumps(_child(*sys.argv[1:5])))
