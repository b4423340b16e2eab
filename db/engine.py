"""One engine factory for SQLite (embedded default) and PostgreSQL (production).

The database is chosen by `CHAIRSIDE_DATABASE_URL`; without it Chairside uses
`chairside.sqlite` in the working directory. On SQLite every connection gets
WAL, foreign keys, a busy timeout and `synchronous=FULL` (an acknowledged save
survives the app being killed), and transactions that write start with
`BEGIN IMMEDIATE` so two writers queue instead of failing half-way with
SQLITE_BUSY (see ../shared/engineering.md §3).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_URL = "sqlite:///chairside.sqlite"
WRITE_OPTION = "chairside_write"


def database_url() -> str:
    """The configured database URL (environment first, then the SQLite default)."""
    return os.environ.get("CHAIRSIDE_DATABASE_URL", DEFAULT_URL)


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine with the per-dialect settings Chairside depends on."""
    url = url or database_url()
    if url.startswith("sqlite"):
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("timeout", 30)
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (its legacy mode
        # skips BEGIN before SELECT), so the "begin" hook below decides.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


class Database:
    """An engine plus the session factories the service layer uses."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._read = sessionmaker(bind=engine, expire_on_commit=False)
        self._write = sessionmaker(bind=engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A short read-only unit of work; objects stay readable after it closes."""
        with self._read() as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """One transaction: commits on success, rolls back on any exception."""
        with self._write() as session:
            with session.begin():
                yield session


def open_database(url: str | None = None, *, migrate: bool = True) -> Database:
    """Open (and by default migrate to head) the configured database."""
    engine = make_engine(url)
    if migrate:
        from db.migrate import upgrade_to_head

        upgrade_to_head(engine)
        if engine.dialect.name == "sqlite":
            # SQLite never gathers planner statistics on its own; without them it prefers
            # the status index over a scan for trend queries (measured in bench/metrics_bench.py).
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA optimize")
    return Database(engine)
