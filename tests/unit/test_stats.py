"""infusion.reads.trends.stats against published worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from infusion.reads.trends.stats import p_chart, wilson_interval


@pytest.mark.parametrize(
    ("x", "n", "low", "high"),
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0000, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_newcombe_1998(x: int, n: int, low: float, high: float) -> None:
    """Newcombe RG. Two-sided confidence intervals for the single proportion: comparison of
    seven methods. Stat Med 1998;17:857–872, Table II, method 3 (Wilson score interval without
    continuity correction), 95 %: 81/263 → 0.2553–0.3662; 15/148 → 0.0624–0.1605;
    0/20 → 0.0000–0.1611; 1/29 → 0.0061–0.1718 (published to four decimals).
    """
    lo, hi = wilson_interval(x, n)
    assert lo[0] == pytest.approx(low, abs=5e-5)
    assert hi[0] == pytest.approx(high, abs=5e-5)


def test_wilson_is_vectorised_and_nan_without_trials() -> None:
    lo, hi = wilson_interval(np.array([81, 0, 3]), np.array([263, 0, 8]))
    assert lo[0] == pytest.approx(0.2553, abs=5e-5) and hi[0] == pytest.approx(0.3662, abs=5e-5)
    assert math.isnan(lo[1]) and math.isnan(hi[1])
    # 3/8 by the closed form (Wilson 1927): centre (p + z²/2n)/(1 + z²/n) ± ...: 0.13684–0.69426
    assert lo[2] == pytest.approx(0.13684, abs=1e-5) and hi[2] == pytest.approx(0.69426, abs=1e-5)


# Montgomery, Introduction to Statistical Quality Control: orange-juice cans, trial control limits
# (Example "construction of a p chart", Table 6.1 / 7.1 depending on edition); the same 30 samples of
# n = 50 are the wafer example of the NIST/SEMATECH e-Handbook of Statistical Methods §6.3.3.2.
ORANGE_JUICE = [
    12,
    15,
    8,
    10,
    4,
    7,
    16,
    9,
    14,
    10,
    5,
    6,
    17,
    12,
    22,
    8,
    10,
    5,
    13,
    11,
    20,
    18,
    24,
    15,
    9,
    12,
    7,
    13,
    9,
    6,
]


def test_p_chart_matches_montgomery_orange_juice_example() -> None:
    """Montgomery / NIST e-Handbook §6.3.3.2: Σx = 347 of Σn = 1500, p̄ = 0.2313,
    UCL = 0.4102, LCL = 0.0524; samples 15 (p = 0.44) and 23 (p = 0.48) plot above the UCL.
    """
    chart = p_chart(ORANGE_JUICE, [50] * 30)
    assert chart["x"].sum() == 347 and chart["n"].sum() == 1500
    assert chart["p_bar"].iloc[0] == pytest.approx(0.2313, abs=5e-5)
    assert chart["ucl"].unique() == pytest.approx([0.4102], abs=5e-5)
    assert chart["lcl"].unique() == pytest.approx([0.0524], abs=5e-5)
    assert list(chart.index[chart["out_of_control"]] + 1) == [15, 23]
    assert list(chart.columns) == ["n", "x", "p", "p_bar", "ucl", "lcl", "out_of_control"]


def test_p_chart_variable_sizes_and_clipping() -> None:
    """Hand-computed: x = (2, 10, 1), n = (20, 50, 10): p̄ = 13/80 = 0.1625;
    3σ_i = 3√(0.1625·0.8375/n_i) = 0.24747, 0.15651, 0.34998, so UCL = 0.40997, 0.31902,
    0.51248 and LCL = −0.085 → 0, 0.00599, −0.187 → 0 (clipped to [0, 1]).
    """
    chart = p_chart([2, 10, 1], [20, 50, 10])
    assert chart["p_bar"].iloc[0] == pytest.approx(0.1625)
    assert list(chart["ucl"]) == pytest.approx([0.40997, 0.31902, 0.51248], abs=5e-5)
    assert list(chart["lcl"]) == pytest.approx([0.0, 0.00599, 0.0], abs=5e-5)
    assert not chart["out_of_control"].any()


def test_p_chart_flags_low_points_and_tolerates_empty_subgroups() -> None:
    # p̄ = 50/400 = 0.125; for n = 100, 3σ = 0.09922: LCL = 0.02578, so 0/100 is below it.
    chart = p_chart([25, 25, 0, 0], [100, 100, 100, 100])
    assert chart["lcl"].iloc[0] == pytest.approx(0.02578, abs=5e-5)
    assert list(chart["out_of_control"]) == [True, True, True, True]
    chart = p_chart([1, 0], [4, 0])
    assert math.isnan(chart["p"].iloc[1]) and math.isnan(chart["ucl"].iloc[1])
    assert not chart["out_of_control"].iloc[1]
    assert p_chart([], []).empty


def test_p_chart_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError):
        p_chart([5], [4])
