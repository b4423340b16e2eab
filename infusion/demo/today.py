"""Today's live board, laid out around the real now so every page has something to show.

Fixed slots say which chair holds which state at now (infusing, paused with a
reaction, in observation, ready, checked in, at home), which sessions were
earlier today and which are still to come. Active sessions fix each chair's
timeline, so they are written first; earlier ones end before the chair's
active one checked in, later ones start after it is free.
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random

from infusion.demo.events import ForcedReaction, Sim
from infusion.demo.premises import Premises
from infusion.demo.rows import SessionRows
from infusion.demo.simulate import Generator, fast_randint
from infusion.demo.therapies import Plan


@dataclass(frozen=True)
class LiveSlot:
    """One session of today's live board: its chair, the state at `now`, and where `now` falls."""

    state: str
    chair: int  # index into the clinic chairs; -1 = home visit
    prefer: tuple[str, ...]
    anchor: str = "start"  # checkin | ready | start | pause | stop | obs_end
    minutes: int = 0  # now = anchor + minutes
    overdue: bool = False  # leave the last due set of vitals untaken


ANY_SHORT = ("natalizumab", "methylprednisolone", "edaravone", "ocrelizumab_sc", "cyclophosphamide")
LIVE_ACTIVE = (
    LiveSlot("infusing", 0, ("ocrelizumab_iv", "rituximab", "ivig"), "start", 110, overdue=True),
    LiveSlot("infusing", 1, ("natalizumab", "alemtuzumab", "ivig"), "start", 35),
    LiveSlot("paused", 2, ("ocrelizumab_iv", "ublituximab", "rituximab", "ivig"), "pause", 8),
    LiveSlot("observation", 3, ("natalizumab", "ocrelizumab_iv", "ublituximab"), "stop", 25),
    LiveSlot("observation", 4, ("alemtuzumab", "natalizumab", "ocrelizumab_iv"), "obs_end", 10, overdue=True),
    LiveSlot("ready", 5, ("natalizumab", "ocrelizumab_iv", "ublituximab"), "ready", 12),
    LiveSlot("checked_in", 6, ("ocrelizumab_iv", "natalizumab", "ivig", "rituximab"), "checkin", 6),
    LiveSlot("infusing", 7, ("methylprednisolone", "cyclophosphamide", "edaravone"), "start", 12),
    LiveSlot("infusing", -1, ("ivig",), "start", 50),
)
LIVE_LATER = tuple(
    LiveSlot("scheduled", c, ("natalizumab", "ocrelizumab_iv", "ivig", "ublituximab")) for c in (1, 2, 4, 5, 7)
) + (LiveSlot("cancelled", 6, ("natalizumab", "ivig")),)
#: On chairs whose active session checked in recently, so the earlier one fits into the morning.
LIVE_EARLIER = tuple(LiveSlot("discharged", c, ANY_SHORT) for c in (1, 5, 6, 7)) + (
    LiveSlot("deferred", 2, ("natalizumab", "ocrelizumab_iv", "ivig")),
)


def live_slots(premises: Premises, sessions: int) -> list[LiveSlot]:
    """Today's board, most important first; active slots on chairs already in use are skipped, and the
    home visit at a network site without the home-infusion team."""
    active = [
        s
        for s in LIVE_ACTIVE
        if (s.chair >= 0 or premises.home_id is not None) and premises.chair_id(s.chair) not in premises.busy_chairs
    ]
    return (active + list(LIVE_LATER) + list(LIVE_EARLIER))[:sessions]


class LiveDay:
    """Simulates today's sessions and writes them cut at now (what has not happened yet is left out)."""

    def __init__(self, rng: Random, gen: Generator, rows: SessionRows, premises: Premises, now_min: int) -> None:
        self.rng, self.ri, self.gen, self.rows, self.premises = rng, fast_randint(rng), gen, rows, premises
        self.now_min = now_min

    def write(self, live_plans: list[tuple[LiveSlot, Plan]]) -> None:
        """Today's board around the real now. Active sessions fix each chair's timeline, so they go
        first; earlier sessions on a chair end before its active one checked in, later ones start after."""
        now = self.now_min
        checkins: dict[int, int] = {}
        frees: dict[int, int] = {}
        for slot, plan in live_plans:
            if slot in LIVE_ACTIVE:
                forced = ForcedReaction(45, 2, "pause") if slot.state == "paused" else None
                sim = self.gen.simulate(plan, forced)
                cut = self._cut_point(slot, sim)
                if sim.discharge is not None and sim.discharge <= cut:  # still in the chair at now
                    sim.discharge = sim.length = cut + self.ri(10, 30)
                checkin = now - cut
                checkins[slot.chair], frees[slot.chair] = checkin, checkin + sim.length
                drop = None
                if slot.overdue:  # the nurse is behind: the last due set is not taken yet
                    every = plan.patient.therapy.schedule.get("every_minutes") or 60
                    drop = now - (every + 12 if slot.anchor == "start" else 10)
                self._emit_live(slot, plan, sim, checkin, drop)
        for slot, plan in live_plans:
            if slot in LIVE_EARLIER:
                sim = self.gen.simulate(plan)
                end = checkins.get(slot.chair, now - 60) - self.ri(10, 20)
                self._emit_live(slot, plan, sim, min(end, now - 5) - sim.length, None)
        for slot, plan in live_plans:
            if slot in LIVE_LATER:
                start = max(frees.get(slot.chair, now), now) + self.ri(15, 40)
                plan.kind = "cancelled" if slot.state == "cancelled" else "scheduled"
                self.rows.emit(
                    plan,
                    Sim(),
                    self.premises.chair_id(slot.chair),
                    -(-start // 15) * 15,
                    None,
                    self._live_nurse(slot),
                    cut=now,
                    closed=now - self.ri(60, 150) if slot.state == "cancelled" else None,
                )

    def _emit_live(self, slot: LiveSlot, plan: Plan, sim: Sim, checkin: int, drop_after: int | None) -> None:
        self.rows.emit(
            plan,
            sim,
            self.premises.chair_id(slot.chair),
            checkin - checkin % 15,
            checkin,
            self._live_nurse(slot),
            cut=self.now_min,
            drop_vitals_after=drop_after,
        )

    def _live_nurse(self, slot: LiveSlot) -> int:
        return self.premises.nurse_ids[(slot.chair + self.premises.today.toordinal()) % len(self.premises.nurse_ids)]

    def _cut_point(self, slot: LiveSlot, sim: Sim) -> int:
        """Minutes after check-in that `now` corresponds to, for the slot's state."""
        if slot.anchor == "checkin":
            return slot.minutes
        if slot.anchor == "ready":
            first_premed = sim.premeds[0][0] if sim.premeds else (sim.start or 30) - 1
            return min((sim.ready or 0) + slot.minutes, first_premed + 8 if sim.premeds else (sim.start or 30) - 1)
        assert sim.start is not None and sim.stop is not None and sim.obs_end is not None
        if slot.anchor == "pause":
            pause = next(at for at, kind, _, _ in sim.rates if kind == "pause")
            return pause + slot.minutes
        if slot.anchor == "stop":
            return sim.stop + slot.minutes
        if slot.anchor == "obs_end":
            return sim.obs_end + slot.minutes
        return sim.start + min(slot.minutes, max(3, sim.stop - sim.start - 10))
