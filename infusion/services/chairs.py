"""Where a session happens: the free chairs, and moving a session to another chair.

Why a move and not a new booking: the booked session keeps its history, dose and
checks; only its place changes. The move is audited with the old and new chair
and carries the version the nurse saw, like any other change to a session.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.engine import Database
from db.models import Chair, InfusionSession, Therapy
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import CHARTING, require_role
from infusion.accounts.sites import site_of_session, working_context
from infusion.clinical.states import ACTIVE_STATUSES, SessionStatus
from infusion.clock import utcnow
from infusion.errors import ConfirmationRequired, ConflictError, NotFoundError, StateError, ValidationError
from infusion.reads.sessions import chair_clashes, planned_minutes_of
from infusion.services.audit import record
from infusion.services.opening import charting, clinic_timezone, confirmed

log = logging.getLogger(__name__)

#: a session may change chair until the patient leaves it
MOVABLE = (SessionStatus.SCHEDULED, *ACTIVE_STATUSES)
MAX_REASON = 500  # product choice: a short remark


def _occupied(s: Session, exclude_session: int | None = None) -> set[int]:
    q = select(InfusionSession.chair_id).where(InfusionSession.status.in_(ACTIVE_STATUSES))
    if exclude_session is not None:
        q = q.where(InfusionSession.id != exclude_session)
    return set(s.scalars(q))


def free_chairs(db: Database, actor: Actor, *, exclude_session: int | None = None) -> list[Chair]:
    """Active clinic chairs with no active session (other than `exclude_session`), and home-visit places,
    at the session's site (moving) or the site the actor works in now (booking)."""
    require_role(actor, CHARTING, "see the chairs")
    with db.reading() as s:
        row = s.get(InfusionSession, exclude_session) if exclude_session is not None else None
        site = site_of_session(s, row) if row is not None else working_context(s, actor)[0].id
        taken = _occupied(s, exclude_session)
        chairs = s.scalars(
            select(Chair).where(Chair.active.is_(True), Chair.site_id == site).order_by(Chair.name)
        ).all()
        return [c for c in chairs if c.kind == "home" or c.id not in taken]


def move_session(
    db: Database,
    actor: Actor,
    session_id: int,
    chair_id: int,
    *,
    reason: str | None = None,
    expected_version: int | None,
    confirm_shared_chair: bool | str | None = False,
) -> InfusionSession:
    """Move a booked or running session to a free chair (one transaction, audited).

    A chair another open session holds while this one would sit in it (`_clashes`: from now, or its booked
    time if later; a booking for its whole planned chair time, a patient in a chair for the rest of theirs)
    is taken only once confirmed
    (ConfirmationRequired), as a new booking's chair is; the confirmation goes in the audit trail."""
    note = (reason or "").strip() or None
    if note is not None and len(note) > MAX_REASON:
        raise ValidationError({"reason": f"Keep the reason under {MAX_REASON} characters."})
    with charting(db, actor, session_id, expected_version, what="move a session") as w:
        s, row = w.s, w.row
        if row.status not in MOVABLE:
            raise StateError("Only a booked or running session can change chair.")
        chair = s.get(Chair, chair_id)
        if chair is None or not chair.active:
            raise NotFoundError("That chair does not exist or is no longer in use.")
        if chair.id == row.chair_id:
            raise ValidationError({"chair_id": "The session is already in that chair."})
        if chair.site_id != w.site_id:
            raise ValidationError({"chair_id": f"{chair.name} is at another site; pick a chair at this one."})
        if row.status in ACTIVE_STATUSES and chair.kind == "chair" and chair.id in _occupied(s, row.id):
            raise ConflictError(f"{chair.name} has an active session now; pick a free chair.")
        clashes = _clashes(s, row, chair.id, w.site_id)
        if clashes and not confirmed(clashes, confirm_shared_chair):
            raise ConfirmationRequired(clashes, lead="Check the chair")
        old = row.chair_id
        row.chair_id = chair.id
        row.at_home = chair.kind == "home"
        s.flush()
        record(
            s,
            actor,
            "move_chair",
            "session",
            row.id,
            session_id=row.id,
            patient_id=row.patient_id,
            before={"chair_id": old},
            after={"chair_id": chair.id},
            reason="; ".join(x for x in (note, "chair shared, confirmed: " + " ".join(clashes) if clashes else "") if x)
            or None,
        )
        log.info("move session=%s chair %s -> %s by user=%s", row.id, old, chair.id, actor.user_id)
        return row


def _clashes(s: Session, row: InfusionSession, chair_id: int, site_id: int) -> list[str]:
    """Who else holds `chair_id` while `row` would sit in it: the move happens now, so from now (or its
    booked time, if later) for the rest of its planned chair time. A booking whose time has passed is
    planned its whole chair time from now (the patient is late); a patient in the chair past the planned
    time needs the new chair at least now."""
    therapy = s.get(Therapy, row.therapy_id)
    assert therapy is not None  # foreign key
    now = utcnow()
    planned = timedelta(minutes=planned_minutes_of(therapy, row.infusion_number))
    if row.status in ACTIVE_STATUSES:
        since = row.checked_in_at or row.scheduled_at
        start, end = now, max(since + planned, now)
    else:
        start = max(row.scheduled_at, now)
        end = start + planned
    minutes = (end - start).total_seconds() / 60
    return chair_clashes(s, chair_id, start, minutes, clinic_timezone(s, site_id=site_id), now=now, exclude=row.id)
