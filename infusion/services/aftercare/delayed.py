"""Delayed reactions: found at the follow-up call, stored as reactions with `delayed=True`."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.engine import Database
from db.models import Reaction
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import CORRECT_OTHERS
from infusion.clinical.reactions import ACTIONS
from infusion.clinical.states import EntryStatus, SessionStatus
from infusion.errors import (
    ConfirmationRequired,
    NotFoundError,
    PermissionDenied,
    StateError,
    ValidationError,
)
from infusion.services.audit import record, snapshot
from infusion.services.entries import _existing, _validate_reaction, new_reaction
from infusion.services.opening import (
    charting,
    clinical_time,
    set_summaries,
)

log = logging.getLogger(__name__)


LABEL_WINDOW_HOURS = 24  # docs/clinical-basis.md §11: IRRs can occur up to 24 h after an infusion
ACCEPT_WINDOW_HOURS = (
    72  # product choice: a call after a weekend; no source gives a window beyond 24 h (docs/clinical-basis.md §10)
)
DELAYED_ACTIONS = {k: ACTIONS[k] for k in ("observed", "medication_given")}


def record_delayed_reaction(
    db: Database,
    actor: Actor,
    session_id: int,
    symptoms: list[str],
    grade: int,
    actions: list[str],
    onset_at: datetime,
    note: str | None = None,
    *,
    other_text: str | None = None,
    medication_given: str | None = None,
    resolved_at: datetime | None = None,
    provider_notified: bool = False,
    provider_name: str | None = None,
    confirm_beyond_24h: bool = False,
    client_token: str | None = None,
) -> Reaction:
    """A reaction the patient reports after discharge (usually at the next-day call), stored with `delayed=True`."""
    opening = charting(db, actor, session_id)
    problems = _validate_reaction(symptoms, other_text, grade, actions, medication_given)
    in_chair = [a for a in actions if a in ACTIONS and a not in DELAYED_ACTIONS]
    if in_chair and "actions" not in problems:
        problems["actions"] = (
            f"{', '.join(ACTIONS[a] for a in in_chair)}: the infusion was already over. "
            "Choose 'Observed only' or 'Medication given', and write the advice in the note."
        )
    if provider_notified and not (provider_name or "").strip():
        problems["provider_name"] = "Name the provider who was notified."
    if onset_at is None:
        problems["onset_at"] = "Enter when the symptoms started."
    if problems:
        raise ValidationError(problems)
    with opening as w:
        s, row = w.s, w.row
        existing = _existing(s, Reaction, client_token, row.id)
        if existing is not None:
            return existing
        if row.status != SessionStatus.DISCHARGED or row.discharged_at is None:
            raise StateError("A delayed reaction is recorded after discharge; during the visit use Reaction.")
        settings, tz = w.settings, w.tz
        onset = clinical_time(
            onset_at,
            field="onset_at",
            label="Reaction onset",
            settings=settings,
            tz=tz,
            not_before=[(row.discharged_at, "discharge")],
        )
        hours = (onset - row.discharged_at).total_seconds() / 3600
        if hours > ACCEPT_WINDOW_HOURS:
            raise ValidationError(
                {
                    "onset_at": (
                        f"Onset {hours:.0f} h after discharge is past the {ACCEPT_WINDOW_HOURS} h this record accepts; "
                        "report it to the prescriber as an adverse event and add an addendum."
                    )
                }
            )
        if hours > LABEL_WINDOW_HOURS and not confirm_beyond_24h:
            raise ConfirmationRequired(
                [
                    f"Onset {hours:.0f} h after discharge: later than the 24 h in which infusion reactions are "
                    "described. It will count in the reaction rate, not in 'within 24 h after'."
                ]
            )
        if resolved_at is not None:
            clinical_time(
                resolved_at,
                field="resolved_at",
                label="Resolution",
                settings=settings,
                tz=tz,
                not_before=[(onset, "the onset")],
            )
        reaction = new_reaction(
            row.id,
            actor,
            onset=onset,
            symptoms=symptoms,
            grade=grade,
            actions=actions,
            other_text=other_text,
            medication_given=medication_given,
            resolved_at=resolved_at,
            provider_notified=provider_notified,
            provider_name=provider_name,
            note=note,
            delayed=True,
            client_token=client_token,
        )
        s.add(reaction)
        s.flush()
        set_summaries(  # an appended entry does not bump the session's version
            s, row, reaction_count=(row.reaction_count or 0) + 1, worst_grade=max(row.worst_grade or 0, grade)
        )
        reason = f"onset {hours:.1f} h after discharge" + (
            " (beyond 24 h, confirmed)" if hours > LABEL_WINDOW_HOURS else ""
        )
        record(
            s,
            actor,
            "record_delayed_reaction",
            "reaction",
            reaction.id,
            session_id=row.id,
            patient_id=row.patient_id,
            after=snapshot(reaction),
            reason=reason,
        )
        log.info("record_delayed_reaction session=%s reaction=%s by user=%s", row.id, reaction.id, actor.user_id)
        return reaction


def withdraw_delayed_reaction(db: Database, actor: Actor, reaction_id: int, reason: str) -> Reaction:
    """Mark a delayed reaction entered in error (wrong patient, duplicate call).

    `corrections.mark_entered_in_error` refuses every entry of a discharged
    session (addendum only), and a delayed reaction only exists on discharged
    sessions; without this a mistaken report would count in the rates for
    ever. The row stays, marked, with who, when and why.
    """
    opening = charting(db, actor, lambda s: _delayed_reaction(s, reaction_id).session_id, what="correct the record")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the reaction is withdrawn (e.g. 'wrong patient')."})
    with opening as w:
        s, row = w.s, w.row
        reaction = _delayed_reaction(s, reaction_id)  # read before the lock; the same object
        if reaction.status != EntryStatus.ACTIVE:
            raise StateError(f"This reaction is already {reaction.status.replace('_', ' ')}.")
        if actor.role not in CORRECT_OTHERS and (
            reaction.entered_by_id is None or reaction.entered_by_id != actor.user_id
        ):
            raise PermissionDenied("Only the person who recorded it, or a charge nurse, may withdraw it.")
        reaction.status, reaction.correction_reason = EntryStatus.ENTERED_IN_ERROR, reason
        s.flush()
        grades = list(
            s.scalars(
                select(Reaction.grade).where(Reaction.session_id == row.id, Reaction.status == EntryStatus.ACTIVE)
            )
        )
        set_summaries(s, row, reaction_count=len(grades), worst_grade=max(grades) if grades else None)
        record(
            s,
            actor,
            "entered_in_error",
            "reaction",
            reaction.id,
            session_id=row.id,
            patient_id=row.patient_id,
            before={"status": EntryStatus.ACTIVE},
            after={"status": EntryStatus.ENTERED_IN_ERROR},
            reason=reason,
        )
        log.info("withdraw_delayed_reaction session=%s reaction=%s by user=%s", row.id, reaction.id, actor.user_id)
        return reaction


def _delayed_reaction(s: Session, reaction_id: int) -> Reaction:
    reaction = s.get(Reaction, reaction_id)
    if reaction is None or not reaction.delayed:
        raise NotFoundError(f"Delayed reaction {reaction_id} not found.")
    return reaction
