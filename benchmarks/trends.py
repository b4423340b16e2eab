"""Each Trends figure against one hand-written SQL statement computing the same numbers.

The floor is what the database alone needs to read the raw rows and aggregate them,
with no SQLAlchemy statement building, no pandas and no Python arithmetic, so the
ratio figure ÷ floor is the cost of the code path. The issue's target (≥ 30× faster
than this raw-row query) can only be met once the figures read maintained summaries.

Where a floor does less than its figure, it says so in `NOTES` (and the README):
label windows are catalog constants per therapy, the p-chart's SQLite months use a
fixed UTC offset, SQLite has no percentile aggregate, and chair utilisation's
hour-slot expansion happens in numpy on both sides of the comparison only in the figure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text

from db.engine import Database
from db.models import Clinic, InfusionSession
from infusion.accounts.actor import Actor
from infusion.reads import trends as metrics
from infusion.reads.trends import TrendFilters, utc_bounds
from infusion.reads.trends import service as trend_service

WINDOW = "s.status = 'discharged' AND s.checked_in_at >= :lo AND s.checked_in_at < :hi"
REACTED = "SELECT session_id AS sid, MAX(grade) AS worst FROM reaction WHERE status = 'active' GROUP BY session_id"


def _minutes(a: str, b: str, dialect: str) -> str:
    if dialect == "sqlite":
        return f"((unixepoch({b}) - unixepoch({a})) / 60.0)"
    return f"(EXTRACT(EPOCH FROM ({b} - {a})) / 60.0)"


def _epoch(column: str, dialect: str) -> str:
    return f"unixepoch({column})" if dialect == "sqlite" else f"EXTRACT(EPOCH FROM {column})"


def _inf(d: str) -> str:
    return f"COALESCE(s.infusion_minutes, {_minutes('s.iv_started_at', 's.iv_stopped_at', d)})"


def _chair(d: str) -> str:
    return f"COALESCE(s.chair_minutes, {_minutes('s.checked_in_at', 's.discharged_at', d)})"


def floor_sql(figure: str, d: str) -> str:
    """The hand-written statement for one figure on dialect `d` ('sqlite' or 'postgresql')."""
    if figure == "reaction_rates":
        return f"""SELECT s.therapy_id, COUNT(*) AS completed, COUNT(r.sid) AS with_reaction
FROM infusion_session s LEFT JOIN ({REACTED}) r ON r.sid = s.id
WHERE {WINDOW} GROUP BY s.therapy_id"""
    if figure == "reaction_rates_by_grade":
        return f"""SELECT s.therapy_id, r.worst, COUNT(*) AS sessions
FROM infusion_session s LEFT JOIN ({REACTED}) r ON r.sid = s.id
WHERE {WINDOW} GROUP BY s.therapy_id, r.worst"""
    if figure == "reaction_rates_by_infusion_number":
        return f"""SELECT s.therapy_id,
       CASE WHEN s.infusion_number <= 1 THEN 0 WHEN s.infusion_number = 2 THEN 1 ELSE 2 END AS bucket,
       COUNT(*) AS completed, COUNT(r.sid) AS with_reaction
FROM infusion_session s LEFT JOIN ({REACTED}) r ON r.sid = s.id
WHERE {WINDOW} GROUP BY 1, 2"""
    if figure == "monthly_reaction_pchart":
        month = (
            "strftime('%Y-%m-01', s.checked_in_at, :offset)"
            if d == "sqlite"
            else "CAST(date_trunc('month', s.checked_in_at AT TIME ZONE :tz) AS DATE)"
        )
        return f"""SELECT {month} AS month, COUNT(*) AS n, COUNT(r.sid) AS x
FROM infusion_session s LEFT JOIN ({REACTED}) r ON r.sid = s.id
WHERE {WINDOW} GROUP BY 1 ORDER BY 1"""
    if figure == "duration_summary":
        quartiles = ""
        if d == "postgresql":
            quartiles = ", " + ", ".join(
                f"percentile_cont({q}) WITHIN GROUP (ORDER BY {c})" for c in ("inf", "chair") for q in (0.25, 0.5, 0.75)
            )
        return f"""SELECT therapy_id, COUNT(*), AVG(inf), MIN(inf), MAX(inf), AVG(chair), MIN(chair), MAX(chair){quartiles}
FROM (SELECT s.therapy_id, {_inf(d)} AS inf, {_chair(d)} AS chair FROM infusion_session s WHERE {WINDOW}) p
GROUP BY therapy_id"""
    if figure == "chair_utilisation":
        end = "COALESCE(s.discharged_at, s.closed_at)"
        return f"""SELECT {_epoch("s.checked_in_at", d)}, {_epoch(end, d)}
FROM infusion_session s
WHERE s.checked_in_at < :hi AND s.checked_in_at >= :lo_day_before
  AND s.chair_id IN (SELECT id FROM chair WHERE kind = 'chair' AND active)"""
    if figure == "reaction_time_lost":
        return f"""SELECT s.therapy_id, CASE WHEN r.sid IS NULL THEN 0 ELSE 1 END AS flag, COUNT(*),
       AVG({_inf(d)}), AVG({_chair(d)})
FROM infusion_session s LEFT JOIN ({REACTED}) r ON r.sid = s.id
WHERE {WINDOW} GROUP BY 1, 2"""
    if figure == "completeness":
        every = (
            "json_extract(t.vitals_schedule, '$.every_minutes')"
            if d == "sqlite"
            else "CAST(t.vitals_schedule ->> 'every_minutes' AS DOUBLE PRECISION)"
        )
        in_range = "s.checked_in_at >= :lo AND s.checked_in_at < :hi"
        return f"""WITH infused AS (
  SELECT s.id AS sid, s.iv_started_at AS t0, s.iv_stopped_at AS t1, {every} + 15 AS allowed
  FROM infusion_session s JOIN therapy t ON t.id = s.therapy_id
  WHERE {WINDOW} AND s.iv_started_at IS NOT NULL AND s.iv_stopped_at IS NOT NULL AND {every} IS NOT NULL
), events AS (
  SELECT sid, allowed, {_epoch("t0", d)} AS e FROM infused
  UNION ALL
  SELECT i.sid, i.allowed, {_epoch("v.taken_at", d)} FROM infused i JOIN vital_sign v ON v.session_id = i.sid
  WHERE v.status = 'active' AND v.taken_at >= i.t0 AND v.taken_at <= i.t1
  UNION ALL
  SELECT sid, allowed, {_epoch("t1", d)} FROM infused
), gaps AS (
  SELECT sid, allowed, (e - LAG(e) OVER (PARTITION BY sid ORDER BY e)) / 60.0 AS gap FROM events
)
SELECT
  (SELECT COUNT(*) FROM infusion_session s WHERE {in_range} AND s.iv_stopped_at IS NULL
     AND (s.status IN ('observation', 'discharged') OR s.discharged_at IS NOT NULL)) AS missing_iv_stop,
  (SELECT COUNT(*) FROM infusion_session s WHERE {in_range} AND NOT EXISTS (
     SELECT 1 FROM vital_sign v WHERE v.session_id = s.id AND v.status = 'active' AND v.phase = 'pre'))
     AS missing_checkin_vitals,
  (SELECT COUNT(*) FROM (SELECT sid FROM gaps WHERE gap > allowed + 1e-6 GROUP BY sid) late) AS vitals_overdue"""
    if figure == "delayed_reaction_rates":
        return f"""SELECT s.therapy_id, COUNT(*), COALESCE(SUM(x.during), 0), COALESCE(SUM(x.after), 0)
FROM infusion_session s LEFT JOIN (
  SELECT r.session_id AS sid,
         MAX(CASE WHEN NOT r.delayed THEN 1 ELSE 0 END) AS during,
         MAX(CASE WHEN r.delayed AND {_minutes("d.discharged_at", "r.onset_at", d)} <= 1440 THEN 1 ELSE 0 END) AS after
  FROM reaction r JOIN infusion_session d ON d.id = r.session_id
  WHERE r.status = 'active' GROUP BY r.session_id) x ON x.sid = s.id
WHERE {WINDOW} GROUP BY s.therapy_id"""
    raise KeyError(figure)


NOTES = {
    "monthly_reaction_pchart": "SQLite floor buckets months at a fixed UTC offset",
    "duration_summary": "SQLite floor has no quartiles (no percentile aggregate); PostgreSQL's uses percentile_cont",
    "chair_utilisation": "floor selects the occupied intervals only; the figure expands them into hour slots in numpy",
    "reaction_time_lost": "floor leaves out the planned-minutes means (catalog constants)",
    "completeness": "floor counts the three checks; the figure also lists up to 500 flagged sessions",
}
#: added to every note when the sites span several time zones (floor_params)
ZONES_NOTE = "sites in several zones: floor reads the UTC envelope of the sites' local days"

FIGURES: dict[str, Callable[[Database, TrendFilters], Any]] = {
    "reaction_rates": metrics.reaction_rates,
    "reaction_rates_by_grade": metrics.reaction_rates_by_grade,
    "reaction_rates_by_infusion_number": metrics.reaction_rates_by_infusion_number,
    "monthly_reaction_pchart": metrics.monthly_reaction_pchart,
    "duration_summary": metrics.duration_summary,
    "chair_utilisation": metrics.chair_utilisation,
    "reaction_time_lost": metrics.reaction_time_lost,
    "completeness": metrics.completeness,
    "delayed_reaction_rates": metrics.delayed_reaction_rates,
}


@dataclass(frozen=True)
class Period:
    name: str  # "year", "five years" (when the history is longer) or "history"
    filters: TrendFilters


def clinic_zone(db: Database) -> str:
    """The first site's time zone (UTC before set-up)."""
    return site_zones(db)[0]


def site_zones(db: Database) -> list[str]:
    """The distinct time zones of the network's sites, the first site's first (["UTC"] before set-up)."""
    with db.reading() as s:
        zones = [tz or "UTC" for tz in s.scalars(select(Clinic.timezone).order_by(Clinic.id))]
    return list(dict.fromkeys(zones)) or ["UTC"]


def periods(db: Database, today: date) -> list[Period]:
    """The last 365 days; the last five years (the issue's targets name one and five years) when the
    history is longer (the demo's default at a million sessions is ten years); and everything from the
    first check-in (in the first site's zone) to today."""
    tz = clinic_zone(db)
    with db.reading() as s:
        first = s.scalar(select(func.min(InfusionSession.checked_in_at)))
    start = min(first.astimezone(ZoneInfo(tz)).date() if first else today, today)
    five = today - timedelta(days=5 * 365 - 1)
    return [
        Period("year", TrendFilters(today - timedelta(days=364), today)),
        *([Period("five years", TrendFilters(five, today))] if start < five else []),
        Period("history", TrendFilters(start, today)),
    ]


def floor_params(db: Database, f: TrendFilters, zones: str | Sequence[str]) -> dict[str, Any]:
    """The floors' parameters. A network whose sites span several zones: the figures read each site's
    local days; the floor reads the UTC envelope of every zone's period (a few hours more rows at each end,
    never fewer), and buckets months in the first site's zone."""
    zones = [zones] if isinstance(zones, str) else list(zones) or ["UTC"]
    tz = zones[0]
    bounds = [utc_bounds(f.start, f.end, zone) for zone in zones]
    lo, hi = min(b[0] for b in bounds), max(b[1] for b in bounds)
    offset = (lo.astimezone(ZoneInfo(tz)).utcoffset() or timedelta(0)).total_seconds() // 60
    values: dict[str, Any] = {"lo": lo, "hi": hi, "lo_day_before": lo - timedelta(days=1)}
    if db.dialect == "sqlite":  # UTCDateTime's stored text on SQLite
        values = {k: v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") for k, v in values.items()}
        values["offset"] = f"{int(offset):+d} minutes"
    else:
        values["tz"] = tz
    return values


def run_floor(db: Database, *, figure: str, params: dict[str, Any]) -> list[Any]:
    sql = floor_sql(figure, db.dialect)
    wanted = {k: v for k, v in params.items() if f":{k}" in sql}
    with db.engine.connect() as conn:
        rows = list(conn.execute(text(sql), wanted).all())
        conn.commit()  # as the app's reads end (`Database.reading`): a ROLLBACK drops psycopg's prepared statements
        return rows


def run_figure(db: Database, *, figure: str, f: TrendFilters) -> Any:
    return FIGURES[figure](db, f)


def run_load(db: Database, *, actor: Actor, f: TrendFilters) -> Any:
    return trend_service.load(db, actor, f)


def run_all_floors(db: Database, *, params: dict[str, Any]) -> None:
    for figure in FIGURES:
        run_floor(db, figure=figure, params=params)


def utc_today() -> date:
    return datetime.now(UTC).date()
