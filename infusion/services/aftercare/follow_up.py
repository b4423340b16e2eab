"""The next-day follow-up call: the worklist of yesterday's discharges and the call's outcome."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pandas as pd
from sqlalchemy import func, select

from db.engine import Database
from db.models import AppUser, Chair, FollowUp, InfusionSession, Patient, Reaction, Therapy
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import CHARTING, require_role
from infusion.accounts.sites import working_site
from infusion.clinical.states import EntryStatus, SessionStatus
from infusion.clock import format_local, local_day_bounds, utcnow
from infusion.errors import (
    ConflictError,
    StateError,
    ValidationError,
)
from infusion.reads.trends.filters import _fetch
from infusion.services.audit import changed, record, snapshot
from infusion.services.opening import (
    charting,
    clinic_timezone,
)

log = logging.getLogger(__name__)


OUTCOMES = {"pending": "Not called yet", "reached": "Reached", "not_reached": "Not reached"}
FOLLOW_UP_COLUMNS = (
    "session_id",
    "session_version",
    "follow_up_version",
    "patient",
    "mrn",
    "phone",
    "therapy",
    "infusion_number",
    "discharged_at",
    "discharged",
    "reaction_count",
    "worst_grade",
    "delayed_reactions",
    "outcome",
    "outcome_label",
    "attempts",
    "called_at",
    "called_by",
    "note",
)


def follow_up_worklist(db: Database, actor: Actor, day: date, *, days: int = 1) -> pd.DataFrame:
    """Sessions discharged on the `days` clinic-local days before `day` (default: yesterday), with their call status.

    `follow_up_version` is 0 while nobody has called (no row yet); pass it back
    to `record_follow_up` as `expected_version`.
    """
    require_role(actor, CHARTING, "see the follow-up calls")
    if days < 1:
        raise ValidationError({"days": "Look back at least one day."})
    with db.reading() as s:
        site = working_site(s, actor)  # the calls of the site the nurse works in
        tz = clinic_timezone(s, missing="UTC", site_id=site)
        lo, hi = local_day_bounds(day - timedelta(days=days), tz, day - timedelta(days=1))
        delayed = (
            select(Reaction.session_id.label("sid"), func.count().label("n"))
            .where(Reaction.status == EntryStatus.ACTIVE, Reaction.delayed.is_(True))
            .group_by(Reaction.session_id)
            .subquery("delayed")
        )
        S, F = InfusionSession, FollowUp
        q = (
            select(
                S.id,
                S.version,
                F.version,
                Patient.given_name,
                Patient.family_name,
                Patient.mrn,
                Patient.phone,
                Therapy.name,
                Therapy.brand,
                S.infusion_number,
                S.discharged_at,
                S.reaction_count,
                S.worst_grade,
                func.coalesce(delayed.c.n, 0),
                F.outcome,
                F.attempts,
                F.called_at,
                AppUser.display_name,
                F.note,
            )
            .select_from(S)
            .join(Patient, Patient.id == S.patient_id)
            .join(Therapy, Therapy.id == S.therapy_id)
            .outerjoin(F, F.session_id == S.id)
            .outerjoin(AppUser, AppUser.id == F.called_by_id)
            .outerjoin(delayed, delayed.c.sid == S.id)
            .join(Chair, Chair.id == S.chair_id)
            .where(Chair.site_id == site)
            .where(S.status == SessionStatus.DISCHARGED, S.discharged_at >= lo, S.discharged_at < hi)
            .order_by(S.discharged_at, S.id)
        )
        rows = _fetch(s, q)
    records = []
    for (
        sid,
        sver,
        fver,
        given,
        family,
        mrn,
        phone,
        tname,
        brand,
        number,
        discharged_at,
        count,
        worst,
        n_delayed,
        outcome,
        attempts,
        called_at,
        called_by,
        note,
    ) in rows:
        outcome = outcome or "pending"
        records.append(
            (
                sid,
                sver,
                fver or 0,
                f"{family}, {given}",
                mrn,
                phone or "",
                brand or tname,
                number,
                discharged_at,
                format_local(discharged_at, tz, "%a %d %b %H:%M"),
                count or 0,
                worst,
                int(n_delayed),
                outcome,
                OUTCOMES[outcome],
                attempts or 0,
                called_at,
                called_by or "",
                note or "",
            )
        )
    frame = pd.DataFrame(records, columns=list(FOLLOW_UP_COLUMNS))
    return frame.astype(
        {
            "session_id": "int64",
            "session_version": "int64",
            "follow_up_version": "int64",
            "infusion_number": "int64",
            "reaction_count": "int64",
            "delayed_reactions": "int64",
            "attempts": "int64",
            "worst_grade": "Int64",
        }
    )


def record_follow_up(
    db: Database,
    actor: Actor,
    session_id: int,
    outcome: str,
    note: str | None = None,
    expected_version: int | None = None,
) -> FollowUp:
    """One call attempt: reached or not reached. Attempts add up; each call's note is appended, never replaced.

    `expected_version` is the follow-up version the nurse saw (0 = none yet);
    a call recorded meanwhile by someone else is a ConflictError.
    """
    opening = charting(db, actor, session_id, what="record a follow-up call")
    if outcome not in ("reached", "not_reached"):
        raise ValidationError({"outcome": "Record the call as reached or not reached."})
    note = (note or "").strip()
    with opening as w:  # the session row lock serialises the first call's insert
        s, row = w.s, w.row
        if row.status != SessionStatus.DISCHARGED:
            raise StateError("Follow-up calls are for discharged sessions.")
        clinic = w.clinic
        follow = s.scalars(select(FollowUp).where(FollowUp.session_id == row.id)).first()
        seen = 0 if follow is None else follow.version
        if expected_version is not None and expected_version != seen:
            raise ConflictError(
                "Someone recorded a call for this patient after you opened the list. "
                "Nothing was saved; review the latest status and try again."
            )
        now = utcnow()
        before = snapshot(follow) if follow is not None else {}
        if follow is None:
            follow = FollowUp(session_id=row.id, outcome="pending", attempts=0)
            s.add(follow)
        line = f"{format_local(now, clinic.timezone, '%d %b %H:%M')} {OUTCOMES[outcome].lower()} ({actor.name})"
        line += f": {note}" if note else ""
        follow.outcome, follow.attempts = outcome, (follow.attempts or 0) + 1
        follow.called_at, follow.called_by_id = now, actor.user_id
        follow.note = f"{follow.note}\n{line}" if follow.note else line
        s.flush()
        old, new = changed(before, snapshot(follow))
        record(
            s,
            actor,
            "record_follow_up",
            "follow_up",
            follow.id,
            session_id=row.id,
            patient_id=row.patient_id,
            before=old or None,
            after=new,
        )
        log.info("record_follow_up session=%s outcome=%s by user=%s", row.id, outcome, actor.user_id)
        return follow
