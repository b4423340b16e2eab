"""Plotly figures for the Trends page, built from the small frames of `infusion.reads.trends`.

Kept out of the page so they can be tested without Streamlit. Colour is never
the only signal: every bar and point carries its number as text.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from infusion.charts.palette import GRADE_COLOURS


def _empty(message: str) -> go.Figure:
    figure = go.Figure()
    figure.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    figure.update_layout(height=200, xaxis={"visible": False}, yaxis={"visible": False})
    return figure


def reaction_rate_figure(rates: pd.DataFrame) -> go.Figure:
    """Reactions per 100 infusions per therapy with 95 % Wilson intervals as error bars."""
    if rates.empty:
        return _empty("No completed sessions in this period")
    data = rates.sort_values("rate_per_100")
    figure = go.Figure(
        go.Bar(
            x=data["rate_per_100"],
            y=data["therapy"],
            orientation="h",
            marker_color="#1f6f8b",
            error_x={
                "type": "data",
                "symmetric": False,
                "array": data["ci_high_per_100"] - data["rate_per_100"],
                "arrayminus": data["rate_per_100"] - data["ci_low_per_100"],
            },
            text=[
                f"{r:.1f} ({w}/{n})" for r, w, n in zip(data["rate_per_100"], data["with_reaction"], data["completed"])
            ],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.1f} per 100<extra></extra>",
        )
    )
    figure.update_layout(
        height=80 + 40 * len(data),
        margin={"l": 10, "r": 40, "t": 10, "b": 40},
        xaxis_title="sessions with ≥ 1 reaction per 100 completed (95 % Wilson CI)",
    )
    return figure


def grade_figure(by_grade: pd.DataFrame) -> go.Figure:
    if by_grade.empty:
        return _empty("No reactions in this period")
    figure = go.Figure()
    for grade in sorted(by_grade["grade"].unique()):
        part = by_grade[by_grade["grade"] == grade]
        figure.add_trace(
            go.Bar(
                x=part["therapy"],
                y=part["rate_per_100"],
                name=f"Grade {grade}",
                marker_color=GRADE_COLOURS.get(int(grade)),
                text=part["sessions"],
                textposition="inside",
            )
        )
    figure.update_layout(
        barmode="stack", height=360, yaxis_title="per 100 completed sessions", margin={"t": 10, "b": 10}
    )
    return figure


def infusion_number_figure(by_number: pd.DataFrame) -> go.Figure:
    if by_number.empty:
        return _empty("No completed sessions in this period")
    figure = go.Figure()
    for bucket in ("1st", "2nd", "later"):
        part = by_number[by_number["infusion_bucket"] == bucket]
        if part.empty:
            continue
        figure.add_trace(
            go.Bar(
                x=part["therapy"],
                y=part["rate_per_100"],
                name=f"{bucket} infusion",
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": part["ci_high_per_100"] - part["rate_per_100"],
                    "arrayminus": part["rate_per_100"] - part["ci_low_per_100"],
                },
                text=[f"{r:.0f}" for r in part["rate_per_100"]],
                textposition="outside",
            )
        )
    figure.update_layout(barmode="group", height=380, yaxis_title="per 100 (95 % Wilson CI)", margin={"t": 10})
    return figure


def _month(day: Any) -> pd.Timestamp:
    """The first of the month of a date, datetime or ISO string."""
    return pd.Timestamp(day).to_period("M").to_timestamp()


def _month_ticks(months: list[pd.Timestamp]) -> list[pd.Timestamp]:
    """Which months carry a label: every month up to a year, then every 2nd, 3rd (quarters), 6th or 12th
    (Januaries) so a long period keeps about a dozen labels, never a day or an hour."""
    step = next((s for s, most in ((1, 12), (2, 24), (3, 39), (6, 78)) if len(months) <= most), 12)
    if step == 1:
        return months
    aligned = [m for m in months if (m.month - 1) % step == 0]
    return aligned if len(aligned) >= 2 else months[::step]


def pchart_figure(pchart: pd.DataFrame, title: str, start: date | None = None, end: date | None = None) -> go.Figure:
    """Monthly reaction proportion with the centre line and 3-sigma limits; points outside are marked.

    Every month from `start` to `end` (the filter's period; else the frame's first to last month) is on the
    axis, labelled by month ("Mar 2026") whatever the range, one month or ten years. Every month with
    completed sessions is a point on the one line, those outside their limits joined like the rest and
    marked (red cross, ⚠); a month with no completed session is a gap (no proportion), not a zero. Each
    month's limits are a step across its own width, so a single month still shows them."""
    if pchart.empty:
        return _empty("No completed sessions in this period")
    data = pchart.assign(month=[_month(m) for m in pchart["month"]]).set_index("month")
    first = min([*data.index, *([_month(start)] if start else [])])
    last = max([*data.index, *([_month(end)] if end else [])])
    months = list(pd.date_range(first, last, freq="MS"))
    full = data.reindex(months)
    inside_out = full["out_of_control"].astype("boolean").fillna(False).astype(bool).tolist()
    # each month spans from half-way after the previous month to half-way before the next
    edges = [m - (m - (m - pd.offsets.MonthBegin(1))) / 2 for m in months]
    edges.append(months[-1] + ((months[-1] + pd.offsets.MonthBegin(1)) - months[-1]) / 2)
    figure = go.Figure()
    for column, name in (("ucl", "UCL (3σ)"), ("lcl", "LCL (3σ)")):
        xs: list[Any] = []
        ys: list[Any] = []
        for i, value in enumerate(full[column]):
            if pd.isna(value):
                xs.append(None)
                ys.append(None)
                continue
            xs += [edges[i], edges[i + 1]]
            ys += [float(value), float(value)]
        figure.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                line={"dash": "dash", "color": "#999", "shape": "hv"},
                name=name,
                hovertemplate=f"{name}: %{{y:.1%}}<extra></extra>",
            )
        )
    p_bar = float(data["p_bar"].iloc[0])
    figure.add_trace(
        go.Scatter(
            x=[edges[0], edges[-1]],
            y=[p_bar, p_bar],
            mode="lines",
            line={"color": "#555"},
            name="centre p̄",
            hovertemplate=f"centre p̄ {p_bar:.1%} (this period)<extra></extra>",
        )
    )
    counts = [
        "" if pd.isna(n) else f"{int(x)}/{int(n)}" + (" · outside the limits" if out else "")
        for x, n, out in zip(full["x"], full["n"], inside_out)
    ]
    figure.add_trace(
        go.Scatter(
            x=months,
            y=[None if pd.isna(p) else float(p) for p in full["p"]],
            mode="lines+markers",
            name="monthly rate",
            line={"color": "#1f6f8b"},
            marker={
                "color": ["#c62828" if out else "#1f6f8b" for out in inside_out],
                "size": [13 if out else 9 for out in inside_out],
                "symbol": ["x" if out else "circle" for out in inside_out],
            },
            text=counts,
            hovertemplate="%{x|%b %Y}: %{y:.1%} (%{text})<extra></extra>",
            legendgroup="rate",
            showlegend=False,
        )
    )
    # the legend's entry: plotly draws a trace's legend symbol from its first point, which may be a red cross
    figure.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="lines+markers",
            name="monthly rate",
            line={"color": "#1f6f8b"},
            marker={"color": "#1f6f8b", "size": 9, "symbol": "circle"},
            legendgroup="rate",
            hoverinfo="skip",
        )
    )
    outside = [i for i, out in enumerate(inside_out) if out]
    if outside:
        figure.add_trace(
            go.Scatter(
                x=[months[i] for i in outside],
                y=[float(full["p"].iloc[i]) for i in outside],
                mode="markers+text",
                name="outside limits",
                marker={"color": "#c62828", "size": 13, "symbol": "x"},
                text=["⚠"] * len(outside),
                textposition="top center",
                cliponaxis=False,
                hoverinfo="skip",
            )
        )
    ticks = _month_ticks(months)
    figure.update_layout(
        title=title,
        height=360,
        margin={"t": 40},
        xaxis={
            "type": "date",
            "range": [edges[0], edges[-1]],
            "tickmode": "array",
            "tickvals": ticks,
            "ticktext": [m.strftime("%b %Y") for m in ticks],
            "title": "month (local)",
        },
        yaxis={"tickformat": ".1~%", "rangemode": "tozero", "title": "sessions with a reaction"},
    )
    return figure


def _stat_box(part: pd.DataFrame, column: str, **kw: Any) -> go.Box:
    """A box drawn from the summary's statistics (quartiles, median, mean; whiskers to the shortest and the
    longest), not from per-session values: the durations summary is read from a histogram. Its hover is
    the one point `_stat_hover` puts at the median (plotly's own box hover lists fences twice, unrounded)."""
    return go.Box(
        x=list(part["therapy"]),
        q1=list(part[f"{column}_q1"]),
        median=list(part[f"{column}_median"]),
        q3=list(part[f"{column}_q3"]),
        lowerfence=list(part[f"{column}_min"]),
        upperfence=list(part[f"{column}_max"]),
        mean=list(part[f"{column}_mean"]),
        hoverinfo="skip",
        **kw,
    )


def _stat_hover(part: pd.DataFrame, column: str, who: str = "", **kw: Any) -> go.Scatter:
    """An invisible point at each box's median carrying its numbers, rounded to the minute."""
    stats = ("median", "q1", "q3", "min", "max", "mean")
    custom = part[[f"{column}_{s}" for s in stats]].round(0).to_numpy()
    sessions = part["sessions"].to_numpy().reshape(-1, 1)
    return go.Scatter(
        x=list(part["therapy"]),
        y=list(part[f"{column}_median"]),
        mode="markers",
        marker={"size": 18, "opacity": 0},
        customdata=[[*row, int(n[0])] for row, n in zip(custom, sessions)],
        hovertemplate=(
            f"{who}%{{x}}: median %{{customdata[0]:.0f}} min<br>middle half %{{customdata[1]:.0f}}–"
            "%{customdata[2]:.0f} min<br>shortest %{customdata[3]:.0f}, longest %{customdata[4]:.0f} min<br>"
            "mean %{customdata[5]:.0f} min · %{customdata[6]} sessions<extra></extra>"
        ),
        showlegend=False,
        **kw,
    )


def _applies(row: Any, infusion: str) -> bool:
    """Whether a label window covers the infusions the filter shows ("first": infusion 1; "later": 2 on)."""
    if infusion == "first":
        return int(row.first_number) <= 1
    if infusion == "later":
        return pd.isna(row.last_number) or int(row.last_number) >= 2
    return True


def duration_figure(
    summary: pd.DataFrame, windows: pd.DataFrame, column: str, label: str, infusion: str = "all"
) -> go.Figure:
    """Box plots of durations per therapy (from `duration_summary`) against the label window of each
    infusion number (from `duration_windows`; only the windows of the infusions the filter shows).

    A bounded window is a green band from the label minimum to its maximum; a fixed time (min = max) a
    green tick; a window with no upper bound ("≥ 2 h", IVIG) a dotted line from its minimum to the top of
    the chart ending in an arrow, so it does not read as a range. The bands are drawn under the boxes and
    the boxes' hover (median, middle half, shortest, longest, mean, sessions) is on top."""
    summary = summary.dropna(subset=[f"{column}_median"])
    if summary.empty:
        return _empty("No completed sessions in this period")
    figure = go.Figure()
    if column == "infusion_minutes" and not windows.empty:
        shown = windows[windows["therapy_id"].isin(summary["therapy_id"])].dropna(subset=["label_min_minutes"])
        bounded = shown["label_max_minutes"].dropna()
        top = max(float(summary[f"{column}_max"].max()), float(bounded.max()) if len(bounded) else 0.0) * 1.08
        for row in shown.itertuples(index=False):
            if not _applies(row, infusion):
                continue
            low, high = float(row.label_min_minutes), row.label_max_minutes
            open_ended = pd.isna(high)
            first, last = int(row.first_number), row.last_number
            if pd.isna(last):
                which = f"infusion {first} onwards"
            else:
                which = f"infusion {first}" if first == int(last) else f"infusions {first}–{int(last)}"
            text = (
                f"≥ {low:.0f} min" if open_ended else (f"{low:.0f}–{high:.0f} min" if high != low else f"{low:.0f} min")
            )
            common = {"x": [row.therapy, row.therapy], "name": "label range", "showlegend": False}
            hover = f"label {text} ({which})<extra></extra>"
            if open_ended:
                figure.add_trace(
                    go.Scatter(
                        y=[low, max(top, low)],
                        mode="lines+markers",
                        marker={"symbol": ["line-ew-open", "triangle-up"], "size": [24, 12], "color": "#2e7d32"},
                        line={"color": "rgba(46,125,50,0.6)", "width": 3, "dash": "dot"},
                        hovertemplate=hover,
                        **common,
                    )
                )
            else:
                figure.add_trace(
                    go.Scatter(
                        y=[low, float(high)],
                        mode="markers+lines",
                        marker={"symbol": "line-ew-open", "size": 30, "color": "#2e7d32"},
                        line={"color": "rgba(46,125,50,0.35)", "width": 14},
                        hovertemplate=hover,
                        **common,
                    )
                )
    figure.add_trace(_stat_box(summary, column, name=label, showlegend=False, marker={"color": "#1f77b4"}))
    figure.add_trace(_stat_hover(summary, column))
    figure.update_layout(height=380, yaxis_title=label, margin={"t": 10})
    return figure


def utilisation_figure(utilisation: pd.DataFrame) -> go.Figure:
    if utilisation.empty:
        return _empty("No chair time in this period")
    # weekdays and hours in their own order: sites open on different days and hours add cells out of order
    grid = utilisation.pivot_table(index="weekday", columns="hour", values="share", dropna=False).sort_index()
    grid = grid.reindex(columns=sorted(grid.columns))
    names = dict(zip(utilisation["weekday"], utilisation["weekday_name"]))
    figure = go.Figure(
        go.Heatmap(
            z=grid.values,
            x=[f"{h:02d}:00" for h in grid.columns],
            y=[names[w] for w in grid.index],
            colorscale="Blues",
            zmin=0,
            zmax=1,
            text=[[f"{v:.0%}" if pd.notna(v) else "" for v in row] for row in grid.values],
            texttemplate="%{text}",
            hovertemplate="%{y} %{x}: %{z:.0%} of chair-hours occupied<extra></extra>",
        )
    )
    figure.update_layout(height=320, margin={"t": 10})
    return figure


def duration_by_site_figure(summary: pd.DataFrame, column: str, label: str) -> go.Figure:
    """Box plots of one duration per therapy, one box per site side by side (the `by_site` summary).

    The label ranges are the same at every site (one catalog), so they are drawn once, on the one-site
    figure above; here each site's box carries its name in the legend and on hover."""
    summary = summary.dropna(subset=[f"{column}_median"])
    if summary.empty:
        return _empty("No completed sessions in this period")
    figure = go.Figure()
    for site, part in summary.groupby("site", sort=True):
        figure.add_trace(_stat_box(part, column, name=str(site), offsetgroup=str(site)))
        figure.add_trace(_stat_hover(part, column, who=f"{site} · ", offsetgroup=str(site)))
    figure.update_layout(
        boxmode="group",
        scattermode="group",
        height=380,
        yaxis_title=label,
        margin={"t": 10},
        legend={"title": {"text": "site"}},
    )
    return figure


def site_utilisation_figure(utilisation: pd.DataFrame) -> go.Figure:
    """Each site's share of chair-hours occupied over its opening hours in the period (from the `by_site`
    cells: Σ occupied ÷ Σ available), as a bar with its number."""
    if utilisation.empty:
        return _empty("No chair time in this period")
    totals = utilisation.groupby("site", sort=True)[["chair_hours_available", "chair_hours_occupied"]].sum()
    share = totals["chair_hours_occupied"] / totals["chair_hours_available"].where(totals["chair_hours_available"] > 0)
    figure = go.Figure(
        go.Bar(
            x=share.values,
            y=list(share.index),
            orientation="h",
            marker_color="#1f6f8b",
            text=[
                f"{v:.0%} ({o:.0f} of {a:.0f} h)" if pd.notna(v) else "no opening hours"
                for v, o, a in zip(share.values, totals["chair_hours_occupied"], totals["chair_hours_available"])
            ],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.0%} of chair-hours occupied<extra></extra>",
        )
    )
    figure.update_layout(
        height=80 + 40 * len(share),
        margin={"l": 10, "r": 60, "t": 10, "b": 40},
        xaxis={"title": "share of chair-hours occupied (each site's own hours)", "tickformat": ".0%"},
    )
    return figure
