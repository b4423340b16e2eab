"""Infusion and chair durations per therapy against the label window (box plots and summary)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import case, func, select

from db.engine import Database
from db.models import InfusionSession
from infusion.reads.trends.catalog import _catalog, _chair_minutes, _infusion_minutes, _label, _window_expr
from infusion.reads.trends.filters import TrendFilters, _fetch, _frame, _site_days, _where

S = InfusionSession

DURATION_COLUMNS = (
    "therapy_id",
    "therapy",
    "infusion_number",
    "infusion_minutes",
    "chair_minutes",
    "label_min_minutes",
    "label_max_minutes",
)
_STATS = ("mean", "min", "q1", "median", "q3", "max")
DURATION_SUMMARY_COLUMNS = (
    "therapy_id",
    "therapy",
    "sessions",
    *(f"infusion_minutes_{x}" for x in _STATS),
    *(f"chair_minutes_{x}" for x in _STATS),
    "over_window",
    "under_window",
)


def session_durations(db: Database, f: TrendFilters) -> pd.DataFrame:
    """One row per completed session, only what a box plot against the label range needs.

    Minutes are IV start→stop and check-in→discharge; label_min/max_minutes are
    the catalog window for that therapy and infusion number (NaN where the
    label gives none). Columns: DURATION_COLUMNS.
    """
    with db.reading() as s:
        period = _site_days(s, f)
        catalog = _catalog(s)
        q = select(
            S.therapy_id,
            S.infusion_number,
            _infusion_minutes().label("inf"),
            _chair_minutes().label("chair"),
            _window_expr(catalog, "min").label("wmin"),
            _window_expr(catalog, "max").label("wmax"),
        ).where(S.status == "discharged", *period, *_where(f, None, None))
        rows = _fetch(s, q)
    frame = _frame(
        rows,
        (
            "therapy_id",
            "infusion_number",
            "infusion_minutes",
            "chair_minutes",
            "label_min_minutes",
            "label_max_minutes",
        ),
        {
            "therapy_id": "int64",
            "infusion_number": "int64",
            "infusion_minutes": "float64",
            "chair_minutes": "float64",
            "label_min_minutes": "float64",
            "label_max_minutes": "float64",
        },
    )
    frame = _label(frame, catalog)
    return frame[list(DURATION_COLUMNS)].sort_values(["therapy", "infusion_number"], ignore_index=True)


def duration_summary(db: Database, f: TrendFilters, tolerance_minutes: float = 15) -> pd.DataFrame:
    """Per therapy: sessions, mean/min/quartiles/max of infusion and chair minutes, and window breaches.

    Count, mean, min, max and the breach counts are SQL aggregates; the
    quartiles (linear interpolation, pandas' default) come from the
    per-session minutes only. `over_window`: infusion longer than label max +
    tolerance; `under_window`: shorter than the label minimum (minus the
    tolerance where the label gives an approximate time, min = max) — the rules
    of infusion.clinical.schedule.infusion_clock. Columns: DURATION_SUMMARY_COLUMNS.
    """
    with db.reading() as s:
        period = _site_days(s, f)
        catalog = _catalog(s)
        conds = [S.status == "discharged", *period, *_where(f, None, None)]
        per_session = (
            select(
                S.therapy_id.label("therapy_id"),
                _infusion_minutes().label("inf"),
                _chair_minutes().label("chair"),
                _window_expr(catalog, "min").label("wmin"),
                _window_expr(catalog, "max").label("wmax"),
            )
            .where(*conds)
            .subquery()
        )
        p = per_session.c
        floor = case((p.wmin == p.wmax, p.wmin - tolerance_minutes), else_=p.wmin)
        q = select(
            p.therapy_id,
            func.count().label("sessions"),
            func.avg(p.inf),
            func.min(p.inf),
            func.max(p.inf),
            func.avg(p.chair),
            func.min(p.chair),
            func.max(p.chair),
            func.sum(case((p.inf > p.wmax + tolerance_minutes, 1), else_=0)),
            func.sum(case((p.inf < floor, 1), else_=0)),
        ).group_by(p.therapy_id)
        agg = _fetch(s, q)
        minutes = _fetch(
            s, select(S.therapy_id, _infusion_minutes().label("inf"), _chair_minutes().label("chair")).where(*conds)
        )
    frame = _frame(
        agg,
        (
            "therapy_id",
            "sessions",
            "infusion_minutes_mean",
            "infusion_minutes_min",
            "infusion_minutes_max",
            "chair_minutes_mean",
            "chair_minutes_min",
            "chair_minutes_max",
            "over_window",
            "under_window",
        ),
    )
    frame = frame.astype(
        {
            "therapy_id": "int64",
            "sessions": "int64",
            "over_window": "int64",
            "under_window": "int64",
            **{c: "float64" for c in frame.columns[2:8]},
        }
    )
    per = _frame(
        minutes,
        ("therapy_id", "infusion_minutes", "chair_minutes"),
        {"therapy_id": "int64", "infusion_minutes": "float64", "chair_minutes": "float64"},
    )
    grouped = per.groupby("therapy_id")
    for kind in ("infusion_minutes", "chair_minutes"):
        for q_value, name in ((0.25, "q1"), (0.5, "median"), (0.75, "q3")):
            frame[f"{kind}_{name}"] = frame["therapy_id"].map(grouped[kind].quantile(q_value)).astype("float64")
    frame = _label(frame, catalog)
    return frame[list(DURATION_SUMMARY_COLUMNS)].sort_values("therapy", ignore_index=True)


DURATION_WINDOW_COLUMNS = (
    "therapy_id",
    "therapy",
    "first_number",
    "last_number",
    "label_min_minutes",
    "label_max_minutes",
)


def duration_windows(db: Database) -> pd.DataFrame:
    """Each therapy's label windows as the catalog states them (one row per rule: infusion numbers
    `first_number`–`last_number`, NaN = onwards), for shading the durations figure."""
    with db.reading() as s:
        catalog = _catalog(s)
    rows = [
        (tid, info.label, rule.get("from", 1), rule.get("to"), rule.get("min_minutes"), rule.get("max_minutes"))
        for tid, info in sorted(catalog.items())
        for rule in info.duration_windows
    ]
    frame = pd.DataFrame.from_records(rows, columns=list(DURATION_WINDOW_COLUMNS))
    return frame.astype(
        {"therapy_id": "int64", "first_number": "int64", "last_number": "float64"}
        | {"label_min_minutes": "float64", "label_max_minutes": "float64"}
    )
