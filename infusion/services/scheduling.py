"""Booking a session ahead: the dose the schedule expects, the course position, and the too-early rule.

Wraps `infusion.services.sessions.create_session` (walk_in=False). Everything that can
refuse is checked before the session is created, so a refusal stores nothing.
The dose, its reason, the infusion number and the course position come from the
one regimen rule (`infusion.reads.due.next_in`, used by create_session too). The
session and the audited reasons (dose, too-early override, course) are one
transaction; a retried request with the same `client_token` books once.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from db.engine import Database
from db.models import Chair, InfusionSession, Patient, Therapy
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import CHARTING, require_role
from infusion.accounts.sites import site_of_session
from infusion.clinical.regimen import LEMTRADA
from infusion.clinical.states import SessionStatus
from infusion.clock import format_local, local_date, utcnow
from infusion.errors import ConfirmationRequired, ValidationError
from infusion.reads.due import check_too_early, next_for
from infusion.reads.sessions import chair_clashes, planned_minutes_of
from infusion.services import integrity, sessions
from infusion.services.audit import changed, record, snapshot
from infusion.services.opening import administering, charting, clinic_timezone, confirmed, optional_text, record_id
from infusion.services.opening import client_token as clean_token

log = logging.getLogger(__name__)

SCHEDULE = "schedule infusion sessions"
#: how far before now a booking may still start: one 15-minute slot of the booking form (a product choice)
PAST_GRACE_MINUTES = 15

DOSE_TOLERANCE = sessions.DOSE_TOLERANCE


def schedule_session(
    db: Database,
    actor: Actor,
    patient_id: int,
    therapy_id: int,
    chair_id: int,
    when: datetime,
    dose: float | None = None,
    dose_reason: str | None = None,
    override_too_early_reason: str | None = None,
    *,
    client_token: str | None = None,
    confirm_shared_chair: bool | str | None = False,
) -> InfusionSession:
    """Book a session at `when` (aware datetime, today or later; a time already past today is refused).
    A chair another open session holds for part of the planned chair time is refused until confirmed
    (`ConfirmationRequired`; the confirmation is the audit event's reason).

    The dose defaults to the one the schedule expects; a different dose needs
    `dose_reason`. A date before the therapy's minimum interval needs
    `override_too_early_reason` (the message names the date it becomes
    allowed); a date only earlier than usual is booked (the page warns).
    """
    require_role(actor, CHARTING, SCHEDULE)
    problems: dict[str, str] = {}
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise ValidationError({"scheduled_at": "Pick the date and time of the booking."})
    if integrity.time_problem(when):
        raise ValidationError({"scheduled_at": f"Booking: {integrity.time_problem(when)}."})
    patient_id, therapy_id = record_id(patient_id, "patient"), record_id(therapy_id, "therapy")
    chair_id = record_id(chair_id, "chair")
    if dose is not None and integrity.float_problem(dose):
        raise ValidationError({"dose": "Enter the dose (a positive number)."})
    dose_reason = optional_text(dose_reason, "dose_reason") or None
    override_too_early_reason = optional_text(override_too_early_reason, "override_too_early_reason") or None
    token = clean_token(client_token)
    with db.reading() as s:
        patient, therapy, chair = s.get(Patient, patient_id), s.get(Therapy, therapy_id), s.get(Chair, chair_id)
        tz = clinic_timezone(s, site_id=chair.site_id if chair is not None else None)
    if patient is None:
        problems["patient"] = "Pick a patient."
    if therapy is None or not therapy.active:
        problems["therapy"] = "Pick a therapy from the catalog."
    if chair is None or not chair.active:
        problems["chair"] = "Pick a chair."
    if problems:
        raise ValidationError(problems)
    assert therapy is not None
    today = local_date(utcnow(), tz)
    day = local_date(when, tz)
    if day < today:
        raise ValidationError(
            {
                "scheduled_at": f"{day:%d %b %Y} is in the past: book today or later "
                "(a session given already is charted on the Chairside page)."
            }
        )
    _not_past(when, tz)
    nxt = next_for(db, patient_id, therapy_id, when)
    expected = nxt.expected_dose
    if dose is None:
        dose = expected
    reason = (dose_reason or "").strip() or None
    differs = expected is not None and dose is not None and abs(dose - expected) > DOSE_TOLERANCE
    if dose is not None and dose <= 0:
        problems["dose"] = "Enter the dose (a positive number)."
    elif differs and reason is None:
        problems["dose_reason"] = (
            f"The schedule expects {expected:g} {nxt.dose_unit} for {nxt.label}; "
            f"give a reason for {dose:g} {nxt.dose_unit}."
        )
    override = (override_too_early_reason or "").strip() or None
    early = check_too_early(db, patient_id, therapy_id, when)
    if early is not None and early.enforced and override is None:
        problems["override_too_early_reason"] = f"{early.message} Give a reason to book it earlier."
    if problems:
        raise ValidationError(problems)

    course = therapy.code == LEMTRADA
    overriding = early is not None and early.enforced
    with administering(db, actor, CHARTING, SCHEDULE) as s:  # one transaction: the booking and its reasons
        replay = sessions.booked_by_token(s, token, chair_id)
        if replay is not None:
            return replay  # a retried request: already booked
        clashes = _check_chair(s, chair_id, when, therapy, nxt.infusion_number, tz, confirm_shared_chair)
        row = sessions._insert_session(  # noqa: SLF001 - the booking half of create_session, in this transaction
            s,
            actor,
            patient_id=patient_id,
            therapy_id=therapy_id,
            chair_id=chair_id,
            dose=dose,
            scheduled_at=when,
            walk_in=False,
            dose_reason=reason if differs else None,
            client_token=token,
        )
        log.info("schedule session=%s by user=%s", row.id, actor.user_id)
        if not (course or differs or overriding or clashes):
            return row
        why = (
            "; ".join(
                x
                for x in (
                    f"dose: {reason}" if differs else "",
                    f"booked before {early.allowed_from:%Y-%m-%d}: {override}" if overriding and early else "",
                    "chair shared, confirmed: " + " ".join(clashes) if clashes else "",
                )
                if x
            )
            or None
        )
        after: dict[str, object] = {"course_label": nxt.label}
        if course:
            after |= {"course_number": row.course_number, "course_day": row.course_day}
        if differs:
            after["dose_reason"] = row.dose_reason
        record(
            s,
            actor,
            "schedule",
            "session",
            row.id,
            session_id=row.id,
            patient_id=patient_id,
            after=after,
            reason=why,
        )
        return row


def _not_past(when: datetime, tz: str) -> None:
    """A booking starts no earlier than one slot before now (`PAST_GRACE_MINUTES`)."""
    if when < utcnow() - timedelta(minutes=PAST_GRACE_MINUTES):
        raise ValidationError(
            {
                "scheduled_at": f"{format_local(when, tz)} today has passed: book a later time "
                "(a session given already is charted on the Chairside page)."
            }
        )


def _check_chair(
    s: Session,
    chair_id: int,
    when: datetime,
    therapy: Therapy,
    infusion_number: int,
    tz: str,
    confirm: bool | str | None,
    exclude: int | None = None,
) -> list[str]:
    """Who else holds the chair for part of this booking's planned chair time (`chair_clashes`), refused
    (ConfirmationRequired) unless the person confirmed those very clashes; the clashes, for the audit."""
    clashes = chair_clashes(s, chair_id, when, planned_minutes_of(therapy, infusion_number), tz, exclude=exclude)
    if clashes and not confirmed(clashes, confirm):
        raise ConfirmationRequired(clashes, lead="Check the chair")
    return clashes


def expected_for_booking(
    db: Database, patient_id: int, therapy_id: int, when: datetime | date
) -> tuple[float | None, str]:
    """(expected dose, course label) a booking at `when` would get: for pre-filling the form."""
    nxt = next_for(db, patient_id, therapy_id, when)
    return nxt.expected_dose, nxt.label


def move_booking(
    db: Database,
    actor: Actor,
    session_id: int,
    when: datetime,
    *,
    expected_version: int | None,
    override_too_early_reason: str | None = None,
    confirm_shared_chair: bool | str | None = False,
) -> InfusionSession:
    """Move a booked (not yet checked-in) session to another date and time, e.g. a too-early booking
    to the date its therapy allows. The same rules as a new booking apply to a new time (too early, not
    already past, a chair another session holds asks to be confirmed); audited."""
    opening = charting(db, actor, session_id, expected_version, what=SCHEDULE)
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise ValidationError({"scheduled_at": "Pick the date and time of the booking."})
    with db.reading() as s:
        current = s.get(InfusionSession, session_id)
        tz = clinic_timezone(s, site_id=site_of_session(s, current) if current is not None else None)
    if current is None:
        raise ValidationError({"session": f"Session {session_id} not found."})
    if current.status != SessionStatus.SCHEDULED:
        raise ValidationError({"session": "Only a booked session that is not checked in yet can be moved."})
    day = local_date(when, tz)
    moved = when != current.scheduled_at  # kept where it is (with a reason): only the too-early rule
    if moved and day < local_date(utcnow(), tz):
        raise ValidationError({"scheduled_at": f"{day:%d %b %Y} is in the past: book today or later."})
    if moved:
        _not_past(when, tz)
    early = check_too_early(db, current.patient_id, current.therapy_id, when, exclude_session_id=session_id)
    override = (override_too_early_reason or "").strip() or None
    if early is not None and early.enforced and override is None:
        raise ValidationError({"override_too_early_reason": f"{early.message} Give a reason to book it earlier."})
    nxt = next_for(db, current.patient_id, current.therapy_id, when, exclude_session_id=session_id)
    with opening as w:
        s, row = w.s, w.row
        if row.status != SessionStatus.SCHEDULED:
            raise ValidationError({"session": "Only a booked session that is not checked in yet can be moved."})
        therapy = s.get(Therapy, row.therapy_id)
        assert therapy is not None  # foreign key
        clashes = (
            _check_chair(s, row.chair_id, when, therapy, nxt.infusion_number, tz, confirm_shared_chair, row.id)
            if moved
            else []
        )
        before = snapshot(row)
        row.scheduled_at = when
        if row.course_number is not None or nxt.course_number is not None:
            row.course_number, row.course_day = nxt.course_number, nxt.course_day
        s.flush()
        old, new = changed(before, snapshot(row))
        old.pop("version", None)
        new.pop("version", None)
        reasons = [
            f"booked before {early.allowed_from:%Y-%m-%d}: {override}" if early and early.enforced else "",
            "chair shared, confirmed: " + " ".join(clashes) if clashes else "",
        ]
        reason = "; ".join(r for r in reasons if r) or None
        record(
            s,
            actor,
            "reschedule",
            "session",
            row.id,
            session_id=row.id,
            patient_id=row.patient_id,
            before=old,
            after=new,
            reason=reason,
        )
        log.info("reschedule session=%s by user=%s", row.id, actor.user_id)
        return row
