"""When the next vitals are due (docs/clinical-basis.md §4 default schedule) and the infusion clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from infusion.clinical.catalog import load_seed
from infusion.clinical.schedule import infusion_clock, next_vitals_due, observation_ends_at

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # check-in
START = T0 + timedelta(minutes=30)  # IV start
DEFAULT = {
    "after_start_minutes": [15],
    "every_minutes": 60,
    "at_rate_change": True,
    "at_end_of_infusion": True,
    "at_end_of_observation": True,
}


def m(minutes: float) -> datetime:
    """Minutes after IV start."""
    return START + timedelta(minutes=minutes)


def due(
    status="infusing",
    schedule=None,
    vitals=(),
    rates=(),
    stopped=None,
    observation=60,
    started=START,
    checked_in=T0,
    early=5,
):
    return next_vitals_due(
        status=status,
        schedule=DEFAULT if schedule is None else schedule,
        checked_in_at=checked_in,
        iv_started_at=started,
        iv_stopped_at=stopped,
        observation_minutes=observation,
        vitals_times=list(vitals),
        rate_change_times=list(rates),
        early_minutes=early,
    )


# ---------------------------------------------------------------- before the IV


@pytest.mark.parametrize("status", ["checked_in", "ready"])
def test_baseline_due_at_check_in(status):
    result = due(status=status, started=None)
    assert result.due_at == T0
    assert "baseline" in result.reason


def test_baseline_met_by_check_in_vitals():
    result = due(status="ready", started=None, vitals=[T0])
    assert result.due_at is None


def test_baseline_overdue_minutes():
    result = due(status="checked_in", started=None)
    assert result.overdue_minutes(T0 + timedelta(minutes=12)) == pytest.approx(12)
    assert result.overdue_minutes(T0 - timedelta(minutes=3)) == 0


@pytest.mark.parametrize("status", ["scheduled", "discharged", "deferred", "cancelled"])
def test_no_vitals_due_when_not_monitoring(status):
    result = due(status=status, vitals=[T0])
    assert result.due_at is None
    assert result.overdue_minutes(T0 + timedelta(hours=5)) == 0


# ---------------------------------------------------------------- during the infusion


def test_first_set_due_15_minutes_after_start():
    result = due(vitals=[T0])
    assert result.due_at == m(15)
    assert "15 min after start" in result.reason


def test_15_minute_set_met_then_every_60_from_last_set():
    result = due(vitals=[T0, m(16)])
    assert result.due_at == m(16 + 60)
    assert "every 60" in result.reason


def test_every_n_anchors_to_the_last_set_not_the_start():
    # a set taken early (at 40 min) moves the next due time to 100 min
    assert due(vitals=[T0, m(15), m(40)]).due_at == m(100)
    # and a late set moves it later
    assert due(vitals=[T0, m(15), m(90)]).due_at == m(150)


def test_every_n_anchors_to_start_when_no_set_since_start():
    schedule = {**DEFAULT, "after_start_minutes": []}
    assert due(schedule=schedule, vitals=[T0]).due_at == m(60)


def test_lemtrada_schedule_every_30_minutes():
    lemtrada = next(r for r in load_seed() if r["code"] == "alemtuzumab")
    result = due(schedule=lemtrada["vitals_schedule"], vitals=[T0, m(15)])
    assert result.due_at == m(45)


def test_ivig_schedule_15_then_30_after_start():
    ivig = next(r for r in load_seed() if r["code"] == "ivig")
    schedule = ivig["vitals_schedule"]
    first = due(schedule=schedule, vitals=[T0])
    assert first.due_at == m(15)
    second = due(schedule=schedule, vitals=[T0, m(15)])
    assert second.due_at == m(30)
    assert "30 min after start" in second.reason
    third = due(schedule=schedule, vitals=[T0, m(15), m(30)])
    assert third.due_at == m(90)


def test_rate_change_creates_an_obligation():
    result = due(vitals=[T0, m(15)], rates=[m(45)])
    assert result.due_at == m(45)
    assert result.reason == "rate change"


def test_rate_change_met_by_a_set_at_or_after_it():
    assert due(vitals=[T0, m(15), m(46)], rates=[m(45)]).due_at == m(46 + 60)


def test_each_rate_change_needs_its_own_set():
    # the set at 46 covers the change at 45, not the one at 75
    result = due(vitals=[T0, m(15), m(46)], rates=[m(45), m(75)])
    assert result.due_at == m(75)
    assert result.reason == "rate change"


def test_rate_change_obligation_can_be_switched_off():
    schedule = {**DEFAULT, "at_rate_change": False}
    assert due(schedule=schedule, vitals=[T0, m(15)], rates=[m(45)]).due_at == m(75)


def test_start_rate_entry_is_not_a_rate_change():
    assert due(vitals=[T0], rates=[START]).due_at == m(15)


def test_paused_infusion_keeps_its_schedule():
    assert due(status="paused", vitals=[T0, m(15)], rates=[m(45)]).due_at == m(45)


def test_early_tolerance_counts_a_set_a_little_before_due():
    # 5 min early counts for the 15-min point; 6 min early does not
    assert due(vitals=[T0, m(10)]).due_at == m(70)
    assert due(vitals=[T0, m(9)]).due_at == m(15)


def test_early_tolerance_is_configurable():
    assert due(vitals=[T0, m(9)], early=6).due_at == m(69)
    assert due(vitals=[T0, m(14)], early=0).due_at == m(15)


def test_overdue_minutes_during_infusion():
    result = due(vitals=[T0])
    assert result.overdue_minutes(m(27)) == pytest.approx(12)
    assert result.overdue_minutes(m(10)) == 0


def test_no_schedule_at_all():
    result = due(schedule={"after_start_minutes": [], "every_minutes": None, "at_rate_change": False}, vitals=[T0])
    assert result.due_at is None


# ---------------------------------------------------------------- observation


def test_end_of_infusion_set_due_at_iv_stop():
    stop = m(65)
    result = due(status="observation", stopped=stop, vitals=[T0, m(15), m(59)])  # 6 min before stop
    assert result.due_at == stop
    assert result.reason == "end of infusion"


def test_end_of_infusion_met_by_a_set_within_tolerance_before_stop():
    stop = m(65)
    result = due(status="observation", stopped=stop, vitals=[T0, m(15), m(61)])
    assert result.due_at == stop + timedelta(minutes=60)
    assert result.reason == "end of observation"


def test_end_of_observation_uses_observation_minutes():
    stop = m(65)
    result = due(status="observation", stopped=stop, observation=120, vitals=[T0, stop])
    assert result.due_at == stop + timedelta(minutes=120)


def test_schedule_complete_after_end_of_observation_set():
    stop = m(65)
    result = due(status="observation", stopped=stop, vitals=[T0, stop, stop + timedelta(minutes=58)])
    assert result.due_at is None
    assert "complete" in result.reason


def test_observation_not_defined_only_needs_end_of_infusion():
    stop = m(65)
    assert due(status="observation", stopped=stop, observation=None, vitals=[T0, stop]).due_at is None


def test_observation_ends_at():
    stop = m(65)
    assert observation_ends_at(stop, 60) == stop + timedelta(minutes=60)
    assert observation_ends_at(stop, None) == stop
    assert observation_ends_at(None, 60) is None


# ---------------------------------------------------------------- infusion clock


def clock(elapsed=None, stopped_after=None, window=(60, 60), tolerance=15):
    now = START + timedelta(minutes=elapsed if elapsed is not None else 0)
    stopped = START + timedelta(minutes=stopped_after) if stopped_after is not None else None
    return infusion_clock(
        iv_started_at=START,
        iv_stopped_at=stopped,
        now=now,
        window_min=window[0],
        window_max=window[1],
        tolerance_minutes=tolerance,
    )


def test_elapsed_runs_with_the_clock_until_stop():
    assert clock(elapsed=42).elapsed_minutes == pytest.approx(42)
    assert clock(elapsed=500, stopped_after=61).elapsed_minutes == pytest.approx(61)


def test_past_window_after_max_plus_tolerance():
    assert not clock(elapsed=75).past_window  # 60 + 15 exactly: not yet
    assert clock(elapsed=75.5).past_window
    assert clock(elapsed=200, stopped_after=80).past_window
    assert not clock(elapsed=200, stopped_after=70).past_window


def test_no_upper_bound_never_past_window():
    assert not clock(elapsed=11 * 60, window=(150, None)).past_window


def test_under_minimum_only_once_stopped():
    assert not clock(elapsed=20, window=(30, None)).under_minimum  # still running
    assert clock(elapsed=40, stopped_after=20, window=(30, None)).under_minimum
    assert not clock(elapsed=40, stopped_after=30, window=(30, None)).under_minimum


def test_approximate_duration_gets_tolerance_below_too():
    # Tysabri "~1 h" is stored as 60–60 ("about 1 h"): a 50-min infusion is not "under the label minimum",
    # a 44-min one (faster than 60 − 15) is.
    assert not clock(elapsed=90, stopped_after=50, window=(60, 60)).under_minimum
    assert not clock(elapsed=90, stopped_after=45, window=(60, 60)).under_minimum
    assert clock(elapsed=90, stopped_after=44, window=(60, 60)).under_minimum
    # a true lower bound ("≥ 2.5 h") has no tolerance
    assert clock(elapsed=200, stopped_after=149, window=(150, None)).under_minimum


def test_ivmp_under_30_minutes_is_flagged():
    ivmp = next(r for r in load_seed() if r["code"] == "methylprednisolone")
    window = ivmp["duration_windows"][0]
    result = clock(elapsed=60, stopped_after=20, window=(window["min_minutes"], window.get("max_minutes")))
    assert result.under_minimum


def test_clock_before_iv_start():
    result = infusion_clock(
        iv_started_at=None, iv_stopped_at=None, now=T0, window_min=60, window_max=60, tolerance_minutes=15
    )
    assert result.elapsed_minutes is None and not result.past_window and not result.under_minimum
