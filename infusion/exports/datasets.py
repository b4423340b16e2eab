"""Quality exports: the datasets of `schema.DATASETS` (sessions, vitals, reactions, audit, course ends) as streamed
rows, CSV files and previews.

The export page and `python -m infusion.exports` both call `write_csv`, so a
scheduled drop and a download are the same file. Rows are read from a
server-side cursor in chunks (`stream_results` + `yield_per`; PostgreSQL drivers otherwise fetch the whole result first), and each chunk's
premedication, rate and reaction summaries are fetched with one indexed query per
chunk, so memory stays bounded however many millions of vitals there are. The
whole export reads one snapshot (REPEATABLE READ on PostgreSQL, one read
transaction on SQLite) so a nurse saving vitals mid-export cannot make the
datasets disagree.

Corrections are applied the way docs/clinical-basis.md §12 keeps them: each row shows the
current entry (`status = 'active'`), `corrected` says it replaced an earlier
one, superseded entries are never exported, and entries marked entered in error
are left out unless asked for (then flagged). Columns come from
`infusion.exports.schema`; de-identification rules from `infusion.exports.deidentify`.

This module is the public API (request checks, the snapshot, streaming, files
and previews). The parts live beside it: `csv_writer` (spreadsheet-safe cells
and the CSV format), `queries` (filters and each dataset's SELECT), `records`
(chunk rows → identified records) and `shaping` (identified → output mode).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing, contextmanager
from operator import itemgetter
from typing import IO, Any, cast
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Connection, Select, literal_column

from db.engine import Database
from infusion.accounts.permissions import AUDIT, EXPORTS
from infusion.errors import ChairsideError, PermissionDenied, ValidationError
from infusion.exports import deidentify as deid
from infusion.exports import sql_cells
from infusion.exports.csv_writer import (
    BOM,
    DANGEROUS_LEADING,
    LINE_END,
    CsvSink,
    cell_formatter,
    format_cell,
    neutralise,
)
from infusion.exports.queries import QUERIES, ExportFilters, Scope, check_filters, count_query
from infusion.exports.records import BUILDERS
from infusion.exports.schema import DATASETS, SCHEMA_VERSION, Column
from infusion.exports.shaping import ExportContext, cell_rows, chosen_sites, load_context, read_sites, shape

# BOM, DANGEROUS_LEADING, format_cell and neutralise are re-exported: importers take them from here.
__all__ = [
    "AUDIT_ROLES",
    "BOM",
    "CHUNK_ROWS",
    "DANGEROUS_LEADING",
    "ExportFilters",
    "count_rows",
    "format_cell",
    "iter_rows",
    "neutralise",
    "preview",
    "suggested_filename",
    "to_frame",
    "write_csv",
]

log = logging.getLogger(__name__)

#: Rows fetched per round trip and written per chunk: small enough to keep memory flat, large enough that
#: the per-chunk summary queries are few.
CHUNK_ROWS = 2_000
#: Roles allowed to export the audit trail (infusion.accounts.permissions.AUDIT; the page's service check uses the same).
AUDIT_ROLES = AUDIT

Chunks = Generator[list[dict[str, Any]], None, None]


# Public API -------------------------------------------------------------------------------------


def iter_rows(
    db: Database,
    dataset: str,
    filters: ExportFilters,
    deidentify: bool = False,
    secret: bytes | str | None = None,
    *,
    actor_role: str | None = None,
    held_sites: frozenset[int] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[dict[str, Any]]:
    """Rows of a dataset as dicts keyed by output column, streamed from a server-side cursor.

    Values are Python objects: aware datetimes in the time zone of the row's site
    (identified mode), numbers, booleans, text, None. `held_sites`: the sites the
    person exporting holds (None: every site); `filters.site_ids` must lie within them.
    Arguments (sites included) are checked before the first row is asked for. Close
    the iterator (or exhaust it) to release the connection.
    """
    key = _check_request(dataset, actor_role, deidentify, secret, filters)
    _check_sites(db, filters, held_sites)
    return _rows(db, dataset, filters, key, held_sites, chunk_rows)


def write_csv(
    db: Database,
    dataset: str,
    filters: ExportFilters,
    out: IO[bytes] | IO[str],
    deidentify: bool = False,
    secret: bytes | str | None = None,
    progress: Callable[[int], None] | None = None,
    *,
    actor_role: str | None = None,
    held_sites: frozenset[int] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> int:
    """Write a dataset as CSV (UTF-8 with BOM) to a binary or text stream; returns the rows written.

    A text stream must be UTF-8 and opened with newline="" (the CSV uses CRLF line
    ends). `progress` is called with the running row count after each chunk.
    """
    key = _check_request(dataset, actor_role, deidentify, secret, filters)
    with _snapshot(db) as conn:
        ctx = load_context(conn, dataset, key, filters, held_sites)  # refuses a site not held before any byte
        columns = ctx.columns
        sink = CsvSink(out, [c.name for c in columns])
        plan = _sql_plan(conn, dataset, filters, ctx)
        if plan is not None:
            written = _write_by_sql(conn, dataset, filters, ctx, plan, sink, chunk_rows, progress)
        else:
            written = _write_by_rows(conn, dataset, filters, ctx, sink, chunk_rows, progress)
    log.info("CSV export written: dataset=%s rows=%d deidentified=%s", dataset, written, deidentify)
    return written


def preview(
    db: Database,
    dataset: str,
    filters: ExportFilters,
    deidentify: bool = False,
    n: int = 20,
    *,
    secret: bytes | str | None = None,
    actor_role: str | None = None,
    held_sites: frozenset[int] | None = None,
) -> tuple[pd.DataFrame, int]:
    """The first `n` rows (typed DataFrame, same columns as the file) and the total row count."""
    key = _check_request(dataset, actor_role, deidentify, secret, filters)
    with _snapshot(db) as conn:
        ctx = load_context(conn, dataset, key, filters, held_sites)
        columns = ctx.columns
        total = int(conn.scalar(_count_query(dataset, filters, ctx)) or 0)
        rows: list[dict[str, Any]] = []
        if n > 0:
            with closing(_chunks_on(conn, dataset, filters, ctx, n)) as chunks:
                rows = next(chunks, [])[:n]
    return to_frame(rows, columns, ctx.tz), total


def count_rows(
    db: Database,
    dataset: str,
    filters: ExportFilters,
    *,
    actor_role: str | None = None,
    held_sites: frozenset[int] | None = None,
) -> int:
    """How many rows an export of these filters holds (the same in both modes)."""
    _check_request(dataset, actor_role, False, None, None)
    check_filters(dataset, filters)
    with _snapshot(db) as conn:
        ctx = load_context(conn, dataset, None, filters, held_sites)
        return int(conn.scalar(_count_query(dataset, filters, ctx)) or 0)


def suggested_filename(
    dataset: str, filters: ExportFilters, deidentify: bool = False, site_codes: Sequence[str] = ()
) -> str:
    """A file name that says what is inside: dataset, sites when named, dates, mode and schema version.

    Site codes are left out of a de-identified file's name when the file pseudonymises the site.
    """
    mode = "_deidentified" if deidentify else ""
    if site_codes and not (deidentify and filters.pseudonymise_site):
        safe = ["".join(ch for ch in code if ch.isalnum() or ch in "-_") for code in site_codes]
        mode = "_" + "-".join(code for code in safe if code) + mode
    return (
        f"chairside_{dataset}_{filters.start.isoformat()}_{filters.end.isoformat()}{mode}_schema-v{SCHEMA_VERSION}.csv"
    )


def to_frame(rows: list[dict[str, Any]], columns: Sequence[Column], tz: ZoneInfo | None = None) -> pd.DataFrame:
    """Rows as a DataFrame with nullable dtypes matching the schema (pandas 3: str, Int64, Float64, boolean).

    Times are in their rows' zone; a pandas column holds one zone, so when the rows span several
    sites' zones the times are given as the file writes them (ISO 8601 text with each row's offset).
    """
    data: dict[str, pd.Series] = {}
    zones = {v.tzinfo for col in columns if col.type == "datetime" for r in rows if (v := r.get(col.name)) is not None}
    zone = next(iter(zones)) if len(zones) == 1 else tz
    as_text = len(zones) > 1
    for col in columns:
        values = [r.get(col.name) for r in rows]
        if col.type == "integer":
            series = pd.Series(values, dtype="Int64")
        elif col.type == "number":
            series = pd.Series(values, dtype="Float64")
        elif col.type == "boolean":
            series = pd.Series(values, dtype="boolean")
        elif col.type == "datetime" and as_text:
            series = pd.Series([None if v is None else format_cell(v) for v in values], dtype="str")
        elif col.type == "datetime":
            series = pd.to_datetime(pd.Series(values, dtype=object), utc=True).astype("datetime64[us, UTC]")
            if zone is not None:
                series = series.dt.tz_convert(zone)
        elif col.type == "date":
            series = pd.Series(values, dtype=object)
        else:
            series = pd.Series(values, dtype="str")
        data[col.name] = series
    return pd.DataFrame(data, index=pd.RangeIndex(len(rows)))


# Request checks and plumbing ------------------------------------------------------------------------


def _check_request(
    dataset: str,
    actor_role: str | None,
    deidentify: bool,
    secret: bytes | str | None,
    filters: ExportFilters | None,
) -> bytes | None:
    if dataset not in DATASETS:
        raise ValidationError({"dataset": f"Unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}."})
    if actor_role not in EXPORTS:  # identified or not, a quality export is for quality and admin staff
        raise PermissionDenied("Exports are for quality and admin staff only.")
    if dataset == "audit" and actor_role not in AUDIT_ROLES:
        raise PermissionDenied("The audit trail export is for quality and admin staff only.")
    if filters is not None and filters.pseudonymise_site and not deidentify:
        raise ValidationError(
            {"pseudonymise_site": "A pseudonymous site code is for de-identified exports: turn de-identify on."}
        )
    if filters is not None:
        check_filters(dataset, filters)
    return deid.resolve_secret(secret) if deidentify else None


def _check_sites(db: Database, filters: ExportFilters, held_sites: frozenset[int] | None) -> None:
    """Refuse a site the person does not hold (or an unknown one) before anything is streamed."""
    if filters.site_ids is None and held_sites is None:
        return
    with db.engine.connect() as conn:
        chosen_sites(read_sites(conn), filters.site_ids, held_sites)


@contextmanager
def _snapshot(db: Database) -> Iterator[Connection]:
    """One read-only transaction for the whole export, so every chunk sees the same data."""
    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            yield conn


def _rows(
    db: Database,
    dataset: str,
    filters: ExportFilters,
    secret: bytes | None,
    held_sites: frozenset[int] | None,
    chunk_rows: int,
) -> Iterator[dict[str, Any]]:
    with _snapshot(db) as conn:
        ctx = load_context(conn, dataset, secret, filters, held_sites)
        with closing(_chunks_on(conn, dataset, filters, ctx, chunk_rows)) as chunks:
            for chunk in chunks:
                yield from chunk


def _chunks_on(conn: Connection, dataset: str, filters: ExportFilters, ctx: ExportContext, chunk_rows: int) -> Chunks:
    """Output rows of the chosen mode, chunk by chunk."""
    with closing(_records_on(conn, dataset, filters, ctx, chunk_rows)) as chunks:
        for records in chunks:
            yield [shape(record, ctx) for record in records]


def _write_by_rows(
    conn: Connection,
    dataset: str,
    filters: ExportFilters,
    ctx: ExportContext,
    sink: CsvSink,
    chunk_rows: int,
    progress: Callable[[int], None] | None,
) -> int:
    """The per-row path: records built and shaped in Python, each cell formatted there (datasets without a plan)."""
    written = 0
    cells = cell_rows(ctx, [cell_formatter(c.type) for c in ctx.columns])
    with closing(_records_on(conn, dataset, filters, ctx, chunk_rows)) as chunks:
        for chunk in chunks:
            sink.write_rows(map(cells, chunk))
            written += len(chunk)
            if progress is not None:
                progress(written)
    return written


def _sql_plan(conn: Connection, dataset: str, filters: ExportFilters, ctx: ExportContext) -> sql_cells.Plan | None:
    """This export's cells as SQL (None: the dataset or a column has none). On PostgreSQL pseudonyms are keyed
    first: the export's ids (one DISTINCT over the main query, in the snapshot) are keyed in Python and the
    keys passed in the statement."""
    ids: dict[str, Sequence[int]] = {}
    sources = sql_cells.pseudonym_sources(dataset, ctx)
    if sources and conn.dialect.name == "postgresql":  # SQLite keys them in a function as the rows come
        scope = _scope(ctx)
        base = QUERIES[dataset](filters, *scope.envelope, scope).order_by(None)
        query: Any = base.with_only_columns(*(literal_column(sql) for sql in sources.values())).distinct()
        seen: list[set[int]] = [set() for _ in sources]
        for row in conn.execute(query):
            for found, value in zip(seen, row, strict=True):
                if value is not None:
                    found.add(value)
        ids = {name: sorted(found) for name, found in zip(sources, seen, strict=True)}
    return sql_cells.plan(dataset, ctx, conn.dialect.name, ids)


def _write_by_sql(
    conn: Connection,
    dataset: str,
    filters: ExportFilters,
    ctx: ExportContext,
    plan: sql_cells.Plan,
    sink: CsvSink,
    chunk_rows: int,
    progress: Callable[[int], None] | None,
) -> int:
    """The database writes the rows: SQLite returns each row's CSV line, PostgreSQL streams COPY … TO STDOUT.

    Both run on the DBAPI connection of `conn`, so inside the export's snapshot; chunks of `chunk_rows`
    rows are written as they come, so memory stays flat.
    """
    scope = _scope(ctx)
    stmt = plan.statement(QUERIES[dataset](filters, *scope.envelope, scope))
    sql = _literal_sql(stmt, conn)
    raw: Any = conn.connection.driver_connection
    chunk = max(1, chunk_rows)
    written = 0
    if plan.dialect == "sqlite":
        for name, fn in plan.functions.items():
            raw.create_function(name, -1, fn, deterministic=True)
        cursor = raw.cursor()
        try:
            cursor.execute(sql)
            while rows := cursor.fetchmany(chunk):
                sink.write_lines(LINE_END.join(map(itemgetter(0), rows)) + LINE_END)
                written += len(rows)
                if progress is not None:
                    progress(written)
        finally:
            cursor.close()
            for name in plan.functions:  # the pooled connection keeps no export's functions (nor its secret)
                raw.create_function(name, -1, None)
        return written
    with raw.cursor() as cursor:
        # the cells' CASE trees make the planner's cost estimate large enough to JIT-compile them, which takes
        # longer than the export itself; for this transaction only (the export's snapshot)
        cursor.execute("SET LOCAL jit = off")
    with raw.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
        parts: list[Any] = []
        for row in copy:  # one message per row, ending in LF: csv.writer ends rows with CRLF
            if row[-1] != 10:
                raise ChairsideError("COPY sent a message that is not one whole row: export stopped.")
            parts.append(row[:-1])
            if len(parts) >= chunk:
                written += _write_copied(sink, parts)
                if progress is not None:
                    progress(written)
        if parts:
            written += _write_copied(sink, parts)
            if progress is not None:
                progress(written)
    return written


def _write_copied(sink: CsvSink, parts: list[Any]) -> int:
    count = len(parts)
    parts.append(b"")
    sink.write_encoded(b"\r\n".join(parts))
    parts.clear()
    return count


def _literal_sql(stmt: Select, conn: Connection) -> str:
    """The statement with its values inline (COPY takes no parameters), compiled without %-doubling."""
    dialect = cast(Any, type(conn.dialect))(paramstyle="named")
    return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _records_on(conn: Connection, dataset: str, filters: ExportFilters, ctx: ExportContext, chunk_rows: int) -> Chunks:
    """Stream the dataset's main query as identified records; summaries for each chunk come from small IN queries.

    Streaming is set on the statement rather than with `conn.execution_options(...)`:
    in SQLAlchemy 2 that call changes the connection in place, and the per-chunk
    lookups on the same connection (same snapshot) must not open cursors of their own.
    """
    scope = _scope(ctx)
    build = BUILDERS[dataset]
    stmt = QUERIES[dataset](filters, *scope.envelope, scope).execution_options(
        stream_results=True, yield_per=max(1, chunk_rows)
    )
    result = conn.execute(stmt)
    try:
        for part in result.partitions():
            yield build(conn, part, ctx)
    finally:
        result.close()


def _scope(ctx: ExportContext) -> Scope:
    assert ctx.scope is not None, "load_context(..., filters) sets the scope"
    return ctx.scope


def _count_query(dataset: str, filters: ExportFilters, ctx: ExportContext) -> Select:
    scope = _scope(ctx)
    return count_query(dataset, filters, *scope.envelope, scope)
