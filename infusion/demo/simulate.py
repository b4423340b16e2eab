"""Every random decision about one session, from check-in to discharge.

`Generator.simulate` plays a session through as the nurses would document it:
baseline vitals, program check, premedication, the pump's titration ladder from
the catalog's rate plan, reactions drawn from the therapy's profile (and how the
pump answers them), observation and the vitals schedule. Everything comes from
the load's one `random.Random(seed)`, in a fixed order, so a seed repeats.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from random import Random
from typing import Any

from infusion.demo.events import (
    BASELINE,
    FEVER,
    HYPERTENSION,
    INF,
    RATE_NOTES,
    REACTION,
    ROUTINE,
    ForcedReaction,
    ReactionSim,
    Sim,
    open_last,
    pump,
)
from infusion.demo.people import PROVIDERS
from infusion.demo.reactions import MEDS_BY_GRADE, ReactionProfile
from infusion.demo.therapies import LEMTRADA_OTHER, LEMTRADA_STEROID, PREMEDS, Plan, TherapyInfo
from infusion.demo.vitals import VitalsDrawer
from infusion.services.entries import MAX_RATE_ML_H
from infusion.settings import ClinicSettings

DEFERRALS = (  # (reason, weight, what the baseline vitals show)
    ("Fever at check-in; infusion deferred until afebrile", 3, "fever"),
    ("Active infection (urinary tract infection on antibiotics)", 3, None),
    ("Upper respiratory infection with cough; deferred per neurologist", 2, None),
    ("Blood pressure above hold parameter at check-in", 1, "hypertension"),
    ("Pre-infusion labs not resulted; rescheduled", 1, None),
)
PROGRAM_DEFERRAL = {
    "TOUCH": "TOUCH authorization could not be verified; not infused",
    "Lemtrada REMS": "Lemtrada REMS monthly labs missing; course day postponed",
}
EARLY_DISCHARGE = "Patient declined the rest of the observation period; risks explained, neurologist informed"

IV_SITE_WEIGHTS = {
    "Left antecubital": 22,
    "Right antecubital": 20,
    "Left forearm": 18,
    "Right forearm": 16,
    "Left hand": 8,
    "Right hand": 8,
    "Port": 4,
    "PICC": 2,
    "Other": 2,
}


class Generator:
    """All random choices of one load, from one `random.Random(seed)` so a seed repeats."""

    def __init__(self, rng: Random, settings: ClinicSettings, reaction_scale: float = 1.0) -> None:
        self.rng = rng
        #: the site's reaction factor (infusion.demo.people.SITES): a demo artefact, 1 for one clinic
        self.reaction_scale = reaction_scale
        self.ri = fast_randint(rng)
        self.thresholds = settings.thresholds
        self.tolerance = settings.window_tolerance_minutes
        self.vitals = VitalsDrawer(rng, self.ri)  # draws its noise table here, as it always did
        self._sites = _table(IV_SITE_WEIGHTS)
        self._gauges = _table({22: 45, 20: 35, 24: 10, 18: 10})
        self._attempts = _table({1: 85, 2: 12, 3: 3})

    # -- session timeline ----------------------------------------------------

    def simulate(self, plan: Plan, forced: ForcedReaction | None = None) -> Sim:
        """The whole session from check-in to discharge, as the nurses would have documented it."""
        therapy = plan.patient.therapy
        sim = Sim()
        if plan.kind == "cancelled":
            return sim
        sim.vitals.append((0, BASELINE, None))
        if therapy.program:
            sim.program_at = self.ri(2, 8)
        ready = self.ri(8, 22)
        if plan.kind == "deferred":
            return self._deferred(sim, plan, ready)
        sim.ready = ready
        at = ready + self.ri(0, 4)
        for premed in self.premeds(plan):
            sim.premeds.append((at, premed))
            at += self.ri(0, 2)
        if therapy.premedication_required and not sim.premeds:
            sim.premed_override = "Premedication taken at home before arrival (patient confirmed drug and time)"
        start = (at + self.ri(28, 40)) if sim.premeds else ready + self.ri(3, 15)
        window, observation, rule = therapy.rules(plan.number)
        ladder, volume = self.ladder(therapy, rule, plan, window)
        events, stop = pump(ladder, volume, None)
        reactions = self.reactions(plan, stop, observation, forced)
        during = next((r for r in reactions if r[0] < stop and r[2] != "observe"), None)
        if during is not None:
            events, stop = pump(ladder, volume, (float(during[0]), during[2], float(self.ri(30, 60))))
        sim.start = start
        last = start
        for minute, kind, rate in events:
            at = start if kind == "start" else max(last + 1, start + round(minute))
            sim.rates.append((at, kind, rate, RATE_NOTES.get(kind)))
            last = at
        sim.stop = max(last + 1, start + round(stop) + self.ri(0, 4))
        sim.rates.append((sim.stop, "stop", 0.0, None))
        sim.observation, sim.window_max = observation, window.max_minutes
        self._reaction_rows(sim, reactions, start, therapy.profile)
        self._observe_and_discharge(sim, plan, observation)
        self._vitals_times(sim, therapy.schedule)
        return sim

    def _deferred(self, sim: Sim, plan: Plan, ready: int) -> Sim:
        """Checked in, assessed, not infused: the reason (and, for fever or high BP, the baseline shows it)."""
        program = plan.patient.therapy.program
        look = None
        if program and self.rng.random() < 0.25:
            sim.deferral_reason = PROGRAM_DEFERRAL[program]
        else:
            sim.deferral_reason, _, look = self.rng.choices(DEFERRALS, weights=[d[1] for d in DEFERRALS])[0]
        if look is not None:
            sim.vitals[0] = (0, FEVER if look == "fever" else HYPERTENSION, None)
        sim.closed = sim.length = ready + self.ri(0, 15)
        return sim

    def premeds(self, plan: Plan) -> list[tuple[str, str, str]]:
        therapy, rng = plan.patient.therapy, self.rng
        if therapy.code == "alemtuzumab":
            return ([LEMTRADA_STEROID] if plan.course_day <= 3 else []) + list(LEMTRADA_OTHER)
        given = PREMEDS.get(therapy.code, ())
        if not given:
            return []
        if not therapy.premedication_required and rng.random() < 0.4:
            return []  # "often", not required (IVIG)
        if therapy.premedication_required and rng.random() < 0.01:
            return []  # documented override instead
        if given[-1][0] == "Acetaminophen" and rng.random() < 0.3:
            return list(given[:-1])  # antipyretic optional
        return list(given)

    def ladder(
        self, therapy: TherapyInfo, rule: dict[str, Any] | None, plan: Plan, window: Any
    ) -> tuple[list[tuple[float, float]], float]:
        """Titration steps (rate mL/h, minutes) and bag volume, from the catalog's rate plan (§1b)."""
        rng = self.rng
        late = self.ri  # nurses step the pump up a little after the minute
        if rule and rule.get("steps"):
            steps = [(float(s["rate_ml_h"]), s["minutes"] + late(0, 2)) for s in rule["steps"]]
            return open_last(steps), sum(r * m / 60 for r, m in steps)
        if rule and rule.get("fixed"):
            minutes = rule["minutes"]
            return [(round(rule["bag_ml"] * 60 / minutes, 1), INF)], float(rule["bag_ml"])
        if rule and "start_ml_h" in rule:
            rates = range(rule["start_ml_h"], rule["max_ml_h"] + 1, rule["increment_ml_h"])
            return open_last([(float(r), rule["every_minutes"] + late(0, 4)) for r in rates]), float(rule["bag_ml"])
        if rule and rule.get("unit") == "mg/h":  # rituximab: 1,000 mg in 500 mL NS (2 mg/mL) assumed
            dose = plan.dose or 1000.0
            rates = range(int(rule["start"]), int(rule["max"]) + 1, int(rule["increment"]))
            return open_last([(r / 2.0, rule["every_minutes"] + late(0, 4)) for r in rates]), dose / 2.0
        if rule and rule.get("unit") == "mL/kg/h":  # IVIG 10%: 10 mL per g; tolerated top rate varies
            kg = plan.patient.weight_kg
            top = min(float(rule["max"]), rng.choice((3.0, 4.0, 4.0, 5.0)))
            per_kg = [r for r in (0.5, 1.0, 2.0, 3.0, 4.0, 5.0) if r <= top]
            steps = [(min(round(r * kg), MAX_RATE_ML_H), rule["every_minutes"] + late(0, 4)) for r in per_kg]
            return open_last(steps), (plan.dose or 1.0) * kg * 10
        low = window.min_minutes or 60
        high = window.max_minutes or low + 45
        minutes = self.ri(low, high) if high > low else low
        volume = {
            "ocrelizumab_sc": 23.0,
            "edaravone": 100.0,
            "methylprednisolone": 250.0,
            "cyclophosphamide": 500.0,
        }.get(therapy.code)
        if volume is None:  # plasma exchange: ~1 plasma volume (40 mL/kg) of replacement fluid
            volume = min(40 * plan.patient.weight_kg, MAX_RATE_ML_H * minutes / 60)
        return [(round(volume * 60 / minutes, 1), INF)], volume

    # -- reactions -------------------------------------------------------------

    def reactions(
        self, plan: Plan, natural: float, observation: int | None, forced: ForcedReaction | None
    ) -> list[tuple[int, int, str]]:
        """(onset minutes after IV start, grade, pump action) for each reaction of this session."""
        rng, profile = self.rng, plan.patient.therapy.profile
        if forced is not None:
            return [(forced.after_start, forced.grade, forced.kind)]
        key = plan.course_day if plan.patient.therapy.code == "alemtuzumab" else plan.number
        if plan.patient.therapy.code == "alemtuzumab" and plan.number > 5:
            key += 5  # second course: a little lower
        rates = profile.by_infusion
        chance = rates[min(key, len(rates)) - 1]
        if self.reaction_scale != 1.0:
            chance = min(1.0, chance * self.reaction_scale)
        if profile.patients is not None:  # only reaction-prone patients react, more often (§11)
            if not plan.patient.reactor:
                return []
            chance = min(1.0, chance / profile.patients)
        found = []
        for extra in range(2):
            if rng.random() >= (chance if extra == 0 else chance * 0.15):
                break
            grade = self._grade(profile.severe) if extra == 0 else rng.choice((1, 1, 2))
            if extra:  # a second, milder reaction: treated without touching the pump
                found.append((5 + round(natural * rng.random()), grade, "observe"))
                continue
            if rng.random() < profile.in_observation and observation != 0:
                onset = round(natural) + self.ri(5, max(6, observation or 30))
                found.append((onset, grade, "observe"))
                continue
            onset = 5 + round((natural * 0.75) * rng.random() ** 1.6)
            found.append((onset, grade, self._pump_action(grade)))
        return sorted(found)

    def _grade(self, severe: float) -> int:
        u = self.rng.random()
        if u < severe * 0.1:
            return 4
        if u < severe:
            return 3
        return 2 if u < severe + 0.42 else 1

    def _pump_action(self, grade: int) -> str:
        if grade >= 3:
            return "stop"
        if grade == 2:
            return "pause" if self.rng.random() < 0.8 else "slow"
        return "slow" if self.rng.random() < 0.45 else "observe"

    def _reaction_rows(
        self, sim: Sim, reactions: list[tuple[int, int, str]], start: int, profile: ReactionProfile
    ) -> None:
        """Reaction entries, consistent with the pump: a paused reaction settles before the resume."""
        rng = self.rng
        assert sim.stop is not None
        resume = next((at for at, kind, _, _ in sim.rates if kind == "resume"), None)
        for onset_rel, grade, action in reactions:
            onset = start + onset_rel
            if onset >= sim.stop and action != "observe":
                onset = sim.stop + self.ri(5, 20)
                action = "observe"
            symptoms, other = self._symptoms(profile, grade)
            actions = {"stop": ["stopped"], "pause": ["paused"], "slow": ["rate_slowed"], "observe": ["observed"]}[
                action
            ]
            medication = None
            if grade >= 2 or rng.random() < 0.35:
                medication = rng.choice(MEDS_BY_GRADE[min(grade, 3)])
                actions = [a for a in actions if a != "observed"] + ["medication_given"]
            heal = {1: (15, 40), 2: (30, 90), 3: (60, 180), 4: (90, 240)}[grade]
            notified = grade >= 3 or rng.random() < (0.7 if grade == 2 else 0.2)
            note = None
            if grade == 4:
                note = "Rapid response called; transferred to the emergency department after stabilization."
            elif grade == 3:
                note = "Infusion stopped permanently for today; neurologist to review before the next dose."
            resolved = onset + self.ri(*heal)
            if action == "pause" and resume is not None and resume > onset + 3:
                resolved = onset + self.ri(min(15, resume - onset - 2), resume - onset - 2)
            sim.reactions.append(
                ReactionSim(
                    onset=onset,
                    grade=grade,
                    symptoms=symptoms,
                    other_text=other,
                    actions=actions,
                    medication=medication,
                    resolved=resolved,
                    provider=rng.choice(PROVIDERS) if notified else None,
                    note=note,
                )
            )
            sim.vitals.append((onset + self.ri(1, 3), REACTION, sim.reactions[-1]))

    def _symptoms(self, profile: ReactionProfile, grade: int) -> tuple[list[str], str | None]:
        rng = self.rng
        pool = list(profile.symptoms)
        count = rng.choices((1, 2, 3), weights=(45, 35, 20))[0]
        chosen: list[str] = []
        while pool and len(chosen) < count:
            pick = rng.choices(pool, weights=[w for _, w in pool])[0]
            pool.remove(pick)
            chosen.append(pick[0])
        if grade >= 3 and profile.anaphylaxis and rng.random() < 0.5:
            chosen = ["anaphylaxis", "hypotension", "dyspnea"] + [
                s for s in chosen if s not in ("hypotension", "dyspnea")
            ][:1]
        others = [s.split(":", 1)[1] for s in chosen if s.startswith("other:")]
        keys = [s for s in chosen if not s.startswith("other:")] + (["other"] if others else [])
        return keys, ("; ".join(others) if others else None)

    # -- observation, discharge, vitals schedule --------------------------------

    def _observe_and_discharge(self, sim: Sim, plan: Plan, observation: int | None) -> None:
        rng = self.rng
        assert sim.stop is not None
        obs = observation if observation is not None else self.ri(10, 25)  # "not defined": clinic practice
        sim.obs_end = sim.stop + obs
        leave = sim.obs_end + self.ri(1, 8)
        for r in sim.reactions:
            leave = max(leave, r.resolved + (15 if r.grade == 1 else 30 if r.grade == 2 else 60))
        if observation and not sim.reactions and rng.random() < 0.01:
            leave = sim.stop + self.ri(max(1, observation // 3), max(2, observation - 5))
            sim.early_reason = EARLY_DISCHARGE
        sim.discharge = leave

    def _vitals_times(self, sim: Sim, schedule: dict[str, Any]) -> None:
        """Check-in baseline, N min after start, at rate changes, every M min, end of infusion and observation."""
        rng = self.rng
        start, stop = sim.start, sim.stop
        obs_end = sim.obs_end
        assert start is not None and stop is not None and sim.discharge is not None and obs_end is not None
        due = {start + int(m) for m in schedule.get("after_start_minutes") or []}
        if schedule.get("at_rate_change", True):
            due |= {at for at, kind, _, _ in sim.rates if kind in ("change", "resume")}
        due = {d for d in due if d < stop - 3}
        every = schedule.get("every_minutes")
        times: list[int] = []
        anchor = start
        for mark in sorted(due) + [stop]:
            while every and anchor + every < mark - 5:
                anchor += every
                times.append(anchor)
            if mark < stop:
                times.append(mark)
                anchor = mark
        out = sim.vitals
        for t in times:
            delay = self.ri(0, 5) if rng.random() < 0.95 else self.ri(6, 15)
            out.append((min(t + delay, stop - 1), ROUTINE, None))
        if schedule.get("at_end_of_infusion", True):
            out.append((stop + self.ri(0, 3), ROUTINE, None))
        if sim.observation and schedule.get("at_end_of_observation", True) and not sim.early_reason:
            out.append((obs_end + self.ri(0, 4), ROUTINE, None))
        for r in sim.reactions:
            if r.resolved < sim.discharge:
                out.append((r.resolved + self.ri(0, 3), ROUTINE, None))
        out.sort(key=lambda v: v[0])
        kept = [out[0]]
        for entry in out[1:]:  # two due times a minute apart are one set at the chair
            if entry[1] != ROUTINE or entry[0] - kept[-1][0] >= 3:
                kept.append(entry)
        sim.vitals = kept
        last = kept[-1][0]
        sim.discharge = max(sim.discharge, last + self.ri(1, 5))
        sim.length = sim.discharge

    # -- small pickers -----------------------------------------------------------

    def iv_access(self, therapy: TherapyInfo) -> tuple[str | None, int | None, int | None]:
        if therapy.route != "IV":
            return None, None, None  # SC injection: no IV line
        pick = self.pick
        site = pick(self._sites)
        if therapy.code == "plasma_exchange":  # large bore for apheresis
            return site, pick((16, 16, 18)), 1 if site in ("Port", "PICC") else pick((1, 1, 1, 2))
        return site, pick(self._gauges), 1 if site in ("Port", "PICC") else pick(self._attempts)

    def pick(self, table: Sequence[Any]) -> Any:
        """A uniform pick from a (weight-expanded) table; cheaper than `random.choices`."""
        return table[int(self.rng.random() * len(table))]


def _table(weights: dict[Any, int]) -> list[Any]:
    """Values repeated by their weight, for `Generator.pick`."""
    return [value for value, weight in weights.items() for _ in range(weight)]


def fast_randint(rng: Random) -> Callable[[int, int], int]:
    """`rng.randint` without its argument checks: it was a tenth of the load's time."""
    draw = rng.random

    def randint(low: int, high: int) -> int:
        return low + int(draw() * (high - low + 1))

    return randint
