"""Data-completeness checks (issue 3): sessions whose record is missing what the Trends rely on.

Missing IV stop, missing check-in vitals and vitals overdue during the
infusion; exact counts per check plus the flagged sessions to follow up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, Float, case, cast, exists, func, literal, null, or_, select, union_all
from sqlalchemy.orm import Session

from db.engine import Database
from db.models import Chair, InfusionSession, Patient, VitalSign
from infusion.reads.trends.catalog import _catalog
from infusion.reads.trends.filters import TrendFilters, _fetch, _frame, _site_days, _site_zones, _where
from infusion.reads.trends.sql import epoch_seconds

S = InfusionSession

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
        zones = _site_zones(s, f)
        catalog = _catalog(s)
        conds = [*_site_days(s, f, zones), *_where(f, None, None)]
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

        return completeness_report(s, counts, listed, zones, catalog)


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


def _gap_rows(s: Session, session_ids: list[int]) -> list[tuple[int, float | None]]:
    """(session, gap in minutes) for each step IV start → active vitals during the infusion → IV stop
    of these sessions (the same LAG as `completeness`; the summary path lists late intervals with it)."""
    base = (
        select(S.id.label("sid"), S.iv_started_at.label("t0"), S.iv_stopped_at.label("t1"))
        .where(S.id.in_(session_ids), S.iv_started_at.is_not(None), S.iv_stopped_at.is_not(None))
        .cte("infused")
    )
    events = union_all(
        select(base.c.sid, epoch_seconds(base.c.t0).label("e")),
        select(base.c.sid, epoch_seconds(VitalSign.taken_at))
        .join(VitalSign, VitalSign.session_id == base.c.sid)
        .where(VitalSign.status == "active", VitalSign.taken_at >= base.c.t0, VitalSign.taken_at <= base.c.t1),
        select(base.c.sid, epoch_seconds(base.c.t1)),
    ).subquery("events")
    previous = func.lag(events.c.e).over(partition_by=events.c.sid, order_by=events.c.e)
    q = select(events.c.sid, ((events.c.e - previous) / 60.0).label("gap"))
    return [(int(sid), None if gap is None else float(gap)) for sid, gap in _fetch(s, q)]


def completeness_report(
    s: Session,
    counts: list[tuple[str, int, int]],
    listed: list[tuple[str, int, float | None, str]],
    zones: dict[int, str],
    catalog: dict[int, Any],
) -> CompletenessReport:
    """The report both paths return (raw rows and summaries): counts with their share, and the listed
    sessions named with patient, therapy and chair (one query for the few sessions listed), each dated
    on its own site's local day (`zones`: site id → time zone; a site not in it counts in UTC)."""
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
                Chair.site_id,
            )
            .join(Patient, Patient.id == S.patient_id)
            .join(Chair, Chair.id == S.chair_id)
            .where(S.id.in_(ids))
        )
        info = {r[0]: tuple(r[1:]) for r in s.execute(q)}

    zone_of = {site: ZoneInfo(tz) for site, tz in zones.items()}
    count_frame = _frame(
        ((c, CHECK_LABELS[c], n, k) for c, n, k in counts),
        ("check", "label", "checked", "flagged"),
        {"checked": "int64", "flagged": "int64"},
    )
    count_frame["share"] = [k / n if n else np.nan for n, k in zip(count_frame["checked"], count_frame["flagged"])]
    records = []
    for check, sid, gap, detail in listed:
        checked_in, family, given, mrn, tid, chair, status, site = info[sid]
        zone = zone_of.get(site, ZoneInfo("UTC"))
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
