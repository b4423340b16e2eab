"""The live forecast (docs/clinical-basis.md §3): from a session's actual rate log and its plan, the next
rate step and the expected end. "Rate changes lengthen the infusion, not the dose": a pause or a slower
rate moves the end later instead of shortening the dose."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from infusion.clinical.titration.plan import EPS, Plan, planned_steps, resolve_plan
from infusion.clock import format_minutes

#: docs/clinical-basis.md §3 reaction rules (Ocrevus = Briumvi): mild–moderate → halve the rate,
#: hold ≥ 30 min, then increase if tolerated. Used as the hold after any rate reduction.
REACTION_HOLD_MINUTES = 30
#: Rates this close are "the same" (pump rounding, mg↔mL conversion); a product choice.
RATE_TOLERANCE = 0.5


@dataclass(frozen=True)
class Forecast:
    """Where the infusion goes from here. Fields are None where the plan cannot forecast; `note` says why."""

    next_step_at: datetime | None
    next_rate: float | None
    unit: str | None
    expected_end: datetime | None
    infused: float | None
    remaining: float | None
    note: str
    amount_unit: str | None = None  # "mL" or "mg": the unit of `infused` and `remaining`
    current_rate: float | None = None
    #: the forecast rate changes after now, (time, rate), up to the expected end
    upcoming: tuple[tuple[datetime, float], ...] = ()


def _at(base: datetime, minutes: float) -> datetime:
    return base + timedelta(seconds=round(minutes * 60))


def _minutes(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 60.0


def _amount(amount: float | None) -> str:
    """What is left to give, to the whole mL or mg a nurse reads off a pump (499.997 → 500)."""
    return "—" if amount is None else f"{round(amount):,}"


def _hhmm(moment: datetime, tz: str) -> str:
    return moment.astimezone(ZoneInfo(tz)).strftime("%H:%M")


def _no_forecast(note: str, p: Plan | None = None, **known: Any) -> Forecast:
    return Forecast(
        None,
        None,
        p.unit if p else None,
        None,
        known.get("infused"),
        known.get("remaining"),
        note,
        amount_unit=p.amount_unit if p else None,
        current_rate=known.get("current_rate"),
    )


@dataclass
class _Replay:
    infused: float = 0.0
    running_minutes: float = 0.0  # time infusing since IV start, pauses excluded: the plan's own clock
    rate: float = 0.0
    paused_since: datetime | None = None
    stopped_at: datetime | None = None
    set_at: datetime | None = None  # when the current rate was set
    reduced: bool = False  # the current rate was set below the rate before it (reaction rule hold)
    done_at: datetime | None = None  # when the total was reached, if it was


def _replay(
    log: Sequence[tuple[datetime, str, float | None]], start: datetime, now: datetime, total: float | None
) -> _Replay:
    """Integrate the actual rate log from IV start to now (pause = rate 0, stop ends it)."""
    r = _Replay()
    t = start
    last_nonzero = 0.0

    def run_to(until: datetime) -> None:
        nonlocal t
        if until <= t:
            return
        minutes = _minutes(t, until)
        add = r.rate * minutes / 60.0
        if total is not None and r.done_at is None and r.rate > 0 and r.infused + add >= total - EPS:
            r.done_at = _at(t, (total - r.infused) / r.rate * 60.0)
        r.infused += add
        if r.paused_since is None:
            r.running_minutes += minutes
        t = until

    for at, kind, rate in log:
        if at > now:
            break
        run_to(at)
        if kind in ("start", "change", "resume") and rate:
            r.reduced = kind != "start" and last_nonzero > 0 and rate < last_nonzero - RATE_TOLERANCE
            r.rate, r.set_at, r.paused_since = float(rate), at, None
            last_nonzero = r.rate
        elif kind in ("pause", "change"):  # a change to 0 is a pause in all but name
            r.rate, r.paused_since = 0.0, r.paused_since or at
        elif kind == "stop":
            r.rate, r.stopped_at = 0.0, at
            return r
    run_to(now)
    return r


def _planned_rate_at(p: Plan, minute: float) -> float:
    t = 0.0
    for rate, minutes in p.levels:
        if minutes is None or minute < t + minutes - EPS:
            return rate
        t += minutes
    return p.levels[-1][0]


def _schedule(p: Plan, r: _Replay, now: datetime) -> tuple[list[tuple[datetime, float]], datetime | None, bool]:
    """Future (time, rate) changes, the time the next step was due if already overdue, and whether on plan."""
    planned = _planned_rate_at(p, r.running_minutes)
    upcoming: list[tuple[datetime, float]] = []
    if abs(r.rate - planned) <= RATE_TOLERANCE:
        # On plan: the remaining levels follow the plan's clock, which pauses stopped, so the
        # rest of the plan is shifted by the paused time.
        t = 0.0
        for rate, minutes in p.levels:
            if t > r.running_minutes + EPS:
                upcoming.append((_at(now, t - r.running_minutes), rate))
            if minutes is None:
                break
            t += minutes
        return upcoming, None, True
    # Off plan (reduced after a reaction, resumed lower, or ahead of plan): hold, then step up through
    # the planned rates above the current one, each for its planned time.
    if r.reduced:
        wait = float(REACTION_HOLD_MINUTES)
    else:
        same = [m for rate, m in p.levels if abs(rate - r.rate) <= RATE_TOLERANCE and m is not None]
        intervals = [m for _, m in p.levels if m is not None]
        wait = same[0] if same else (intervals[0] if intervals else float(REACTION_HOLD_MINUTES))
    due = _at(r.set_at or now, wait)
    t_next = max(due, now)
    for rate, minutes in p.levels:
        if rate <= r.rate + RATE_TOLERANCE:
            continue
        upcoming.append((t_next, rate))
        if minutes is None:
            break
        t_next = _at(t_next, minutes)
    return upcoming, (due if due < now else None), False


def _end(
    rate: float, left: float, now: datetime, upcoming: list[tuple[datetime, float]]
) -> tuple[datetime | None, list[tuple[datetime, float]]]:
    """When `left` is given at `rate` now, then the upcoming rates; and the steps that happen before it."""
    t = now
    kept: list[tuple[datetime, float]] = []
    for at, new_rate in upcoming:
        if rate > 0 and rate * _minutes(t, at) / 60.0 >= left - EPS:
            break
        left -= rate * _minutes(t, at) / 60.0
        t, rate = at, new_rate
        kept.append((at, new_rate))
    if rate <= 0:
        return None, kept
    return _at(t, left / rate * 60.0), kept


def forecast(
    plan: dict[str, Any] | list[dict[str, Any]] | None,
    *,
    infusion_number: int,
    dose: float | None,
    weight_kg: float | None,
    iv_started_at: datetime | None,
    rate_log: Sequence[tuple[datetime, str, float | None]],
    now: datetime,
    tz: str = "UTC",
    concentration_mg_ml: float | None = None,
) -> Forecast:
    """Next rate step and expected end from the actual rate log (active entries only) and the plan.

    The log (kinds start/change/pause/resume/stop; pause = rate 0) gives what
    has been infused. From the current state: on plan, the rest of the plan
    follows, shifted by any paused time; below (or above) the planned rate for
    this point, the current rate is held (30 min after a reduction,
    docs/clinical-basis.md §3) and then steps up through the planned rates above it,
    each for its planned time. The end is when the bag (or dose) is done.
    Paused, stopped, IVIG and plan-less sessions get None fields and a note.

    mg/h plans (rituximab) need `concentration_mg_ml` to read the log, which
    records mL/h: the catalog and the session hold no concentration, and
    docs/clinical-basis.md gives none. Times are aware UTC; `tz` is only for the note.
    """
    p = resolve_plan(plan, infusion_number, dose, weight_kg)
    if p is None:
        return _no_forecast("No rate plan for this therapy and infusion number: nothing to forecast.")
    log = sorted(rate_log, key=lambda e: e[0])
    if p.unit == "mg/h":
        if not concentration_mg_ml:
            return _no_forecast(
                "The plan is in mg/h but the rate log is in mL/h and no concentration "
                "(mg/mL) is recorded, so the plan cannot be followed here.",
                p,
            )
        log = [(at, kind, rate * concentration_mg_ml if rate is not None else None) for at, kind, rate in log]
    if iv_started_at is None:
        steps = planned_steps(plan, infusion_number=infusion_number, dose=dose, weight_kg=weight_kg)
        if not steps:
            return _no_forecast(f"Not started. {(p.problem or 'No planned steps.').capitalize()}.", p)
        length = steps[-1].offset_minutes if steps[-1].rate == 0 else None
        return Forecast(
            None,
            steps[0].rate,
            p.unit,
            None,
            0.0,
            p.total,
            f"Not started: start at {steps[0].rate:g} {p.unit}"
            + (f"; the plan takes about {format_minutes(length)}." if length else "."),
            amount_unit=p.amount_unit,
        )
    if not any(kind == "start" for _, kind, _ in log) and p.levels:
        log.insert(0, (iv_started_at, "start", p.levels[0][0]))  # no log row: assume the plan's first rate
    r = _replay(log, iv_started_at, now, p.total)
    # a pump left running after the bag is empty gives nothing more: clamp to the total
    infused = round(min(r.infused, p.total) if p.total is not None else r.infused, 3)
    remaining = round(max(p.total - r.infused, 0.0), 3) if p.total is not None else None
    known = {"infused": infused, "remaining": remaining, "current_rate": r.rate}
    if r.stopped_at is not None:
        return Forecast(
            None,
            None,
            p.unit,
            r.stopped_at,
            infused,
            remaining,
            f"IV stopped at {_hhmm(r.stopped_at, tz)}: {infused:g} {p.amount_unit} given by the rate log.",
            amount_unit=p.amount_unit,
            current_rate=0.0,
        )
    if p.kind == "weight":
        if p.problem:
            return _no_forecast(f"IVIG: {p.problem}; docs/clinical-basis.md §3 gives no step size either.", p, **known)
        return _no_forecast(
            f"IVIG is titrated as tolerated: docs/clinical-basis.md §3 gives {p.levels[0][0]:g} mL/h (0.5 mL/kg/h) for "
            f"30 min, then 'increase every 30 min as tolerated' up to {p.max_rate:g} mL/h with no step size, "
            "so no next step or end time is forecast.",
            p,
            **known,
        )
    if not p.levels:
        return _no_forecast(f"The plan cannot be laid out: {p.problem}.", p, **known)
    if r.paused_since is not None:
        return _no_forecast(
            f"Paused since {_hhmm(r.paused_since, tz)}: every paused minute moves the end later; "
            "the forecast resumes with the infusion.",
            p,
            **known,
        )
    if remaining is not None and remaining <= EPS:
        done = r.done_at or now
        return Forecast(
            None,
            None,
            p.unit,
            done,
            infused,
            0.0,
            f"The {p.total:g} {p.amount_unit} should be in by {_hhmm(done, tz)}: stop the IV and record it.",
            amount_unit=p.amount_unit,
            current_rate=r.rate,
        )

    upcoming, overdue_since, on_plan = _schedule(p, r, now)
    end, upcoming = _end(r.rate, remaining, now, upcoming) if remaining is not None else (None, upcoming)
    parts: list[str] = []
    if upcoming:
        at, rate = upcoming[0]
        if overdue_since is not None:
            parts.append(f"now: increase to {rate:g} {p.unit} (due since {_hhmm(overdue_since, tz)})")
        elif r.reduced and not on_plan:
            parts.append(
                f"hold {r.rate:g} {p.unit} (reduced at {_hhmm(r.set_at or now, tz)}; hold ≥ "
                f"{REACTION_HOLD_MINUTES} min), then at {_hhmm(at, tz)} increase to {rate:g} {p.unit} "
                "if tolerated"
            )
        else:
            parts.append(f"at {_hhmm(at, tz)} increase to {rate:g} {p.unit}")
    elif p.kind == "fixed":
        parts.append(f"fixed rate {r.rate:g} {p.unit}, no titration")
    else:
        parts.append(f"stay at {r.rate:g} {p.unit}: no further planned step")
    if end is not None:
        parts.append(f"expected end {_hhmm(end, tz)} ({_amount(remaining)} {p.amount_unit} left)")
    elif p.problem:
        parts.append(p.problem)
    return Forecast(
        upcoming[0][0] if upcoming else None,
        upcoming[0][1] if upcoming else None,
        p.unit,
        end,
        infused,
        remaining,
        "; ".join(parts),
        amount_unit=p.amount_unit,
        current_rate=r.rate,
        upcoming=tuple(upcoming),
    )
