"""The demo load's table-driven NEWS2 and flag check (infusion/demo/scoring.py) against the product's
scalar rules (infusion.clinical.news2 via vitals.score, and vitals.alert_flags), over the whole range a
vitals set can hold."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from infusion.clinical.vitals import INT_RANGES, TEMP_RANGE_C, Vitals, alert_flags, score
from infusion.demo.scoring import FastScore
from infusion.settings import AlertThresholds


def _vitals(
    sbp: int | None,
    dbp: int | None,
    pulse: int | None,
    rr: int | None,
    temp_c: float | None,
    spo2: int | None,
    on_oxygen: bool,
) -> Vitals:
    return Vitals(
        systolic=sbp,
        diastolic=dbp,
        pulse=pulse,
        resp_rate=rr,
        temperature_c=temp_c,
        spo2=spo2,
        pain=None,
        weight_kg=None,
        consciousness="A",
        on_oxygen=on_oxygen,
        position="sitting",
        unable_to_obtain={},
        provider_notified=False,
        provider_name=None,
        note=None,
    )


def _expected(thresholds: AlertThresholds, v: Vitals, baseline: int | None) -> tuple[int, bool, bool]:
    news = score(v)
    flags = alert_flags(v, thresholds, baseline_systolic=baseline, temperature_unit="F", news=news)
    return news.total, news.complete, bool(flags)


def _int(name: str) -> st.SearchStrategy[int | None]:
    low, high = INT_RANGES[name][:2]
    return st.none() | st.integers(low, high)


# every band edge of the chart and of the default thresholds, and the range ends, besides any value
_EDGES = [30.0, 34.9, 35.0, 35.01, 35.05, 35.1, 36.0, 36.01, 37.99, 38.0, 38.01, 39.0, 39.01, 45.0]
TEMPERATURES = st.none() | st.sampled_from(_EDGES) | st.floats(TEMP_RANGE_C[0], TEMP_RANGE_C[1])
DEMO_TEMPERATURES = st.integers(950, 1060).map(lambda tenths: round((tenths / 10 - 32) * 5 / 9, 2))

THRESHOLDS = st.builds(
    AlertThresholds,
    temperature_c_high=st.sampled_from([37.5, 38.0, 38.3]) | st.floats(36.0, 41.0),
    temperature_c_low=st.sampled_from([35.0, 35.5]) | st.floats(32.0, 36.0),
    systolic_low=st.integers(70, 110),
    systolic_high=st.integers(140, 220),
    diastolic_low=st.integers(40, 70),
    diastolic_high=st.integers(90, 130),
    pulse_low=st.integers(35, 60),
    pulse_high=st.integers(100, 150),
    resp_rate_low=st.integers(6, 12),
    resp_rate_high=st.integers(20, 30),
    spo2_low=st.integers(85, 95),
    systolic_drop_from_baseline=st.integers(10, 60),
    flag_news2_single_three=st.booleans(),
)


@settings(max_examples=400, deadline=None)
@given(
    sbp=_int("systolic"),
    dbp=_int("diastolic"),
    pulse=_int("pulse"),
    rr=_int("resp_rate"),
    temp_c=TEMPERATURES | DEMO_TEMPERATURES,
    spo2=_int("spo2"),
    on_oxygen=st.booleans(),
    baseline=_int("systolic"),
)
def test_fast_score_equals_the_scalar_rules_default_thresholds(
    sbp: int | None,
    dbp: int | None,
    pulse: int | None,
    rr: int | None,
    temp_c: float | None,
    spo2: int | None,
    on_oxygen: bool,
    baseline: int | None,
) -> None:
    thresholds = AlertThresholds()
    fast = FastScore(thresholds)
    v = _vitals(sbp, dbp, pulse, rr, temp_c, spo2, on_oxygen)
    assert fast.score(sbp, dbp, pulse, rr, temp_c, spo2, on_oxygen, baseline) == _expected(thresholds, v, baseline)


@settings(max_examples=300, deadline=None)
@given(
    thresholds=THRESHOLDS,
    sbp=_int("systolic"),
    dbp=_int("diastolic"),
    pulse=_int("pulse"),
    rr=_int("resp_rate"),
    temp_c=TEMPERATURES,
    spo2=_int("spo2"),
    on_oxygen=st.booleans(),
    baseline=_int("systolic"),
)
def test_fast_score_equals_the_scalar_rules_any_thresholds(
    thresholds: AlertThresholds,
    sbp: int | None,
    dbp: int | None,
    pulse: int | None,
    rr: int | None,
    temp_c: float | None,
    spo2: int | None,
    on_oxygen: bool,
    baseline: int | None,
) -> None:
    fast = FastScore(thresholds)
    v = _vitals(sbp, dbp, pulse, rr, temp_c, spo2, on_oxygen)
    assert fast.score(sbp, dbp, pulse, rr, temp_c, spo2, on_oxygen, baseline) == _expected(thresholds, v, baseline)


def test_every_single_value_of_each_measure_scores_as_the_chart() -> None:
    """Exhaustive over each integer measure's accepted range (one measure given, the rest blank)."""
    thresholds = AlertThresholds()
    fast = FastScore(thresholds)
    for name in ("systolic", "diastolic", "pulse", "resp_rate", "spo2"):
        low, high = INT_RANGES[name][:2]
        for value in range(low, high + 1):
            for on_oxygen in (False, True):
                values: dict[str, int | None] = dict.fromkeys(("systolic", "diastolic", "pulse", "resp_rate", "spo2"))
                values[name] = value
                sbp, dbp, pulse, rr, spo2 = (values[k] for k in ("systolic", "diastolic", "pulse", "resp_rate", "spo2"))
                v = _vitals(sbp, dbp, pulse, rr, None, spo2, on_oxygen)
                got = fast.score(sbp, dbp, pulse, rr, None, spo2, on_oxygen, None)
                assert got == _expected(thresholds, v, None), (name, value, on_oxygen)
