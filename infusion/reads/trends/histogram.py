"""Durations from a histogram (`trend_duration`), so the Trends durations cost the same at any history size.

Each completed session adds its infusion minutes and its chair minutes to a 5-minute bin of its site,
site-local month, therapy, location and infusion number (1, 2, 3, 4 = 4th onwards) and whether it had a
reaction (kept in the key; the period's read sums it away: time lost reads the count rollup instead). A period reads the
months it covers whole from `trend_duration` and the days of the months it covers in part from
`trend_session` (the same bins, grouped in SQL), so the answer is the same as a histogram of the period's
sessions, whatever day the period starts or ends.

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
from collections.abc import Iterable, Sequence
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
    Select,
    Table,
    bindparam,
    case,
    cast,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy import Date as SqlDate
from sqlalchemy import Integer as SqlInteger

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
KEY = ("site_id", "month", "therapy_id", "at_home", "reacted", "number", "kind", "bin")
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
            row["reacted"],
            number,
            kind,
            k,
        )
        out.append((key, {"n": 1, "edge": edge, "seconds": seconds}))
    return out


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
                t.reacted.label("reacted"),
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
        keys = (c.site_id, month, c.therapy_id, c.at_home, c.reacted, c.number, c.kind, c.bin)
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
        conds.append(c.site_id.in_(select(Clinic.id)))
    return conds


def period_bins(conn: Connection, f: TrendFilters) -> np.ndarray:
    """(therapy_id, number, kind, bin, n, edge, seconds) of the period's completed sessions, as one int64
    array (a row per bin; the columns `THERAPY` … `SECONDS`): with or without a reaction summed in SQL (the
    durations tell them apart nowhere; time lost reads the count rollup), a thousand or two bins for five
    years of a network, read with one fetch, not a Python tuple and dict entry per bin.

    Whole months from trend_duration_year and trend_duration as `signed_calendar` splits them; the days
    before the first and after the last whole month from trend_session (at most two part months, through
    its day index), or their whole month less the days left out (`signed_days`). The statement is built once per shape (`_period_statement`): building and keying a
    union of this size cost about as much as running it."""
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
    flat = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=7 * len(rows))  # never NULL
    return flat.reshape(-1, 7)


@cache
def _period_statement(
    dialect: str, pieces: tuple[tuple[bool, int], ...], edges: tuple[int, ...], shape: Shape
) -> Select[Any]:
    """`period_bins`' statement for one shape, with its dates and id lists as bound parameters."""

    parts: list[Select[Any]] = []
    for i, (yearly, sign) in enumerate(pieces):
        h = (THY if yearly else TH).c
        counts = (h.n, h.edge, h.seconds) if sign > 0 else (-h.n, -h.edge, -h.seconds)
        parts.append(
            select(
                h.therapy_id,
                h.number,
                h.kind,
                h.bin,
                counts[0].label("n"),
                counts[1].label("edge"),
                counts[2].label("seconds"),
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
        if sign < 0:
            d = days.subquery(f"left_out_{i}").c
            days = select(d.therapy_id, d.number, d.kind, d.bin, -d.n, -d.edge, -d.seconds)
        parts.append(days)
    u = union_all(*parts).subquery("period")
    c = u.c
    keys = (c.therapy_id, c.number, c.kind, c.bin)
    n = func.sum(c.n)
    sums = (cast(func.sum(x), BigInteger) for x in (c.n, c.edge, c.seconds))  # PostgreSQL: numeric, not int
    # a bin a year had only in the months taken away sums to nothing: left out, as if never read
    return select(*keys, *sums).group_by(*keys).having(n != 0)


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
