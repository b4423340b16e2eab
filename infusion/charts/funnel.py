"""The funnel plot of the infusion-reaction rate per site, for one therapy (from `reads.trends.funnel`).

Same conventions as `infusion.charts.trends`: no template or background colours, so Streamlit's theme
(light or dark) supplies them; mid-tone colours from the shared palette that read on both; colour is
never the only signal (symbols, line styles and text labels carry the same meaning).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from infusion.charts.palette import STATUS_COLOURS
from infusion.charts.trends import _empty
from infusion.reads.trends.funnel import ABOVE_95, ABOVE_998, BELOW_95, BELOW_998, funnel_curve

WITHIN_COLOUR = STATUS_COLOURS["checked_in"]  # blue, as on the board
WATCH_COLOUR = "#d97706"  # amber: outside 95 %, inside 99.8 %
OUTSIDE_COLOUR = STATUS_COLOURS["reaction"]  # red: outside 99.8 %
LIMIT_COLOUR = "#9ca3af"  # grey that reads on white and on Streamlit's dark background
NETWORK_COLOUR = "#6b7280"
#: With more sites than this, only sites outside the 95 % limits carry their name as text (all have it on hover).
LABEL_ALL_UP_TO = 12

_HOVER = (
    "<b>%{customdata[0]}</b><br>"
    "%{customdata[1]} infusions, %{customdata[2]} with a reaction<br>"
    "rate %{y:.1%} (network %{customdata[3]:.1%})<br>"
    "95 % limits %{customdata[4]:.1%}–%{customdata[5]:.1%}<br>"
    "99.8 % limits %{customdata[6]:.1%}–%{customdata[7]:.1%}<br>"
    "%{customdata[8]}<extra></extra>"
)
_HOVER_COLUMNS = ["site", "sessions", "reacted", "network_rate", "lower95", "upper95", "lower998", "upper998", "signal"]


def funnel_caption() -> str:
    """How to read the funnel plot, in plain words for the quality team (shown under the chart)."""
    return (
        "Each dot is one site: the share of its completed infusions of this therapy that had a reaction "
        "(up the side), against how many infusions it gave (along the bottom). The solid line is the "
        "network rate for this therapy. The dashed lines show how far a site of that size can drift from "
        "the network rate by chance alone (95 % limits, about 2 standard deviations); the dotted lines are "
        "the wider 99.8 % limits (about 3). The funnel is wide on the left because a few infusions can give "
        "a high or low percentage by chance: a small site with one or two reactions is not out of line just "
        "because its percentage looks high. A site beyond a dotted line (red triangle, named) is unlikely "
        "to be chance and is worth reviewing; below the funnel can also mean reactions are not being "
        "recorded. Between a dashed and a dotted line (amber) about 1 site in 20 lands by chance: watch it, "
        "do not act on it alone. The limits do not allow for differences in patients (first infusions, "
        "premedication, case mix), so a flag is a prompt to look, not a verdict."
    )


def _text_positions(n: pd.Series, x_max: float, warn: bool) -> list[str]:
    """Names stay inside the plot at either edge; flagged sites are named beside their marker."""
    vertical = "middle" if warn else "top"
    positions = []
    for x in n:
        if x < 0.12 * x_max:
            horizontal = "right"
        elif x > 0.85 * x_max:
            horizontal = "left"
        else:
            horizontal = "right" if warn else "center"
        positions.append(f"{vertical} {horizontal}")
    return positions


def _sites(
    part: pd.DataFrame,
    name: str,
    colour: str,
    symbol: str,
    size: int,
    *,
    x_max: float,
    labelled: bool,
    warn: bool = False,
) -> go.Scatter:
    return go.Scatter(
        x=part["sessions"],
        y=part["rate"],
        mode="markers+text" if labelled else "markers",
        name=name,
        marker={"color": colour, "symbol": symbol, "size": size, "line": {"width": 1, "color": "#ffffff"}},
        text=[f"⚠ {site}" if warn else str(site) for site in part["site"]],
        textposition=_text_positions(part["sessions"], x_max, warn),
        cliponaxis=False,
        textfont={"size": 13, "color": colour} if warn else {"size": 12},
        customdata=part[_HOVER_COLUMNS].to_numpy(dtype=object),
        hovertemplate=_HOVER,
    )


def _limit_lines(figure: go.Figure, curve: pd.DataFrame, key: str, label: str, dash: str) -> None:
    for side in ("upper", "lower"):
        figure.add_trace(
            go.Scatter(
                x=curve["n"],
                y=curve[f"{side}{key}"],
                mode="lines",
                name=label,
                legendgroup=key,
                showlegend=side == "upper",
                line={"color": LIMIT_COLOUR, "dash": dash, "width": 2},
                hovertemplate=f"{label}, {side}: %{{y:.1%}} at %{{x}} infusions<extra></extra>",
            )
        )


def funnel_figure(frame: pd.DataFrame, therapy: str) -> go.Figure:
    """Funnel plot for ONE therapy from a `funnel_frame` (rows of other therapies are ignored).

    x: completed infusions at the site; y: share with a reaction. Dots per site (name on hover, and as
    text when there are few sites or the site is outside the 95 % limits); the network rate as a solid
    line; the 95 % limits dashed and the 99.8 % limits dotted (`funnel_curve`). Sites outside 99.8 % are
    red triangles (up: above, down: below) with their name; outside 95 % only, amber diamonds. Sites
    with no completed infusions are not drawn.
    """
    part = frame[(frame["therapy"] == therapy) & (frame["sessions"] > 0)]
    if part.empty:
        return _empty(f"No completed {therapy} infusions at any site in this period")
    network_rate = float(part["network_rate"].iloc[0])
    n_max = int(part["sessions"].max())
    x_max = max(int(np.ceil(n_max * 1.08)), n_max + 1)
    curve = funnel_curve(x_max, network_rate)

    figure = go.Figure()
    _limit_lines(figure, curve, "998", "99.8 % limits (≈ 3 SD)", "dot")
    _limit_lines(figure, curve, "95", "95 % limits (≈ 2 SD)", "dash")
    figure.add_trace(
        go.Scatter(
            x=[0, x_max],
            y=[network_rate, network_rate],
            mode="lines",
            name=f"network rate {network_rate:.1%}",
            line={"color": NETWORK_COLOUR, "width": 2},
            hovertemplate=f"network rate for {therapy}: {network_rate:.1%}<extra></extra>",
        )
    )
    signal = part["signal"]
    groups = (
        (~signal.isin([ABOVE_95, BELOW_95, ABOVE_998, BELOW_998]), "within the limits", WITHIN_COLOUR, "circle", 11),
        (signal.isin([ABOVE_95, BELOW_95]), "outside 95 % (watch)", WATCH_COLOUR, "diamond", 13),
        (signal == ABOVE_998, "above 99.8 % (review)", OUTSIDE_COLOUR, "triangle-up", 16),
        (signal == BELOW_998, "below 99.8 % (review)", OUTSIDE_COLOUR, "triangle-down", 16),
    )
    for i, (rows, name, colour, symbol, size) in enumerate(groups):
        if rows.any():
            labelled = i > 0 or len(part) <= LABEL_ALL_UP_TO
            site = _sites(part[rows], name, colour, symbol, size, x_max=x_max, labelled=labelled, warn=i >= 2)
            figure.add_trace(site)

    # Every site stays in view; near the left edge the funnel may leave through the top, which still shows
    # that the small sites under it are inside their limits.
    top = max(1.15 * float(part["rate"].max()), 2 * network_rate, 0.02)
    figure.update_layout(
        title={"text": f"{therapy}: reaction rate per site (this therapy only)", "x": 0, "xanchor": "left"},
        height=480,
        margin={"l": 10, "r": 20, "t": 50, "b": 10},
        xaxis={"title": "completed infusions at the site", "range": [0, x_max], "rangemode": "tozero"},
        yaxis={"title": "infusions with a reaction (%)", "tickformat": ".1~%", "range": [0, min(1.0, top)]},
        legend={"orientation": "h", "yanchor": "top", "y": -0.15, "x": 0},
        hovermode="closest",
    )
    return figure
