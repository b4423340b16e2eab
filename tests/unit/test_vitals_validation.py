"""Vitals as typed at the chair: accepted ranges, unit mistakes, SI conversion,
unable-to-obtain, provider notified, the check-in core set, and the alert flags
of docs/clinical-basis.md §6 at each threshold."""

from __future__ import annotations

import re

import pytest

from infusion.clinical.news2 import News2
from infusion.clinical.units import c_to_f, f_to_c, kg_to_lb, lb_to_kg, temperature_for_display, weight_for_display
from infusion.clinical.vitals import VitalsEntry, alert_flags, score, validate_vitals
from infusion.errors import ValidationError
from infusion.settings import AlertThresholds, ClinicSettings

NORMAL = dict(systolic=120, diastolic=80, pulse=72, resp_rate=16, temperature=36.8, spo2=98)


def validate(temperature_unit="C", weight_unit="kg", require_core=False, **fields):
    return validate_vitals(
        VitalsEntry(**fields), temperature_unit=temperature_unit, weight_unit=weight_unit, require_core=require_core
    )


def problems(**kwargs) -> dict[str, str]:
    with pytest.raises(ValidationError) as exc:
        validate(**kwargs)
    assert exc.value.problems, "a ValidationError must say what is wrong"
    return exc.value.problems


# ---------------------------------------------------------------- accepted ranges

# field, lowest accepted, highest accepted, the range as the message must show it, label
RANGES = [
    ("systolic", 40, 300, "40–300", "Systolic BP"),
    ("diastolic", 20, 200, "20–200", "Diastolic BP"),
    ("pulse", 20, 250, "20–250", "Pulse"),
    ("resp_rate", 4, 60, "4–60", "Respiration rate"),
    ("spo2", 50, 100, "50–100", "SpO2"),
    ("pain", 0, 10, "0–10", "Pain"),
]


def _entry_with(field, value):
    fields = dict(NORMAL)
    if field == "systolic":
        fields["diastolic"] = 30  # keep DBP below any accepted SBP
    if field == "diastolic":
        fields["systolic"] = 300  # keep SBP above any accepted DBP
    fields[field] = value
    return fields


@pytest.mark.parametrize("field,low,high,text,label", RANGES)
def test_range_edges_are_accepted(field, low, high, text, label):
    for value in (low, high):
        vitals = validate(**_entry_with(field, value))
        assert getattr(vitals, field) == value


@pytest.mark.parametrize("field,low,high,text,label", RANGES)
def test_just_outside_range_is_rejected_naming_field_and_range(field, low, high, text, label):
    for value in (low - 1, high + 1):
        found = problems(**_entry_with(field, value))
        assert set(found) == {field}, found
        assert label in found[field]
        assert text in found[field]
        assert str(value) in found[field]


def test_diastolic_must_be_below_systolic():
    found = problems(**{**NORMAL, "systolic": 120, "diastolic": 120})
    assert set(found) == {"diastolic"}
    assert "below systolic" in found["diastolic"] and "120" in found["diastolic"]
    assert validate(**{**NORMAL, "systolic": 120, "diastolic": 119}).diastolic == 119


def test_values_must_be_whole_numbers_and_say_so():
    found = problems(**{**NORMAL, "systolic": 120.5})
    assert set(found) == {"systolic"}
    assert "whole number" in found["systolic"]
    assert validate(**{**NORMAL, "pulse": 72.0}).pulse == 72


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_not_a_number_is_a_message_not_a_traceback(bad):
    found = problems(**{**NORMAL, "pulse": bad})
    assert set(found) == {"pulse"}
    assert "20–250" in found["pulse"]


def test_blood_pressure_needs_both_numbers():
    assert "both" in problems(systolic=120)["diastolic"]
    assert "both" in problems(diastolic=80)["systolic"]
    # but a half that could not be obtained is fine
    vitals = validate(systolic=120, unable_to_obtain={"diastolic": "patient moving"})
    assert vitals.systolic == 120 and vitals.diastolic is None


def test_several_problems_are_reported_together():
    found = problems(systolic=400, diastolic=80, pulse=5, spo2=101, pain=11)
    assert set(found) == {"systolic", "pulse", "spo2", "pain"}


def test_empty_set_is_rejected():
    assert "at least one" in problems()["vitals"]


def test_consciousness_and_position_are_checked():
    assert "ACVPU" in problems(pulse=70, consciousness="X")["consciousness"]
    assert "sitting" in problems(pulse=70, position="upside down")["position"]
    assert validate(pulse=70, consciousness="V", position="lying").consciousness == "V"


# ---------------------------------------------------------------- temperature units


@pytest.mark.parametrize("value", [30.0, 36.8, 45.0])
def test_celsius_clinic_accepts_its_range(value):
    assert validate(temperature=value).temperature_c == pytest.approx(value)


@pytest.mark.parametrize("value", [29.9, 45.1, 60.0])
def test_celsius_clinic_rejects_outside_range(value):
    message = problems(temperature=value)["temperature"]
    assert "30–45 °C" in message
    assert "°F" not in message


@pytest.mark.parametrize("value", [98.6, 100.4, 86.0, 113.0])
def test_fahrenheit_value_in_a_celsius_clinic_is_caught_and_named(value):
    message = problems(temperature=value)["temperature"]
    assert "°F" in message
    assert "°C" in message
    assert f"{f_to_c(value):.1f} °C" in message  # offers what was probably meant


@pytest.mark.parametrize("value", [86.0, 98.6, 113.0])
def test_fahrenheit_clinic_accepts_its_range_and_stores_celsius(value):
    vitals = validate(temperature_unit="F", temperature=value)
    assert vitals.temperature_c == pytest.approx(f_to_c(value), abs=0.01)


def test_fahrenheit_clinic_converts_known_points():
    assert validate(temperature_unit="F", temperature=98.6).temperature_c == pytest.approx(37.0)
    assert validate(temperature_unit="F", temperature=100.4).temperature_c == pytest.approx(38.0)
    assert validate(temperature_unit="F", temperature=212 / 2).temperature_c == pytest.approx(41.11, abs=0.01)


@pytest.mark.parametrize("value", [36.8, 38.0, 30.0, 45.0])
def test_celsius_value_in_a_fahrenheit_clinic_is_caught_and_named(value):
    message = problems(temperature_unit="F", temperature=value)["temperature"]
    assert "°C" in message and "°F" in message
    assert "86–113 °F" in message


@pytest.mark.parametrize("value", [85.9, 113.1, 150.0, 50.0])
def test_fahrenheit_clinic_rejects_outside_range(value):
    message = problems(temperature_unit="F", temperature=value)["temperature"]
    assert "86–113 °F" in message


# ---------------------------------------------------------------- weight units


def test_pounds_are_stored_as_kilograms():
    vitals = validate(weight_unit="lb", weight=154.3)
    assert vitals.weight_kg == pytest.approx(154.3 / 2.2046226218, abs=0.01)
    assert validate(weight_unit="lb", weight=220.5).weight_kg == pytest.approx(100.02, abs=0.01)


def test_kilograms_are_stored_unchanged():
    assert validate(weight=72.4).weight_kg == pytest.approx(72.4)


def test_weight_out_of_range_names_clinic_unit():
    assert "lb" in problems(weight_unit="lb", weight=10)["weight"]
    assert "kg" in problems(weight=400)["weight"]
    # 30 kg typed into a lb clinic is 13.6 kg: rejected rather than stored as a child's weight
    assert "weight" in problems(weight_unit="lb", weight=30)


@pytest.mark.parametrize("unit", ["kg", "lb"])
def test_weight_range_in_the_message_is_accepted_at_both_ends(unit):
    message = problems(weight_unit=unit, weight=5000)["weight"]
    low, high = re.search(r"range (\d+(?:\.\d+)?)–(\d+(?:\.\d+)?) " + unit, message).groups()
    for bound in (float(low), float(high)):
        assert validate(weight_unit=unit, weight=bound).weight_kg is not None
    for outside in (float(low) - 1, float(high) + 1):
        assert "weight" in problems(weight_unit=unit, weight=outside)


def test_unit_conversions_round_trip():
    for c in (30.0, 36.6, 38.0, 45.0):
        assert f_to_c(c_to_f(c)) == pytest.approx(c)
    assert c_to_f(38.0) == pytest.approx(100.4)
    assert c_to_f(37.0) == pytest.approx(98.6)
    assert lb_to_kg(kg_to_lb(81.3)) == pytest.approx(81.3)
    assert kg_to_lb(1) == pytest.approx(2.2046, abs=1e-4)
    assert temperature_for_display(38.0, "F") == 100.4
    assert temperature_for_display(37.04, "C") == 37.0
    assert weight_for_display(100.0, "lb") == 220.5
    assert weight_for_display(None, "lb") is None


# ---------------------------------------------------------------- unable to obtain, provider notified


def test_unable_to_obtain_needs_a_reason():
    message = problems(systolic=120, diastolic=80, unable_to_obtain={"spo2": "  "})["spo2"]
    assert "SpO2" in message and "why" in message


def test_unable_to_obtain_is_kept_with_its_reason():
    vitals = validate(systolic=120, diastolic=80, unable_to_obtain={"spo2": " cold fingers "})
    assert vitals.spo2 is None
    assert vitals.unable_to_obtain == {"spo2": "cold fingers"}


def test_value_and_unable_to_obtain_together_is_rejected():
    assert "choose one" in problems(spo2=97, unable_to_obtain={"spo2": "cold fingers"})["spo2"]


def test_unknown_measure_marked_unable():
    assert "glucose" in problems(pulse=70, unable_to_obtain={"glucose": "no meter"})


def test_provider_notified_needs_a_name():
    assert "provider" in problems(**NORMAL, provider_notified=True, provider_name=" ")["provider_name"].lower()
    vitals = validate(**NORMAL, provider_notified=True, provider_name=" Dr Grey ")
    assert vitals.provider_notified and vitals.provider_name == "Dr Grey"


# ---------------------------------------------------------------- check-in core set

CORE = ("systolic", "diastolic", "pulse", "resp_rate", "temperature", "spo2")


def test_check_in_accepts_the_core_set():
    vitals = validate(require_core=True, **NORMAL)
    assert vitals.systolic == 120 and vitals.temperature_c == pytest.approx(36.8)


@pytest.mark.parametrize("missing", CORE)
def test_check_in_requires_each_core_value(missing):
    fields = {k: v for k, v in NORMAL.items() if k != missing}
    if missing in ("systolic", "diastolic"):
        fields.pop("systolic", None)
        fields.pop("diastolic", None)
    found = problems(require_core=True, **fields)
    assert missing in found
    if missing not in ("systolic", "diastolic"):
        assert "check-in" in found[missing]


@pytest.mark.parametrize("missing", CORE)
def test_check_in_core_value_may_be_unable_to_obtain_with_reason(missing):
    fields = {k: v for k, v in NORMAL.items() if k != missing}
    vitals = validate(require_core=True, unable_to_obtain={missing: "equipment unavailable"}, **fields)
    assert vitals.unable_to_obtain == {missing: "equipment unavailable"}


def test_check_in_does_not_require_pain_or_weight():
    vitals = validate(require_core=True, **NORMAL)
    assert vitals.pain is None and vitals.weight_kg is None


def test_a_partial_set_is_fine_outside_check_in():
    vitals = validate(pulse=88)
    assert vitals.pulse == 88 and vitals.systolic is None


# ---------------------------------------------------------------- alert flags (docs/clinical-basis.md §6)


def flags_for(baseline_systolic=None, thresholds=None, temperature_unit="C", **overrides):
    vitals = validate(temperature_unit=temperature_unit, **{**NORMAL, **overrides})
    return alert_flags(
        vitals,
        thresholds or AlertThresholds(),
        baseline_systolic=baseline_systolic,
        temperature_unit=temperature_unit,
        news=score(vitals),
    )


def codes(flags) -> set[str]:
    return {f.code for f in flags}


def test_normal_set_has_no_flags():
    assert flags_for(baseline_systolic=120) == []


def test_defaults_are_the_documented_thresholds():
    t = ClinicSettings().thresholds
    assert (
        t.temperature_c_high,
        t.systolic_low,
        t.systolic_high,
        t.diastolic_high,
        t.pulse_low,
        t.pulse_high,
        t.resp_rate_high,
        t.spo2_low,
        t.systolic_drop_from_baseline,
        t.flag_news2_single_three,
        t.diastolic_low,
        t.resp_rate_low,
        t.temperature_c_low,
        t.spo2_low_scale2,
    ) == (38.0, 90, 180, 110, 50, 120, 24, 92, 30, True, 60, 9, 35.0, 88)


@pytest.mark.parametrize(
    "overrides,code,flagged",
    [
        ({"temperature": 37.9}, "temp_high", False),
        ({"temperature": 38.0}, "temp_high", True),
        ({"systolic": 90}, "sbp_low", False),
        ({"systolic": 89}, "sbp_low", True),
        ({"systolic": 179}, "sbp_high", False),
        ({"systolic": 180}, "sbp_high", True),
        ({"diastolic": 109, "systolic": 170}, "dbp_high", False),
        ({"diastolic": 110, "systolic": 170}, "dbp_high", True),
        ({"pulse": 50}, "pulse_low", False),
        ({"pulse": 49}, "pulse_low", True),
        ({"pulse": 120}, "pulse_high", False),
        ({"pulse": 121}, "pulse_high", True),
        ({"resp_rate": 24}, "rr_high", False),
        ({"resp_rate": 25}, "rr_high", True),
        ({"spo2": 92}, "spo2_low", False),
        ({"spo2": 91}, "spo2_low", True),
    ],
)
def test_threshold_edges(overrides, code, flagged):
    assert (code in codes(flags_for(**overrides))) is flagged


def test_fever_threshold_in_fahrenheit_clinic():
    assert "temp_high" not in codes(flags_for(temperature_unit="F", temperature=100.3))
    found = [f for f in flags_for(temperature_unit="F", temperature=100.4) if f.code == "temp_high"]
    assert found and "100.4 °F" in found[0].message  # shown in the clinic's unit


@pytest.mark.parametrize(
    "systolic,flagged,word",
    [(110, False, None), (109, True, "fell"), (170, False, None), (171, True, "rose")],
)
def test_systolic_change_from_baseline(systolic, flagged, word):
    # baseline 140: a change of exactly 30 is not flagged, 31 is (docs/clinical-basis.md §6 "> 30 mmHg")
    found = [f for f in flags_for(baseline_systolic=140, systolic=systolic, diastolic=70) if f.code == "sbp_change"]
    assert bool(found) is flagged
    if flagged:
        assert word in found[0].message and "140" in found[0].message
        assert f"{word} 31 mmHg" in found[0].message


def test_no_baseline_no_change_flag():
    assert "sbp_change" not in codes(flags_for(baseline_systolic=None, systolic=160, diastolic=70))


@pytest.mark.parametrize(
    "overrides",
    [
        {"consciousness": "V"},
        {"consciousness": "C"},
        {"resp_rate": 8},
        {"temperature": 35.0},
        {"systolic": 220, "diastolic": 100},
        {"pulse": 131},
    ],
)
def test_news2_single_parameter_three_is_flagged(overrides):
    found = [f for f in flags_for(**overrides) if f.code == "news2_single_3"]
    assert found, overrides


def test_news2_single_three_not_flagged_for_a_two():
    # RR 21–24 scores 2 and pulse 111–130 scores 2: no single-3 flag
    assert "news2_single_3" not in codes(flags_for(resp_rate=22, pulse=115))


def test_news2_single_three_can_be_switched_off_by_the_clinic():
    off = AlertThresholds(flag_news2_single_three=False)
    assert flags_for(thresholds=off, consciousness="V") == []


def test_clinic_thresholds_are_used():
    custom = AlertThresholds(spo2_low=90, pulse_high=100)
    assert "spo2_low" not in codes(flags_for(thresholds=custom, spo2=91))
    assert "pulse_high" in codes(flags_for(thresholds=custom, pulse=101))


def test_flag_messages_name_the_value_and_threshold():
    by_code = {f.code: f for f in flags_for(systolic=85, diastolic=60, spo2=90, pulse=130)}
    assert "85" in by_code["sbp_low"].message and "90" in by_code["sbp_low"].message
    assert "90" in by_code["spo2_low"].message and "92" in by_code["spo2_low"].message
    assert "130" in by_code["pulse_high"].message and "120" in by_code["pulse_high"].message
    assert by_code["sbp_low"].as_dict()["field"] == "systolic"


def test_missing_values_raise_no_flags():
    vitals = validate(pulse=70)
    assert alert_flags(vitals, AlertThresholds(), baseline_systolic=120, news=score(vitals)) == []


def test_score_uses_si_values():
    # 102.4 °F is 39.1 °C: NEWS2 temperature 2
    vitals = validate(temperature_unit="F", **{**NORMAL, "temperature": 102.4})
    result = score(vitals)
    assert isinstance(result, News2)
    assert result.parts["temperature"] == 2


# Every measure with a low and a high limit flags both (docs/clinical-basis.md §6): DBP < 60 (NHS "below
# 90/60 mmHg"), RR ≤ 8 and T ≤ 35.0 °C (the RCP NEWS2 Chart 1 three-point bands), SpO2 < 88 % on Scale 2
# (the Chart 1 Scale 2 target 88–92 %).
@pytest.mark.parametrize(
    "overrides,code,flagged",
    [
        ({"diastolic": 60}, "dbp_low", False),
        ({"diastolic": 59}, "dbp_low", True),
        ({"diastolic": 20}, "dbp_low", True),
        ({"resp_rate": 9}, "rr_low", False),
        ({"resp_rate": 8}, "rr_low", True),
        ({"temperature": 35.1}, "temp_low", False),
        ({"temperature": 35.0}, "temp_low", True),
        ({"temperature": 37.99}, "temp_high", False),  # the exact value, never rounded up to 38.0
    ],
)
def test_low_limits_are_flagged(overrides, code, flagged):
    assert (code in codes(flags_for(**overrides))) is flagged


def test_spo2_low_limit_follows_the_patients_scale():
    assert "spo2_low" in codes(flags_for(spo2=89))
    assert "spo2_low" not in codes(flags_for(spo2=89, spo2_scale=2))
    assert "spo2_low" in codes(flags_for(spo2=87, spo2_scale=2))
