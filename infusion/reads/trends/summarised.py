"""Every Trends figure read from the summaries (`trend_daily`, `trend_session`), not the raw rows.

Same columns, same numbers as the raw-row queries in the figure modules
(`reactions`, `pchart`, `durations`, `time_lost`, `utilisation`,
`completeness`, and `infusion.services.aftercare.delayed_reaction_rates`),
which stay as the reference the summary tests compare against
(`infusion.reads.trends.raw`). How the summaries are kept: `maintenance`. Over 400 lines
because it mirrors every figure module one to one, so a reader compares them side by side.

- Counts (rates, grades, infusion number, p-chart, delayed reactions,
  completeness counts) come from `trend_daily`: a few rows per clinic day.
  Nurse and chair are not in the rollup key, so with either filter the same
  sums come from `trend_session` rows of the period (grouped in SQL, same
  arithmetic).
- Duration summary: the 5-minute histogram (`histogram`); box plots: the narrow
  `trend_session` rows of the period. Time lost: the count rollup's sums of
  whole seconds per infusion band. Chair utilisation: the hour-of-week rollup
  (`chair_use`). The label windows are applied from the catalog at read time,
  so a catalog edit shows at once.
- Vitals overdue: `trend_session.gap_minutes` (the longest gap, kept when
  the session is written) against the therapy's interval; only sessions with
  a gap over the shortest allowed interval are read (index on the gap).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, ColumnElement, FromClause, bindparam, cast, func, literal, select, union_all
from sqlalchemy.orm import Session

from db.engine import Database
from db.models import ACTIVE_STATUSES, InfusionSession, Therapy, TrendDaily, TrendSession, trend_monthly
from infusion.clock import utcnow
from infusion.reads.trends import chair_use, histogram, maintenance
from infusion.reads.trends import completeness as raw_completeness
from infusion.reads.trends.catalog import _catalog, _label, _TherapyInfo
from infusion.reads.trends.completeness import (
    CompletenessReport,
    completeness_report,
)
from infusion.reads.trends.durations import DURATION_COLUMNS, DURATION_SUMMARY_COLUMNS
from infusion.reads.trends.filters import (
    TrendFilters,
    _each_site,
    _fetch,
    _frame,
    _site_names,
    _site_zones,
    utc_bounds,
)
from infusion.reads.trends.pchart import PCHART_COLUMNS
from infusion.reads.trends.reactions import (
    GRADE_RATE_COLUMNS,
    INFUSION_BUCKETS,
    INFUSION_NUMBER_RATE_COLUMNS,
    REACTION_RATE_COLUMNS,
    rates_per_100,
)
from infusion.reads.trends.shared import shared
from infusion.reads.trends.stats import p_chart
from infusion.reads.trends.time_lost import TIME_LOST_COLUMNS
from infusion.reads.trends.utilisation import Grid
from infusion.reads.trends.utilisation import chair_utilisation as _raw_utilisation

T = TrendSession.__table__
D = TrendDaily.__table__
M = trend_monthly
S = InfusionSession

DELAYED_RATE_COLUMNS = (
    "therapy_id",
    "therapy",
    "completed",
    "during_session",
    "within_24h_after",
    "rate_during_per_100",
    "rate_after_per_100",
)
_COUNTS = (
    "checked_in",
    "completed",
    "reacted",
    "grade_1",
    "grade_2",
    "grade_3",
    "grade_4",
    "grade_5",
    "reacted_during",
    "reacted_after",
    "iv_stop_applies",
    "iv_stop_missing",
    "pre_vitals_missing",
    "gap_checked",
    "infusion_n",
    "infusion_seconds",
    "chair_n",
    "chair_seconds",
    "reacted_infusion_n",
    "reacted_infusion_seconds",
    "reacted_chair_n",
    "reacted_chair_seconds",
)


def _session_where(f: TrendFilters, t: Any = T.c) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [t.local_day >= f.start, t.local_day <= f.end]
    if f.therapy_ids:
        conds.append(t.therapy_id.in_(f.therapy_ids))
    if f.chair_ids:
        conds.append(t.chair_id.in_(f.chair_ids))
    if f.location != "all":
        conds.append(t.at_home.is_(f.location == "home"))
    if f.infusion == "first":
        conds.append(t.infusion_number == 1)
    elif f.infusion == "later":
        conds.append(t.infusion_number > 1)
    if f.nurse_ids:
        conds.append(t.nurse_id.in_(f.nurse_ids))
    if f.site_ids is not None:
        conds.append(t.site_id.in_(f.site_ids))
    return conds


def _daily(f: TrendFilters, dialect: str) -> tuple[FromClause, dict[str, Any]]:
    """The rollup rows of the period, signed, and the parameters to read them with: whole months from
    trend_monthly (its `month` as `local_day`); a month covered in part as its month less the days left
    out when those are fewer (`histogram.signed_days`), else its days, from trend_daily (`_rollup_days`,
    one statement per shape). Sum them: every count is a sum. With a nurse or chair filter, the same sums
    from trend_session."""
    if not f.nurse_ids and not f.chair_ids:
        months, edges = histogram.split_period(f.start, f.end)
        more, days = histogram.signed_days(edges, utcnow().date() + timedelta(days=1))  # a day ahead, as the bins
        params = histogram.filter_params(f)
        if months is not None:
            params["first"], params["last"] = months
        for i, piece in enumerate(more):
            params[f"month_{i}"] = piece.first
        for i, (lo, hi, _) in enumerate(days):
            params[f"lo_{i}"], params[f"hi_{i}"] = lo, hi
        signs = tuple(sign for _, _, sign in days)
        return _rollup_days(signs, len(more), months is not None, histogram.filter_shape(f)), params
    t = T.c
    band = maintenance.band_sql(t.infusion_number)
    sub = (
        select(
            t.site_id.label("site_id"),
            t.local_day.label("local_day"),
            t.therapy_id.label("therapy_id"),
            band.label("band"),
            *maintenance.rollup_sums(t, dialect),
        )
        .where(*_session_where(f))
        .group_by(t.site_id, t.local_day, t.therapy_id, band)
        .subquery("daily")
    )
    return sub, {}


@cache
def _rollup_days(days: tuple[int, ...], months: int, whole: bool, shape: histogram.Shape) -> FromClause:
    """`_daily`'s union for one shape: trend_daily day ranges with their signs (`days`), `months` single
    months and the whole-month range (`whole`) from trend_monthly, with the dates and ids as bound
    parameters: built once (building and keying it cost more than reading it)."""

    def keyed(table: Any, day: Any, lo: Any, hi: Any, sign: int = 1) -> Any:
        c = table.c
        keys = (c.site_id, day.label("local_day"), c.therapy_id, c.at_home, c.band)
        conds = [day >= lo, day <= hi, *histogram.key_filters(shape, c, c.band, 0, rollup=True)]
        return select(*keys, *((c[n] if sign > 0 else -c[n]).label(n) for n in _COUNTS)).where(*conds)

    parts = [keyed(D, D.c.local_day, bindparam(f"lo_{i}"), bindparam(f"hi_{i}"), sign) for i, sign in enumerate(days)]
    parts += [keyed(M, M.c.month, bindparam(f"month_{i}"), bindparam(f"month_{i}")) for i in range(months)]
    if whole:
        parts.append(keyed(M, M.c.month, bindparam("first"), bindparam("last")))
    return union_all(*parts).subquery("daily")


def _period_bins(s: Session, f: TrendFilters) -> np.ndarray:
    return shared(("bins", f), lambda: histogram.period_bins(s.connection(), f))


class _Sums:
    """Σ of each rollup count over the period, one int64 row per therapy (and per `extra` key), in no set
    order, with each row's therapy label. Plain numpy, not a frame: building, filling and casting a
    16-column frame cost ~3 ms of a 5 ms rate figure, ten times the rollup read itself."""

    def __init__(self, columns: tuple[str, ...], values: np.ndarray, labels: np.ndarray) -> None:
        self.columns, self.values, self.labels = columns, values, labels

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[:, self.columns.index(name)]

    def __len__(self) -> int:
        return len(self.values)

    def only(self, keep: np.ndarray) -> _Sums:
        return _Sums(self.columns, self.values[keep], self.labels[keep])


def _per_therapy(s: Session, f: TrendFilters, *extra: str) -> _Sums:
    """Σ counts per therapy (and per `extra` key columns of the rollup) over the filtered period."""
    sums: _Sums = shared(("per_therapy", f, extra), lambda: _read_per_therapy(s, f, *extra))
    return sums


def _read_per_therapy(s: Session, f: TrendFilters, *extra: str) -> _Sums:
    src, params = _daily(f, s.connection().dialect.name)
    # the rollup union is built once per shape (`_rollup_days`), so its sum is too; a nurse or chair
    # filter's source is built per call and summed afresh (kept, each would stay in the cache)
    q = _built_sums(src, extra) if not (f.nurse_ids or f.chair_ids) else _sums_of(src, extra)
    columns = ("therapy_id", *extra, *_COUNTS)
    rows = _fetch(s, q, params)
    values = [[0 if v is None else v for v in row[:-1]] for row in rows]
    labels = [str(row[0]) if row[-1] is None else row[-1] for row in rows]  # a therapy not in the catalog
    sums = _Sums(
        columns,
        np.array(values, dtype=np.int64).reshape(len(rows), len(columns)),
        np.array(labels, dtype=object),
    )
    sums.values.flags.writeable = sums.labels.flags.writeable = False  # shared by the page's figures
    return sums


def _sums_of(src: FromClause, extra: tuple[str, ...]) -> Any:
    """Σ of every count of `src` per therapy (and `extra` keys), and the therapy's label (`catalog._label`:
    the brand, else the name) read with them: one round trip less than reading the catalog for it."""
    th = Therapy.__table__.c
    label = func.coalesce(func.nullif(th.brand, ""), th.name)
    keys = [src.c.therapy_id, *(src.c[e] for e in extra)]
    return (
        select(*keys, *(cast(func.sum(src.c[c]), BigInteger) for c in _COUNTS), label)
        .select_from(src.outerjoin(Therapy.__table__, th.id == src.c.therapy_id))
        .group_by(*keys, th.brand, th.name)
    )


#: `_sums_of` a rollup union built once per shape: built once too (a few tenths of a millisecond a read)
_built_sums = cache(_sums_of)


def _typed(columns: tuple[str, ...], data: dict[str, Any], dtypes: dict[str, str] | None = None) -> pd.DataFrame:
    """One frame from finished columns, each cast once (a Series per column costs 3× a numpy array): text
    for 'therapy', 'site' and 'infusion_bucket'; else `dtypes[name]`, else float64 for rates and intervals
    and int64 for ids, grades and counts (the raw figures' dtypes)."""

    def column(name: str) -> Any:
        if name in ("therapy", "site", "infusion_bucket"):
            return pd.Series(data[name], dtype="str")
        kind = (dtypes or {}).get(name) or ("float64" if name.startswith(("rate_", "ci_")) else "int64")
        return np.asarray(data[name], dtype=kind)

    return pd.DataFrame({c: column(c) for c in columns}, columns=list(columns))


def _rates(
    columns: tuple[str, ...], data: dict[str, Any], x: np.ndarray, n: np.ndarray, order: list[int]
) -> pd.DataFrame:
    """`data` with the rate per 100 of x/n and its Wilson 95 % interval (`reactions.rates_per_100`), every
    column taken in `order`."""
    rate, low, high = rates_per_100(x, n)
    data = {**data, "rate_per_100": rate, "ci_low_per_100": low, "ci_high_per_100": high}
    return _typed(columns, {c: [data[c][i] for i in order] for c in columns})


def reaction_rates(db: Database, f: TrendFilters, *, by_site: bool = False) -> pd.DataFrame:
    """reactions.reaction_rates from the rollup; `by_site`: per site × therapy, `site_id` and `site` first."""
    with db.reading(summaries=True) as s:
        sums = _per_therapy(s, f, *(("site_id",) if by_site else ()))
        names = _site_names(s) if by_site else {}
    sums = sums.only(sums["completed"] > 0)
    tids, n = sums["therapy_id"], sums["completed"]
    data: dict[str, Any] = {
        "therapy_id": tids.tolist(),
        "therapy": sums.labels.tolist(),
        "completed": n.tolist(),
        "with_reaction": sums["reacted"].tolist(),
    }
    columns: tuple[str, ...] = REACTION_RATE_COLUMNS
    if by_site:
        data["site_id"] = sums["site_id"].tolist()
        data["site"] = [names.get(site, str(site)) for site in data["site_id"]]
        columns = ("site_id", "site", *REACTION_RATE_COLUMNS)
        order = sorted(range(len(sums)), key=lambda i: (data["site"][i], data["therapy"][i]))
    else:
        order = sorted(range(len(sums)), key=lambda i: data["therapy"][i])
    return _rates(columns, data, sums["reacted"], n, order)


def reaction_rates_by_grade(db: Database, f: TrendFilters) -> pd.DataFrame:
    """reactions.reaction_rates_by_grade from the rollup."""
    with db.reading(summaries=True) as s:
        totals = _per_therapy(s, f)
    totals = totals.only(totals["completed"] > 0)
    label = dict(zip(totals["therapy_id"].tolist(), totals.labels.tolist(), strict=True))
    rows = [
        (tid, g, sessions, completed)
        for tid, completed, *grades in zip(
            totals["therapy_id"].tolist(),
            totals["completed"].tolist(),
            *(totals[f"grade_{g}"].tolist() for g in range(1, 6)),
            strict=True,
        )
        for g, sessions in enumerate(grades, start=1)
        if sessions > 0
    ]
    tids, grades, sessions, completed = (
        (np.array(c, dtype=np.int64) for c in zip(*rows, strict=True))
        if rows
        else (np.zeros(0, dtype=np.int64) for _ in range(4))
    )
    data = {
        "therapy_id": tids.tolist(),
        "therapy": [label[t] for t in tids.tolist()],
        "grade": grades.tolist(),
        "sessions": sessions.tolist(),
        "completed": completed.tolist(),
    }
    order = sorted(range(len(rows)), key=lambda i: (data["therapy"][i], data["grade"][i]))
    return _rates(GRADE_RATE_COLUMNS, data, sessions, completed, order)


def reaction_rates_by_infusion_number(db: Database, f: TrendFilters) -> pd.DataFrame:
    """reactions.reaction_rates_by_infusion_number from the rollup."""
    with db.reading(summaries=True) as s:
        sums = _per_therapy(s, f, "band")
    sums = sums.only(sums["completed"] > 0)
    tids, bands, n = sums["therapy_id"], sums["band"].tolist(), sums["completed"]
    data = {
        "therapy_id": tids.tolist(),
        "therapy": sums.labels.tolist(),
        "infusion_bucket": [INFUSION_BUCKETS[b] for b in bands],
        "completed": n.tolist(),
        "with_reaction": sums["reacted"].tolist(),
    }
    order = sorted(range(len(sums)), key=lambda i: (data["therapy"][i], bands[i]))
    return _rates(INFUSION_NUMBER_RATE_COLUMNS, data, sums["reacted"], n, order)


def monthly_reaction_pchart(db: Database, f: TrendFilters, therapy_id: int | None = None) -> pd.DataFrame:
    """pchart.monthly_reaction_pchart from the rollup (clinic-local days summed into months)."""
    with db.reading(summaries=True) as s:
        src, params = _daily(f, s.connection().dialect.name)
        conds = [] if therapy_id is None else [src.c.therapy_id == therapy_id]
        q = (
            select(src.c.local_day, func.sum(src.c.completed), func.sum(src.c.reacted))
            .where(*conds)
            .group_by(src.c.local_day)
        )
        rows = _fetch(s, q, params)
    per_month: dict[date, list[int]] = {}
    for day, n, x in rows:
        day = day if isinstance(day, date) else date.fromisoformat(str(day)[:10])
        month = day.replace(day=1)
        acc = per_month.setdefault(month, [0, 0])
        acc[0] += int(n or 0)
        acc[1] += int(x or 0)
    months = sorted(m for m, (n, _) in per_month.items() if n > 0)
    chart = p_chart([per_month[m][1] for m in months], [per_month[m][0] for m in months])
    chart.insert(0, "month", pd.Series(months, dtype="object"))
    return chart[list(PCHART_COLUMNS)]


def delayed_reaction_rates(db: Database, f: TrendFilters) -> pd.DataFrame:
    """infusion.services.aftercare.delayed_reaction_rates from the rollup."""
    with db.reading(summaries=True) as s:
        sums = _per_therapy(s, f)
    sums = sums.only(sums["completed"] > 0)
    n = sums["completed"].astype(float)
    tids = sums["therapy_id"]
    data = {
        "therapy_id": tids.tolist(),
        "therapy": sums.labels.tolist(),
        "completed": sums["completed"].tolist(),
        "during_session": sums["reacted_during"].tolist(),
        "within_24h_after": sums["reacted_after"].tolist(),
        "rate_during_per_100": (100 * sums["reacted_during"] / n).tolist(),
        "rate_after_per_100": (100 * sums["reacted_after"] / n).tolist(),
    }
    order = sorted(range(len(sums)), key=lambda i: data["therapy"][i])
    return _typed(DELAYED_RATE_COLUMNS, {c: [data[c][i] for i in order] for c in DELAYED_RATE_COLUMNS})


# --- per-session summaries: durations, time lost, utilisation --------------------------------------------


def _window(info: _TherapyInfo | None, number: int) -> tuple[float | None, float | None, float | None]:
    """(min, max, planned) of the first catalog rule matching the infusion number (catalog._window_expr)."""
    for rule in info.duration_windows if info else ():
        lo, hi = rule.get("from", 1), rule.get("to")
        if number >= lo and (hi is None or number <= hi):
            low, high = rule.get("min_minutes"), rule.get("max_minutes")
            planned = high if high is not None else low
            return (
                None if low is None else float(low),
                None if high is None else float(high),
                None if planned is None else float(planned),
            )
    return None, None, None


def _windows(frame: pd.DataFrame, catalog: dict[int, _TherapyInfo]) -> pd.DataFrame:
    pairs = {(t, n): _window(catalog.get(t), n) for t, n in set(zip(frame["therapy_id"], frame["infusion_number"]))}
    values = [pairs[(t, n)] for t, n in zip(frame["therapy_id"], frame["infusion_number"])]
    for i, name in enumerate(("label_min_minutes", "label_max_minutes", "planned_minutes")):
        frame[name] = pd.Series([np.nan if v[i] is None else v[i] for v in values], index=frame.index, dtype="float64")
    return frame


def _completed_minutes(s: Session, f: TrendFilters) -> pd.DataFrame:
    t = T.c
    q = select(t.therapy_id, t.infusion_number, t.infusion_minutes, t.chair_minutes).where(
        t.completed.is_(True), *_session_where(f)
    )
    return _frame(
        _fetch(s, q),
        ("therapy_id", "infusion_number", "infusion_minutes", "chair_minutes"),
        {"therapy_id": "int64", "infusion_number": "int64", "infusion_minutes": "float64", "chair_minutes": "float64"},
    )


def session_durations(db: Database, f: TrendFilters, *, by_site: bool = False) -> pd.DataFrame:
    """durations.session_durations from trend_session (exact values; the catalog windows at read time).
    `by_site`: each site's sessions, `site_id` and `site` first."""
    if by_site:
        return _each_site(db, f, lambda one: session_durations(db, one))
    with db.reading() as s:
        catalog = _catalog(s)
        frame = _completed_minutes(s, f)
    frame = _label(_windows(frame, catalog), catalog)
    return frame[list(DURATION_COLUMNS)].sort_values(["therapy", "infusion_number"], ignore_index=True)


def duration_summary(
    db: Database, f: TrendFilters, tolerance_minutes: float = 15, *, by_site: bool = False
) -> pd.DataFrame:
    """durations.duration_summary from the duration histogram (`histogram`): counts over and under the
    window exact, the mean to a second, quartiles, minimum and maximum within 5 minutes. A chair or nurse
    filter, a threshold off a 5-minute mark or a label rule beyond infusion 3 reads trend_session rows
    instead (exact). `by_site`: one row per site × therapy, `site_id` and `site` first."""
    if by_site:
        return _each_site(db, f, lambda one: duration_summary(db, one, tolerance_minutes))
    if f.nurse_ids or f.chair_ids:
        return _duration_summary_scan(db, f, tolerance_minutes)
    with db.reading(summaries=True) as s:
        catalog = _catalog(s)
        if not _histogram_answers(catalog, tolerance_minutes):
            return _duration_summary_scan(db, f, tolerance_minutes)
        rows = _period_bins(s, f)
    over, under = _window_breaches(rows, catalog, tolerance_minutes)
    records: list[dict[str, Any]] = []
    for (tid, kind), bins in _therapy_histograms(rows).items():
        if kind == 0 or not records or records[-1]["therapy_id"] != tid:
            records.append({"therapy_id": tid, "sessions": 0, "over_window": over.get(tid, 0)})
            records[-1] |= {
                "under_window": under.get(tid, 0),
                "therapy": catalog[tid].label if tid in catalog else str(tid),
            }
        record = records[-1]
        name = ("infusion_minutes", "chair_minutes")[kind]
        record["sessions"] = max(record["sessions"], bins.total)
        record[f"{name}_mean"] = bins.mean()
        for stat, value in zip(_QUANTILE_STATS, bins.quantiles(_QUANTILES), strict=True):
            record[f"{name}_{stat}"] = value
    for record in records:  # a therapy with only one kind of minutes: the other's statistics are missing
        for name in ("infusion_minutes", "chair_minutes"):
            for stat in ("mean", "min", "q1", "median", "q3", "max"):
                record.setdefault(f"{name}_{stat}", np.nan)
    records.sort(key=lambda r: r["therapy"])  # sorted here: a frame's sort and casts cost more than the stats
    counts = ("therapy_id", "sessions", "over_window", "under_window")
    floats = {c: "float64" for c in DURATION_SUMMARY_COLUMNS if c not in counts}
    return _typed(DURATION_SUMMARY_COLUMNS, {c: [r[c] for r in records] for c in DURATION_SUMMARY_COLUMNS}, floats)


_QUANTILE_STATS = ("min", "q1", "median", "q3", "max")
_QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)


def _therapy_histograms(rows: np.ndarray) -> dict[tuple[int, int], histogram.Bins]:
    """One histogram per therapy × kind (0 infusion, 1 chair minutes) from `period_bins` rows, the infusion
    numbers summed, in therapy then kind order; histograms with no session are left out. One sort and one
    `reduceat` for all of them (a `merged` per therapy and kind cost ~3 ms of a 10 ms figure)."""
    H = histogram
    if not len(rows):
        return {}
    keys = rows[:, [H.THERAPY, H.KIND, H.BIN]]
    order = np.lexsort((keys[:, 2], keys[:, 1], keys[:, 0]))
    keys, counts = keys[order], rows[order][:, [H.N, H.EDGE, H.SECONDS]]
    starts = np.flatnonzero(np.r_[True, (keys[1:] != keys[:-1]).any(axis=1)])
    keys, counts = keys[starts], np.add.reduceat(counts, starts, axis=0)
    keep = counts[:, 0] != 0
    keys, counts = keys[keep], counts[keep]
    if not len(keys):
        return {}
    groups = np.flatnonzero(np.r_[True, (keys[1:, :2] != keys[:-1, :2]).any(axis=1)])
    out = {}
    for a, b in zip(groups.tolist(), [*groups[1:].tolist(), len(keys)], strict=True):
        n = counts[a:b, 0]
        if n.sum() > 0:
            seconds = int(counts[a:b, 2].sum())
            out[int(keys[a, 0]), int(keys[a, 1])] = H.Bins(bins=keys[a:b, 2], n=n, edge=counts[a:b, 1], seconds=seconds)
    return out


def _window_breaches(
    rows: np.ndarray, catalog: dict[int, _TherapyInfo], tolerance_minutes: float
) -> tuple[dict[int, int], dict[int, int]]:
    """Per therapy, the infusions longer than the label maximum + tolerance and shorter than the label
    minimum (less the tolerance where min = max), each against its own infusion number's rule: exact, as
    every threshold sits on a bin's lower edge (`_histogram_answers`)."""
    H = histogram
    infusion = rows[rows[:, H.KIND] == 0]
    if not len(infusion):
        return {}, {}
    pairs, which = np.unique(infusion[:, [H.THERAPY, H.NUMBER]], axis=0, return_inverse=True)
    high, low = np.empty(len(pairs)), np.empty(len(pairs))
    for j, (tid, number) in enumerate(pairs.tolist()):  # a rule per therapy × infusion number: a few dozen
        wmin, wmax, _ = _window(catalog.get(tid), number)
        high[j] = np.inf if wmax is None else (wmax + tolerance_minutes) / H.BIN_MINUTES
        low[j] = -np.inf if wmin is None else (wmin - tolerance_minutes if wmin == wmax else wmin) / H.BIN_MINUTES
    above, below = high[which.ravel()], low[which.ravel()]
    bins, n, edge = infusion[:, H.BIN], infusion[:, H.N], infusion[:, H.EDGE]
    # longer than T (on a bin edge k): every value from bin k up, less those exactly on k's lower edge
    longer = np.where(bins >= above, n, 0) - np.where(bins == above, edge, 0)
    shorter = np.where(bins < below, n, 0)
    therapies, per = np.unique(infusion[:, H.THERAPY], return_inverse=True)
    over, under = np.zeros(len(therapies), dtype=np.int64), np.zeros(len(therapies), dtype=np.int64)
    np.add.at(over, per.ravel(), longer)
    np.add.at(under, per.ravel(), shorter)
    ids = therapies.tolist()
    return dict(zip(ids, over.tolist(), strict=True)), dict(zip(ids, under.tolist(), strict=True))


def _histogram_answers(catalog: dict[int, _TherapyInfo], tolerance_minutes: float) -> bool:
    """True when no label rule tells apart infusion numbers the histogram keeps together (4th onwards) and
    every window threshold sits on a 5-minute mark."""
    for info in catalog.values():
        for rule in info.duration_windows:
            if rule.get("from", 1) > histogram.NUMBER_CAP or (rule.get("to") or 0) >= histogram.NUMBER_CAP:
                return False
            low, high = rule.get("min_minutes"), rule.get("max_minutes")
            for threshold in (
                None if high is None else high + tolerance_minutes,
                low,
                None if low is None else low - tolerance_minutes,
            ):
                if not histogram.on_bin_edge(threshold):
                    return False
    return True


def _duration_summary_scan(db: Database, f: TrendFilters, tolerance_minutes: float = 15) -> pd.DataFrame:
    """durations.duration_summary from the period's trend_session rows: exact quartiles (pandas' linear
    interpolation). For what the histogram cannot answer (`histogram`); its cost grows with the period."""
    with db.reading() as s:
        catalog = _catalog(s)
        per = _windows(_completed_minutes(s, f), catalog)
    wmin, wmax, inf = per["label_min_minutes"], per["label_max_minutes"], per["infusion_minutes"]
    floor = wmin.where(wmin != wmax, wmin - tolerance_minutes)
    per["over"] = (inf > wmax + tolerance_minutes).astype("int64")
    per["under"] = (inf < floor).astype("int64")
    g = per.groupby("therapy_id")
    frame = pd.DataFrame({"therapy_id": sorted(per["therapy_id"].unique())}).astype({"therapy_id": "int64"})
    frame["sessions"] = frame["therapy_id"].map(g.size()).astype("int64")
    for kind in ("infusion_minutes", "chair_minutes"):
        for stat, fn in (("mean", "mean"), ("min", "min"), ("max", "max")):
            frame[f"{kind}_{stat}"] = frame["therapy_id"].map(g[kind].agg(fn)).astype("float64")
        for q_value, name in ((0.25, "q1"), (0.5, "median"), (0.75, "q3")):
            frame[f"{kind}_{name}"] = frame["therapy_id"].map(g[kind].quantile(q_value)).astype("float64")
    frame["over_window"] = frame["therapy_id"].map(g["over"].sum()).astype("int64")
    frame["under_window"] = frame["therapy_id"].map(g["under"].sum()).astype("int64")
    frame = _label(frame, catalog)
    return frame[list(DURATION_SUMMARY_COLUMNS)].sort_values("therapy", ignore_index=True)


def reaction_time_lost(db: Database, f: TrendFilters, *, by_site: bool = False) -> pd.DataFrame:
    """time_lost.reaction_time_lost from the count rollup's time-lost sums (`maintenance.TIME_LOST_SUMS`: the
    means exact to a second), with any filter; from trend_session grouped by infusion number when a label
    rule tells apart infusion numbers the rollup's bands keep together (exact).
    `by_site`: one row per site × therapy × reaction, `site_id` and `site` first."""
    if by_site:
        return _each_site(db, f, lambda one: reaction_time_lost(db, one))
    with db.reading(summaries=True) as s:
        catalog = _catalog(s)
        if _bands_answer(catalog):
            return _time_lost_frame(_time_lost_from_sums(_per_therapy(s, f, "band"), catalog), catalog)
    return _time_lost_scan(db, f)


def _bands_answer(catalog: dict[int, _TherapyInfo]) -> bool:
    """True when every infusion number from the 3rd on meets the same label rules, as the rollup's band 2
    (3rd onwards) keeps them together: no rule starts after the 3rd or ends at or after it."""
    return all(
        rule.get("from", 1) <= 3 and (rule.get("to") is None or rule["to"] <= 2)
        for info in catalog.values()
        for rule in info.duration_windows
    )


def _time_lost_from_sums(sums: _Sums, catalog: dict[int, _TherapyInfo]) -> list[tuple[Any, ...]]:
    """The time-lost records from the rollup sums per therapy × band: per therapy × reaction, the completed
    sessions (whether or not their minutes are known, as the raw figure counts them), the mean infusion and
    planned minutes over the sessions with both (the band's label plan), and the mean chair minutes over
    those with chair minutes. Without a reaction is the total less the `reacted` sums."""
    names = ("infusion_n", "infusion_seconds", "chair_n", "chair_seconds")
    total = np.stack([sums["completed"], *(sums[n] for n in names)], axis=1)
    with_reaction = np.stack([sums["reacted"], *(sums[f"reacted_{n}"] for n in names)], axis=1)
    acc: dict[tuple[int, bool], list[float]] = {}
    for tid, band, *counts in zip(
        sums["therapy_id"].tolist(), sums["band"].tolist(), total, with_reaction, strict=True
    ):
        plan = _window(catalog.get(tid), band + 1)[2]
        for reacted, (done, inf_n, inf_s, chair_n, chair_s) in zip(
            (False, True), (counts[0] - counts[1], counts[1]), strict=True
        ):
            if not done:
                continue
            # sessions, chair n, chair s, Σ inf, Σ plan, both
            a = acc.setdefault((tid, reacted), [0, 0, 0, 0.0, 0.0, 0])
            a[0] += int(done)
            a[1] += int(chair_n)
            a[2] += int(chair_s)
            if plan is not None and inf_n:
                a[3] += int(inf_s) / 60.0
                a[4] += plan * int(inf_n)
                a[5] += int(inf_n)
    records = []
    for (tid, reacted), (n, chair_n, chair_seconds, sum_inf, sum_plan, both) in sorted(acc.items()):
        mean_inf = sum_inf / both if both else np.nan
        mean_plan = sum_plan / both if both else np.nan
        mean_chair = chair_seconds / 60.0 / chair_n if chair_n else np.nan
        records.append((tid, reacted, int(n), mean_inf, mean_plan, mean_inf - mean_plan, mean_chair))
    return records


def _time_lost_scan(db: Database, f: TrendFilters) -> pd.DataFrame:
    """reaction_time_lost from the period's trend_session rows grouped in SQL (exact; chair or nurse filter)."""
    t = T.c
    with db.reading() as s:
        catalog = _catalog(s)
        q = (
            select(
                t.therapy_id,
                t.infusion_number,
                t.reacted,
                func.count(),
                func.count(t.infusion_minutes),
                func.sum(t.infusion_minutes),
                func.count(t.chair_minutes),
                func.sum(t.chair_minutes),
            )
            .where(t.completed.is_(True), *_session_where(f))
            .group_by(t.therapy_id, t.infusion_number, t.reacted)
        )
        rows = _fetch(s, q)
    out: dict[tuple[int, bool], list[float]] = {}
    for tid, number, reacted, n, n_inf, sum_inf, n_chair, sum_chair in rows:
        acc = out.setdefault((int(tid), bool(reacted)), [0, 0.0, 0.0, 0, 0.0])
        acc[0] += n
        plan = _window(catalog.get(int(tid)), int(number))[2]
        if plan is not None and n_inf:
            acc[1] += float(sum_inf)
            acc[2] += plan * n_inf
            acc[3] += n_inf
        acc[4] += float(sum_chair or 0.0)
        acc.append(n_chair)
    records = []
    for (tid, reacted), acc in out.items():
        n, sum_inf, sum_plan, both = int(acc[0]), acc[1], acc[2], int(acc[3])
        n_chair = sum(int(x) for x in acc[5:])
        mean_inf = sum_inf / both if both else np.nan
        mean_plan = sum_plan / both if both else np.nan
        records.append(
            (tid, reacted, n, mean_inf, mean_plan, mean_inf - mean_plan, acc[4] / n_chair if n_chair else np.nan)
        )
    return _time_lost_frame(records, catalog)


def _time_lost_frame(records: list[tuple[Any, ...]], catalog: dict[int, _TherapyInfo]) -> pd.DataFrame:
    """One typed row per therapy × reaction, sorted by therapy name then without/with a reaction (sorted and
    typed here: a frame's casts and sort cost more than the sums)."""
    labelled = sorted(
        ((catalog[r[0]].label if r[0] in catalog else str(r[0]), *r) for r in records), key=lambda r: (r[0], r[2])
    )
    columns = list(zip(*labelled, strict=True)) if labelled else [()] * 8
    data = dict(zip(("therapy", "therapy_id", "with_reaction", "sessions", *_TIME_LOST_MEANS), columns, strict=True))
    return _typed(TIME_LOST_COLUMNS, data, {"with_reaction": "bool", **dict.fromkeys(_TIME_LOST_MEANS, "float64")})


_TIME_LOST_MEANS = ("mean_infusion_minutes", "mean_planned_minutes", "mean_extra_minutes", "mean_chair_minutes")


def chair_utilisation(db: Database, f: TrendFilters, **kw: Any) -> pd.DataFrame:
    """utilisation.chair_utilisation from the chair-use rollup (`chair_use`: whole months), the part months'
    closed sessions from trend_session and the open sessions from the raw rows; with a therapy, location,
    infusion or nurse filter, every closed session of the period from trend_session.

    The arithmetic is the raw function's (`Grid.clip` for intervals; the rollup's slots placed on the same
    cells); `by_site=True` passes through (each site's cells).
    """
    now: datetime = kw.pop("now", None) or utcnow()

    def closed_rows(
        s: Session, part: TrendFilters, chairs: list[int], lo: datetime, hi: datetime, site: int | None = None
    ) -> list[Any]:
        """(start, end) epochs of the closed sessions in these chairs. Given the `site` and no chair filter,
        the site's sessions are read and their chairs matched here, as `chair_use.open_rows` does: an IN list
        of a large site's chairs (292 in the million-session demo) is a statement psycopg parses again on
        every read (over 4 kB), and a subquery in its place was planned as a nested loop (30 ms)."""
        t = T.c
        by_site = site is not None and not f.chair_ids
        q = select(t.start_epoch, t.end_epoch, t.chair_id).where(
            t.local_day >= part.start - timedelta(days=1),
            t.local_day <= part.end,
            t.start_epoch >= (lo - timedelta(days=1)).timestamp(),
            t.start_epoch < hi.timestamp(),
            t.status.not_in(ACTIVE_STATUSES),
            t.site_id == site if by_site else t.chair_id.in_(chairs),
            *_session_where(f)[2:],
        )
        wanted = set(chairs)
        return [(a, b) for a, b, chair in _fetch(s, q) if chair in wanted]

    def rows(s: Session, chairs: list[int], lo: datetime, hi: datetime) -> list[Any]:
        found = closed_rows(s, f, chairs, lo, hi)
        open_q = select(S.checked_in_at, S.id).where(
            S.status.in_(ACTIVE_STATUSES), S.checked_in_at < hi, S.chair_id.in_(chairs), S.checked_in_at.is_not(None)
        )
        ids = [sid for _, sid in _fetch(s, open_q)]
        if ids:
            t2 = T.c
            q = select(t2.start_epoch).where(t2.session_id.in_(ids), *_session_where(f)[2:])
            found += [(a, now.timestamp()) for (a,) in _fetch(s, q)]
        return found

    def occupied(s: Session, site: int, chairs: list[int], lo: datetime, hi: datetime, grid: Grid) -> np.ndarray:
        pieces, days = histogram.signed_calendar(f.start, f.end)
        more, edges = histogram.signed_days(days, now.date() + timedelta(days=1))  # part months: fewest sessions
        pieces += more
        total = np.zeros(len(grid.days) * (grid.close_hour - grid.open_hour))
        if pieces:
            filtered = chairs if f.chair_ids else None  # None: the site's row for every chair
            total += grid.from_slots(chair_use.month_slots(s, site, filtered, pieces))
        for start, end, sign in edges:
            part = replace(f, start=start, end=end)
            a, b = utc_bounds(start, end, grid.zone.key)
            total += sign * grid.clip(part, a, b, closed_rows(s, part, chairs, a, b, site))
        total += grid.clip(f, lo, hi, chair_use.open_rows(s, chairs, hi, now))
        return total

    if chair_use.answers(f):
        return _raw_utilisation(db, f, now=now, occupied_cells=occupied, **kw)
    return _raw_utilisation(db, f, now=now, rows=rows, **kw)


def completeness_by_site(db: Database, f: TrendFilters, *, tolerance_minutes: float = 15) -> pd.DataFrame:
    """The completeness counts of each selected site (COMPLETENESS_COUNT_COLUMNS, `site_id` and `site` first)."""
    return _each_site(db, f, lambda one: completeness(db, one, tolerance_minutes=tolerance_minutes, limit=0).counts)


# --- completeness -----------------------------------------------------------------------------------------


def completeness(
    db: Database, f: TrendFilters, *, tolerance_minutes: float = 15, limit: int | None = 500
) -> CompletenessReport:
    """completeness.completeness: counts from the rollup, overdue vitals from trend_session.gap_minutes,
    the listing (at most `limit` per check) joined to the raw rows of the flagged sessions only."""
    t = T.c
    with db.reading(summaries=True) as s:
        zones = _site_zones(s, f)
        catalog = _catalog(s)
        totals = _per_therapy(s, f)
        every = {tid: info.every_minutes for tid, info in catalog.items() if info.every_minutes}
        counts = [
            ("missing_iv_stop", int(totals["iv_stop_applies"].sum()), int(totals["iv_stop_missing"].sum())),
            ("missing_checkin_vitals", int(totals["checked_in"].sum()), int(totals["pre_vitals_missing"].sum())),
        ]
        listed: list[tuple[str, int, float | None, str]] = []
        lim = None if limit is None else int(limit)
        for check, flag, columns in (
            ("missing_iv_stop", t.iv_stop_applies & t.iv_stop_missing, (S.status, S.iv_started_at)),
            ("missing_checkin_vitals", t.pre_vitals_missing, (S.status,)),
        ):
            if lim == 0:
                continue
            # the flagged sessions first, from trend_session alone (its partial indexes), in check-in order
            # (start_epoch is the check-in); then their raw columns. Joined first, PostgreSQL walked every
            # session in check-in order looking for flagged ones: 1.3 s over ten years at a million sessions
            flagged = (
                select(t.session_id, t.start_epoch)
                .where(flag, *_session_where(f))
                .order_by(t.start_epoch, t.session_id)
                .limit(lim)
                .subquery("flagged")
            )
            q = (
                select(S.id, *columns)
                .select_from(flagged.join(S, S.id == flagged.c.session_id))
                .order_by(flagged.c.start_epoch, flagged.c.session_id)
            )
            for row in _fetch(s, q):
                if check == "missing_iv_stop":
                    sid, status, started = row
                    what = "no IV start or stop" if started is None else "IV started, no stop time"
                    listed.append((check, sid, None, f"{status.replace('_', ' ')}; {what}"))
                else:
                    sid, status = row
                    listed.append((check, sid, None, f"{status.replace('_', ' ')}; no check-in vitals"))
        if every:
            checked = int(totals["gap_checked"][np.isin(totals["therapy_id"], list(every))].sum())
            # one range per therapy on (therapy_id, gap_minutes): only the late sessions are read
            late = union_all(
                *(
                    select(t.session_id, t.gap_minutes, literal(float(m) + tolerance_minutes)).where(
                        t.therapy_id == tid, t.gap_minutes > float(m) + tolerance_minutes + 1e-6, *_session_where(f)
                    )
                    for tid, m in sorted(every.items())
                )
            )
            late_rows = sorted(_fetch(s, late))
            counts.append(("vitals_overdue", checked, len(late_rows)))
            shown = late_rows if lim is None else late_rows[:lim]
            intervals = _late_intervals(s, [(sid, a) for sid, _, a in shown])
            for sid, longest, allowed_min in shown:
                n = intervals.get(sid, 0)
                listed.append(
                    (
                        "vitals_overdue",
                        sid,
                        float(longest),
                        f"longest gap {longest:.0f} min (allowed {allowed_min:.0f}); "
                        f"{n} late interval{'s' if n != 1 else ''}",
                    )
                )
        else:
            counts.append(("vitals_overdue", 0, 0))
        return completeness_report(s, counts, listed, zones, catalog)


def _late_intervals(s: Session, sessions: list[tuple[int, float]]) -> dict[int, int]:
    """Number of gaps longer than allowed, for the few sessions listed (from their raw vitals)."""
    if not sessions:
        return {}
    allowed = dict(sessions)
    rows = raw_completeness._gap_rows(s, list(allowed))
    out: dict[int, int] = {}
    for sid, gap in rows:
        if gap is not None and gap > allowed[sid] + 1e-6:
            out[sid] = out.get(sid, 0) + 1
    return out
