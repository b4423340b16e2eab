"""Database fixtures: every test that takes `db` runs on SQLite, and on PostgreSQL
too when CHAIRSIDE_TEST_POSTGRES_URL is set.

PostgreSQL tests run in a schema of their own (created and migrated once per
test run, truncated before each test, dropped at the end), so they never touch
anything else in the database.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from db.engine import Database, make_engine
from db.migrate import upgrade_to_head
from db.models import Base
from infusion.accounts.actor import Actor
from infusion.clock import utcnow
from infusion.services.setup import bootstrap

PG_URL = os.environ.get("CHAIRSIDE_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_to_head(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str | None]:
    if not PG_URL:
        yield None
        return
    schema = f"chairside_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    upgrade_to_head(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _truncate_all(engine) -> None:  # type: ignore[no-untyped-def]
    """Empty the test schema. The audit table refuses TRUNCATE (append-only), so its
    guard triggers are switched off for this test-only reset and on again."""
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        conn.execute(text("ALTER TABLE audit_event ENABLE TRIGGER USER"))


@pytest.fixture(params=BACKENDS)
def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path, pg_schema_url: str | None
) -> Iterator[str]:
    """A URL to an empty, migrated database on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "chairside.sqlite"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
    else:
        assert pg_schema_url is not None
        engine = make_engine(pg_schema_url)
        _truncate_all(engine)
        engine.dispose()
        yield pg_schema_url


@pytest.fixture
def raw_db(db_url: str) -> Iterator[Database]:
    """An empty migrated database (no clinic row, no catalog)."""
    database = Database(make_engine(db_url))
    yield database
    database.engine.dispose()


@pytest.fixture
def db(raw_db: Database) -> Database:
    """A migrated database with the clinic row and the seeded therapy catalog."""
    bootstrap(raw_db)
    return raw_db


@pytest.fixture
def nurse() -> Actor:
    return Actor(user_id=None, name="Test Nurse", role="nurse")


@pytest.fixture(autouse=True)
def _deid_key_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A generated de-identification key goes to the test's own folder, never the runner's home."""
    monkeypatch.setenv("CHAIRSIDE_DEID_KEY_FILE", str(tmp_path / "deid.key"))


@pytest.fixture(autouse=True)
def _today_when_the_test_runs() -> None:
    """Test modules that name the day as `TODAY` (and those importing it from them) read it as each test
    starts, not when the module was collected: a run that starts before midnight UTC and reaches them after
    it would otherwise compare the services' today with yesterday."""
    today = utcnow().date()
    for name, module in list(sys.modules.items()):
        if name.startswith("tests.") and isinstance(getattr(module, "TODAY", None), date):
            module.TODAY = today  # type: ignore[attr-defined]
