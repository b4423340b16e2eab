"""The figure under construction: subplot rows, clinic wall-clock x values, and the shapes and annotations
collected to be set once (plotly re-validates the whole list on every add_hrect/add_vline, which made a
figure take seconds)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import plotly.graph_objects as go

from infusion.charts.timeline.points import Point
from infusion.charts.timeline.style import (
    INACTIVE_GREY,
    INACTIVE_LABELS,
    INACTIVE_SYMBOLS,
    ROWS,
    THRESHOLD_FILL,
    VITAL_SERIES,
)


def row_of(name: str) -> int:
    return ROWS.index(name) + 1


def axis(kind: str, row: int) -> str:
    return kind if row == 1 else f"{kind}{row}"


def value_range(values: list[float], low: float, high: float, pad: float) -> list[float]:
    """A fixed clinical range widened to the data, so threshold bands always show."""
    if values:
        low, high = min(low, min(values) - pad), max(high, max(values) + pad)
    return [low, high]


@dataclass
class Canvas:
    """One session's figure while its rows are drawn, with the points and the moment it is drawn at."""

    fig: go.Figure
    tz: ZoneInfo
    now: datetime
    points: list[Point]
    shapes: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)

    def x(self, t: datetime) -> datetime:
        """Wall-clock time in the clinic, as the x axis draws it."""
        return t.astimezone(self.tz).replace(tzinfo=None)

    def add(self, trace: go.Scatter, name: str) -> None:
        self.fig.add_trace(trace, row=row_of(name), col=1)

    def shade(self, row: int, y0: float, y1: float, label: str, *, at_top: bool) -> None:
        """An alert band (clinic threshold) with its rule written on it, not colour alone."""
        self.shapes.append(
            dict(
                type="rect",
                xref=f"{axis('x', row)} domain",
                x0=0,
                x1=1,
                yref=axis("y", row),
                y0=y0,
                y1=y1,
                fillcolor=THRESHOLD_FILL,
                line=dict(width=0),
                layer="below",
                name=f"threshold: {label}",
            )
        )
        self.notes.append(
            dict(
                x=0.005,
                y=y1 if at_top else y0,
                xref=f"{axis('x', row)} domain",
                yref=axis("y", row),
                text=label,
                showarrow=False,
                xanchor="left",
                yanchor="top" if at_top else "bottom",
                font=dict(size=10, color="#991b1b"),
            )
        )

    def inactive(self, row_name: str, series: str | None) -> None:
        """Corrected and entered-in-error values as hollow grey markers: shown as such, never hidden."""
        keys = {series} if series else {s.key for s in VITAL_SERIES if s.row == row_name}
        for status in ("corrected", "entered_in_error"):
            gone = [p for p in self.points if p.series in keys and p.status == status]
            if not gone:
                continue
            label = INACTIVE_LABELS[status]
            self.add(
                go.Scatter(
                    x=[self.x(p.time) for p in gone],
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
                row_name,
            )
