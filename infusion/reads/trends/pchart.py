"""The monthly reaction p-chart: is a month's reaction rate outside this period's normal?"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pandas as pd
from sqlalchemy import func, select

from db.engine import Database
from db.models import InfusionSession
from infusion.reads.trends.filters import (
    TrendFilters,
    _fetch,
    _reacted,
    _site_days,
    _site_zones,
    _where,
    _zone_groups,
    utc_bounds,
)
from infusion.reads.trends.sql import month_bucket
from infusion.reads.trends.stats import p_chart

S = InfusionSession

PCHART_COLUMNS = ("month", "n", "x", "p", "p_bar", "ucl", "lcl", "out_of_control")


def monthly_reaction_pchart(db: Database, f: TrendFilters, therapy_id: int | None = None) -> pd.DataFrame:
    """Monthly share of completed sessions with a reaction, with p-chart centre line and 3-sigma limits.

    Months are each site's local months. p̄ is pooled over the filtered period (Σx/Σn), so
    the limits describe "this period's normal" and flag months outside it.
    `therapy_id` narrows to one therapy (the page draws one chart per therapy);
    None pools every therapy the filters select. Months without a completed
    session are absent. Proportions are in [0, 1]. Columns: PCHART_COLUMNS.
    """
    per_month: dict[date, list[int]] = {}
    with db.reading() as s:
        groups = _zone_groups(_site_zones(s, f))
        # Each site's months are its own local months: one query per time zone of the selected sites.
        for tz, sites in (groups or {"UTC": ()}).items():
            lo, hi = utc_bounds(f.start, f.end, tz)
            part = replace(f, site_ids=sites) if len(groups) > 1 else f
            conds = [*_site_days(s, part), *_where(f, None, None)]
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
            q = select(per_session.c.month, func.count().label("n"), func.count(per_session.c.reacted).label("x"))
            for month, n, x in _fetch(s, q.group_by(per_session.c.month)):
                key = month if isinstance(month, date) else date.fromisoformat(str(month)[:10])
                acc = per_month.setdefault(key, [0, 0])
                acc[0] += int(n)
                acc[1] += int(x)
    rows = [(m, *per_month[m]) for m in sorted(per_month)]
    months = [m for m, _, _ in rows]
    chart = p_chart([x for _, _, x in rows], [n for _, n, _ in rows])
    chart.insert(0, "month", pd.Series(months, dtype="object"))
    return chart[list(PCHART_COLUMNS)]
