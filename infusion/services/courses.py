"""Ending a patient × therapy course, and resuming it: the Due page's "course ended" mark.

A patient who stopped a therapy (completed it, switched, moved away, declined, died) would stay overdue
for ever; there is no clinical number after which to hide them, so a person says so. `end_course` adds a
`course_end` row (who, when, the reason code of `infusion.clinical.course_end`, a note); `resume_course`
fills the resume columns of the same row (who, when, why). Nothing is overwritten or deleted: a pair
ended again gets a new row, and each end and resume adds an audit event. The due list, the protocol table
and its "set protocol" warning leave a pair out while its mark is in force (`due_pair.ended`, kept in this
transaction by `infusion.reads.due_summary`). A booking after an end is allowed and does not resume the
course; an infusion given after it lifts the mark (the patient is due again): the rule is written in
`infusion.reads.due`. Ending such a course again closes the old mark (its resume columns, by the person
ending it) and adds a new one.

Who: the roles that set a protocol interval (`protocols.PROTOCOL_EDIT`: charge nurse, administrator), a
clinical decision about the patient's plan, not a booking; checked again against the account in the write
transaction (`opening.administering`). Where: the person must hold the site the pair is listed at (the
site of its last given infusion) or a site where it is booked from today on; the mark is filed under that
site (its "Ended courses" list). Protocol intervals themselves have no site check (protocols.py): this is
stricter on purpose.

Both writes are idempotent: a double tap with the same client token returns the row already stored, and
ending a course already ended (or resuming one already resumed) changes nothing and returns the row in
force.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.engine import Database
from db.models import Chair, CourseEnd, DuePair, InfusionSession, Patient, Therapy
from infusion.accounts.actor import Actor
from infusion.accounts.sites import held_sites, holds, require_site
from infusion.clinical.course_end import NOTE_MAX, NOTE_REQUIRED, REASON_CODES, REASONS
from infusion.clinical.states import SessionStatus
from infusion.clock import utcnow
from infusion.errors import ConflictError, NotFoundError, ValidationError
from infusion.reads.due_summary import in_force
from infusion.services.audit import changed, record, snapshot
from infusion.services.opening import administering, optional_text, record_id, required_text
from infusion.services.opening import client_token as clean_token
from infusion.services.protocols import PROTOCOL_EDIT

#: who may end or resume a course: whoever sets a protocol interval (charge nurse, administrator)
COURSE_EDIT = PROTOCOL_EDIT
_PENDING = (SessionStatus.SCHEDULED, SessionStatus.CHECKED_IN, SessionStatus.READY)


def _reason(value: object) -> str:
    if not isinstance(value, str) or value not in REASON_CODES:
        raise ValidationError({"reason": "Pick why the course ended: " + ", ".join(REASONS.values()) + "."})
    return value


def check_end(reason: object, note: object) -> tuple[str, str]:
    """An end's reason code and note, or ValidationError naming every problem: the form asks this too when
    nothing is picked yet, so one refusal names all that is missing."""
    problems: dict[str, str] = {}
    code = text = ""
    try:
        code = _reason(reason)
    except ValidationError as error:
        problems.update(error.problems)
    try:
        text = optional_text(note, "note", max_len=NOTE_MAX)
    except ValidationError as error:
        problems.update(error.problems)
    if code in NOTE_REQUIRED and not text and "note" not in problems:
        problems["note"] = "Say why the course ended (the reason is “other”)."
    if problems:
        raise ValidationError(problems)
    return code, text


def check_resume(reason: object) -> str:
    """A resume's reason (required), or ValidationError; asked by the form too when nothing is picked yet."""
    return required_text(reason, "resume_reason", "Say why the course is resumed.", max_len=NOTE_MAX)


def _pair_sites(s: Session, patient_id: int, therapy_id: int) -> list[int]:
    """The sites a pair is listed at: its last given infusion's (`due_pair`), then where it is booked from
    about today on (a day back, so no site's today is missed)."""
    sites: list[int] = []
    listed = s.scalar(select(DuePair.site_id).where(DuePair.patient_id == patient_id, DuePair.therapy_id == therapy_id))
    if listed is not None:
        sites.append(int(listed))
    booked = s.scalars(
        select(Chair.site_id)
        .join(InfusionSession, InfusionSession.chair_id == Chair.id)
        .where(
            InfusionSession.patient_id == patient_id,
            InfusionSession.therapy_id == therapy_id,
            InfusionSession.status.in_(_PENDING),
            InfusionSession.scheduled_at >= utcnow() - timedelta(days=1),
        )
        .distinct()
    )
    sites += sorted({int(b) for b in booked} - set(sites))
    return sites


def _open_mark(s: Session, patient_id: int, therapy_id: int) -> CourseEnd | None:
    return s.scalars(
        select(CourseEnd)
        .where(CourseEnd.patient_id == patient_id, CourseEnd.therapy_id == therapy_id, CourseEnd.resumed_at.is_(None))
        .with_for_update()
    ).first()


def end_course(
    db: Database,
    actor: Actor,
    patient_id: int,
    therapy_id: int,
    reason: str | None,
    note: str | None = None,
    *,
    client_token: str | None = None,
) -> CourseEnd:
    """Mark the patient's course of this therapy ended: the due list and the protocol table leave the pair
    out until it is resumed. `reason` is a code of `infusion.clinical.course_end.REASONS` ("other" needs a
    note). Charge nurse or administrator, at a site where the pair is listed or booked. Audited."""
    what = "end a course"
    # the role first (administering), then the arguments, then the database
    with administering(db, actor, COURSE_EDIT, what) as s:
        patient_id = record_id(patient_id, "patient")
        therapy_id = record_id(therapy_id, "therapy")
        code, text = check_end(reason, note)
        token = clean_token(client_token)
        # the patient's row locked first: a second tap saving at the same moment (Streamlit runs it beside
        # the first) waits for the first to commit, then finds its token, instead of failing on the
        # one-mark-in-force index (PostgreSQL; SQLite's writers queue already)
        if s.scalars(select(Patient.id).where(Patient.id == patient_id).with_for_update()).first() is None:
            raise ValidationError({"patient": "Pick a patient."})
        if token is not None:
            stored = s.scalars(select(CourseEnd).where(CourseEnd.client_token == token)).first()
            if stored is not None and (stored.patient_id, stored.therapy_id) != (patient_id, therapy_id):
                # the form's earlier save went through but the form never moved on: never report another
                # pair's mark as this one's
                raise ConflictError(
                    "This form already ended another course; nothing was saved for the pair picked now. "
                    "Reload the page and pick again."
                )
            if stored is not None:  # a double tap: what the first tap stored
                return stored
        if s.get(Therapy, therapy_id) is None:
            raise ValidationError({"therapy": "Pick a therapy."})
        sites = _pair_sites(s, patient_id, therapy_id)
        if not sites:
            raise ValidationError(
                {"therapy": "This patient has had no infusion of this therapy and none is booked: no course to end."}
            )
        held = held_sites(s, actor)
        site = next((x for x in sites if holds(held, x)), None)
        if site is None:
            require_site(s, actor, sites[0], what)  # refuses, naming the site
            raise AssertionError("unreachable")  # pragma: no cover
        current = _open_mark(s, patient_id, therapy_id)
        if current is not None:
            pair = (patient_id, therapy_id)
            treated = _last_given(s, patient_id, therapy_id)
            if treated is None or pair in in_force({pair: current.ended_at}, {pair: treated}):
                return current  # already ended: nothing to change
            # treated again since that mark (it no longer holds): this person closes it and ends anew
            _close(
                s, actor, current, f"Treated again on {treated.date().isoformat()} (UTC); the course is ended again."
            )
        row = CourseEnd(
            patient_id=patient_id,
            therapy_id=therapy_id,
            site_id=site,
            reason=code,
            note=text or None,
            ended_at=utcnow(),
            ended_by_id=actor.user_id,
            ended_by_name=actor.name,
            client_token=token,
        )
        s.add(row)
        try:
            s.flush()
        except IntegrityError:
            raise ConflictError(
                "Someone ended this course at the same moment; the Due page shows their entry."
            ) from None
        record(
            s,
            actor,
            "end_course",
            "course_end",
            row.id,
            patient_id=patient_id,
            after=snapshot(row),
            reason=f"{REASONS[code]}" + (f": {text}" if text else ""),
        )
        return row


def resume_course(db: Database, actor: Actor, course_end_id: int, reason: str) -> CourseEnd:
    """Resume an ended course: the pair is listed again (due list, protocol table). The end stays on
    record with the resume's who, when and `reason` (required). Charge nurse or administrator, at the site
    the end was filed under or where the pair is listed now. Audited. Resuming twice changes nothing."""
    what = "resume a course"
    with administering(db, actor, COURSE_EDIT, what) as s:
        course_end_id = record_id(course_end_id, "course_end")
        why = check_resume(reason)
        row = s.scalars(select(CourseEnd).where(CourseEnd.id == course_end_id).with_for_update()).first()
        if row is None:
            raise NotFoundError(f"Ended course {course_end_id} not found.")
        held = held_sites(s, actor)
        if not any(holds(held, x) for x in (row.site_id, *_pair_sites(s, row.patient_id, row.therapy_id))):
            require_site(s, actor, row.site_id, what)
        if row.resumed_at is not None:  # a double tap, or someone resumed it first
            return row
        _close(s, actor, row, why)
        return row


def _close(s: Session, actor: Actor, row: CourseEnd, why: str) -> None:
    """Fill a mark's resume columns (who, when, why) and audit it: the mark stays on record."""
    before = snapshot(row)
    row.resumed_at, row.resumed_by_id, row.resumed_by_name, row.resume_reason = (
        utcnow(),
        actor.user_id,
        actor.name,
        why,
    )
    s.flush()
    old, new = changed(before, snapshot(row))
    record(
        s,
        actor,
        "resume_course",
        "course_end",
        row.id,
        patient_id=row.patient_id,
        before=old,
        after=new,
        reason=why,
    )


def _last_given(s: Session, patient_id: int, therapy_id: int) -> datetime | None:
    """The pair's last IV start (an infusion given after a mark lifts it: `due_summary.in_force`)."""
    return s.scalar(
        select(func.max(InfusionSession.iv_started_at)).where(
            InfusionSession.patient_id == patient_id, InfusionSession.therapy_id == therapy_id
        )
    )
