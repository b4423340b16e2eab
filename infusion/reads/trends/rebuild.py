"""`python -m infusion.reads.trends.rebuild [--database-url URL] [--check]`: every summary from the raw rows
(the Trends figures' and the due list's).

Run after a bulk load, an import, a restore or a clinic time-zone change (writes that
bypass the ORM session events of `maintenance`). One transaction; a progress bar on
stderr. `--check` rebuilds nothing and lists where the stored summaries differ.
"""

from __future__ import annotations

import argparse
import sys
import time

from db.engine import WRITE_OPTION, Database, database_url, make_engine
from infusion.reads import due_summary
from infusion.reads.trends.maintenance import compare, rebuild


def _bar(done: int, total: int, started: float) -> None:
    width = 40
    share = done / total if total else 1.0
    filled = int(width * share)
    print(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} sessions  {time.perf_counter() - started:5.1f} s",
        end="",
        file=sys.stderr,
        flush=True,
    )


def rebuild_all(db: Database, *, show_progress: bool = False) -> int:
    """Rebuild every summary in one write transaction; returns the number of sessions read."""
    started = time.perf_counter()
    with db.engine.connect() as conn:
        conn = conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            n = rebuild(conn, progress=(lambda d, t: _bar(d, t, started)) if show_progress else None)
            due_summary.rebuild(conn)
    if show_progress:
        print(file=sys.stderr)
    return n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infusion.reads.trends.rebuild", description=__doc__)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if anything differs")
    args = parser.parse_args(argv)
    db = Database(make_engine(args.database_url or database_url()))
    try:
        if args.check:
            with db.reading() as s:
                problems = compare(s.connection()) + due_summary.compare(s.connection())
            for line in problems[:50]:
                print(line)
            print(f"{len(problems)} difference(s)", file=sys.stderr)
            return 1 if problems else 0
        started = time.perf_counter()
        n = rebuild_all(db, show_progress=True)
        print(
            f"Trend and due-list summaries rebuilt from {n:,} sessions in {time.perf_counter() - started:.1f} s.",
            file=sys.stderr,
        )
    finally:
        db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
