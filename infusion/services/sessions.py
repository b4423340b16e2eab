"""Session lifecycle service functions: one transaction each, state-checked and audited.

create → check in (baseline vitals) → proceed | defer → program check,
premedication → IV start → rate changes / pauses → IV stop → observation →
discharge. Vitals, reactions and rate entries are in `infusion.services.entries`.
Kept in one module (over 400 lines) because it is the state machine's write side: each
transition's checks read the same helpers, and splitting them would scatter one lifecycle.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.engine import Database
from db.models import (
    AuditEvent,
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
from infusion.accounts.sites import require_site, site_of_session
from infusion.clinical.catalog import duration_window, observation_minutes, premedication_due
from infusion.clinical.regimen import INITIAL_DOSES
from infusion.clinical.states import ACTIVE_STATUSES, EntryStatus, SessionStatus
from infusion.clinical.vitals import VitalsEntry
from infusion.clock import format_local, utcnow
from infusion.errors import ConflictError, NotFoundError, StateError, ValidationError
from infusion.reads.due import next_in, next_infusion_number
from infusion.services import integrity, setup
from infusion.services.audit import changed, record, snapshot
from infusion.services.entries import (
    VitalsAssessment,
    check_label_ceiling,
    insert_vitals,
    preview_vitals,
    validate_rate,
)
from infusion.services.opening import (
    administering,
    charting,
    clinic_context,
    clinical_time,
    optional_text,
    record_id,
    required_text,
    texts,
    therapy_of,
)
from infusion.services.opening import client_token as clean_token
from infusion.settings import ClinicSettings

log = logging.getLogger(__name__)

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
MAX_ATTEMPTS = 10  # product choice: INS asks for the count of attempts, not a limit (docs/clinical-basis.md §10)
#: doses within this of the expected one count as the same (float input from a number field)
DOSE_TOLERANCE = 1e-6


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


def on_patient_scale(s: Session, patient_id: int, entry: VitalsEntry) -> VitalsEntry:
    """The typed vitals with the patient's NEWS2 SpO2 scale, set by a clinician (RCP Chart 1 Scale 2 for
    hypercapnic respiratory failure; docs/clinical-basis.md §5): NEWS2 and the SpO2 flag use it."""
    scale = s.scalar(select(Patient.news2_spo2_scale).where(Patient.id == patient_id)) or 1
    return dataclasses.replace(entry, spo2_scale=int(scale))


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
    dose_reason: str | None = None,
    client_token: str | None = None,
) -> InfusionSession:
    """Add a session to the day (a walk-in now, or a scheduled time). A retried request with the same
    `client_token` returns the session it booked (a double tap books once).

    Without a dose it takes the one the patient's regimen expects (`reads.due.next_in`: Ocrevus 300 mg
    for infusions 1–2, Briumvi 150 mg for infusion 1). A different dose on a loading infusion needs
    `dose_reason` (docs/clinical-basis.md §1)."""
    token = clean_token(client_token)
    with administering(db, actor, CHARTING, "chart infusion sessions") as s:
        return booked_by_token(s, token, chair_id) or _insert_session(
            s,
            actor,
            patient_id=patient_id,
            therapy_id=therapy_id,
            chair_id=chair_id,
            dose=dose,
            scheduled_at=scheduled_at,
            walk_in=walk_in,
            dose_reason=dose_reason,
            client_token=token,
        )


#: how far back a retried booking's token is looked for (a double tap, a reload, a retry after "busy")
TOKEN_WINDOW = timedelta(days=1)


def booked_by_token(s: Session, token: str | None, chair_id: int) -> InfusionSession | None:
    """The session a booking with this `client_token` already created, if any.

    The chair row is locked first (SELECT … FOR UPDATE; BEGIN IMMEDIATE holds SQLite's lock already),
    so two taps of the same request, which name the same chair, run one after the other and the
    second finds the first. The token is kept in the create audit event (`after.client_token`)."""
    if token is None:
        return None
    chair_id = record_id(chair_id, "chair")
    s.scalars(select(Chair.id).where(Chair.id == chair_id).with_for_update()).first()
    session_id = s.scalar(
        select(AuditEvent.entity_id)
        .where(
            AuditEvent.action == "create",
            AuditEvent.entity == "session",
            AuditEvent.at >= utcnow() - TOKEN_WINDOW,
            AuditEvent.after["client_token"].as_string() == token,
        )
        .order_by(AuditEvent.id)
        .limit(1)
    )
    return s.get(InfusionSession, session_id) if session_id is not None else None


def create_walk_in(
    db: Database,
    actor: Actor,
    *,
    therapy_id: int,
    chair_id: int,
    dose: float | None = None,
    patient_id: int | None = None,
    new_patient: dict[str, Any] | None = None,
    dose_reason: str | None = None,
    client_token: str | None = None,
) -> InfusionSession:
    """A walk-in, with a new patient if need be, in one transaction: a refused session stores no patient.
    The dose rule is `create_session`'s; a retried request with the same `client_token` returns the
    walk-in it booked (and adds no second patient)."""
    require_role(actor, CHARTING, "chart infusion sessions")
    token = clean_token(client_token)
    if new_patient is not None and not isinstance(new_patient, dict):
        raise ValidationError({"patient": "Fill in the new patient's details."})
    if new_patient is not None:
        setup.check_patient(
            new_patient.get("mrn", ""),
            new_patient.get("given_name", ""),
            new_patient.get("family_name", ""),
            new_patient.get("birth_date"),
        )
    with administering(db, actor, CHARTING, "chart infusion sessions") as s:
        replay = booked_by_token(s, token, chair_id)
        if replay is not None:
            return replay
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
            dose_reason=dose_reason,
            client_token=token,
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
    dose_reason: str | None = None,
    client_token: str | None = None,
) -> InfusionSession:
    patient_id, therapy_id = record_id(patient_id, "patient"), record_id(therapy_id, "therapy")
    chair_id = record_id(chair_id, "chair")
    if dose is not None and (isinstance(dose, bool) or not isinstance(dose, (int, float)) or not math.isfinite(dose)):
        raise ValidationError({"dose": "Enter the dose (a positive number)."})
    dose_reason = optional_text(dose_reason, "dose_reason") or None
    if scheduled_at is not None and integrity.time_problem(scheduled_at):
        raise ValidationError({"scheduled_at": f"Booking: {integrity.time_problem(scheduled_at)}."})
    patient, therapy, chair = s.get(Patient, patient_id), s.get(Therapy, therapy_id), s.get(Chair, chair_id)
    problems = {}
    if patient is None:
        problems["patient"] = "Pick a patient."
    if therapy is None or not therapy.active:
        problems["therapy"] = "Pick a therapy from the catalog."
    if chair is None or not chair.active:
        problems["chair"] = "Pick a chair."
    else:
        require_site(s, actor, chair.site_id, "book sessions")
    now = utcnow()
    nxt = next_in(s, patient_id, therapy_id, scheduled_at or now) if therapy is not None and patient else None
    expected = nxt.expected_dose if nxt is not None else None
    if dose is None:
        dose = expected
    reason = (dose_reason or "").strip() or None
    if dose is None or dose <= 0:
        problems["dose"] = "Enter the dose (a positive number)."
    elif (
        nxt is not None
        and expected is not None
        and therapy is not None
        and therapy.code in INITIAL_DOSES
        and abs(dose - expected) > DOSE_TOLERANCE
        and reason is None
    ):
        problems["dose_reason"] = (
            f"{nxt.label} expects {expected:g} {nxt.dose_unit} (label loading dose); "
            f"give a reason for {dose:g} {nxt.dose_unit}."
        )
    if problems:
        raise ValidationError(problems)
    assert therapy is not None and patient is not None and chair is not None and nxt is not None
    row = InfusionSession(
        patient_id=patient_id,
        therapy_id=therapy_id,
        chair_id=chair_id,
        dose=dose,
        dose_unit=therapy.dose_unit,
        dose_reason=reason if expected is None or abs(float(dose or 0) - expected) > DOSE_TOLERANCE else None,
        course_number=nxt.course_number,
        course_day=nxt.course_day,
        infusion_number=nxt.infusion_number,
        status=SessionStatus.SCHEDULED,
        walk_in=walk_in,
        at_home=chair.kind == "home",
        scheduled_at=scheduled_at or now,
        created_at=now,
        created_by_id=actor.user_id,
    )
    s.add(row)
    s.flush()
    after = snapshot(row) | ({"client_token": client_token} if client_token else {})
    record(s, actor, "create", "session", row.id, session_id=row.id, patient_id=patient_id, after=after)
    log.info("create session=%s therapy=%s chair=%s by user=%s", row.id, therapy_id, chair_id, actor.user_id)
    return row


def _check_in_allowed(
    s: Session, row: InfusionSession, at: datetime | None, settings: ClinicSettings, tz: str
) -> datetime:
    """The check-in time, or why there can be no check-in now (a time ahead, the chair or the patient busy)."""
    moment = clinical_time(at, field="checked_in_at", label="Check-in", settings=settings, tz=tz)
    busy_chair = None if row.at_home else _active_elsewhere(s, chair_id=row.chair_id, exclude=row.id)
    if busy_chair is not None:
        raise ConflictError("This chair already has an active session; finish or move it first.")
    busy_patient = _active_elsewhere(s, patient_id=row.patient_id, exclude=row.id)
    if busy_patient is not None:
        raise ConflictError("This patient already has an active session in another chair.")
    return moment


def preview_check_in(
    db: Database, actor: Actor, session_id: int, vitals: VitalsEntry, at: datetime | None
) -> VitalsAssessment:
    """What a check-in would record, and first what would refuse it whatever the values (a time ahead, the
    chair or the patient busy): at the first tap, not after the nurse has confirmed abnormal values."""
    require_role(actor, CHARTING, "check patients in")
    with db.reading() as s:
        row = s.get(InfusionSession, session_id)
        if row is not None:
            require_site(s, actor, site_of_session(s, row), "check patients in")
            clinic, settings = clinic_context(s, site_of_session(s, row))
            _check_in_allowed(s, row, at, settings, clinic.timezone)
    return preview_vitals(db, actor, session_id, vitals, require_core=True)


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

    def already_checked_in(s: Session, row: InfusionSession) -> VitalSign | None:
        if not client_token or row.status == SessionStatus.SCHEDULED:
            return None
        return s.scalars(
            select(VitalSign).where(VitalSign.client_token == client_token, VitalSign.session_id == row.id)
        ).first()

    with charting(db, actor, session_id, expected_version, replayed=already_checked_in) as w:
        s, row = w.s, w.row
        if w.replay is not None:
            return row  # a retried check-in that already went through
        status = w.transition("check_in")
        clinic, settings = w.clinic, w.settings
        moment = _check_in_allowed(s, row, at, settings, w.tz)
        before = snapshot(row)
        row.infusion_number = next_infusion_number(s, row.patient_id, row.therapy_id, exclude=row.id)
        row.status = status
        row.checked_in_at = moment
        try:
            # the partial unique indexes are the last word when two check-ins race
            insert_vitals(
                s,
                actor,
                row,
                clinic,
                settings,
                on_patient_scale(s, row.patient_id, vitals),
                taken_at=moment,
                require_core=True,
                acknowledge_flags=acknowledge_flags,
                client_token=client_token,
            )
            _audit_change(s, actor, "check_in", row, before)
        except IntegrityError:
            raise ConflictError("The chair or the patient already has an active session.") from None
        log.info("check_in session=%s by user=%s", row.id, actor.user_id)
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
    with charting(db, actor, session_id, expected_version) as w:
        s, row = w.s, w.row
        status = w.transition("proceed")
        if precondition is not None:
            precondition(s, row)
        before = snapshot(row)
        row.ready_at = clinical_time(
            at,
            field="ready_at",
            label="Proceed",
            settings=w.settings,
            tz=w.tz,
            not_before=[(row.checked_in_at, "check-in")],
        )
        row.status = status
        _audit_change(s, actor, "proceed", row, before)
        log.info("proceed session=%s by user=%s", row.id, actor.user_id)
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
    opening = charting(db, actor, session_id, expected_version)
    reason = required_text(reason, "deferral_reason", "Say why the session is deferred (e.g. fever, active infection).")
    with opening as w:
        s, row = w.s, w.row
        status = w.transition("defer")
        settings = w.settings
        before = snapshot(row)
        row.closed_at = clinical_time(
            at,
            field="closed_at",
            label="Deferral",
            settings=settings,
            tz=w.tz,
            not_before=[(row.checked_in_at, "check-in")],
        )
        row.status = status
        row.deferral_reason = reason
        summarise_durations(s, row, settings)
        _audit_change(s, actor, "defer", row, before, reason=reason)
        log.info("defer session=%s by user=%s", row.id, actor.user_id)
        return row


def cancel(
    db: Database, actor: Actor, session_id: int, reason: str, *, expected_version: int | None
) -> InfusionSession:
    opening = charting(db, actor, session_id, expected_version)
    reason = required_text(reason, "cancel_reason", "Say why the session is cancelled.")
    with opening as w:
        row = w.row
        status = w.transition("cancel")
        before = snapshot(row)
        row.status, row.cancel_reason, row.closed_at = status, reason, utcnow()
        _audit_change(w.s, actor, "cancel", row, before, reason=reason)
        log.info("cancel session=%s by user=%s", row.id, actor.user_id)
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
    with charting(db, actor, session_id, expected_version) as w:
        s, row = w.s, w.row
        therapy = therapy_of(s, row)
        if not therapy.program:
            raise StateError(f"{therapy.name} has no program checklist.")
        if row.status not in (SessionStatus.CHECKED_IN, SessionStatus.READY):
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
        log.info("confirm_program session=%s program=%s by user=%s", row.id, therapy.program, actor.user_id)
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
    confirm_above_label: bool | str | None = False,
) -> InfusionSession:
    """IV placed and infusion running. Requires the program check and premedication where the therapy does.
    A rate above the label's ceiling for this infusion is refused until confirmed (`entries.above_label`)."""
    opening = charting(db, actor, session_id, expected_version)
    text, problems = texts(lot_number=lot_number, premed_override_reason=premed_skip_reason)
    lot_number, premed_skip_reason = text.get("lot_number", ""), text.get("premed_override_reason", "")
    if site not in IV_SITES:
        problems["iv_site"] = "Pick the IV site."
    if gauge not in IV_GAUGES:
        problems["iv_gauge"] = f"Catheter gauge must be one of {', '.join(map(str, IV_GAUGES))}."
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= MAX_ATTEMPTS:
        problems["iv_attempts"] = f"Attempts must be a whole number from 1 to {MAX_ATTEMPTS}."
    if "lot_number" not in problems and not lot_number:
        problems["lot_number"] = "Enter the product lot number from the bag label."
    rate_problem = validate_rate(rate_ml_h)
    if rate_problem:
        problems["rate_ml_h"] = rate_problem
    if problems:
        raise ValidationError(problems)
    with opening as w:
        s, row = w.s, w.row
        status = w.transition("start_iv")
        therapy = therapy_of(s, row)
        moment = clinical_time(
            at,
            field="iv_started_at",
            label="IV start",
            settings=w.settings,
            tz=w.tz,
            not_before=[(row.checked_in_at, "check-in")],
        )
        if therapy.program and s.scalars(select(ProgramCheck).where(ProgramCheck.session_id == row.id)).first() is None:
            raise StateError(
                f"Confirm the {therapy.program} checklist before starting {therapy.brand or therapy.name}."
            )
        if premedication_due(therapy.code, therapy.premedication_required, row.course_day):
            premeds = s.scalar(
                select(func.count())
                .select_from(Premedication)
                .where(Premedication.session_id == row.id, Premedication.status == EntryStatus.ACTIVE)
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
        number = next_infusion_number(s, row.patient_id, row.therapy_id, exclude=row.id)
        confirmed = check_label_ceiling(s, row, rate_ml_h, number, confirmed=confirm_above_label)
        before = snapshot(row)
        row.status = status
        row.iv_started_at = moment
        row.infusion_number = number
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
        _audit_change(s, actor, "start_iv", row, before, reason=confirmed)
        log.info("start_iv session=%s by user=%s", row.id, actor.user_id)
        return row


def stop_iv(
    db: Database, actor: Actor, session_id: int, *, expected_version: int | None, at: datetime | None = None
) -> InfusionSession:
    """Infusion finished: observation begins. Over 12 h is refused; outside the label window is flagged."""
    with charting(db, actor, session_id, expected_version) as w:
        s, row = w.s, w.row
        status = w.transition("stop_iv")
        settings = w.settings
        last_rate = s.scalar(
            select(func.max(RateChange.at)).where(
                RateChange.session_id == row.id, RateChange.status == EntryStatus.ACTIVE, RateChange.kind != "start"
            )
        )
        moment = clinical_time(
            at,
            field="iv_stopped_at",
            label="IV stop",
            settings=settings,
            tz=w.tz,
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
        row.status = status
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
        log.info("stop_iv session=%s by user=%s", row.id, actor.user_id)
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
    with charting(db, actor, session_id, expected_version) as w:
        s, row = w.s, w.row
        status = w.transition("discharge")
        clinic, settings = w.clinic, w.settings
        last_vitals = s.scalar(
            select(func.max(VitalSign.taken_at)).where(
                VitalSign.session_id == row.id, VitalSign.status == EntryStatus.ACTIVE
            )
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
            .where(Reaction.session_id == row.id, Reaction.status == EntryStatus.ACTIVE, Reaction.resolved_at.is_(None))
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
        row.status = status
        row.discharged_at = moment
        summarise_durations(s, row, settings)
        _audit_change(s, actor, "discharge", row, before, reason=row.early_discharge_reason)
        log.info("discharge session=%s early=%s by user=%s", row.id, bool(row.early_discharge_reason), actor.user_id)
        return row


def get_session(db: Database, session_id: int) -> InfusionSession:
    with db.reading() as s:
        row = s.get(InfusionSession, session_id)
    if row is None:
        raise NotFoundError(f"Session {session_id} not found.")
    return row
