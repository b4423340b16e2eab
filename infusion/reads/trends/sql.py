"""Dialect-specific SQL constructs, so the metric queries read the same on SQLite and PostgreSQL.

Month buckets (`month_bucket`) are exact in the clinic time zone on both
databases: PostgreSQL uses `date_trunc('month', t AT TIME ZONE tz)`; SQLite has
no time-zone database, so the UTC instants of each local month start in the
filtered period are computed with zoneinfo and compiled into a CASE; outside
that range it falls back to a fixed offset (the zone's offset at the range
start), which can misplace up to an hour around a month boundary.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Float, String, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from db.types import UTCDateTime


def _month_start(d: date) -> date:
    return d.replace(day=1)


def _next_month(d: date) -> date:
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1)


class month_bucket(FunctionElement[date]):  # noqa: N801 (SQL-function style name)
    """First day of the clinic-local month of a UTC time stamp, as a DATE.

    `between=(lo, hi)` (aware UTC) lets SQLite be exact inside that range; see
    the module docstring. Arguments: column, tz, fallback offset, then
    alternating month-start instants and month labels, then the last month end.
    """

    type = Date()
    name = "month_bucket"
    inherit_cache = True

    def __init__(self, column: Any, tz: str, between: tuple[datetime, datetime] | None = None) -> None:
        zone = ZoneInfo(tz)  # refuses an unknown zone before any SQL is built
        at = between[0] if between else datetime.now(UTC)
        offset = int((at.astimezone(zone).utcoffset() or timedelta(0)).total_seconds() // 60)
        args: list[Any] = [column, literal(tz, String()), literal(f"{offset:+d} minutes", String())]
        if between:
            lo, hi = between
            month = _month_start(lo.astimezone(zone).date())
            last = (hi - timedelta(microseconds=1)).astimezone(zone).date()
            while True:
                args.append(literal(datetime.combine(month, time.min, tzinfo=zone).astimezone(UTC), UTCDateTime()))
                if month > last:
                    break
                args.append(literal(month.isoformat(), String()))
                month = _next_month(month)
        super().__init__(*args)


@compiles(month_bucket, "postgresql")
def _month_bucket_pg(element: month_bucket, compiler: Any, **kw: Any) -> str:
    column, tz = list(element.clauses)[:2]
    return (
        f"CAST(date_trunc('month', {compiler.process(column, **kw)} AT TIME ZONE {compiler.process(tz, **kw)}) AS DATE)"
    )


@compiles(month_bucket, "sqlite")
def _month_bucket_sqlite(element: month_bucket, compiler: Any, **kw: Any) -> str:
    args = list(element.clauses)
    column, offset, rest = args[0], args[2], args[3:]
    col = compiler.process(column, **kw)
    fallback = f"strftime('%Y-%m-01', {col}, {compiler.process(offset, **kw)})"
    if not rest:
        return fallback
    edges, labels = rest[0::2], rest[1::2]
    parts = [f"WHEN {col} < {compiler.process(edges[0], **kw)} THEN {fallback}"]
    for label, upper in zip(labels, edges[1:]):
        parts.append(f"WHEN {col} < {compiler.process(upper, **kw)} THEN {compiler.process(label, **kw)}")
    return f"(CASE {' '.join(parts)} ELSE {fallback} END)"


class minutes_between(FunctionElement[float]):  # noqa: N801
    """Minutes from `earlier` to `later` (negative if reversed), as a float."""

    type = Float()
    name = "minutes_between"
    inherit_cache = True


@compiles(minutes_between)
def _minutes_between_default(element: minutes_between, compiler: Any, **kw: Any) -> str:
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"(CAST(EXTRACT(EPOCH FROM ({b} - {a})) AS DOUBLE PRECISION) / 60.0)"


def _has_unixepoch(compiler: Any) -> bool:
    """unixepoch() (SQLite ≥ 3.38) parses a stored time about twice as fast as julianday()
    and gives whole seconds, so differences come out exact; older SQLite gets julianday()."""
    version = getattr(getattr(compiler.dialect, "dbapi", None), "sqlite_version_info", (0,))
    return tuple(version) >= (3, 38)


@compiles(minutes_between, "sqlite")
def _minutes_between_sqlite(element: minutes_between, compiler: Any, **kw: Any) -> str:
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    if _has_unixepoch(compiler):
        return f"((unixepoch({b}) - unixepoch({a})) / 60.0)"
    # julianday() is a double of ~2.46e6 days (about 40 µs resolution): round off the noise.
    return f"ROUND((julianday({b}) - julianday({a})) * 1440.0, 4)"


class epoch_seconds(FunctionElement[float]):  # noqa: N801
    """Seconds since 1970-01-01 UTC: a plain number is far cheaper to fetch than a time stamp."""

    type = Float()
    name = "epoch_seconds"
    inherit_cache = True


@compiles(epoch_seconds)
def _epoch_default(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(list(element.clauses)[0], **kw)}) AS DOUBLE PRECISION)"


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    column = compiler.process(list(element.clauses)[0], **kw)
    if _has_unixepoch(compiler):
        return f"unixepoch({column})"
    return f"ROUND((julianday({column}) - 2440587.5) * 86400.0, 3)"
