"""Making the rows and writing them: in one process, or a generator process feeding the writer.

A large load is CPU-bound in Python on both sides: simulating the sessions and building their rows,
and handing the rows to the driver (SQLite inserts them in the same process). `produce` runs the
generation in a forked child process that sends finished batches through a bounded queue while this
process writes them, so the two share the machine's cores; the child draws from the same
`random.Random`, in the same order, so a seed makes the same rows either way. Small loads, platforms
without fork and processes with other threads running (the dashboard's `--demo` start: forking a
threaded process is unsafe) generate in-process.

Around the writes, the database is set up for one bulk load and set back afterwards:
- SQLite, an empty database: the rollback journal instead of WAL during the load (the WAL of one
  transaction grows to the whole database's size and is written twice; a rollback journal holds only
  the few pages that existed before, the new ones go straight into the file), `synchronous=OFF` and a
  larger page cache; journal mode, synchronous and cache size are restored after the commit or the
  rollback. A database with sessions keeps its settings (a crash must not cost existing records).
  A large load there also checks the foreign keys once before the commit instead of per row, and builds
  the loaded tables' secondary indexes after the rows (`foreign_keys_after`); `produce`'s `written` hook
  lets the loader summarise each written batch while the generator makes the next.
- PostgreSQL: the foreign keys of the loaded tables are dropped for the load and added back before the
  commit, in the same transaction (one validating join per key instead of a trigger call per row);
  where the role may not alter the tables, or a lock is not granted in time, they stay and are checked
  row by row.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import re
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from queue import Empty
from typing import Any, TypeVar

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from infusion.demo.writer import INSERT_ORDER, Batch, TableSink, Writer, write_batch

log = logging.getLogger(__name__)

#: Sessions from which a generator process makes the rows (below, the fork costs more than it saves).
PARALLEL_FROM = 20_000
#: Batches the generator may be ahead of the writer (each about `Writer.batch_rows` rows).
QUEUE_BATCHES = 4
#: Sessions from which the PostgreSQL foreign keys are dropped for the load and added back after.
FK_RELAX_FROM = 20_000
#: SQLite page cache during the load, KiB (negative: kibibytes in PRAGMA cache_size).
SQLITE_LOAD_CACHE_KIB = 131_072
#: an index led by the session: `CREATE INDEX … ON vital_sign (session_id, taken_at)`
_BY_SESSION = re.compile(r"\(\s*session_id\b")
#: `Connection.info` key: this connection is in `bulk_load_settings`' SQLite bulk mode (keys unchecked)
_SQLITE_BULK = "chairside_sqlite_bulk_load"

T = TypeVar("T")


def can_fork() -> bool:
    """A generator process is possible: fork exists and this process runs no other thread."""
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def produce(
    conn: Connection,
    generate: Callable[[Writer], T],
    progress: Callable[[TableSink], None],
    *,
    parallel: bool,
    written: Callable[[Batch], None] | None = None,
) -> tuple[TableSink, T]:
    """Run `generate(writer)` and write every row it adds, in this transaction; returns the sink (its
    counts) and what `generate` returned. `parallel`: generate in a forked child process. `written(batch)`
    runs after each batch is written (a batch holds whole days: its sessions' rows are all in it)."""
    sink = TableSink(conn)

    def write(batch: Batch) -> None:
        write_batch(sink, batch)
        if written is not None:
            written(batch)
        progress(sink)

    if not parallel:
        writer = Writer(write)
        result = generate(writer)
        writer.flush()
        return sink, result
    return sink, _produce_forked(write, generate)


def _produce_forked(write: Callable[[Batch], None], generate: Callable[[Writer], T]) -> T:
    ctx = multiprocessing.get_context("fork")
    queue: Any = ctx.Queue(maxsize=QUEUE_BATCHES)
    child = ctx.Process(target=_generate_in_child, args=(generate, queue), name="demo-generator", daemon=True)
    # Objects that exist now are never collected in the child (gc.freeze): no finaliser there can
    # close a database connection this process is using, and copy-on-write pages stay shared.
    gc.freeze()
    try:
        child.start()
    finally:
        gc.unfreeze()
    try:
        while True:
            try:
                kind, payload = queue.get(timeout=1.0)
            except Empty:
                if not child.is_alive():
                    raise RuntimeError(
                        f"the demo's generator process ended early (exit code {child.exitcode})"
                    ) from None
                continue
            if kind == "rows":
                write(payload)
            elif kind == "done":
                result: T = payload
                break
            else:
                raise RuntimeError(f"generating the demo failed: {payload}")
        child.join()
        return result
    finally:
        if child.is_alive():  # this side failed: stop the generator (SIGTERM: it runs no clean-up)
            child.terminate()
            child.join()
        queue.close()
        queue.cancel_join_thread()


def _generate_in_child(generate: Callable[[Writer], Any], queue: Any) -> None:
    """The generator process: batches into the queue, then ("done", result) or ("error", message)."""
    try:
        writer = Writer(lambda batch: queue.put(("rows", batch)))
        result = generate(writer)
        writer.flush()
        queue.put(("done", result))
    except BaseException as exc:  # noqa: BLE001 - reported to the writing process, which raises
        log.debug("demo generator failed", exc_info=True)
        lines = traceback.format_exception_only(type(exc), exc)
        queue.put(("error", "".join(lines).strip()))


# --- database settings for one bulk load ---------------------------------------------------------------


@contextmanager
def bulk_load_settings(conn: Connection) -> Iterator[None]:
    """SQLite on an empty database: rollback journal, synchronous=OFF and a larger cache for the load,
    each restored afterwards (see the module docstring). Must be entered outside a transaction."""
    if conn.dialect.name != "sqlite" or not _no_sessions(conn):
        yield
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    saved = {
        name: raw.execute(f"PRAGMA {name}").fetchone()[0] for name in ("journal_mode", "synchronous", "cache_size")
    }
    try:
        journal = raw.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    except Exception as exc:  # noqa: BLE001 - another connection has the file open: stay in WAL
        log.info("demo load keeps journal mode %s: %s", saved["journal_mode"], exc)
        journal = saved["journal_mode"]
    raw.execute("PRAGMA synchronous=OFF")
    raw.execute(f"PRAGMA cache_size=-{SQLITE_LOAD_CACHE_KIB}")
    # the keys are checked once, in bulk, before the commit (`foreign_keys_after`), not per inserted row
    keys_were_on = bool(raw.execute("PRAGMA foreign_keys").fetchone()[0])
    raw.execute("PRAGMA foreign_keys=OFF")
    conn.info[_SQLITE_BULK] = True
    try:
        yield
    finally:
        conn.info.pop(_SQLITE_BULK, None)
        if keys_were_on:
            raw.execute("PRAGMA foreign_keys=ON")
        raw.execute(f"PRAGMA cache_size={int(saved['cache_size'])}")
        raw.execute(f"PRAGMA synchronous={int(saved['synchronous'])}")
        if str(journal).lower() != str(saved["journal_mode"]).lower():
            raw.execute(f"PRAGMA journal_mode={saved['journal_mode']}")


def _no_sessions(conn: Connection) -> bool:
    """SQLite: no session stored yet (read on the driver's connection, outside any transaction)."""
    raw = conn.connection.driver_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM infusion_session)")
        row = cursor.fetchone()
    finally:
        cursor.close()
    return not (row and row[0])


@contextmanager
def foreign_keys_after(conn: Connection, sessions: int) -> Iterator[None]:
    """A large load, inside the caller's transaction: the keys and indexes checked and built once after
    the rows, not per row.

    PostgreSQL: the loaded tables' foreign keys are dropped and added back (validated) after the body.
    SQLite on an empty database (`bulk_load_settings` turned the per-row key checks off): the loaded
    tables' secondary indexes are dropped and created again after the rows (one sort each instead of a
    B-tree insert per row and index: an infusion session has nine; the entries' indexes led by the session
    stay, the trend summaries of each batch read them), then `PRAGMA foreign_key_check` over
    the loaded tables refuses the load if any row points nowhere. The unique indexes are created again
    too, so a duplicate would fail the load the same way."""
    if sessions < FK_RELAX_FROM:
        yield
        return
    if conn.dialect.name == "sqlite":
        with _sqlite_checks_after(conn):
            yield
        return
    if conn.dialect.name != "postgresql":
        yield
        return
    tables = ", ".join(f"to_regclass('\"{t.name}\"')" for t in INSERT_ORDER)
    keys = conn.execute(
        text(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            f"WHERE contype = 'f' AND conrelid = ANY (ARRAY[{tables}]) ORDER BY conrelid, conname"
        )
    ).all()
    try:
        with conn.begin_nested():
            for table, name, _ in keys:
                conn.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    except DBAPIError as exc:  # not the tables' owner, or a reader holds a lock: keep the keys
        log.info("demo load keeps the foreign keys (checked per row): %s", str(exc.orig).strip().splitlines()[0])
        keys = []
    yield
    for table, name, definition in keys:
        conn.exec_driver_sql(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


@contextmanager
def _sqlite_checks_after(conn: Connection) -> Iterator[None]:
    if not conn.info.get(_SQLITE_BULK):  # a database with records keeps its indexes and per-row checks
        yield
        return
    names = [t.name for t in INSERT_ORDER]
    marks = ", ".join("?" * len(names))
    # kept: the entries' (session_id, …) indexes, appended in order and read by each batch's summaries
    indexes = [
        (name, sql)
        for name, sql in conn.exec_driver_sql(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({marks})",
            tuple(names),
        )
        if not _BY_SESSION.search(sql)
    ]
    for name, _ in indexes:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    yield
    for _, sql in indexes:
        conn.exec_driver_sql(sql)
    for name in names:
        broken = conn.exec_driver_sql(f'PRAGMA foreign_key_check("{name}")').fetchmany(3)
        if broken:
            raise RuntimeError(
                f"foreign key check failed: the demo load wrote {name} rows that point nowhere: {broken}"
            )
