"""When each patient's next infusion is due, where it sits in its course, and the dose it expects.

The rhythm comes from the therapy catalog (docs/clinical-basis.md §1) and the patient's
history: the sessions that reached IV start, by the clinic-local date of the IV
start. Planning a booking also counts the bookings already made before it
(a whole Lemtrada course, or both Ocrevus initial doses, are usually booked at
once), so the third Lemtrada day booked ahead is "day 3 of 5", not "day 1".


The rules themselves (rhythms, courses, doses, minimum intervals, "too early") are pure and live in
`infusion.clinical.regimen` (its docstring lists them with their sources); this module reads the
history, the bookings and the protocol intervals and applies them. Setting a protocol interval is a
write: `infusion.services.protocols`. The names of both stay importable from here.
About 580 lines with those re-exports: the due list, the too-early bookings and the protocol list share
one history reader (`_doses`, `_given_in_order`) and the section rules, so they stay together. The due list
reads the `due_pair` summary (`infusion.reads.due_summary`, kept in every write transaction);
`_due_list_raw` keeps the raw-row path it is checked against.

Ended courses (`infusion.services.courses`): a patient × therapy a person marked ended (a `course_end`
row not resumed) is left out of the due list in every section, of the protocol table and of its "set
protocol" warning; there is no time limit of any kind. The rule for what comes after an end: a booking
of that patient and therapy is still allowed (nothing is refused, the next infusion is planned as usual)
and does not bring the pair back; an infusion given (IV started) after the mark does: a patient treated
again is due again, so a restarted course never misses its next dose because of an old mark. Otherwise the
pair is listed again when a person resumes the course (Due page, "Ended courses"; who, when and why are
kept), so a course ended by mistake is one tap to undo. The mark itself stays on record either way.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session

from db.engine import Database
from db.models import Chair, CourseEnd, InfusionSession, Patient, PatientProtocol, Therapy
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import ADMIN, CHARGE, MANAGER, NURSE, require_role
from infusion.accounts.sites import working_context
from infusion.clinical.regimen import INITIAL_DOSES as INITIAL_DOSES
from infusion.clinical.regimen import INITIAL_PAIR_DAYS as INITIAL_PAIR_DAYS
from infusion.clinical.regimen import LEMTRADA as LEMTRADA
from infusion.clinical.regimen import LEMTRADA_COURSE_DAYS as LEMTRADA_COURSE_DAYS
from infusion.clinical.regimen import LEMTRADA_SCHEDULED_COURSES as LEMTRADA_SCHEDULED_COURSES
from infusion.clinical.regimen import NO_DUE_DATE as NO_DUE_DATE
from infusion.clinical.regimen import PROTOCOL_THERAPIES as PROTOCOL_THERAPIES
from infusion.clinical.regimen import WARN_TOLERANCE_DAYS as WARN_TOLERANCE_DAYS
from infusion.clinical.regimen import Dose as Dose
from infusion.clinical.regimen import NextInfusion as NextInfusion
from infusion.clinical.regimen import Rhythm as Rhythm
from infusion.clinical.regimen import TooEarly as TooEarly
from infusion.clinical.regimen import infusion_number_after as infusion_number_after
from infusion.clinical.regimen import lemtrada_positions as lemtrada_positions
from infusion.clinical.regimen import plan_next as plan_next
from infusion.clinical.regimen import too_early as too_early
from infusion.clinical.states import SessionStatus
from infusion.clock import local_date, local_day_start, utcnow
from infusion.errors import NotFoundError, ValidationError
from infusion.reads import due_summary
from infusion.reads.due_summary import LAST_DOSES as LAST_DOSES
from infusion.services.opening import clinic_timezone

#: roles that see the due list (the Due page's roles)
DUE_READ = (NURSE, CHARGE, MANAGER, ADMIN)
#: sessions that are booked but not yet infused
PENDING_STATUSES = (SessionStatus.SCHEDULED, SessionStatus.CHECKED_IN, SessionStatus.READY)

SECTION_OVERDUE, SECTION_WEEK, SECTION_PROTOCOL, SECTION_LATER, SECTION_NONE = (
    due_summary.OVERDUE,
    due_summary.WEEK,
    due_summary.PROTOCOL,
    due_summary.LATER,
    due_summary.NONE,
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
    "site_id",  # the site the pair was last given at: where the patient is due (the booking form's first choice)
]


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


def _given_in_order() -> Select[int, int, datetime | None, int | None, int | None, int, int]:
    """Every infusion given (IV started), per patient and therapy in IV-start order, with its site. One
    pass over the table beats a ROW_NUMBER() window here (measured on the 20,000-session demo: 0.3 s
    against 1.0 s on SQLite); `due_list` keeps only the last `LAST_DOSES` of each pair."""
    return (
        select(
            InfusionSession.patient_id,
            InfusionSession.therapy_id,
            InfusionSession.iv_started_at,
            InfusionSession.course_number,
            InfusionSession.course_day,
            InfusionSession.infusion_number,
            Chair.site_id,
        )
        .join(Chair, Chair.id == InfusionSession.chair_id)
        .where(InfusionSession.iv_started_at.is_not(None))
        .order_by(InfusionSession.iv_started_at)
    )


def _due_list_raw(
    db: Database,
    actor: Actor,
    today: date,
    *,
    sections: tuple[str, ...] = (SECTION_OVERDUE, SECTION_WEEK, SECTION_PROTOCOL),
) -> pd.DataFrame:
    """Per patient and therapy with an infusion given: last infusion, next due, days overdue, course label,
    expected dose and the next booking. `section` is overdue / due this week (today + 6 days) / set
    protocol / later / no due date; only the asked `sections` are returned, most overdue first.

    A patient's history counts at every site of the network; the list shows the patients the site the
    actor works in treats (their last infusion of the therapy, or their next booking, is there)."""
    require_role(actor, DUE_READ, "see the due list")
    with db.reading() as s:
        site = working_context(s, actor)[0]
        tz = site.timezone
        zone = ZoneInfo(tz)
        # only the patients this site has seen or booked (their whole history, at every site, counts):
        # in a network that reads a site's share of the sessions, not the network's
        seen_here = (
            select(InfusionSession.patient_id)
            .join(Chair, Chair.id == InfusionSession.chair_id)
            .where(Chair.site_id == site.id)
            .scalar_subquery()
        )
        therapies = {t.id: t for t in s.scalars(select(Therapy))}
        patients = {
            pid: (f"{family}, {given}", mrn)
            for pid, family, given, mrn in s.execute(
                select(Patient.id, Patient.family_name, Patient.given_name, Patient.mrn).where(
                    Patient.id.in_(seen_here)
                )
            )
        }
        history: dict[tuple[int, int], list[Dose]] = defaultdict(list)
        first_by_pair: dict[tuple[int, int], date] = {}
        last_site: dict[tuple[int, int], int] = {}
        last_given: dict[tuple[int, int], datetime] = {}
        given = _given_in_order().where(InfusionSession.patient_id.in_(seen_here))
        for patient_id, therapy_id, started, course, day, number, given_at in s.execute(given):
            assert started is not None  # the query keeps sessions with an IV start only
            pair = (patient_id, therapy_id)
            last_site[pair] = given_at
            last_given[pair] = started
            local = started.astimezone(zone).date()
            if pair not in first_by_pair:
                first_by_pair[pair] = local
            kept = history[pair]
            kept.append(Dose(local, False, course, day, number))
            if len(kept) > LAST_DOSES:
                del kept[0]
        booked: dict[tuple[int, int], date] = {}
        booked_here: set[tuple[int, int]] = set()
        for patient_id, therapy_id, first, booked_at in s.execute(
            select(InfusionSession.patient_id, InfusionSession.therapy_id, InfusionSession.scheduled_at, Chair.site_id)
            .join(Chair, Chair.id == InfusionSession.chair_id)
            .where(
                InfusionSession.status.in_(PENDING_STATUSES),
                InfusionSession.scheduled_at >= local_day_start(today, tz),
                InfusionSession.patient_id.in_(seen_here),
            )
            .order_by(InfusionSession.scheduled_at)
        ):
            pair = (patient_id, therapy_id)
            if pair not in booked:
                booked[pair] = local_date(first, tz)
                if booked_at == site.id:
                    booked_here.add(pair)
        protocols = {
            (p, t): d
            for p, t, d in s.execute(
                select(PatientProtocol.patient_id, PatientProtocol.therapy_id, PatientProtocol.interval_days)
            )
        }
        ended = due_summary.in_force({(p, t): at for p, t, at in s.execute(due_summary.ended_pairs())}, last_given)
    dropped = _superseded(
        {k: v[-1].day for k, v in history.items()},
        first_by_pair,
        {i: t.code for i, t in therapies.items()},
    )
    rows = []
    for (patient_id, therapy_id), doses in history.items():
        if (patient_id, therapy_id) in dropped or (patient_id, therapy_id) in ended:
            continue
        if last_site[(patient_id, therapy_id)] != site.id and (patient_id, therapy_id) not in booked_here:
            continue  # treated at another site of the network
        therapy, (patient_name, mrn) = therapies[therapy_id], patients[patient_id]
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
                "patient": patient_name,
                "mrn": mrn,
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
                "site_id": last_site[(patient_id, therapy_id)],
            }
        )
    return _due_frame(rows)


def _due_frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    """The due list's frame: most overdue first (section, due date, patient; then patient and therapy id,
    so equal keys keep one order whichever path read them)."""
    frame = pd.DataFrame.from_records(rows, columns=DUE_COLUMNS)
    frame["days_overdue"] = frame["days_overdue"].astype("Int64")
    frame["expected_dose"] = frame["expected_dose"].astype("Float64")
    order = {
        name: i for i, name in enumerate((SECTION_OVERDUE, SECTION_WEEK, SECTION_PROTOCOL, SECTION_LATER, SECTION_NONE))
    }
    frame = frame.assign(_o=frame["section"].map(order), _d=frame["next_due"].map(lambda d: d or date.max))
    frame = frame.sort_values(["_o", "_d", "patient", "patient_id", "therapy_id"])
    return frame.drop(columns=["_o", "_d"]).reset_index(drop=True)


def due_list(
    db: Database,
    actor: Actor,
    today: date,
    *,
    sections: tuple[str, ...] = (SECTION_OVERDUE, SECTION_WEEK, SECTION_PROTOCOL),
) -> pd.DataFrame:
    """Per patient and therapy with an infusion given: last infusion, next due, days overdue, course label,
    expected dose and the next booking. `section` is overdue / due this week (today + 6 days) / set
    protocol / later / no due date; only the asked `sections` are returned, most overdue first.

    A patient's history counts at every site of the network; the list shows the patients the site the
    actor works in treats (their last infusion of the therapy, or their next booking, is there).

    Read from the `due_pair` summary (`infusion.reads.due_summary`, planned in the writing transaction),
    the site's bookings and the names of the listed patients: a few hundred rows whatever the history's
    size. `_due_list_raw` reads the raw rows, for the checks and the benchmark's floor."""
    require_role(actor, DUE_READ, "see the due list")
    with db.reading() as s:
        site = working_context(s, actor)[0]
        tz = site.timezone
        therapies = {t.id: t for t in s.scalars(select(Therapy))}
        # every pair's next booking (a pair is listed here only if its patient was seen or booked here)
        booked: dict[tuple[int, int], date] = {}
        booked_here: set[tuple[int, int]] = set()
        for patient_id, therapy_id, first, booked_at in s.execute(
            select(InfusionSession.patient_id, InfusionSession.therapy_id, InfusionSession.scheduled_at, Chair.site_id)
            .join(Chair, Chair.id == InfusionSession.chair_id)
            .where(
                InfusionSession.status.in_(PENDING_STATUSES),
                InfusionSession.scheduled_at >= local_day_start(today, tz),
            )
            .order_by(InfusionSession.scheduled_at)
        ):
            pair = (patient_id, therapy_id)
            if pair not in booked:
                booked[pair] = local_date(first, tz)
                if booked_at == site.id:
                    booked_here.add(pair)
        pairs = due_summary.site_rows(s.connection(), site.id, tz, today, sections, booked_here)
    rows = []
    for r in pairs:
        pair = (r["patient_id"], r["therapy_id"])
        therapy = therapies[r["therapy_id"]]
        due_on: date | None = r["next_due"]
        note = r["note"]
        if due_on is None:
            section = SECTION_PROTOCOL if therapy.code in PROTOCOL_THERAPIES else SECTION_NONE
        elif due_on < today:
            section = SECTION_OVERDUE
            if r["course_day"] and r["course_day"] > 1:
                note = f"Course {r['course_number']} interrupted after day {r['course_day'] - 1}."
        elif due_on <= today + timedelta(days=6):
            section = SECTION_WEEK
        else:
            section = SECTION_LATER
        if section not in sections:
            continue
        rows.append(
            {
                "patient_id": r["patient_id"],
                "therapy_id": r["therapy_id"],
                "patient": f"{r['family_name']}, {r['given_name']}",
                "mrn": r["mrn"],
                "therapy": therapy.brand or therapy.name,
                "last_infusion": r["last_day"],
                "next_due": due_on,
                "days_overdue": (today - due_on).days if due_on and due_on < today else 0,
                "course_label": r["course_label"],
                "expected_dose": r["expected_dose"],
                "dose_unit": r["dose_unit"],
                "booked": booked.get(pair),
                "section": section,
                "note": note,
                "site_id": r["site_id"],
            }
        )
    return _due_frame(rows)


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
        site = working_context(s, actor)[0]
        tz = site.timezone
        rows = s.execute(
            select(InfusionSession, Patient, Therapy)
            .join(Patient, Patient.id == InfusionSession.patient_id)
            .join(Therapy, Therapy.id == InfusionSession.therapy_id)
            .join(Chair, Chair.id == InfusionSession.chair_id)
            .where(
                Chair.site_id == site.id,
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


PROTOCOL_COLUMNS = [
    "patient_id",
    "patient",
    "mrn",
    "therapy_id",
    "therapy",
    "interval_days",
    "version",
    "last_infusion",
    "next_due",
    "superseded",
]


def protocol_patients(db: Database, actor: Actor) -> pd.DataFrame:
    """The patients of the actor's working site with IVIG or cyclophosphamide, and their protocol interval if
    set: those whose last infusion of it was given here (from `due_pair`) and those booked here who have
    not had one yet (booked from today on). By name; `last_infusion` is the site-local day of the last one
    (None: booked only), `next_due` the plan's next date (None until an interval is set) and `superseded`
    whether the patient has since started a therapy with a rhythm (the due list leaves the pair out).
    A course marked ended (`due_pair.ended`, or a `course_end` in force for a pair booked only) is not
    listed: it is on the Due page's "Ended courses" list until resumed.

    Read from the summary and the site's pending bookings, not the history: at a million sessions the scan
    of every IVIG session took 0.7–2.4 s, and listed the whole network's patients to a one-site nurse."""
    require_role(actor, DUE_READ, "see the due list")
    dp = due_summary.DP.c
    with db.reading() as s:
        site = working_context(s, actor)[0]
        therapies = {t.id: t.name for t in s.scalars(select(Therapy).where(Therapy.code.in_(PROTOCOL_THERAPIES)))}
        # the pairs' rows with the patient and the interval joined in, in one statement (not IN lists)
        pairs = (
            select(
                Patient.id,
                Patient.family_name,
                Patient.given_name,
                Patient.mrn,
                dp.therapy_id,
                PatientProtocol.interval_days,
                PatientProtocol.version,
                dp.last_day,
                dp.next_due,
                dp.superseded,
            )
            .join(Patient, Patient.id == dp.patient_id)
            .where(dp.ended.is_(False))
            .outerjoin(
                PatientProtocol,
                (PatientProtocol.patient_id == dp.patient_id) & (PatientProtocol.therapy_id == dp.therapy_id),
            )
            .where(dp.therapy_id.in_(therapies))
        )
        found: dict[tuple[int, int], Any] = {(r[0], r[4]): r for r in s.execute(pairs.where(dp.site_id == site.id))}
        booked = s.execute(
            select(InfusionSession.patient_id, InfusionSession.therapy_id)
            .join(Chair, Chair.id == InfusionSession.chair_id)
            .where(
                Chair.site_id == site.id,
                InfusionSession.therapy_id.in_(therapies),
                InfusionSession.status.in_(PENDING_STATUSES),
                # from today on, as the due list's bookings (and through the therapy × time index)
                InfusionSession.scheduled_at >= local_day_start(local_date(utcnow(), site.timezone), site.timezone),
            )
            .distinct()
        ).all()
        fresh = {(p, t) for p, t in booked} - set(found)
        if fresh:  # a pair ended is left out, even when booked again (listed again once resumed)
            ended = due_summary.ended_pairs().where(CourseEnd.patient_id.in_(sorted({p for p, _ in fresh})))
            fresh -= {(p, t) for p, t, _ in s.execute(ended)}  # booked only: nothing given after the mark
        if fresh:  # booked here: the last infusion wherever it was given, or none yet
            patients = {p for p, _ in fresh}
            elsewhere = {(r[0], r[4]): r for r in s.execute(pairs.where(dp.patient_id.in_(patients)))}
            names = {
                r[0]: r
                for r in s.execute(
                    select(Patient.id, Patient.family_name, Patient.given_name, Patient.mrn).where(
                        Patient.id.in_(patients)
                    )
                )
            }
            intervals = {
                (p, t): (days, version)
                for p, t, days, version in s.execute(
                    select(
                        PatientProtocol.patient_id,
                        PatientProtocol.therapy_id,
                        PatientProtocol.interval_days,
                        PatientProtocol.version,
                    ).where(PatientProtocol.patient_id.in_(patients), PatientProtocol.therapy_id.in_(therapies))
                )
            }
            for p, t in fresh:
                found[(p, t)] = elsewhere.get((p, t)) or (
                    *names[p],
                    t,
                    *intervals.get((p, t), (None, None)),
                    None,
                    None,
                    False,
                )
    rows = [
        {
            "patient_id": pid,
            "patient": f"{fam}, {given}",
            "mrn": mrn,
            "therapy_id": tid,
            "therapy": therapies[tid],
            "interval_days": days,
            "version": version,
            "last_infusion": day,
            "next_due": due_on,
            "superseded": bool(superseded),
        }
        for pid, fam, given, mrn, tid, days, version, day, due_on, superseded in sorted(
            found.values(), key=lambda r: (r[1], r[2], therapies[r[4]], r[0])
        )
    ]
    frame = pd.DataFrame.from_records(rows, columns=PROTOCOL_COLUMNS)
    return frame.astype({"interval_days": "Int64", "version": "Int64"}) if not frame.empty else frame


def without_due_date(protocol: pd.DataFrame) -> pd.DataFrame:
    """The rows of `protocol_patients` the due list files under "set protocol": given here at least once,
    no interval set, not superseded by a therapy with a rhythm."""
    if protocol.empty:
        return protocol
    given = protocol["last_infusion"].notna() & protocol["interval_days"].isna() & ~protocol["superseded"]
    return protocol[given]
