"""Issue 12: no way around the audit trail.

SQLite: `INSERT OR REPLACE` / `REPLACE INTO` reusing an audit id is refused (migration 0008).
PostgreSQL: the application role of docs/deployment-postgresql.md (owns nothing, may only SELECT and
INSERT on audit_event) cannot UPDATE, DELETE, TRUNCATE, DROP TRIGGER or DISABLE TRIGGER, and the app
works through it. The grants are read from the document itself, so the document stays true.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import DBAPIError

from db.engine import Database, make_engine
from db.migrate import upgrade_to_head
from db.models import AuditEvent
from infusion.services.setup import bootstrap
from tests.conftest import PG_URL
from tests.helpers import new_session

DOC = Path(__file__).resolve().parents[2] / "docs" / "deployment-postgresql.md"


def _grants() -> str:
    block = DOC.read_text().split("<!-- app-role-grants -->")[1].split("<!-- /app-role-grants -->")[0]
    return block.replace("```sql", "").replace("```", "").strip()


def test_sqlite_replace_cannot_overwrite_an_audit_row(db, nurse):
    if db.dialect != "sqlite":
        pytest.skip("SQLite's REPLACE conflict resolution")
    new_session(db, nurse)
    with db.reading() as s:
        first = s.scalars(select(AuditEvent).order_by(AuditEvent.id).limit(1)).one()
        count = s.scalar(select(func.count()).select_from(AuditEvent))
    for statement in (
        "INSERT OR REPLACE INTO audit_event (id, at, user_name, action, entity) "
        "VALUES (:id, '2024-01-01 00:00:00', 'mallory', 'nothing', 'x')",
        "REPLACE INTO audit_event (id, at, user_name, action, entity) "
        "VALUES (:id, '2024-01-01 00:00:00', 'mallory', 'nothing', 'x')",
    ):
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(text(statement), {"id": first.id})
    with db.reading() as s:
        again = s.get(AuditEvent, first.id)
        assert (again.user_name, again.action) == (first.user_name, first.action)
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == count


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL roles")
def test_the_app_role_can_only_insert_into_the_audit_trail(nurse):
    assert PG_URL is not None
    tag = uuid.uuid4().hex[:8]
    schema, role = f"chairside_role_{tag}", f"chairside_app_{tag}"
    admin = create_engine(PG_URL)
    sep = "&" if "?" in PG_URL else "?"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        conn.execute(text(f'CREATE ROLE "{role}" NOLOGIN'))
    try:
        owner = make_engine(f"{PG_URL}{sep}options=-csearch_path%3D{schema}")
        upgrade_to_head(owner)
        grants = re.sub(r"\bchairside_app\b", f'"{role}"', _grants())
        grants = re.sub(r"\bchairside\b(?=[ .;])", f'"{schema}"', grants)
        with owner.begin() as conn:
            for statement in filter(None, (x.strip() for x in grants.split(";"))):
                conn.execute(text(statement))
        owner.dispose()

        # the app itself, connected as the role: it works (bootstrap, a booking, their audit rows)
        app = Database(make_engine(f"{PG_URL}{sep}options=-csearch_path%3D{schema}%20-crole%3D{role}"))
        bootstrap(app)
        new_session(app, nurse)
        with app.reading() as s:
            assert s.scalar(select(func.count()).select_from(AuditEvent)) > 0
        refused = {
            "UPDATE": "UPDATE audit_event SET user_name = 'mallory'",
            "DELETE": "DELETE FROM audit_event",
            "TRUNCATE": "TRUNCATE audit_event",
            "DROP TRIGGER": "DROP TRIGGER audit_event_append_only ON audit_event",
            "DISABLE TRIGGER": "ALTER TABLE audit_event DISABLE TRIGGER USER",
            "DROP TABLE": "DROP TABLE audit_event",
            "ALTER migrations": "UPDATE alembic_version SET version_num = '0001'",
        }
        for what, statement in refused.items():
            with pytest.raises(DBAPIError) as error, app.engine.begin() as conn:
                conn.execute(text(statement))
            assert error.value.orig is not None
            sqlstate = getattr(error.value.orig, "sqlstate", "")
            assert sqlstate == "42501", f"{what}: {error.value.orig}"  # insufficient_privilege / must be owner
        app.engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()
