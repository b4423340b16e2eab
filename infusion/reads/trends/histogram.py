"""Durations from a histogram (`trend_duration_bins`), so the Trends durations cost the same at any history size.

Each completed session adds its infusion minutes and its chair minutes to a 5-minute bin of its site,
site-local month, therapy, location and infusion number (1, 2, 3, 4 = 4th onwards). A key's bins are one
row (`pack`: little-endian int64 n, edge, seconds per bin from the row's first bin `lo`), kept by
read-modify-write under the row's lock (`apply_deltas`). A period reads the months it covers whole from
`trend_duration_bins(_year)` and the days of the months it covers in part from `trend_session` (the same
bins, grouped in SQL), so the answer is the same as a histogram of the period's sessions, whatever day the
period starts or ends.

What it gives, and how close (docs/architecture.md, "Trend summaries"):

- counts, and counts longer or shorter than a threshold on a 5-minute mark: exact (`edge` holds the values
  exactly on a bin's lower edge, so "longer than 255 min" leaves out a session of exactly 255 min);
- the mean: exact to one second (`seconds` sums whole seconds);
- quartiles, median, minimum and maximum: within one bin, 5 minutes, of the exact value (pandas' linear
  interpolation between order statistics; inside a bin the values are taken as evenly spread).

A threshold off a 5-minute mark, a label rule that tells infusion numbers above 4 apart, or a chair or
nurse filter (not in the histogram's key) is answered from `trend_session` rows instead
(`summarised._duration_summary_scan`).
"""

from __future__ import annotations

import math
from calendar import monthrange
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache, cached_property
from itertools import chain
from typing import Any

import numpy as np
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    LargeBinary,
    Select,
    Table,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy import Date as SqlDate
from sqlalchemy import Integer as SqlInteger
from sqlalchemy.dialects import postgresql, sqlite

from db.models import Clinic, TrendDuration, TrendSession, trend_duration_year
from infusion.clock import utcnow
from infusion.reads.trends.filters import TrendFilters

BIN_MINUTES = 5
#: infusion numbers 4, 5, … share one key (the label rules of the catalog tell apart at most 1, 2, 3+)
NUMBER_CAP = 4
KINDS = ("infusion_minutes", "chair_minutes")

TH: Table = TrendDuration.__table__  # type: ignore[assignment]
THY: Table = trend_duration_year
TS: Table = TrendSession.__table__  # type: ignore[assignment]
#: one bin's key (`contributions`, `compare`); a stored row holds every bin of `ROW_KEY`
KEY = ("site_id", "month", "therapy_id", "at_home", "number", "kind", "bin")
ROW_KEY = KEY[:-1]
COUNTS = ("n", "edge", "seconds")
#: the columns of `period_bins`' array, by position
THERAPY, NUMBER, KIND, BIN, N, EDGE, SECONDS = range(7)


# --- one session's contribution (maintenance) ------------------------------------------------------------


def month_of(day: date) -> date:
    return day.replace(day=1)


def bin_of(minutes: float) -> tuple[int, int, int]:
    """(bin, 1 if exactly on the bin's lower edge else 0, whole seconds) of one duration."""
    k = math.floor(minutes / BIN_MINUTES)
    return k, int(minutes == k * BIN_MINUTES), math.floor(minutes * 60)


def contributions(row: dict[str, Any]) -> list[tuple[tuple[Any, ...], dict[str, int]]]:
    """The histogram keys and counts one trend_session row adds (nothing unless completed)."""
    if not row["completed"]:
        return []
    out = []
    number = min(int(row["infusion_number"]), NUMBER_CAP)
    for kind, name in enumerate(KINDS):
        minutes = row[name]
        if minutes is None:
            continue
        k, edge, seconds = bin_of(float(minutes))
        key = (
            row["site_id"],
            month_of(row["local_day"]),
            row["therapy_id"],
            row["at_home"],
            number,
            kind,
            k,
        )
        out.append((key, {"n": 1, "edge": edge, "seconds": seconds}))
    return out


# --- one row per key: the bins packed (storage) -----------------------------------------------------------

#: a packed bin: little-endian int64 n, edge, seconds
PACKED = np.dtype("<i8")
WIDTH = len(COUNTS)

Bins3 = dict[int, tuple[int, int, int]]


def pack(bins: Bins3) -> tuple[int, bytes] | None:
    """(first bin, the bins from it to the last non-empty one as bytes), or None when every bin is empty."""
    kept = sorted(b for b, counts in bins.items() if any(counts))
    if not kept:
        return None
    lo = kept[0]
    a = np.zeros((kept[-1] - lo + 1, WIDTH), dtype=PACKED)
    for b in kept:
        a[b - lo] = bins[b]
    return lo, a.tobytes()


def unpack(lo: int, blob: bytes) -> Bins3:
    """A packed row's non-empty bins."""
    a = np.frombuffer(blob, dtype=PACKED).reshape(-1, WIDTH)
    return {lo + i: (int(r[0]), int(r[1]), int(r[2])) for i, r in enumerate(a.tolist()) if any(r)}


def by_row(bins: dict[tuple[Any, ...], dict[str, int]]) -> dict[tuple[Any, ...], Bins3]:
    """Bin-keyed counts (`KEY`) grouped per stored row (`ROW_KEY`)."""
    out: dict[tuple[Any, ...], Bins3] = {}
    for key, counts in bins.items():
        out.setdefault(key[:-1], {})[key[-1]] = (counts["n"], counts["edge"], counts["seconds"])
    return out


def _where(table: Table, row_key: tuple[Any, ...]) -> ColumnElement[bool]:
    return and_(*(table.c[k] == v for k, v in zip(ROW_KEY, row_key, strict=True)))


def apply_deltas(conn: Connection, table: Table, deltas: dict[tuple[Any, ...], dict[str, int]]) -> None:
    """Add bin-keyed deltas to their packed rows, in the caller's transaction: each row read under its lock
    (PostgreSQL `FOR UPDATE`; a SQLite writer holds the database), added to, written back, deleted when
    every bin is empty. Rows in key order, so two writers never wait on each other crosswise."""
    ins: Callable[..., Any] = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    for row_key, delta in sorted(by_row(deltas).items()):
        if not any(any(c) for c in delta.values()):
            continue
        found = _locked_or_inserted(conn, table, ins, row_key, delta)
        if found is None:
            continue
        where = _where(table, row_key)
        merged = unpack(found[0], found[1])
        for b, counts in delta.items():
            _add(merged, b, counts)
        packed = pack(merged)
        if packed is None:
            conn.execute(delete(table).where(where))
        else:
            conn.execute(update(table).where(where).values(lo=packed[0], bins=packed[1]))


def _locked_or_inserted(
    conn: Connection, table: Table, ins: Callable[..., Any], row_key: tuple[Any, ...], delta: Bins3
) -> tuple[int, bytes] | None:
    """The row's (lo, bins) under its lock, to add `delta` to; or None when there was no row and `delta`
    became it. Another transaction may make the row between the read and the INSERT (ON CONFLICT DO
    NOTHING then inserts nothing, and the row is read again), and a third may empty and delete it again
    before that read: so read and insert until one of them takes."""
    read = select(table.c.lo, table.c.bins).where(_where(table, row_key)).with_for_update()
    while True:
        found = conn.execute(read).first()
        if found is not None:
            return int(found[0]), bytes(found[1])
        packed = pack(delta)
        if packed is None:
            return None
        values = dict(zip(ROW_KEY, row_key, strict=True)) | {"lo": packed[0], "bins": packed[1]}
        made = ins(table).values(**values).on_conflict_do_nothing().returning(table.c.lo)
        if conn.execute(made).first() is not None:  # (rowcount is -1 here on psycopg)
            return None


def stored_bins(conn: Connection, table: Table) -> dict[tuple[Any, ...], dict[str, int]]:
    """Every non-empty bin of a packed table, bin-keyed (`KEY`), for `maintenance.compare`."""
    out: dict[tuple[Any, ...], dict[str, int]] = {}
    for r in conn.execute(select(table)).mappings():
        key = tuple(_as_date(r[k]) if k == "month" else r[k] for k in ROW_KEY)
        for b, (n, edge, seconds) in unpack(r["lo"], r["bins"]).items():
            out[(*key, b)] = {"n": n, "edge": edge, "seconds": seconds}
    return out


def write_rows(conn: Connection, table: Table, rows: dict[tuple[Any, ...], Bins3]) -> None:
    """Insert packed rows (`ROW_KEY` → bins) into an empty table: the rebuild."""
    values = []
    for row_key, bins in rows.items():
        packed = pack(bins)
        if packed is not None:
            values.append(dict(zip(ROW_KEY, row_key, strict=True)) | {"lo": packed[0], "bins": packed[1]})
    for i in range(0, len(values), 5_000):
        conn.execute(insert(table), values[i : i + 5_000])


def rebuild(conn: Connection) -> None:
    """Both packed tables from trend_session, in the caller's transaction (they are emptied first)."""
    months: dict[tuple[Any, ...], Bins3] = {}
    years: dict[tuple[Any, ...], Bins3] = {}
    for r in conn.execute(session_bins(conn.dialect.name, [], keyed=True)):
        key = tuple(r[: len(ROW_KEY)])
        month = _as_date(key[1])
        key = (key[0], month, *key[2:])
        counts = (int(r.n), int(r.edge), int(r.seconds))
        months.setdefault(key, {})[int(r.bin)] = counts
        _add(years.setdefault((key[0], date(month.year, 1, 1), *key[2:]), {}), int(r.bin), counts)
    for table, rows in ((TH, months), (THY, years)):
        conn.execute(delete(table))
        write_rows(conn, table, rows)


def _add(bins: Bins3, b: int, counts: tuple[int, int, int]) -> None:
    """Add (n, edge, seconds) to bin `b`."""
    old = bins.get(b, (0, 0, 0))
    bins[b] = (old[0] + counts[0], old[1] + counts[1], old[2] + counts[2])


def _as_date(value: Any) -> date:
    """A DATE as stored (SQLite may hand back text from an INSERT … SELECT or a GROUP BY) as a date."""
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


# --- the same bins in SQL, from trend_session (rebuild, partial months) ------------------------------------


def floor_int(x: ColumnElement[Any], dialect: str) -> ColumnElement[int]:
    """floor(x) as an integer on both engines (SQLite's CAST truncates toward zero, PostgreSQL's rounds)."""
    if dialect == "postgresql":
        return cast(func.floor(x), SqlInteger)
    truncated = cast(x, SqlInteger)
    return truncated - case((x < truncated, 1), else_=0)


def year_expr(day: ColumnElement[Any], dialect: str) -> ColumnElement[date]:
    """1 January of a DATE's year, on both engines."""
    if dialect == "postgresql":
        return cast(func.date_trunc("year", day), SqlDate)
    return func.date(day, "start of year")


def month_expr(day: ColumnElement[Any], dialect: str) -> ColumnElement[date]:
    """The first day of a DATE's month, on both engines."""
    if dialect == "postgresql":
        return cast(func.date_trunc("month", day), SqlDate)
    return func.date(day, "start of month")


def session_bins(dialect: str, conds: Iterable[ColumnElement[bool]], *, keyed: bool) -> Select[Any]:
    """Histogram rows from trend_session: grouped by the full key (`keyed`, for the rebuild) or by
    therapy × number × kind × bin (a period's days, as `period_bins` reads them)."""
    t = TS.c
    number = case((t.infusion_number >= NUMBER_CAP, NUMBER_CAP), else_=t.infusion_number)
    parts = []
    for kind, name in enumerate(KINDS):
        x = t[name]
        k = floor_int(x / float(BIN_MINUTES), dialect)
        parts.append(
            select(
                t.site_id.label("site_id"),
                t.local_day.label("local_day"),
                t.therapy_id.label("therapy_id"),
                t.at_home.label("at_home"),
                number.label("number"),
                literal(kind).label("kind"),
                k.label("bin"),
                case((x == k * BIN_MINUTES, 1), else_=0).label("edge"),
                floor_int(x * 60.0, dialect).label("seconds"),
            ).where(t.completed.is_(True), x.is_not(None), *conds)
        )
    u = union_all(*parts).subquery("bins")
    c = u.c
    sums = (func.count().label("n"), func.sum(c.edge).label("edge"), func.sum(c.seconds).label("seconds"))
    if keyed:
        month = month_expr(c.local_day, dialect).label("month")
        keys = (c.site_id, month, c.therapy_id, c.at_home, c.number, c.kind, c.bin)
        return select(*keys, *sums).group_by(*keys)
    short = (c.therapy_id, c.number, c.kind, c.bin)
    return select(*short, *sums).group_by(*short)


# --- reading a period ------------------------------------------------------------------------------------


def _full_months(start: date, end: date) -> tuple[date, date] | None:
    """(first, last) month wholly inside [start, end], or None."""
    first = start if start.day == 1 else _month_after(month_of(start))
    last = month_of(end) if end.day == monthrange(end.year, end.month)[1] else month_of(_day_before(month_of(end)))
    return (first, last) if first <= last else None


def split_period(start: date, end: date) -> tuple[tuple[date, date] | None, list[tuple[date, date]]]:
    """(the whole months (first, last) inside [start, end] or None, the part-month day ranges around them)."""
    months = _full_months(start, end)
    if months is None:
        return None, [(start, end)]
    first, last = months
    edges = []
    if start < first:
        edges.append((start, _day_before(first)))
    after = _month_after(last)
    if after <= end:
        edges.append((after, end))
    return months, edges


@dataclass(frozen=True)
class Piece:
    """A month range read from a rollup: `yearly` from the per-year table (`first`, `last` are 1 January),
    else from the per-month table; `sign` −1 takes it away (a year less its months outside the period)."""

    yearly: bool
    first: date
    last: date
    sign: int = 1


def signed_calendar(start: date, end: date) -> tuple[list[Piece], list[tuple[date, date]]]:
    """[start, end] as the fewest rollup rows: (signed pieces of whole months, the part-month day ranges).

    A calendar year inside the period is one per-year read. A year the period covers in part is its
    months, or, when the period covers more of it than it leaves out, the whole year less the months left
    out: the default "last 365 days" is then this year (its months still to come hold nothing) plus one
    month, not twelve. Counts and sums subtract exactly, so the answer is the same."""
    months, days = split_period(start, end)
    if months is None:
        return [], days
    m0, m1 = months
    pieces: list[Piece] = []
    for year in range(m0.year, m1.year + 1):
        first = max(m0, date(year, 1, 1))
        last = min(m1, date(year, 12, 1))
        inside = last.month - first.month + 1
        if inside == 12:
            if pieces and pieces[-1].yearly and pieces[-1].sign == 1 and pieces[-1].last.year == year - 1:
                pieces[-1] = Piece(True, pieces[-1].first, date(year, 1, 1))
            else:
                pieces.append(Piece(True, date(year, 1, 1), date(year, 1, 1)))
        elif inside > 12 - inside:
            pieces.append(Piece(True, date(year, 1, 1), date(year, 1, 1)))
            if first.month > 1:
                pieces.append(Piece(False, date(year, 1, 1), date(year, first.month - 1, 1), -1))
            if last.month < 12:
                pieces.append(Piece(False, date(year, last.month + 1, 1), date(year, 12, 1), -1))
        else:
            pieces.append(Piece(False, first, last))
    return pieces, days


def signed_days(days: list[tuple[date, date]], today: date) -> tuple[list[Piece], list[tuple[date, date, int]]]:
    """Part months read from the sessions (`signed_calendar`'s days) as the fewest session rows: a part
    month whose days left out are fewer than its days inside (counting no day after `today` as a cost: it
    holds no session yet) becomes its whole month from the rollup (+1) less the left-out days (−1); five
    years from 2 December read 1 December's sessions, not the other 30 days'. (month pieces, (lo, hi, sign))."""
    pieces: list[Piece] = []
    out: list[tuple[date, date, int]] = []
    for lo, hi in days:
        if (lo.year, lo.month) != (hi.year, hi.month):  # no whole month at all: the period's days as they are
            out.append((lo, hi, 1))
            continue
        first = month_of(lo)
        last = _day_before(_month_after(first))
        outside = [r for r in ((first, _day_before(lo)), (date.fromordinal(hi.toordinal() + 1), last)) if r[0] <= r[1]]
        left_out = sum(max(0, min(b, today).toordinal() - a.toordinal() + 1) for a, b in outside)
        if left_out < hi.toordinal() - lo.toordinal() + 1:
            pieces.append(Piece(False, first, first))
            out += [(a, b, -1) for a, b in outside]  # days to come too: an index seek finding nothing
        else:
            out.append((lo, hi, 1))
    return pieces, out


def year_key(key: tuple[Any, ...], position: int) -> tuple[Any, ...]:
    """A month-keyed rollup key with its month (at `position`) replaced by 1 January of its year."""
    month = key[position]
    return (*key[:position], date(month.year, 1, 1), *key[position + 1 :])


#: the part of a filter that changes a rollup statement's shape: (therapies named, location, infusion,
#: every site); the values are bound parameters (`filter_params`), so a statement is built once per shape
Shape = tuple[bool, str, str, bool]


def filter_shape(f: TrendFilters) -> Shape:
    return (bool(f.therapy_ids), f.location, f.infusion, f.site_ids is None)


def filter_params(f: TrendFilters) -> dict[str, Any]:
    """The values `key_filters`' parameters take."""
    return {"therapy_ids": list(f.therapy_ids), "site_ids": list(f.site_ids or ())}


def key_filters(shape: Shape, c: Any, number: Any, first: int, *, rollup: bool) -> list[ColumnElement[bool]]:
    """The conditions of the filters a summary can answer (therapy, location, infusion, site) on the
    columns `c`, as bound parameters `therapy_ids` and `site_ids`; `number` is its infusion column and
    `first` that column's value for a first infusion (1 for an infusion number, 0 for trend_daily's band).

    A `rollup` is keyed site first: with every site it names them (`site_id IN (every site)`), so the
    month range seeks through the key per site instead of scanning the whole history (SQLite at 100k
    sessions: 12 → 5 ms for a year of duration bins; the gap grows with the history)."""
    by_therapy, location, infusion, every = shape
    conds: list[ColumnElement[bool]] = []
    if by_therapy:
        conds.append(c.therapy_id.in_(bindparam("therapy_ids", expanding=True)))
    if location != "all":
        conds.append(c.at_home.is_(location == "home"))
    if infusion == "first":
        conds.append(number == first)
    elif infusion == "later":
        conds.append(number > first)
    if not every:
        conds.append(c.site_id.in_(bindparam("site_ids", expanding=True)))
    elif rollup:
        conds.append(c.site_id.in_(select(Clinic.__table__.c.id)))  # the table's column: a Core statement compiles
        # in ~60 % of the time of one that names a mapped class (the ORM's compile state)
    return conds


def period_bins(conn: Connection, f: TrendFilters) -> np.ndarray:
    """(therapy_id, number, kind, bin, n, edge, seconds) of the period's completed sessions, as one int64
    array (a row per bin, the columns `THERAPY` … `SECONDS`, bins with no session left out), read with one
    statement and one fetch.

    Whole months from trend_duration_bins_year and trend_duration_bins as `signed_calendar` splits them (a
    packed row per key: a year is ~200 rows); the days before the first and after the last whole month
    from trend_session (at most two part months, through its day index), or their whole month less the
    days left out (`signed_days`). The packed rows are unpacked and every bin summed in numpy. The
    statement is built once per shape (`_period_statement`)."""
    pieces, days = signed_calendar(f.start, f.end)
    more, edges = signed_days(days, utcnow().date() + timedelta(days=1))  # a day ahead: sites east of UTC
    pieces += more
    if not pieces and not edges:
        return np.zeros((0, 7), dtype=np.int64)
    shape = (
        conn.dialect.name,
        tuple((p.yearly, p.sign) for p in pieces),
        tuple(sign for _, _, sign in edges),
        filter_shape(f),
    )
    params = filter_params(f)
    for i, piece in enumerate(pieces):
        params[f"first_{i}"], params[f"last_{i}"] = piece.first, piece.last
    for i, (lo, hi, _) in enumerate(edges):
        params[f"lo_{i}"], params[f"hi_{i}"] = lo, hi
    rows = conn.execute(_period_statement(*shape), params).all()  # one fetch (iterating fetches row by row)
    return _summed_bins(_unpacked([r for r in rows if r[7] is not None]), [r[:7] for r in rows if r[7] is None])


def _unpacked(rows: Sequence[Any]) -> np.ndarray:
    """Packed rows (therapy, number, kind, lo, sign, 0, 0, bins) as bin rows, the sign applied: one
    `frombuffer` over every row's bytes, the keys repeated per bin."""
    if not rows:
        return np.zeros((0, 7), dtype=np.int64)
    keys = np.array([r[:5] for r in rows], dtype=np.int64)
    blobs = [bytes(r[7]) for r in rows]
    lengths = np.array([len(b) // (WIDTH * PACKED.itemsize) for b in blobs], dtype=np.int64)
    counts = np.frombuffer(b"".join(blobs), dtype=PACKED).reshape(-1, WIDTH).astype(np.int64)
    which = np.repeat(np.arange(len(rows)), lengths)
    offset = np.arange(len(which)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out = np.empty((len(which), 7), dtype=np.int64)
    out[:, THERAPY], out[:, NUMBER], out[:, KIND] = keys[which, 0], keys[which, 1], keys[which, 2]
    out[:, BIN] = keys[which, 3] + offset
    out[:, N:] = counts * keys[which, 4][:, None]
    return out


def _summed_bins(packed: np.ndarray, plain: Sequence[Any]) -> np.ndarray:
    """Both kinds of rows summed per (therapy, number, kind, bin); bins that sum to no session left out
    (a bin a year had only in the months taken away)."""
    flat = np.fromiter(chain.from_iterable(plain), dtype=np.int64, count=7 * len(plain)).reshape(-1, 7)
    a = np.concatenate([packed, flat]) if len(flat) else packed
    if not len(a):
        return a
    order = np.lexsort((a[:, BIN], a[:, KIND], a[:, NUMBER], a[:, THERAPY]))
    a = a[order]
    starts = np.flatnonzero(np.r_[True, (a[1:, :N] != a[:-1, :N]).any(axis=1)])
    out = a[starts].copy()
    out[:, N:] = np.add.reduceat(a[:, N:], starts, axis=0)
    return out[out[:, N] != 0]


@cache
def _period_statement(
    dialect: str, pieces: tuple[tuple[bool, int], ...], edges: tuple[int, ...], shape: Shape
) -> Select[Any]:
    """`period_bins`' statement for one shape, with its dates and id lists as bound parameters: the packed
    rows of the whole months (their sign in the `n` column) and the part months' bins, one UNION ALL."""

    parts: list[Select[Any]] = []
    zero = literal(0, SqlInteger)
    for i, (yearly, sign) in enumerate(pieces):
        h = (THY if yearly else TH).c
        parts.append(
            select(
                h.therapy_id,
                h.number,
                h.kind,
                h.lo.label("bin"),
                literal(sign, SqlInteger).label("n"),
                zero.label("edge"),
                zero.label("seconds"),
                h.bins.label("packed"),
            ).where(
                h.month >= bindparam(f"first_{i}"),
                h.month <= bindparam(f"last_{i}"),
                *key_filters(shape, h, h.number, 1, rollup=True),
            )
        )
    t = TS.c
    for i, sign in enumerate(edges):
        conds = [t.local_day >= bindparam(f"lo_{i}"), t.local_day <= bindparam(f"hi_{i}")]
        days = session_bins(dialect, [*conds, *key_filters(shape, t, t.infusion_number, 1, rollup=False)], keyed=False)
        d = days.subquery(f"days_{i}").c
        counts = (d.n, d.edge, d.seconds) if sign > 0 else (-d.n, -d.edge, -d.seconds)
        parts.append(
            select(
                d.therapy_id,
                d.number,
                d.kind,
                d.bin,
                *(cast(x, BigInteger) for x in counts),  # PostgreSQL: sums are numeric
                cast(null(), LargeBinary).label("packed"),
            )
        )
    return union_all(*parts) if len(parts) > 1 else parts[0]  # type: ignore[return-value]


def _day_before(day: date) -> date:
    return date.fromordinal(day.toordinal() - 1)


def _month_after(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


# --- statistics from bins --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bins:
    """One therapy × kind's histogram: bins ascending, with counts, edge counts and summed seconds."""

    bins: np.ndarray
    n: np.ndarray
    edge: np.ndarray
    seconds: int

    @property
    def total(self) -> int:
        return int(self.n.sum())

    @cached_property
    def _cumulative(self) -> np.ndarray:
        return np.cumsum(self.n)

    def value(self, rank: int) -> float:
        """The rank-th smallest value (0-based): on the lower edge for the edge values, else spread evenly
        inside the bin."""
        cum = self._cumulative
        i = int(np.searchsorted(cum, rank, side="right"))
        before = int(cum[i] - self.n[i])
        within = rank - before
        low = float(self.bins[i] * BIN_MINUTES)
        on_edge = int(self.edge[i])
        if within < on_edge:
            return low
        inside = int(self.n[i]) - on_edge
        return low + BIN_MINUTES * (within - on_edge + 0.5) / inside

    def quantile(self, q: float) -> float:
        """pandas' default (linear interpolation between the two order statistics around (n − 1) q)."""
        h = (self.total - 1) * q
        lo, hi = math.floor(h), math.ceil(h)
        a = self.value(lo)
        return a if hi == lo else a + (h - lo) * (self.value(hi) - a)

    def quantiles(self, qs: Sequence[float]) -> list[float]:
        """`quantile` of each of `qs` in one pass of numpy, the same arithmetic in the same order, so the
        same floats (a figure asks five per histogram: one call each cost ~1 ms of the duration summary)."""
        h = (self.total - 1) * np.asarray(qs, dtype=np.float64)
        lo, hi = np.floor(h), np.ceil(h)
        ranks = np.concatenate([lo, hi]).astype(np.int64)
        i = np.searchsorted(self._cumulative, ranks, side="right")
        n, on_edge = self.n[i], self.edge[i]
        within = ranks - (self._cumulative[i] - n)
        low = (self.bins[i] * BIN_MINUTES).astype(np.float64)
        inside = np.where(within < on_edge, 1, n - on_edge)  # (not used where the value is on the edge)
        values = np.where(within < on_edge, low, low + BIN_MINUTES * (within - on_edge + 0.5) / inside)
        a, b = values[: len(h)], values[len(h) :]
        return np.where(hi == lo, a, a + (h - lo) * (b - a)).tolist()

    def mean(self) -> float:
        return self.seconds / 60.0 / self.total

    def count_above(self, threshold: float) -> int:
        """Values > threshold, exact for a threshold on a bin edge."""
        k = threshold / BIN_MINUTES
        mask = self.bins >= k
        edge_at = self.edge[self.bins == k].sum() if float(k).is_integer() else 0
        return int(self.n[mask].sum() - edge_at)

    def count_below(self, threshold: float) -> int:
        """Values < threshold, exact for a threshold on a bin edge."""
        return int(self.n[self.bins < threshold / BIN_MINUTES].sum())


def on_bin_edge(minutes: float | None) -> bool:
    return minutes is None or float(minutes / BIN_MINUTES).is_integer()


def merged(rows: np.ndarray | Sequence[Sequence[int]]) -> Bins:
    """One Bins from rows of (bin, n, edge, seconds), the same bin summed (`period_bins(...)[:, BIN:]`)."""
    a = np.asarray(rows, dtype=np.int64).reshape(-1, 4)
    keys, inverse = np.unique(a[:, 0], return_inverse=True)
    sums = np.zeros((len(keys), 3), dtype=np.int64)
    np.add.at(sums, inverse.ravel(), a[:, 1:])
    return Bins(bins=keys, n=sums[:, 0], edge=sums[:, 1], seconds=int(sums[:, 2].sum()))
