"""Funnel-plot limits, the per-site frame and the figure (infusion.reads.trends.funnel, infusion.charts.funnel).

The limits are checked against an independent computation: the binomial probabilities are built here
from log-gamma (no scipy), and each limit is found as the quantile of the "spread-out" binomial that
Spiegelhalter's interpolation describes (each count's probability spread evenly over one unit below it
for the lower limit, above it for the upper limit), by walking up the cumulative sum. The code under
test instead takes scipy's binomial quantile and the closed-form α.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from infusion.charts.funnel import OUTSIDE_COLOUR, WITHIN_COLOUR, funnel_caption, funnel_figure
from infusion.reads.trends.funnel import (
    ABOVE_95,
    ABOVE_998,
    BELOW_95,
    FUNNEL_COLUMNS,
    FUNNEL_CURVE_COLUMNS,
    SIGNALS,
    WITHIN,
    funnel_curve,
    funnel_frame,
    funnel_limits,
)


def _pmf(n: int, p: float) -> list[float]:
    """Binomial(n, p) probabilities of 0..n from log-gamma (independent of scipy)."""
    if p == 0.0:
        return [1.0] + [0.0] * n
    if p == 1.0:
        return [0.0] * n + [1.0]
    log_p, log_q = math.log(p), math.log1p(-p)
    return [
        math.exp(math.lgamma(n + 1) - math.lgamma(r + 1) - math.lgamma(n - r + 1) + r * log_p + (n - r) * log_q)
        for r in range(n + 1)
    ]


def _spread_quantile(n: int, p: float, prob: float, upper: bool) -> float:
    """Quantile of the binomial with each count's mass spread over [r − 1, r] (lower) or [r, r + 1] (upper)."""
    below = 0.0
    for r, mass in enumerate(_pmf(n, p)):
        if mass > 0 and below + mass >= prob:
            start = r if upper else r - 1
            return min(max((start + (prob - below) / mass) / n, 0.0), 1.0)
        below += mass
    return 1.0


def _reference(n: int, p: float, coverage: float) -> tuple[float, float]:
    tail = (1 - coverage) / 2
    return _spread_quantile(n, p, tail, upper=False), _spread_quantile(n, p, 1 - tail, upper=True)


def _tail_at_least(r: int, n: int, p: float) -> float:
    return sum(_pmf(n, p)[r:])


def _tail_at_most(r: int, n: int, p: float) -> float:
    return sum(_pmf(n, p)[: r + 1])


@pytest.mark.parametrize("coverage", [0.95, 0.998])
@pytest.mark.parametrize("p", [0.003, 0.05, 0.137, 0.5, 0.91])
def test_limits_match_the_independent_spread_binomial_quantile(p: float, coverage: float) -> None:
    sizes = [1, 2, 3, 5, 8, 13, 20, 37, 50, 99, 250, 600, 1000]
    lower, upper = funnel_limits(sizes, p, coverage)
    for i, n in enumerate(sizes):
        ref_low, ref_high = _reference(n, p, coverage)
        assert lower[i] == pytest.approx(ref_low, abs=1e-9), (n, "lower")
        assert upper[i] == pytest.approx(ref_high, abs=1e-9), (n, "upper")


def test_limits_match_hand_computed_values() -> None:
    """n = 5, p = 0.05 by hand: F(0) = 0.95⁵ = 0.7737809, f(1) = 5·0.05·0.95⁴ = 0.2036266,
    F(1) = 0.9774075, f(2) = 0.0214344, F(2) = 0.9988419, f(3) = 0.0011281, F(3) = 0.9999700.
    Upper 95 %: r = 1 (first F ≥ 0.975), α = (0.9774075 − 0.975)/0.2036266 = 0.0118233,
    limit (1 + 1 − α)/5 = 0.3976353. Upper 99.8 %: r = 3, α = (0.9999700 − 0.999)/0.0011281 = 0.8598,
    limit (3 + 1 − α)/5 = 0.62803. Lower limits: r = 0 and α > 0, so (0 − α)/5 < 0 → 0.
    n = 100, p = 0.5, lower 95 %: F(39) = 0.0176001, F(40) = 0.0284439 → r = 40,
    α = (0.0284439 − 0.025)/0.0108438 = 0.31759, limit (40 − α)/100 = 0.3968241.
    """
    lower, upper = funnel_limits([5], 0.05, 0.95)
    assert upper[0] == pytest.approx(0.3976353, abs=1e-6) and lower[0] == 0.0
    lower, upper = funnel_limits([5], 0.05, 0.998)
    assert upper[0] == pytest.approx(0.62803, abs=1e-5) and lower[0] == 0.0
    lower, upper = funnel_limits([100], 0.5, 0.95)
    assert lower[0] == pytest.approx(0.3968241, abs=1e-6)
    assert upper[0] == pytest.approx(1 - 0.3968241, abs=1e-6)  # mirror image at p = 0.5


@pytest.mark.parametrize("coverage", [0.95, 0.998])
@pytest.mark.parametrize("p", [0.0213, 0.0537, 0.2913])
def test_a_site_is_flagged_exactly_when_its_binomial_tail_is_below_nominal(p: float, coverage: float) -> None:
    """What the quality team relies on: beyond a limit ⇔ chance alone gives that count or worse less
    often than the nominal tail (2.5 % or 0.1 % each side), for every count at every size tried."""
    tail = (1 - coverage) / 2
    for n in [*range(1, 41), 75, 160]:
        lower, upper = funnel_limits([n], p, coverage)
        for r in range(n + 1):
            assert (r / n > upper[0]) == (_tail_at_least(r, n, p) <= tail), (n, r, "above")
            assert (r / n < lower[0]) == (_tail_at_most(r, n, p) < tail), (n, r, "below")


def test_one_reaction_in_five_is_not_out_of_line_when_the_network_rate_is_5_percent() -> None:
    """P(R ≥ 1 | n = 5, p = 0.05) = 1 − 0.95⁵ = 22.6 %: chance, not a signal. (Writing the upper limit as
    (r_P − α)/n, like the lower one, would put it at 0.1976 and flag this site.)"""
    frame = funnel_frame(_counts([("Big", 995, 49), ("One", 5, 1)]))
    assert frame["network_rate"].iloc[0] == pytest.approx(0.05)
    assert list(frame["signal"]) == [WITHIN, WITHIN]


@pytest.mark.parametrize("coverage", [0.95, 0.998])
@pytest.mark.parametrize("p", [0.01, 0.05, 0.2, 0.5, 0.85])
def test_funnel_narrows_as_sites_grow(p: float, coverage: float) -> None:
    sizes = np.arange(1, 2001)
    lower, upper = funnel_limits(sizes, p, coverage)
    assert np.all(np.diff(upper) <= 1e-12) and np.all(np.diff(lower) >= -1e-12)
    width = upper - lower
    assert width[9] > width[99] > width[999] > 0  # n = 10, 100, 1000
    assert np.all((lower <= p) & (p <= upper))
    wide_low, wide_high = funnel_limits(sizes, p, 0.998)
    assert np.all(wide_low <= lower + 1e-12) and np.all(wide_high >= upper - 1e-12)


@pytest.mark.parametrize("p", [0.03, 0.2, 0.5])
def test_limits_mirror_and_approach_two_and_three_standard_deviations(p: float) -> None:
    sizes = [3, 17, 60, 400]
    for coverage in (0.95, 0.998):
        lower, upper = funnel_limits(sizes, p, coverage)
        mirror_low, mirror_high = funnel_limits(sizes, 1 - p, coverage)
        assert upper == pytest.approx(1 - mirror_low, abs=1e-12)
        assert lower == pytest.approx(1 - mirror_high, abs=1e-12)
    # Large n: the exact limits are close to p ± z·√(p(1 − p)/n), z = 1.96 (≈ 2 SD) and 3.09 (≈ 3 SD).
    n = 20000
    sd = math.sqrt(p * (1 - p) / n)
    for coverage, z in ((0.95, 1.959964), (0.998, 3.090232)):
        lower, upper = funnel_limits([n], p, coverage)
        assert upper[0] - p == pytest.approx(z * sd, rel=0.03)
        assert p - lower[0] == pytest.approx(z * sd, rel=0.03)


def test_no_infusions_gives_no_limits() -> None:
    lower, upper = funnel_limits([0, 10], 0.05, 0.95)
    assert math.isnan(lower[0]) and math.isnan(upper[0])
    assert not math.isnan(lower[1]) and not math.isnan(upper[1])
    lower, upper = funnel_limits([10, 20], float("nan"), 0.95)
    assert np.isnan(lower).all() and np.isnan(upper).all()


def test_network_rate_of_zero_or_one() -> None:
    """With no reaction anywhere (p = 0) any reaction at a site is beyond the limits and none is not;
    p = 1 mirrors it. The limits meet the ones for a rate just above 0 (no jump at the edge)."""
    lower, upper = funnel_limits([1, 10, 200], 0.0, 0.95)
    assert list(lower) == [0.0, 0.0, 0.0]
    assert upper == pytest.approx([0.975 / 1, 0.975 / 10, 0.975 / 200])
    assert all(1 / n > u for n, u in zip([1, 10, 200], upper))
    near_low, near_high = funnel_limits([1, 10, 200], 1e-12, 0.95)
    assert near_high == pytest.approx(upper) and near_low == pytest.approx(lower)
    lower, upper = funnel_limits([1, 10, 200], 1.0, 0.998)
    assert list(upper) == [1.0, 1.0, 1.0]
    assert lower == pytest.approx([1 - 0.999 / 1, 1 - 0.999 / 10, 1 - 0.999 / 200])
    frame = funnel_frame(_counts([("A", 10, 0), ("B", 3, 0)]))
    assert list(frame["signal"]) == [WITHIN, WITHIN]


def test_limits_refuse_nonsense() -> None:
    for bad in ([-1], [2.5]):
        with pytest.raises(ValueError):
            funnel_limits(bad, 0.1, 0.95)
    with pytest.raises(ValueError):
        funnel_limits([10], 1.2, 0.95)
    with pytest.raises(ValueError):
        funnel_limits([10], 0.1, 1.0)


def _counts(sites: list[tuple[str, int, int]], therapy: str = "Ocrevus", therapy_id: int = 1) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "site_id": range(1, len(sites) + 1),
            "site": [s for s, _, _ in sites],
            "therapy_id": therapy_id,
            "therapy": therapy,
            "sessions": [n for _, n, _ in sites],
            "reacted": [r for _, _, r in sites],
        }
    )


def _network() -> pd.DataFrame:
    """Ocrevus: 50 reactions in 1000 infusions (5 %); Tysabri: 125 in 500 (25 %); IVIG: none given."""
    ocrevus = _counts([("Big", 990, 47), ("Small", 5, 2), ("One", 5, 1)])
    tysabri = _counts([("Big", 380, 95), ("Hot", 20, 16), ("Low", 100, 14)], "Tysabri", 2)
    ivig = _counts([("Big", 0, 0)], "IVIG", 3)
    return pd.concat([ocrevus, tysabri, ivig], ignore_index=True)


def test_funnel_frame_pools_per_therapy_and_signals_each_site() -> None:
    frame = funnel_frame(_network())
    assert list(frame.columns) == list(FUNNEL_COLUMNS)
    assert list(frame["network_rate"].iloc[:6]) == pytest.approx([0.05] * 3 + [0.25] * 3)
    assert list(frame["rate"].iloc[:6]) == pytest.approx([47 / 990, 0.4, 0.2, 0.25, 0.8, 0.14])
    # Exact tails behind the expected signals (independent of the code under test):
    assert 0.001 < _tail_at_least(2, 5, 0.05) < 0.025  # Small 2/5 at 5 %: 2.26 % → above 95 % only
    assert _tail_at_least(16, 20, 0.25) < 0.001  # Hot 16/20 at 25 %
    assert 0.001 < _tail_at_most(14, 100, 0.25) < 0.025  # Low 14/100 at 25 %
    assert list(frame["signal"]) == [WITHIN, ABOVE_95, WITHIN, WITHIN, ABOVE_998, BELOW_95, WITHIN]
    assert set(frame["signal"]) <= set(SIGNALS)
    small = frame.iloc[1]
    assert small["upper95"] == pytest.approx(0.3976353, abs=1e-6)  # the hand-computed limit at n = 5
    big = frame.iloc[0]
    low, high = funnel_limits([990], 0.05, 0.998)
    assert (big["lower998"], big["upper998"]) == pytest.approx((low[0], high[0]))
    ivig = frame.iloc[6]
    assert math.isnan(ivig["rate"]) and math.isnan(ivig["network_rate"]) and math.isnan(ivig["upper95"])


def test_funnel_frame_refuses_bad_counts() -> None:
    with pytest.raises(ValueError, match="reacted"):
        funnel_frame(_counts([("A", 3, 4)]))
    with pytest.raises(ValueError, match="sessions"):
        funnel_frame(_counts([("A", 3, 1)]).drop(columns="sessions"))


def test_funnel_curve_spans_the_sites_with_whole_numbers() -> None:
    curve = funnel_curve(1000, 0.05, points=50)
    assert list(curve.columns) == list(FUNNEL_CURVE_COLUMNS)
    assert curve["n"].iloc[0] == 1 and curve["n"].iloc[-1] == 1000
    assert curve["n"].is_monotonic_increasing and curve["n"].is_unique and len(curve) <= 50
    low, high = funnel_limits(curve["n"], 0.05, 0.95)
    assert list(curve["lower95"]) == pytest.approx(list(low)) and list(curve["upper95"]) == pytest.approx(list(high))
    assert funnel_curve(0, 0.05).empty


def _traces(figure: go.Figure, name_part: str) -> list[Any]:
    return [t for t in figure.data if t.name and name_part in t.name]


def test_funnel_figure_for_one_therapy() -> None:
    frame = funnel_frame(_network())
    figure = funnel_figure(frame, "Tysabri")
    assert "Tysabri" in figure.layout.title.text and "therapy" in figure.layout.title.text
    site_traces = [t for t in figure.data if t.customdata is not None]
    names = {str(row[0]) for t in site_traces for row in t.customdata}
    assert names == {"Big", "Hot", "Low"}
    assert sum(len(t.x) for t in site_traces) == 3  # the Ocrevus sites are not on the Tysabri chart
    dashed = _traces(figure, "95 % limits")
    dotted = _traces(figure, "99.8 % limits")
    assert len(dashed) == 2 and {t.line.dash for t in dashed} == {"dash"}
    assert len(dotted) == 2 and {t.line.dash for t in dotted} == {"dot"}
    assert max(dotted[0].x) >= 380
    network = _traces(figure, "network rate")
    assert len(network) == 1 and list(network[0].y) == pytest.approx([0.25, 0.25])
    (flagged,) = _traces(figure, "above 99.8 %")
    assert flagged.marker.color == OUTSIDE_COLOUR != WITHIN_COLOUR
    assert "text" in flagged.mode and list(flagged.text) == ["⚠ Hot"]
    assert list(flagged.y) == pytest.approx([0.8])
    assert figure.layout.yaxis.range[1] >= 0.8  # the highest site stays in view
    (watch,) = _traces(figure, "outside 95 %")
    assert list(watch.text) == ["Low"]


def test_funnel_figure_without_infusions_says_so() -> None:
    frame = funnel_frame(_network())
    figure = funnel_figure(frame, "IVIG")
    assert not figure.data and "No completed IVIG infusions" in figure.layout.annotations[0].text


def test_caption_explains_the_two_limits_in_plain_words() -> None:
    caption = funnel_caption()
    assert "95 %" in caption and "99.8 %" in caption and "chance" in caption and "small site" in caption
