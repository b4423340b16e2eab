"""Session lifecycle service functions: one transaction each, state-checked and audited.

create → check in (baseline vitals) → proceed | defer → program check,
premedication → IV start → rate changes / pauses → IV stop → observation →
discharge. Vitals, reactions and rate entries are in `infusion.services.entries`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.engine import Database
from db.models import (
    ACTIVE_STATUSES,
    Chair,
    InfusionSession,
    Patient,
    Premedication,
    ProgramCheck,
    RateChange,
    Reaction,
    Therapy,
    VitalSign,
)
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import CHARTING, require_role
from infusion.clinical.catalog import duration_window, observation_minutes
from infusion.clinical.states import require_transition
from infusion.clinical.vitals import VitalsEntry
from infusion.clock import format_local, utcnow
from infusion.errors import ConflictError, NotFoundError, StateError, ValidationError
from infusion.services import setup
from infusion.services.audit import changed, record, snapshot
from infusion.services.entries import insert_vitals, validate_rate
from infusion.services.opening import (
    check_version,
    clinic_context,
    clinical_time,
    lock_session,
    required_text,
    therapy_of,
)
from infusion.settings import ClinicSettings

IV_SITES = (
    "Left antecubital",
    "Right antecubital",
    "Left forearm",
    "Right forearm",
    "Left hand",
    "Right hand",
    "Port",
    "PICC",
    "Other",
)
IV_GAUGES = (14, 16, 18, 20, 22, 24)
MAX_ATTEMPTS = 10  # product choice: clinical.md asks for the count, not a limit


def _audit_change(
    s: Session, actor: Actor, action: str, row: InfusionSession, before: dict, reason: str | None = None
) -> None:
    s.flush()
    old, new = changed(before, snapshot(row))
    new.pop("version", None)
    old.pop("version", None)
    record(
        s,
        actor,
        action,
        "session",
        row.id,
        session_id=row.id,
        patient_id=row.patient_id,
        before=old,
        after=new,
        reason=reason,
    )


def _active_elsewhere(
    s: Session, *, chair_id: int | None = None, patient_id: int | None = None, exclude: int
) -> InfusionSession | None:
    q = select(InfusionSession).where(InfusionSession.status.in_(ACTIVE_STATUSES), InfusionSession.id != exclude)
    if chair_id is not None:
        q = q.where(InfusionSession.chair_id == chair_id)
    if patient_id is not None:
        q = q.where(InfusionSession.patient_id == patient_id)
    return s.scalars(q.limit(1)).first()


def next_infusion_number(s: Session, patient_id: int, therapy_id: int, exclude: int | None = None) -> int:
    """1 + the sessions of this patient and therapy that reached IV start.

    Counted when the session is booked and again at check-in and IV start, so a
    session booked before the previous one was given still gets the right
    first/later-infusion rules.
    """
    q = (
        select(func.count())
        .select_from(InfusionSession)
        .where(
            InfusionSession.patient_id == patient_id,
            InfusionSession.therapy_id == therapy_id,
            InfusionSession.iv_started_at.is_not(None),
        )
    )
    if exclude is not None:
        q = q.where(InfusionSession.id != exclude)
    done = s.scalar(q)
    return int(done or 0) + 1


def create_session(
    db: Database,
    actor: Actor,
    *,
    patient_id: int,
    therapy_id: int,
    chair_id: int,
    dose: float | None = None,
    scheduled_at: datetime | None = None,
    walk_in: bool = True,
) -> InfusionSession:
    """Add a session to the day (a walk-in now, or a scheduled time)."""
    require_role(actor, CHARTING, "chart infusion sessions")
    with db.writing() as s:
        return _insert_session(
            s,
            actor,
            patient_id=patient_id,
            therapy_id=therapy_id,
            chair_id=chair_id,
            dose=dose,
            scheduled_at=scheduled_at,
            walk_in=walk_in,
        )


def create_walk_in(
    db: Database,
    actor: Actor,
    *,
    therapy_id: int,
    chair_id: int,
    dose: float | None = None,
    patient_id: int | None = None,
    new_patient: dict[str, Any] | None = None,
) -> InfusionSession:
    """A walk-in, with a new patient if need be, in one transaction: a refused session stores no patient."""
    require_role(actor, CHARTING, "chart infusion sessions")
    if new_patient is not None:
        setup.check_patient(
            new_patient.get("mrn", ""),
            new_patient.get("given_name", ""),
            new_patient.get("family_name", ""),
            new_patient.get("birth_date"),
        )
    with db.writing() as s:
        if new_patient is not None:
            patient_id = setup.insert_patient(s, actor, **new_patient).id
        if patient_id is None:
            raise ValidationError({"patient": "Pick a patient, or fill in the new patient's details."})
        return _insert_session(
            s,
            actor,
            patient_id=patient_id,
            therapy_id=therapy_id,
            chair_id=chair_id,
            dose=dose,
            scheduled_at=None,
            walk_in=True,
        )


def _insert_session(
    s: Session,
    actor: Actor,
    *,
    patient_id: int,
    therapy_id: int,
    chair_id: int,
    dose: float | None,
    scheduled_at: datetime | None,
    walk_in: bool,
) -> InfusionSession:
    patient, therapy, chair = s.get(Patient, patient_id), s.get(Therapy, therapy_id), s.get(Chair, chair_id)
    problems = {}
    if patient is None:
        problems["patient"] = "Pick a patient."
    if therapy is None or not therapy.active:
        problems["therapy"] = "Pick a therapy from the catalog."
    if chair is None or not chair.active:
        problems["chair"] = "Pick a chair."
    if dose is None and therapy is not None:
        dose = therapy.default_dose
    if dose is None or dose <= 0:
        problems["dose"] = "Enter the dose (a positive number)."
    if problems:
        raise ValidationError(problems)
    assert therapy is not None and patient is not None and chair is not None
    now = utcnow()
    row = InfusionSession(
        patient_id=patient_id,
        therapy_id=therapy_id,
        chair_id=chair_id,
        dose=dose,
        dose_unit=therapy.dose_unit,
        infusion_number=next_infusion_number(s, patient_id, therapy_id),
        status="scheduled",
        walk_in=walk_in,
        at_home=chair.kind == "home",
        scheduled_at=scheduled_at or now,
        created_at=now,
        created_by_id=actor.user_id,
    )
    s.add(row)
    s.flush()
    record(s, actor, "create", "session", row.id, session_id=row.id, patient_id=patient_id, after=snapshot(row))
    return row


def check_in(
    db: Database,
    actor: Actor,
    session_id: int,
    vitals: VitalsEntry,
    *,
    expected_version: int | None,
    at: datetime | None = None,
    acknowledge_flags: bool = False,
    client_token: str | None = None,
) -> InfusionSession:
    """Check the patient in with a full baseline set of vitals."""
    require_role(actor, CHARTING, "chart infusion sessions")
    with db.writing() as s:
        row = lock_session(s, session_id, None)
        if client_token and row.status != "scheduled":
            done = s.scalars(
                select(VitalSign).where(VitalSign.client_token == client_token, VitalSign.session_id == row.id)
            ).first()
            if done is not None:
                return row  # a retried check-in that already went through
        check_version(s, row, expected_version)
        require_transition("check_in", row.status)
        clinic, settings = clinic_context(s)
        moment = clinical_time(at, field="checked_in_at", label="Check-in", settings=settings, tz=clinic.timezone)
        busy_chair = None if row.at_home else _active_elsewhere(s, chair_id=row.chair_id, exclude=row.id)
        if busy_chair is not None:
            raise ConflictError("This chair already has an active session; finish or move it first.")
        busy_patient = _active_elsewhere(s, patient_id=row.patient_id, exclude=row.id)
        if busy_patient is not None:
            raise ConflictError("This patient already has an active session in another chair.")
        before = snapshot(row)
        row.infusion_number = next_infusion_number(s, row.patient_id, row.therapy_id, exclude=row.id)
        row.status = "checked_in"
        row.checked_in_at = moment
        try:
            # the partial unique indexes are the last word when two check-ins race
            insert_vitals(
                s,
                actor,
                row,
                clinic,
                settings,
                vitals,
                taken_at=moment,
                require_core=True,
                acknowledge_flags=acknowledge_flags,
                client_token=client_token,
            )
            _audit_change(s, actor, "check_in", row, before)
        except IntegrityError:
            raise ConflictError("The chair or the patient already has an active session.") from None
        return row


def proceed(
    db: Database,
    actor: Actor,
    session_id: int,
    *,
    expected_version: int | None,
    at: datetime | None = None,
    precondition: Callable[[Session, InfusionSession], None] | None = None,
) -> InfusionSession:
    """Check-in assessment done: the patient is cleared to start.

    `precondition` runs inside the same transaction, after the row is locked (the
    pre-treatment checklist uses it, so no answer can change between check and proceed).
    """
    require_role(actor, CHARTING, "chart infusion sessions")
    with db.writing() as s:
        row = lock_session(s, session_id, expected_version)
        require_transition("proceed", row.status)
        if precondition is not None:
            precondition(s, row)
        clinic, settings = clinic_context(s)
        before = snapshot(row)
        row.ready_at = clinical_time(
            at,
            field="ready_at",
            label="Proceed",
            settings=settings,
            tz=clinic.timezone,
            not_before=[(row.checked_in_at, "check-in")],
        )
        row.status = "ready"
        _audit_change(s, actor, "proceed", row, before)
        return row


def defer(
    db: Database,
    actor: Actor,
    session_id: int,
    reason: str,
    *,
    expected_version: int | None,
    at: datetime | None = None,
) -> InfusionSession:
    """Do not infuse today (fever, active infection…): kept with its reason, never deleted."""
    require_role(actor, CHARTING, "chart infusion sessions")
    reason = required_text(reason, "deferral_reason", "Say why the session is deferred (e.g. fever, active infection).")
    with db.writing() as s:
        row = lock_session(s, session_id, expected_version)
        require_transition("defer", row.status)
        clinic, settings = clinic_context(s)
        before = snapshot(row)
        row.closed_at = clinical_time(
            at,
            field="closed_at",
            label="Deferral",
            settings=settings,
            tz=clinic.timezone,
            not_before=[(row.checked_in_at, "check-in")],
        )
        row.status = "deferred"
        row.deferral_reason = reason
        summarise_durations(s, row, settings)
        _audit_change(s, actor, "defer", row, before, reason=reason)
        return row


def cancel(
    db: Database, actor: Actor, session_id: int, reason: str, *, expected_version: int | None
) -> InfusionSession:
    require_role(actor, CHARTING, "chart infusion sessions")
    reason = required_text(reason, "cancel_reason", "Say why the session is cancelled.")
    with db.writing() as s:
        row = lock_session(s, session_id, expected_version)
        require_transition("cancel", row.status)
        before = snapshot(row)
        row.status, row.cancel_reason, row.closed_at = "cancelled", reason, utcnow()
        _audit_change(s, actor, "cancel", row, before, reason=reason)
        return row


def confirm_program(
    db: Database,
    actor: Actor,
    session_id: int,
    *,
    authorization_ref: str | None = None,
    expected_version: int | None = None,
) -> ProgramCheck:
    """Record that the therapy's program checklist (TOUCH, Lemtrada REMS) was completed."""
    require_role(actor, CHARTING, "chart infusion sessions")
    with db.writing() as s:
        row = lock_session(s, session_id, expected_version)
        therapy = therapy_of(s, row)
        if not therapy.program:
            raise StateError(f"{therapy.name} has no program checklist.")
        if row.status not in ("checked_in", "ready"):
            raise StateError("Confirm the program checklist after check-in and before the IV starts.")
        existing = s.scalars(
            select(ProgramCheck).where(ProgramCheck.session_id == row.id, ProgramCheck.program == therapy.program)
        ).first()
        if existing is not None:
            return existing
        check = ProgramCheck(
            session_id=row.id,
            program=therapy.program,
            authorization_ref=(authorization_ref or "").strip() or None,
            confirmed_at=utcnow(),
            confirmed_by_id=actor.user_id,
        )
        s.add(check)
        s.flush()
        record(
            s,
            actor,
            "confirm_program",
            "program_check",
            check.id,
            session_id=row.id,
            patient_id=row.patient_id,
            after=snapshot(check),
        )
        return check


def start_iv(
    db: Database,
    actor: Actor,
    session_id: int,
    *,
    expected_version: int | None,
    site: str,
    gauge: int,
    attempts: int,
    lot_number: str,
    rate_ml_h: float,
    at: datetime | None = None,
    premed_skip_reason: str | None = None,
) -> InfusionSession:
    """IV placed and infusion running. Requires the program check and premedication where the therapy does."""
    require_role(actor, CHARTING, "chart infusion sessions")
    problems: dict[str, str] = {}
    if site not in IV_SITES:
        problems["iv_site"] = "Pick the IV site."
    if gauge not in IV_GAUGES:
        problems["iv_gauge"] = f"Catheter gauge must be one of {', '.join(map(str, IV_GAUGES))}."
    if not isinstance(attempts, int) or not 1 <= attempts <= MAX_ATTEMPTS:
        problems["iv_attempts"] = f"Attempts must be a whole number from 1 to {MAX_ATTEMPTS}."
    if not (lot_number or "").strip():
        problems["lot_number"] = "Enter the product lot number from the bag label."
    rate_problem = validate_rate(rate_ml_h)
    if rate_problem:
        problems["rate_ml_h"] = rate_problem
    if problems:
        raise ValidationError(problems)
    with db.writing() as s:
        row = lock_session(s, session_id, expected_version)
        require_transition("start_iv", row.status)
        clinic, settings = clinic_context(s)
        therapy = therapy_of(s, row)
        moment = clinical_time(
            at,
            field="iv_started_at",
            label="IV start",
            settings=settings,
            tz=clinic.timezone,
            not_before=[(row.checked_in_at, "check-in")],
        )
        if therapy.program and s.scalars(select(ProgramCheck).where(ProgramCheck.session_id == row.id)).first() is None:
            raise StateError(
                f"Confirm the {therapy.program} checklist before starting {therapy.brand or therapy.name}."
            )
        if therapy.premedication_required:
            premeds = s.scalar(
                select(func.count())
                .select_from(Premedication)
                .where(Premedication.session_id == row.id, Premedication.status == "active")
            )
            if not premeds and not (premed_skip_reason or "").strip():
                raise ValidationError(
                    {
                        "premedication": (
                            f"{therapy.brand or therapy.name} calls for premedication ({therapy.premedication_text}). "
                            "Record it, or give the reason it was not given."
                        )
                    }
                )
        before = snapshot(row)
        row.status = "infusing"
        row.iv_started_at = moment
        row.infusion_number = next_infusion_number(s, row.patient_id, row.therapy_id, exclude=row.id)
        row.iv_site, row.iv_gauge, row.iv_attempts = site, gauge, attempts
        row.lot_number = lot_number.strip()
        row.current_rate_ml_h = float(rate_ml_h)
        if premed_skip_reason and premed_skip_reason.strip():
            row.premed_override_reason = premed_skip_reason.strip()
        s.add(
            RateChange(
                session_id=row.id,
                at=moment,
                kind="start",
                rate_ml_h=float(rate_ml_h),
                entered_at=utcnow(),
                entered_by_id=actor.user_id,
            )
        )
        _audit_change(s, actor, "start_iv", row, before)
        return row


def stop_iv(
    db: Database, actor: Actor, session_id: int, *, expected_version: int | None, at: datetime | None = None
) -> InfusionSession:
    """Infusion finished: observation begins. Over 12 h is refused; outside the label window is flagged."""
    require_role(actor, CHARTING, "chart infusion sessions")
    with db.writing() as s:
        row = lock_session(s, session_id, expected_version)
        require_transition("stop_iv", row.status)
        clinic, settings = clinic_context(s)
        last_rate = s.scalar(
            select(func.max(RateChange.at)).where(
                RateChange.session_id == row.id, RateChange.status == "active", RateChange.kind != "start"
            )
        )
        moment = clinical_time(
            at,
            field="iv_stopped_at",
            label="IV stop",
            settings=settings,
            tz=clinic.timezone,
            not_before=[(row.iv_started_at, "IV start"), (last_rate, "the last rate entry")],
        )
        assert row.iv_started_at is not None
        if moment <= row.iv_started_at:
            raise ValidationError({"iv_stopped_at": "IV stop must be after IV start."})
        minutes = (moment - row.iv_started_at).total_seconds() / 60
        if minutes > settings.max_infusion_hours * 60:
            raise ValidationError(
                {
                    "iv_stopped_at": (
                        f"An infusion of {minutes / 60:.1f} h is longer than the {settings.max_infusion_hours:g} h limit; "
                        "check the IV start and stop times."
                    )
                }
            )
        before = snapshot(row)
        row.status = "observation"
        row.iv_stopped_at = moment
        summarise_durations(s, row, settings)
        row.current_rate_ml_h = 0.0
        s.add(
            RateChange(
                session_id=row.id,
                at=moment,
                kind="stop",
                rate_ml_h=0.0,
                entered_at=utcnow(),
                entered_by_id=actor.user_id,
            )
        )
        _audit_change(s, actor, "stop_iv", row, before)
        return row


def observation_end(s: Session, row: InfusionSession) -> datetime | None:
    if row.iv_stopped_at is None:
        return None
    minutes = observation_minutes(therapy_of(s, row).observation_rules, row.infusion_number) or 0
    return row.iv_stopped_at + timedelta(minutes=minutes)


def summarise_durations(s: Session, row: InfusionSession, settings: ClinicSettings) -> None:
    """Keep the duration summaries (infusion and chair minutes, past-window flag) in step with the
    session times: after IV stop, discharge or deferral, and after a time correction."""
    if row.iv_started_at and row.iv_stopped_at:
        minutes = (row.iv_stopped_at - row.iv_started_at).total_seconds() / 60
        window = duration_window(therapy_of(s, row).duration_windows, row.infusion_number)
        row.infusion_minutes = round(minutes, 1)
        row.long_infusion_flag = (
            window.max_minutes is not None and minutes > window.max_minutes + settings.window_tolerance_minutes
        )
    end = row.discharged_at or row.closed_at
    if row.checked_in_at and end:
        row.chair_minutes = round((end - row.checked_in_at).total_seconds() / 60, 1)


def discharge(
    db: Database,
    actor: Actor,
    session_id: int,
    *,
    expected_version: int | None,
    at: datetime | None = None,
    early_reason: str | None = None,
) -> InfusionSession:
    """Patient leaves. Before the observation period has passed a reason is required."""
    require_role(actor, CHARTING, "chart infusion sessions")
    with db.writing() as s:
        row = lock_session(s, session_id, expected_version)
        require_transition("discharge", row.status)
        clinic, settings = clinic_context(s)
        last_vitals = s.scalar(
            select(func.max(VitalSign.taken_at)).where(VitalSign.session_id == row.id, VitalSign.status == "active")
        )
        moment = clinical_time(
            at,
            field="discharged_at",
            label="Discharge",
            settings=settings,
            tz=clinic.timezone,
            not_before=[(row.iv_stopped_at, "IV stop"), (last_vitals, "the last vitals")],
        )
        open_reactions = s.scalar(
            select(func.count())
            .select_from(Reaction)
            .where(Reaction.session_id == row.id, Reaction.status == "active", Reaction.resolved_at.is_(None))
        )
        if open_reactions:
            raise StateError("A reaction is still open: record its resolution time before discharge.")
        ends = observation_end(s, row)
        before = snapshot(row)
        if ends is not None and moment < ends:
            reason = (early_reason or "").strip()
            if not reason:
                raise ValidationError(
                    {
                        "early_discharge_reason": (
                            f"Observation runs until {format_local(ends, clinic.timezone)}; "
                            "give a reason to discharge early."
                        )
                    }
                )
            row.early_discharge_reason = reason
        row.status = "discharged"
        row.discharged_at = moment
        summarise_durations(s, row, settings)
        _audit_change(s, actor, "discharge", row, before, reason=row.early_discharge_reason)
        return row


def get_session(db: Database, session_id: int) -> InfusionSession:
    with db.reading() as s:
        row = s.get(InfusionSession, session_id)
    if row is None:
        raise NotFoundError(f"Session {session_id} not found.")
    return row
