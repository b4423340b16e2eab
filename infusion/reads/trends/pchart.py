"""The monthly reaction p-chart: is a month's reaction rate outside this period's normal?"""

from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import func, select

from db.engine import Database
from db.models import InfusionSession
from infusion.reads.trends.filters import TrendFilters, _clinic_tz, _fetch, _reacted, _where, utc_bounds
from infusion.reads.trends.sql import month_bucket
from infusion.reads.trends.stats import p_chart

S = InfusionSession

PCHART_COLUMNS = ("month", "n", "x", "p", "p_bar", "ucl", "lcl", "out_of_control")


def monthly_reaction_pchart(db: Database, f: TrendFilters, therapy_id: int | None = None) -> pd.DataFrame:
    """Monthly share of completed sessions with a reaction, with p-chart centre line and 3-sigma limits.

    Months are clinic-local. p̄ is pooled over the filtered period (Σx/Σn), so
    the limits describe "this period's normal" and flag months outside it.
    `therapy_id` narrows to one therapy (the page draws one chart per therapy);
    None pools every therapy the filters select. Months without a completed
    session are absent. Proportions are in [0, 1]. Columns: PCHART_COLUMNS.
    """
    with db.reading() as s:
        tz = _clinic_tz(s)
        lo, hi = utc_bounds(f.start, f.end, tz)
        conds = _where(f, lo, hi)
        if therapy_id is not None:
            conds.append(S.therapy_id == therapy_id)
        r = _reacted()
        per_session = (
            select(month_bucket(S.checked_in_at, tz, between=(lo, hi)).label("month"), r.c.sid.label("reacted"))
            .select_from(S)
            .outerjoin(r, r.c.sid == S.id)
            .where(S.status == "discharged", *conds)
            .subquery()
        )
        q = (
            select(per_session.c.month, func.count().label("n"), func.count(per_session.c.reacted).label("x"))
            .group_by(per_session.c.month)
            .order_by(per_session.c.month)
        )
        rows = _fetch(s, q)
    months = [m if isinstance(m, date) else date.fromisoformat(str(m)[:10]) for m, _, _ in rows]
    chart = p_chart([x for _, _, x in rows], [n for _, n, _ in rows])
    chart.insert(0, "month", pd.Series(months, dtype="object"))
    return chart[list(PCHART_COLUMNS)]
