"""One engine factory for SQLite (embedded default) and PostgreSQL (production).

The database is chosen by `CHAIRSIDE_DATABASE_URL`; without it Chairside uses
`chairside.sqlite` in the working directory. On SQLite every connection gets
WAL, foreign keys, a busy timeout and `synchronous=FULL` (an acknowledged save
survives the app being killed), and transactions that write start with
`BEGIN IMMEDIATE` so two writers queue instead of failing half-way with
SQLITE_BUSY (SQLite's documentation on locking and WAL).

Every wait is bounded (issue 12): the SQLite busy timeout, the connection pool
timeout and, on PostgreSQL, `lock_timeout` and `statement_timeout` (set as
connection options). A lock or pool wait that runs out becomes
`infusion.errors.DatabaseBusy` ("nothing was saved — try again"); a server that cannot be reached or
drops the connection (stopped, restarting) becomes `DatabaseUnavailable` (pooled connections are pinged
before use, so after a PostgreSQL restart the next save simply reconnects); a parameter
the database cannot take (NUL, an unpaired surrogate, an integer beyond 64 bits)
is refused as `ValidationError` before it reaches the driver. `infusion.errors`
is the pure shared kernel (no imports), like the vocabularies `db.models` uses.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from infusion.errors import ChairsideError, DatabaseBusy, DatabaseUnavailable, ValidationError

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///chairside.sqlite"
WRITE_OPTION = "chairside_write"
#: execution option: this transaction waits at most this many milliseconds for a lock
LOCK_WAIT_OPTION = "chairside_lock_wait_ms"
#: execution option: this read plans without parallel workers (PostgreSQL; `Database.reading(summaries=True)`)
SERIAL_OPTION = "chairside_serial"


def _env_ms(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


#: how long a save waits for another writer's lock before "busy, try again" (SQLite busy timeout,
#: PostgreSQL lock_timeout)
LOCK_TIMEOUT_MS = _env_ms("CHAIRSIDE_LOCK_TIMEOUT_MS", 5000)
#: the longest one PostgreSQL statement may run (a runaway query cannot hold a connection for ever)
STATEMENT_TIMEOUT_MS = _env_ms("CHAIRSIDE_STATEMENT_TIMEOUT_MS", 120_000)
#: how long a request waits for a free pooled connection
POOL_TIMEOUT_S = _env_ms("CHAIRSIDE_POOL_TIMEOUT_MS", 10_000) / 1000
#: a lock-wait that a view's own audit row may spend (the view never waits for a busy writer)
QUICK_LOCK_WAIT_MS = 250

INT64 = 2**63 - 1
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def database_url() -> str:
    """The configured database URL (environment first, then the SQLite default)."""
    return os.environ.get("CHAIRSIDE_DATABASE_URL", DEFAULT_URL)


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine with the per-dialect settings Chairside depends on."""
    url = url or database_url()
    if url.startswith("sqlite"):
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("timeout", LOCK_TIMEOUT_MS / 1000)
        if make_url(url).database not in (None, "", ":memory:"):
            kwargs.setdefault("pool_timeout", POOL_TIMEOUT_S)
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        _configure_sqlite(engine)
    else:
        kwargs.setdefault("pool_pre_ping", True)
        # the connection used last is handed out first: its prepared statements and the backend's warm
        # catalog caches serve the next read (first in, first out spread a statement over every pooled
        # connection, five runs on each before psycopg prepares it), and extra ones idle out
        kwargs.setdefault("pool_use_lifo", True)
        kwargs.setdefault("pool_timeout", POOL_TIMEOUT_S)
        if make_url(url).get_backend_name() == "postgresql":
            kwargs["connect_args"] = _postgresql_timeouts(url, kwargs.pop("connect_args", {}))
        engine = create_engine(url, **kwargs)
        _configure_postgresql(engine)
    event.listen(engine, "before_cursor_execute", _refuse_unstorable_parameters)
    return engine


def _postgresql_timeouts(url: str, connect_args: dict[str, Any]) -> dict[str, Any]:
    """lock_timeout and statement_timeout as libpq options, added to any options the URL carries
    (a search_path in the test URL, for one): a connect_args "options" would replace them."""
    options = " ".join(
        x
        for x in (
            str(make_url(url).query.get("options", "") or ""),
            str(connect_args.get("options", "") or ""),
            f"-c lock_timeout={LOCK_TIMEOUT_MS}",
            f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
        )
        if x
    )
    return {**connect_args, "options": options}


def _configure_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        wait = options.get(LOCK_WAIT_OPTION)
        if wait is not None:
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(wait)}")
        if options.get(SERIAL_OPTION):
            conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")


def _refuse_unstorable_parameters(
    _conn: Any, _cursor: Any, _statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    """A text with NUL or an unpaired surrogate, or an integer beyond 64 bits, never reaches the driver
    (PostgreSQL and the sqlite3 module fail raw on them). Rows the ORM writes are checked with field
    names before this (infusion.services.integrity); this catches query parameters and Core writes."""
    rows = parameters if executemany else [parameters]
    names: Sequence[str] = ()
    compiled = getattr(context, "compiled", None)
    if compiled is not None and getattr(compiled, "positiontup", None):
        names = compiled.positiontup
    for params in rows:
        if isinstance(params, Mapping):
            items: Any = params.items()
        elif isinstance(params, Sequence) and not isinstance(params, str):
            items = ((names[i] if i < len(names) else f"value {i + 1}", v) for i, v in enumerate(params))
        else:
            continue
        for name, value in items:
            problem = _unstorable(value)
            if problem:
                field = re.sub(r"_\d+$", "", str(name))
                raise ValidationError({field: f"{field.replace('_', ' ')}: {problem}; nothing was saved."})


def _unstorable(value: Any) -> str | None:
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            return "contains a character that cannot be stored (NUL or an unpaired surrogate)"
    elif isinstance(value, int) and not isinstance(value, bool):
        if not -INT64 - 1 <= value <= INT64:
            return "the number is too large"
    return None


def is_busy(error: BaseException) -> bool:
    """A lock or pool wait that ran out (nothing was written): SQLite busy/locked, PostgreSQL
    lock_timeout, statement_timeout, deadlock or serialization failure, or the pool timeout."""
    if isinstance(error, PoolTimeoutError):
        return True
    if not isinstance(error, OperationalError):
        return False
    code = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    if code in ("55P03", "57014", "40P01", "40001"):
        return True
    text = str(error.orig).lower()
    return "database is locked" in text or "database table is locked" in text or "database is busy" in text


#: PostgreSQL: connection exceptions (class 08) and the server shutting down, crashed or starting up
_UNAVAILABLE_CLASS = "08"
_UNAVAILABLE_CODES = ("57P01", "57P02", "57P03")


def is_unavailable(error: BaseException) -> bool:
    """The server could not be reached or dropped the connection (stopped, restarting, network down).

    SQLAlchemy marks a dropped connection `connection_invalidated`; psycopg raises a refused or failed
    connection as an OperationalError without a SQLSTATE (every server-side OperationalError has one)."""
    if not isinstance(error, OperationalError):
        return False
    if error.connection_invalidated:
        return True
    if not hasattr(error.orig, "sqlstate"):  # not psycopg (SQLite has no server to lose)
        return False
    code = getattr(error.orig, "sqlstate", None)
    return code is None or code.startswith(_UNAVAILABLE_CLASS) or code in _UNAVAILABLE_CODES


#: the busy timeout a pooled SQLite connection has now (its connection record's info)
_BUSY_TIMEOUT = "chairside_busy_timeout_ms"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # Take transaction control away from the sqlite3 module (its legacy mode
        # skips BEGIN before SELECT), so the "begin" hook below decides.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={LOCK_TIMEOUT_MS}")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()
        record.info[_BUSY_TIMEOUT] = LOCK_TIMEOUT_MS

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get(WRITE_OPTION):
            wait = int(options.get(LOCK_WAIT_OPTION) or LOCK_TIMEOUT_MS)
            info = conn.connection.info  # the pooled connection's: set again only when the wait differs
            if info.get(_BUSY_TIMEOUT) != wait:
                conn.exec_driver_sql(f"PRAGMA busy_timeout={wait}")
                info[_BUSY_TIMEOUT] = wait
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


class Database:
    """An engine plus the session factories the service layer uses."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # PostgreSQL: reads run as READ ONLY transactions and end with COMMIT (`reading`)
        read_only: dict[str, Any] = {"postgresql_readonly": True} if engine.dialect.name == "postgresql" else {}
        self._read = sessionmaker(bind=engine.execution_options(**read_only), expire_on_commit=False)
        self._summary = sessionmaker(
            bind=engine.execution_options(**read_only, **{SERIAL_OPTION: True}), expire_on_commit=False
        )
        self._write = sessionmaker(bind=engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False)
        self._quick = sessionmaker(
            bind=engine.execution_options(**{WRITE_OPTION: True, LOCK_WAIT_OPTION: QUICK_LOCK_WAIT_MS}),
            expire_on_commit=False,
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def reading(self, *, summaries: bool = False) -> Iterator[Session]:
        """A short read-only unit of work; objects stay readable after it closes.

        `summaries`: a read of a few thousand summary rows through their keys (the Trends figures). On
        PostgreSQL it plans without parallel workers: starting two took ~7 ms of a 24 ms five-year
        duration read at a million sessions, more than they saved, and on a shared server they take
        cores from other app servers' saves. Scans of raw rows keep the default.

        On PostgreSQL the transaction is READ ONLY (a write in it fails at the server) and ends with
        COMMIT, not ROLLBACK: psycopg drops every prepared statement of a connection on ROLLBACK, so
        reads that rolled back made every statement of the app be parsed and planned again on each use
        (a chair-use read: 1.8 ms planned, 0.3 ms prepared). A read the app's own refusal ends (a busy
        chair, a site not one's own) commits too: the transaction is healthy and had nothing to keep. A
        database error rolls back. SQLite keeps ROLLBACK."""
        with _translated(), (self._summary if summaries else self._read)() as session:
            try:
                yield session
            except ChairsideError:
                self._end_read(session)
                raise
            self._end_read(session)

    def _end_read(self, session: Session) -> None:
        if self.dialect == "postgresql" and session.in_transaction():
            session.commit()

    @contextmanager
    def writing(self, *, quick: bool = False) -> Iterator[Session]:
        """One transaction: commits on success, rolls back on any exception.

        A lock held longer than the lock timeout (`quick`: 250 ms, for writes a read must not
        wait for) ends it with DatabaseBusy; nothing of it is stored."""
        with _translated(), (self._quick if quick else self._write)() as session:
            with session.begin():
                yield session


@contextmanager
def _translated() -> Iterator[None]:
    """Raw driver failures a user could meet, as the project's own errors (the transaction is rolled back)."""
    try:
        yield
    except (OperationalError, PoolTimeoutError) as error:
        if is_busy(error):
            log.warning("database busy: %s", error.__class__.__name__)
            raise DatabaseBusy() from error
        if is_unavailable(error):
            log.warning("database unavailable: %s", str(getattr(error, "orig", error)).splitlines()[0])
            raise DatabaseUnavailable() from error
        raise
    except DataError as error:
        log.warning("value refused by the database: %s", str(error.orig).splitlines()[0])
        raise ValidationError(
            {
                "value": "A value is outside what the database can store (too long, too large or malformed); "
                "nothing was saved."
            }
        ) from error


def open_database(url: str | None = None, *, migrate: bool = True) -> Database:
    """Open (and by default migrate to head) the configured database."""
    engine = make_engine(url)
    if migrate:
        from db.migrate import migration_url, upgrade_to_head

        owner_url = migration_url() if url in (None, database_url()) else None
        if owner_url:  # the schema owner migrates; the app role (which owns nothing) works
            owner = make_engine(owner_url)
            try:
                upgrade_to_head(owner)
            finally:
                owner.dispose()
        else:
            upgrade_to_head(engine)
        if engine.dialect.name == "sqlite":
            # SQLite never gathers planner statistics on its own; without them it prefers
            # the status index over a scan for trend queries (measured in bench/metrics_bench.py).
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA optimize")
    return Database(engine)
