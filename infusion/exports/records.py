"""Row builders: one chunk of a dataset's main query → identified records, keyed by source column.

A sessions row summarises premedication, rates, reactions, checks, corrections
and addenda; those are fetched with one indexed IN query per chunk (not per
row, not by joining), so memory and round trips stay bounded however large the
export. Every record carries `_reference`, the session time that de-identified
relative minutes are counted from. Mode-specific shaping happens in `shaping`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row, case, func, select

from db.models import Addendum, InfusionSession, Premedication, ProgramCheck, RateChange, Reaction, SessionCorrection
from infusion.clinical import premedication
from infusion.exports import deidentify as deid
from infusion.exports.shaping import ExportContext
from infusion.reads import due_summary

R, PM, RC = Reaction, Premedication, RateChange

#: A chunk of main-query rows → identified records (reading per-chunk summaries on the same connection).
Builder = Callable[[Connection, Sequence[Row[Any]], ExportContext], list[dict[str, Any]]]


def _minutes(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() / 60, 1)


def _phase(moment: datetime, iv_start: datetime | None, iv_stop: datetime | None) -> str:
    if iv_start is None or moment < iv_start:
        return "pre"
    if iv_stop is None or moment < iv_stop:
        return "infusion"
    return "observation"


def _entry_tail(row: Any, staff: dict[int, str]) -> dict[str, Any]:
    return {
        "entered_at": row.entered_at,
        "entered_by_id": row.entered_by_id,
        "entered_by_name": staff.get(row.entered_by_id) if row.entered_by_id is not None else None,
        "corrected": row.replaces_id is not None,
        "correction_reason": row.correction_reason,
        "entered_in_error": row.status == "entered_in_error",
    }


def _premed_coded(p: Any) -> str:
    """One premedication as codes only; a row saved before coding (or by a correction) is coded from its text
    the way the service codes it (exactly a listed drug, a plain dose), else 'other' without a dose."""
    drug_code, value, unit = p.drug_code, p.dose_value, p.dose_unit
    if drug_code is None:
        drug_code = premedication.code_for(p.drug)
    if value is None and unit is None:
        value, unit = premedication.parse_dose(p.dose) or (None, None)
    return premedication.coded_summary(drug_code, value, unit, p.route)


def _site(row: Any, ctx: ExportContext) -> tuple[str | None, ZoneInfo]:
    """The row's site code and the zone its days and times are given in (the first site's when it has none)."""
    site = ctx.sites.get(row.site_id) if row.site_id is not None else None
    return (site.code, site.zone) if site is not None else (None, ctx.tz)


def _patient_name(row: Any) -> str:
    return f"{row.family_name}, {row.given_name}"


def _session_reference(row: Any) -> tuple[datetime | None, str | None]:
    return deid.reference_time(row.iv_started_at, row.checked_in_at, row.scheduled_at)


def session_records(conn: Connection, rows: Sequence[Row[Any]], ctx: ExportContext) -> list[dict[str, Any]]:
    ids = [r.session_id for r in rows]
    premeds: dict[int, list[str]] = defaultdict(list)
    coded: dict[int, list[str]] = defaultdict(list)
    for p in conn.execute(
        select(PM.session_id, PM.drug, PM.dose, PM.route, PM.drug_code, PM.dose_value, PM.dose_unit)
        .where(PM.session_id.in_(ids), PM.status == "active")
        .order_by(PM.session_id, PM.given_at, PM.id)
    ):
        premeds[p.session_id].append(" ".join(part for part in (p.drug, p.dose, p.route) if part))
        coded[p.session_id].append(_premed_coded(p))
    reactions = {
        sid: (count, worst)
        for sid, count, worst in conn.execute(
            select(R.session_id, func.count(), func.max(R.grade))
            .where(R.session_id.in_(ids), R.status == "active")
            .group_by(R.session_id)
        )
    }
    checks = set(conn.scalars(select(ProgramCheck.session_id).where(ProgramCheck.session_id.in_(ids))))
    corrected = set(conn.scalars(select(SessionCorrection.session_id).where(SessionCorrection.session_id.in_(ids))))
    addenda = dict(
        conn.execute(
            select(Addendum.session_id, func.count()).where(Addendum.session_id.in_(ids)).group_by(Addendum.session_id)
        ).all()
    )
    infusing_kinds = ("start", "change", "resume")
    rates = {
        r.session_id: r
        for r in conn.execute(
            select(
                RC.session_id,
                func.max(case((RC.kind == "start", RC.rate_ml_h))).label("start_rate"),
                func.max(case((RC.kind.in_(infusing_kinds), RC.rate_ml_h))).label("max_rate"),
                func.sum(case((RC.kind == "pause", 1), else_=0)).label("pauses"),
            )
            .where(RC.session_id.in_(ids), RC.status == "active")
            .group_by(RC.session_id)
        )
    }

    records = []
    for r in rows:
        reference, label = _session_reference(r)
        site, zone = _site(r, ctx)
        day = r.scheduled_at.astimezone(zone).date()
        end = r.discharged_at or (r.closed_at if r.status == "deferred" else None)
        count, worst = reactions.get(r.session_id, (0, None))
        rate = rates.get(r.session_id)
        records.append(
            {
                "session_id": r.session_id,
                "patient_id": r.patient_id,
                "site": site,
                "mrn": r.mrn,
                "patient_name": _patient_name(r),
                "birth_date": r.birth_date,
                "age_years": deid.age_on(r.birth_date, day),
                "diagnosis": r.diagnosis or None,
                "session_date": day,
                "time_reference": label,
                "therapy_code": r.therapy_code,
                "therapy_name": r.therapy_name,
                "dose": r.dose,
                "dose_unit": r.dose_unit,
                "infusion_number": r.infusion_number,
                "chair_name": r.chair_name,
                "chair_kind": r.chair_kind,
                "nurse_id": r.nurse_id,
                "nurse_name": ctx.staff.get(r.nurse_id) if r.nurse_id is not None else None,
                "status": r.status,
                "walk_in": r.walk_in,
                "scheduled_at": r.scheduled_at,
                "checked_in_at": r.checked_in_at,
                "ready_at": r.ready_at,
                "iv_started_at": r.iv_started_at,
                "iv_stopped_at": r.iv_stopped_at,
                "discharged_at": r.discharged_at,
                "closed_at": r.closed_at,
                "infusion_min": _minutes(r.iv_started_at, r.iv_stopped_at),
                "observation_min": _minutes(r.iv_stopped_at, r.discharged_at),
                "chair_min": _minutes(r.checked_in_at, end),
                "long_infusion": r.long_infusion_flag,
                "deferral_reason": r.deferral_reason,
                "cancel_reason": r.cancel_reason,
                "early_discharge_reason": r.early_discharge_reason,
                "premedication_required": r.premedication_required,
                "premedication_given": "; ".join(premeds.get(r.session_id, ())) or None,
                "premedication_coded": "; ".join(coded.get(r.session_id, ())) or None,
                "premedication_skip_reason": r.premed_override_reason,
                "program": r.program,
                "program_check_done": (r.session_id in checks) if r.program else None,
                "iv_site": r.iv_site,
                "iv_gauge": r.iv_gauge,
                "iv_attempts": r.iv_attempts,
                "lot_number": r.lot_number,
                "start_rate_ml_h": rate.start_rate if rate else None,
                "max_rate_ml_h": rate.max_rate if rate else None,
                "pause_count": int(rate.pauses or 0) if rate else 0,
                "reaction_count": int(count),
                "worst_grade": worst,
                "corrected": r.session_id in corrected,
                "addendum_count": int(addenda.get(r.session_id, 0)),
                "_reference": reference,
                "_tz": zone,
            }
        )
    return records


def vital_records(conn: Connection, rows: Sequence[Row[Any]], ctx: ExportContext) -> list[dict[str, Any]]:
    records = []
    for r in rows:
        reference, label = _session_reference(r)
        site, zone = _site(r, ctx)
        unable = r.unable_to_obtain or {}
        records.append(
            {
                "vital_id": r.vital_id,
                "session_id": r.session_id,
                "patient_id": r.patient_id,
                "site": site,
                "time_reference": label,
                "therapy_code": r.therapy_code,
                "infusion_number": r.infusion_number,
                "taken_at": r.taken_at,
                "phase": r.phase,
                "systolic_mmhg": r.systolic,
                "diastolic_mmhg": r.diastolic,
                "pulse_per_min": r.pulse,
                "resp_rate_per_min": r.resp_rate,
                "temperature_c": r.temperature_c,
                "spo2_pct": r.spo2,
                "pain_score": r.pain,
                "weight_kg": r.weight_kg,
                "consciousness": r.consciousness,
                "on_oxygen": r.on_oxygen,
                "position": r.position,
                "not_obtained": ";".join(unable) or None,
                "not_obtained_reason": "; ".join(f"{k}: {v}" for k, v in unable.items()) or None,
                "flags": ";".join(f.get("code", "") for f in (r.flags or [])) or None,
                "flag_count": r.flag_count,
                "news2": r.news2,
                "news2_complete": r.news2_complete,
                "provider_notified": r.provider_notified,
                "provider_name": r.provider_name,
                "provider_notified_at": r.provider_notified_at,
                "note": r.note,
                **_entry_tail(r, ctx.staff),
                "_reference": reference,
                "_tz": zone,
            }
        )
    return records


def reaction_records(conn: Connection, rows: Sequence[Row[Any]], ctx: ExportContext) -> list[dict[str, Any]]:
    records = []
    for r in rows:
        reference, label = _session_reference(r)
        site, zone = _site(r, ctx)
        records.append(
            {
                "reaction_id": r.reaction_id,
                "session_id": r.session_id,
                "patient_id": r.patient_id,
                "site": site,
                "time_reference": label,
                "therapy_code": r.therapy_code,
                "infusion_number": r.infusion_number,
                "onset_at": r.onset_at,
                "phase": _phase(r.onset_at, r.iv_started_at, r.iv_stopped_at),
                "grade": r.grade,
                "symptoms": ";".join(r.symptoms or []) or None,
                "other_symptom": r.other_text,
                "actions": ";".join(r.actions or []) or None,
                "medication_given": r.medication_given,
                "resolved_at": r.resolved_at,
                "duration_min": _minutes(r.onset_at, r.resolved_at),
                "outcome": "resolved" if r.resolved_at is not None else "ongoing",
                "provider_notified": r.provider_notified,
                "provider_name": r.provider_name,
                "note": r.note,
                **_entry_tail(r, ctx.staff),
                "_reference": reference,
                "_tz": zone,
            }
        )
    return records


def audit_records(conn: Connection, rows: Sequence[Row[Any]], ctx: ExportContext) -> list[dict[str, Any]]:
    records = []
    for r in rows:
        reference, label = _session_reference(r) if r.scheduled_at is not None else (None, None)
        site, zone = _site(r, ctx)
        records.append(
            {
                "audit_id": r.audit_id,
                "event_date": r.at.astimezone(zone).date(),
                "at": r.at,
                "time_reference": label,
                "user_id": r.user_id,
                "user_name": r.user_name,
                "action": r.action,
                "entity": r.entity,
                "entity_id": r.entity_id,
                "session_id": r.session_id,
                "patient_id": r.patient_id,
                "site": site,
                "before": r.before,
                "after": r.after,
                "reason": r.reason,
                "_reference": reference,
                "_tz": zone,
            }
        )
    return records


def _last_given(conn: Connection, rows: Sequence[Row[Any]]) -> dict[due_summary.Pair, datetime]:
    """The last infusion given (IV started, `due_summary.given_in_order`) of each patient × therapy of the chunk."""
    given = due_summary.given_in_order().order_by(None)
    last: dict[due_summary.Pair, datetime] = {}
    for part in due_summary.chunks(sorted({r.patient_id for r in rows})):
        g = given.where(InfusionSession.patient_id.in_(part)).subquery()
        last.update(
            {
                (patient_id, therapy_id): at
                for patient_id, therapy_id, at in conn.execute(
                    select(g.c.patient_id, g.c.therapy_id, func.max(g.c.iv_started_at)).group_by(
                        g.c.patient_id, g.c.therapy_id
                    )
                )
            }
        )
    return last


def course_end_records(conn: Connection, rows: Sequence[Row[Any]], ctx: ExportContext) -> list[dict[str, Any]]:
    """One record per course-end mark; `in_force` is the due list's rule (`due_summary.in_force`) on the marks
    not resumed (at most one per pair), against the pair's last infusion given."""
    open_marks = {(r.patient_id, r.therapy_id): r.ended_at for r in rows if r.resumed_at is None}
    holding = due_summary.in_force(open_marks, _last_given(conn, rows)) if open_marks else set()
    records = []
    for r in rows:
        site, zone = _site(r, ctx)
        records.append(
            {
                "course_end_id": r.course_end_id,
                "patient_id": r.patient_id,
                "site": site,
                "mrn": r.mrn,
                "patient_name": _patient_name(r),
                "therapy_code": r.therapy_code,
                "therapy_name": r.therapy_name,
                "end_reason": r.reason,
                "note": r.note,
                "ended_date": r.ended_at.astimezone(zone).date(),
                "time_reference": "course_end",
                "ended_at": r.ended_at,
                "ended_by_id": r.ended_by_id,
                "ended_by_name": r.ended_by_name,
                "resumed_at": r.resumed_at,
                "resumed_by_id": r.resumed_by_id,
                "resumed_by_name": r.resumed_by_name,
                "resume_reason": r.resume_reason,
                "in_force": r.resumed_at is None and (r.patient_id, r.therapy_id) in holding,
                "_reference": r.ended_at,
                "_tz": zone,
            }
        )
    return records


BUILDERS: dict[str, Builder] = {
    "sessions": session_records,
    "vitals": vital_records,
    "reactions": reaction_records,
    "audit": audit_records,
    "course_ends": course_end_records,
}
