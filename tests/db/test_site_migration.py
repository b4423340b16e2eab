"""Migration 0010 upgrades a populated single-clinic database in place: its clinic becomes the first
site, every row and every role stays as it was (issue 13). Proved on a demo database taken back to
0009 (the schema before sites), on SQLite and, when CHAIRSIDE_TEST_POSTGRES_URL is set, PostgreSQL
(in a schema of its own, as the migration runs DDL on it)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, inspect, select, text

from db.engine import Database, make_engine
from db.migrate import _raw_execute, alembic_config, upgrade_to_head
from db.models import AppUser, Chair, Clinic, InfusionSession, UserSite
from infusion.accounts.actor import Actor
from infusion.accounts.sites import held_sites, working_site
from infusion.demo import DemoOptions, load_demo
from infusion.reads.trends import maintenance
from infusion.services.setup import bootstrap
from tests.conftest import BACKENDS, PG_URL

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
#: the clinical record and the accounts: what "every row stays as it was" is checked on
KEPT = (
    "patient",
    "infusion_session",
    "vital_sign",
    "reaction",
    "rate_change",
    "premedication",
    "audit_event",
    "session_correction",
    "follow_up",
    "pretreatment_answer",
)


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'single-clinic.sqlite'}")
        yield eng
        eng.dispose()
        return
    assert PG_URL
    schema = f"chairside_mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    eng = make_engine(f"{PG_URL}{sep}options=-csearch_path%3D{schema}")
    try:
        yield eng
    finally:
        eng.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _downgrade(engine: Engine, revision: str) -> None:
    """As `upgrade_to_head`, the other way (SQLite rebuilds tables others reference: foreign keys off)."""
    cfg = alembic_config()
    with engine.connect() as connection:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            _raw_execute(connection, "PRAGMA foreign_keys=OFF")
        with connection.begin():
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, revision)
        if sqlite:
            _raw_execute(connection, "PRAGMA foreign_keys=ON")


def _fingerprint(engine: Engine) -> dict[str, tuple[int, str]]:
    """Row count and a digest of every row (sorted by id) of each kept table, and of the accounts'
    roles and the chairs' names."""
    out: dict[str, tuple[int, str]] = {}
    queries = {t: f"SELECT * FROM {t} ORDER BY id" for t in KEPT}
    # the columns audit_event had at 0009 (0013 added site_id, filled once; these stay as they were)
    queries["audit_event"] = (
        "SELECT id, at, user_id, user_name, action, entity, entity_id, session_id, patient_id, before, after, reason "
        "FROM audit_event ORDER BY id"
    )
    queries["app_user"] = "SELECT id, username, display_name, role, active, password_hash FROM app_user ORDER BY id"
    queries["chair"] = "SELECT id, name, kind, active FROM chair ORDER BY id"
    queries["clinic"] = "SELECT id, name, timezone, temperature_unit, weight_unit FROM clinic ORDER BY id"
    with engine.connect() as conn:
        for name, sql in queries.items():
            rows = conn.execute(text(sql)).all()
            digest = hashlib.sha256(repr([tuple(map(str, r)) for r in rows]).encode()).hexdigest()
            out[name] = (len(rows), digest)
    return out


def test_a_populated_single_clinic_becomes_the_first_site(engine: Engine) -> None:
    upgrade_to_head(engine)
    db = Database(engine)
    bootstrap(db)
    load_demo(db, DemoOptions(sessions=400, seed=11), now=NOW)
    with engine.begin() as conn:  # a clinic with its own time zone, as a real one has
        conn.execute(text("UPDATE clinic SET timezone = 'America/Chicago'"))
        maintenance.rebuild(conn)

    _downgrade(engine, "0009")
    columns = {c["name"] for c in inspect(engine).get_columns("chair")}
    assert "site_id" not in columns and "user_site" not in inspect(engine).get_table_names()
    before = _fingerprint(engine)
    assert before["infusion_session"][0] >= 400 and before["vital_sign"][0] > 1000

    upgrade_to_head(engine)

    assert _fingerprint(engine) == before, "a row or a role changed in the upgrade"
    with db.reading() as s:
        (site,) = s.scalars(select(Clinic)).all()
        assert site.code == f"S{site.id}" and site.active
        assert set(s.scalars(select(Chair.site_id))) == {site.id}
        users = list(s.scalars(select(AppUser)))
        assert users
        for user in users:
            network = user.role in ("admin", "manager", "quality")
            assert user.network_wide is network, user.username
            scope = set(s.scalars(select(UserSite.site_id).where(UserSite.user_id == user.id)))
            assert scope == (set() if network else {site.id}), user.username
            actor = Actor(user.id, user.display_name, user.role)
            assert held_sites(s, actor) in (None, frozenset({site.id}))
            if user.active:
                assert working_site(s, actor) == site.id  # everyone works where they did
        assert s.scalar(select(InfusionSession.id).limit(1)) is not None
    with engine.connect() as conn:
        assert maintenance.compare(conn) == []  # the trend summaries were rebuilt with the site
        days = conn.execute(text("SELECT count(*), count(DISTINCT site_id) FROM trend_session")).one()
        assert days[0] > 0 and days[1] == 1
