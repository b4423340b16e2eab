"""Reaction rates per therapy, by worst grade and by infusion number, each with a Wilson 95 % CI.

The three rate figures count the same completed sessions and reactions, so
they live together with the rate arithmetic they share.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import case, func, select

from db.engine import Database
from db.models import InfusionSession
from infusion.reads.trends.catalog import _catalog, _label
from infusion.reads.trends.filters import TrendFilters, _fetch, _frame, _reacted, _site_days, _where
from infusion.reads.trends.stats import wilson_interval

S = InfusionSession

INFUSION_BUCKETS = ("1st", "2nd", "later")

REACTION_RATE_COLUMNS = (
    "therapy_id",
    "therapy",
    "completed",
    "with_reaction",
    "rate_per_100",
    "ci_low_per_100",
    "ci_high_per_100",
)
GRADE_RATE_COLUMNS = (
    "therapy_id",
    "therapy",
    "grade",
    "sessions",
    "completed",
    "rate_per_100",
    "ci_low_per_100",
    "ci_high_per_100",
)
INFUSION_NUMBER_RATE_COLUMNS = (
    "therapy_id",
    "therapy",
    "infusion_bucket",
    "completed",
    "with_reaction",
    "rate_per_100",
    "ci_low_per_100",
    "ci_high_per_100",
)


def rates_per_100(x: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rate per 100 of x/n and its Wilson 95 % interval per 100, NaN where n = 0."""
    xs, ns = np.asarray(x, dtype=float), np.asarray(n, dtype=float)
    low, high = wilson_interval(xs, ns)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(ns > 0, 100 * xs / np.where(ns > 0, ns, 1), np.nan)
    return rate, 100 * low, 100 * high


def _with_wilson(frame: pd.DataFrame, x: str, n: str) -> pd.DataFrame:
    """`rates_per_100` of two columns, added as rate_per_100, ci_low_per_100 and ci_high_per_100."""
    frame["rate_per_100"], frame["ci_low_per_100"], frame["ci_high_per_100"] = rates_per_100(
        frame[x].to_numpy(), frame[n].to_numpy()
    )
    return frame


def reaction_rates(db: Database, f: TrendFilters) -> pd.DataFrame:
    """Per therapy: completed sessions, sessions with ≥ 1 active reaction, rate per 100 with Wilson 95 % CI.

    Columns: REACTION_RATE_COLUMNS. Only therapies with completed sessions in the filter appear.
    """
    with db.reading() as s:
        period = _site_days(s, f)
        catalog = _catalog(s)
        r = _reacted()
        q = (
            select(S.therapy_id, func.count().label("completed"), func.count(r.c.sid).label("with_reaction"))
            .select_from(S)
            .outerjoin(r, r.c.sid == S.id)
            .where(S.status == "discharged", *period, *_where(f, None, None))
            .group_by(S.therapy_id)
        )
        rows = _fetch(s, q)
    frame = _frame(
        rows,
        ("therapy_id", "completed", "with_reaction"),
        {"therapy_id": "int64", "completed": "int64", "with_reaction": "int64"},
    )
    frame = _with_wilson(_label(frame, catalog), "with_reaction", "completed")
    return frame[list(REACTION_RATE_COLUMNS)].sort_values("therapy", ignore_index=True)


def reaction_rates_by_grade(db: Database, f: TrendFilters) -> pd.DataFrame:
    """Per therapy × worst active CTCAE grade (1–5): sessions, rate per 100 completed, Wilson CI.

    A session counts once, under its worst grade, so the grade rates of a therapy
    add up to its overall reaction rate. Columns: GRADE_RATE_COLUMNS; grades with
    no session are omitted.
    """
    with db.reading() as s:
        period = _site_days(s, f)
        catalog = _catalog(s)
        r = _reacted()
        q = (
            select(S.therapy_id, r.c.worst, func.count().label("sessions"))
            .select_from(S)
            .outerjoin(r, r.c.sid == S.id)
            .where(S.status == "discharged", *period, *_where(f, None, None))
            .group_by(S.therapy_id, r.c.worst)
        )
        rows = _fetch(s, q)
    frame = _frame(rows, ("therapy_id", "grade", "sessions"))
    if frame.empty:
        return _frame(
            [],
            GRADE_RATE_COLUMNS,
            {
                "therapy_id": "int64",
                "grade": "int64",
                "sessions": "int64",
                "completed": "int64",
                "rate_per_100": "float64",
                "ci_low_per_100": "float64",
                "ci_high_per_100": "float64",
            },
        )
    frame["completed"] = frame.groupby("therapy_id")["sessions"].transform("sum")
    frame = frame[frame["grade"].notna()].astype(
        {"therapy_id": "int64", "grade": "int64", "sessions": "int64", "completed": "int64"}
    )
    frame = _with_wilson(_label(frame.reset_index(drop=True), catalog), "sessions", "completed")
    return frame[list(GRADE_RATE_COLUMNS)].sort_values(["therapy", "grade"], ignore_index=True)


def reaction_rates_by_infusion_number(db: Database, f: TrendFilters) -> pd.DataFrame:
    """Per therapy × infusion bucket ('1st', '2nd', 'later' = 3rd onwards), with Wilson CI.

    Reactions are most frequent at the first infusion (docs/clinical-basis.md §11), so the
    buckets show whether a therapy's rate falls as labels say it should.
    Columns: INFUSION_NUMBER_RATE_COLUMNS.
    """
    bucket = case((S.infusion_number <= 1, 0), (S.infusion_number == 2, 1), else_=2)
    with db.reading() as s:
        period = _site_days(s, f)
        catalog = _catalog(s)
        r = _reacted()
        per_session = (
            select(S.therapy_id.label("therapy_id"), bucket.label("bucket"), r.c.sid.label("reacted"))
            .select_from(S)
            .outerjoin(r, r.c.sid == S.id)
            .where(S.status == "discharged", *period, *_where(f, None, None))
            .subquery()
        )
        q = select(
            per_session.c.therapy_id,
            per_session.c.bucket,
            func.count().label("completed"),
            func.count(per_session.c.reacted).label("with_reaction"),
        ).group_by(per_session.c.therapy_id, per_session.c.bucket)
        rows = _fetch(s, q)
    frame = _frame(
        rows,
        ("therapy_id", "bucket", "completed", "with_reaction"),
        {"therapy_id": "int64", "bucket": "int64", "completed": "int64", "with_reaction": "int64"},
    )
    frame["infusion_bucket"] = [INFUSION_BUCKETS[b] for b in frame["bucket"]]
    frame = _with_wilson(_label(frame, catalog), "with_reaction", "completed")
    frame = frame.sort_values(["therapy", "bucket"], ignore_index=True)
    return frame[list(INFUSION_NUMBER_RATE_COLUMNS)]
