"""Reactions during the session vs within 24 h after, per therapy (Trends' delayed-reaction table)."""

from __future__ import annotations

import logging

import pandas as pd
from sqlalchemy import and_, case, func, literal, select

from db.engine import Database
from db.models import InfusionSession, Reaction
from infusion.clinical.states import EntryStatus, SessionStatus
from infusion.reads.trends.catalog import _catalog, _label
from infusion.reads.trends.filters import TrendFilters, _fetch, _frame, _site_days, _where
from infusion.reads.trends.sql import minutes_between
from infusion.services.aftercare.delayed import LABEL_WINDOW_HOURS

log = logging.getLogger(__name__)


DELAYED_RATE_COLUMNS = (
    "therapy_id",
    "therapy",
    "completed",
    "during_session",
    "within_24h_after",
    "rate_during_per_100",
    "rate_after_per_100",
)


def delayed_reaction_rates(db: Database, filters: TrendFilters) -> pd.DataFrame:
    """Per therapy: completed sessions, sessions with an in-chair reaction, sessions with a delayed one ≤ 24 h
    after discharge, and both per 100 completed. Same session selection as `metrics.reaction_rates` (each site's
    sessions on its own local days)."""
    S = InfusionSession
    with db.reading() as s:
        period = _site_days(s, filters)
        catalog = _catalog(s)
        within = and_(
            Reaction.delayed.is_(True),
            minutes_between(S.discharged_at, Reaction.onset_at) <= literal(LABEL_WINDOW_HOURS * 60.0),
        )
        per_session = (
            select(
                Reaction.session_id.label("sid"),
                func.max(case((Reaction.delayed.is_(False), 1), else_=0)).label("during"),
                func.max(case((within, 1), else_=0)).label("after"),
            )
            .select_from(Reaction)
            .join(S, S.id == Reaction.session_id)
            .where(Reaction.status == EntryStatus.ACTIVE)
            .group_by(Reaction.session_id)
            .subquery("split")
        )
        q = (
            select(
                S.therapy_id,
                func.count().label("completed"),
                func.coalesce(func.sum(per_session.c.during), 0),
                func.coalesce(func.sum(per_session.c.after), 0),
            )
            .select_from(S)
            .outerjoin(per_session, per_session.c.sid == S.id)
            .where(S.status == SessionStatus.DISCHARGED, *period, *_where(filters, None, None))
            .group_by(S.therapy_id)
        )
        rows = _fetch(s, q)
    frame = _frame(
        rows,
        ("therapy_id", "completed", "during_session", "within_24h_after"),
        {"therapy_id": "int64", "completed": "int64", "during_session": "int64", "within_24h_after": "int64"},
    )
    frame = _label(frame, catalog)
    n = frame["completed"].astype(float)
    frame["rate_during_per_100"] = (100 * frame["during_session"] / n).where(n > 0)
    frame["rate_after_per_100"] = (100 * frame["within_24h_after"] / n).where(n > 0)
    return frame[list(DELAYED_RATE_COLUMNS)].sort_values("therapy", ignore_index=True)
