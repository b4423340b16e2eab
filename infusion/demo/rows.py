"""One simulated session to rows: the session, its vitals, entries and reactions at absolute times.

The simulation works in minutes after check-in; here a session is placed (id,
check-in, the cut-off at now for live ones), each event gets its absolute
minute, what has not happened by the cut-off is left out, and the session's
summary columns (status, counts, worst grade, minutes) are computed from the
rows actually written. NEWS2 and alert flags come from
`infusion.clinical.vitals`, as the app computes them for a typed set.

About 450 lines, on purpose: the session row and its child rows are written
together because the session's summary columns come from the child rows as
written; `_write_vitals` is the load's hot loop, kept flat with locals bound once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from random import Random
from typing import Any

from infusion.clinical.units import f_to_c, lb_to_kg
from infusion.clinical.vitals import Vitals, alert_flags, score
from infusion.demo.events import BASELINE, FEVER, HYPERTENSION, ReactionSim, Sim
from infusion.demo.people import ALLERGIES, DIAGNOSES, FAMILY, GIVEN_F, GIVEN_M, PROVIDERS
from infusion.demo.premises import Premises
from infusion.demo.scoring import FastScore
from infusion.demo.simulate import Generator, fast_randint
from infusion.demo.therapies import LOT_PREFIX, PatientInfo, Plan
from infusion.demo.writer import (
    PATIENT_TABLE,
    PREMED_TABLE,
    PROGRAM_TABLE,
    RATE_TABLE,
    REACTION_TABLE,
    SESSION_TABLE,
    VITALS_TABLE,
    Encoder,
    Ids,
    Writer,
)

CANCELLATIONS = (
    "Patient called to reschedule",
    "Transportation unavailable",
    "Insurance authorization pending",
    "Drug not delivered by the specialty pharmacy",
    "Weather: clinic closed early",
    "Patient admitted to another hospital",
    "No-show; left a voicemail",
)


@dataclass
class Placed:
    """Where a simulated session landed: its id, absolute check-in, and the cut-off (now, for live ones)."""

    id: int
    checkin: int | None
    limit: int
    nurse: int
    start: int | None = None
    stop: int | None = None

    def at(self, rel: int | None) -> int | None:
        """Absolute minute of an event `rel` minutes after check-in, or None if it has not happened."""
        if rel is None or self.checkin is None:
            return None
        moment = self.checkin + rel
        return moment if moment <= self.limit else None


class SessionRows:
    """Writes patients and placed sessions through the `Writer`, counting today's sessions by status."""

    def __init__(
        self,
        rng: Random,
        ids: Ids,
        enc: Encoder,
        writer: Writer,
        gen: Generator,
        premises: Premises,
        now_min: int,
        days: int,
    ) -> None:
        self.rng, self.ri, self.ids, self.enc, self.writer, self.gen = rng, fast_randint(rng), ids, enc, writer, gen
        self.premises, self.now_min, self.days = premises, now_min, days
        self.today_counts: dict[str, int] = defaultdict(int)
        self._celsius: dict[float, float] = {}
        self._fast = FastScore(gen.thresholds)

    def write_patients(self, patients: list[PatientInfo], first_mrn: int) -> None:
        """Patient rows with names, birth dates and allergies; MRNs count up from `first_mrn`."""
        mrn = first_mrn
        rng, enc, table = self.rng, self.enc, PATIENT_TABLE
        allergies, weights = [a for a, _ in ALLERGIES], [w for _, w in ALLERGIES]
        for index, p in enumerate(patients):
            age_low, age_high = DIAGNOSES[p.diagnosis][2]
            oldest = index == 7 or rng.random() < 0.004  # a few over 89 (HIPAA groups them as 90+)
            age = self.ri(90, 96) if oldest else self.ri(age_low, age_high)
            born = self.premises.today - timedelta(days=int((age + rng.random()) * 365.25))
            given = rng.choice(GIVEN_F if p.female else GIVEN_M)
            created = self.now_min - (self.days + 31 + self.ri(0, 900)) * 1440  # before any booking
            self.writer.add(
                table,
                (
                    p.id,
                    f"MRN-{mrn:06d}",
                    rng.choice(FAMILY),
                    given,
                    enc.day(born),
                    p.diagnosis,
                    rng.choices(allergies, weights=weights)[0],
                    p.weight_kg,
                    enc.ts(created),
                ),
            )
            mrn += 1

    def emit(
        self,
        plan: Plan,
        sim: Sim,
        chair_id: int,
        scheduled: int,
        checkin: int | None,
        nurse: int,
        *,
        cut: int | None,
        drop_vitals_after: int | None = None,
        closed: int | None = None,
    ) -> None:
        """Write one session and its entries at absolute times (check-in + the simulation's minutes).

        For live sessions `cut` is now: what has not happened yet is left out and
        the status is where the timeline stands at now. The session's summary
        columns are computed from the rows actually written.
        """
        ri, enc = self.ri, self.enc
        therapy = plan.patient.therapy
        placed = Placed(self.ids.take(SESSION_TABLE), checkin, cut if cut is not None else 1 << 40, nurse)
        at = placed.at
        status = self._status(plan, sim, at)
        if cut is not None:
            self.today_counts[status] += 1
        ready, start, stop = at(sim.ready), at(sim.start), at(sim.stop)
        placed.start, placed.stop = start, stop
        discharge = at(sim.discharge) if status == "discharged" else None
        closed_at = at(sim.closed)
        if plan.kind == "cancelled":
            closed_at = closed if closed is not None else scheduled - ri(60, 2880)
        end = discharge or (closed_at if status == "deferred" else None)
        created = scheduled - ri(2, 30) * 1440 - ri(0, 480)
        if cut is not None:
            created = min(created, cut - 60)

        baseline_sbp, last_vitals = self._write_vitals(placed, plan, sim, drop_vitals_after)
        rate_now = self._write_entries(placed, plan, sim)
        count, worst = self._write_reactions(placed, sim)

        site, gauge, attempts = self.gen.iv_access(therapy) if start is not None else (None, None, None)
        infusion_minutes = float(stop - start) if start is not None and stop is not None else None
        long_flag = bool(
            infusion_minutes is not None
            and sim.window_max is not None
            and infusion_minutes > sim.window_max + self.gen.tolerance
        )
        ts = enc.ts
        self.writer.add(
            SESSION_TABLE,
            (
                placed.id,
                plan.patient.id,
                therapy.id,
                chair_id,
                plan.dose,
                therapy.dose_unit,
                plan.number,
                status,
                enc.flag(therapy.code == "methylprednisolone" and plan.course_day == 1 and self.rng.random() < 0.3),
                ts(scheduled),
                ts(checkin if status not in ("scheduled", "cancelled") else None),
                ts(ready),
                ts(start),
                ts(stop),
                ts(discharge),
                ts(closed_at if status in ("deferred", "cancelled") else None),
                sim.deferral_reason if status == "deferred" else None,
                self.rng.choice(CANCELLATIONS) if status == "cancelled" else None,
                sim.early_reason if discharge is not None else None,
                sim.premed_override if start is not None else None,
                enc.flag(long_flag),
                site,
                gauge,
                attempts,
                self._lot(therapy.code, plan.day) if start is not None else None,
                0.0 if stop is not None else rate_now,
                baseline_sbp,
                count,
                worst,
                infusion_minutes,
                float(end - checkin) if end is not None and checkin is not None else None,
                ts(last_vitals),
                ts(created),
                self.premises.charge_id,
                1,
                plan.course or None,  # Lemtrada: the course position the due list reads
                plan.course_day if plan.course else None,
            ),
        )

    def _write_vitals(
        self,
        placed: Placed,
        plan: Plan,
        sim: Sim,
        drop_after: int | None,
    ) -> tuple[int | None, int | None]:
        """Vital-sign rows with NEWS2 and flags from infusion.clinical.vitals; returns (baseline SBP, last taken)."""
        ri, rnd, enc, gen = self.ri, self.rng.random, self.enc, self.gen
        ts, yes, no, add = enc.ts, enc.true, enc.false, self.writer.add
        table, thresholds, unit = VITALS_TABLE, gen.thresholds, self.premises.temperature_unit
        celsius, fast = self._celsius, self._fast.score
        patient, therapy = plan.patient, plan.patient.therapy
        start, stop, limit = placed.start, placed.stop, placed.limit
        lemtrada_day1 = therapy.code == "alemtuzumab" and plan.course_day == 1
        baseline_sbp: int | None = None
        last: int | None = None
        checkin = placed.checkin
        if checkin is None:  # booked, not arrived: nothing was measured
            return baseline_sbp, last
        rr: int | None  # a quick set leaves some measures blank
        spo2: int | None
        temp_c: float | None
        next_id = self.ids.next[table]
        for rel, kind, reaction in sim.vitals:
            taken = checkin + rel
            if taken > limit or (drop_after is not None and taken > drop_after and kind != BASELINE):
                continue
            phase = (
                "pre"
                if start is None or taken < start
                else "infusion"
                if stop is None or taken < stop
                else "observation"
            )
            sbp, dbp, pulse, rr, temp_f, spo2 = gen.vitals.values(
                patient, kind, reaction, lemtrada_day1 and phase == "infusion"
            )
            temp_c = celsius.get(temp_f)
            if temp_c is None:
                temp_c = celsius[temp_f] = round(f_to_c(temp_f), 2)  # as validate_vitals stores a typed °F
            unable, position, on_oxygen, pain, weight = enc.empty_dict, "sitting", False, None, None
            first = kind in (BASELINE, FEVER, HYPERTENSION)
            if first:
                pain = patient.pain
                weight = round(lb_to_kg(round(patient.weight_kg * 2.2046226218 + ri(-20, 20) / 10, 1)), 2)
            elif reaction is not None:
                position, on_oxygen = "lying", "anaphylaxis" in reaction.symptoms
                pain = 5 if "headache" in reaction.symptoms else None
            else:
                u = rnd()
                if u < 0.04:  # a quick BP and pulse only
                    rr = temp_c = spo2 = None
                elif u < 0.045:
                    spo2 = None
                    unable = enc.json({"spo2": "Cold fingers; no reliable trace"})
            news2_total, complete, flagged = fast(sbp, dbp, pulse, rr, temp_c, spo2, on_oxygen, baseline_sbp)
            if flagged:  # the product's own rules for the stored flags and messages
                v = Vitals(
                    systolic=sbp,
                    diastolic=dbp,
                    pulse=pulse,
                    resp_rate=rr,
                    temperature_c=temp_c,
                    spo2=spo2,
                    pain=pain,
                    weight_kg=weight,
                    consciousness="A",
                    on_oxygen=on_oxygen,
                    position=position,
                    unable_to_obtain={},
                    provider_notified=False,
                    provider_name=None,
                    note=None,
                )
                news = score(v)
                flags = alert_flags(v, thresholds, baseline_systolic=baseline_sbp, temperature_unit=unit, news=news)
                news2_total, complete = news.total, news.complete
                provider, note = self._notified(flags, kind, reaction)
                flag_json, flag_count = enc.json([f.as_dict() for f in flags]), len(flags)
            else:
                provider = note = None
                flag_json, flag_count = enc.empty_list, 0
            entered = min(taken + (ri(0, 3) if rnd() < 0.97 else ri(20, 90)), limit)
            add(
                table,
                (
                    next_id,
                    placed.id,
                    phase,
                    ts(taken),
                    ts(entered),
                    placed.nurse,
                    sbp,
                    dbp,
                    pulse,
                    rr,
                    temp_c,
                    spo2,
                    pain,
                    weight,
                    "A",
                    yes if on_oxygen else no,
                    position,
                    unable,
                    no if provider is None else yes,
                    provider,
                    ts(min(taken + 3, limit)) if provider else None,
                    flag_json,
                    flag_count,
                    news2_total,
                    yes if complete else no,
                    note,
                    "active",
                ),
            )
            next_id += 1
            if first:
                baseline_sbp = sbp
            last = taken if last is None or taken > last else last
        self.ids.next[table] = next_id
        return baseline_sbp, last

    def _notified(self, flags: list[Any], kind: int, reaction: ReactionSim | None) -> tuple[str | None, str | None]:
        """Who was told about a flagged set (provider name, note), if anyone."""
        if reaction is not None and reaction.provider:
            return reaction.provider, None
        if self.rng.random() < 0.3:
            return self.rng.choice(PROVIDERS), "Rechecked after 5 minutes; provider aware."
        if kind == BASELINE:
            return None, "Patient reports white-coat hypertension; usual home readings normal."
        return None, None

    def _write_entries(self, placed: Placed, plan: Plan, sim: Sim) -> float | None:
        """Program check, premedication and rate rows; returns the last running rate."""
        ri, ts, add, at = self.ri, self.enc.ts, self.writer.add, placed.at
        therapy, limit, nurse = plan.patient.therapy, placed.limit, placed.nurse
        confirmed = at(sim.program_at)
        if therapy.program and confirmed is not None:
            add(
                PROGRAM_TABLE,
                (
                    self.ids.take(PROGRAM_TABLE),
                    placed.id,
                    therapy.program,
                    plan.patient.auth_ref,
                    ts(confirmed),
                    nurse,
                ),
            )
        for rel, (drug, dose, route) in sim.premeds:
            given = at(rel)
            if given is not None:
                add(
                    PREMED_TABLE,
                    (
                        self.ids.take(PREMED_TABLE),
                        placed.id,
                        drug,
                        dose,
                        route,
                        ts(given),
                        ts(min(given + ri(0, 4), limit)),
                        nurse,
                        "active",
                    ),
                )
        rate_now: float | None = None
        table = RATE_TABLE
        for rel, kind, rate, note in sim.rates:
            moment = at(rel)
            if moment is None:
                continue
            if kind != "pause":
                rate_now = rate
            add(
                table,
                (
                    self.ids.take(table),
                    placed.id,
                    ts(moment),
                    kind,
                    rate,
                    note,
                    ts(min(moment + ri(0, 2), limit)),
                    nurse,
                    "active",
                ),
            )
        return rate_now

    def _write_reactions(self, placed: Placed, sim: Sim) -> tuple[int, int | None]:
        """Reaction rows; returns (count, worst grade) for the session summary."""
        enc, table, at = self.enc, REACTION_TABLE, placed.at
        worst, count = None, 0
        for r in sim.reactions:
            onset = at(r.onset)
            if onset is None:
                continue
            self.writer.add(
                table,
                (
                    self.ids.take(table),
                    placed.id,
                    enc.ts(onset),
                    enc.json(r.symptoms),
                    r.other_text,
                    r.grade,
                    enc.json(r.actions),
                    r.medication,
                    enc.ts(at(r.resolved)),
                    enc.flag(r.provider is not None),
                    r.provider,
                    r.note,
                    enc.ts(min(onset + self.ri(5, 20), placed.limit)),
                    placed.nurse,
                    "active",
                ),
            )
            count += 1
            worst = r.grade if worst is None else max(worst, r.grade)
        return count, worst

    def _status(self, plan: Plan, sim: Sim, at: Callable[[int | None], int | None]) -> str:
        if plan.kind in ("cancelled", "scheduled"):
            return plan.kind
        if plan.kind == "deferred":
            return "deferred" if at(sim.closed) is not None else ("checked_in" if at(0) is not None else "scheduled")
        if at(sim.discharge) is not None:
            return "discharged"
        if at(sim.stop) is not None:
            return "observation"
        if at(sim.start) is not None:
            paused = False
            for rel, kind, _, _ in sim.rates:
                if at(rel) is None:
                    break
                paused = kind == "pause"
            return "paused" if paused else "infusing"
        if at(sim.ready) is not None:
            return "ready"
        return "checked_in" if at(0) is not None else "scheduled"

    def _lot(self, code: str, day: date) -> str:
        """A product lot shared by everyone infused with it in the same four weeks."""
        period = day.toordinal() // 28
        return f"{LOT_PREFIX.get(code, 'LT')}{(period * 7919) % 90000 + 10000}{'ABCD'[period % 4]}"
