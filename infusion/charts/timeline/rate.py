"""The rate row: the actual rate log as a step line to now, the planned steps dashed, the plan maximum
(IVIG) and the forecast dotted; corrected entries as hollow grey markers."""

from __future__ import annotations

import plotly.graph_objects as go

from infusion.charts.palette import STATUS_COLOURS
from infusion.charts.timeline.canvas import Canvas, axis, row_of
from infusion.charts.timeline.forecast import session_plan
from infusion.charts.timeline.points import Point
from infusion.reads.sessions import SessionDetail


def draw_rate(c: Canvas, detail: SessionDetail) -> None:
    """Actual step line to now, planned steps dashed, forecast dotted, and the row's y range."""
    row = detail.session
    actual = sorted((p for p in c.points if p.series == "rate" and p.status == "active"), key=lambda p: p.time)
    if actual:
        _actual(c, actual, running=row.status in ("infusing", "paused"))
    planned = [p for p in c.points if p.series == "planned_rate"]
    if planned:
        _planned(c, planned)
    for p in (p for p in c.points if p.series == "planned_max"):
        _ceiling(c, p)
    ahead = [p for p in c.points if p.series == "forecast_rate"]
    if ahead:
        _forecast(c, ahead)
    steps = session_plan(detail) if row.iv_started_at else []
    if steps and steps[0].unit != "mL/h":
        _plan_not_drawn(c, steps[0].unit)
    rate_values = [
        p.value
        for p in c.points
        if p.series in ("rate", "planned_rate", "planned_max", "forecast_rate") and p.value is not None
    ]
    c.fig.update_yaxes(range=[0, max([*rate_values, 50.0]) * 1.15], row=row_of("rate"), col=1)
    c.inactive("rate", "rate")


def _actual(c: Canvas, actual: list[Point], *, running: bool) -> None:
    xs, ys = [c.x(p.time) for p in actual], [p.value for p in actual]
    hovers = [p.hover for p in actual]
    if actual[-1].detail != "stop" and running and c.now > actual[-1].time:
        xs.append(c.x(c.now))  # the current rate runs on to now
        ys.append(ys[-1])
        hovers.append(f"now: {ys[-1]:g} mL/h")
    c.add(
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


def _planned(c: Canvas, planned: list[Point]) -> None:
    single = len(planned) == 1  # IVIG: only the start rate has a planned time
    c.add(
        go.Scatter(
            x=[c.x(p.time) for p in planned],
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


def _ceiling(c: Canvas, p: Point) -> None:
    right = max([c.now, *(q.time for q in c.points if q.series in ("rate", "phase"))])
    c.add(
        go.Scatter(
            x=[c.x(p.time), c.x(right)],
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


def _forecast(c: Canvas, ahead: list[Point]) -> None:
    c.add(
        go.Scatter(
            x=[c.x(p.time) for p in ahead],
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


def _plan_not_drawn(c: Canvas, unit: str) -> None:
    rate_row = row_of("rate")
    c.notes.append(
        dict(
            x=0.99,
            y=0.95,
            xref=f"{axis('x', rate_row)} domain",
            yref=f"{axis('y', rate_row)} domain",
            text=f"Plan in {unit} not drawn: the rate log is in mL/h and no concentration is recorded",
            showarrow=False,
            xanchor="right",
            yanchor="top",
            font=dict(size=10, color="#374151"),
        )
    )
