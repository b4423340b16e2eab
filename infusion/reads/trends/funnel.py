"""Funnel plot of the infusion-reaction rate per site, one therapy at a time (no database).

A funnel plot puts each site's reaction rate (reactions ÷ completed infusions) against its number of
completed infusions, around the network rate of the same therapy, with control limits that narrow as
the number of infusions grows. A small site needs a much larger deviation than a busy one before it
falls outside; the limits say how far chance alone plausibly takes a site of that size.

Limits are exact binomial limits with Spiegelhalter's interpolation (Spiegelhalter DJ. Funnel plots
for comparing institutional performance. Stat Med 2005;24:1185–1202, Appendix A.1.1;
docs/clinical-basis.md §14). For a site with n infusions and target rate θ (the network rate), R ~
Binomial(n, θ), F its CDF. For a tail probability P, r_P is the smallest r with F(r) ≥ P and

    α = (F(r_P) − P) / (F(r_P) − F(r_P − 1))

The **lower** limit is (r_P − α)/n, as printed in the appendix and as implemented in Wicklin, "Funnel
plots for proportions", The DO Loop (SAS blog), 23 Nov 2011 (r = quantile("Binomial", P, θ, n);
α = (cdf(r) − P)/(cdf(r) − cdf(r − 1)); limit = (r − α)/n), with P = 0.025 and 0.001.

The **upper** limit applies the same interpolation to the upper tail: (r_P + 1 − α)/n with
P = 0.975 and 0.999, as in the `qbinom.interp` function of the Cambridge funnel-plot code
(github.com/gmp26/funnel, R/funnel4.R). Using (r_P − α)/n for the upper limit too would put the limit
just below r_P/n, so a site with exactly r_P reactions would plot above it although P(R ≥ r_P) exceeds
the nominal tail: with a 5 % network rate, 1 reaction in 5 infusions (P(R ≥ 1) = 23 %) would be
flagged "above 95 %". With the upper tail written this way a site is flagged above (below) a limit
exactly when its exact one-sided binomial tail probability is at most (below) the nominal
2.5 % / 0.1 %, and the two limits mirror each other: upper(n, θ) = 1 − lower(n, 1 − θ).

Coverages 95 % and 99.8 % correspond to about 2 and 3 standard deviations (Spiegelhalter 2005). The
limits are for the network's own rate, with no allowance for over-dispersion between sites and no
case-mix adjustment: a site flagged here is a prompt to look, not a finding.

The Public Health England Fingertips method for proportions (PHEindicatormethods,
`sigma_adjustment`) uses Wilson-score limits instead; it is not used here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import pandas as pd
from scipy.stats import binom

ArrayLike: TypeAlias = Sequence[float] | np.ndarray | pd.Series

#: The signal of a site, from its rate against the limits at its own number of infusions.
WITHIN = "within"
ABOVE_95 = "above 95 %"
ABOVE_998 = "above 99.8 %"
BELOW_95 = "below 95 %"
BELOW_998 = "below 99.8 %"
SIGNALS = (WITHIN, ABOVE_95, ABOVE_998, BELOW_95, BELOW_998)

#: The two coverages the page draws (about 2 and 3 standard deviations).
COVERAGES = {"95": 0.95, "998": 0.998}

FUNNEL_INPUT_COLUMNS = ("site_id", "site", "therapy_id", "therapy", "sessions", "reacted")
FUNNEL_COLUMNS = (
    *FUNNEL_INPUT_COLUMNS,
    "rate",
    "network_rate",
    "lower95",
    "upper95",
    "lower998",
    "upper998",
    "signal",
)
FUNNEL_CURVE_COLUMNS = ("n", "lower95", "upper95", "lower998", "upper998")


def _quantile(prob: float, n: np.ndarray, p: float) -> np.ndarray:
    """Smallest r with F(r) ≥ prob, for every n (scipy's ppf, checked against the CDF either side)."""
    r = np.asarray(binom.ppf(prob, n, p), dtype=float)
    r = np.clip(np.nan_to_num(r, nan=0.0), 0.0, n)
    for _ in range(3):  # floating-point guard: ppf may land one step off where F(r) ≈ prob
        down = (r > 0) & (binom.cdf(r - 1, n, p) >= prob)
        up = (r < n) & (binom.cdf(r, n, p) < prob)
        if not (down.any() or up.any()):
            break
        r = r - down + up
    return r


def _interpolated(prob: float, n: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray]:
    """r_P and Spiegelhalter's α = (F(r_P) − P) / (F(r_P) − F(r_P − 1)) for tail probability `prob`."""
    r = _quantile(prob, n, p)
    mass = binom.pmf(r, n, p)  # = F(r_P) − F(r_P − 1)
    alpha = (binom.cdf(r, n, p) - prob) / mass
    return r, np.clip(alpha, 0.0, 1.0)


def funnel_limits(n: ArrayLike | int, p: float, coverage: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper funnel limits, as proportions in [0, 1], for denominators `n` around target `p`.

    Exact binomial limits with Spiegelhalter's interpolation (module docstring; Spiegelhalter 2005,
    Appendix A.1.1): with P = (1 − coverage)/2, the lower limit is (r_P − α)/n and the upper limit
    (r_{1−P} + 1 − α)/n. `n` must hold whole numbers ≥ 0; n = 0 gives NaN limits, as does a NaN `p`
    (a therapy with no completed infusions in the network). p = 0 gives lower 0 and upper
    (1 − P)/n, so any reaction at a site lies above; p = 1 mirrors it. Limits are clipped to [0, 1].
    """
    if not 0.0 < coverage < 1.0:
        raise ValueError("coverage must be between 0 and 1, e.g. 0.95 or 0.998")
    sizes = np.atleast_1d(np.asarray(n, dtype=float))
    if np.any(np.isnan(sizes)) or np.any(sizes < 0) or np.any(sizes != np.floor(sizes)):
        raise ValueError("n must be whole numbers of infusions, 0 or more")
    lower = np.full(sizes.shape, np.nan)
    upper = np.full(sizes.shape, np.nan)
    if np.isnan(p):
        return lower, upper
    if not 0.0 <= p <= 1.0:
        raise ValueError("p must be a proportion between 0 and 1")
    ok = sizes > 0
    if ok.any():
        m = sizes[ok]
        tail = (1.0 - coverage) / 2.0
        r_low, a_low = _interpolated(tail, m, p)
        r_high, a_high = _interpolated(1.0 - tail, m, p)
        lower[ok] = np.clip((r_low - a_low) / m, 0.0, 1.0)
        upper[ok] = np.clip((r_high + 1.0 - a_high) / m, 0.0, 1.0)
    return lower, upper


def funnel_curve(n_max: int, p: float, points: int = 200) -> pd.DataFrame:
    """The funnel lines from 1 to `n_max` infusions around `p`, for drawing (columns FUNNEL_CURVE_COLUMNS).

    The limits are defined at whole numbers of infusions, so the curve is evaluated at up to `points`
    distinct whole n, spaced geometrically (dense where the funnel changes fastest, at small n) and
    always including 1 and `n_max`. No rows when n_max < 1.
    """
    if n_max < 1:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in FUNNEL_CURVE_COLUMNS}).astype({"n": "int64"})
    grid = np.unique(np.round(np.geomspace(1, int(n_max), max(int(points), 2))))
    curve: dict[str, np.ndarray] = {"n": grid.astype("int64")}
    for key, coverage in COVERAGES.items():
        curve[f"lower{key}"], curve[f"upper{key}"] = funnel_limits(grid, p, coverage)
    return pd.DataFrame(curve)[list(FUNNEL_CURVE_COLUMNS)]


def _signals(rate: np.ndarray, limits: dict[str, np.ndarray]) -> np.ndarray:
    """Strictly outside a limit counts; the wider (99.8 %) limit wins. NaN rates are 'within'."""
    with np.errstate(invalid="ignore"):
        conditions = [
            rate > limits["upper998"],
            rate < limits["lower998"],
            rate > limits["upper95"],
            rate < limits["lower95"],
        ]
    return np.select(conditions, [ABOVE_998, BELOW_998, ABOVE_95, BELOW_95], default=WITHIN).astype(object)


def funnel_frame(counts: pd.DataFrame) -> pd.DataFrame:
    """Each site's rate, its therapy's network rate, the limits at the site's n and its signal.

    `counts` has one row per site and therapy with columns FUNNEL_INPUT_COLUMNS: `sessions` is the
    number of completed infusions (n), `reacted` the number of them with a reaction. The network rate
    of a therapy is pooled over its sites (Σ reacted / Σ sessions), so a busy site weighs more than a
    small one; limits are computed around it at each site's own n. A site with no completed infusions
    keeps its row with NaN rate and limits and the signal "within" (nothing to judge). Rates and
    limits are proportions in [0, 1]. Returns FUNNEL_COLUMNS in input order.
    """
    missing = [c for c in FUNNEL_INPUT_COLUMNS if c not in counts.columns]
    if missing:
        raise ValueError(f"funnel counts lack column(s): {', '.join(missing)}")
    frame = counts[list(FUNNEL_INPUT_COLUMNS)].copy()
    sessions = frame["sessions"].to_numpy(dtype=float)
    reacted = frame["reacted"].to_numpy(dtype=float)
    if np.any(reacted < 0) or np.any(sessions < 0) or np.any(reacted > sessions):
        raise ValueError("need 0 ≤ reacted ≤ sessions for every site")
    totals = frame.groupby("therapy_id", sort=False)[["reacted", "sessions"]].transform("sum")
    pooled_n = totals["sessions"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["rate"] = np.where(sessions > 0, reacted / sessions, np.nan)
        frame["network_rate"] = np.where(pooled_n > 0, totals["reacted"].to_numpy(dtype=float) / pooled_n, np.nan)
    network_rate = frame["network_rate"].to_numpy(dtype=float)
    limits: dict[str, np.ndarray] = {
        f"{side}{key}": np.full(len(frame), np.nan) for key in COVERAGES for side in ("lower", "upper")
    }
    for rows in frame.groupby("therapy_id", sort=False).indices.values():
        for key, coverage in COVERAGES.items():
            low, high = funnel_limits(sessions[rows], float(network_rate[rows[0]]), coverage)
            limits[f"lower{key}"][rows] = low
            limits[f"upper{key}"][rows] = high
    for column, values in limits.items():
        frame[column] = values
    frame["signal"] = _signals(frame["rate"].to_numpy(dtype=float), limits)
    return frame[list(FUNNEL_COLUMNS)].reset_index(drop=True)
