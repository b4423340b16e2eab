"""The session figure: seven subplot rows on one clinic-time axis, drawn row by row from the point list.

One figure with subplots and SVG `go.Scatter` traces (plotly's guidance: SVG for small traces): a session has tens of points,
and WebGL contexts are limited per page.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from infusion.charts.timeline.canvas import Canvas, axis, row_of
from infusion.charts.timeline.phases import draw_phases, draw_reactions
from infusion.charts.timeline.points import Point, all_points
from infusion.charts.timeline.rate import draw_rate
from infusion.charts.timeline.style import ROW_HEIGHTS, ROWS
from infusion.charts.timeline.vitals import draw_thresholds, draw_vitals
from infusion.clock import format_local, utcnow
from infusion.reads.sessions import SessionDetail

#: statuses in which the session is still open, so "now" is drawn and kept in view
OPEN_STATUSES = ("checked_in", "ready", "infusing", "paused", "observation")


def session_timeline(detail: SessionDetail, now: datetime | None = None) -> go.Figure:
    """The session on one clinic-time axis: phases, rate, BP, pulse, temperature, SpO2, respiration, reactions."""
    now = now or utcnow()
    unit_t = detail.clinic.temperature_unit
    fig = make_subplots(rows=len(ROWS), cols=1, shared_xaxes=True, vertical_spacing=0.03, row_heights=list(ROW_HEIGHTS))
    c = Canvas(fig, ZoneInfo(detail.clinic.timezone), now, all_points(detail, now), notes=_row_titles(unit_t))
    # the visible span: the session, now while it is open, 10 min either side
    times = [p.time for p in c.points] + [q.end for q in c.points if q.end is not None]
    if detail.session.status in OPEN_STATUSES:
        times.append(now)
    span = (max(times) - min(times)) if times else timedelta(0)

    draw_phases(c, span)
    draw_reactions(c)
    draw_rate(c, detail)
    draw_vitals(c)
    draw_thresholds(c, detail.settings.thresholds, unit_t)

    if detail.session.status in OPEN_STATUSES:
        _now_line(c)
    _x_range(c, times, span)
    _axes_and_layout(c, detail)
    return fig


def _row_titles(unit_t: str) -> list[dict[str, Any]]:
    """Row titles, small and left-aligned above each row so seven rows stay readable."""
    titles = (
        "Phase · reactions",
        "Rate mL/h",
        "BP mmHg",
        "Pulse /min",
        f"Temperature °{unit_t}",
        "SpO2 %",
        "Respiration /min",
    )
    return [
        dict(
            text=title,
            x=0,
            y=1,
            xref=f"{axis('x', i)} domain",
            yref=f"{axis('y', i)} domain",
            xanchor="left",
            yanchor="bottom",
            showarrow=False,
            font=dict(size=12),
            name="row title",
        )
        for i, title in enumerate(titles, start=1)
    ]


def _now_line(c: Canvas) -> None:
    phase_row = row_of("phases")
    c.shapes.append(
        dict(
            type="line",
            xref="x",
            x0=c.x(c.now),
            x1=c.x(c.now),
            yref="paper",
            y0=0,
            y1=1,
            line=dict(color="#111827", width=1, dash="dot"),
            name="now",
        )
    )
    c.notes.append(
        dict(
            x=c.x(c.now),
            y=1.0,
            xref=axis("x", phase_row),
            yref=f"{axis('y', phase_row)} domain",
            text="now",
            showarrow=False,
            yanchor="bottom",
            font=dict(size=10),
        )
    )


def _x_range(c: Canvas, times: list[datetime], span: timedelta) -> None:
    if times:
        marks = any(_is_mark(p) for p in c.points)
        room = timedelta(minutes=10) + (span * 0.12 if marks else timedelta(0))  # labelled marks need room right
        c.fig.update_xaxes(range=[c.x(min(times) - timedelta(minutes=10)), c.x(max(times) + room)])
    else:
        c.notes.append(
            dict(
                x=0.5,
                y=0.5,
                xref="paper",
                yref="paper",
                showarrow=False,
                text="Nothing to draw yet: the session has not been checked in.",
            )
        )


def _is_mark(p: Point) -> bool:
    """A phase mark (observation ends, discharged, deferred…): a point in time with a label to its right."""
    return p.series == "phase" and p.end is None


def _axes_and_layout(c: Canvas, detail: SessionDetail) -> None:
    fig, row = c.fig, detail.session
    fig.update_yaxes(gridcolor="#eef0f3")
    fig.update_yaxes(
        range=[-1.0, 2],
        showticklabels=False,
        showgrid=False,
        zeroline=False,
        fixedrange=True,
        row=row_of("phases"),
        col=1,
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
        shapes=c.shapes,
        annotations=c.notes,
    )
