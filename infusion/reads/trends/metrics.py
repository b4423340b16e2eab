"""Metrics for the managers' Trends page and the data-completeness checks (issue 3).

Every function takes the database and a `TrendFilters` and returns a small
DataFrame whose columns are listed in the matching `*_COLUMNS` constant, so a
page can draw (and offer as CSV) without knowing any SQL. Aggregation happens
in SQL (SQLAlchemy Core, GROUP BY) on SQLite and PostgreSQL alike; the only
per-session rows that ever leave the database are the few columns a box plot
or the chair-hour expansion needs, bounded by the filters.

Definitions, chosen here because clinical.md and the issue leave them open:

- A session belongs to the clinic-local day it was **checked in**
  (`checked_in_at`). Sessions never checked in (scheduled, cancelled, deferred
  before arrival) take part in no metric.
- A **completed** session is one with status `discharged`. Sessions still in
  observation are left out of every rate: a reaction can still start during
  observation, so counting them would bias the rate down.
- A session **has a reaction** when it has at least one reaction row with
  status `active`. Rates are computed from the reaction rows (a LEFT JOIN of
  active reactions grouped per session, giving the worst grade too), not from
  the `reaction_count`/`worst_grade` summaries, so an entry marked
  entered-in-error or corrected stops counting at once, whatever the correction
  code does to the summaries. The same rule (status = 'active')
  applies to vitals and rate entries everywhere in this module.
- The **nurse** of a session is the one who documented the IV start (the active
  'start' rate entry); a session without one matches no nurse filter.
- **First / later** infusions use `infusion_session.infusion_number` (1 vs ≥ 2).
- **Durations** are computed from the time stamps (IV start→stop, check-in→
  discharge); the `infusion_minutes`/`chair_minutes` summaries are the fallback
  when a time stamp is missing (imported data).
- The label window of a session (min/max minutes) is looked up per therapy and
  infusion number from the therapy catalog rows, rendered into the SQL as a
  CASE expression so planned-vs-actual arithmetic stays in the database.

Month buckets (`month_bucket`) are exact in the clinic time zone on both
databases: PostgreSQL uses `date_trunc('month', t AT TIME ZONE tz)`; SQLite has
no time-zone database, so the UTC instants of each local month start in the
filtered period are computed with zoneinfo and compiled into a CASE; outside
that range it falls back to a fixed offset (the zone's offset at the range
start), which can misplace up to an hour around a month boundary.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Date,
    Float,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from db.engine import Database
from db.models import (
    ACTIVE_STATUSES,
    Chair,
    Clinic,
    InfusionSession,
    Patient,
    RateChange,
    Reaction,
    Therapy,
    VitalSign,
)
from db.types import UTCDateTime
from infusion.clock import utcnow
from infusion.reads.trends.stats import p_chart, wilson_interval

S = InfusionSession
UTC = UTC
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
INFUSION_BUCKETS = ("1st", "2nd", "later")

REACTION_RATE_COLUMNS = (
    "therapy_id",
    "therapy",
    "completed",
    "with_reaction",
    "rate_per_100",
    "ci_low_per_100",
    "ci_high_per_100",
)
GRADE_RATE_COLUMNS = (
    "therapy_id",
    "therapy",
    "grade",
    "sessions",
    "completed",
    "rate_per_100",
    "ci_low_per_100",
    "ci_high_per_100",
)
INFUSION_NUMBER_RATE_COLUMNS = (
    "therapy_id",
    "therapy",
    "infusion_bucket",
    "completed",
    "with_reaction",
    "rate_per_100",
    "ci_low_per_100",
    "ci_high_per_100",
)
PCHART_COLUMNS = ("month", "n", "x", "p", "p_bar", "ucl", "lcl", "out_of_control")
DURATION_COLUMNS = (
    "therapy_id",
    "therapy",
    "infusion_number",
    "infusion_minutes",
    "chair_minutes",
    "label_min_minutes",
    "label_max_minutes",
)
_STATS = ("mean", "min", "q1", "median", "q3", "max")
DURATION_SUMMARY_COLUMNS = (
    "therapy_id",
    "therapy",
    "sessions",
    *(f"infusion_minutes_{x}" for x in _STATS),
    *(f"chair_minutes_{x}" for x in _STATS),
    "over_window",
    "under_window",
)
UTILISATION_COLUMNS = ("weekday", "weekday_name", "hour", "chair_hours_available", "chair_hours_occupied", "share")
TIME_LOST_COLUMNS = (
    "therapy_id",
    "therapy",
    "with_reaction",
    "sessions",
    "mean_infusion_minutes",
    "mean_planned_minutes",
    "mean_extra_minutes",
    "mean_chair_minutes",
)
COMPLETENESS_COUNT_COLUMNS = ("check", "label", "checked", "flagged", "share")
COMPLETENESS_SESSION_COLUMNS = (
    "check",
    "session_id",
    "date",
    "patient",
    "mrn",
    "therapy",
    "chair",
    "status",
    "detail",
    "gap_minutes",
)
CHECK_LABELS = {
    "missing_iv_stop": "Missing IV stop time",
    "missing_checkin_vitals": "Missing check-in vitals",
    "vitals_overdue": "Vitals overdue during infusion",
}


# ---------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TrendFilters:
    """What the manager picked. Dates are clinic-local and inclusive; empty tuples mean "all".

    Frozen and made of tuples so it hashes: pages can pass it straight to
    `st.cache_data` as the cache key.
    """

    start: date
    end: date
    therapy_ids: tuple[int, ...] = ()
    chair_ids: tuple[int, ...] = ()
    nurse_ids: tuple[int, ...] = ()
    infusion: Literal["all", "first", "later"] = "all"
    location: Literal["all", "clinic", "home"] = "all"

    def __post_init__(self) -> None:
        for name in ("therapy_ids", "chair_ids", "nurse_ids"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if self.end < self.start:
            raise ValueError("The end date is before the start date.")
        if self.infusion not in ("all", "first", "later"):
            raise ValueError("infusion must be 'all', 'first' or 'later'")
        if self.location not in ("all", "clinic", "home"):
            raise ValueError("location must be 'all', 'clinic' or 'home'")


def utc_bounds(start: date, end: date, tz: str) -> tuple[datetime, datetime]:
    """Half-open UTC interval [local midnight of `start`, local midnight after `end`)."""
    zone = ZoneInfo(tz)
    lo = datetime.combine(start, time.min, tzinfo=zone).astimezone(UTC)
    hi = datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
    return lo, hi


def _clinic_tz(s: Session) -> str:
    """The clinic's time zone; UTC before the clinic row exists (an empty database is not an error)."""
    tz = s.scalar(select(Clinic.timezone).order_by(Clinic.id).limit(1))
    return tz or "UTC"


def _where(f: TrendFilters, lo: datetime | None, hi: datetime | None) -> list[ColumnElement[bool]]:
    """The filter conditions on infusion_session (the visit-day range unless lo/hi are None)."""
    conds: list[ColumnElement[bool]] = []
    if lo is not None and hi is not None:
        conds += [S.checked_in_at >= lo, S.checked_in_at < hi]
    if f.therapy_ids:
        conds.append(S.therapy_id.in_(f.therapy_ids))
    if f.chair_ids:
        conds.append(S.chair_id.in_(f.chair_ids))
    if f.location != "all":
        conds.append(S.at_home.is_(f.location == "home"))
    if f.infusion == "first":
        conds.append(S.infusion_number == 1)
    elif f.infusion == "later":
        conds.append(S.infusion_number > 1)
    if f.nurse_ids:
        conds.append(
            exists().where(
                RateChange.session_id == S.id,
                RateChange.kind == "start",
                RateChange.status == "active",
                RateChange.entered_by_id.in_(f.nurse_ids),
            )
        )
    return conds


def _reacted() -> Any:
    """Sessions with at least one active reaction, and their worst active grade.

    Joined (LEFT OUTER) rather than asked per session with EXISTS: PostgreSQL runs
    an EXISTS in the select list as a per-row SubPlan, about 3x slower on 100,000
    sessions than this hash join (bench/metrics_bench.py); SQLite gains too.
    Reactions are rare, so aggregating all of them is cheap.
    """
    return (
        select(Reaction.session_id.label("sid"), func.max(Reaction.grade).label("worst"))
        .where(Reaction.status == "active")
        .group_by(Reaction.session_id)
        .subquery("reacted")
    )


# ---------------------------------------------------------------------------
# Dialect-specific SQL constructs
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Catalog lookups rendered into SQL
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _TherapyInfo:
    id: int
    label: str
    duration_windows: list[dict[str, Any]] = field(default_factory=list)
    every_minutes: int | None = None


def _catalog(s: Session) -> dict[int, _TherapyInfo]:
    rows = s.execute(select(Therapy.id, Therapy.name, Therapy.brand, Therapy.duration_windows, Therapy.vitals_schedule))
    return {
        tid: _TherapyInfo(tid, brand or name, list(windows or []), (schedule or {}).get("every_minutes"))
        for tid, name, brand, windows, schedule in rows
    }


def _window_expr(catalog: dict[int, _TherapyInfo], which: Literal["min", "max", "planned"]) -> ColumnElement[Any]:
    """The session's label window bound as SQL: first matching rule by therapy and infusion number.

    `planned` is the label maximum where there is one, else the minimum ("≥ 2.5 h" plans 2.5 h).
    Mirrors infusion.clinical.catalog.duration_window (first rule whose from/to range holds).
    """
    whens = []
    for info in catalog.values():
        for rule in info.duration_windows:
            lo, hi = rule.get("from", 1), rule.get("to")
            low, high = rule.get("min_minutes"), rule.get("max_minutes")
            value = {"min": low, "max": high, "planned": high if high is not None else low}[which]
            cond = and_(
                S.therapy_id == info.id, S.infusion_number >= lo, *([S.infusion_number <= hi] if hi is not None else [])
            )
            # A matching rule with no value must still stop the search (first match wins).
            whens.append((cond, literal(value, Float()) if value is not None else cast(null(), Float)))
    if not whens:
        return cast(null(), Float)
    return case(*whens, else_=cast(null(), Float))


def _infusion_minutes() -> ColumnElement[float]:
    """The summary kept on write (what it is for: no time arithmetic per row), else the time stamps."""
    return func.coalesce(S.infusion_minutes, minutes_between(S.iv_started_at, S.iv_stopped_at))


def _chair_minutes() -> ColumnElement[float]:
    return func.coalesce(S.chair_minutes, minutes_between(S.checked_in_at, S.discharged_at))


def _fetch(s: Session, q: Any) -> list[tuple[Any, ...]]:
    """Rows as plain tuples through the Core connection (the ORM result path costs ~3x per row)."""
    return [tuple(r) for r in s.connection().execute(q)]


# ---------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------


def _frame(rows: Iterable[Sequence[Any]], columns: Sequence[str], dtypes: dict[str, str] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame([r if isinstance(r, tuple) else tuple(r) for r in rows], columns=list(columns))
    for column, dtype in (dtypes or {}).items():
        frame[column] = frame[column].astype(dtype)
    return frame


def _with_wilson(frame: pd.DataFrame, x: str, n: str) -> pd.DataFrame:
    """Rate per 100 and its Wilson 95 % interval per 100, NaN where n = 0."""
    xs, ns = frame[x].to_numpy(dtype=float), frame[n].to_numpy(dtype=float)
    low, high = wilson_interval(xs, ns)
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["rate_per_100"] = np.where(ns > 0, 100 * xs / np.where(ns > 0, ns, 1), np.nan)
    frame["ci_low_per_100"] = 100 * low
    frame["ci_high_per_100"] = 100 * high
    return frame


def _label(frame: pd.DataFrame, catalog: dict[int, _TherapyInfo]) -> pd.DataFrame:
    frame["therapy"] = [catalog[t].label if t in catalog else str(t) for t in frame["therapy_id"]]
    return frame


# ---------------------------------------------------------------------------
# 1–3. Reaction rates
# ---------------------------------------------------------------------------


def reaction_rates(db: Database, f: TrendFilters) -> pd.DataFrame:
    """Per therapy: completed sessions, sessions with ≥ 1 active reaction, rate per 100 with Wilson 95 % CI.

    Columns: REACTION_RATE_COLUMNS. Only therapies with completed sessions in the filter appear.
    """
    with db.reading() as s:
        tz = _clinic_tz(s)
        lo, hi = utc_bounds(f.start, f.end, tz)
        catalog = _catalog(s)
        r = _reacted()
        q = (
            select(S.therapy_id, func.count().label("completed"), func.count(r.c.sid).label("with_reaction"))
            .select_from(S)
            .outerjoin(r, r.c.sid == S.id)
            .where(S.status == "discharged", *_where(f, lo, hi))
            .group_by(S.therapy_id)
        )
        rows = _fetch(s, q)
    frame = _frame(
        rows,
        ("therapy_id", "completed", "with_reaction"),
        {"therapy_id": "int64", "completed": "int64", "with_reaction": "int64"},
    )
    frame = _with_wilson(_label(frame, catalog), "with_reaction", "completed")
    return frame[list(REACTION_RATE_COLUMNS)].sort_values("therapy", ignore_index=True)


def reaction_rates_by_grade(db: Database, f: TrendFilters) -> pd.DataFrame:
    """Per therapy × worst active CTCAE grade (1–5): sessions, rate per 100 completed, Wilson CI.

    A session counts once, under its worst grade, so the grade rates of a therapy
    add up to its overall reaction rate. Columns: GRADE_RATE_COLUMNS; grades with
    no session are omitted.
    """
    with db.reading() as s:
        tz = _clinic_tz(s)
        lo, hi = utc_bounds(f.start, f.end, tz)
        catalog = _catalog(s)
        r = _reacted()
        q = (
            select(S.therapy_id, r.c.worst, func.count().label("sessions"))
            .select_from(S)
            .outerjoin(r, r.c.sid == S.id)
            .where(S.status == "discharged", *_where(f, lo, hi))
            .group_by(S.therapy_id, r.c.worst)
        )
        rows = _fetch(s, q)
    frame = _frame(rows, ("therapy_id", "grade", "sessions"))
    if frame.empty:
        return _frame(
            [],
            GRADE_RATE_COLUMNS,
            {
                "therapy_id": "int64",
                "grade": "int64",
                "sessions": "int64",
                "completed": "int64",
                "rate_per_100": "float64",
                "ci_low_per_100": "float64",
                "ci_high_per_100": "float64",
            },
        )
    frame["completed"] = frame.groupby("therapy_id")["sessions"].transform("sum")
    frame = frame[frame["grade"].notna()].astype(
        {"therapy_id": "int64", "grade": "int64", "sessions": "int64", "completed": "int64"}
    )
    frame = _with_wilson(_label(frame.reset_index(drop=True), catalog), "sessions", "completed")
    return frame[list(GRADE_RATE_COLUMNS)].sort_values(["therapy", "grade"], ignore_index=True)


def reaction_rates_by_infusion_number(db: Database, f: TrendFilters) -> pd.DataFrame:
    """Per therapy × infusion bucket ('1st', '2nd', 'later' = 3rd onwards), with Wilson CI.

    Reactions are most frequent at the first infusion (clinical.md §2), so the
    buckets show whether a therapy's rate falls as labels say it should.
    Columns: INFUSION_NUMBER_RATE_COLUMNS.
    """
    bucket = case((S.infusion_number <= 1, 0), (S.infusion_number == 2, 1), else_=2)
    with db.reading() as s:
        tz = _clinic_tz(s)
        lo, hi = utc_bounds(f.start, f.end, tz)
        catalog = _catalog(s)
        r = _reacted()
        per_session = (
            select(S.therapy_id.label("therapy_id"), bucket.label("bucket"), r.c.sid.label("reacted"))
            .select_from(S)
            .outerjoin(r, r.c.sid == S.id)
            .where(S.status == "discharged", *_where(f, lo, hi))
            .subquery()
        )
        q = select(
            per_session.c.therapy_id,
            per_session.c.bucket,
            func.count().label("completed"),
            func.count(per_session.c.reacted).label("with_reaction"),
        ).group_by(per_session.c.therapy_id, per_session.c.bucket)
        rows = _fetch(s, q)
    frame = _frame(
        rows,
        ("therapy_id", "bucket", "completed", "with_reaction"),
        {"therapy_id": "int64", "bucket": "int64", "completed": "int64", "with_reaction": "int64"},
    )
    frame["infusion_bucket"] = [INFUSION_BUCKETS[b] for b in frame["bucket"]]
    frame = _with_wilson(_label(frame, catalog), "with_reaction", "completed")
    frame = frame.sort_values(["therapy", "bucket"], ignore_index=True)
    return frame[list(INFUSION_NUMBER_RATE_COLUMNS)]


# ---------------------------------------------------------------------------
# 4. Monthly p-chart
# ---------------------------------------------------------------------------


def monthly_reaction_pchart(db: Database, f: TrendFilters, therapy_id: int | None = None) -> pd.DataFrame:
    """Monthly share of completed sessions with a reaction, with p-chart centre line and 3-sigma limits.

    Months are clinic-local. p̄ is pooled over the filtered period (Σx/Σn), so
    the limits describe "this period's normal" and flag months outside it.
    `therapy_id` narrows to one therapy (the page draws one chart per therapy);
    None pools every therapy the filters select. Months without a completed
    session are absent. Proportions are in [0, 1]. Columns: PCHART_COLUMNS.
    """
    with db.reading() as s:
        tz = _clinic_tz(s)
        lo, hi = utc_bounds(f.start, f.end, tz)
        conds = _where(f, lo, hi)
        if therapy_id is not None:
            conds.append(S.therapy_id == therapy_id)
        r = _reacted()
        per_session = (
            select(month_bucket(S.checked_in_at, tz, between=(lo, hi)).label("month"), r.c.sid.label("reacted"))
            .select_from(S)
            .outerjoin(r, r.c.sid == S.id)
            .where(S.status == "discharged", *conds)
            .subquery()
        )
        q = (
            select(per_session.c.month, func.count().label("n"), func.count(per_session.c.reacted).label("x"))
            .group_by(per_session.c.month)
            .order_by(per_session.c.month)
        )
        rows = _fetch(s, q)
    months = [m if isinstance(m, date) else date.fromisoformat(str(m)[:10]) for m, _, _ in rows]
    chart = p_chart([x for _, _, x in rows], [n for _, n, _ in rows])
    chart.insert(0, "month", pd.Series(months, dtype="object"))
    return chart[list(PCHART_COLUMNS)]


# ---------------------------------------------------------------------------
# 5. Durations
# ---------------------------------------------------------------------------


def session_durations(db: Database, f: TrendFilters) -> pd.DataFrame:
    """One row per completed session, only what a box plot against the label range needs.

    Minutes are IV start→stop and check-in→discharge; label_min/max_minutes are
    the catalog window for that therapy and infusion number (NaN where the
    label gives none). Columns: DURATION_COLUMNS.
    """
    with db.reading() as s:
        tz = _clinic_tz(s)
        lo, hi = utc_bounds(f.start, f.end, tz)
        catalog = _catalog(s)
        q = select(
            S.therapy_id,
            S.infusion_number,
            _infusion_minutes().label("inf"),
            _chair_minutes().label("chair"),
            _window_expr(catalog, "min").label("wmin"),
            _window_expr(catalog, "max").label("wmax"),
        ).where(S.status == "discharged", *_where(f, lo, hi))
        rows = _fetch(s, q)
    frame = _frame(
        rows,
        (
            "therapy_id",
            "infusion_number",
            "infusion_minutes",
            "chair_minutes",
            "label_min_minutes",
            "label_max_minutes",
        ),
        {
            "therapy_id": "int64",
            "infusion_number": "int64",
            "infusion_minutes": "float64",
            "chair_minutes": "float64",
            "label_min_minutes": "float64",
            "label_max_minutes": "float64",
        },
    )
    frame = _label(frame, catalog)
    return frame[list(DURATION_COLUMNS)].sort_values(["therapy", "infusion_number"], ignore_index=True)


def duration_summary(db: Database, f: TrendFilters, tolerance_minutes: float = 15) -> pd.DataFrame:
    """Per therapy: sessions, mean/min/quartiles/max of infusion and chair minutes, and window breaches.

    Count, mean, min, max and the breach counts are SQL aggregates; the
    quartiles (linear interpolation, pandas' default) come from the
    per-session minutes only. `over_window`: infusion longer than label max +
    tolerance; `under_window`: shorter than the label minimum (minus the
    tolerance where the label gives an approximate time, min = max) — the rules
    of infusion.clinical.schedule.infusion_clock. Columns: DURATION_SUMMARY_COLUMNS.
    """
    with db.reading() as s:
        tz = _clinic_tz(s)
        lo, hi = utc_bounds(f.start, f.end, tz)
        catalog = _catalog(s)
        conds = [S.status == "discharged", *_where(f, lo, hi)]
        per_session = (
            select(
                S.therapy_id.label("therapy_id"),
                _infusion_minutes().label("inf"),
                _chair_minutes().label("chair"),
                _window_expr(catalog, "min").label("wmin"),
                _window_expr(catalog, "max").label("wmax"),
            )
            .where(*conds)
            .subquery()
        )
        p = per_session.c
        floor = case((p.wmin == p.wmax, p.wmin - tolerance_minutes), else_=p.wmin)
        q = select(
            p.therapy_id,
            func.count().label("sessions"),
            func.avg(p.inf),
            func.min(p.inf),
            func.max(p.inf),
            func.avg(p.chair),
            func.min(p.chair),
            func.max(p.chair),
            func.sum(case((p.inf > p.wmax + tolerance_minutes, 1), else_=0)),
            func.sum(case((p.inf < floor, 1), else_=0)),
        ).group_by(p.therapy_id)
        agg = _fetch(s, q)
        minutes = _fetch(
            s, select(S.therapy_id, _infusion_minutes().label("inf"), _chair_minutes().label("chair")).where(*conds)
        )
    frame = _frame(
        agg,
        (
            "therapy_id",
            "sessions",
            "infusion_minutes_mean",
            "infusion_minutes_min",
            "infusion_minutes_max",
            "chair_minutes_mean",
            "chair_minutes_min",
            "chair_minutes_max",
            "over_window",
            "under_window",
        ),
    )
    frame = frame.astype(
        {
            "therapy_id": "int64",
            "sessions": "int64",
            "over_window": "int64",
            "under_window": "int64",
            **{c: "float64" for c in frame.columns[2:8]},
        }
    )
    per = _frame(
        minutes,
        ("therapy_id", "infusion_minutes", "chair_minutes"),
        {"therapy_id": "int64", "infusion_minutes": "float64", "chair_minutes": "float64"},
    )
    grouped = per.groupby("therapy_id")
    for kind in ("infusion_minutes", "chair_minutes"):
        for q_value, name in ((0.25, "q1"), (0.5, "median"), (0.75, "q3")):
            frame[f"{kind}_{name}"] = frame["therapy_id"].map(grouped[kind].quantile(q_value)).astype("float64")
    frame = _label(frame, catalog)
    return frame[list(DURATION_SUMMARY_COLUMNS)].sort_values("therapy", ignore_index=True)


# ---------------------------------------------------------------------------
# 6. Chair utilisation and time lost to reactions
# ---------------------------------------------------------------------------


def chair_utilisation(
    db: Database,
    f: TrendFilters,
    *,
    open_hour: int = 7,
    close_hour: int = 19,
    weekdays: Sequence[int] = (0, 1, 2, 3, 4),
    now: datetime | None = None,
) -> pd.DataFrame:
    """Share of chair-hours occupied, by clinic-local weekday (0 = Monday) × hour of day.

    Occupancy runs from check-in to discharge (or deferral/cancellation close)
    for every session that sat in a chair, whatever its outcome; a session still
    open counts until `now`, even one left open since an earlier day (the live
    board lists those; the share shows what the record says). The denominator
    is the number of clinic chairs (kind 'chair' and active, or the chosen
    chairs) × the wall-clock hours from `open_hour` to `close_hour` on
    `weekdays` within the period, up to `now`. clinical.md is silent on opening
    hours: 07:00–19:00 Monday–Friday is a default, not a fact; pass the
    clinic's own. Home visits are not chair-hours. Occupied time outside those
    hours is not shown. A share above 1 means sessions overlapped in a chair
    (the services prevent it; imports and overbooked demo days do not).

    How: SQL selects only (check-in, end) as epoch seconds for the filtered
    sessions; numpy expands them to hour slots in the clinic's wall-clock time
    (zoneinfo, exact across DST on both databases — SQLite has no time-zone
    data) and sums per cell. Columns: UTILISATION_COLUMNS.
    """
    if not 0 <= open_hour < close_hour <= 24:
        raise ValueError("need 0 ≤ open_hour < close_hour ≤ 24")
    days = tuple(sorted(set(int(d) for d in weekdays)))
    now = now or utcnow()
    with db.reading() as s:
        tz = _clinic_tz(s)
        lo, hi = utc_bounds(f.start, f.end, tz)
        chair_q = select(Chair.id).where(Chair.kind == "chair")
        chair_q = chair_q.where(Chair.id.in_(f.chair_ids)) if f.chair_ids else chair_q.where(Chair.active.is_(True))
        chairs = list(s.scalars(chair_q))
        rows: list[Any] = []
        if chairs:
            end = case(
                (S.status.in_(ACTIVE_STATUSES), literal(now, UTCDateTime())),
                else_=func.coalesce(S.discharged_at, S.closed_at),
            )
            q = select(epoch_seconds(S.checked_in_at), epoch_seconds(end)).where(
                S.checked_in_at < hi,
                # a visit may run past midnight; a session still open keeps the chair until now
                or_(S.checked_in_at >= lo - timedelta(days=1), S.status.in_(ACTIVE_STATUSES)),
                S.chair_id.in_(chairs),
                *_where(f, None, None),
            )
            rows = _fetch(s, q)
    if not chairs:  # nothing to measure: an empty frame, like every other metric of an empty clinic
        return _frame(
            [],
            UTILISATION_COLUMNS,
            {
                "weekday": "int64",
                "hour": "int64",
                "chair_hours_available": "float64",
                "chair_hours_occupied": "float64",
                "share": "float64",
            },
        )
    zone = ZoneInfo(tz)
    hours = np.arange(open_hour, close_hour)
    grid_w, grid_h = np.repeat(np.array(days, dtype=int), len(hours)), np.tile(hours, len(days))
    available = np.zeros(grid_w.shape)
    occupied = np.zeros(grid_w.shape)
    cell = {(w, h): i for i, (w, h) in enumerate(zip(grid_w, grid_h))}
    if days:
        # Everything below is in local wall-clock hours since 1970-01-01 00:00 (local).
        def wall_hours(instants: np.ndarray) -> np.ndarray:
            local = pd.to_datetime(instants, unit="s", utc=True).tz_convert(zone).tz_localize(None)
            return (local.to_numpy(dtype="datetime64[us]").astype("int64") / 3_600_000_000).astype(float)

        limit = min(hi, max(now, lo))
        span = wall_hours(np.array([lo.timestamp(), limit.timestamp()]))
        # Denominator: each clinic hour of each day in the period, clipped to [lo, now).
        day0 = int(span[0] // 24)
        for day_index in range((f.end - f.start).days + 1):
            day = day0 + day_index
            weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
            if weekday not in days:
                continue
            for h in hours:
                slot = day * 24 + h
                part = min(slot + 1, span[1]) - max(slot, span[0])
                if part > 0:
                    available[cell[(weekday, h)]] += part * len(chairs)
        if rows:
            data = np.array([(a, b) for a, b in rows if a is not None and b is not None], dtype=float)
            if data.size:
                start_h, end_h = wall_hours(data[:, 0]), wall_hours(data[:, 1])
                start_h, end_h = np.maximum(start_h, span[0]), np.minimum(end_h, span[1])
                keep = end_h > start_h
                start_h, end_h = start_h[keep], end_h[keep]
                first = np.floor(start_h).astype(np.int64)
                count = np.ceil(end_h).astype(np.int64) - first
                owner = np.repeat(np.arange(len(first)), count)
                offset = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
                slot = first[owner] + offset
                overlap = np.minimum(end_h[owner], slot + 1) - np.maximum(start_h[owner], slot)
                weekday, hod = (slot // 24 + 3) % 7, slot % 24
                lookup = np.full(7 * 24, -1)
                for (w, h), i in cell.items():
                    lookup[w * 24 + h] = i
                index = lookup[weekday * 24 + hod]
                ok = (index >= 0) & (overlap > 0)
                occupied += np.bincount(index[ok], weights=overlap[ok], minlength=len(occupied))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(available > 0, occupied / np.where(available > 0, available, 1), np.nan)
    return pd.DataFrame(
        {
            "weekday": grid_w.astype("int64"),
            "weekday_name": [WEEKDAY_NAMES[w] for w in grid_w],
            "hour": grid_h.astype("int64"),
            "chair_hours_available": available,
            "chair_hours_occupied": occupied,
            "share": share,
        }
    )[list(UTILISATION_COLUMNS)]


def reaction_time_lost(db: Database, f: TrendFilters) -> pd.DataFrame:
    """Per therapy, completed sessions with vs without an active reaction: mean minutes over plan.

    The plan is the label window for the therapy and infusion number (its
    maximum, or its minimum where the label gives only "≥"); extra = IV
    start→stop minus plan, averaged with its sign (an infusion finished early
    counts negative). The infusion, planned and extra means are over the
    sessions that have a label window (so extra = infusion − planned); the
    chair mean and `sessions` cover all of them.
    Columns: TIME_LOST_COLUMNS.
    """
    with db.reading() as s:
        tz = _clinic_tz(s)
        lo, hi = utc_bounds(f.start, f.end, tz)
        catalog = _catalog(s)
        r = _reacted()
        per_session = (
            select(
                S.therapy_id.label("therapy_id"),
                case((r.c.sid.is_not(None), 1), else_=0).label("flag"),
                _infusion_minutes().label("inf"),
                _chair_minutes().label("chair"),
                _window_expr(catalog, "planned").label("plan"),
            )
            .select_from(S)
            .outerjoin(r, r.c.sid == S.id)
            .where(S.status == "discharged", *_where(f, lo, hi))
            .subquery()
        )
        p = per_session.c
        both = and_(p.plan.is_not(None), p.inf.is_not(None))
        q = select(
            p.therapy_id,
            p.flag,
            func.count(),
            func.avg(case((both, p.inf))),
            func.avg(case((both, p.plan))),
            func.avg(p.inf - p.plan),
            func.avg(p.chair),
        ).group_by(p.therapy_id, p.flag)
        rows = _fetch(s, q)
    frame = _frame(
        rows,
        (
            "therapy_id",
            "flag",
            "sessions",
            "mean_infusion_minutes",
            "mean_planned_minutes",
            "mean_extra_minutes",
            "mean_chair_minutes",
        ),
        {
            "therapy_id": "int64",
            "flag": "int64",
            "sessions": "int64",
            "mean_infusion_minutes": "float64",
            "mean_planned_minutes": "float64",
            "mean_extra_minutes": "float64",
            "mean_chair_minutes": "float64",
        },
    )
    frame["with_reaction"] = frame["flag"].astype(bool)
    frame = _label(frame, catalog).sort_values(["therapy", "with_reaction"], ignore_index=True)
    return frame[list(TIME_LOST_COLUMNS)]


# ---------------------------------------------------------------------------
# 7. Completeness
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CompletenessReport:
    """Exact counts per check, and the flagged sessions (at most `limit` per check) to follow up."""

    counts: pd.DataFrame
    sessions: pd.DataFrame


def completeness(
    db: Database, f: TrendFilters, *, tolerance_minutes: float = 15, limit: int | None = 500
) -> CompletenessReport:
    """Sessions whose record is incomplete, by check.

    - missing_iv_stop: in observation or discharged (or with a discharge time,
      as imported data may have) but no IV stop time. The services make this
      impossible; imports and demo loads do not go through them.
    - missing_checkin_vitals: checked in, but no active 'pre' vitals.
    - vitals_overdue: discharged sessions whose active vitals during the
      infusion (IV start and IV stop count as the ends) leave a gap longer than
      the therapy's `every_minutes` + `tolerance_minutes` (the "every N min"
      rule of infusion.clinical.schedule.next_vitals_due; the fixed after-start and
      rate-change sets are the live board's job). Gaps come from
      LAG(t) OVER (PARTITION BY session ORDER BY t) over the IV start, the
      vitals and the IV stop of each session, t in epoch seconds.

    `checked` is the number of sessions each check applies to; `detail` and
    `gap_minutes` explain each flag. Columns: COMPLETENESS_COUNT_COLUMNS and
    COMPLETENESS_SESSION_COLUMNS.
    """
    with db.reading() as s:
        tz = _clinic_tz(s)
        lo, hi = utc_bounds(f.start, f.end, tz)
        catalog = _catalog(s)
        conds = _where(f, lo, hi)
        counts: list[tuple[str, int, int]] = []
        listed: list[tuple[str, int, float | None, str]] = []

        # missing IV stop
        applies = or_(S.status.in_(("observation", "discharged")), S.discharged_at.is_not(None))
        checked, flagged, rows = _flag_sessions(
            s, [applies, *conds], S.iv_stopped_at.is_(None), (S.status, S.iv_started_at), limit
        )
        counts.append(("missing_iv_stop", checked, flagged))
        for sid, status, started in rows:
            what = "no IV start or stop" if started is None else "IV started, no stop time"
            listed.append(("missing_iv_stop", sid, None, f"{status.replace('_', ' ')}; {what}"))

        # missing check-in vitals
        no_pre = ~exists().where(VitalSign.session_id == S.id, VitalSign.status == "active", VitalSign.phase == "pre")
        checked, flagged, rows = _flag_sessions(s, conds, no_pre, (S.status,), limit)
        counts.append(("missing_checkin_vitals", checked, flagged))
        for sid, status in rows:
            listed.append(("missing_checkin_vitals", sid, None, f"{status.replace('_', ' ')}; no check-in vitals"))

        # vitals overdue during the infusion
        every = {tid: info.every_minutes for tid, info in catalog.items() if info.every_minutes}
        if every:
            allowed = case(
                *((S.therapy_id == tid, literal(float(m) + tolerance_minutes, Float())) for tid, m in every.items()),
                else_=cast(null(), Float),
            )
            base = (
                select(
                    S.id.label("sid"),
                    S.iv_started_at.label("t0"),
                    S.iv_stopped_at.label("t1"),
                    allowed.label("allowed"),
                )
                .where(
                    S.status == "discharged",
                    S.iv_started_at.is_not(None),
                    S.iv_stopped_at.is_not(None),
                    S.therapy_id.in_(tuple(every)),
                    *conds,
                )
                .cte("infused")
            )
            # Times as epoch seconds: one cheap conversion per row, then plain subtraction.
            events = union_all(
                select(base.c.sid, base.c.allowed, epoch_seconds(base.c.t0).label("e")),
                select(base.c.sid, base.c.allowed, epoch_seconds(VitalSign.taken_at))
                .join(VitalSign, VitalSign.session_id == base.c.sid)
                .where(VitalSign.status == "active", VitalSign.taken_at >= base.c.t0, VitalSign.taken_at <= base.c.t1),
                select(base.c.sid, base.c.allowed, epoch_seconds(base.c.t1)),
            ).subquery("events")
            e = events.c
            previous = func.lag(e.e).over(partition_by=e.sid, order_by=e.e)
            gaps = select(e.sid, e.allowed, ((e.e - previous) / 60.0).label("gap")).subquery("gaps")
            g = gaps.c
            late = g.gap > g.allowed + 1e-6
            per_session = (
                select(
                    g.sid,
                    func.max(g.gap).label("longest"),
                    func.max(g.allowed).label("allowed"),
                    func.sum(case((late, 1), else_=0)).label("late_gaps"),
                )
                .where(g.gap.is_not(None))
                .group_by(g.sid)
                .having(func.sum(case((late, 1), else_=0)) > 0)
            ).subquery("late")
            checked = s.scalar(select(func.count()).select_from(base)) or 0
            # One pass over the vitals: the listing carries the exact total (the window counts before LIMIT).
            q = select(
                per_session.c.sid,
                per_session.c.longest,
                per_session.c.allowed,
                per_session.c.late_gaps,
                func.count().over().label("total"),
            ).order_by(per_session.c.sid)
            if limit == 0:
                late_rows, flagged = [], s.scalar(select(func.count()).select_from(per_session)) or 0
            else:
                late_rows = _fetch(s, q.limit(limit))
                flagged = late_rows[0][4] if late_rows else 0
            counts.append(("vitals_overdue", int(checked), int(flagged)))
            for sid, longest, allowed_min, late_gaps, _ in late_rows[:limit]:
                listed.append(
                    (
                        "vitals_overdue",
                        sid,
                        float(longest),
                        f"longest gap {longest:.0f} min (allowed {allowed_min:.0f}); "
                        f"{late_gaps} late interval{'s' if late_gaps != 1 else ''}",
                    )
                )
        else:
            counts.append(("vitals_overdue", 0, 0))

        ids = sorted({sid for _, sid, _, _ in listed})
        info: dict[int, tuple[Any, ...]] = {}
        if ids:
            q = (
                select(
                    S.id,
                    S.checked_in_at,
                    Patient.family_name,
                    Patient.given_name,
                    Patient.mrn,
                    S.therapy_id,
                    Chair.name,
                    S.status,
                )
                .join(Patient, Patient.id == S.patient_id)
                .join(Chair, Chair.id == S.chair_id)
                .where(S.id.in_(ids))
            )
            info = {r[0]: tuple(r[1:]) for r in s.execute(q)}

    zone = ZoneInfo(tz)
    count_frame = _frame(
        ((c, CHECK_LABELS[c], n, k) for c, n, k in counts),
        ("check", "label", "checked", "flagged"),
        {"checked": "int64", "flagged": "int64"},
    )
    count_frame["share"] = [k / n if n else np.nan for n, k in zip(count_frame["checked"], count_frame["flagged"])]
    records = []
    for check, sid, gap, detail in listed:
        checked_in, family, given, mrn, tid, chair, status = info[sid]
        records.append(
            (
                check,
                sid,
                checked_in.astimezone(zone).date() if checked_in else None,
                f"{family}, {given}",
                mrn,
                catalog[tid].label if tid in catalog else str(tid),
                chair,
                status,
                detail,
                gap,
            )
        )
    session_frame = _frame(records, COMPLETENESS_SESSION_COLUMNS, {"session_id": "int64", "gap_minutes": "float64"})
    return CompletenessReport(count_frame[list(COMPLETENESS_COUNT_COLUMNS)], session_frame)


def _flag_sessions(
    s: Session,
    population: list[ColumnElement[bool]],
    flag: ColumnElement[bool],
    columns: tuple[Any, ...],
    limit: int | None,
) -> tuple[int, int, list[tuple[Any, ...]]]:
    """(sessions the check applies to, sessions flagged, first `limit` flagged as (id, *columns)).

    The flag (often a NOT EXISTS) is evaluated once: the listing carries the total as
    COUNT(*) OVER (), which is computed before LIMIT.
    """
    checked = int(s.scalar(select(func.count()).select_from(S).where(*population)) or 0)
    if limit == 0:
        return checked, int(s.scalar(select(func.count()).select_from(S).where(flag, *population)) or 0), []
    q = (
        select(S.id, *columns, func.count().over())
        .where(flag, *population)
        .order_by(S.checked_in_at, S.id)
        .limit(limit)
    )
    rows = _fetch(s, q)
    return checked, int(rows[0][-1]) if rows else 0, [r[:-1] for r in rows]
