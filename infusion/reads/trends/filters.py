"""What every Trends figure shares: the filters, the sessions they select, and rows → frames.

One place decides which sessions a metric sees, so every figure on the page
counts the same sessions (see the package docstring for the definitions).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import ColumnElement, Subquery, exists, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from db.models import Clinic, InfusionSession, RateChange, Reaction

S = InfusionSession


@dataclass(frozen=True)
class TrendFilters:
    """What the manager picked. Dates are clinic-local and inclusive; empty tuples mean "all".

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

    def __post_init__(self) -> None:
        for name in ("therapy_ids", "chair_ids", "nurse_ids"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
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
    """The clinic's time zone; UTC before the clinic row exists (an empty database is not an error)."""
    tz = s.scalar(select(Clinic.timezone).order_by(Clinic.id).limit(1))
    return tz or "UTC"


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


def _fetch(s: Session, q: Executable) -> list[tuple[Any, ...]]:
    """Rows as plain tuples through the Core connection (the ORM result path costs ~3x per row)."""
    return [tuple(r) for r in s.connection().execute(q)]


def _frame(rows: Iterable[Sequence[Any]], columns: Sequence[str], dtypes: dict[str, str] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame([r if isinstance(r, tuple) else tuple(r) for r in rows], columns=list(columns))
    for column, dtype in (dtypes or {}).items():
        frame[column] = frame[column].astype(dtype)
    return frame
