"""Run Alembic migrations from code (app start, tests) and from `alembic upgrade head`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine

ROOT = Path(__file__).resolve().parent.parent


def migration_url() -> str | None:
    """The URL migrations run with when the app role may not change the schema
    (`CHAIRSIDE_MIGRATION_URL`, the schema owner; docs/deployment-postgresql.md), else None."""
    return os.environ.get("CHAIRSIDE_MIGRATION_URL") or None


def alembic_config(url: str | None = None) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "db" / "migrations"))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_to_head(engine: Engine) -> None:
    """Bring the schema to the newest revision using the caller's engine.

    On SQLite, foreign keys are switched off while migrating (a table that
    others reference may be rebuilt by a batch operation) and checked after:
    Alembic's documented practice (batch migrations on SQLite), only when a
    revision was applied.
    """
    cfg = alembic_config()
    with engine.connect() as connection:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:  # must run outside a transaction, so on the raw connection before SQLAlchemy begins
            _raw_execute(connection, "PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                cfg.attributes["connection"] = connection
                before = _current_revision(connection)
                command.upgrade(cfg, "head")
                # Only a migration can break a foreign key here: the check reads every row (3.8 s at a
                # million sessions), so an app start with nothing to migrate skips it.
                if sqlite and _current_revision(connection) != before:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration left broken foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                _raw_execute(connection, "PRAGMA foreign_keys=ON")


def _current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _raw_execute(connection: Connection, sql: str) -> None:
    """Run `sql` on the DBAPI connection itself, outside SQLAlchemy's transaction handling."""
    raw = connection.connection.dbapi_connection
    assert raw is not None  # an open Connection holds its DBAPI connection
    raw.execute(sql)


def main() -> int:
    """`python -m db.migrate`: bring the database to head with the migration URL (or the app URL)."""
    from db.engine import database_url, make_engine

    engine = make_engine(migration_url() or database_url())
    try:
        upgrade_to_head(engine)
    finally:
        engine.dispose()
    print("Database at the newest schema.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
