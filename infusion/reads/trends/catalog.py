"""The therapy catalog as the Trends queries need it: labels, and label windows rendered into SQL.

Durations are computed from the time stamps (IV start→stop, check-in→discharge)
where the `infusion_minutes`/`chair_minutes` summaries are missing (imported
data). The label window of a session (min/max minutes) is looked up per therapy
and infusion number from the catalog rows, rendered into the SQL as a CASE
expression so planned-vs-actual arithmetic stays in the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
from sqlalchemy import ColumnElement, Float, and_, case, cast, func, literal, null, select
from sqlalchemy.orm import Session

from db.models import InfusionSession, Therapy
from infusion.reads.trends.shared import shared
from infusion.reads.trends.sql import minutes_between

S = InfusionSession


@dataclass(frozen=True)
class _TherapyInfo:
    id: int
    label: str
    duration_windows: list[dict[str, Any]] = field(default_factory=list)
    every_minutes: int | None = None


def _catalog(s: Session) -> dict[int, _TherapyInfo]:
    """Therapy id → label, label windows and vitals interval (read once per page load: `shared`)."""
    return shared(("catalog",), lambda: _read_catalog(s))


_CATALOG = select(Therapy.id, Therapy.name, Therapy.brand, Therapy.duration_windows, Therapy.vitals_schedule)


def _read_catalog(s: Session) -> dict[int, _TherapyInfo]:
    rows = s.connection().execute(_CATALOG).all()  # Core: the ORM result path costs more than the read
    return {
        tid: _TherapyInfo(tid, brand or name, list(windows or []), (schedule or {}).get("every_minutes"))
        for tid, name, brand, windows, schedule in rows
    }


def _window_expr(catalog: dict[int, _TherapyInfo], which: Literal["min", "max", "planned"]) -> ColumnElement[Any]:
    """The session's label window bound as SQL: first matching rule by therapy and infusion number.

    `planned` is the label maximum where there is one, else the minimum ("≥ 2.5 h" plans 2.5 h).
    Mirrors infusion.clinical.catalog.duration_window (first rule whose from/to range holds).
    """
    whens = []
    for info in catalog.values():
        for rule in info.duration_windows:
            lo, hi = rule.get("from", 1), rule.get("to")
            low, high = rule.get("min_minutes"), rule.get("max_minutes")
            value = {"min": low, "max": high, "planned": high if high is not None else low}[which]
            cond = and_(
                S.therapy_id == info.id, S.infusion_number >= lo, *([S.infusion_number <= hi] if hi is not None else [])
            )
            # A matching rule with no value must still stop the search (first match wins).
            whens.append((cond, literal(value, Float()) if value is not None else cast(null(), Float)))
    if not whens:
        return cast(null(), Float)
    return case(*whens, else_=cast(null(), Float))


def _infusion_minutes() -> ColumnElement[float]:
    """The summary kept on write (what it is for: no time arithmetic per row), else the time stamps."""
    return func.coalesce(S.infusion_minutes, minutes_between(S.iv_started_at, S.iv_stopped_at))


def _chair_minutes() -> ColumnElement[float]:
    return func.coalesce(S.chair_minutes, minutes_between(S.checked_in_at, S.discharged_at))


def _label(frame: pd.DataFrame, catalog: dict[int, _TherapyInfo]) -> pd.DataFrame:
    frame["therapy"] = [catalog[t].label if t in catalog else str(t) for t in frame["therapy_id"]]
    return frame
