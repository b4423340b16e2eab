"""The Trends page's data in one role-checked call: every metric for one set of filters.

The figure modules of `infusion.reads.trends` hold the SQL; this module is the service a page calls, so
a page mistake cannot show trends to a role that may not see them, nor one site's figures to a person who
does not hold a role there: every call narrows the filters to the sites the actor holds (`scope`), and
refuses a site asked for by name that the actor does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd
from sqlalchemy import or_, select

from db.engine import Database
from db.models import AppUser, Chair, Clinic, Therapy, UserSite
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import TRENDS, require_role
from infusion.accounts.sites import held_sites, visible_sites
from infusion.errors import PermissionDenied
from infusion.reads import trends as metrics
from infusion.reads.trends import TrendFilters, maintenance
from infusion.reads.trends.shared import shared_reads


def _empty() -> pd.DataFrame:
    return pd.DataFrame()


@dataclass(frozen=True)
class Trends:
    rates: pd.DataFrame
    by_grade: pd.DataFrame
    by_number: pd.DataFrame
    pchart: pd.DataFrame
    #: the catalog's label windows per therapy (DURATION_WINDOW_COLUMNS), shaded on the durations figure
    duration_windows: pd.DataFrame
    duration_summary: pd.DataFrame
    utilisation: pd.DataFrame
    time_lost: pd.DataFrame
    completeness: pd.DataFrame
    incomplete_sessions: pd.DataFrame
    delayed: pd.DataFrame
    #: the sites the figures cover (SITE_COLUMNS: id, name, code, time zone)
    sites: pd.DataFrame = field(default_factory=_empty)
    #: with two sites or more: each site's figures (`site_id` and `site` first) and the funnel plot's frame
    rates_by_site: pd.DataFrame = field(default_factory=_empty)
    duration_summary_by_site: pd.DataFrame = field(default_factory=_empty)
    utilisation_by_site: pd.DataFrame = field(default_factory=_empty)
    time_lost_by_site: pd.DataFrame = field(default_factory=_empty)
    completeness_by_site: pd.DataFrame = field(default_factory=_empty)
    funnel: pd.DataFrame = field(default_factory=_empty)

    @property
    def compares_sites(self) -> bool:
        return len(self.sites) >= 2


def scope(db: Database, actor: Actor, filters: TrendFilters) -> TrendFilters:
    """The filters narrowed to the sites the actor holds: `site_ids` None becomes those sites (None stays
    None for a network-wide role: every site); a site named that the actor does not hold is refused."""
    require_role(actor, TRENDS, "see clinic trends")
    with db.reading() as s:
        held = held_sites(s, actor)
        if held is None:
            return filters
        if filters.site_ids is None:
            return replace(filters, site_ids=tuple(sorted(held)))
        refused = sorted(set(filters.site_ids) - held)
        if refused:
            names = [s.scalar(select(Clinic.name).where(Clinic.id == site)) or f"site {site}" for site in refused]
            raise PermissionDenied(f"You do not hold a role at {', '.join(names)}; you may not see its trends.")
    return filters


def load(db: Database, actor: Actor, filters: TrendFilters, pchart_therapy_id: int | None = None) -> Trends:
    filters = scope(db, actor, filters)
    with shared_reads():
        return _load(db, filters, pchart_therapy_id)


def _load(db: Database, filters: TrendFilters, pchart_therapy_id: int | None) -> Trends:
    report = metrics.completeness(db, filters)
    sites = metrics.selected_sites(db, filters)
    several = len(sites) >= 2
    by_site = {}
    if several:
        by_site = {
            "rates_by_site": metrics.reaction_rates(db, filters, by_site=True),
            "duration_summary_by_site": metrics.duration_summary(db, filters, by_site=True),
            "utilisation_by_site": metrics.chair_utilisation(db, filters, by_site=True),
            "time_lost_by_site": metrics.reaction_time_lost(db, filters, by_site=True),
            "completeness_by_site": metrics.completeness_by_site(db, filters),
            "funnel": metrics.reaction_funnel(db, filters),
        }
    return Trends(
        rates=metrics.reaction_rates(db, filters),
        by_grade=metrics.reaction_rates_by_grade(db, filters),
        by_number=metrics.reaction_rates_by_infusion_number(db, filters),
        pchart=metrics.monthly_reaction_pchart(db, filters, therapy_id=pchart_therapy_id),
        duration_windows=metrics.duration_windows(db),
        duration_summary=metrics.duration_summary(db, filters),
        utilisation=metrics.chair_utilisation(db, filters),
        time_lost=metrics.reaction_time_lost(db, filters),
        completeness=report.counts,
        incomplete_sessions=report.sessions,
        delayed=metrics.delayed_reaction_rates(db, filters),
        sites=sites,
        **by_site,
    )


def reaction_funnel(db: Database, actor: Actor, filters: TrendFilters) -> pd.DataFrame:
    """The funnel plot's frame for the sites the actor may see (`metrics.reaction_funnel`)."""
    return metrics.reaction_funnel(db, scope(db, actor, filters))


def data_version(db: Database) -> int:
    """The trend summaries' version (`trend_version`): bumped in the same transaction as any change
    of what a figure reads, by any server process, and by nothing else (not a view, not an audit row,
    not a save that moves no figure). Part of the cache key."""
    with db.reading() as s:
        return maintenance.data_version(s.connection())


def site_options(db: Database, actor: Actor) -> dict[int, str]:
    """The active sites the actor holds, to filter by (id → "name (code)")."""
    require_role(actor, TRENDS, "see clinic trends")
    with db.reading() as s:
        return {site.id: f"{site.name} ({site.code})" for site in visible_sites(s, actor)}


def filter_options(db: Database, actor: Actor) -> tuple[dict[int, str], dict[int, str], dict[int, str]]:
    """Therapies, chairs and nurses to filter by (id → label): the chairs of the sites the actor holds
    (named with their site's code in a network), the nurses who hold a role at one of them."""
    require_role(actor, TRENDS, "see clinic trends")
    with db.reading() as s:
        held = held_sites(s, actor)
        therapies = {t.id: t.brand or t.name for t in s.scalars(select(Therapy).order_by(Therapy.name))}
        chair_q = select(Chair.id, Chair.name, Clinic.code).join(Clinic, Clinic.id == Chair.site_id)
        if held is not None:
            chair_q = chair_q.where(Chair.site_id.in_(held))
        chair_rows = s.execute(chair_q.order_by(Chair.site_id, Chair.id)).all()
        several = len({code for _, _, code in chair_rows}) > 1
        chairs = {cid: f"{name} · {code}" if several else name for cid, name, code in chair_rows}
        nurse_q = select(AppUser).where(AppUser.role.in_(("nurse", "charge_nurse"))).order_by(AppUser.display_name)
        if held is not None:
            at_held = select(UserSite.user_id).where(UserSite.site_id.in_(held))
            nurse_q = nurse_q.where(or_(AppUser.network_wide.is_(True), AppUser.id.in_(at_held)))
        nurses = {u.id: u.display_name for u in s.scalars(nurse_q)}
    return therapies, chairs, nurses
