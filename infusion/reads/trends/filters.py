"""What every Trends figure shares: the filters, the sessions they select, and rows → frames.

One place decides which sessions a metric sees, so every figure on the page
counts the same sessions (see the package docstring for the definitions).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import ColumnElement, Subquery, and_, exists, false, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from db.engine import Database
from db.models import Chair, Clinic, InfusionSession, RateChange, Reaction

S = InfusionSession


@dataclass(frozen=True)
class TrendFilters:
    """What the manager picked. Dates are inclusive site-local days (each session counts on its own
    site's local day); empty tuples mean "all". `site_ids` None means every site (the service
    narrows it to the sites the person holds); a tuple names the sites (empty: none).

    Frozen and made of tuples so it hashes: pages can pass it straight to
    `st.cache_data` as the cache key.
    """

    start: date
    end: date
    therapy_ids: tuple[int, ...] = ()
    chair_ids: tuple[int, ...] = ()
    nurse_ids: tuple[int, ...] = ()
    infusion: Literal["all", "first", "later"] = "all"
    location: Literal["all", "clinic", "home"] = "all"
    site_ids: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("therapy_ids", "chair_ids", "nurse_ids"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if self.site_ids is not None:  # sorted and once each: the same sites make the same cache key
            object.__setattr__(self, "site_ids", tuple(sorted({int(v) for v in self.site_ids})))
        if self.end < self.start:
            raise ValueError("The end date is before the start date.")
        if self.infusion not in ("all", "first", "later"):
            raise ValueError("infusion must be 'all', 'first' or 'later'")
        if self.location not in ("all", "clinic", "home"):
            raise ValueError("location must be 'all', 'clinic' or 'home'")


def utc_bounds(start: date, end: date, tz: str) -> tuple[datetime, datetime]:
    """Half-open UTC interval [local midnight of `start`, local midnight after `end`)."""
    zone = ZoneInfo(tz)
    lo = datetime.combine(start, time.min, tzinfo=zone).astimezone(UTC)
    hi = datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
    return lo, hi


def _clinic_tz(s: Session) -> str:
    """The first site's time zone; UTC before the clinic row exists (an empty database is not an error)."""
    tz = s.scalar(select(Clinic.timezone).order_by(Clinic.id).limit(1))
    return tz or "UTC"


def _site_zones(s: Session, f: TrendFilters) -> dict[int, str]:
    """The time zone of each site the filters select (every site when `site_ids` is None), by site id."""
    q = select(Clinic.id, Clinic.timezone).order_by(Clinic.id)
    if f.site_ids is not None:
        q = q.where(Clinic.id.in_(f.site_ids))
    return {int(site): tz or "UTC" for site, tz in s.execute(q)}


def _zone_groups(zones: dict[int, str]) -> dict[str, tuple[int, ...]]:
    """Sites sharing a time zone, grouped (one clause per zone, not per site)."""
    groups: dict[str, list[int]] = {}
    for site, tz in sorted(zones.items()):
        groups.setdefault(tz, []).append(site)
    return {tz: tuple(sites) for tz, sites in groups.items()}


def _site_days(s: Session, f: TrendFilters, zones: dict[int, str] | None = None) -> list[ColumnElement[bool]]:
    """The period on the raw rows, each site on its own local days: the sessions checked in between
    local midnight of `start` and local midnight after `end` in the zone of their chair's site.

    One zone (a single clinic, or every site in one zone) and no site filter is the plain UTC range;
    otherwise an OR of (chair at one of the zone's sites AND the zone's UTC range). No site selected:
    a condition that holds for no session.
    """
    zones = _site_zones(s, f) if zones is None else zones
    groups = _zone_groups(zones)
    if f.site_ids is None and len(groups) <= 1:
        lo, hi = utc_bounds(f.start, f.end, next(iter(groups), "UTC"))
        return [S.checked_in_at >= lo, S.checked_in_at < hi]
    if not groups:
        return [false()]
    parts = []
    for tz, sites in groups.items():
        lo, hi = utc_bounds(f.start, f.end, tz)
        parts.append(
            and_(
                S.chair_id.in_(select(Chair.id).where(Chair.site_id.in_(sites)).scalar_subquery()),
                S.checked_in_at >= lo,
                S.checked_in_at < hi,
            )
        )
    return [or_(*parts)]


def _site_chairs(f: TrendFilters, zones: dict[int, str]) -> list[ColumnElement[bool]]:
    """The site filter alone (no period) on the raw rows: the session's chair is at a selected site."""
    if f.site_ids is None:
        return []
    return [S.chair_id.in_(select(Chair.id).where(Chair.site_id.in_(tuple(zones))).scalar_subquery())]


def _where(f: TrendFilters, lo: datetime | None, hi: datetime | None) -> list[ColumnElement[bool]]:
    """The filter conditions on infusion_session (the visit-day range unless lo/hi are None)."""
    conds: list[ColumnElement[bool]] = []
    if lo is not None and hi is not None:
        conds += [S.checked_in_at >= lo, S.checked_in_at < hi]
    if f.therapy_ids:
        conds.append(S.therapy_id.in_(f.therapy_ids))
    if f.chair_ids:
        conds.append(S.chair_id.in_(f.chair_ids))
    if f.location != "all":
        conds.append(S.at_home.is_(f.location == "home"))
    if f.infusion == "first":
        conds.append(S.infusion_number == 1)
    elif f.infusion == "later":
        conds.append(S.infusion_number > 1)
    if f.nurse_ids:
        conds.append(
            exists().where(
                RateChange.session_id == S.id,
                RateChange.kind == "start",
                RateChange.status == "active",
                RateChange.entered_by_id.in_(f.nurse_ids),
            )
        )
    return conds


def _reacted() -> Subquery:
    """Sessions with at least one active reaction, and their worst active grade.

    Joined (LEFT OUTER) rather than asked per session with EXISTS: PostgreSQL runs
    an EXISTS in the select list as a per-row SubPlan, about 3x slower on 100,000
    sessions than this hash join (bench/metrics_bench.py); SQLite gains too.
    Reactions are rare, so aggregating all of them is cheap.
    """
    return (
        select(Reaction.session_id.label("sid"), func.max(Reaction.grade).label("worst"))
        .where(Reaction.status == "active")
        .group_by(Reaction.session_id)
        .subquery("reacted")
    )


def _fetch(s: Session, q: Executable, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows as plain tuples through the Core connection (the ORM result path costs ~3x per row), in one
    fetch: iterating a result fetches row by row (psycopg: a call per row)."""
    return [tuple(r) for r in s.connection().execute(q, params or {}).all()]


def _frame(rows: Iterable[Sequence[Any]], columns: Sequence[str], dtypes: dict[str, str] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame([r if isinstance(r, tuple) else tuple(r) for r in rows], columns=list(columns))
    return frame.astype(dtypes) if dtypes else frame  # one astype: per column costs a copy each


def _site_names(s: Session, sites: Iterable[int] | None = None) -> dict[int, str]:
    """Site id → name (every site, or the ones named)."""
    q = select(Clinic.id, Clinic.name)
    if sites is not None:
        q = q.where(Clinic.id.in_(tuple(sites)))
    return {int(site): name for site, name in s.execute(q)}


def _each_site(db: Database, f: TrendFilters, figure: Callable[[TrendFilters], pd.DataFrame]) -> pd.DataFrame:
    """A figure's frame for each selected site on its own (`site_ids=(site,)`), stacked with `site_id`
    and `site` first: the per-site breakdown is the one-site figure, so the two always agree."""
    with db.reading() as s:
        zones = _site_zones(s, f)
        names = _site_names(s, zones)
    frames = []
    for site in zones:
        frame = figure(replace(f, site_ids=(site,)))
        frame.insert(0, "site", [names[site]] * len(frame))
        frame.insert(0, "site_id", pd.Series([site] * len(frame), index=frame.index, dtype="int64"))
        frames.append(frame)
    if not frames:
        frame = figure(replace(f, site_ids=()))
        frame.insert(0, "site", pd.Series(dtype="object"))
        frame.insert(0, "site_id", pd.Series(dtype="int64"))
        return frame
    return pd.concat(frames, ignore_index=True)
