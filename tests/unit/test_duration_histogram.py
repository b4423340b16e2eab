"""The durations histogram's arithmetic against the exact values of the same durations (issue 14).

A manager reads quartiles, the shortest and the longest within 5 minutes, the mean to a second, and
the number of infusions over or under the label window exactly: these tests hold the histogram to
that promise on random durations, including values on the 5-minute marks the label thresholds use."""

from __future__ import annotations

from datetime import date

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from infusion.reads.trends import histogram
from infusion.reads.trends.histogram import Bins, _full_months, bin_of, merged, split_calendar

# durations as a nurse's entries make them: whole minutes, or any second
minutes = st.one_of(
    st.integers(min_value=0, max_value=600).map(float),
    st.integers(min_value=0, max_value=600 * 60).map(lambda s: s / 60),
)


def _bins(values: list[float]) -> Bins:
    rows = []
    for v in values:
        k, edge, seconds = bin_of(v)
        rows.append((k, 1, edge, seconds))
    return merged([rows])


@settings(max_examples=200, deadline=None)
@given(st.lists(minutes, min_size=1, max_size=80))
def test_quartiles_min_max_within_one_bin_and_mean_to_a_second(values: list[float]) -> None:
    bins = _bins(values)
    exact = np.array(values)
    assert bins.total == len(values)
    for q in (0.0, 0.25, 0.5, 0.75, 1.0):
        assert abs(bins.quantile(q) - float(np.quantile(exact, q))) <= histogram.BIN_MINUTES + 1e-9
    assert abs(bins.mean() - float(exact.mean())) <= 1 / 60 + 1e-9


@settings(max_examples=200, deadline=None)
@given(st.lists(minutes, min_size=1, max_size=80), st.integers(min_value=0, max_value=130).map(lambda k: 5.0 * k))
def test_counts_over_and_under_a_threshold_on_a_five_minute_mark_are_exact(values: list[float], t: float) -> None:
    bins = _bins(values)
    assert bins.count_above(t) == sum(v > t for v in values)
    assert bins.count_below(t) == sum(v < t for v in values)


def test_a_session_of_exactly_the_threshold_is_neither_over_nor_under() -> None:
    bins = _bins([255.0, 255.0, 254.99, 255.01])
    assert bins.count_above(255) == 1
    assert bins.count_below(255) == 1


def test_whole_months_inside_a_period() -> None:
    assert _full_months(date(2025, 11, 30), date(2026, 11, 29)) == (date(2025, 12, 1), date(2026, 10, 1))
    assert _full_months(date(2026, 1, 1), date(2026, 1, 31)) == (date(2026, 1, 1), date(2026, 1, 1))
    assert _full_months(date(2026, 1, 2), date(2026, 1, 31)) is None
    assert _full_months(date(2026, 1, 1), date(2026, 1, 30)) is None
    assert _full_months(date(2025, 12, 31), date(2026, 3, 1)) == (date(2026, 1, 1), date(2026, 2, 1))
    assert _full_months(date(2024, 2, 1), date(2024, 2, 29)) == (date(2024, 2, 1), date(2024, 2, 1))


def test_a_period_split_into_whole_years_whole_months_and_days() -> None:
    years, months, days = split_calendar(date(2024, 10, 20), date(2027, 2, 10))
    assert years == (date(2025, 1, 1), date(2026, 1, 1))
    assert months == [(date(2024, 11, 1), date(2024, 12, 1)), (date(2027, 1, 1), date(2027, 1, 1))]
    assert days == [(date(2024, 10, 20), date(2024, 10, 31)), (date(2027, 2, 1), date(2027, 2, 10))]
    assert split_calendar(date(2025, 1, 1), date(2025, 12, 31)) == ((date(2025, 1, 1), date(2025, 1, 1)), [], [])
    assert split_calendar(date(2025, 2, 1), date(2025, 12, 31)) == (None, [(date(2025, 2, 1), date(2025, 12, 1))], [])
    assert split_calendar(date(2025, 2, 3), date(2025, 2, 20)) == (None, [], [(date(2025, 2, 3), date(2025, 2, 20))])
