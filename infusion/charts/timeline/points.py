"""The point list: every plotted thing of one session (phases, rate log, plan, forecast, vitals, reactions).

The figure and the CSV frame are both built from it, so the CSV holds exactly what is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from infusion.charts.palette import GRADE_WORDS
from infusion.charts.timeline.forecast import session_forecast, session_plan
from infusion.charts.timeline.style import INACTIVE_LABELS, VITAL_SERIES
from infusion.clinical.reactions import ACTIONS, SYMPTOMS
from infusion.clinical.units import temperature_for_display
from infusion.clock import format_local, format_minutes
from infusion.reads.sessions import SessionDetail


@dataclass(frozen=True)
class Point:
    """One plotted thing; the frame is these, minus the hover text."""

    time: datetime  # aware UTC
    series: str
    value: float | None
    unit: str
    status: str  # active / corrected / entered_in_error / plan / forecast / phase
    flags: str = ""
    entered_by: str = ""
    entered_at: datetime | None = None
    late_entry: bool = False
    correction: bool = False  # this row replaces an earlier (corrected) one
    detail: str = ""
    end: datetime | None = None
    hover: str = ""
    grade: int | None = None


def _late(detail: SessionDetail, entry: Any, clinical_at: datetime) -> bool:
    """Entered more than the clinic's late-entry minutes after the time it records (docs/clinical-basis.md §12).

    A correction is always entered after the fact; it is marked as a correction, not as late
    (as in views.vitals_table).
    """
    if entry.replaces_id is not None:
        return False
    return entry.entered_at - clinical_at > timedelta(minutes=detail.settings.late_entry_minutes)


def _entered(detail: SessionDetail, who_id: int | None, entered_at: datetime, late: bool) -> str:
    text = f"entered by {detail.who(who_id)} at {format_local(entered_at, detail.clinic.timezone)}"
    return text + (" — <b>late entry</b>" if late else "")


def _status_text(detail: SessionDetail, entry: Any, entries: list[Any]) -> str:
    """'corrected by …: reason' (the reason lives on the replacing row), 'entered in error: reason',
    or, on the replacing row itself, 'correction of an earlier entry: reason'."""
    if entry.status == "active":
        if entry.replaces_id is None:
            return ""
        return "<br><b>correction</b> of an earlier entry" + (
            f": {entry.correction_reason}" if entry.correction_reason else ""
        )
    text = f"<br><b>{INACTIVE_LABELS[entry.status]}</b>"
    if entry.status == "corrected":
        newer = next((e for e in entries if e.replaces_id == entry.id), None)
        if newer is not None:
            text += f" by {detail.who(newer.entered_by_id)} at {format_local(newer.entered_at, detail.clinic.timezone)}"
            entry = newer
    return text + (f": {entry.correction_reason}" if entry.correction_reason else "")


def _phase_points(detail: SessionDetail, now: datetime) -> list[Point]:
    """Bands from the session times and the active rate log (pause → resume)."""
    row, tz = detail.session, detail.clinic.timezone
    until = row.discharged_at or row.closed_at or now
    bands: list[tuple[str, datetime, datetime]] = []
    if row.checked_in_at is not None:
        premeds = sorted(
            p.given_at
            for p in detail.premeds
            if p.status == "active"
            and p.given_at >= row.checked_in_at
            and (row.iv_started_at is None or p.given_at < row.iv_started_at)
        )
        before_iv = row.iv_started_at or until
        bands.append(("Check-in", row.checked_in_at, premeds[0] if premeds else before_iv))
        if premeds:
            bands.append(("Premedication", premeds[0], before_iv))
    if row.iv_started_at is not None:
        infusion_end = row.iv_stopped_at or until
        t, paused_from = row.iv_started_at, None
        for r in sorted((r for r in detail.rates if r.status == "active"), key=lambda r: r.at):
            if r.at > infusion_end:
                break
            if r.kind == "pause" and paused_from is None:
                bands.append(("Infusing", t, r.at))
                paused_from = r.at
            elif r.kind == "resume" and paused_from is not None:
                bands.append(("Paused", paused_from, r.at))
                t, paused_from = r.at, None
        bands.append(("Paused", paused_from, infusion_end) if paused_from else ("Infusing", t, infusion_end))
    if row.iv_stopped_at is not None:
        bands.append(("Observation", row.iv_stopped_at, row.discharged_at or now))
    points = [
        Point(
            a,
            "phase",
            (b - a).total_seconds() / 60,
            "min",
            "phase",
            detail=label,
            end=b,
            hover=f"<b>{label}</b><br>{format_local(a, tz)}–{format_local(b, tz)} "
            f"({format_minutes((b - a).total_seconds() / 60)})",
        )
        for label, a, b in bands
        if b > a
    ]
    if detail.observation_ends_at is not None and row.iv_stopped_at is not None and detail.observation_minutes:
        points.append(
            Point(
                detail.observation_ends_at,
                "phase",
                None,
                "",
                "phase",
                detail="Observation ends",
                hover=f"<b>Observation ends</b> {format_local(detail.observation_ends_at, tz)}<br>"
                f"{detail.observation_minutes} min after IV stop",
            )
        )
    if row.discharged_at is not None:
        text = "Discharged" + (f" early: {row.early_discharge_reason}" if row.early_discharge_reason else "")
        points.append(
            Point(
                row.discharged_at,
                "phase",
                None,
                "",
                "phase",
                detail="Discharged",
                hover=f"<b>{text}</b><br>{format_local(row.discharged_at, tz)}",
            )
        )
    elif row.status in ("deferred", "cancelled") and row.closed_at is not None:
        reason = row.deferral_reason or row.cancel_reason or ""
        points.append(
            Point(
                row.closed_at,
                "phase",
                None,
                "",
                "phase",
                detail=row.status.capitalize(),
                hover=f"<b>{row.status.capitalize()}</b> {format_local(row.closed_at, tz)}<br>{reason}",
            )
        )
    return points


def _vital_points(detail: SessionDetail) -> list[Point]:
    tz, unit_t = detail.clinic.timezone, detail.clinic.temperature_unit
    units = {
        "systolic": "mmHg",
        "diastolic": "mmHg",
        "pulse": "/min",
        "temperature_c": f"°{unit_t}",
        "spo2": "%",
        "resp_rate": "/min",
    }
    points: list[Point] = []
    for v in detail.vitals:
        late = _late(detail, v, v.taken_at)
        entered = _entered(detail, v.entered_by_id, v.entered_at, late)
        news2_three = any(f.get("code") == "news2_single_3" for f in v.flags)
        for s in VITAL_SERIES:
            raw = getattr(v, s.key)
            if raw is None:
                continue
            value = temperature_for_display(raw, unit_t) if s.key == "temperature_c" else float(raw)
            messages = [f["message"] for f in v.flags if f.get("field") in s.flag_fields]
            if news2_three and s.news2_scorer is not None and s.news2_scorer(raw) == 3:
                messages.append(f"NEWS2 scores 3 for {s.label.lower()}")
            flags = "; ".join(messages) if v.status == "active" else ""
            if s.key in ("systolic", "diastolic"):
                shown = f"BP {v.systolic}/{v.diastolic} mmHg" if v.systolic and v.diastolic else f"{s.label} {raw}"
            else:
                shown = f"{s.label} {value:g} {units[s.key]}"
            hover = (
                f"<b>{shown}</b><br>taken {format_local(v.taken_at, tz)} · {entered}"
                + (f"<br>🚩 {flags}" if flags else "")
                + _status_text(detail, v, detail.vitals)
            )
            points.append(
                Point(
                    v.taken_at,
                    s.key,
                    value,
                    units[s.key],
                    v.status,
                    flags=flags,
                    entered_by=detail.who(v.entered_by_id),
                    entered_at=v.entered_at,
                    late_entry=late,
                    correction=v.replaces_id is not None,
                    detail=v.phase,
                    hover=hover,
                )
            )
    return points


def _rate_points(detail: SessionDetail, now: datetime) -> list[Point]:
    """The actual rate log (pause and stop at 0), the plan from IV start, and the forecast from now."""
    row, tz = detail.session, detail.clinic.timezone
    labels = {"start": "IV start", "change": "Rate change", "pause": "Pause", "resume": "Resume", "stop": "IV stop"}
    points: list[Point] = []
    for r in detail.rates:
        value = 0.0 if r.kind in ("pause", "stop") else float(r.rate_ml_h or 0.0)
        late = _late(detail, r, r.at)
        hover = (
            f"<b>{labels[r.kind]}: {value:g} mL/h</b><br>at {format_local(r.at, tz)} · "
            f"{_entered(detail, r.entered_by_id, r.entered_at, late)}"
            + (f"<br>{r.note}" if r.note else "")
            + _status_text(detail, r, detail.rates)
        )
        points.append(
            Point(
                r.at,
                "rate",
                value,
                "mL/h",
                r.status,
                entered_by=detail.who(r.entered_by_id),
                entered_at=r.entered_at,
                late_entry=late,
                correction=r.replaces_id is not None,
                detail=r.kind,
                hover=hover,
            )
        )
    if row.iv_started_at is None:
        return points
    steps = session_plan(detail)
    if steps and steps[0].unit == "mL/h":
        for s in steps:
            if s.offset_minutes is None:  # IVIG ceiling: no planned time (no label gives a step size)
                points.append(
                    Point(
                        row.iv_started_at,
                        "planned_max",
                        s.rate,
                        s.unit,
                        "plan",
                        detail="maximum; no planned time (docs/clinical-basis.md §3 gives no step size)",
                        hover=f"<b>Plan maximum {s.rate:g} mL/h</b><br>increase every 30 min as "
                        "tolerated; no label gives a step size",
                    )
                )
                continue
            at = row.iv_started_at + timedelta(seconds=round(s.offset_minutes * 60))
            what = "planned end (bag given)" if s.rate == 0 else f"planned {s.rate:g} mL/h"
            points.append(
                Point(
                    at,
                    "planned_rate",
                    s.rate,
                    s.unit,
                    "plan",
                    detail=what,
                    hover=f"<b>{what.capitalize()}</b><br>{format_local(at, tz)} "
                    f"(+{format_minutes(s.offset_minutes)} from IV start)",
                )
            )
    if row.status == "infusing":
        f = session_forecast(detail, now)
        if f.unit == "mL/h" and f.current_rate and (f.upcoming or f.expected_end):
            chain = [(now, f.current_rate), *f.upcoming] + ([(f.expected_end, 0.0)] if f.expected_end else [])
            for at, rate in chain:
                what = "expected end" if rate == 0 else f"forecast {rate:g} mL/h"
                points.append(
                    Point(
                        at,
                        "forecast_rate",
                        rate,
                        "mL/h",
                        "forecast",
                        detail=what,
                        hover=f"<b>{what.capitalize()}</b> at {format_local(at, tz)}<br>{f.note}",
                    )
                )
    return points


def _reaction_points(detail: SessionDetail) -> list[Point]:
    tz = detail.clinic.timezone
    points: list[Point] = []
    for r in detail.reactions:
        late = _late(detail, r, r.onset_at)
        symptoms = ", ".join(SYMPTOMS.get(x, x) for x in r.symptoms) + (f" ({r.other_text})" if r.other_text else "")
        actions = ", ".join(ACTIONS.get(x, x) for x in r.actions) + (
            f": {r.medication_given}" if r.medication_given else ""
        )
        if r.resolved_at is not None:
            span = (
                f"onset {format_local(r.onset_at, tz)} → resolved {format_local(r.resolved_at, tz)} "
                f"({format_minutes((r.resolved_at - r.onset_at).total_seconds() / 60)})"
            )
        else:
            span = f"onset {format_local(r.onset_at, tz)} → <b>open</b>"
        hover = (
            f"<b>Reaction G{r.grade} ({GRADE_WORDS[r.grade]})</b><br>Symptoms: {symptoms}<br>"
            f"Actions: {actions}<br>{span}"
            + (f"<br>Provider notified: {r.provider_name}" if r.provider_name else "")
            + (f"<br>{r.note}" if r.note else "")
            + f"<br>{_entered(detail, r.entered_by_id, r.entered_at, late)}"
            + _status_text(detail, r, detail.reactions)
        )
        points.append(
            Point(
                r.onset_at,
                "reaction",
                float(r.grade),
                "CTCAE grade",
                r.status,
                entered_by=detail.who(r.entered_by_id),
                entered_at=r.entered_at,
                late_entry=late,
                correction=r.replaces_id is not None,
                detail=f"Symptoms: {symptoms}; actions: {actions}",
                end=r.resolved_at,
                hover=hover,
                grade=r.grade,
            )
        )
    return points


def all_points(detail: SessionDetail, now: datetime) -> list[Point]:
    return _phase_points(detail, now) + _rate_points(detail, now) + _vital_points(detail) + _reaction_points(detail)
