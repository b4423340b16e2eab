"""One session on one time axis (design.md "Session timeline"): phases, rate, vitals, reactions.

The figure is built from the same point list as `timeline_frame`, so the CSV
beside the figure holds exactly what is drawn. One figure with subplots and
SVG `go.Scatter` traces (engineering.md §3): a session has tens of points, and
WebGL contexts are limited per page. No Streamlit here; pages only draw.

Rows, top to bottom: phases (bands) with reaction markers above them; infusion
rate (actual step line, planned steps dashed, forecast dotted); BP; pulse;
temperature (clinic unit); SpO2; respiration. SpO2 and respiration get a row
each, not one shared row as design.md sketches, because their scales (90–100 %
vs 10–30 /min) and thresholds differ. Corrected and entered-in-error entries
are drawn as hollow grey markers, never dropped; colour is never the only
signal (labels, symbols and hover text carry the same information).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from infusion.charts.palette import GRADE_COLOURS, GRADE_WORDS, STATUS_COLOURS
from infusion.clinical.news2 import score_pulse, score_resp_rate, score_spo2_scale1, score_systolic, score_temperature
from infusion.clinical.reactions import ACTIONS, SYMPTOMS
from infusion.clinical.titration import Forecast, Step, forecast, planned_steps
from infusion.clinical.units import temperature_for_display
from infusion.clock import format_local, format_minutes, utcnow
from infusion.reads.sessions import SessionDetail

# ------------------------------------------------------------------ visual language (design.md)

#: Phase bands. design.md has no status for premedication (it happens while checked in),
#: so it gets a lighter shade of the checked-in blue.
PHASE_COLOURS = {
    "Check-in": STATUS_COLOURS["checked_in"],
    "Premedication": "#93c5fd",
    "Infusing": STATUS_COLOURS["infusing"],
    "Paused": STATUS_COLOURS["paused"],
    "Observation": STATUS_COLOURS["observation"],
    "Discharged": STATUS_COLOURS["discharged"],
}
LIGHT_PHASES = ("Premedication", "Paused")  # dark label text on these fills
FLAG_RED = "#dc2626"
INACTIVE_GREY = "#9ca3af"
THRESHOLD_FILL = "rgba(220, 38, 38, 0.10)"
INACTIVE_SYMBOLS = {"corrected": "circle-open", "entered_in_error": "x-open"}
INACTIVE_LABELS = {"corrected": "corrected", "entered_in_error": "entered in error"}

ROWS = ("phases", "rate", "bp", "pulse", "temperature", "spo2", "resp_rate")
ROW_HEIGHTS = (0.11, 0.19, 0.17, 0.14, 0.13, 0.13, 0.13)
REACTION_Y = 1.55  # reaction markers sit above the phase bands (0–1) in the phases row


@dataclass(frozen=True)
class _Series:
    key: str  # column on VitalSign
    label: str
    row: str
    colour: str
    symbol: str
    flag_fields: tuple[str, ...]  # Flag.field values that flag this series
    news2_scorer: Any = None  # the NEWS2 single-parameter scorer, for "NEWS2 single parameter = 3" flags


def _vital_series() -> tuple[_Series, ...]:
    return (
        _Series("systolic", "Systolic BP", "bp", "#1d4ed8", "triangle-down", ("systolic",), score_systolic),
        _Series("diastolic", "Diastolic BP", "bp", "#1d4ed8", "triangle-up", ("diastolic",)),
        _Series("pulse", "Pulse", "pulse", "#0f766e", "circle", ("pulse",), score_pulse),
        _Series(
            "temperature_c", "Temperature", "temperature", "#b45309", "circle", ("temperature_c",), score_temperature
        ),
        _Series("spo2", "SpO2", "spo2", "#0369a1", "circle", ("spo2",), score_spo2_scale1),
        _Series("resp_rate", "Respiration", "resp_rate", "#4d7c0f", "circle", ("resp_rate",), score_resp_rate),
    )


VITAL_SERIES = _vital_series()


@dataclass(frozen=True)
class _Point:
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


# ------------------------------------------------------------------ data


def _weight_kg(detail: SessionDetail) -> float | None:
    """The latest weight measured in this session, else the patient's recorded weight."""
    measured = [v for v in detail.vitals if v.status == "active" and v.weight_kg]
    return measured[-1].weight_kg if measured else detail.patient.weight_kg


def session_plan(detail: SessionDetail) -> list[Step]:
    """The therapy's planned titration steps for this session (titration.planned_steps)."""
    row = detail.session
    return planned_steps(
        detail.therapy.rate_plan, infusion_number=row.infusion_number, dose=row.dose, weight_kg=_weight_kg(detail)
    )


def session_forecast(detail: SessionDetail, now: datetime | None = None) -> Forecast:
    """Next rate step and expected end for this session, from its active rate log (for the Chairside header)."""
    row = detail.session
    log = [(r.at, r.kind, r.rate_ml_h) for r in detail.rates if r.status == "active"]
    return forecast(
        detail.therapy.rate_plan,
        infusion_number=row.infusion_number,
        dose=row.dose,
        weight_kg=_weight_kg(detail),
        iv_started_at=row.iv_started_at,
        rate_log=log,
        now=now or utcnow(),
        tz=detail.clinic.timezone,
    )


def _late(detail: SessionDetail, entry: Any, clinical_at: datetime) -> bool:
    """Entered more than the clinic's late-entry minutes after the time it records (clinical.md §6b).

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


def _phase_points(detail: SessionDetail, now: datetime) -> list[_Point]:
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
        _Point(
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
            _Point(
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
            _Point(
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
            _Point(
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


def _vital_points(detail: SessionDetail) -> list[_Point]:
    tz, unit_t = detail.clinic.timezone, detail.clinic.temperature_unit
    units = {
        "systolic": "mmHg",
        "diastolic": "mmHg",
        "pulse": "/min",
        "temperature_c": f"°{unit_t}",
        "spo2": "%",
        "resp_rate": "/min",
    }
    points: list[_Point] = []
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
                _Point(
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


def _rate_points(detail: SessionDetail, now: datetime) -> list[_Point]:
    """The actual rate log (pause and stop at 0), the plan from IV start, and the forecast from now."""
    row, tz = detail.session, detail.clinic.timezone
    labels = {"start": "IV start", "change": "Rate change", "pause": "Pause", "resume": "Resume", "stop": "IV stop"}
    points: list[_Point] = []
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
            _Point(
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
            if s.offset_minutes is None:  # IVIG ceiling: no planned time (clinical.md gives no step size)
                points.append(
                    _Point(
                        row.iv_started_at,
                        "planned_max",
                        s.rate,
                        s.unit,
                        "plan",
                        detail="maximum; no planned time (clinical.md §1b gives no step size)",
                        hover=f"<b>Plan maximum {s.rate:g} mL/h</b><br>increase every 30 min as "
                        "tolerated; clinical.md gives no step size",
                    )
                )
                continue
            at = row.iv_started_at + timedelta(seconds=round(s.offset_minutes * 60))
            what = "planned end (bag given)" if s.rate == 0 else f"planned {s.rate:g} mL/h"
            points.append(
                _Point(
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
                    _Point(
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


def _reaction_points(detail: SessionDetail) -> list[_Point]:
    tz = detail.clinic.timezone
    points: list[_Point] = []
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
            _Point(
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


def _points(detail: SessionDetail, now: datetime) -> list[_Point]:
    return _phase_points(detail, now) + _rate_points(detail, now) + _vital_points(detail) + _reaction_points(detail)


FRAME_COLUMNS = [
    "time",
    "end",
    "series",
    "value",
    "unit",
    "status",
    "flags",
    "late_entry",
    "correction",
    "entered_by",
    "entered_at",
    "detail",
]


def timeline_frame(detail: SessionDetail, now: datetime | None = None) -> pd.DataFrame:
    """Every plotted point (phases, rates, plan, forecast, vitals in display units, reactions) for the CSV.

    Times are in the clinic's time zone; corrected and entered-in-error rows
    are included with their status, as they are in the figure.
    """
    tz = ZoneInfo(detail.clinic.timezone)
    local = lambda t: t.astimezone(tz) if t is not None else None  # noqa: E731
    records = [
        {
            "time": local(p.time),
            "end": local(p.end),
            "series": p.series,
            "value": p.value,
            "unit": p.unit,
            "status": p.status,
            "flags": p.flags,
            "late_entry": p.late_entry,
            "correction": p.correction,
            "entered_by": p.entered_by,
            "entered_at": local(p.entered_at),
            "detail": p.detail,
        }
        for p in _points(detail, now or utcnow())
    ]
    frame = pd.DataFrame.from_records(records, columns=FRAME_COLUMNS)
    for column in ("time", "end", "entered_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True).dt.tz_convert(tz)
    frame["value"] = frame["value"].astype("float64")
    frame[["late_entry", "correction"]] = frame[["late_entry", "correction"]].astype(bool)
    return frame.sort_values(["series", "time"], kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------ figure


def _row_of(name: str) -> int:
    return ROWS.index(name) + 1


def _axis(kind: str, row: int) -> str:
    return kind if row == 1 else f"{kind}{row}"


def _range(values: list[float], low: float, high: float, pad: float) -> list[float]:
    """A fixed clinical range widened to the data, so threshold bands always show."""
    if values:
        low, high = min(low, min(values) - pad), max(high, max(values) + pad)
    return [low, high]


def _shade(
    shapes: list[dict[str, Any]],
    notes: list[dict[str, Any]],
    row: int,
    y0: float,
    y1: float,
    label: str,
    *,
    at_top: bool,
) -> None:
    """An alert band (clinic threshold) with its rule written on it, not colour alone."""
    shapes.append(
        dict(
            type="rect",
            xref=f"{_axis('x', row)} domain",
            x0=0,
            x1=1,
            yref=_axis("y", row),
            y0=y0,
            y1=y1,
            fillcolor=THRESHOLD_FILL,
            line=dict(width=0),
            layer="below",
            name=f"threshold: {label}",
        )
    )
    notes.append(
        dict(
            x=0.005,
            y=y1 if at_top else y0,
            xref=f"{_axis('x', row)} domain",
            yref=_axis("y", row),
            text=label,
            showarrow=False,
            xanchor="left",
            yanchor="top" if at_top else "bottom",
            font=dict(size=10, color="#991b1b"),
        )
    )


def session_timeline(detail: SessionDetail, now: datetime | None = None) -> go.Figure:
    """The session on one clinic-time axis: phases, rate, BP, pulse, temperature, SpO2, respiration, reactions."""
    now = now or utcnow()
    tz = ZoneInfo(detail.clinic.timezone)
    x = lambda t: t.astimezone(tz).replace(tzinfo=None)  # noqa: E731  (wall-clock time in the clinic)
    points = _points(detail, now)
    row, thresholds, unit_t = detail.session, detail.settings.thresholds, detail.clinic.temperature_unit
    unit_label = f"°{unit_t}"
    titles = (
        "Phase · reactions",
        "Rate mL/h",
        "BP mmHg",
        "Pulse /min",
        f"Temperature {unit_label}",
        "SpO2 %",
        "Respiration /min",
    )
    fig = make_subplots(rows=len(ROWS), cols=1, shared_xaxes=True, vertical_spacing=0.03, row_heights=list(ROW_HEIGHTS))

    # Shapes and annotations are collected and set once: plotly re-validates the whole list on
    # every add_hrect/add_vline, which made a figure take seconds.
    shapes: list[dict[str, Any]] = []
    # row titles, small and left-aligned above each row so seven rows stay readable
    notes: list[dict[str, Any]] = [
        dict(
            text=title,
            x=0,
            y=1,
            xref=f"{_axis('x', i)} domain",
            yref=f"{_axis('y', i)} domain",
            xanchor="left",
            yanchor="bottom",
            showarrow=False,
            font=dict(size=12),
            name="row title",
        )
        for i, title in enumerate(titles, start=1)
    ]

    def add(trace: go.Scatter, name: str) -> None:
        fig.add_trace(trace, row=_row_of(name), col=1)

    # the visible span: the session, now while it is open, 10 min either side
    times = [p.time for p in points] + [q.end for q in points if q.end is not None]
    if row.status in ("checked_in", "ready", "infusing", "paused", "observation"):
        times.append(now)
    span = (max(times) - min(times)) if times else timedelta(0)

    # ---- phases: filled bands with their names written on them (below the band when it is too narrow)
    phase_row = _row_of("phases")
    bands = [p for p in points if p.series == "phase" and p.end is not None]
    for p in bands:
        a, b = x(p.time), x(p.end)
        add(
            go.Scatter(
                x=[a, b, b, a, a],
                y=[0, 0, 1, 1, 0],
                fill="toself",
                mode="lines",
                fillcolor=PHASE_COLOURS.get(p.detail, INACTIVE_GREY),
                line=dict(width=0.5, color="white"),
                hoveron="fills",
                hoverinfo="text",
                text=p.hover,
                name=p.detail,
                legendgroup="phase",
                showlegend=False,
                meta={"role": "phase", "phase": p.detail},
            ),
            "phases",
        )
    if bands:
        narrow = [p.end - p.time < span * 0.08 for p in bands]  # type: ignore[operator]
        add(
            go.Scatter(
                x=[x(p.time + (p.end - p.time) / 2) for p in bands],  # type: ignore[operator]
                y=[(-0.3 if i % 2 == 0 else -0.72) if n else 0.5 for i, n in enumerate(narrow)],
                mode="text",
                text=[p.detail for p in bands],
                textfont=dict(
                    size=[10 if n else 11 for n in narrow],
                    color=["#111827" if n or p.detail in LIGHT_PHASES else "white" for n, p in zip(narrow, bands)],
                ),
                hoverinfo="skip",
                showlegend=False,
                name="Phase labels",
                meta={"role": "phase_labels"},
            ),
            "phases",
        )
    marks = [p for p in points if p.series == "phase" and p.end is None]
    for p in marks:
        obs_end = p.detail == "Observation ends"  # below the band, so it does not cover the discharge mark
        add(
            go.Scatter(
                x=[x(p.time)],
                y=[-0.5 if obs_end else 0.5],
                mode="markers+text",
                text=[p.detail],
                textposition="middle right",
                textfont=dict(size=10 if obs_end else 11),
                marker=dict(
                    symbol="line-ns",
                    size=14 if obs_end else 22,
                    line=dict(
                        width=2 if obs_end else 3, color=STATUS_COLOURS["observation" if obs_end else "discharged"]
                    ),
                ),
                hovertext=[p.hover],
                hoverinfo="text",
                name=p.detail,
                showlegend=False,
                meta={"role": "phase_mark", "phase": p.detail},
            ),
            "phases",
        )

    # ---- reactions: a grade-coloured marker labelled "G2" above the bands, a line to resolution,
    #      and a vertical line through every row at onset
    for p in (p for p in points if p.series == "reaction"):
        grade = p.grade or 1
        if p.status == "active":
            colour = GRADE_COLOURS[grade]
            end = p.end or now
            # across every row (the x axes are matched, so one paper-high shape covers them all)
            shapes.append(
                dict(
                    type="rect",
                    xref="x",
                    x0=x(p.time),
                    x1=x(max(end, p.time + timedelta(minutes=1))),
                    yref="paper",
                    y0=0,
                    y1=1,
                    fillcolor=colour,
                    opacity=0.10,
                    line=dict(width=0),
                    layer="below",
                    name=f"reaction G{grade} duration",
                )
            )
            shapes.append(
                dict(
                    type="line",
                    xref="x",
                    x0=x(p.time),
                    x1=x(p.time),
                    yref="paper",
                    y0=0,
                    y1=1,
                    line=dict(color=colour, width=1.5, dash="dot"),
                    name=f"reaction G{grade} onset",
                )
            )
            add(
                go.Scatter(
                    x=[x(p.time), x(end)],
                    y=[REACTION_Y, REACTION_Y],
                    mode="lines",
                    line=dict(color=colour, width=3),
                    hoverinfo="skip",
                    showlegend=False,
                    name=f"Reaction G{grade} duration",
                    meta={"role": "reaction_span"},
                ),
                "phases",
            )
            add(
                go.Scatter(
                    x=[x(p.time)],
                    y=[REACTION_Y],
                    mode="markers+text",
                    text=[f"G{grade}"],
                    textposition="middle right",
                    textfont=dict(size=12, color="#111827"),
                    marker=dict(symbol="star", size=16, color=colour, line=dict(color="#111827", width=1)),
                    hovertext=[p.hover],
                    hoverinfo="text",
                    name=f"Reaction G{grade}",
                    legendgroup="reaction",
                    showlegend=False,
                    meta={"role": "reaction", "grade": grade, "status": p.status},
                ),
                "phases",
            )
        else:
            label = INACTIVE_LABELS[p.status]
            add(
                go.Scatter(
                    x=[x(p.time)],
                    y=[REACTION_Y],
                    mode="markers+text",
                    text=[f"G{grade} ({label})"],
                    textposition="middle right",
                    textfont=dict(size=10, color=INACTIVE_GREY),
                    marker=dict(symbol="star-open", size=14, color=INACTIVE_GREY),
                    hovertext=[p.hover],
                    hoverinfo="text",
                    name=f"Reaction ({label})",
                    showlegend=False,
                    meta={"role": "reaction", "grade": grade, "status": p.status},
                ),
                "phases",
            )

    # ---- rate: actual step line to now, planned steps dashed, forecast dotted
    rate_row = _row_of("rate")
    actual = sorted((p for p in points if p.series == "rate" and p.status == "active"), key=lambda p: p.time)
    if actual:
        xs, ys = [x(p.time) for p in actual], [p.value for p in actual]
        hovers = [p.hover for p in actual]
        if actual[-1].detail != "stop" and row.status in ("infusing", "paused") and now > actual[-1].time:
            xs.append(x(now))  # the current rate runs on to now
            ys.append(ys[-1])
            hovers.append(f"now: {ys[-1]:g} mL/h")
        add(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines+markers",
                line_shape="hv",
                name="Rate",
                line=dict(color=STATUS_COLOURS["infusing"], width=2.5),
                marker=dict(
                    size=7,
                    symbol=["circle-dot" if p.late_entry else "circle" for p in actual]
                    + ["circle"] * (len(xs) - len(actual)),
                ),
                hovertext=hovers,
                hoverinfo="text",
                meta={"role": "rate"},
            ),
            "rate",
        )
    planned = [p for p in points if p.series == "planned_rate"]
    if planned:
        single = len(planned) == 1  # IVIG: only the start rate has a planned time
        add(
            go.Scatter(
                x=[x(p.time) for p in planned],
                y=[p.value for p in planned],
                mode="markers+text" if single else "lines",
                text=["planned start"] if single else None,
                textposition="top right",
                marker=dict(symbol="line-ew-open", size=14, color="#374151"),
                line_shape="hv",
                line=dict(color="#374151", width=1.5, dash="dash"),
                name="Planned rate",
                hovertext=[p.hover for p in planned],
                hoverinfo="text",
                meta={"role": "planned_rate"},
            ),
            "rate",
        )
    ceiling = [p for p in points if p.series == "planned_max"]
    for p in ceiling:
        right = max([now, *(q.time for q in points if q.series in ("rate", "phase"))])
        add(
            go.Scatter(
                x=[x(p.time), x(right)],
                y=[p.value, p.value],
                mode="lines+text",
                text=["", f"plan max {p.value:g} mL/h"],
                textposition="top left",
                line=dict(color="#374151", width=1, dash="dot"),
                name="Plan maximum",
                hovertext=[p.hover, p.hover],
                hoverinfo="text",
                meta={"role": "planned_max"},
            ),
            "rate",
        )
    ahead = [p for p in points if p.series == "forecast_rate"]
    if ahead:
        add(
            go.Scatter(
                x=[x(p.time) for p in ahead],
                y=[p.value for p in ahead],
                mode="lines+markers",
                line_shape="hv",
                line=dict(color=STATUS_COLOURS["infusing"], width=1.5, dash="dot"),
                marker=dict(size=5),
                name="Forecast",
                hovertext=[p.hover for p in ahead],
                hoverinfo="text",
                meta={"role": "forecast_rate"},
            ),
            "rate",
        )
    steps = session_plan(detail) if row.iv_started_at else []
    if steps and steps[0].unit != "mL/h":
        notes.append(
            dict(
                x=0.99,
                y=0.95,
                xref=f"{_axis('x', rate_row)} domain",
                yref=f"{_axis('y', rate_row)} domain",
                text=f"Plan in {steps[0].unit} not drawn: the rate log is in mL/h and no concentration is recorded",
                showarrow=False,
                xanchor="right",
                yanchor="top",
                font=dict(size=10, color="#374151"),
            )
        )
    rate_values = [
        p.value
        for p in points
        if p.series in ("rate", "planned_rate", "planned_max", "forecast_rate") and p.value is not None
    ]
    fig.update_yaxes(range=[0, max([*rate_values, 50.0]) * 1.15], row=rate_row, col=1)
    _inactive(fig, points, "rate", "rate", x)

    # ---- vitals
    for s in VITAL_SERIES:
        active = [p for p in points if p.series == s.key and p.status == "active"]
        add(
            go.Scatter(
                x=[x(p.time) for p in active],
                y=[p.value for p in active],
                mode="markers" if s.row == "bp" else "lines+markers",
                name=s.label,
                line=dict(color=s.colour, width=1.5),
                marker=dict(
                    color=s.colour,
                    size=9 if s.row == "bp" else 7,
                    symbol=[s.symbol + ("-dot" if p.late_entry and s.symbol == "circle" else "") for p in active],
                ),
                hovertext=[p.hover for p in active],
                hoverinfo="text",
                meta={"role": "vital", "series": s.key},
            ),
            s.row,
        )
    sys_by_time = {p.time: p.value for p in points if p.series == "systolic" and p.status == "active"}
    pairs = [
        (p.time, p.value, sys_by_time[p.time])
        for p in points
        if p.series == "diastolic" and p.status == "active" and p.time in sys_by_time
    ]
    if pairs:
        bp_x: list[Any] = []
        bp_y: list[Any] = []
        for when, dia, sys in pairs:
            bp_x += [x(when), x(when), None]
            bp_y += [dia, sys, None]
        add(
            go.Scatter(
                x=bp_x,
                y=bp_y,
                mode="lines",
                line=dict(color="#1d4ed8", width=2),
                hoverinfo="skip",
                name="BP (systolic–diastolic)",
                showlegend=False,
                meta={"role": "bp_span"},
            ),
            "bp",
        )
    for name in ("bp", "pulse", "temperature", "spo2", "resp_rate"):
        flagged = [
            p
            for p in points
            if p.flags and p.status == "active" and next(s.row for s in VITAL_SERIES if s.key == p.series) == name
        ]
        if flagged:
            add(
                go.Scatter(
                    x=[x(p.time) for p in flagged],
                    y=[p.value for p in flagged],
                    mode="markers",
                    marker=dict(symbol="diamond", size=13, color=FLAG_RED, line=dict(color="#111827", width=1)),
                    name="Flagged",
                    legendgroup="flagged",
                    showlegend=False,
                    hovertext=[p.hover for p in flagged],
                    hoverinfo="text",
                    meta={"role": "flagged", "row": name, "series": [p.series for p in flagged]},
                ),
                name,
            )
        _inactive(fig, points, name, None, x)

    # ---- clinic alert thresholds (clinical.md §4b as set in the clinic's settings)
    t = thresholds
    temp_high = temperature_for_display(t.temperature_c_high, unit_t) or t.temperature_c_high
    ranges = {
        "bp": _range([p.value for p in points if p.series in ("systolic", "diastolic") and p.value], 40, 210, 10),
        "pulse": _range([p.value for p in points if p.series == "pulse" and p.value], 30, 150, 10),
        "temperature": _range(
            [p.value for p in points if p.series == "temperature_c" and p.value],
            *((95.0, 104.0) if unit_t == "F" else (35.0, 40.0)),
            0.5,
        ),
        "spo2": _range([p.value for p in points if p.series == "spo2" and p.value], 80, 100, 2),
        "resp_rate": _range([p.value for p in points if p.series == "resp_rate" and p.value], 4, 36, 2),
    }
    for name, (low, high) in ranges.items():
        fig.update_yaxes(range=[low, high], row=_row_of(name), col=1)
    bp, pulse, temp, spo2, rr = (_row_of(n) for n in ("bp", "pulse", "temperature", "spo2", "resp_rate"))
    _shade(shapes, notes, bp, ranges["bp"][0], t.systolic_low, f"SBP < {t.systolic_low}", at_top=True)
    _shade(shapes, notes, bp, t.systolic_high, ranges["bp"][1], f"SBP ≥ {t.systolic_high}", at_top=False)
    # DBP ≥ 110 overlaps the normal systolic range, so it is a labelled line, not a band
    shapes.append(
        dict(
            type="line",
            xref=f"{_axis('x', bp)} domain",
            x0=0,
            x1=1,
            yref=_axis("y", bp),
            y0=t.diastolic_high,
            y1=t.diastolic_high,
            line=dict(color="#991b1b", width=1, dash="dash"),
            name=f"threshold: DBP ≥ {t.diastolic_high}",
        )
    )
    notes.append(
        dict(
            x=0.995,
            y=t.diastolic_high,
            xref=f"{_axis('x', bp)} domain",
            yref=_axis("y", bp),
            text=f"DBP ≥ {t.diastolic_high}",
            showarrow=False,
            xanchor="right",
            yanchor="bottom",
            font=dict(size=10, color="#991b1b"),
        )
    )
    _shade(shapes, notes, pulse, ranges["pulse"][0], t.pulse_low, f"HR < {t.pulse_low}", at_top=True)
    _shade(shapes, notes, pulse, t.pulse_high, ranges["pulse"][1], f"HR > {t.pulse_high}", at_top=False)
    _shade(shapes, notes, temp, temp_high, ranges["temperature"][1], f"T ≥ {temp_high:g} {unit_label}", at_top=False)
    _shade(shapes, notes, spo2, ranges["spo2"][0], t.spo2_low, f"SpO2 < {t.spo2_low} %", at_top=True)
    _shade(shapes, notes, rr, t.resp_rate_high, ranges["resp_rate"][1], f"RR > {t.resp_rate_high}", at_top=False)

    # ---- axes and layout
    if row.status in ("checked_in", "ready", "infusing", "paused", "observation"):
        shapes.append(
            dict(
                type="line",
                xref="x",
                x0=x(now),
                x1=x(now),
                yref="paper",
                y0=0,
                y1=1,
                line=dict(color="#111827", width=1, dash="dot"),
                name="now",
            )
        )
        notes.append(
            dict(
                x=x(now),
                y=1.0,
                xref=_axis("x", phase_row),
                yref=f"{_axis('y', phase_row)} domain",
                text="now",
                showarrow=False,
                yanchor="bottom",
                font=dict(size=10),
            )
        )
    if times:
        room = timedelta(minutes=10) + (span * 0.12 if marks else timedelta(0))  # labelled marks need room right
        fig.update_xaxes(range=[x(min(times) - timedelta(minutes=10)), x(max(times) + room)])
    else:
        notes.append(
            dict(
                x=0.5,
                y=0.5,
                xref="paper",
                yref="paper",
                showarrow=False,
                text="Nothing to draw yet: the session has not been checked in.",
            )
        )
    fig.update_yaxes(gridcolor="#eef0f3")
    fig.update_yaxes(
        range=[-1.0, 2], showticklabels=False, showgrid=False, zeroline=False, fixedrange=True, row=phase_row, col=1
    )
    fig.update_xaxes(type="date", tickformat="%H:%M", showgrid=True, gridcolor="#e5e7eb")
    fig.update_xaxes(title_text=f"Clinic time ({detail.clinic.timezone})", row=len(ROWS), col=1)
    shown: set[str] = set()
    for trace in fig.data:  # one legend entry per kind of special marker
        if trace.legendgroup in ("flagged", "corrected", "entered_in_error") and trace.legendgroup not in shown:
            trace.showlegend = True
            shown.add(trace.legendgroup)
    therapy = detail.therapy.brand or detail.therapy.name
    day = format_local(row.checked_in_at or row.scheduled_at, detail.clinic.timezone, "%d %b %Y")
    fig.update_layout(
        title=dict(text=f"{therapy} · infusion #{row.infusion_number} · {day}", x=0.01),
        height=980,
        margin=dict(l=60, r=20, t=60, b=50),
        hovermode="closest",
        plot_bgcolor="white",
        legend=dict(orientation="h", yanchor="top", y=-0.05, x=0, traceorder="normal"),
        shapes=shapes,
        annotations=notes,
    )
    return fig


def _inactive(fig: go.Figure, points: list[_Point], row_name: str, series: str | None, x: Any) -> None:
    """Corrected and entered-in-error values as hollow grey markers: shown as such, never hidden."""
    keys = {series} if series else {s.key for s in VITAL_SERIES if s.row == row_name}
    for status in ("corrected", "entered_in_error"):
        gone = [p for p in points if p.series in keys and p.status == status]
        if not gone:
            continue
        label = INACTIVE_LABELS[status]
        fig.add_trace(
            go.Scatter(
                x=[x(p.time) for p in gone],
                y=[p.value for p in gone],
                mode="markers",
                marker=dict(symbol=INACTIVE_SYMBOLS[status], size=10, color=INACTIVE_GREY, line=dict(width=1.5)),
                name=label.capitalize(),
                legendgroup=status,
                showlegend=False,
                hovertext=[p.hover for p in gone],
                hoverinfo="text",
                meta={"role": status, "row": row_name, "series": [p.series for p in gone]},
            ),
            row=_row_of(row_name),
            col=1,
        )
