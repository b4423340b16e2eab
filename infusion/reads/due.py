"""When each patient's next infusion is due, where it sits in its course, and the dose it expects.

The rhythm comes from the therapy catalog (docs/clinical-basis.md §1) and the patient's
history: the sessions that reached IV start, by the clinic-local date of the IV
start. Planning a booking also counts the bookings already made before it
(a whole Lemtrada course, or both Ocrevus initial doses, are usually booked at
once), so the third Lemtrada day booked ahead is "day 3 of 5", not "day 1".

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

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pandas as pd
from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.engine import Database
from db.models import InfusionSession, Patient, PatientProtocol, Therapy
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import ADMIN, CHARGE, MANAGER, NURSE, require_role
from infusion.clinical.intervals import after_interval, minimum_after
from infusion.clinical.states import SessionStatus
from infusion.clock import local_date, local_day_start, utcnow
from infusion.errors import ConflictError, NotFoundError, ValidationError
from infusion.services.audit import changed, record, snapshot
from infusion.services.opening import clinic_timezone

#: roles that see the due list (the Due page's roles)
DUE_READ = (NURSE, CHARGE, MANAGER, ADMIN)
#: roles that set a patient's protocol interval: a clinical decision, not a nurse's booking
PROTOCOL_EDIT = (CHARGE, ADMIN)

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
PROTOCOL_MAX_DAYS = 366
#: sessions that are booked but not yet infused
PENDING_STATUSES = (SessionStatus.SCHEDULED, SessionStatus.CHECKED_IN, SessionStatus.READY)

SECTION_OVERDUE, SECTION_WEEK, SECTION_PROTOCOL, SECTION_LATER, SECTION_NONE = (
    "overdue",
    "due this week",
    "set protocol",
    "later",
    "no due date",
)
DUE_COLUMNS = [
    "patient_id",
    "therapy_id",
    "patient",
    "mrn",
    "therapy",
    "last_infusion",
    "next_due",
    "days_overdue",
    "course_label",
    "expected_dose",
    "dose_unit",
    "booked",
    "section",
    "note",
]


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
    def of(cls, therapy: Therapy) -> Rhythm:
        return cls(
            therapy.code,
            therapy.brand or therapy.name,
            therapy.dosing_interval_days,
            therapy.min_interval_days,
            therapy.default_dose,
            therapy.dose_unit,
        )


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
    n = len(doses)
    last = doses[-1] if doses else None
    number = infusion_number_after(doses)
    name, unit = rhythm.name, rhythm.dose_unit
    interval, minimum = rhythm.interval_days, rhythm.min_interval_days

    def minimum_from(start: date) -> date | None:
        return minimum_after(rhythm.code, start, minimum)

    def interval_from(start: date, days: int | None) -> date | None:
        return after_interval(rhythm.code, start, days)

    if rhythm.code in INITIAL_DOSES:
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
        due = interval_from(anchor, interval)
        allowed = minimum_from(last.day)
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

    if rhythm.code == LEMTRADA:
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
        start = interval_from(last.day, interval)
        allowed = minimum_from(last.day)
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
    due = interval_from(last.day, interval)
    assert due is not None  # an interval is set
    allowed = minimum_from(last.day)
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


# ------------------------------------------------------------------ database side
def _as_datetime(when: datetime | date, tz: str) -> datetime:
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise ValidationError({"scheduled_at": "Booking time without a time zone."})
        return when
    return local_day_start(when, tz)


def _doses(
    s: Session,
    tz: str,
    patient_id: int,
    therapy_id: int,
    before: datetime | None,
    exclude_session_id: int | None,
    include_planned: bool,
    today: date,
) -> list[Dose]:
    """Given infusions (IV started) and, if asked, bookings from today on, before `before`, in date order."""
    given = InfusionSession.iv_started_at.is_not(None)
    cond: ColumnElement[bool] = given
    if include_planned:
        pending = (
            InfusionSession.iv_started_at.is_(None)
            & InfusionSession.status.in_(PENDING_STATUSES)
            & (InfusionSession.scheduled_at >= local_day_start(today, tz))
        )
        cond = or_(given, pending)
    q = select(
        InfusionSession.iv_started_at,
        InfusionSession.scheduled_at,
        InfusionSession.course_number,
        InfusionSession.course_day,
        InfusionSession.infusion_number,
    ).where(InfusionSession.patient_id == patient_id, InfusionSession.therapy_id == therapy_id, cond)
    if exclude_session_id is not None:
        q = q.where(InfusionSession.id != exclude_session_id)
    doses = []
    for started, scheduled, course, day, number in s.execute(q):
        moment = started or scheduled
        if before is not None and moment >= before:
            continue
        doses.append((moment, Dose(local_date(moment, tz), started is None, course, day, number)))
    return [d for _, d in sorted(doses, key=lambda pair: pair[0])]


def _protocol_days(s: Session, patient_id: int, therapy_id: int) -> int | None:
    return s.scalar(
        select(PatientProtocol.interval_days).where(
            PatientProtocol.patient_id == patient_id, PatientProtocol.therapy_id == therapy_id
        )
    )


def next_in(
    s: Session,
    patient_id: int,
    therapy_id: int,
    when: datetime | date | None = None,
    *,
    exclude_session_id: int | None = None,
) -> NextInfusion:
    """`next_for` inside an open transaction: the one place a new session's infusion number, expected
    dose and course position come from (sessions.create_session / create_walk_in, scheduling, check-in)."""
    therapy = s.get(Therapy, therapy_id)
    if therapy is None:
        raise NotFoundError(f"Therapy {therapy_id} not found.")
    tz = clinic_timezone(s)
    today = local_date(utcnow(), tz)
    before = _as_datetime(when, tz) if when is not None else None
    doses = _doses(s, tz, patient_id, therapy_id, before, exclude_session_id, when is not None, today)
    return plan_next(Rhythm.of(therapy), doses, _protocol_days(s, patient_id, therapy_id))


def next_for(
    db: Database,
    patient_id: int,
    therapy_id: int,
    when: datetime | date | None = None,
    *,
    exclude_session_id: int | None = None,
) -> NextInfusion:
    """The infusion a booking at `when` would be (bookings made before it count), or the next due one
    from the infusions given so far when `when` is None."""
    with db.reading() as s:
        return next_in(s, patient_id, therapy_id, when, exclude_session_id=exclude_session_id)


def next_infusion_number(s: Session, patient_id: int, therapy_id: int, exclude: int | None = None) -> int:
    """The infusion number a session gets at check-in and IV start: `infusion_number_after` the last
    infusion of this patient and therapy that reached IV start (one indexed row, not a recount)."""
    q = (
        select(InfusionSession.infusion_number)
        .where(
            InfusionSession.patient_id == patient_id,
            InfusionSession.therapy_id == therapy_id,
            InfusionSession.iv_started_at.is_not(None),
        )
        .order_by(InfusionSession.iv_started_at.desc(), InfusionSession.id.desc())
        .limit(1)
    )
    if exclude is not None:
        q = q.where(InfusionSession.id != exclude)
    last = s.scalar(q)
    return infusion_number_after([Dose(date.min, number=last)] if last is not None else [])


def course_position(db: Database, patient_id: int, therapy_id: int, when: datetime | date | None = None) -> str:
    """'Lemtrada course 1, day 3 of 5', 'Ocrevus initial dose 2 of 2', 'Tysabri infusion 12'."""
    return next_for(db, patient_id, therapy_id, when).label


def expected_dose(db: Database, patient_id: int, therapy_id: int, when: datetime | date | None = None) -> float | None:
    """The dose the schedule expects (Ocrevus 300 for infusions 1–2 then 600; Briumvi 150 then 450;
    otherwise the catalog default)."""
    return next_for(db, patient_id, therapy_id, when).expected_dose


def check_too_early(
    db: Database, patient_id: int, therapy_id: int, when: datetime | date, *, exclude_session_id: int | None = None
) -> TooEarly | None:
    """TooEarly (with the date it becomes allowed) when a booking at `when` is before the therapy's
    minimum interval, or, where none is set, well before its due date; otherwise None."""
    nxt = next_for(db, patient_id, therapy_id, when, exclude_session_id=exclude_session_id)
    with db.reading() as s:
        tz = clinic_timezone(s)
    day = local_date(when, tz) if isinstance(when, datetime) else when
    return too_early(nxt, day)


def too_early_for_session(db: Database, session_id: int) -> TooEarly | None:
    """For the check-in screen: is this booked session before its therapy's allowed date?"""
    with db.reading() as s:
        row = s.get(InfusionSession, session_id)
    if row is None:
        raise NotFoundError(f"Session {session_id} not found.")
    return check_too_early(db, row.patient_id, row.therapy_id, row.scheduled_at, exclude_session_id=row.id)


def _superseded(
    last_by_pair: dict[tuple[int, int], date], first_by_pair: dict[tuple[int, int], date], codes: dict[int, str]
) -> set[tuple[int, int]]:
    """Pairs whose patient has since started another therapy with a rhythm (switched from Tysabri
    to Ocrevus, say): product choice, so a stopped therapy does not stay overdue for ever."""
    starts: dict[int, list[tuple[int, date]]] = defaultdict(list)
    for (patient, therapy), first in first_by_pair.items():
        if codes.get(therapy) not in NO_DUE_DATE:
            starts[patient].append((therapy, first))
    out = set()
    for (patient, therapy), last in last_by_pair.items():
        if any(other != therapy and first > last for other, first in starts[patient]):
            out.add((patient, therapy))
    return out


#: the last infusions per patient and therapy the plan needs: every Lemtrada course so far (5 + 3 + 3 …
#: days, for histories without a stored course position) and the infusion before the last (Ocrevus and
#: Briumvi count their first maintenance dose from infusion 1); the stored infusion number carries the rest
LAST_DOSES = 16


def _given_in_order() -> Select[int, int, datetime | None, int | None, int | None, int]:
    """Every infusion given (IV started), per patient and therapy in IV-start order. One pass over the
    table beats a ROW_NUMBER() window here (measured on the 20,000-session demo: 0.3 s against 1.0 s on
    SQLite); `due_list` keeps only the last `LAST_DOSES` of each pair."""
    return (
        select(
            InfusionSession.patient_id,
            InfusionSession.therapy_id,
            InfusionSession.iv_started_at,
            InfusionSession.course_number,
            InfusionSession.course_day,
            InfusionSession.infusion_number,
        )
        .where(InfusionSession.iv_started_at.is_not(None))
        .order_by(InfusionSession.iv_started_at)
    )


def due_list(
    db: Database,
    actor: Actor,
    today: date,
    *,
    sections: tuple[str, ...] = (SECTION_OVERDUE, SECTION_WEEK, SECTION_PROTOCOL),
) -> pd.DataFrame:
    """Per patient and therapy with an infusion given: last infusion, next due, days overdue, course label,
    expected dose and the next booking. `section` is overdue / due this week (today + 6 days) / set
    protocol / later / no due date; only the asked `sections` are returned, most overdue first."""
    require_role(actor, DUE_READ, "see the due list")
    with db.reading() as s:
        tz = clinic_timezone(s)
        therapies = {t.id: t for t in s.scalars(select(Therapy))}
        patients = {p.id: p for p in s.scalars(select(Patient))}
        history: dict[tuple[int, int], list[Dose]] = defaultdict(list)
        first_by_pair: dict[tuple[int, int], date] = {}
        for patient_id, therapy_id, started, course, day, number in s.execute(_given_in_order()):
            assert started is not None  # the query keeps sessions with an IV start only
            pair = (patient_id, therapy_id)
            if pair not in first_by_pair:
                first_by_pair[pair] = local_date(started, tz)
            kept = history[pair]
            kept.append(Dose(local_date(started, tz), False, course, day, number))
            if len(kept) > LAST_DOSES:
                del kept[0]
        booked: dict[tuple[int, int], date] = {}
        for patient_id, therapy_id, first in s.execute(
            select(InfusionSession.patient_id, InfusionSession.therapy_id, func.min(InfusionSession.scheduled_at))
            .where(
                InfusionSession.status.in_(PENDING_STATUSES), InfusionSession.scheduled_at >= local_day_start(today, tz)
            )
            .group_by(InfusionSession.patient_id, InfusionSession.therapy_id)
        ):
            booked[(patient_id, therapy_id)] = local_date(first, tz)
        protocols = {
            (p, t): d
            for p, t, d in s.execute(
                select(PatientProtocol.patient_id, PatientProtocol.therapy_id, PatientProtocol.interval_days)
            )
        }
    dropped = _superseded(
        {k: v[-1].day for k, v in history.items()},
        first_by_pair,
        {i: t.code for i, t in therapies.items()},
    )
    rows = []
    for (patient_id, therapy_id), doses in history.items():
        if (patient_id, therapy_id) in dropped:
            continue
        therapy, patient = therapies[therapy_id], patients[patient_id]
        nxt = plan_next(Rhythm.of(therapy), doses, protocols.get((patient_id, therapy_id)))
        note = nxt.note
        if nxt.due is None:
            section = SECTION_PROTOCOL if therapy.code in PROTOCOL_THERAPIES else SECTION_NONE
        elif nxt.due < today:
            section = SECTION_OVERDUE
            if nxt.course_day and nxt.course_day > 1:
                note = f"Course {nxt.course_number} interrupted after day {nxt.course_day - 1}."
        elif nxt.due <= today + timedelta(days=6):
            section = SECTION_WEEK
        else:
            section = SECTION_LATER
        if section not in sections:
            continue
        rows.append(
            {
                "patient_id": patient_id,
                "therapy_id": therapy_id,
                "patient": f"{patient.family_name}, {patient.given_name}",
                "mrn": patient.mrn,
                "therapy": therapy.brand or therapy.name,
                "last_infusion": doses[-1].day,
                "next_due": nxt.due,
                "days_overdue": (today - nxt.due).days if nxt.due and nxt.due < today else 0,
                "course_label": nxt.label,
                "expected_dose": nxt.expected_dose,
                "dose_unit": nxt.dose_unit,
                "booked": booked.get((patient_id, therapy_id)),
                "section": section,
                "note": note,
            }
        )
    frame = pd.DataFrame.from_records(rows, columns=DUE_COLUMNS)
    frame["days_overdue"] = frame["days_overdue"].astype("Int64")
    frame["expected_dose"] = frame["expected_dose"].astype("Float64")
    order = {
        name: i for i, name in enumerate((SECTION_OVERDUE, SECTION_WEEK, SECTION_PROTOCOL, SECTION_LATER, SECTION_NONE))
    }
    frame = frame.assign(_o=frame["section"].map(order), _d=frame["next_due"].map(lambda d: d or date.max))
    return frame.sort_values(["_o", "_d", "patient"]).drop(columns=["_o", "_d"]).reset_index(drop=True)


TOO_EARLY_COLUMNS = [
    "session_id",
    "patient_id",
    "therapy_id",
    "patient",
    "therapy",
    "scheduled",
    "last",
    "allowed_from",
    "enforced",
    "message",
    "version",
]


def too_early_bookings(db: Database, actor: Actor, today: date) -> pd.DataFrame:
    """Booked sessions from `today` on that fall before their therapy's allowed (or usual) date."""
    require_role(actor, DUE_READ, "see the due list")
    with db.reading() as s:
        tz = clinic_timezone(s)
        rows = s.execute(
            select(InfusionSession, Patient, Therapy)
            .join(Patient, Patient.id == InfusionSession.patient_id)
            .join(Therapy, Therapy.id == InfusionSession.therapy_id)
            .where(
                InfusionSession.status.in_(PENDING_STATUSES),
                InfusionSession.iv_started_at.is_(None),
                InfusionSession.scheduled_at >= local_day_start(today, tz),
            )
            .order_by(InfusionSession.scheduled_at)
        ).all()
    out = []
    for session, patient, therapy in rows:
        early = check_too_early(
            db, session.patient_id, session.therapy_id, session.scheduled_at, exclude_session_id=session.id
        )
        if early is None:
            continue
        out.append(
            {
                "session_id": session.id,
                "patient_id": patient.id,
                "therapy_id": therapy.id,
                "patient": f"{patient.family_name}, {patient.given_name}",
                "therapy": therapy.brand or therapy.name,
                "scheduled": session.scheduled_at,
                "last": early.last,
                "allowed_from": early.allowed_from,
                "enforced": early.enforced,
                "message": early.message,
                "version": session.version,
            }
        )
    return pd.DataFrame.from_records(out, columns=TOO_EARLY_COLUMNS)


# ------------------------------------------------------------------ protocol intervals
def protocol_interval(db: Database, patient_id: int, therapy_id: int) -> PatientProtocol | None:
    with db.reading() as s:
        return s.scalars(
            select(PatientProtocol).where(
                PatientProtocol.patient_id == patient_id, PatientProtocol.therapy_id == therapy_id
            )
        ).first()


def set_protocol_interval(
    db: Database,
    actor: Actor,
    patient_id: int,
    therapy_id: int,
    interval_days: int,
    note: str | None = None,
    *,
    expected_version: int | None = None,
) -> PatientProtocol:
    """Set (or change) the clinic's dosing interval for one patient on IVIG or cyclophosphamide.

    Audited with before/after. Only protocol therapies take one: the others follow the catalog's rhythm.
    """
    require_role(actor, PROTOCOL_EDIT, "set protocol intervals")
    if (
        isinstance(interval_days, bool)
        or not isinstance(interval_days, int)
        or not 1 <= interval_days <= PROTOCOL_MAX_DAYS
    ):
        raise ValidationError({"interval_days": f"Enter the interval in whole days, 1 to {PROTOCOL_MAX_DAYS}."})
    try:
        with db.writing() as s:
            therapy, patient = s.get(Therapy, therapy_id), s.get(Patient, patient_id)
            if patient is None:
                raise ValidationError({"patient": "Pick a patient."})
            if therapy is None or therapy.code not in PROTOCOL_THERAPIES:
                raise ValidationError(
                    {
                        "therapy": "Only IVIG and cyclophosphamide are dosed by a per-patient protocol; "
                        "other therapies follow the catalog."
                    }
                )
            row = s.scalars(
                select(PatientProtocol)
                .where(PatientProtocol.patient_id == patient_id, PatientProtocol.therapy_id == therapy_id)
                .with_for_update()
            ).first()
            text = (note or "").strip() or None
            if row is None:
                row = PatientProtocol(
                    patient_id=patient_id,
                    therapy_id=therapy_id,
                    interval_days=interval_days,
                    note=text,
                    set_at=utcnow(),
                    set_by_id=actor.user_id,
                )
                s.add(row)
                s.flush()
                record(
                    s,
                    actor,
                    "set_protocol_interval",
                    "patient_protocol",
                    row.id,
                    patient_id=patient_id,
                    after=snapshot(row),
                    reason=text,
                )
                return row
            if expected_version is not None and row.version != expected_version:
                raise ConflictError(
                    "This protocol interval was changed after you opened it. Nothing was saved; "
                    "review it and try again."
                )
            before = snapshot(row)
            row.interval_days, row.note, row.set_at, row.set_by_id = interval_days, text, utcnow(), actor.user_id
            s.flush()
            old, new = changed(before, snapshot(row))
            old.pop("version", None)
            new.pop("version", None)
            record(
                s,
                actor,
                "set_protocol_interval",
                "patient_protocol",
                row.id,
                patient_id=patient_id,
                before=old,
                after=new,
                reason=text,
            )
            return row
    except IntegrityError:
        raise ConflictError("Someone set this protocol interval at the same time; review it and try again.") from None


def protocol_patients(db: Database, actor: Actor) -> pd.DataFrame:
    """Patients with IVIG or cyclophosphamide sessions (given or booked) and their protocol interval, if set."""
    require_role(actor, DUE_READ, "see the due list")
    with db.reading() as s:
        pairs = s.execute(
            select(
                Patient.id,
                Patient.family_name,
                Patient.given_name,
                Patient.mrn,
                Therapy.id,
                Therapy.name,
                PatientProtocol.interval_days,
                PatientProtocol.version,
            )
            .select_from(InfusionSession)
            .join(Patient, Patient.id == InfusionSession.patient_id)
            .join(Therapy, Therapy.id == InfusionSession.therapy_id)
            .outerjoin(
                PatientProtocol, (PatientProtocol.patient_id == Patient.id) & (PatientProtocol.therapy_id == Therapy.id)
            )
            .where(Therapy.code.in_(PROTOCOL_THERAPIES), InfusionSession.status.not_in((SessionStatus.CANCELLED,)))
            .distinct()
            .order_by(Patient.family_name, Patient.given_name, Therapy.name)
        ).all()
    return pd.DataFrame.from_records(
        [
            {
                "patient_id": p,
                "patient": f"{fam}, {given}",
                "mrn": mrn,
                "therapy_id": t,
                "therapy": tname,
                "interval_days": days,
                "version": version,
            }
            for p, fam, given, mrn, t, tname, days, version in pairs
        ],
        columns=["patient_id", "patient", "mrn", "therapy_id", "therapy", "interval_days", "version"],
    )
