"""When the next set of vitals is due, and where the infusion stands against its window.

Pure functions over times, so the rules can be tested without a database.
The schedule shape is docs/clinical-basis.md §4's suggested configurable default.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from infusion.clinical.states import SessionStatus


@dataclass(frozen=True)
class VitalsDue:
    due_at: datetime | None
    reason: str

    def overdue_minutes(self, now: datetime) -> float:
        if self.due_at is None:
            return 0.0
        return max(0.0, (now - self.due_at).total_seconds() / 60)


def next_vitals_due(
    *,
    status: str,
    schedule: dict[str, Any],
    checked_in_at: datetime | None,
    iv_started_at: datetime | None,
    iv_stopped_at: datetime | None,
    observation_minutes: int | None,
    vitals_times: list[datetime],
    rate_change_times: list[datetime],
    early_minutes: int = 5,
) -> VitalsDue:
    """The earliest vitals obligation not yet met.

    Obligations: the check-in baseline; fixed offsets after IV start; one at
    each rate change; then every `every_minutes` after the last set; one at the
    end of the infusion; one at the end of observation. A set taken up to
    `early_minutes` before a due time counts for it.
    """
    early = timedelta(minutes=early_minutes)

    def met(at: datetime) -> bool:
        return any(t >= at - early for t in vitals_times)

    if status in (SessionStatus.CHECKED_IN, SessionStatus.READY):
        if checked_in_at is not None and not any(t >= checked_in_at - early for t in vitals_times):
            return VitalsDue(checked_in_at, "check-in baseline")
        return VitalsDue(None, "next set due after IV start")

    if status in (SessionStatus.INFUSING, SessionStatus.PAUSED) and iv_started_at is not None:
        candidates: list[VitalsDue] = []
        for offset in schedule.get("after_start_minutes", []) or []:
            at = iv_started_at + timedelta(minutes=offset)
            if not met(at):
                candidates.append(VitalsDue(at, f"{offset} min after start"))
                break
        if schedule.get("at_rate_change", True):
            for at in sorted(rate_change_times):
                if at > iv_started_at and not met(at):
                    candidates.append(VitalsDue(at, "rate change"))
                    break
        every = schedule.get("every_minutes")
        if every:
            anchor = max([iv_started_at, *[t for t in vitals_times if t >= iv_started_at]])
            candidates.append(VitalsDue(anchor + timedelta(minutes=every), f"every {every} min"))
        if not candidates:
            return VitalsDue(None, "no schedule")
        return min(candidates, key=lambda c: c.due_at)  # type: ignore[arg-type,return-value]

    if status == SessionStatus.OBSERVATION and iv_stopped_at is not None:
        if schedule.get("at_end_of_infusion", True) and not met(iv_stopped_at):
            return VitalsDue(iv_stopped_at, "end of infusion")
        if observation_minutes and schedule.get("at_end_of_observation", True):
            end = iv_stopped_at + timedelta(minutes=observation_minutes)
            if not met(end):
                return VitalsDue(end, "end of observation")
        return VitalsDue(None, "schedule complete")

    return VitalsDue(None, "not monitoring")


@dataclass(frozen=True)
class InfusionClock:
    elapsed_minutes: float | None
    window_min: int | None
    window_max: int | None
    past_window: bool
    under_minimum: bool


def infusion_clock(
    *,
    iv_started_at: datetime | None,
    iv_stopped_at: datetime | None,
    now: datetime,
    window_min: int | None,
    window_max: int | None,
    tolerance_minutes: int,
) -> InfusionClock:
    """Elapsed infusion time against the therapy's expected window."""
    if iv_started_at is None:
        return InfusionClock(None, window_min, window_max, False, False)
    end = iv_stopped_at or now
    elapsed = (end - iv_started_at).total_seconds() / 60
    past = window_max is not None and elapsed > window_max + tolerance_minutes
    # "about 1 h" (min == max) is an approximate duration, not a label minimum: it gets the same
    # tolerance below as above. A true minimum ("≥ 2.5 h", IVMP "≥ 30 min") gets none.
    approximate = window_min is not None and window_min == window_max
    floor = window_min - tolerance_minutes if approximate else window_min  # type: ignore[operator]
    under = iv_stopped_at is not None and floor is not None and elapsed < floor
    return InfusionClock(elapsed, window_min, window_max, past, under)


def observation_ends_at(iv_stopped_at: datetime | None, minutes: int | None) -> datetime | None:
    if iv_stopped_at is None:
        return None
    return iv_stopped_at + timedelta(minutes=minutes or 0)
