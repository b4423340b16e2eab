"""The database a run measures: find or build it, scratch PostgreSQL databases, and "cold".

- SQLite without a URL: /tmp/chairside_bench/sessions_<N>.sqlite, kept between runs
  (a demo build of 100 k sessions takes minutes; delete the file to rebuild).
- PostgreSQL: a URL naming no database (`postgresql+psycopg://postgres@127.0.0.1:5432/`)
  gets a scratch database `chairside_bench_<random>`, built, measured and dropped at the
  end (`--keep` keeps it and prints its URL). A URL naming a database is used as it is and
  built only if it has no sessions. The `test` database is refused: its public schema
  belongs to the test suite.
- Cold: a new engine (empty pool, so new connections with empty SQLite page caches or a
  new PostgreSQL backend; empty SQLAlchemy statement cache), after `sync` and dropping
  the OS page cache (`/proc/sys/vm/drop_caches`, root only; otherwise POSIX_FADV_DONTNEED
  on the SQLite files). PostgreSQL's shared_buffers cannot be emptied without restarting
  a server that is not ours, so a PostgreSQL "cold" read still finds recently used pages there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from db.engine import Database, make_engine
from db.migrate import upgrade_to_head
from db.models import Base, InfusionSession

ROOT = Path(__file__).resolve().parent.parent
SQLITE_FOLDER = Path("/tmp/chairside_bench")


@dataclass
class Target:
    """The database of one run and what was done to get it."""

    url: str
    dialect: str
    scratch_database: str | None = None  # a PostgreSQL database of ours, dropped at the end
    admin_url: str | None = None
    built_seconds: float | None = None  # set when this run built it
    build_rows: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def default_sqlite_url(sessions: int) -> str:
    SQLITE_FOLDER.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{SQLITE_FOLDER / f'sessions_{sessions}.sqlite'}"


def shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def resolve(url: str | None, sessions: int) -> Target:
    """The target for a URL (None: the default SQLite file for N sessions); creates a scratch database."""
    if url is None:
        return Target(default_sqlite_url(sessions), "sqlite")
    parsed = make_url(url)
    dialect = parsed.get_backend_name()
    if dialect != "postgresql":
        return Target(url, dialect)
    if parsed.database == "test" and "options" not in parsed.query:
        raise SystemExit("refusing the `test` database: its public schema belongs to the test suite")
    if parsed.database:
        return Target(url, dialect)
    name = f"chairside_bench_{uuid.uuid4().hex[:10]}"
    admin_url = parsed.set(database="postgres").render_as_string(hide_password=False)
    create_database(admin_url, name)
    return Target(
        parsed.set(database=name).render_as_string(hide_password=False),
        dialect,
        scratch_database=name,
        admin_url=admin_url,
    )


def create_database(admin_url: str, name: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


def drop_database(admin_url: str, name: str) -> None:
    if not name.startswith("chairside_bench_"):
        raise ValueError(f"not a benchmark scratch database: {name}")
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def session_count(url: str) -> int:
    """Sessions in the database; 0 when it has no tables yet."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(InfusionSession)).scalar() or 0)
    except Exception:  # no schema yet: the demo build migrates it
        return 0
    finally:
        engine.dispose()


def table_counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t.name: int(conn.execute(select(func.count()).select_from(t)).scalar() or 0)
                for t in Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def build_demo(url: str, sessions: int, days: int | None = None, label: str = "demo") -> float:
    """`python -m infusion.demo --sessions N --database-url URL` in a subprocess; its output is passed
    through line by line (prefixed) with an elapsed-time line every 15 s. Returns wall seconds."""
    command = [sys.executable, "-m", "infusion.demo", "--sessions", str(sessions), "--database-url", url]
    if days:
        command += ["--days", str(days)]
    print(f"[{label}] building {sessions:,} sessions: python -m infusion.demo … {shown(url)}", file=sys.stderr)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    done = threading.Event()

    def ticker() -> None:
        while not done.wait(15):
            print(f"[{label}] … {time.perf_counter() - started:,.0f} s", file=sys.stderr, flush=True)

    thread = threading.Thread(target=ticker, daemon=True)
    thread.start()
    assert process.stdout is not None
    for line in process.stdout:
        print(f"[{label}] {line.rstrip()}", file=sys.stderr, flush=True)
    code = process.wait()
    done.set()
    seconds = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"python -m infusion.demo exited {code}")
    print(f"[{label}] built in {seconds:,.1f} s", file=sys.stderr, flush=True)
    return seconds


def ensure_built(target: Target, sessions: int, days: int | None) -> None:
    """Build the demo clinic into the target when it has no sessions; ANALYZE on PostgreSQL."""
    if session_count(target.url) == 0:
        target.built_seconds = build_demo(target.url, sessions, days)
        target.counts = table_counts(target.url)
        target.build_rows = sum(target.counts.values())
    else:  # an earlier build: brought to the newest schema first, as the app would at start
        engine = make_engine(target.url)
        try:
            started = time.perf_counter()
            upgrade_to_head(engine)
            print(f"[demo] schema at head in {time.perf_counter() - started:,.1f} s", file=sys.stderr, flush=True)
        finally:
            engine.dispose()
        target.counts = table_counts(target.url)
    if target.dialect == "postgresql":
        analyze(target.url)


def analyze(url: str) -> None:
    """Planner statistics, as autovacuum gathers them some time after a bulk load. Without them a freshly
    built database plans the Trends joins as nested loops over row estimates of 1 (seconds at 10 k
    sessions instead of milliseconds): infusion.demo does not ANALYZE after loading."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    finally:
        engine.dispose()


def finish(target: Target, keep: bool) -> None:
    if target.scratch_database and target.admin_url:
        if keep:
            print(f"kept scratch database: {shown(target.url)}", file=sys.stderr)
        else:
            drop_database(target.admin_url, target.scratch_database)


def sqlite_files(url: str) -> list[Path]:
    database = make_url(url).database
    if not database:
        return []
    return [p for p in (Path(database + suffix) for suffix in ("", "-wal", "-shm")) if p.exists()]


def drop_os_cache(url: str) -> str:
    """Empty the OS page cache (all of it when root may, else the SQLite files' pages); says how."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
        return "drop_caches"
    except OSError:
        pass
    files = sqlite_files(url)
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return "fadvise" if files else "none"


@contextmanager
def cold_database(url: str) -> Iterator[Database]:
    """A fresh engine after dropping the OS cache (see the module docstring); disposed on exit."""
    drop_os_cache(url)
    db = Database(make_engine(url))
    try:
        yield db
    finally:
        db.engine.dispose()


def cold_how(url: str) -> str:
    try:
        with open("/proc/sys/vm/drop_caches", "w"):
            pass
        os_part = "OS page cache dropped (drop_caches)"
    except OSError:
        os_part = "SQLite files evicted (fadvise)" if sqlite_files(url) else "OS cache kept (not root)"
    pg = "; PostgreSQL shared_buffers stay warm" if url.startswith("postgresql") else ""
    return f"new engine, new connections, {os_part}{pg}"
