"""The vital-sign rows (BP, pulse, temperature, SpO2, respiration): one trace per series, a line from
diastolic to systolic for each BP, flagged values as red diamonds, corrected entries as hollow grey
markers, and the clinic's alert thresholds (docs/clinical-basis.md §6 as set in the clinic's settings) as labelled
bands."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from infusion.charts.timeline.canvas import Canvas, axis, row_of, value_range
from infusion.charts.timeline.style import FLAG_RED, VITAL_SERIES, Series
from infusion.clinical.units import temperature_for_display
from infusion.settings import AlertThresholds

VITAL_ROWS = ("bp", "pulse", "temperature", "spo2", "resp_rate")


def draw_vitals(c: Canvas) -> None:
    """Every series, the BP spans, then per row the flagged and the corrected values."""
    for s in VITAL_SERIES:
        _series(c, s)
    _bp_spans(c)
    for name in VITAL_ROWS:
        _flagged(c, name)
        c.inactive(name, None)


def _series(c: Canvas, s: Series) -> None:
    active = [p for p in c.points if p.series == s.key and p.status == "active"]
    c.add(
        go.Scatter(
            x=[c.x(p.time) for p in active],
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


def _bp_spans(c: Canvas) -> None:
    sys_by_time = {p.time: p.value for p in c.points if p.series == "systolic" and p.status == "active"}
    pairs = [
        (p.time, p.value, sys_by_time[p.time])
        for p in c.points
        if p.series == "diastolic" and p.status == "active" and p.time in sys_by_time
    ]
    if not pairs:
        return
    bp_x: list[Any] = []
    bp_y: list[Any] = []
    for when, dia, sys in pairs:
        bp_x += [c.x(when), c.x(when), None]
        bp_y += [dia, sys, None]
    c.add(
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


def _flagged(c: Canvas, name: str) -> None:
    flagged = [
        p
        for p in c.points
        if p.flags and p.status == "active" and next(s.row for s in VITAL_SERIES if s.key == p.series) == name
    ]
    if not flagged:
        return
    c.add(
        go.Scatter(
            x=[c.x(p.time) for p in flagged],
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


def draw_thresholds(c: Canvas, t: AlertThresholds, unit_t: str) -> None:
    """Each vital row's y range (a fixed clinical range widened to the data) and the alert bands on it."""
    ranges = _ranges(c, unit_t)
    for name, (low, high) in ranges.items():
        c.fig.update_yaxes(range=[low, high], row=row_of(name), col=1)
    temp_high = temperature_for_display(t.temperature_c_high, unit_t) or t.temperature_c_high
    unit_label = f"°{unit_t}"
    bp, pulse, temp, spo2, rr = (row_of(n) for n in ("bp", "pulse", "temperature", "spo2", "resp_rate"))
    c.shade(bp, ranges["bp"][0], t.systolic_low, f"SBP < {t.systolic_low}", at_top=True)
    c.shade(bp, t.systolic_high, ranges["bp"][1], f"SBP ≥ {t.systolic_high}", at_top=False)
    # DBP ≥ 110 overlaps the normal systolic range, so it is a labelled line, not a band
    c.shapes.append(
        dict(
            type="line",
            xref=f"{axis('x', bp)} domain",
            x0=0,
            x1=1,
            yref=axis("y", bp),
            y0=t.diastolic_high,
            y1=t.diastolic_high,
            line=dict(color="#991b1b", width=1, dash="dash"),
            name=f"threshold: DBP ≥ {t.diastolic_high}",
        )
    )
    c.notes.append(
        dict(
            x=0.995,
            y=t.diastolic_high,
            xref=f"{axis('x', bp)} domain",
            yref=axis("y", bp),
            text=f"DBP ≥ {t.diastolic_high}",
            showarrow=False,
            xanchor="right",
            yanchor="bottom",
            font=dict(size=10, color="#991b1b"),
        )
    )
    c.shade(pulse, ranges["pulse"][0], t.pulse_low, f"HR < {t.pulse_low}", at_top=True)
    c.shade(pulse, t.pulse_high, ranges["pulse"][1], f"HR > {t.pulse_high}", at_top=False)
    c.shade(temp, temp_high, ranges["temperature"][1], f"T ≥ {temp_high:g} {unit_label}", at_top=False)
    c.shade(spo2, ranges["spo2"][0], t.spo2_low, f"SpO2 < {t.spo2_low} %", at_top=True)
    c.shade(rr, t.resp_rate_high, ranges["resp_rate"][1], f"RR > {t.resp_rate_high}", at_top=False)


def _ranges(c: Canvas, unit_t: str) -> dict[str, list[float]]:
    return {
        "bp": value_range(
            [p.value for p in c.points if p.series in ("systolic", "diastolic") and p.value], 40, 210, 10
        ),
        "pulse": value_range([p.value for p in c.points if p.series == "pulse" and p.value], 30, 150, 10),
        "temperature": value_range(
            [p.value for p in c.points if p.series == "temperature_c" and p.value],
            *((95.0, 104.0) if unit_t == "F" else (35.0, 40.0)),
            0.5,
        ),
        "spo2": value_range([p.value for p in c.points if p.series == "spo2" and p.value], 80, 100, 2),
        "resp_rate": value_range([p.value for p in c.points if p.series == "resp_rate" and p.value], 4, 36, 2),
    }
