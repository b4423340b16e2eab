"""One simulated session as events in minutes after check-in, and the infusion pump.

`Sim` is what the generator decides for a session before anything has an
absolute time or an id; `pump` turns a titration ladder, a bag volume and an
optional reaction into rate events and the stop time (docs/clinical-basis.md §3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from infusion.services.entries import MAX_RATE_ML_H

INF = float("inf")

BASELINE, ROUTINE, REACTION, FEVER, HYPERTENSION = range(5)  # kinds of vitals set
RATE_NOTES = {"pause": "Paused for an infusion reaction", "resume": "Resumed at half rate; symptoms settled"}


@dataclass
class ReactionSim:
    onset: int
    grade: int
    symptoms: list[str]
    other_text: str | None
    actions: list[str]
    medication: str | None
    resolved: int
    provider: str | None
    note: str | None


@dataclass
class Sim:
    """A session's events in minutes after check-in; turned into rows later."""

    length: int = 0  # check-in to discharge/closure
    program_at: int | None = None
    ready: int | None = None
    start: int | None = None
    stop: int | None = None
    obs_end: int | None = None
    discharge: int | None = None
    closed: int | None = None
    premeds: list[tuple[int, tuple[str, str, str]]] = field(default_factory=list)
    rates: list[tuple[int, str, float | None, str | None]] = field(default_factory=list)
    vitals: list[tuple[int, int, ReactionSim | None]] = field(default_factory=list)
    reactions: list[ReactionSim] = field(default_factory=list)
    deferral_reason: str | None = None
    early_reason: str | None = None
    premed_override: str | None = None
    observation: int | None = None
    window_max: int | None = None


@dataclass(frozen=True)
class ForcedReaction:
    """A reaction the live day needs at a fixed point (the paused chair)."""

    after_start: int
    grade: int
    kind: str  # "pause" | "slow" | "stop" | "observe"


def pump(
    ladder: list[tuple[float, float]],
    volume: float,
    reaction: tuple[float, str, float] | None,
) -> tuple[list[tuple[float, str, float | None]], float]:
    """Rate events and the stop time (minutes after IV start) for a titration ladder.

    `ladder` is [(rate mL/h, minutes at that rate)], the last step open-ended.
    A reaction at minute m either slows the rate to half, pauses for `hold`
    minutes and resumes at half rate, or stops the infusion (docs/clinical-basis.md §3
    reaction rules); after a slow or resume the rate goes back up after 30 min.
    """
    t, given, i = 0.0, 0.0, 0
    rate = ladder[0][0]
    events: list[tuple[float, str, float | None]] = [(0.0, "start", rate)]
    step_end = ladder[0][1]
    react_at, kind, hold = reaction if reaction else (INF, "", 0.0)
    recovering = False
    while True:
        done_at = t + (volume - given) / rate * 60
        nxt = min(done_at, step_end, react_at)
        given += rate * (nxt - t) / 60
        t = nxt
        if nxt == done_at:
            return events, t
        if nxt == react_at:
            react_at = INF
            if kind == "stop":
                return events, t + 2
            if kind == "pause":
                events.append((t + 1, "pause", None))
                t += hold
                rate = round(rate / 2, 1)
                events.append((t, "resume", rate))
            elif kind == "slow":
                rate = round(rate / 2, 1)
                events.append((t + 1, "change", rate))
            if kind in ("pause", "slow"):
                step_end, recovering = t + 30, True
            continue
        if recovering:  # tolerated half rate for 30 min: back to the ladder's rate
            recovering = False
            rate = ladder[i][0]
            events.append((t, "change", rate))
            step_end = t + (ladder[i][1] if i + 1 < len(ladder) else INF)
            continue
        if i + 1 < len(ladder):
            i += 1
            rate = ladder[i][0]
            events.append((t, "change", rate))
            step_end = t + ladder[i][1]
        else:
            step_end = INF


def open_last(steps: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Rates capped at the pump maximum; the last step runs until the bag is empty."""
    steps = [(min(r, MAX_RATE_ML_H), m) for r, m in steps]
    steps[-1] = (steps[-1][0], INF)
    return steps
