"""The p-chart figure (infusion.charts.trends.pchart_figure): every month on the line, months outside
their limits joined and marked, and the x-axis labelled by month ("Mar 2026") for one month or ten years."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from infusion.charts.trends import pchart_figure
from infusion.reads.trends import PCHART_COLUMNS
from infusion.reads.trends.stats import p_chart


def _frame(months: list[date], xs: list[int], ns: list[int]) -> pd.DataFrame:
    """A frame shaped as `monthly_reaction_pchart` returns it (months as dates in an object column)."""
    chart = p_chart(xs, ns)
    chart.insert(0, "month", pd.Series(months, dtype="object"))
    return chart[list(PCHART_COLUMNS)]


def _trace(figure: go.Figure, name: str) -> Any:
    return next(t for t in figure.data if t.name == name)


def _months(values: Any) -> list[str]:
    return [pd.Timestamp(v).strftime("%Y-%m") for v in values]


def _seven_months_april_out() -> pd.DataFrame:
    months = [date(2026, m, 1) for m in range(1, 8)]
    frame = _frame(months, [2, 3, 2, 30, 3, 2, 3], [100] * 7)
    assert frame["out_of_control"].tolist() == [False, False, False, True, False, False, False]
    return frame


def test_a_month_outside_its_limits_stays_on_the_line() -> None:
    figure = pchart_figure(_seven_months_april_out(), "All therapies")
    line = _trace(figure, "monthly rate")
    assert "lines" in line.mode
    assert _months(line.x) == [f"2026-{m:02d}" for m in range(1, 8)]
    assert line.y[3] == 0.3  # April, outside the limits, is a point of the line itself


def test_a_month_outside_its_limits_is_marked_distinctly() -> None:
    figure = pchart_figure(_seven_months_april_out(), "All therapies")
    line = _trace(figure, "monthly rate")
    symbols, colours = list(line.marker.symbol), list(line.marker.color)
    assert symbols[3] != symbols[0] and colours[3] != colours[0]
    assert len({symbols[i] for i in (0, 1, 2, 4, 5, 6)}) == 1
    marked = _trace(figure, "outside limits")
    assert _months(marked.x) == ["2026-04"]
    assert list(marked.text) == ["⚠"]
    assert "outside the limits" in line.text[3] and "outside" not in line.text[0]


def _ticks(figure: go.Figure) -> tuple[list[str], list[str]]:
    axis = figure.layout.xaxis
    assert axis.tickmode == "array"
    return _months(axis.tickvals), list(axis.ticktext)


def _axis_range(figure: go.Figure) -> tuple[pd.Timestamp, pd.Timestamp]:
    low, high = figure.layout.xaxis.range
    return pd.Timestamp(low), pd.Timestamp(high)


def test_one_month_is_labelled_by_its_month_and_the_axis_spans_a_month() -> None:
    figure = pchart_figure(_frame([date(2026, 3, 1)], [3], [40]), "Tysabri")
    assert figure.layout.xaxis.type == "date"
    assert _ticks(figure) == (["2026-03"], ["Mar 2026"])
    low, high = _axis_range(figure)
    assert pd.Timestamp("2026-02-10") < low < pd.Timestamp("2026-03-01") < high < pd.Timestamp("2026-03-20")
    # the limits of a single month are drawn (a step across its width), not a one-point line that never shows
    ucl = _trace(figure, "UCL (3σ)")
    assert len([x for x in ucl.x if x is not None]) == 2


def test_two_months_are_labelled_by_month_not_by_day() -> None:
    figure = pchart_figure(_frame([date(2026, 2, 1), date(2026, 3, 1)], [3, 4], [40, 50]), "Tysabri")
    assert _ticks(figure) == (["2026-02", "2026-03"], ["Feb 2026", "Mar 2026"])
    low, high = _axis_range(figure)
    assert pd.Timestamp("2026-01-10") < low < pd.Timestamp("2026-02-01")
    assert pd.Timestamp("2026-03-01") < high < pd.Timestamp("2026-03-20")


def test_every_month_of_the_period_is_on_the_axis_and_an_empty_month_is_a_gap() -> None:
    frame = _frame([date(2026, 1, 1), date(2026, 3, 1)], [2, 3], [50, 60])
    figure = pchart_figure(frame, "Tysabri", start=date(2025, 12, 15), end=date(2026, 4, 2))
    line = _trace(figure, "monthly rate")
    assert _months(line.x) == ["2025-12", "2026-01", "2026-02", "2026-03", "2026-04"]
    assert [y is None for y in line.y] == [True, False, True, False, True]  # no sessions: no proportion, not 0 %
    assert _ticks(figure)[1] == ["Dec 2025", "Jan 2026", "Feb 2026", "Mar 2026", "Apr 2026"]


def test_a_long_period_keeps_month_labels_and_about_a_dozen_of_them() -> None:
    months = list(pd.date_range("2017-01-01", "2026-12-01", freq="MS").date)
    frame = _frame(months, [3] * len(months), [60] * len(months))
    values, texts = _ticks(pchart_figure(frame, "All therapies"))
    assert 2 <= len(texts) <= 13
    assert all(re.fullmatch(r"[A-Z][a-z]{2} \d{4}", t) for t in texts), texts
    assert values[0] == "2017-01" and texts[0] == "Jan 2017"


def test_a_year_labels_every_month() -> None:
    months = [date(2025, m, 1) for m in range(1, 13)]
    values, texts = _ticks(pchart_figure(_frame(months, [3] * 12, [60] * 12), "All therapies"))
    assert len(values) == 12 and texts[0] == "Jan 2025" and texts[-1] == "Dec 2025"


def test_the_legend_shows_the_monthly_rate_as_a_blue_line_even_when_the_first_month_is_outside() -> None:
    frame = _frame([date(2026, m, 1) for m in range(1, 8)], [30, 2, 3, 2, 3, 2, 3], [100] * 7)
    assert bool(frame["out_of_control"].iloc[0])
    figure = pchart_figure(frame, "All therapies")
    entries = [t for t in figure.data if t.showlegend is not False]
    rate = next(t for t in entries if t.name == "monthly rate")
    assert rate.marker.symbol == "circle" and rate.marker.color == _trace(figure, "monthly rate").line.color
    assert [t.name for t in entries if t.name == "outside limits"] == ["outside limits"]
