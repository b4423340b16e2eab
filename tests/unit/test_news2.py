"""NEWS2 against the RCP 2017 chart (docs/clinical-basis.md §5: RCP NEWS2 Chart 1 scoring, Chart 3/4 bands).

Each parameter is tested on both sides of every band boundary, so a band that
is shifted by one unit (or a tenth of a degree) fails.
"""

from __future__ import annotations

import itertools

import pytest

from infusion.clinical.news2 import (
    news2,
    score_consciousness,
    score_oxygen,
    score_pulse,
    score_resp_rate,
    score_spo2_scale1,
    score_spo2_scale2,
    score_systolic,
    score_temperature,
)

NORMAL = dict(resp_rate=16, spo2=98, on_oxygen=False, systolic=125, pulse=72, consciousness="A", temperature_c=36.8)


def total(**overrides):
    return news2(**{**NORMAL, **overrides})


# (last value of the lower band, its score, first value of the next band, its score): RCP NEWS2 Chart 1
RR_EDGES = [(8, 3, 9, 1), (11, 1, 12, 0), (20, 0, 21, 2), (24, 2, 25, 3)]
SPO2_EDGES = [(91, 3, 92, 2), (93, 2, 94, 1), (95, 1, 96, 0)]
SBP_EDGES = [(90, 3, 91, 2), (100, 2, 101, 1), (110, 1, 111, 0), (219, 0, 220, 3)]
PULSE_EDGES = [(40, 3, 41, 1), (50, 1, 51, 0), (90, 0, 91, 1), (110, 1, 111, 2), (130, 2, 131, 3)]
TEMP_EDGES = [(35.0, 3, 35.1, 1), (36.0, 1, 36.1, 0), (38.0, 0, 38.1, 1), (39.0, 1, 39.1, 2)]


def _edge_cases(edges):
    for low, low_score, high, high_score in edges:
        yield pytest.param(low, low_score, id=f"{low}")
        yield pytest.param(high, high_score, id=f"{high}")


@pytest.mark.parametrize("value,expected", list(_edge_cases(RR_EDGES)))
def test_resp_rate_band_edges(value, expected):
    assert score_resp_rate(value) == expected
    result = total(resp_rate=value)
    assert result.parts["resp_rate"] == expected
    assert result.total == expected  # every other parameter is normal


@pytest.mark.parametrize("value,expected", list(_edge_cases(SPO2_EDGES)))
def test_spo2_scale1_band_edges(value, expected):
    assert score_spo2_scale1(value) == expected
    assert total(spo2=value).total == expected


@pytest.mark.parametrize("value,expected", list(_edge_cases(SBP_EDGES)))
def test_systolic_band_edges(value, expected):
    assert score_systolic(value) == expected
    assert total(systolic=value).total == expected


@pytest.mark.parametrize("value,expected", list(_edge_cases(PULSE_EDGES)))
def test_pulse_band_edges(value, expected):
    assert score_pulse(value) == expected
    assert total(pulse=value).total == expected


@pytest.mark.parametrize("value,expected", list(_edge_cases(TEMP_EDGES)))
def test_temperature_band_edges(value, expected):
    assert score_temperature(value) == expected
    assert total(temperature_c=value).total == expected


@pytest.mark.parametrize("value,expected", [(4, 3), (60, 3), (16, 0)])
def test_resp_rate_extremes(value, expected):
    assert score_resp_rate(value) == expected


@pytest.mark.parametrize("value,expected", [(50, 3), (100, 0), (97, 0)])
def test_spo2_extremes(value, expected):
    assert score_spo2_scale1(value) == expected


@pytest.mark.parametrize("value,expected", [(40, 3), (300, 3), (150, 0)])
def test_systolic_extremes(value, expected):
    assert score_systolic(value) == expected


@pytest.mark.parametrize("value,expected", [(20, 3), (250, 3), (70, 0)])
def test_pulse_extremes(value, expected):
    assert score_pulse(value) == expected


@pytest.mark.parametrize("value,expected", [(30.0, 3), (45.0, 2), (37.0, 0)])
def test_temperature_extremes(value, expected):
    assert score_temperature(value) == expected


def test_temperature_converted_from_fahrenheit_is_not_rounded_into_a_lower_band():
    # Temperatures are stored in °C with two decimals (100.5 °F → 38.06 °C). The chart's bands are
    # half-open on the exact value (docs/clinical-basis.md §5): anything above 38.0 is in 38.1–39.0.
    assert score_temperature(38.04) == 1
    assert score_temperature(38.06) == 1
    assert score_temperature(35.04) == 1
    assert score_temperature(35.0) == 3


def test_oxygen_scores_two_and_air_zero():
    assert score_oxygen(True) == 2
    assert score_oxygen(False) == 0
    assert total(on_oxygen=True).total == 2
    assert total(on_oxygen=True).parts["oxygen"] == 2


@pytest.mark.parametrize("level,expected", [("A", 0), ("C", 3), ("V", 3), ("P", 3), ("U", 3)])
def test_acvpu(level, expected):
    assert score_consciousness(level) == expected
    assert total(consciousness=level).total == expected


def test_worked_total_adds_every_parameter():
    # RR 22 → 2, SpO2 93 → 2, oxygen → 2, SBP 105 → 1, pulse 115 → 2, Alert → 0, 38.5 °C → 1: 10
    result = news2(
        resp_rate=22, spo2=93, on_oxygen=True, systolic=105, pulse=115, consciousness="A", temperature_c=38.5
    )
    assert result.parts == {
        "oxygen": 2,
        "resp_rate": 2,
        "spo2": 2,
        "systolic": 1,
        "pulse": 2,
        "consciousness": 0,
        "temperature": 1,
    }
    assert result.total == 10
    assert result.complete
    assert result.band == "high"
    assert result.describe() == "NEWS2 10"


def test_second_worked_total_low_risk():
    # RR 10 → 1, SpO2 95 → 1, air, SBP 130 → 0, pulse 95 → 1, Alert, 36.0 °C → 1: 4
    result = news2(
        resp_rate=10, spo2=95, on_oxygen=False, systolic=130, pulse=95, consciousness="A", temperature_c=36.0
    )
    assert result.total == 4
    assert result.band == "low"
    assert not result.any_single_three


def test_all_normal_scores_zero():
    result = total()
    assert result.total == 0
    assert result.complete and result.missing == ()
    assert result.band == "low"  # RCP Chart 3: aggregate 0–4 is "Low", 0 included


def test_max_total_is_twenty():
    worst = news2(resp_rate=8, spo2=91, on_oxygen=True, systolic=90, pulse=40, consciousness="U", temperature_c=35.0)
    assert worst.total == 20
    assert worst.band == "high"


def test_no_combination_exceeds_twenty_and_total_is_sum_of_parts():
    # one value from every band of every parameter
    rr = [6, 10, 16, 22, 30]
    spo2 = [88, 93, 95, 98]
    sbp = [80, 95, 105, 150, 230]
    pulse = [35, 45, 70, 100, 120, 140]
    temp = [34.0, 35.5, 37.0, 38.5, 40.0]
    highest = 0
    for r, s, b, p, t, o, c in itertools.product(rr, spo2, sbp, pulse, temp, (False, True), ("A", "V")):
        result = news2(resp_rate=r, spo2=s, on_oxygen=o, systolic=b, pulse=p, consciousness=c, temperature_c=t)
        assert result.total == sum(result.parts.values())
        highest = max(highest, result.total)
    assert highest == 20


@pytest.mark.parametrize("missing", ["resp_rate", "spo2", "systolic", "pulse", "consciousness", "temperature_c"])
def test_missing_parameter_scores_the_rest_and_says_so(missing):
    # Everything abnormal enough to score, then drop one parameter: the total loses exactly its points.
    values = dict(resp_rate=22, spo2=93, on_oxygen=True, systolic=105, pulse=115, consciousness="V", temperature_c=38.5)
    full = news2(**values)
    name = "temperature" if missing == "temperature_c" else missing
    partial = news2(**{**values, missing: None})
    assert partial.total == full.total - full.parts[name]
    assert name not in partial.parts
    assert partial.missing == (name,)
    assert not partial.complete
    assert "partial" in partial.describe() and name in partial.describe()


def test_only_oxygen_known_when_nothing_measured():
    result = news2(
        resp_rate=None, spo2=None, on_oxygen=True, systolic=None, pulse=None, consciousness=None, temperature_c=None
    )
    assert result.total == 2
    assert set(result.missing) == {"resp_rate", "spo2", "systolic", "pulse", "consciousness", "temperature"}


@pytest.mark.parametrize(
    "overrides,expected_total,band",
    [
        ({}, 0, "low"),
        ({"pulse": 95}, 1, "low"),
        ({"pulse": 95, "resp_rate": 10, "spo2": 95, "temperature_c": 38.5}, 4, "low"),
        ({"consciousness": "V"}, 3, "low-medium"),  # 3 in a single parameter (chart 4 red score)
        ({"systolic": 90, "pulse": 95}, 4, "low-medium"),
        ({"resp_rate": 22, "spo2": 93, "pulse": 95}, 5, "medium"),
        ({"resp_rate": 22, "spo2": 93, "on_oxygen": True}, 6, "medium"),
        ({"consciousness": "V", "spo2": 93}, 5, "medium"),  # aggregate 5 outranks the single 3
        ({"resp_rate": 22, "spo2": 93, "on_oxygen": True, "pulse": 95}, 7, "high"),
    ],
)
def test_chart4_bands(overrides, expected_total, band):
    result = total(**overrides)
    assert result.total == expected_total
    assert result.band == band


def test_single_three_detected_in_each_parameter_that_can_score_three():
    for overrides in (
        {"resp_rate": 8},
        {"resp_rate": 25},
        {"spo2": 91},
        {"systolic": 90},
        {"systolic": 220},
        {"pulse": 40},
        {"pulse": 131},
        {"consciousness": "C"},
        {"temperature_c": 35.0},
    ):
        assert total(**overrides).any_single_three, overrides
    # oxygen (2) and a high temperature (2) never make a "single 3"
    assert not total(on_oxygen=True, temperature_c=39.5).any_single_three


# ------------------------------------------------------------------ SpO2 Scale 2 (RCP NEWS2 Chart 1)
# (SpO2, on oxygen, points): ≤ 83 → 3, 84–85 → 2, 86–87 → 1, 88–92 → 0, ≥ 93 on air → 0,
# 93–94 on O2 → 1, 95–96 on O2 → 2, ≥ 97 on O2 → 3 (docs/clinical-basis.md §5)
SCALE2 = [
    (83, False, 3),
    (84, False, 2),
    (85, False, 2),
    (86, False, 1),
    (87, False, 1),
    (88, False, 0),
    (92, False, 0),
    (92, True, 0),
    (93, False, 0),
    (100, False, 0),
    (93, True, 1),
    (94, True, 1),
    (95, True, 2),
    (96, True, 2),
    (97, True, 3),
    (100, True, 3),
]


@pytest.mark.parametrize("spo2,on_oxygen,expected", SCALE2)
def test_spo2_scale2_band_edges(spo2, on_oxygen, expected):
    assert score_spo2_scale2(spo2, on_oxygen) == expected
    result = total(spo2=spo2, on_oxygen=on_oxygen, spo2_scale=2)
    assert result.parts["spo2"] == expected
    assert result.total == expected + (2 if on_oxygen else 0)  # the air/oxygen row still scores
    assert result.spo2_scale == 2


def test_result_says_which_scale_scored_it():
    assert total().spo2_scale == 1
    on_two = total(spo2=89, spo2_scale=2)
    assert on_two.spo2_scale == 2 and on_two.total == 0
    assert total(spo2=89).parts["spo2"] == 3  # the same saturation on Scale 1
    assert "Scale 2" in on_two.describe()
    with pytest.raises(ValueError):
        total(spo2_scale=3)


# ------------------------------------------------------------------ temperature at any precision
# RCP Chart 1 prints tenths (35.1–36.0 …); the API accepts hundredths and more. Each band is a half-open
# interval on the exact value, so 35.05 is above 35.0 and in the 35.1–36.0 band, never rounded down.
@pytest.mark.parametrize(
    "temp,expected",
    [
        (35.0, 3),
        (35.0001, 1),
        (35.05, 1),
        (36.0, 1),
        (36.05, 0),
        (38.0, 0),
        (38.05, 1),
        (39.0, 1),
        (39.05, 2),
        (34.95, 3),
        (37.95, 0),
    ],
)
def test_temperature_between_tenths_falls_in_the_chart_band_above(temp, expected):
    assert score_temperature(temp) == expected
