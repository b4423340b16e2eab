"""Corrections, entered-in-error, late entries and addenda (docs/clinical-basis.md §12).

Nothing is overwritten: a correction appends a new row that points at the one it
replaces (`replaces_id`) and marks the old one `corrected`; a mistake is marked
`entered_in_error` with a reason and leaves every view, metric and export while
staying in the record and the audit trail. Session times keep their original
value in `session_correction`. After discharge the record is amended only by
addendum. The author of an entry may correct it; charge nurses (and
administrators) may correct anyone's. One module (over 400 lines): the correction of each
entry kind follows one pattern, and keeping them together keeps that pattern visible.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.engine import Database
from db.models import (
    Addendum,
    AuditEvent,
    InfusionSession,
    Premedication,
    RateChange,
    Reaction,
    SessionCorrection,
    VitalSign,
)
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import CLINICAL_READ, CORRECT_OTHERS, require_role
from infusion.clinical.states import EntryStatus, SessionStatus
from infusion.clinical.vitals import VitalsEntry
from infusion.clock import utcnow
from infusion.errors import NotFoundError, PermissionDenied, StateError, ValidationError
from infusion.services.audit import record, snapshot
from infusion.services.entries import _phase, _validate_reaction, insert_vitals, new_reaction
from infusion.services.opening import SessionRef, charting, clinical_time, required_text, set_summaries
from infusion.services.sessions import summarise_durations

log = logging.getLogger(__name__)

ENTRY_MODELS: dict[str, type] = {
    "vital_sign": VitalSign,
    "reaction": Reaction,
    "premedication": Premedication,
    "rate_change": RateChange,
}
AUTHOR_FIELD = {
    "vital_sign": "entered_by_id",
    "reaction": "entered_by_id",
    "premedication": "entered_by_id",
    "rate_change": "entered_by_id",
}
SESSION_TIME_FIELDS = {"checked_in_at": "check-in", "iv_started_at": "IV start", "iv_stopped_at": "IV stop"}


def _reason(reason: str | None) -> str:
    return required_text(
        reason, "reason", "Say why the entry is corrected (e.g. 'wrong patient', 'typo: 132 not 123')."
    )


AMEND = "correct the record"


def _amending(db: Database, actor: Actor, session: SessionRef, expected_version: int | None = None) -> charting:
    """The opening of a correction: a charting role, then the session row locked (see `opening.charting`)."""
    return charting(db, actor, session, expected_version, what=AMEND)


def _session_of(entity: str, entry_id: int) -> SessionRef:
    """Inside the transaction, before the lock: the (active) entry's session."""
    return lambda s: int(_load_entry(s, entity, entry_id).session_id)


def _may_amend(actor: Actor, row: InfusionSession, author_id: int | None) -> None:
    """After `_amending` checked the role: the record is still open, and this person may change the entry."""
    if row.status == SessionStatus.DISCHARGED:
        raise StateError("This session is discharged: amend it with an addendum instead.")
    if actor.role not in CORRECT_OTHERS and (author_id is None or author_id != actor.user_id):
        raise PermissionDenied("Only the person who made the entry, or a charge nurse, may correct it.")


def _load_entry(s: Session, entity: str, entry_id: int) -> Any:
    model = ENTRY_MODELS.get(entity)
    if model is None:
        raise ValidationError({"entity": f"Unknown entry type {entity!r}."})
    entry = s.get(model, entry_id)
    if entry is None:
        raise NotFoundError(f"{entity.replace('_', ' ').capitalize()} {entry_id} not found.")
    if entry.status != EntryStatus.ACTIVE:
        raise StateError(f"This entry is already {entry.status.replace('_', ' ')}; only the current value can change.")
    return entry


def refresh_summaries(s: Session, row: InfusionSession) -> None:
    """Recompute the per-session summaries from the active entries after a correction."""
    s.flush()
    active_reactions = select(Reaction).where(Reaction.session_id == row.id, Reaction.status == EntryStatus.ACTIVE)
    grades = [r.grade for r in s.scalars(active_reactions)]
    last_vitals_at = s.scalar(
        select(func.max(VitalSign.taken_at)).where(
            VitalSign.session_id == row.id, VitalSign.status == EntryStatus.ACTIVE
        )
    )
    baseline = s.scalars(
        select(VitalSign)
        .where(
            VitalSign.session_id == row.id,
            VitalSign.status == EntryStatus.ACTIVE,
            VitalSign.phase == "pre",
            VitalSign.systolic.is_not(None),
        )
        .order_by(VitalSign.taken_at)
        .limit(1)
    ).first()
    set_summaries(  # summaries: a correction of an entry does not bump the session's version
        s,
        row,
        reaction_count=len(grades),
        worst_grade=max(grades) if grades else None,
        last_vitals_at=last_vitals_at,
        baseline_systolic=baseline.systolic if baseline else None,
    )


def correct_vitals(
    db: Database,
    actor: Actor,
    vital_id: int,
    entry: VitalsEntry,
    *,
    reason: str,
    taken_at: datetime | None = None,
    acknowledge_flags: bool = False,
    client_token: str | None = None,
) -> VitalSign:
    """Replace a set of vitals with corrected values; the original stays, marked corrected."""
    reason = _reason(reason)
    opening = _amending(db, actor, _session_of("vital_sign", vital_id))
    with opening as w:
        s, row = w.s, w.row
        old = _load_entry(s, "vital_sign", vital_id)  # loaded before the lock; the same object
        _may_amend(actor, row, old.entered_by_id)
        moment = clinical_time(
            taken_at or old.taken_at,
            field="taken_at",
            label="Vitals time",
            settings=w.settings,
            tz=w.tz,
            not_before=[(row.checked_in_at, "check-in")],
        )
        original = snapshot(old)
        old.status = EntryStatus.CORRECTED
        refresh_summaries(s, row)
        new = insert_vitals(
            s,
            actor,
            row,
            w.clinic,
            w.settings,
            entry,
            taken_at=moment,
            require_core=old.phase == "pre" and old.taken_at == row.checked_in_at,
            acknowledge_flags=acknowledge_flags,
            client_token=client_token,
            audit_action=None,
        )
        new.replaces_id, new.correction_reason = old.id, reason
        refresh_summaries(s, row)
        _audit_correction(s, actor, "vital_sign", old.id, new, row, original, reason)
        return new


def _audit_correction(
    s: Session, actor: Actor, kind: str, old_id: int, new: Any, row: InfusionSession, original: dict, reason: str
) -> None:
    """The audit event of a correction: the original row before, the new one after, and why."""
    record(
        s,
        actor,
        "correct",
        kind,
        new.id,
        session_id=row.id,
        patient_id=row.patient_id,
        before=original,
        after=snapshot(new),
        reason=reason,
    )
    log.info("correct %s=%s as %s session=%s by user=%s", kind, old_id, new.id, row.id, actor.user_id)


def correct_reaction(
    db: Database,
    actor: Actor,
    reaction_id: int,
    *,
    reason: str,
    symptoms: list[str],
    grade: int,
    actions: list[str],
    onset_at: datetime | None = None,
    other_text: str | None = None,
    medication_given: str | None = None,
    resolved_at: datetime | None = None,
    provider_notified: bool = False,
    provider_name: str | None = None,
    note: str | None = None,
) -> Reaction:
    """Replace a reaction record (grade, symptoms, times…); the original stays, marked corrected."""
    reason = _reason(reason)
    opening = _amending(db, actor, _session_of("reaction", reaction_id))
    problems = _validate_reaction(symptoms, other_text, grade, actions, medication_given)
    if provider_notified and not (provider_name or "").strip():
        problems["provider_name"] = "Name the provider who was notified."
    if problems:
        raise ValidationError(problems)
    with opening as w:
        s, row = w.s, w.row
        old = _load_entry(s, "reaction", reaction_id)
        _may_amend(actor, row, old.entered_by_id)
        settings, tz = w.settings, w.tz
        onset = clinical_time(
            onset_at or old.onset_at,
            field="onset_at",
            label="Reaction onset",
            settings=settings,
            tz=tz,
            not_before=[(row.checked_in_at, "check-in")],
        )
        resolved_at = resolved_at or old.resolved_at  # a resolution recorded meanwhile is kept
        if resolved_at is not None:
            clinical_time(
                resolved_at,
                field="resolved_at",
                label="Resolution",
                settings=settings,
                tz=tz,
                not_before=[(onset, "the onset")],
            )
        original = snapshot(old)
        old.status = EntryStatus.CORRECTED
        new = new_reaction(
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
            replaces_id=old.id,
            correction_reason=reason,
        )
        s.add(new)
        refresh_summaries(s, row)
        _audit_correction(s, actor, "reaction", old.id, new, row, original, reason)
        return new


def correct_premedication(
    db: Database,
    actor: Actor,
    premed_id: int,
    *,
    reason: str,
    drug: str,
    dose: str,
    route: str = "IV",
    given_at: datetime | None = None,
) -> Premedication:
    reason = _reason(reason)
    opening = _amending(db, actor, _session_of("premedication", premed_id))
    drug = required_text(drug, "drug", "Enter the premedication drug.")
    dose = required_text(dose, "dose", "Enter the premedication dose (e.g. 100 mg).")
    if route not in ("IV", "PO", "IM", "SC"):
        raise ValidationError({"route": "Route must be IV, PO, IM or SC."})
    with opening as w:
        s, row = w.s, w.row
        old = _load_entry(s, "premedication", premed_id)
        _may_amend(actor, row, old.entered_by_id)
        moment = clinical_time(
            given_at or old.given_at,
            field="given_at",
            label="Premedication time",
            settings=w.settings,
            tz=w.tz,
            not_before=[(row.checked_in_at, "check-in")],
        )
        original = snapshot(old)
        old.status = EntryStatus.CORRECTED
        new = Premedication(
            session_id=row.id,
            drug=drug,
            dose=dose,
            route=route,
            given_at=moment,
            entered_at=utcnow(),
            entered_by_id=actor.user_id,
            status=EntryStatus.ACTIVE,
            replaces_id=old.id,
            correction_reason=reason,
        )
        s.add(new)
        s.flush()
        _audit_correction(s, actor, "premedication", old.id, new, row, original, reason)
        return new


def mark_entered_in_error(db: Database, actor: Actor, entity: str, entry_id: int, reason: str) -> Any:
    """The entry was a mistake (wrong patient, duplicate): it leaves every view and metric, stays in the record."""
    reason = _reason(reason)
    opening = _amending(db, actor, _session_of(entity, entry_id))
    with opening as w:
        s, row = w.s, w.row
        entry = _load_entry(s, entity, entry_id)
        _may_amend(actor, row, getattr(entry, AUTHOR_FIELD[entity]))
        if entity == "rate_change" and entry.kind in ("start", "stop"):
            raise StateError("The IV start and stop are corrected as session times, not marked in error.")
        if entity == "rate_change" and entry.kind in ("pause", "resume"):
            raise StateError(
                "A pause or resume changes the session's state: record the opposite step "
                "(resume or pause) with a note instead of marking it in error."
            )
        entry.status = EntryStatus.ENTERED_IN_ERROR
        entry.correction_reason = reason
        refresh_summaries(s, row)
        if entity == "rate_change" and row.status == SessionStatus.INFUSING:
            s.flush()
            latest = s.scalars(
                select(RateChange)
                .where(
                    RateChange.session_id == row.id,
                    RateChange.status == EntryStatus.ACTIVE,
                    RateChange.kind.in_(("start", "change", "resume")),
                )
                .order_by(RateChange.at.desc(), RateChange.id.desc())
                .limit(1)
            ).first()
            row.current_rate_ml_h = latest.rate_ml_h if latest else row.current_rate_ml_h
        record(
            s,
            actor,
            "entered_in_error",
            entity,
            entry.id,
            session_id=row.id,
            patient_id=row.patient_id,
            before={"status": EntryStatus.ACTIVE},
            after={"status": EntryStatus.ENTERED_IN_ERROR},
            reason=reason,
        )
        log.info("entered_in_error %s=%s session=%s by user=%s", entity, entry.id, row.id, actor.user_id)
        return entry


def correct_session_time(
    db: Database,
    actor: Actor,
    session_id: int,
    field: str,
    new_value: datetime,
    *,
    reason: str,
    expected_version: int | None,
) -> InfusionSession:
    """Correct check-in, IV start or IV stop; the original value is kept in session_correction."""
    reason = _reason(reason)
    if field not in SESSION_TIME_FIELDS:
        raise ValidationError({"field": f"Only {', '.join(SESSION_TIME_FIELDS.values())} times can be corrected here."})
    opening = _amending(db, actor, session_id, expected_version)
    with opening as w:
        s, row = w.s, w.row
        # the "author" of session times is anyone who charted on this session
        charted = actor.user_id is not None and s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.session_id == row.id,
                AuditEvent.user_id == actor.user_id,
                AuditEvent.action.not_in(("view", "search_audit", "export_fhir")),
            )
        )
        _may_amend(actor, row, actor.user_id if charted else row.created_by_id)
        old_value = getattr(row, field)
        if old_value is None:
            raise StateError(f"There is no {SESSION_TIME_FIELDS[field]} time to correct yet.")
        settings = w.settings
        times = {name: getattr(row, name) for name in ("checked_in_at", "iv_started_at", "iv_stopped_at")}
        times[field] = clinical_time(
            new_value, field=field, label=SESSION_TIME_FIELDS[field].capitalize(), settings=settings, tz=w.tz
        )
        order = [t for t in (times["checked_in_at"], times["iv_started_at"], times["iv_stopped_at"]) if t]
        if order != sorted(order) or (
            times["iv_started_at"] and times["iv_stopped_at"] and times["iv_stopped_at"] <= times["iv_started_at"]
        ):
            raise ValidationError({field: "Times must run check-in ≤ IV start < IV stop."})
        if times["iv_started_at"] and times["iv_stopped_at"]:
            minutes = (times["iv_stopped_at"] - times["iv_started_at"]).total_seconds() / 60
            if minutes > settings.max_infusion_hours * 60:
                raise ValidationError(
                    {field: f"An infusion over {settings.max_infusion_hours:g} h is not possible; check the times."}
                )
        rate_times = s.execute(
            select(func.min(RateChange.at), func.max(RateChange.at)).where(
                RateChange.session_id == row.id,
                RateChange.status == EntryStatus.ACTIVE,
                RateChange.kind.in_(("change", "pause", "resume")),
            )
        ).one()
        if rate_times[0] is not None:
            if times["iv_started_at"] and times["iv_started_at"] > rate_times[0]:
                raise ValidationError({field: "IV start cannot be after a recorded rate change; correct that first."})
            if times["iv_stopped_at"] and times["iv_stopped_at"] < rate_times[1]:
                raise ValidationError({field: "IV stop cannot be before a recorded rate change; correct that first."})
        earliest_entry = s.scalar(
            select(func.min(VitalSign.taken_at)).where(
                VitalSign.session_id == row.id, VitalSign.status == EntryStatus.ACTIVE
            )
        )
        if field == "checked_in_at" and earliest_entry is not None and times[field] > earliest_entry:
            raise ValidationError({field: "Check-in cannot be after the first vitals; correct those first."})
        before = snapshot(row)
        setattr(row, field, times[field])
        _mirror_rate_row(s, actor, row, field, times[field], reason)
        summarise_durations(s, row, settings)
        # phase is derived from the session times, so it follows their correction
        for vital in s.scalars(select(VitalSign).where(VitalSign.session_id == row.id)):
            vital.phase = _phase(row, vital.taken_at)
        s.add(
            SessionCorrection(
                session_id=row.id,
                field=field,
                old_value=old_value.isoformat(),
                new_value=times[field].isoformat(),
                reason=reason,
                corrected_at=utcnow(),
                corrected_by_id=actor.user_id,
            )
        )
        s.flush()
        record(
            s,
            actor,
            "correct_time",
            "session",
            row.id,
            session_id=row.id,
            patient_id=row.patient_id,
            before={field: before[field]},
            after={field: times[field]},
            reason=reason,
        )
        log.info("correct_time %s session=%s by user=%s", field, row.id, actor.user_id)
        return row


def _mirror_rate_row(s: Session, actor: Actor, row: InfusionSession, field: str, value: datetime, reason: str) -> None:
    """IV start/stop also live in the rate log: correct that row the same way (new row, old marked corrected)."""
    kind = {"iv_started_at": "start", "iv_stopped_at": "stop"}.get(field)
    if kind is None:
        return
    old = s.scalars(
        select(RateChange).where(
            RateChange.session_id == row.id, RateChange.kind == kind, RateChange.status == EntryStatus.ACTIVE
        )
    ).first()
    if old is None:
        return
    old.status = EntryStatus.CORRECTED
    s.add(
        RateChange(
            session_id=row.id,
            at=value,
            kind=kind,
            rate_ml_h=old.rate_ml_h,
            note=old.note,
            entered_at=utcnow(),
            entered_by_id=actor.user_id,
            status=EntryStatus.ACTIVE,
            replaces_id=old.id,
            correction_reason=reason,
        )
    )


def add_addendum(db: Database, actor: Actor, session_id: int, text: str) -> Addendum:
    """A dated, signed note added to the record (the only amendment after discharge)."""
    opening = charting(db, actor, session_id, what="add an addendum")
    text = required_text(text, "text", "Write the addendum.")
    with opening as w:
        s, row = w.s, w.row
        addendum = Addendum(session_id=row.id, text=text, written_at=utcnow(), author_id=actor.user_id)
        s.add(addendum)
        s.flush()
        record(
            s,
            actor,
            "addendum",
            "session",
            row.id,
            session_id=row.id,
            patient_id=row.patient_id,
            after={"addendum_id": addendum.id, "text": text},
        )
        log.info("addendum session=%s addendum=%s by user=%s", row.id, addendum.id, actor.user_id)
        return addendum


@dataclass(frozen=True)
class Version:
    id: int
    status: str
    entered_at: datetime
    entered_by_id: int | None
    reason: str | None
    values: dict[str, Any]


def entry_history(db: Database, actor: Actor, entity: str, entry_id: int) -> list[Version]:
    """Every version of an entry, oldest first, following the correction links both ways."""
    require_role(actor, CLINICAL_READ, "see the history of an entry")
    model = ENTRY_MODELS.get(entity)
    if model is None:
        raise ValidationError({"entity": f"Unknown entry type {entity!r}."})
    with db.reading() as s:
        entry = s.get(model, entry_id)
        if entry is None:
            raise NotFoundError(f"{entity} {entry_id} not found.")
        chain = [entry]
        while chain[0].replaces_id is not None:
            chain.insert(0, s.get(model, chain[0].replaces_id))
        while True:
            newer = s.scalars(select(model).where(model.replaces_id == chain[-1].id)).first()
            if newer is None:
                break
            chain.append(newer)
        return [Version(e.id, e.status, e.entered_at, e.entered_by_id, e.correction_reason, snapshot(e)) for e in chain]


def session_amendments(db: Database, actor: Actor, session_id: int) -> tuple[list[SessionCorrection], list[Addendum]]:
    require_role(actor, CLINICAL_READ, "see a session's amendments")
    with db.reading() as s:
        corrections = list(
            s.scalars(
                select(SessionCorrection)
                .where(SessionCorrection.session_id == session_id)
                .order_by(SessionCorrection.corrected_at)
            )
        )
        addenda = list(
            s.scalars(select(Addendum).where(Addendum.session_id == session_id).order_by(Addendum.written_at))
        )
    return corrections, addenda
