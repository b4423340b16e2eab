"""Infusion and chair time with vs without a reaction, against the label's time (the Trends page shows it as
"Infusion and chair time, with and without a reaction": a negative difference is a shorter infusion, not
time lost; a reaction's cost is the gap between the rows with and without one)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import and_, case, func, select

from db.engine import Database
from db.models import InfusionSession
from infusion.reads.trends.catalog import _catalog, _chair_minutes, _infusion_minutes, _label, _window_expr
from infusion.reads.trends.filters import TrendFilters, _fetch, _frame, _reacted, _site_days, _where

S = InfusionSession

TIME_LOST_COLUMNS = (
    "therapy_id",
    "therapy",
    "with_reaction",
    "sessions",
    "mean_infusion_minutes",
    "mean_planned_minutes",
    "mean_extra_minutes",
    "mean_chair_minutes",
)


def reaction_time_lost(db: Database, f: TrendFilters) -> pd.DataFrame:
    """Per therapy, completed sessions with vs without an active reaction: mean minutes over plan.

    The plan is the label window for the therapy and infusion number (its
    maximum, or its minimum where the label gives only "≥"); extra = IV
    start→stop minus plan, averaged with its sign (an infusion finished early
    counts negative). The infusion, planned and extra means are over the
    sessions that have a label window (so extra = infusion − planned); the
    chair mean and `sessions` cover all of them.
    Columns: TIME_LOST_COLUMNS.
    """
    with db.reading() as s:
        period = _site_days(s, f)
        catalog = _catalog(s)
        r = _reacted()
        per_session = (
            select(
                S.therapy_id.label("therapy_id"),
                case((r.c.sid.is_not(None), 1), else_=0).label("flag"),
                _infusion_minutes().label("inf"),
                _chair_minutes().label("chair"),
                _window_expr(catalog, "planned").label("plan"),
            )
            .select_from(S)
            .outerjoin(r, r.c.sid == S.id)
            .where(S.status == "discharged", *period, *_where(f, None, None))
            .subquery()
        )
        p = per_session.c
        both = and_(p.plan.is_not(None), p.inf.is_not(None))
        q = select(
            p.therapy_id,
            p.flag,
            func.count(),
            func.avg(case((both, p.inf))),
            func.avg(case((both, p.plan))),
            func.avg(p.inf - p.plan),
            func.avg(p.chair),
        ).group_by(p.therapy_id, p.flag)
        rows = _fetch(s, q)
    frame = _frame(
        rows,
        (
            "therapy_id",
            "flag",
            "sessions",
            "mean_infusion_minutes",
            "mean_planned_minutes",
            "mean_extra_minutes",
            "mean_chair_minutes",
        ),
        {
            "therapy_id": "int64",
            "flag": "int64",
            "sessions": "int64",
            "mean_infusion_minutes": "float64",
            "mean_planned_minutes": "float64",
            "mean_extra_minutes": "float64",
            "mean_chair_minutes": "float64",
        },
    )
    frame["with_reaction"] = frame["flag"].astype(bool)
    frame = _label(frame, catalog).sort_values(["therapy", "with_reaction"], ignore_index=True)
    return frame[list(TIME_LOST_COLUMNS)]
