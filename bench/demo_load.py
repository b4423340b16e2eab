"""Benchmark the demo loader: 100,000 sessions into a fresh SQLite file, and into
PostgreSQL too when CHAIRSIDE_TEST_POSTGRES_URL is set (in a throwaway schema
that is dropped afterwards). Prints figures only; nothing is asserted.

    python bench/demo_load.py [--sessions N] [--seed S]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, no install needed

from sqlalchemy import create_engine, text  # noqa: E402

from db.engine import open_database  # noqa: E402
from infusion.demo.clinic import DemoOptions, load_demo  # noqa: E402


def run(label: str, url: str, options: DemoOptions) -> None:
    started = time.perf_counter()
    db = open_database(url)  # migrations
    migrated = time.perf_counter() - started
    cpu = time.process_time()
    try:
        result = load_demo(db, options)
    finally:
        db.engine.dispose()
    cpu = time.process_time() - cpu  # this process only: SQLite's work, not the PostgreSQL server's
    c = result.counts
    rows = sum(c.values())
    print(
        f"{label}: {c['sessions']:,} sessions, {c['vital_signs']:,} vital signs, {c['rate_changes']:,} rate "
        f"changes, {c['premedications']:,} premedications, {c['reactions']:,} reactions, "
        f"{c['patients']:,} patients ({rows:,} rows)"
    )
    print(
        f"{label}: load {result.seconds:.1f} s wall, {cpu:.1f} s CPU in this process "
        f"({rows / result.seconds:,.0f} rows/s, {c['sessions'] / result.seconds:,.0f} sessions/s); "
        f"migrations {migrated:.1f} s"
    )


def sqlite(options: DemoOptions) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.sqlite"
        run("sqlite", f"sqlite:///{path}", options)
        size = sum(f.stat().st_size for f in Path(folder).iterdir())
        print(f"sqlite: database files {size / 2**20:,.0f} MiB")


def postgresql(base_url: str, options: DemoOptions) -> None:
    schema = f"chairside_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in base_url else "?"
        run("postgresql", f"{base_url}{sep}options=-csearch_path%3D{schema}", options)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    options = DemoOptions(sessions=args.sessions, seed=args.seed)
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} "
        "(wall times stretch when other work shares the CPUs)"
    )
    sqlite(options)
    pg_url = os.environ.get("CHAIRSIDE_TEST_POSTGRES_URL")
    if pg_url:
        postgresql(pg_url, options)


if __name__ == "__main__":
    main()
