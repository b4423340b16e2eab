"""Rate titration plans and forecasts against docs/clinical-basis.md §3, every expected value computed by hand.

The plans come from the seed catalog (infusion/therapy_catalog.toml), so a
change to a catalog number shows up here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from infusion.clinical.catalog import load_seed
from infusion.clinical.titration import Step, forecast, planned_steps, vitals_due_at_steps

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # IV start; notes are in UTC (09:00 = minute 0)
PLANS = {row["code"]: row["rate_plan"] for row in load_seed()}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def offsets(steps: list[Step]) -> list[float | None]:
    return [None if s.offset_minutes is None else round(s.offset_minutes, 3) for s in steps]


def rates(steps: list[Step]) -> list[float]:
    return [s.rate for s in steps]


def fc(
    code: str,
    log: list,
    now_minutes: float,
    *,
    infusion_number: int = 1,
    dose: float | None = None,
    weight_kg: float | None = None,
    **kwargs,
):
    return forecast(
        PLANS[code],
        infusion_number=infusion_number,
        dose=dose,
        weight_kg=weight_kg,
        iv_started_at=T0,
        rate_log=[(at(m), kind, rate) for m, kind, rate in log],
        now=at(now_minutes),
        **kwargs,
    )


# ------------------------------------------------------------------ Ocrevus

# Ocrevus infusions 1–2 (docs/clinical-basis.md §3): 250 mL, 30 mL/h + 30 every 30 min, max 180.
# Volume per 30-min step: 15 + 30 + 45 + 60 + 75 = 225 mL by minute 150 (rates 30…150);
# the last 25 mL at 180 mL/h take 25/180 h = 8 min 20 s → end at 158 min 20 s ≈ 2 h 38 min.
OCREVUS_1_END = 150 + 25 / 180 * 60


@pytest.mark.parametrize("infusion_number", [1, 2])
def test_ocrevus_first_two_infusions_plan(infusion_number):
    steps = planned_steps(PLANS["ocrelizumab_iv"], infusion_number=infusion_number, dose=300, weight_kg=None)
    assert rates(steps) == [30, 60, 90, 120, 150, 180, 0]
    assert offsets(steps) == [0, 30, 60, 90, 120, 150, round(OCREVUS_1_END, 3)]
    assert {s.unit for s in steps} == {"mL/h"}
    assert round(OCREVUS_1_END * 60) == 2 * 3600 + 38 * 60 + 20  # 2 h 38 min 20 s


def test_ocrevus_later_standard_plan():
    # 500 mL, 40 + 40 every 30 min to 200: 20 + 40 + 60 + 80 = 200 mL by minute 120,
    # then 300 mL at 200 mL/h = 90 min → 210 min = 3.5 h (the label's ≥ 3.5 h).
    steps = planned_steps(PLANS["ocrelizumab_iv"], infusion_number=3, dose=600, weight_kg=None)
    assert rates(steps) == [40, 80, 120, 160, 200, 0]
    assert offsets(steps) == [0, 30, 60, 90, 120, 210]


def test_plan_rule_may_be_passed_already_chosen():
    rule = PLANS["ocrelizumab_iv"][1]
    assert planned_steps(rule, infusion_number=99, dose=None, weight_kg=None) == planned_steps(
        PLANS["ocrelizumab_iv"], infusion_number=3, dose=None, weight_kg=None
    )


def test_vitals_due_at_every_planned_rate_change_and_the_end():
    steps = planned_steps(PLANS["ocrelizumab_iv"], infusion_number=1, dose=300, weight_kg=None)
    assert [round(m, 3) for m in vitals_due_at_steps(steps)] == [30, 60, 90, 120, 150, round(OCREVUS_1_END, 3)]


def test_ocrevus_first_infusion_on_plan():
    f = fc("ocrelizumab_iv", [(0, "start", 30)], 10)
    assert f.next_step_at == at(30) and f.next_rate == 60 and f.unit == "mL/h"
    assert f.expected_end == T0 + timedelta(seconds=9500)  # 158 min 20 s
    assert f.infused == 5.0 and f.remaining == 245.0 and f.amount_unit == "mL"  # 30 mL/h × 10 min
    assert f.note.startswith("at 09:30 increase to 60 mL/h")
    assert "expected end 11:38" in f.note
    assert [r for _, r in f.upcoming] == [60, 90, 120, 150, 180]
    assert [t for t, _ in f.upcoming] == [at(30), at(60), at(90), at(120), at(150)]

    # forty-five minutes in, after the first step-up: same end
    f = fc("ocrelizumab_iv", [(0, "start", 30), (30, "change", 60)], 45)
    assert (f.next_step_at, f.next_rate) == (at(60), 90)
    assert f.infused == 30.0  # 15 + 60 × 15/60
    assert f.expected_end == T0 + timedelta(seconds=9500)


def test_ocrevus_after_a_twenty_minute_pause_ends_twenty_minutes_later():
    # paused at minute 40 (at 60 mL/h), resumed at 60 at the same rate; now minute 70.
    # Infused: 15 (0–30) + 10 (30–40) + 10 (60–70) = 35 mL: the plan's own 50 minutes.
    log = [(0, "start", 30), (30, "change", 60), (40, "pause", None), (60, "resume", 60)]
    f = fc("ocrelizumab_iv", log, 70)
    assert f.infused == 35.0
    assert (f.next_step_at, f.next_rate) == (at(80), 90)  # plan minute 60 + 20 paused
    assert f.expected_end == T0 + timedelta(seconds=9500 + 20 * 60)  # 178 min 20 s
    assert f.note.startswith("at 10:20 increase to 90 mL/h")

    # while still paused there is nothing to forecast, and the note says why
    paused = fc("ocrelizumab_iv", log[:3], 50)
    assert paused.next_step_at is None and paused.expected_end is None and paused.next_rate is None
    assert paused.infused == 25.0 and paused.remaining == 225.0
    assert "Paused since 09:40" in paused.note


def test_ocrevus_rate_halved_after_a_reaction_at_minute_65():
    # On plan to minute 65 (90 mL/h since 60), halved to 45 (docs/clinical-basis.md §3 mild–moderate IRR).
    # By 65: 15 + 30 + 90 × 5/60 = 52.5 mL. Hold 45 mL/h to minute 95 (≥ 30 min), then step up
    # through the planned rates above 45 every 30 min:
    #   65–95  at 45:  22.5 → 75 mL
    #   95–125 at 60:  30   → 105
    #  125–155 at 90:  45   → 150
    #  155–185 at 120: 60   → 210
    #  185–    at 150: the last 40 mL take 40/150 h = 16 min → end at minute 201 (3 h 21 min).
    log = [(0, "start", 30), (30, "change", 60), (60, "change", 90), (65, "change", 45)]
    f = fc("ocrelizumab_iv", log, 70)
    assert f.current_rate == 45
    assert f.infused == 56.25  # 52.5 + 45 × 5/60
    assert (f.next_step_at, f.next_rate) == (at(95), 60)
    assert f.expected_end == at(201)
    assert f.upcoming == ((at(95), 60), (at(125), 90), (at(155), 120), (at(185), 150))
    assert f.note.startswith("hold 45 mL/h (reduced at 10:05; hold ≥ 30 min), then at 10:35 increase to 60 mL/h")
    assert "expected end 12:21" in f.note

    # the nurse steps up to 60 at minute 95 as forecast: the forecast at minute 100 keeps the same end
    f2 = fc("ocrelizumab_iv", log + [(95, "change", 60)], 100)
    assert (f2.next_step_at, f2.next_rate) == (at(125), 90)
    assert f2.expected_end == at(201)


def test_a_missed_step_is_due_now():
    f = fc("ocrelizumab_iv", [(0, "start", 30)], 35)
    assert (f.next_step_at, f.next_rate) == (at(35), 60)
    assert f.note.startswith("now: increase to 60 mL/h (due since 09:30)")
    # 17.5 mL by minute 35, then 60 for 30 min (30) → 47.5, 90 (45) → 92.5, 120 (60) → 152.5,
    # 150 (75) → 227.5 at minute 155, 22.5 mL at 180 mL/h = 7.5 min → 162.5
    assert f.expected_end == at(162.5)


def test_not_started_stopped_and_bag_done():
    f = forecast(
        PLANS["ocrelizumab_iv"], infusion_number=1, dose=300, weight_kg=None, iv_started_at=None, rate_log=[], now=T0
    )
    assert f.next_rate == 30 and f.expected_end is None
    assert f.note == "Not started: start at 30 mL/h; the plan takes about 2 h 38 min."

    stopped = fc("ocrelizumab_iv", [(0, "start", 30), (30, "stop", 0)], 40)
    assert stopped.expected_end == at(30) and stopped.next_step_at is None and stopped.infused == 15.0

    # still running at 180 mL/h past the planned end: the bag is done, stop the IV
    log = [(0, "start", 30)] + [(m, "change", r) for m, r in ((30, 60), (60, 90), (90, 120), (120, 150), (150, 180))]
    done = fc("ocrelizumab_iv", log, 170)
    assert done.remaining == 0.0 and done.infused == 250.0 and done.expected_end == T0 + timedelta(seconds=9500)
    assert "stop the IV" in done.note


# ------------------------------------------------------------------ Briumvi


def test_briumvi_first_infusion():
    # 10 × 30 min = 5 mL, 20 × 30 = 10, 35 × 60 = 35, 100 × 120 = 200: 250 mL in 240 min
    steps = planned_steps(PLANS["ublituximab"], infusion_number=1, dose=150, weight_kg=None)
    assert [(s.offset_minutes, s.rate) for s in steps] == [(0, 10), (30, 20), (60, 35), (120, 100), (240, 0)]
    f = fc("ublituximab", [(0, "start", 10), (30, "change", 20)], 45)
    assert (f.next_step_at, f.next_rate) == (at(60), 35)
    assert f.infused == 10.0  # 5 + 20 × 15/60
    assert f.expected_end == at(240)


def test_briumvi_second_infusion():
    # 100 × 30 min = 50 mL, 400 × 30 = 200: 250 mL in 60 min
    steps = planned_steps(PLANS["ublituximab"], infusion_number=2, dose=450, weight_kg=None)
    assert [(s.offset_minutes, s.rate) for s in steps] == [(0, 100), (30, 400), (60, 0)]
    f = fc("ublituximab", [(0, "start", 100)], 10, infusion_number=2)
    assert (f.next_step_at, f.next_rate) == (at(30), 400)
    assert f.expected_end == at(60)


# ------------------------------------------------------------------ rituximab (mg/h, ends by dose)


def test_rituximab_first_infusion_by_dose():
    # 50 mg/h + 50 every 30 min to 400: mg per step 25 + 50 + 75 + 100 + 125 + 150 + 175 = 700 mg
    # by minute 210 (rates 50…350); the last 300 mg at 400 mg/h take 45 min → 255 min (4 h 15 min).
    steps = planned_steps(PLANS["rituximab"], infusion_number=1, dose=1000, weight_kg=None)
    assert rates(steps) == [50, 100, 150, 200, 250, 300, 350, 400, 0]
    assert offsets(steps) == [0, 30, 60, 90, 120, 150, 180, 210, 255]
    assert {s.unit for s in steps} == {"mg/h"}


def test_rituximab_later_infusion_by_dose():
    # 100 + 100 every 30 min to 400: 50 + 100 + 150 = 300 mg by 90; 700 mg at 400 = 105 min → 195
    steps = planned_steps(PLANS["rituximab"], infusion_number=2, dose=1000, weight_kg=None)
    assert [(s.offset_minutes, s.rate) for s in steps] == [(0, 100), (30, 200), (60, 300), (90, 400), (195, 0)]


def test_rituximab_forecast_needs_a_concentration():
    f = fc("rituximab", [(0, "start", 25)], 10, dose=1000)
    assert f.next_step_at is None and f.expected_end is None
    assert "concentration" in f.note

    # 2 mg/mL: 25 mL/h is 50 mg/h; 10 min gives 8.333 mg
    f = fc("rituximab", [(0, "start", 25)], 10, dose=1000, concentration_mg_ml=2)
    assert f.unit == "mg/h" and f.amount_unit == "mg"
    assert f.infused == pytest.approx(50 * 10 / 60, abs=1e-3)
    assert (f.next_step_at, f.next_rate) == (at(30), 100)
    assert f.expected_end == at(255)


def test_rituximab_without_a_dose_has_steps_but_no_end():
    steps = planned_steps(PLANS["rituximab"], infusion_number=1, dose=None, weight_kg=None)
    assert rates(steps) == [50, 100, 150, 200, 250, 300, 350, 400]  # no end step
    f = fc("rituximab", [(0, "start", 25)], 10, dose=None, concentration_mg_ml=2)
    assert f.next_rate == 100 and f.expected_end is None and "no dose" in f.note


# ------------------------------------------------------------------ fixed and weight-based plans


def test_tysabri_fixed_sixty_minutes():
    steps = planned_steps(PLANS["natalizumab"], infusion_number=5, dose=300, weight_kg=None)
    assert steps == [Step(0, 100, "mL/h"), Step(60, 0, "mL/h")]  # 100 mL over 60 min
    f = fc("natalizumab", [(0, "start", 100)], 20)
    assert f.next_step_at is None and f.expected_end == at(60)
    assert f.infused == pytest.approx(100 / 3, abs=1e-3) and "fixed rate 100 mL/h" in f.note
    # a 10-minute pause: 33.3 mL by 20, resumed at 30; 66.7 mL at 100 mL/h = 40 min → 70
    f = fc("natalizumab", [(0, "start", 100), (20, "pause", None), (30, "resume", 100)], 40)
    assert f.expected_end == at(70)


def test_ivig_gives_start_and_max_but_no_forecast():
    steps = planned_steps(PLANS["ivig"], infusion_number=1, dose=1, weight_kg=70)
    assert steps == [Step(0, 35, "mL/h"), Step(None, 350, "mL/h")]  # 0.5 and 5 mL/kg/h × 70 kg
    assert vitals_due_at_steps(steps) == []
    f = fc("ivig", [(0, "start", 35)], 40, dose=1, weight_kg=70)
    assert (f.next_step_at, f.next_rate, f.expected_end, f.remaining) == (None, None, None, None)
    assert f.infused == pytest.approx(35 * 40 / 60, abs=1e-3)
    assert "step size" in f.note and "docs/clinical-basis.md" in f.note

    assert planned_steps(PLANS["ivig"], infusion_number=1, dose=1, weight_kg=None) == []
    assert "weight" in fc("ivig", [(0, "start", 35)], 40, dose=1).note


def test_no_plan():
    assert planned_steps(PLANS["cyclophosphamide"], infusion_number=1, dose=500, weight_kg=None) == []
    assert planned_steps(None, infusion_number=1, dose=500, weight_kg=None) == []
    f = fc("cyclophosphamide", [(0, "start", 100)], 10)
    assert f.next_step_at is None and f.expected_end is None and "No rate plan" in f.note


def test_note_uses_the_clinic_time_zone():
    f = fc("ocrelizumab_iv", [(0, "start", 30)], 10, tz="America/New_York")  # UTC−5 in March before DST
    assert f.note.startswith("at 04:30 increase to 60 mL/h")


def test_restart_at_half_the_onset_rate_after_a_severe_reaction():
    # Paused at minute 65 at 90 mL/h (52.5 mL in), restarted at 85 at 45 mL/h (half the onset rate,
    # docs/clinical-basis.md §3 severe rule). Plan clock at restart: 65 min. Hold to 115, then 60/90/120/150:
    #   85–115 at 45: 22.5 → 75 · 115–145 at 60: 30 → 105 · 145–175 at 90: 45 → 150
    #   175–205 at 120: 60 → 210 · then 40 mL at 150 mL/h = 16 min → 221.
    log = [(0, "start", 30), (30, "change", 60), (60, "change", 90), (65, "pause", None), (85, "resume", 45)]
    f = fc("ocrelizumab_iv", log, 90)
    assert (f.next_step_at, f.next_rate) == (at(115), 60)
    assert f.expected_end == at(221)
