"""Chair utilisation: share of chair-hours occupied by site-local weekday × hour.

Kept apart because it is the one figure whose arithmetic happens in numpy
(wall-clock hour slots across DST), not in SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import Select, case, func, literal, or_, select
from sqlalchemy.orm import Session

from db.engine import Database
from db.models import ACTIVE_STATUSES, Chair, Clinic, InfusionSession
from db.types import UTCDateTime
from infusion.clock import utcnow
from infusion.reads.trends.filters import TrendFilters, _fetch, _frame, _where, utc_bounds
from infusion.reads.trends.sql import epoch_seconds
from infusion.settings import ClinicSettings, load_settings

S = InfusionSession

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
UTILISATION_COLUMNS = ("weekday", "weekday_name", "hour", "chair_hours_available", "chair_hours_occupied", "share")


def chair_utilisation(
    db: Database,
    f: TrendFilters,
    *,
    open_hour: int | None = None,
    close_hour: int | None = None,
    weekdays: Sequence[int] | None = None,
    now: datetime | None = None,
    rows: Callable[[Session, list[int], datetime, datetime], list[Any]] | None = None,
    occupied_cells: Callable[[Session, int, list[int], datetime, datetime, Grid], np.ndarray] | None = None,
    by_site: bool = False,
) -> pd.DataFrame:
    """Share of chair-hours occupied, by site-local weekday (0 = Monday) × hour of day.

    Occupancy runs from check-in to discharge (or deferral/cancellation close)
    for every session that sat in a chair, whatever its outcome; a session still
    open counts until `now`, even one left open since an earlier day (the live
    board lists those; the share shows what the record says). The denominator
    is the number of clinic chairs (kind 'chair' and active, or the chosen
    chairs) × the wall-clock hours from `open_hour` to `close_hour` on
    `weekdays` within the period, up to `now`. Each site's own opening hours
    and days come from its settings (`opening_hour`, `closing_hour`,
    `open_weekdays`; no clinical source sets them: 07:00–19:00 Monday–Friday
    is a default, not a fact); `open_hour`/`close_hour`/`weekdays` given here
    apply to every site instead. Home visits are not chair-hours. Occupied time
    outside a site's hours is not shown. A share above 1 means sessions overlapped in a chair
    (the services prevent it; imports and overbooked demo days do not).

    How: SQL selects only (check-in, end) as epoch seconds for the filtered
    sessions; numpy expands them to hour slots in the clinic's wall-clock time
    (zoneinfo, exact across DST on both databases — SQLite has no time-zone
    data) and sums per cell. Columns: UTILISATION_COLUMNS.

    A network: each site's chairs, in its own wall-clock hours and local days (the period and the
    opening hours are each site's); the network cell sums the sites' chair-hours, so 09:00 Monday is
    09:00 at every site, and the cells are every (weekday, hour) some site is open (a site closed in a
    cell adds no chair-hours to it). `by_site` gives each site's rows on those same cells (its share
    empty where it is closed), with `site_id` and `site` first.

    `rows(session, chairs, lo, hi)` replaces that query for one site's chairs and period (the summary
    path, infusion.reads.trends.summarised, reads the same pairs from trend_session); `occupied_cells(session,
    site, chairs, lo, hi, grid)` replaces the occupied cells altogether (infusion.reads.trends.chair_use:
    whole months from the rollup, `grid.clip` for the rest). Both get the chairs `site_chairs` selects.
    """
    given = None
    if open_hour is not None or close_hour is not None or weekdays is not None:
        default = ClinicSettings()  # what a site that set no hours uses
        given = OpeningHours(
            default.opening_hour if open_hour is None else open_hour,
            default.closing_hour if close_hour is None else close_hour,
            tuple(default.open_weekdays if weekdays is None else weekdays),
        )
    now = now or utcnow()
    per_site: list[tuple[int, str, list[tuple[int, int]], np.ndarray, np.ndarray]] = []
    with db.reading() as s:
        zones, names, site_hours = _sites(s, f)
        for site, tz in zones.items():
            hours_here = given or site_hours[site]
            days, open_hour, close_hour = hours_here.days, hours_here.open_hour, hours_here.close_hour
            keys = hours_here.cells()
            lo, hi = utc_bounds(f.start, f.end, tz)
            chair_q = site_chairs(site, f.chair_ids or None)
            chairs = list(s.scalars(chair_q))
            if not chairs:
                continue
            grid = Grid(ZoneInfo(tz), now, days, open_hour, close_hour)
            if occupied_cells is not None:
                available, _ = _site_cells(f, ZoneInfo(tz), lo, hi, now, days, open_hour, close_hour, len(chairs), [])
                cells_in_use = occupied_cells(s, site, chairs, lo, hi, grid)
                per_site.append((site, names.get(site, str(site)), keys, available, cells_in_use))
                continue
            if rows is not None:
                found = rows(s, chairs, lo, hi)
            else:
                end = case(
                    (S.status.in_(ACTIVE_STATUSES), literal(now, UTCDateTime())),
                    else_=func.coalesce(S.discharged_at, S.closed_at),
                )
                q = select(epoch_seconds(S.checked_in_at), epoch_seconds(end)).where(
                    S.checked_in_at < hi,
                    # a visit may run past midnight; a session still open keeps the chair until now
                    or_(S.checked_in_at >= lo - timedelta(days=1), S.status.in_(ACTIVE_STATUSES)),
                    S.chair_id.in_(chairs),
                    *_where(f, None, None),
                )
                found = _fetch(s, q)
            available, occupied = _site_cells(
                f, ZoneInfo(tz), lo, hi, now, days, open_hour, close_hour, len(chairs), found
            )
            per_site.append((site, names.get(site, str(site)), keys, available, occupied))
    union = sorted({key for _, _, keys, _, _ in per_site for key in keys})
    grid_w = np.array([w for w, _ in union], dtype=int)
    grid_h = np.array([h for _, h in union], dtype=int)
    position = {key: i for i, key in enumerate(union)}

    def placed(keys: list[tuple[int, int]], values: np.ndarray) -> np.ndarray:
        """One site's cells put on the network's cells (zero where the site is closed)."""
        out = np.zeros(len(union))
        out[[position[key] for key in keys]] = values
        return out

    if not per_site:  # nothing to measure: an empty frame, like every other metric of an empty clinic
        return _frame(
            [],
            (*(("site_id", "site") if by_site else ()), *UTILISATION_COLUMNS),
            {
                **({"site_id": "int64"} if by_site else {}),
                "weekday": "int64",
                "hour": "int64",
                "chair_hours_available": "float64",
                "chair_hours_occupied": "float64",
                "share": "float64",
            },
        )

    def cells(available: np.ndarray, occupied: np.ndarray) -> pd.DataFrame:
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(available > 0, occupied / np.where(available > 0, available, 1), np.nan)
        return pd.DataFrame(
            {
                "weekday": grid_w.astype("int64"),
                "weekday_name": [WEEKDAY_NAMES[w] for w in grid_w],
                "hour": grid_h.astype("int64"),
                "chair_hours_available": available,
                "chair_hours_occupied": occupied,
                "share": share,
            }
        )[list(UTILISATION_COLUMNS)]

    if not by_site:
        return cells(
            np.sum([placed(k, a) for _, _, k, a, _ in per_site], axis=0),
            np.sum([placed(k, o) for _, _, k, _, o in per_site], axis=0),
        )
    frames = []
    for site, name, keys, available, occupied in per_site:
        frame = cells(placed(keys, available), placed(keys, occupied))
        frame.insert(0, "site", name)
        frame.insert(0, "site_id", site)
        frames.append(frame.astype({"site_id": "int64"}))
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class OpeningHours:
    """When a site's chairs count as available: `open_hour` to `close_hour` (wall clock) on `days` (0 = Monday)."""

    open_hour: int
    close_hour: int
    days: tuple[int, ...]

    def __post_init__(self) -> None:
        if not 0 <= self.open_hour < self.close_hour <= 24:
            raise ValueError("need 0 ≤ open_hour < close_hour ≤ 24")
        object.__setattr__(self, "days", tuple(sorted({int(d) for d in self.days})))
        if any(not 0 <= d <= 6 for d in self.days):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")

    def cells(self) -> list[tuple[int, int]]:
        """(weekday, hour) cells in the order `_site_cells` lays them out."""
        return [(w, h) for w in self.days for h in range(self.open_hour, self.close_hour)]


def site_chairs(site: int, chair_ids: Sequence[int] | None = None, *, active: bool = True) -> Select[Any]:
    """The chairs a site's utilisation counts: its treatment chairs (home visits hold none), those of the
    chair filter `chair_ids` when given, else the active ones (`active` False: the inactive ones, which
    chair_use takes away from the site's row for every chair)."""
    q = select(Chair.id).where(Chair.kind == "chair", Chair.site_id == site)
    return q.where(Chair.id.in_(chair_ids)) if chair_ids is not None else q.where(Chair.active.is_(active))


def _sites(s: Session, f: TrendFilters) -> tuple[dict[int, str], dict[int, str], dict[int, OpeningHours]]:
    """The selected sites' time zones (`filters._site_zones`), names and opening hours (from their settings,
    defaults where they set none), read in one statement: each round trip is ~0.3 ms on PostgreSQL."""
    q = select(Clinic.id, Clinic.timezone, Clinic.name, Clinic.settings).order_by(Clinic.id)
    if f.site_ids is not None:
        q = q.where(Clinic.id.in_(f.site_ids))
    zones, names, hours = {}, {}, {}
    for site, tz, name, raw in s.execute(q):
        settings = load_settings(raw)
        zones[int(site)], names[int(site)] = tz or "UTC", name
        hours[int(site)] = OpeningHours(settings.opening_hour, settings.closing_hour, tuple(settings.open_weekdays))
    return zones, names, hours


@dataclass(frozen=True)
class Grid:
    """One site's (weekday, hour) cells: occupied hours of a set of intervals clipped to a span (`clip`), and
    hours per slot of the week (weekday × 24 + hour) placed on the cells (`from_slots`)."""

    zone: ZoneInfo
    now: datetime
    days: tuple[int, ...]
    open_hour: int
    close_hour: int

    def clip(self, f: TrendFilters, lo: datetime, hi: datetime, found: list[Any]) -> np.ndarray:
        _, occupied = _site_cells(f, self.zone, lo, hi, self.now, self.days, self.open_hour, self.close_hour, 0, found)
        return occupied

    def from_slots(self, hours: np.ndarray) -> np.ndarray:
        cells = [(w, h) for w in self.days for h in range(self.open_hour, self.close_hour)]
        return np.array([hours[w * 24 + h] for w, h in cells], dtype=float)


_WALL_EPOCH = datetime(1970, 1, 1)


def _wall_hour(instant: datetime, zone: ZoneInfo) -> float:
    """`wall_hours` of one aware instant, without building a pandas index (~0.3 ms a call, several per
    figure): local wall-clock microseconds since 1970-01-01 over 3.6e9, the same arithmetic."""
    local = instant.astimezone(zone).replace(tzinfo=None)
    return ((local - _WALL_EPOCH) // timedelta(microseconds=1)) / 3_600_000_000


def _site_cells(
    f: TrendFilters,
    zone: ZoneInfo,
    lo: datetime,
    hi: datetime,
    now: datetime,
    days: tuple[int, ...],
    open_hour: int,
    close_hour: int,
    n_chairs: int,
    found: list[Any],
) -> tuple[np.ndarray, np.ndarray]:
    """One site's available and occupied chair-hours per (weekday, hour) cell, in its own wall-clock time."""
    hours = np.arange(open_hour, close_hour)
    grid_w, grid_h = np.repeat(np.array(days, dtype=int), len(hours)), np.tile(hours, len(days))
    available = np.zeros(grid_w.shape)
    occupied = np.zeros(grid_w.shape)
    cell = {(w, h): i for i, (w, h) in enumerate(zip(grid_w, grid_h))}
    if days:
        # Everything below is in local wall-clock hours since 1970-01-01 00:00 (local).
        def wall_hours(instants: np.ndarray) -> np.ndarray:
            local = pd.to_datetime(instants, unit="s", utc=True).tz_convert(zone).tz_localize(None)
            return (local.to_numpy(dtype="datetime64[us]").astype("int64") / 3_600_000_000).astype(float)

        limit = min(hi, max(now, lo))
        span = np.array([_wall_hour(lo, zone), _wall_hour(limit, zone)])
        # Denominator: each clinic hour of each day in the period, clipped to [lo, now).
        day0 = int(span[0] // 24)
        if n_chairs:  # (vectorised: a five-year period is 1,826 days × the opening hours)
            day = day0 + np.arange((f.end - f.start).days + 1)
            weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
            slot = day[:, None] * 24 + hours[None, :]
            part = np.minimum(slot + 1, span[1]) - np.maximum(slot, span[0])
            index = np.full(7 * 24, -1)
            for (w, h), i in cell.items():
                index[w * 24 + h] = i
            where = index[(weekday[:, None] * 24 + hours[None, :])]
            ok = (where >= 0) & (part > 0)
            available += np.bincount(where[ok], weights=part[ok] * n_chairs, minlength=len(available))
        if found:
            data = np.array([(a, b) for a, b in found if a is not None and b is not None], dtype=float)
            if data.size:
                start_h, end_h = np.split(wall_hours(np.concatenate([data[:, 0], data[:, 1]])), 2)  # one call
                start_h, end_h = np.maximum(start_h, span[0]), np.minimum(end_h, span[1])
                keep = end_h > start_h
                start_h, end_h = start_h[keep], end_h[keep]
                first = np.floor(start_h).astype(np.int64)
                count = np.ceil(end_h).astype(np.int64) - first
                owner = np.repeat(np.arange(len(first)), count)
                offset = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
                slot = first[owner] + offset
                overlap = np.minimum(end_h[owner], slot + 1) - np.maximum(start_h[owner], slot)
                weekday, hod = (slot // 24 + 3) % 7, slot % 24
                lookup = np.full(7 * 24, -1)
                for (w, h), i in cell.items():
                    lookup[w * 24 + h] = i
                index = lookup[weekday * 24 + hod]
                ok = (index >= 0) & (overlap > 0)
                occupied += np.bincount(index[ok], weights=overlap[ok], minlength=len(occupied))
    return available, occupied
