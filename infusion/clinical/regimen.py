"""The regimen rules: when a therapy's next infusion is due, where it sits in its course, the dose it
expects, and whether a booking is too early. Pure functions over a therapy's rhythm and a patient's
infusions (given or booked), so the rules are testable without a database; `infusion.reads.due` reads
the history and the bookings and applies them.

Rules (docs/clinical-basis.md §1 unless marked as a product choice):
- Tysabri every 28 d; Zunovo every 6 months (182 d); rituximab the catalog's
  interval (182 d, [SECONDARY] in docs/clinical-basis.md); any other therapy with a catalog
  interval: last infusion + interval.
- Ocrevus IV: 300 mg day 1 and day 15, then 600 mg every 6 months, doses
  ≥ 5 months apart. Briumvi: 150 mg day 1, 450 mg day 15, then 450 mg every
  24 weeks, ≥ 5 months apart. docs/clinical-basis.md does not say what the 6 months /
  24 weeks are counted from after the initial pair: we count from day 1 of the
  initial dose (the labels' "after the first infusion"), later ones from the
  previous infusion. "5 months" is the catalog's `min_interval_days`, in days
  (Ocrevus 140 = the clinical basis's "20 weeks"; Briumvi 150, the catalog's reading).
  Any five calendar months are at least 150 days, so "exactly 5 months later"
  is always allowed under both. The minimum is measured from the last infusion
  given (the stricter reading).
- Lemtrada: course 1 is 5 consecutive days, course 2 three days 12 months
  later; further 3-day courses only "if needed", so no due date after course 2.
  A course interrupted after day N continues with day N+1, due the day after
  the last infusion given (the clinic may decide otherwise; then it books with
  a reason). A new course is due the catalog interval (365 d) after the last
  infusion of the previous course (docs/clinical-basis.md: "≥ 12 months apart").
- IVIG and cyclophosphamide: by the clinic's protocol, an interval set per
  patient (`PatientProtocol`); without one there is no due date. The catalog's
  21 d for IVIG is the clinical basis's CIDP example, not a protocol, so it is not used.
- IV methylprednisolone (relapse, on demand), plasma exchange (relapse; the
  5-exchange schedule is [UNCONFIRMED]) and edaravone (14-on/14-off cycles, then
  10 of 14 days: which days is the prescriber's plan): no due date.

Too early: where the catalog sets `min_interval_days` the booking is refused
without an override reason. docs/clinical-basis.md is silent for the other therapies, so
(product choice) a booking more than `WARN_TOLERANCE_DAYS` before the due date
only warns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

from infusion.clinical.intervals import after_interval, minimum_after

#: therapies dosed by the clinic's protocol, per patient (docs/clinical-basis.md §1: "protocols vary")
PROTOCOL_THERAPIES = ("ivig", "cyclophosphamide")
#: therapies without a due date, and why
NO_DUE_DATE = {
    "methylprednisolone": "Given on demand (relapse treatment): no due date.",
    "plasma_exchange": "Relapse treatment; the clinical basis's 5-exchange schedule is [UNCONFIRMED]: no due date.",
    "edaravone": "Cycle-based (14 days on, 14 off; then 10 of 14 days), days chosen by the prescriber: no due date.",
}
#: Ocrevus IV and Briumvi start with two infusions two weeks apart: (days to dose 2, doses by infusion number)
INITIAL_PAIR_DAYS = 14
INITIAL_DOSES: dict[str, tuple[float, float, float]] = {
    # (infusion 1, infusion 2, later infusions), docs/clinical-basis.md §1
    "ocrelizumab_iv": (300.0, 300.0, 600.0),
    "ublituximab": (150.0, 450.0, 450.0),
}
#: Lemtrada course lengths: course 1 five days, every later course three (docs/clinical-basis.md §1)
LEMTRADA = "alemtuzumab"
LEMTRADA_COURSE_DAYS = (5, 3)
#: courses after which no further course is due by default ("further courses … if needed")
LEMTRADA_SCHEDULED_COURSES = 2
#: Product choice (docs/clinical-basis.md is silent): a booking this many days before the due date only warns,
#: and never more than half the interval (a weekly protocol warns at < 4 days).
WARN_TOLERANCE_DAYS = 7


@dataclass(frozen=True)
class Dose:
    """One infusion in a patient's plan: given (IV started) or booked, with its stored infusion number."""

    day: date
    planned: bool = False
    course_number: int | None = None
    course_day: int | None = None
    number: int | None = None


def infusion_number_after(doses: list[Dose]) -> int:
    """The one rule for "infusion N" (check-in, IV start, bookings, the Due list and the demo all use it):
    the previous infusion's stored number + 1, so a patient who started before the records here keeps
    counting (Tysabri #34 stays #34 at check-in); with no stored number, the count of infusions + 1."""
    if not doses:
        return 1
    last = doses[-1]
    return last.number + 1 if last.number is not None else len(doses) + 1


@dataclass(frozen=True)
class Rhythm:
    """What the planner needs from a catalog row (kept apart so the rules are testable without a database)."""

    code: str
    name: str
    interval_days: int | None
    min_interval_days: int | None
    default_dose: float | None
    dose_unit: str = "mg"

    @classmethod
    def of(cls, therapy: CatalogRow) -> Rhythm:
        return cls(
            therapy.code,
            therapy.brand or therapy.name,
            therapy.dosing_interval_days,
            therapy.min_interval_days,
            therapy.default_dose,
            therapy.dose_unit,
        )


class CatalogRow(Protocol):
    """The catalog fields a rhythm is read from (a `db.models.Therapy` row; the rules never import the database)."""

    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def brand(self) -> str | None: ...
    @property
    def dosing_interval_days(self) -> int | None: ...
    @property
    def min_interval_days(self) -> int | None: ...
    @property
    def default_dose(self) -> float | None: ...
    @property
    def dose_unit(self) -> str: ...


@dataclass(frozen=True)
class NextInfusion:
    """The next infusion of a plan: when it is due, from when it is allowed, and what it is."""

    infusion_number: int
    label: str
    expected_dose: float | None
    dose_unit: str
    due: date | None
    last: Dose | None
    #: before this date the booking is refused without an override (min_interval_days)
    allowed_from: date | None = None
    #: before this date the booking only warns (product choice where docs/clinical-basis.md is silent)
    warn_before: date | None = None
    course_number: int | None = None
    course_day: int | None = None
    note: str = ""


@dataclass(frozen=True)
class TooEarly:
    """A booking before the date its therapy allows (enforced) or usually expects (a warning)."""

    when: date
    last: date
    allowed_from: date
    enforced: bool
    message: str


def _warn_before(due: date, interval: int) -> date:
    return due - timedelta(days=min(WARN_TOLERANCE_DAYS, interval // 2))


def _lemtrada_course_days(course: int) -> int:
    return LEMTRADA_COURSE_DAYS[min(course, len(LEMTRADA_COURSE_DAYS)) - 1]


def lemtrada_positions(doses: list[Dose]) -> list[tuple[int, int]]:
    """(course, day) of each infusion: a stored position wins; otherwise the course fills up to its
    length before the next begins, so a course resumed after an interruption stays the same course."""
    positions: list[tuple[int, int]] = []
    course, day = 1, 0
    for dose in doses:
        if dose.course_number is not None:
            course, day = dose.course_number, dose.course_day or day + 1
        elif day >= _lemtrada_course_days(course):
            course, day = course + 1, 1
        else:
            day += 1
        positions.append((course, day))
    return positions


def plan_next(rhythm: Rhythm, doses: list[Dose], protocol_days: int | None = None) -> NextInfusion:
    """The next infusion after `doses` (in date order) under the therapy's rhythm."""
    if rhythm.code in INITIAL_DOSES:
        return _initial_pair_then_interval(rhythm, doses)
    if rhythm.code == LEMTRADA:
        return _lemtrada_next(rhythm, doses)
    return _by_interval(rhythm, doses, protocol_days)


def _minimum_from(rhythm: Rhythm, start: date) -> date | None:
    return minimum_after(rhythm.code, start, rhythm.min_interval_days)


def _interval_from(rhythm: Rhythm, start: date, days: int | None) -> date | None:
    return after_interval(rhythm.code, start, days)


def _initial_pair_then_interval(rhythm: Rhythm, doses: list[Dose]) -> NextInfusion:
    """Ocrevus IV and Briumvi: two initial doses two weeks apart, then the catalog interval."""
    n = len(doses)
    last = doses[-1] if doses else None
    number = infusion_number_after(doses)
    name, unit = rhythm.name, rhythm.dose_unit
    interval = rhythm.interval_days
    first_dose, second_dose, later_dose = INITIAL_DOSES[rhythm.code]
    dose = (first_dose, second_dose)[number - 1] if number <= 2 else later_dose
    if number == 1:
        return NextInfusion(
            1,
            f"{name} initial dose 1 of 2",
            dose,
            unit,
            None,
            None,
            note="Not started: the first infusion is booked when prescribed.",
        )
    assert last is not None
    if number == 2:
        second = last.day + timedelta(days=INITIAL_PAIR_DAYS)
        # docs/clinical-basis.md gives no minimum between the two initial infusions: warn only.
        return NextInfusion(
            2,
            f"{name} initial dose 2 of 2",
            dose,
            unit,
            second,
            last,
            warn_before=_warn_before(second, INITIAL_PAIR_DAYS),
        )
    # the first maintenance dose counts from infusion 1 (labels: "6 months / 24 weeks after the first
    # infusion"), later ones from the previous infusion
    anchor = doses[-2].day if number == 3 and n >= 2 else last.day
    due = _interval_from(rhythm, anchor, interval)
    allowed = _minimum_from(rhythm, last.day)
    return NextInfusion(
        number,
        f"{name} infusion {number}",
        dose,
        unit,
        due,
        last,
        allowed_from=allowed,
        warn_before=None if allowed or due is None else _warn_before(due, interval or 0),
    )


def _lemtrada_next(rhythm: Rhythm, doses: list[Dose]) -> NextInfusion:
    """Lemtrada: consecutive days within a course, the next course the catalog interval after the last."""
    n = len(doses)
    last = doses[-1] if doses else None
    number = infusion_number_after(doses)
    name, unit = rhythm.name, rhythm.dose_unit
    interval = rhythm.interval_days
    if n == 0:
        return NextInfusion(
            1,
            f"{name} course 1, day 1 of {_lemtrada_course_days(1)}",
            rhythm.default_dose,
            unit,
            None,
            None,
            course_number=1,
            course_day=1,
            note="Not started: course 1 is booked when prescribed.",
        )
    assert last is not None
    course, day = lemtrada_positions(doses)[-1]
    length = _lemtrada_course_days(course)
    if day < length:
        # the course continues on consecutive days; a second infusion the same day warns
        due = last.day + timedelta(days=1)
        return NextInfusion(
            number,
            f"{name} course {course}, day {day + 1} of {length}",
            rhythm.default_dose,
            unit,
            due,
            last,
            warn_before=due,
            course_number=course,
            course_day=day + 1,
        )
    nxt = course + 1
    label = f"{name} course {nxt}, day 1 of {_lemtrada_course_days(nxt)}"
    start = _interval_from(rhythm, last.day, interval)
    allowed = _minimum_from(rhythm, last.day)
    warn = None if allowed or start is None else _warn_before(start, interval or 0)
    if course >= LEMTRADA_SCHEDULED_COURSES:
        return NextInfusion(
            number,
            label,
            rhythm.default_dose,
            unit,
            None,
            last,
            allowed_from=allowed,
            warn_before=warn,
            course_number=nxt,
            course_day=1,
            note="Courses complete; a further course only if needed, ≥ 12 months after the last.",
        )
    return NextInfusion(
        number,
        label,
        rhythm.default_dose,
        unit,
        start,
        last,
        allowed_from=allowed,
        warn_before=warn,
        course_number=nxt,
        course_day=1,
    )


def _by_interval(rhythm: Rhythm, doses: list[Dose], protocol_days: int | None) -> NextInfusion:
    """Every other therapy: the catalog's interval, the patient's protocol interval, or no due date."""
    last = doses[-1] if doses else None
    number = infusion_number_after(doses)
    name, unit = rhythm.name, rhythm.dose_unit
    interval, minimum = rhythm.interval_days, rhythm.min_interval_days
    label = f"{name} infusion {number}"
    if rhythm.code in NO_DUE_DATE:
        return NextInfusion(number, label, rhythm.default_dose, unit, None, last, note=NO_DUE_DATE[rhythm.code])
    if rhythm.code in PROTOCOL_THERAPIES:
        interval, minimum = protocol_days, None
        if not interval:
            return NextInfusion(
                number, label, rhythm.default_dose, unit, None, last, note="No due date: set the protocol interval."
            )
    if not interval:
        return NextInfusion(
            number, label, rhythm.default_dose, unit, None, last, note="No dosing interval in the catalog: no due date."
        )
    if last is None:
        return NextInfusion(
            number,
            label,
            rhythm.default_dose,
            unit,
            None,
            None,
            note="Not started: the first infusion is booked when prescribed.",
        )
    due = _interval_from(rhythm, last.day, interval)
    assert due is not None  # an interval is set
    allowed = minimum_after(rhythm.code, last.day, minimum)
    return NextInfusion(
        number,
        label,
        rhythm.default_dose,
        unit,
        due,
        last,
        allowed_from=allowed,
        warn_before=None if allowed else _warn_before(due, interval),
    )


def too_early(nxt: NextInfusion, when: date) -> TooEarly | None:
    """Whether booking `nxt` on `when` is before its minimum interval (enforced) or well before its due date."""
    if nxt.last is None:
        return None
    last = nxt.last.day
    what = "booked infusion" if nxt.last.planned else "last infusion"
    if nxt.allowed_from is not None and when < nxt.allowed_from:
        return TooEarly(
            when,
            last,
            nxt.allowed_from,
            True,
            (
                f"Too early: {nxt.label} on {when:%d %b %Y} is {(when - last).days} days after the {what} "
                f"({last:%d %b %Y}); allowed from {nxt.allowed_from:%d %b %Y}."
            ),
        )
    if nxt.warn_before is not None and when < nxt.warn_before:
        due = f"due {nxt.due:%d %b %Y}" if nxt.due else "no due date"
        return TooEarly(
            when,
            last,
            nxt.warn_before,
            False,
            (
                f"Earlier than usual: {nxt.label} on {when:%d %b %Y} is {(when - last).days} days after the {what} "
                f"({last:%d %b %Y}); {due}, usual from {nxt.warn_before:%d %b %Y}."
            ),
        )
    return None
