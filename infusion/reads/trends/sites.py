"""The sites of a Trends selection and the reads that compare them: the funnel plot's counts.

A network's figures count each session at its chair's site, on that site's local day
(`filters._site_days`, `trend_session.site_id`/`trend_daily.site_id`). This module names the sites a
selection covers (with their zones, so the page can say which zone a figure uses) and gives the
per-site × per-therapy counts of the funnel plot (`infusion.reads.trends.funnel`), read from the rollup.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import func, select

from db.engine import Database
from db.models import Clinic
from infusion.reads.trends.catalog import _catalog, _label
from infusion.reads.trends.filters import TrendFilters, _fetch, _frame, _site_names
from infusion.reads.trends.funnel import FUNNEL_COLUMNS, FUNNEL_INPUT_COLUMNS, funnel_frame
from infusion.reads.trends.summarised import _daily

SITE_COLUMNS = ("site_id", "site", "code", "timezone")


def selected_sites(db: Database, f: TrendFilters) -> pd.DataFrame:
    """The sites the filters cover (every site when `site_ids` is None), by name: SITE_COLUMNS."""
    q = select(Clinic.id, Clinic.name, Clinic.code, Clinic.timezone).order_by(Clinic.name, Clinic.id)
    if f.site_ids is not None:
        q = q.where(Clinic.id.in_(f.site_ids))
    with db.reading() as s:
        rows = _fetch(s, q)
    return _frame(rows, SITE_COLUMNS, {"site_id": "int64"})


def funnel_counts(db: Database, f: TrendFilters) -> pd.DataFrame:
    """Completed sessions and those with an active reaction per site × therapy (FUNNEL_INPUT_COLUMNS), from
    trend_daily (trend_session with a nurse or chair filter); pairs with no completed session are left out."""
    with db.reading() as s:
        catalog = _catalog(s)
        src, params = _daily(f, s.connection().dialect.name)
        q = select(src.c.site_id, src.c.therapy_id, func.sum(src.c.completed), func.sum(src.c.reacted)).group_by(
            src.c.site_id, src.c.therapy_id
        )
        rows = _fetch(s, q, params)
        names = _site_names(s)
    frame = _frame(rows, ("site_id", "therapy_id", "sessions", "reacted")).fillna(0)
    frame = frame.astype({"site_id": "int64", "therapy_id": "int64", "sessions": "int64", "reacted": "int64"})
    frame = frame[frame["sessions"] > 0].reset_index(drop=True)
    frame["site"] = [names.get(site, str(site)) for site in frame["site_id"]]
    frame = _label(frame, catalog)
    return frame[list(FUNNEL_INPUT_COLUMNS)].sort_values(["therapy", "site"], ignore_index=True)


def reaction_funnel(db: Database, f: TrendFilters) -> pd.DataFrame:
    """Each site's reaction rate per therapy against its therapy's network rate, with the funnel limits at
    the site's number of completed infusions and its signal (FUNNEL_COLUMNS; `funnel.funnel_frame`)."""
    frame = funnel_frame(funnel_counts(db, f))
    return frame[list(FUNNEL_COLUMNS)]
