"""Alembic migrations against the models, on SQLite and PostgreSQL, and the SQLite connection settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from db.engine import Database, make_engine
from db.migrate import alembic_config, upgrade_to_head
from db.models import Base

TABLES = {t.name for t in Base.metadata.sorted_tables}


def _head() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_database_is_at_head(raw_db):
    with raw_db.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == _head()


def test_models_match_the_migrations(raw_db):
    with raw_db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_every_model_table_exists_with_its_active_session_indexes(raw_db):
    inspector = inspect(raw_db.engine)
    assert TABLES <= set(inspector.get_table_names())
    indexes = {ix["name"]: ix for ix in inspector.get_indexes("infusion_session")}
    for name, column in (("uq_session_active_chair", "chair_id"), ("uq_session_active_patient", "patient_id")):
        assert indexes[name]["unique"]
        assert indexes[name]["column_names"] == [column]


def test_upgrade_to_head_twice_is_harmless(raw_db):
    upgrade_to_head(raw_db.engine)
    with raw_db.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == _head()


def _sqlite_only(db: Database) -> None:
    if db.dialect != "sqlite":
        pytest.skip("SQLite connection settings")


def test_sqlite_connections_have_foreign_keys_and_wal(raw_db):
    _sqlite_only(raw_db)
    # several pooled connections, each configured on connect
    connections = [raw_db.engine.connect() for _ in range(3)]
    try:
        for conn in connections:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    finally:
        for conn in connections:
            conn.close()


def test_foreign_keys_are_enforced(raw_db):
    with pytest.raises(IntegrityError):
        with raw_db.writing() as s:
            s.execute(
                text(
                    "INSERT INTO vital_sign (session_id, phase, taken_at, entered_at, status, consciousness, on_oxygen, "
                    "unable_to_obtain, provider_notified, flags, flag_count, news2_complete) "
                    "VALUES (424242, 'pre', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'active', 'A', false, '{}', false, "
                    "'[]', 0, false)"
                )
            )


def test_sqlite_downgrade_to_base_and_upgrade_again(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'roundtrip.sqlite'}")
    try:
        upgrade_to_head(engine)
        cfg = alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "base")
        remaining = set(inspect(engine).get_table_names())
        assert not (remaining & TABLES)
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() is None
        upgrade_to_head(engine)
        assert TABLES <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            assert context.get_current_revision() == _head()
    finally:
        engine.dispose()


def test_open_database_migrates_a_new_file(tmp_path: Path):
    from db.engine import open_database

    database = open_database(f"sqlite:///{tmp_path / 'fresh.sqlite'}")
    try:
        assert TABLES <= set(inspect(database.engine).get_table_names())
    finally:
        database.engine.dispose()


def test_upgrade_from_0001_keeps_data_referencing_app_user(tmp_path):
    """Regression: 0002 on a SQLite clinic that already had staff and audit rows failed
    (SQLite rebuilt app_user while foreign keys pointed at it)."""
    from alembic import command
    from sqlalchemy import text

    from db.engine import make_engine
    from db.migrate import alembic_config, upgrade_to_head

    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO app_user (username, display_name, role, active, created_at) "
                "VALUES ('ann', 'Ann', 'nurse', 1, '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO audit_event (at, user_id, user_name, action, entity) "
                "VALUES ('2026-01-01 00:00:00', 1, 'Ann', 'create', 'app_user')"
            )
        )
    upgrade_to_head(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT username, failed_attempts FROM app_user")).one() == ("ann", 0)
        assert conn.execute(text("SELECT count(*) FROM audit_event")).scalar() == 1
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_0015_down_and_up_again_keeps_the_due_summary(db):
    """Ended courses (0015) down to 0014 and up again on both engines: the marks go with their table, the
    due list's rows stay, and `due_pair.ended` comes back false for every pair (no mark in force)."""
    from datetime import timedelta

    from infusion.reads import due_summary
    from infusion.services import courses
    from tests.db.test_due import CHARGE, TODAY, history
    from tests.helpers import therapy_id

    patient = history(db, CHARGE, "natalizumab", [TODAY - timedelta(days=300)])
    courses.end_course(db, CHARGE, patient, therapy_id(db, "natalizumab"), "completed")
    cfg = alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0014")
    inspector = inspect(db.engine)
    assert "course_end" not in inspector.get_table_names()
    assert "ended" not in {c["name"] for c in inspector.get_columns("due_pair")}
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM due_pair")).scalar() == 1
    upgrade_to_head(db.engine)
    with db.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == _head()
        assert conn.execute(text("SELECT count(*) FROM course_end")).scalar() == 0
        assert due_summary.compare(conn) == []  # the pair is listed again: nothing marks it ended


def test_0016_down_and_up_again_rebuilds_the_chair_use_of_every_chair(db):
    """Chair use per site (0016) down to 0015 and up again on both engines: the site rows (chair 0) go
    and come back from the rebuild at head, equal to a recompute from the raw rows, and utilisation with
    no chair filter is the raw figure's."""
    from datetime import date

    import pandas as pd

    from infusion.reads import trends as metrics
    from infusion.reads.trends import TrendFilters, maintenance, raw
    from tests.db.test_metrics import build, local

    build(db)
    every = "SELECT count(*) FROM trend_chair_use WHERE chair_id = 0"
    with db.engine.connect() as conn:
        assert conn.execute(text(every)).scalar() > 0
    cfg = alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0015")
    with db.engine.connect() as conn:
        assert conn.execute(text(every)).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM trend_chair_use_year WHERE chair_id = 0")).scalar() == 0
    upgrade_to_head(db.engine)
    with db.engine.connect() as conn:
        assert conn.execute(text(every)).scalar() > 0
        assert maintenance.compare(conn) == []
    f, now = TrendFilters(date(2025, 1, 1), date(2025, 3, 31)), local("2025-04-01", "12:00")
    fast, reference = metrics.chair_utilisation(db, f, now=now), raw.chair_utilisation(db, f, now=now)
    assert fast["chair_hours_occupied"].sum() > 0
    pd.testing.assert_frame_equal(fast, reference, check_exact=False, rtol=1e-9)  # ms summed as floats


def test_0017_down_and_up_again_refills_the_time_lost_sums(db):
    """The count rollups' time-lost sums (0017) down to 0016 and up again on both engines: the columns go
    and come back filled by the rebuild at head, equal to a recompute from the raw rows, and time lost
    read from them is the raw figure's."""
    from datetime import date

    import pandas as pd

    from infusion.reads import trends as metrics
    from infusion.reads.trends import TrendFilters, maintenance, raw
    from tests.db.test_metrics import build

    build(db)
    cfg = alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0016")
    assert "chair_seconds" not in {c["name"] for c in inspect(db.engine).get_columns("trend_monthly")}
    upgrade_to_head(db.engine)
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT sum(chair_n) FROM trend_monthly")).scalar() > 0
        assert maintenance.compare(conn) == []
    f = TrendFilters(date(2025, 1, 1), date(2025, 3, 31))
    fast, reference = metrics.reaction_time_lost(db, f), raw.reaction_time_lost(db, f)
    assert fast["sessions"].sum() > 0
    pd.testing.assert_frame_equal(fast, reference, check_exact=False, atol=1 / 60, rtol=0)  # whole seconds


def test_0018_down_and_up_again_keeps_the_duration_histogram(db):
    """The packed duration bins (0018) down to 0017 and up again on both engines: the downgrade fills the
    row-per-bin tables from trend_session (one bin per completed session and kind), the upgrade packs them
    again through the rebuild at head, equal to a recompute from the raw rows, and the duration summary
    counts the raw figure's sessions."""
    from datetime import date

    from infusion.reads import trends as metrics
    from infusion.reads.trends import TrendFilters, maintenance, raw
    from tests.db.test_metrics import build

    build(db)
    completed = "SELECT count(infusion_minutes) + count(chair_minutes) FROM trend_session WHERE completed = {}"
    cfg = alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0017")
    tables = set(inspect(db.engine).get_table_names())
    assert {"trend_duration", "trend_duration_year"} <= tables and "trend_duration_bins" not in tables
    true = "TRUE" if db.dialect == "postgresql" else "1"
    with db.engine.connect() as conn:
        sessions = conn.execute(text(completed.format(true))).scalar()
        assert sessions > 0
        for table in ("trend_duration", "trend_duration_year"):
            assert conn.execute(text(f"SELECT sum(n) FROM {table}")).scalar() == sessions
    upgrade_to_head(db.engine)
    with db.engine.connect() as conn:
        assert maintenance.compare(conn) == []
    f = TrendFilters(date(2025, 1, 1), date(2025, 3, 31))
    fast, reference = metrics.duration_summary(db, f), raw.duration_summary(db, f)
    assert fast["sessions"].sum() > 0
    assert fast["sessions"].tolist() == reference["sessions"].tolist()
