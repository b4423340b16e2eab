"""The phases row: phase bands with their names, the observation-end and discharge marks, and the reactions
(a grade-coloured star above the bands, a line to resolution, a shaded span through every row)."""

from __future__ import annotations

from datetime import timedelta

import plotly.graph_objects as go

from infusion.charts.palette import GRADE_COLOURS, STATUS_COLOURS
from infusion.charts.timeline.canvas import Canvas
from infusion.charts.timeline.points import Point
from infusion.charts.timeline.style import INACTIVE_GREY, INACTIVE_LABELS, LIGHT_PHASES, PHASE_COLOURS, REACTION_Y


def draw_phases(c: Canvas, span: timedelta) -> None:
    """Filled bands with their names written on them (below the band when it is too narrow), then the marks."""
    bands = [p for p in c.points if p.series == "phase" and p.end is not None]
    for p in bands:
        _band(c, p)
    if bands:
        _band_labels(c, bands, span)
    for p in (p for p in c.points if p.series == "phase" and p.end is None):
        _mark(c, p)


def _band(c: Canvas, p: Point) -> None:
    assert p.end is not None
    a, b = c.x(p.time), c.x(p.end)
    c.add(
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


def _band_labels(c: Canvas, bands: list[Point], span: timedelta) -> None:
    narrow = [p.end - p.time < span * 0.08 for p in bands]  # type: ignore[operator]
    c.add(
        go.Scatter(
            x=[c.x(p.time + (p.end - p.time) / 2) for p in bands],  # type: ignore[operator]
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


def _mark(c: Canvas, p: Point) -> None:
    obs_end = p.detail == "Observation ends"  # below the band, so it does not cover the discharge mark
    c.add(
        go.Scatter(
            x=[c.x(p.time)],
            y=[-0.5 if obs_end else 0.5],
            mode="markers+text",
            text=[p.detail],
            textposition="middle right",
            textfont=dict(size=10 if obs_end else 11),
            marker=dict(
                symbol="line-ns",
                size=14 if obs_end else 22,
                line=dict(width=2 if obs_end else 3, color=STATUS_COLOURS["observation" if obs_end else "discharged"]),
            ),
            hovertext=[p.hover],
            hoverinfo="text",
            name=p.detail,
            showlegend=False,
            meta={"role": "phase_mark", "phase": p.detail},
        ),
        "phases",
    )


def draw_reactions(c: Canvas) -> None:
    """Each reaction: active ones in their grade colour across every row, corrected ones as a grey hollow star."""
    for p in (p for p in c.points if p.series == "reaction"):
        grade = p.grade or 1
        if p.status == "active":
            _active_reaction(c, p, grade)
        else:
            _inactive_reaction(c, p, grade)


def _active_reaction(c: Canvas, p: Point, grade: int) -> None:
    colour = GRADE_COLOURS[grade]
    end = p.end or c.now
    # across every row (the x axes are matched, so one paper-high shape covers them all)
    c.shapes.append(
        dict(
            type="rect",
            xref="x",
            x0=c.x(p.time),
            x1=c.x(max(end, p.time + timedelta(minutes=1))),
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
    c.shapes.append(
        dict(
            type="line",
            xref="x",
            x0=c.x(p.time),
            x1=c.x(p.time),
            yref="paper",
            y0=0,
            y1=1,
            line=dict(color=colour, width=1.5, dash="dot"),
            name=f"reaction G{grade} onset",
        )
    )
    c.add(
        go.Scatter(
            x=[c.x(p.time), c.x(end)],
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
    c.add(
        go.Scatter(
            x=[c.x(p.time)],
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


def _inactive_reaction(c: Canvas, p: Point, grade: int) -> None:
    label = INACTIVE_LABELS[p.status]
    c.add(
        go.Scatter(
            x=[c.x(p.time)],
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
