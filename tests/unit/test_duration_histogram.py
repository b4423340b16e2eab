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
from infusion.reads.trends.histogram import Bins, _full_months, bin_of, merged

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
    return merged(rows)


@settings(max_examples=200, deadline=None)
@given(st.lists(minutes, min_size=1, max_size=80))
def test_quartiles_min_max_within_one_bin_and_mean_to_a_second(values: list[float]) -> None:
    bins = _bins(values)
    exact = np.array(values)
    assert bins.total == len(values)
    for q in (0.0, 0.25, 0.5, 0.75, 1.0):
        assert abs(bins.quantile(q) - float(np.quantile(exact, q))) <= histogram.BIN_MINUTES + 1e-9
    assert abs(bins.mean() - float(exact.mean())) <= 1 / 60 + 1e-9


@settings(max_examples=300, deadline=None)
@given(st.lists(minutes, min_size=1, max_size=80), st.lists(st.floats(0, 1), min_size=1, max_size=7))
def test_the_duration_summary_s_quantiles_in_one_pass_are_the_same_floats_as_one_at_a_time(
    values: list[float], qs: list[float]
) -> None:
    """The summary asks five quantiles of each histogram at once: a manager must read the same minutes."""
    bins = _bins(values)
    assert bins.quantiles(qs) == [bins.quantile(q) for q in qs]


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


def _months_counted(pieces: list[histogram.Piece]) -> dict[date, int]:
    """How many times each month is counted by signed pieces (a year piece counts its twelve months)."""
    counted: dict[date, int] = {}
    for piece in pieces:
        first = piece.first
        last = date(piece.last.year, 12, 1) if piece.yearly else piece.last
        month = first
        while month <= last:
            counted[month] = counted.get(month, 0) + piece.sign
            month = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    return {m: c for m, c in counted.items() if c}


@settings(max_examples=300, deadline=None)
@given(st.dates(min_value=date(2015, 1, 1), max_value=date(2030, 12, 31)), st.integers(min_value=0, max_value=4000))
def test_signed_pieces_count_every_day_of_the_period_once(start: date, length: int) -> None:
    """Whatever the period, each of its whole months is counted exactly once (a year less the months
    taken away) and no other month at all; the days left over are the part months at its ends."""
    end = date.fromordinal(min(start.toordinal() + length, date(2030, 12, 31).toordinal()))
    pieces, days = histogram.signed_calendar(start, end)
    counted = _months_counted(pieces)
    day_count = sum(b.toordinal() - a.toordinal() + 1 for a, b in days)
    month_days = sum((date(m.year + (m.month == 12), m.month % 12 + 1, 1) - m).days for m in counted)
    assert set(counted.values()) <= {1}
    assert day_count + month_days == end.toordinal() - start.toordinal() + 1
    for a, b in days:  # read from the sessions: within the period, and within one month beside whole months
        assert start <= a <= b <= end
        assert not pieces or (a.year, a.month) == (b.year, b.month)
    assert all(
        start <= m and date(m.year + (m.month == 12), m.month % 12 + 1, 1) <= date.fromordinal(end.toordinal() + 1)
        for m in counted
    )


def test_the_last_365_days_read_this_year_less_its_months_to_come() -> None:
    """The Trends default (today 30 November 2026): this year's row less December, plus last December:
    three reads instead of twelve months."""
    pieces, days = histogram.signed_calendar(date(2025, 11, 30), date(2026, 11, 30))
    assert pieces == [
        histogram.Piece(False, date(2025, 12, 1), date(2025, 12, 1)),
        histogram.Piece(True, date(2026, 1, 1), date(2026, 1, 1)),
        histogram.Piece(False, date(2026, 12, 1), date(2026, 12, 1), -1),
    ]
    assert days == [(date(2025, 11, 30), date(2025, 11, 30))]


@settings(max_examples=300, deadline=None)
@given(
    st.dates(min_value=date(2015, 1, 1), max_value=date(2030, 12, 31)),
    st.integers(min_value=0, max_value=4000),
    st.dates(min_value=date(2015, 1, 1), max_value=date(2031, 6, 30)),
)
def test_signed_days_count_every_day_of_the_period_once(start: date, length: int, today: date) -> None:
    """Whole months, and part months read either as their days or as their month less the days left out:
    every day of the period counted once and no other day, whatever today is."""
    end = date.fromordinal(min(start.toordinal() + length, date(2030, 12, 31).toordinal()))
    pieces, days = histogram.signed_calendar(start, end)
    more, signed = histogram.signed_days(days, today)
    counted: dict[int, int] = {}
    for month, times in _months_counted([*pieces, *more]).items():
        following = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
        for day in range(month.toordinal(), following.toordinal()):
            counted[day] = counted.get(day, 0) + times
    for lo, hi, sign in signed:
        for day in range(lo.toordinal(), hi.toordinal() + 1):
            counted[day] = counted.get(day, 0) + sign
    assert {d for d, c in counted.items() if c} == set(range(start.toordinal(), end.toordinal() + 1))
    assert all(c in (0, 1) for c in counted.values())


def test_five_years_from_the_second_read_the_first_of_that_month_not_the_rest() -> None:
    pieces, days = histogram.signed_calendar(date(2021, 12, 2), date(2026, 11, 30))
    more, signed = histogram.signed_days(days, date(2026, 12, 1))
    assert more == [histogram.Piece(False, date(2021, 12, 1), date(2021, 12, 1))]
    assert signed == [(date(2021, 12, 1), date(2021, 12, 1), -1)]
    # the current month to today: its days to come hold nothing, so month less them
    more, signed = histogram.signed_days([(date(2026, 11, 1), date(2026, 11, 12))], date(2026, 11, 13))
    assert more == [histogram.Piece(False, date(2026, 11, 1), date(2026, 11, 1))]
    assert signed == [(date(2026, 11, 13), date(2026, 11, 30), -1)]
