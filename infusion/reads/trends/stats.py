"""Interval estimates and control limits for the managers' Trends page.

The Wilson interval comes from statsmodels (a maintained, tested
implementation) rather than our own algebra; the p-chart limits are a few lines
of textbook arithmetic with no suitable maintained library, so they live here
and are tested against a published worked example (tests/unit/test_stats.py).
Both accept vectors so a metric frame is computed in one call, and both return
NaN (not an exception) where a subgroup has no sessions.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

ArrayLike: TypeAlias = Sequence[float] | np.ndarray | pd.Series


def wilson_interval(
    successes: ArrayLike | int, trials: ArrayLike | int, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for x/n, as proportions in [0, 1]; NaN where n = 0.

    Wilson rather than the Wald interval because reaction counts are often
    small or zero per therapy and month, where Wald collapses to zero width
    (Newcombe 1998).
    """
    x = np.atleast_1d(np.asarray(successes, dtype=float))
    n = np.atleast_1d(np.asarray(trials, dtype=float))
    x, n = np.broadcast_arrays(x, n)
    low = np.full(x.shape, np.nan)
    high = np.full(x.shape, np.nan)
    ok = n > 0
    if ok.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = proportion_confint(x[ok], n[ok], alpha=1 - confidence, method="wilson")
        low[ok] = np.clip(lo, 0.0, 1.0)
        high[ok] = np.clip(hi, 0.0, 1.0)
    return low, high


def p_chart(defectives: ArrayLike, sizes: ArrayLike, sigmas: float = 3.0) -> pd.DataFrame:
    """Shewhart p-chart with limits per subgroup (variable sample sizes allowed).

    p̄ = Σx / Σn over all subgroups (the pooled rate, not the mean of the
    subgroup rates, so a small month does not weigh as much as a busy one);
    UCL/LCL_i = p̄ ± k·√(p̄(1−p̄)/n_i), clipped to [0, 1]. A subgroup with n = 0
    gets NaN p and limits and is never out of control.

    Returns columns n, x, p, p_bar, ucl, lcl, out_of_control in input order.
    """
    x = np.asarray(defectives, dtype=float)
    n = np.asarray(sizes, dtype=float)
    if x.shape != n.shape:
        raise ValueError("defectives and sizes must have the same length")
    if np.any(x < 0) or np.any(n < 0) or np.any(x > n):
        raise ValueError("need 0 ≤ x ≤ n in every subgroup")
    total = n.sum()
    p_bar = x.sum() / total if total > 0 else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n > 0, x / n, np.nan)
        half = sigmas * np.sqrt(p_bar * (1 - p_bar) / n)
    half = np.where(n > 0, half, np.nan)
    ucl = np.clip(p_bar + half, 0.0, 1.0)
    lcl = np.clip(p_bar - half, 0.0, 1.0)
    out = (n > 0) & ((p > ucl) | (p < lcl))
    return pd.DataFrame(
        {
            "n": n.astype("int64"),
            "x": x.astype("int64"),
            "p": p,
            "p_bar": np.full(n.shape, p_bar),
            "ucl": ucl,
            "lcl": lcl,
            "out_of_control": out,
        }
    )
