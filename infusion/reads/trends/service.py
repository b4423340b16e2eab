"""The Trends page's data in one role-checked call: every metric for one set of filters.

The figure modules of `infusion.reads.trends` hold the SQL; this module is the service a page calls, so
a page mistake cannot show trends to a role that may not see them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import select

from db.engine import Database
from db.models import AppUser, Chair, Therapy
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import TRENDS, require_role
from infusion.reads import trends as metrics
from infusion.reads.trends import TrendFilters, maintenance


@dataclass(frozen=True)
class Trends:
    rates: pd.DataFrame
    by_grade: pd.DataFrame
    by_number: pd.DataFrame
    pchart: pd.DataFrame
    durations: pd.DataFrame
    duration_summary: pd.DataFrame
    utilisation: pd.DataFrame
    time_lost: pd.DataFrame
    completeness: pd.DataFrame
    incomplete_sessions: pd.DataFrame
    delayed: pd.DataFrame


def load(db: Database, actor: Actor, filters: TrendFilters, pchart_therapy_id: int | None = None) -> Trends:
    require_role(actor, TRENDS, "see clinic trends")
    report = metrics.completeness(db, filters)
    return Trends(
        rates=metrics.reaction_rates(db, filters),
        by_grade=metrics.reaction_rates_by_grade(db, filters),
        by_number=metrics.reaction_rates_by_infusion_number(db, filters),
        pchart=metrics.monthly_reaction_pchart(db, filters, therapy_id=pchart_therapy_id),
        durations=metrics.session_durations(db, filters),
        duration_summary=metrics.duration_summary(db, filters),
        utilisation=metrics.chair_utilisation(db, filters),
        time_lost=metrics.reaction_time_lost(db, filters),
        completeness=report.counts,
        incomplete_sessions=report.sessions,
        delayed=metrics.delayed_reaction_rates(db, filters),
    )


def data_version(db: Database) -> int:
    """The trend summaries' version (`trend_version`): bumped in the same transaction as any change
    of what a figure reads, by any server process, and by nothing else (not a view, not an audit row,
    not a save that moves no figure). Part of the cache key."""
    with db.reading() as s:
        return maintenance.data_version(s.connection())


def filter_options(db: Database, actor: Actor) -> tuple[dict[int, str], dict[int, str], dict[int, str]]:
    """Therapies, chairs and nurses to filter by (id → label)."""
    require_role(actor, TRENDS, "see clinic trends")
    with db.reading() as s:
        therapies = {t.id: t.brand or t.name for t in s.scalars(select(Therapy).order_by(Therapy.name))}
        chairs = {c.id: c.name for c in s.scalars(select(Chair).order_by(Chair.id))}
        nurses = {
            u.id: u.display_name
            for u in s.scalars(
                select(AppUser).where(AppUser.role.in_(("nurse", "charge_nurse"))).order_by(AppUser.display_name)
            )
        }
    return therapies, chairs, nurses
