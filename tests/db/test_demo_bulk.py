"""The demo's bulk load (issue 14, network scale): a generator process makes the same rows as one
process, the database settings changed for the load come back, failures save nothing, and the
progress display says how far the load is."""

from __future__ import annotations

import io
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from db.engine import Database, make_engine
from db.models import InfusionSession, TrendSession
from infusion.demo import DemoOptions, load_demo, loader, pipeline
from infusion.demo import cli as demo_cli
from infusion.demo.writer import INSERT_ORDER

NOW = datetime(2026, 3, 11, 15, 40, tzinfo=UTC)
SMALL = DemoOptions(sessions=400, seed=5)
NETWORK = DemoOptions(sessions=600, seed=5, sites=3)

needs_fork = pytest.mark.skipif(not pipeline.can_fork(), reason="no fork here, or other threads running")


def _copy(template: Path, tmp_path: Path, name: str) -> Database:
    path = tmp_path / name
    shutil.copy(template, path)
    return Database(make_engine(f"sqlite:///{path}"))


def _contents(db: Database) -> dict[str, list[Any]]:
    tables = [t.name for t in INSERT_ORDER] + [TrendSession.__tablename__]
    with db.engine.connect() as conn:
        return {name: list(conn.execute(text(f'SELECT * FROM "{name}" ORDER BY 1, 2')).all()) for name in tables}


@needs_fork
@pytest.mark.parametrize("options", [SMALL, NETWORK], ids=["one clinic", "network"])
def test_a_generator_process_makes_the_same_rows(options: DemoOptions, sqlite_template: Path, tmp_path: Path) -> None:
    one, two = _copy(sqlite_template, tmp_path, "one.sqlite"), _copy(sqlite_template, tmp_path, "two.sqlite")
    try:
        serial = load_demo(one, options, now=NOW, parallel=False)
        forked = load_demo(two, options, now=NOW, parallel=True)
        assert (serial.counts, serial.today) == (forked.counts, forked.today)
        assert _contents(one) == _contents(two)
    finally:
        one.engine.dispose()
        two.engine.dispose()


@needs_fork
def test_a_failing_generator_saves_nothing(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> None:
        raise ValueError("no live day today")

    monkeypatch.setattr(loader.LiveDay, "write", broken)
    with pytest.raises(RuntimeError, match="generating the demo failed: ValueError: no live day today"):
        load_demo(db, SMALL, now=NOW, parallel=True)
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(InfusionSession)) == 0
    monkeypatch.undo()
    assert load_demo(db, SMALL, now=NOW, parallel=True).counts["sessions"] == SMALL.sessions


def test_a_failing_write_saves_nothing(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row the database refuses (here a vital sign of a session that does not exist) fails the load."""
    real = loader.SessionRows.emit

    def orphan(self: Any, plan: Any, sim: Any, *args: Any, **kwargs: Any) -> None:
        real(self, plan, sim, *args, **kwargs)
        rows = self.writer.buffers[INSERT_ORDER[2]]  # vital_sign
        if rows:
            rows[-1] = (rows[-1][0], 10**9, *rows[-1][2:])

    monkeypatch.setattr(loader.SessionRows, "emit", orphan)
    monkeypatch.setattr(pipeline, "FK_RELAX_FROM", 1)  # PostgreSQL: the keys come back, and check the rows
    with pytest.raises(Exception, match="(?i)foreign key"):
        load_demo(db, SMALL, now=NOW, parallel=False)
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(InfusionSession)) == 0


def _foreign_keys(db: Database) -> list[tuple[str, str, str]]:
    with db.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE contype = 'f' AND connamespace = current_schema()::regnamespace ORDER BY 1, 2"
                )
            )
        ]


def test_foreign_keys_dropped_for_a_large_load_come_back(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    if db.dialect != "postgresql":
        pytest.skip("PostgreSQL only: SQLite keeps its foreign keys")
    before = _foreign_keys(db)
    monkeypatch.setattr(pipeline, "FK_RELAX_FROM", 1)
    load_demo(db, SMALL, now=NOW)
    assert _foreign_keys(db) == before and before


def test_sqlite_settings_for_the_load_are_restored(sqlite_template: Path, tmp_path: Path) -> None:
    db = _copy(sqlite_template, tmp_path, "settings.sqlite")
    seen: list[tuple[str, int, int, int]] = []
    real = pipeline.produce
    index_sql = "SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
    with db.engine.connect() as conn:
        indexes = conn.exec_driver_sql(index_sql).all()

    def watch(conn: Any, *args: Any, **kwargs: Any) -> Any:
        raw = conn.connection.driver_connection
        seen.append(
            (
                raw.execute("PRAGMA journal_mode").fetchone()[0],
                raw.execute("PRAGMA synchronous").fetchone()[0],
                raw.execute("PRAGMA foreign_keys").fetchone()[0],
                len(raw.execute(index_sql).fetchall()),
            )
        )
        return real(conn, *args, **kwargs)

    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(loader, "produce", watch)
            mp.setattr(pipeline, "FK_RELAX_FROM", 1)
            load_demo(db, SMALL, now=NOW)
            load_demo(db, DemoOptions(sessions=60, seed=1, force=True), now=NOW)
        # relaxed on the empty database only: rollback journal, no sync, keys checked once after the rows,
        # the loaded tables' secondary indexes built after them
        assert seen[0][:3] == ("delete", 0, 0) and seen[0][3] < len(indexes)
        assert seen[1] == ("wal", 2, 1, len(indexes))
        with db.engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            assert conn.exec_driver_sql(index_sql).all() == indexes  # every index back, as it was
            assert raw.execute("PRAGMA foreign_keys").fetchone()[0] == 1
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert raw.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL, as db.engine sets it
            assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
            assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.engine.dispose()
    plain = sqlite3.connect(tmp_path / "settings.sqlite")
    try:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # stored in the file
    finally:
        plain.close()


def test_progress_shows_percent_rows_per_second_and_time(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    report = loader.Progress(lines.append, 1000)
    line = report.line(written=21_600, done=500, elapsed=2.0)
    assert "50%" in line and "500 of 1,000 sessions" in line and "21,600 rows" in line
    assert "10,800 rows/s" in line and "2 s" in line

    # not a terminal: plain lines, at most one every few seconds
    err = io.StringIO()
    monkeypatch.setattr(demo_cli.sys, "stderr", err)
    quiet = demo_cli.StderrProgress()
    assert not quiet.live
    quiet.update("rows line")
    quiet("step line")
    assert err.getvalue() == "rows line\nstep line\n"
    assert loader.Progress(quiet, 10)._every >= 5

    # a terminal: the rows line is redrawn in place, and a step starts on a new line
    tty = io.StringIO()
    tty.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr(demo_cli.sys, "stderr", tty)
    live = demo_cli.StderrProgress()
    live.update("long rows line")
    live.update("short")
    live("step")
    assert tty.getvalue() == "\rlong rows line\rshort         \nstep\n"
    assert loader.Progress(live, 10)._every < 1


@needs_fork
@pytest.mark.parametrize("options", [SMALL, NETWORK], ids=["one clinic", "network"])
def test_summaries_written_batch_by_batch_equal_a_rebuild(
    db: Database, monkeypatch: pytest.MonkeyPatch, options: DemoOptions
) -> None:
    """SQLite summarises each written batch's sessions while the next is generated (keys and most indexes
    deferred); every summary then equals one rebuilt from the raw rows, home visits included. PostgreSQL
    summarises after the load, in one statement."""
    from infusion.reads import due_summary
    from infusion.reads.trends import maintenance

    real_writer, real_summarise = pipeline.Writer, loader.summarise_sessions
    batches: list[int] = []

    def summarise(conn: Any, cond: Any) -> None:
        batches.append(1)
        real_summarise(conn, cond)

    monkeypatch.setattr(pipeline, "FK_RELAX_FROM", 1)
    monkeypatch.setattr(pipeline, "Writer", lambda deliver: real_writer(deliver, batch_rows=1_500))
    monkeypatch.setattr(loader, "summarise_sessions", summarise)
    load_demo(db, options, now=NOW, parallel=True)
    with db.reading() as s:
        assert maintenance.compare(s.connection()) == []
        assert due_summary.compare(s.connection()) == []
        homes = s.scalar(select(func.count()).where(TrendSession.at_home.is_(True)))
    assert homes  # the home visits were marked before their batch was summarised
    if db.dialect == "sqlite":
        assert len(batches) > 2
    else:
        assert batches == []
