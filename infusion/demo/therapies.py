"""Per-therapy dosing calendars and what one planned session is.

`regimen` lays out each therapy's dose days (loading doses, courses of
consecutive days, maintenance intervals from the catalog), `dose_for` the dose
of infusion N; `TherapyInfo`, `PatientInfo` and `Plan` carry a catalog row, a
generated patient and one session to generate between planning and writing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from random import Random
from typing import Any

from infusion.clinical.catalog import duration_window, observation_minutes, rate_plan_for
from infusion.demo.reactions import ReactionProfile

#: Therapies a patient keeps taking (new starters or years into treatment) vs. finite courses.
CONTINUING = {"ocrelizumab_iv", "ocrelizumab_sc", "natalizumab", "ublituximab", "rituximab", "ivig"}
#: The therapy given in courses whose position (course, day) the demo stores on each session.
LEMTRADA = "alemtuzumab"
#: Courses of consecutive days start on a Monday so they fit a Monday–Friday clinic.
MONDAY_START = {"alemtuzumab", "methylprednisolone", "plasma_exchange", "edaravone"}
LOT_PREFIX = {
    "ocrelizumab_iv": "OC",
    "ocrelizumab_sc": "OZ",
    "natalizumab": "NT",
    "alemtuzumab": "LM",
    "ublituximab": "UB",
    "rituximab": "RX",
    "cyclophosphamide": "CY",
    "ivig": "GG",
    "methylprednisolone": "MP",
    "plasma_exchange": "AL",
    "edaravone": "ED",
}

#: Premedication as given (drug, dose, route). docs/clinical-basis.md §1 "Required premedication".
PREMEDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "ocrelizumab_iv": (
        ("Methylprednisolone", "100 mg", "IV"),
        ("Diphenhydramine", "50 mg", "PO"),
        ("Acetaminophen", "650 mg", "PO"),
    ),
    "ocrelizumab_sc": (("Dexamethasone", "20 mg", "PO"), ("Desloratadine", "5 mg", "PO")),
    "ublituximab": (("Methylprednisolone", "100 mg", "IV"), ("Diphenhydramine", "50 mg", "PO")),
    "rituximab": (
        ("Acetaminophen", "650 mg", "PO"),
        ("Diphenhydramine", "50 mg", "PO"),
        ("Methylprednisolone", "100 mg", "IV"),
    ),
    "cyclophosphamide": (("Ondansetron", "8 mg", "IV"), ("Sodium chloride 0.9% (hydration)", "1,000 mL", "IV")),
    "ivig": (("Acetaminophen", "650 mg", "PO"), ("Diphenhydramine", "25 mg", "PO")),
}
LEMTRADA_STEROID = ("Methylprednisolone", "1,000 mg", "IV")  # course days 1–3 only
LEMTRADA_OTHER = (("Cetirizine", "10 mg", "PO"), ("Acetaminophen", "1,000 mg", "PO"))


@dataclass
class TherapyInfo:
    """A catalog row plus per-infusion-number lookups, cached (they are asked for every session)."""

    id: int
    code: str
    dose_unit: str
    default_dose: float | None
    route: str
    program: str | None
    premedication_required: bool
    schedule: dict[str, Any]
    duration_windows: list[dict[str, Any]]
    observation_rules: list[dict[str, Any]]
    rate_plan: list[dict[str, Any]]
    dosing_interval_days: int | None
    profile: ReactionProfile
    _cache: dict[int, tuple[Any, Any, Any]] = field(default_factory=dict)

    def rules(self, number: int) -> tuple[Any, int | None, dict[str, Any] | None]:
        """(duration window, observation minutes, rate-plan rule) for infusion `number`."""
        found = self._cache.get(number)
        if found is None:
            found = self._cache[number] = (
                duration_window(self.duration_windows, number),
                observation_minutes(self.observation_rules, number),
                rate_plan_for(self.rate_plan, number),
            )
        return found


@dataclass
class PatientInfo:
    id: int
    diagnosis: str
    therapy: TherapyInfo
    weight_kg: float
    height_cm: float
    sbp: int  # usual vital signs, so one patient's sessions look alike
    dbp: int
    pulse: int
    rr: int
    temp_f: float
    spo2: int
    pain: int
    auth_ref: str | None
    female: bool
    #: reaction-prone (drawn once with the profile's per-patient share); True where the profile has none
    reactor: bool = True


@dataclass
class Plan:
    """One session to generate: who, what, which day, and how it ends."""

    patient: PatientInfo
    day: date
    number: int
    dose: float | None
    kind: str = "dose"  # dose | deferred | cancelled
    course_day: int = 0
    home: bool = False
    course: int = 0  # Lemtrada course number (stored with course_day on the session); 0 = no courses


def regimen(
    code: str, rng: Random, ri: Callable[[int, int], int], horizon: int, interval: int | None
) -> list[tuple[int, int]]:
    """Dose days counted from the start of treatment, with the course day where courses exist.

    Intervals come from the catalog (dosing_interval_days) or, where it has none,
    the protocols of docs/clinical-basis.md §1 (IVMP 3–5 days, cyclophosphamide every 4
    weeks × 6, TPE 5 exchanges over 10 days, edaravone 14 days then 10 of 14).
    """
    days: list[tuple[int, int]] = []
    if code in ("ocrelizumab_iv", "ublituximab", "rituximab"):
        days = [(0, 0), (14, 0)]
        step = interval or 182
        while days[-1][0] < horizon:
            days.append((days[-1][0] + step + ri(-5, 14), 0))
    elif code in ("ocrelizumab_sc", "natalizumab"):
        step = interval or 182
        jitter = (-2, 4) if step < 60 else (-5, 14)
        days = [(0, 0)]
        while days[-1][0] < horizon:
            days.append((days[-1][0] + step + ri(*jitter), 0))
    elif code == "ivig":
        days = [(0, 1), (1, 2)]  # 2 g/kg loading over two days
        while days[-1][0] < horizon:
            days.append((days[-1][0] + (interval or 21) + ri(-2, 3), 0))
    elif code == "alemtuzumab":
        second = _next_monday(365 + ri(0, 45))
        days = [(d, d + 1) for d in range(5)] + [(second + d, d + 1) for d in range(3)]
    elif code == "methylprednisolone":
        start = 0
        for course in range(rng.choice((1, 1, 2, 2, 3))):
            if course:
                start = _next_monday(start + ri(60, 240))
            days += [(start + d, d + 1) for d in range(rng.choice((3, 3, 5, 5, 4)))]
    elif code == "plasma_exchange":
        days = [(d, i + 1) for i, d in enumerate((0, 2, 4, 7, 9))]
    elif code == "cyclophosphamide":
        day = 0
        for _ in range(6):
            days.append((day, 0))
            day += 28 + ri(-2, 2)
    elif code == "edaravone":
        days = [(d, d + 1) for d in range(14)]
        for cycle in range(1, rng.choice((1, 2, 3, 3, 4, 6))):
            base = 28 * cycle
            days += [(base + d, i + 1) for i, d in enumerate((0, 1, 2, 3, 4, 7, 8, 9, 10, 11))]
    else:
        step = interval or 28
        days = [(0, 0)]
        while days[-1][0] < horizon:
            days.append((days[-1][0] + step, 0))
    return days


def _next_monday(day: int) -> int:
    return day + (-day) % 7


def dose_for(therapy: TherapyInfo, number: int, patient: PatientInfo) -> float | None:
    """Therapy default, with the label's first-dose exceptions and protocol doses where none is seeded."""
    code = therapy.code
    if code == "ocrelizumab_iv":
        return 300.0 if number <= 2 else 600.0
    if code == "ublituximab":
        return 150.0 if number == 1 else 450.0
    if code == "cyclophosphamide":  # 1 g/m² (Mosteller BSA), rounded to 10 mg
        bsa = math.sqrt(patient.height_cm * patient.weight_kg / 3600)
        return float(round(bsa * 1000, -1))
    if code == "plasma_exchange":
        return 1.0
    return therapy.default_dose
