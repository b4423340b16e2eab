"""Who comes in and when: patients and their sessions over the window, before any row exists.

Live-day patients first (each with a dose that falls on today), then one per
therapy not yet seen, then random patients from the diagnosis mix until the
session budget is met; the surplus is trimmed from the longest histories.
Weekend doses move to Friday or Monday, and a few visits a week before a dose
become deferrals or cancellations.
"""

from __future__ import annotations

import heapq
from datetime import date, timedelta
from random import Random

from infusion.demo.people import DIAGNOSES, MIN_PATIENTS
from infusion.demo.simulate import fast_randint
from infusion.demo.therapies import (
    CONTINUING,
    LEMTRADA,
    MONDAY_START,
    PatientInfo,
    Plan,
    TherapyInfo,
    dose_for,
    regimen,
)
from infusion.demo.today import LiveSlot
from infusion.demo.writer import PATIENT_TABLE, Ids


class Planner:
    """Plans patients and sessions with the load's random generator, between `window_start` and today."""

    def __init__(
        self,
        rng: Random,
        ids: Ids,
        therapies: dict[str, TherapyInfo],
        today: date,
        window_start: date,
        sessions: int,
        *,
        home_team: bool = True,
    ) -> None:
        self.rng, self.ri, self.ids = rng, fast_randint(rng), ids
        self.therapies, self.today, self.window_start, self.sessions = therapies, today, window_start, sessions
        #: False for a network site no home-infusion team visits from: IVIG and edaravone in the chair,
        #: edaravone's weekend days moved like every other dose
        self.home_team = home_team

    def plan(self, live: list[LiveSlot]) -> tuple[list[PatientInfo], list[Plan], list[tuple[LiveSlot, Plan]]]:
        """Patients and their sessions, `sessions` in all.

        Live-day patients come first, then one patient for each therapy not yet
        seen (so even a small demo shows every therapy), then random patients
        until there are enough sessions. The surplus is trimmed from the longest
        histories, oldest sessions first.
        """
        patients: list[PatientInfo] = []
        histories: list[list[Plan]] = []
        live_plans: list[tuple[LiveSlot, Plan]] = []
        for slot in live:
            patient = self._new_patient(self._pick_available(slot.prefer))
            history, today_plan = self._series(patient, live=True)
            assert today_plan is not None  # a live series always has today's session
            today_plan.kind = slot.state if slot.state in ("deferred", "cancelled") else "dose"
            patients.append(patient)
            histories.append(history)
            live_plans.append((slot, today_plan))
        budget = self.sessions - len(live_plans)
        seen = {p.therapy.code for p, h in zip(patients, histories) if h}
        uncovered = [c for c in self.therapies if c not in seen]
        total = sum(map(len, histories))
        while total < budget or len(patients) < MIN_PATIENTS or uncovered:
            patient = self._new_patient(uncovered.pop(0) if uncovered else None)
            patients.append(patient)
            histories.append(self._series(patient, live=False)[0])
            total += len(histories[-1])
        return patients, [p for h in _trim(histories, total - budget) for p in h], live_plans

    def _pick_available(self, prefer: tuple[str, ...]) -> str | None:
        options = [c for c in prefer if c in self.therapies]
        return self.rng.choice(options) if options else None

    def _new_patient(self, code: str | None) -> PatientInfo:
        rng = self.rng
        if code is None:
            diagnosis = self._weighted_diagnosis()
            code = self._therapy_for(diagnosis)
        else:  # e.g. IVIG: CIDP more often than systemic sclerosis, as in the clinic's mix
            offering = [(d, share * w) for d, (share, mix, _) in DIAGNOSES.items() for c, w in mix if c == code]
            diagnosis = rng.choices([d for d, _ in offering], weights=[w for _, w in offering])[0]
        female = rng.random() < (0.72 if diagnosis in ("Multiple sclerosis", "Systemic sclerosis") else 0.45)
        weight = max(45.0, min(160.0, rng.gauss(72 if female else 86, 15)))
        height = rng.gauss(163 if female else 177, 7)
        hypertensive = rng.random() < 0.12
        therapy = self.therapies[code]
        auth = None
        if therapy.program == "TOUCH":
            auth = f"TOUCH-{self.ri(10_000_000, 99_999_999)}"
        elif therapy.program:
            auth = f"LRP-{self.ri(100_000, 999_999)}"
        info = PatientInfo(
            id=self.ids.take(PATIENT_TABLE),
            diagnosis=diagnosis,
            therapy=therapy,
            weight_kg=round(weight, 1),
            height_cm=height,
            sbp=round(min(165, max(100, rng.gauss(122, 11))) + (26 if hypertensive else 0)),
            dbp=round(min(92, max(60, rng.gauss(76, 7))) + (12 if hypertensive else 0)),
            pulse=round(min(95, max(55, rng.gauss(74, 8)))),
            rr=rng.choice((14, 16, 16, 18, 18)),
            temp_f=round(min(98.8, max(97.0, rng.gauss(97.8, 0.3))), 1),
            spo2=rng.choice((96, 97, 98, 98, 99, 99, 100)),
            pain=rng.choice((0, 0, 0, 0, 0, 1, 2, 3, 4)),
            auth_ref=auth,
            female=female,
        )
        share = therapy.profile.patients
        if share is not None:  # reactions cluster in reaction-prone patients (docs/clinical-basis.md §11)
            info.reactor = rng.random() < share
        return info

    def _weighted_diagnosis(self) -> str:
        names = [d for d in DIAGNOSES if any(c in self.therapies for c, _ in DIAGNOSES[d][1])]
        return self.rng.choices(names, weights=[DIAGNOSES[d][0] for d in names])[0]

    def _therapy_for(self, diagnosis: str) -> str:
        mix = [(c, w) for c, w in DIAGNOSES[diagnosis][1] if c in self.therapies]
        return self.rng.choices([c for c, _ in mix], weights=[w for _, w in mix])[0]

    def _series(self, patient: PatientInfo, *, live: bool) -> tuple[list[Plan], Plan | None]:
        """This patient's sessions inside the window (oldest first) and, if live, today's session."""
        rng, therapy, today = self.rng, patient.therapy, self.today
        code = therapy.code
        horizon = (today - self.window_start).days + 6 * 365
        doses = regimen(code, rng, self.ri, horizon, therapy.dosing_interval_days)
        if live:
            start = self._live_start(code, doses)
        elif code in CONTINUING and rng.random() < 0.75:  # established: started up to 6 years ago
            start = self.window_start - timedelta(days=self.ri(30, 6 * 365))
        else:
            span = doses[-1][0] if code not in CONTINUING else 0
            start = self.window_start + timedelta(days=self.ri(-span, (today - self.window_start).days - 1))
        if code in MONDAY_START and not live:
            start -= timedelta(days=start.weekday())
        plans: list[Plan] = []
        last_day: date | None = None
        today_plan: Plan | None = None
        number = 0
        early = self.window_start - timedelta(days=3)
        courses = code == LEMTRADA  # stored course positions; whole courses only (see below)
        course, course_kept = 0, True
        for offset, course_day in doses:
            day = start + timedelta(days=offset)
            if courses and course_day == 1:
                course += 1
                # a course begun before the window is left out whole, so the record never shows a
                # course that starts on day 3 (the due list would read it as an interrupted course 1)
                course_kept = day >= self.window_start
            if day < early:  # before the window: only counts towards the infusion number
                number += 1
                continue
            day, home = self._clinic_day(day, code, course_day)
            if last_day is not None and day <= last_day:
                continue  # a weekend move landed on the previous dose
            last_day = day
            number += 1
            if day >= today:
                if live and day == today:
                    today_plan = Plan(
                        patient,
                        today,
                        number,
                        dose_for(therapy, number, patient),
                        course_day=course_day,
                        course=course,
                    )
                break
            if day < self.window_start or not course_kept:
                continue
            plan = Plan(
                patient,
                day,
                number,
                dose_for(therapy, number, patient),
                course_day=course_day,
                home=home,
                course=course,
            )
            self._maybe_failed_attempt(plans, plan)
            plans.append(plan)
        if courses and not live and plans:  # a course still running today: not begun yet in the demo
            plans = _whole_courses(plans)
        if live and today_plan is None:  # rounding pushed the live dose off today: give it the next number
            number = (plans[-1].number + 1) if plans else 1
            today_plan = Plan(patient, today, number, dose_for(therapy, number, patient))
        return plans, today_plan

    def _live_start(self, code: str, doses: list[tuple[int, int]]) -> date:
        """A treatment start that puts one of the doses exactly on today."""
        rng, today = self.rng, self.today
        limit = (today - self.window_start).days + 6 * 365
        candidates = [i for i, (day, _) in enumerate(doses) if day <= limit]
        if code in MONDAY_START and today.weekday() < 5:
            fitting = [i for i in candidates if doses[i][0] % 7 == today.weekday()]
            candidates = fitting or candidates
        index = rng.choice(candidates)
        return today - timedelta(days=doses[index][0])

    def _clinic_day(self, day: date, code: str, course_day: int) -> tuple[date, bool]:
        """Move weekend doses to Friday/Monday, except edaravone's daily first cycle (given at home
        where a home-infusion team visits)."""
        weekday = day.weekday()
        if weekday < 5 and not self.home_team:
            return day, False
        if weekday < 5:
            home = (code == "ivig" and self.rng.random() < 0.08) or (code == "edaravone" and self.rng.random() < 0.1)
            return day, home
        if code == "edaravone" and course_day and course_day <= 14 and self.home_team:
            return day, True
        return day + timedelta(days=-1 if weekday == 5 else 1), False

    def _maybe_failed_attempt(self, plans: list[Plan], plan: Plan) -> None:
        """~3% deferred and ~2% cancelled visits, a week before the dose that then went ahead.

        (Drawn a little more often than that, because some cannot be placed.)
        """
        u = self.rng.random()
        if u >= 0.07 or plan.course_day > 1:
            return
        day = plan.day - timedelta(days=7)
        if day.weekday() >= 5 or day < self.window_start or (plans and day <= plans[-1].day):
            return
        plans.append(
            Plan(
                plan.patient,
                day,
                plan.number,
                plan.dose,
                kind="deferred" if u < 0.042 else "cancelled",
                course_day=plan.course_day,
            )
        )


def _whole_courses(plans: list[Plan]) -> list[Plan]:
    """Lemtrada: drop a last course cut short by today (a past patient's course is booked whole:
    5 days in course 1, 3 in later ones, LEMTRADA USPI §2.2, docs/clinical-basis.md §1)."""
    last = max(p.course for p in plans)
    length = 5 if last == 1 else 3
    given = {p.course_day for p in plans if p.course == last and p.kind == "dose"}
    if len(given) >= length:
        return plans
    return [p for p in plans if p.course != last]


def _trim(histories: list[list[Plan]], excess: int) -> list[list[Plan]]:
    """Drop `excess` sessions, each time the oldest of the patient with the most left.

    Lemtrada histories are never trimmed: a trimmed course would look interrupted."""
    cut = [0] * len(histories)
    heap = [(-len(h), i) for i, h in enumerate(histories) if h and h[0].course == 0]
    heapq.heapify(heap)
    while excess > 0 and heap:
        size, i = heapq.heappop(heap)
        cut[i] += 1
        excess -= 1
        if size + 1 < 0:
            heapq.heappush(heap, (size + 1, i))
    return [h[c:] for h, c in zip(histories, cut)]
