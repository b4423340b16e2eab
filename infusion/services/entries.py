"""Entries within a session: vitals, premedication, rate changes and pauses, reactions.

Entries are appended, never edited in place; `client_token` makes a retried or
double-tapped save idempotent. Each function locks the session row first, so
the summary columns it keeps (last vitals, reaction count, worst grade) stay
consistent with concurrent writers. One module (over 400 lines) because every entry shares
the same idempotency, phase and summary helpers; the vocabulary and rules live in clinical/.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session

from db.engine import Database
from db.models import Clinic, InfusionSession, Patient, Premedication, RateChange, Reaction, VitalSign
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import CHARTING, require_role
from infusion.accounts.sites import require_site, site_of_session
from infusion.clinical import premedication
from infusion.clinical.news2 import News2
from infusion.clinical.reactions import ACTIONS, CTCAE_IRR, SYMPTOMS
from infusion.clinical.states import (
    PREMED_STATUSES,
    REACTION_STATUSES,
    VITALS_STATUSES,
    EntryStatus,
    SessionStatus,
    require_status,
)
from infusion.clinical.titration import RATE_TOLERANCE, label_ceiling
from infusion.clinical.vitals import Flag, Vitals, VitalsEntry, alert_flags, score, validate_vitals
from infusion.clock import utcnow
from infusion.errors import ConfirmationRequired, NotFoundError, StateError, ValidationError
from infusion.services import integrity
from infusion.services.audit import record, snapshot
from infusion.services.opening import (
    TokenReplay,
    charting,
    clinic_context,
    clinical_time,
    refuse_other_session,
    required_text,
    set_summaries,
    texts,
    therapy_of,
)
from infusion.services.opening import client_token as clean_token
from infusion.services.opening import confirmed as is_confirmed
from infusion.settings import ClinicSettings

log = logging.getLogger(__name__)

RECORD_VITALS = "record vitals"

#: an entry model with a `client_token` and a `session_id` (VitalSign, Premedication, RateChange, Reaction)
EntryT = TypeVar("EntryT", VitalSign, Premedication, RateChange, Reaction)

MAX_RATE_ML_H = 1000.0  # product plausibility limit; the highest label step in docs/clinical-basis.md §3 is 400 mL/h


def validate_rate(rate_ml_h: float | None) -> str | None:
    if rate_ml_h is None:
        return "Enter the rate in mL/h."
    if integrity.float_problem(rate_ml_h):
        return "Enter the rate in mL/h (a number)."
    if not 0 < float(rate_ml_h) <= MAX_RATE_ML_H:
        return f"Rate {rate_ml_h:g} mL/h: enter a rate above 0 and up to {MAX_RATE_ML_H:g} mL per hour."
    return None


def above_label(s: Session, row: InfusionSession, rate_ml_h: float, infusion_number: int) -> str | None:
    """Why a rate needs the nurse's confirmation: above the highest mL/h the label's plan gives this infusion
    (docs/clinical-basis.md §3; `titration.label_ceiling`), else None. Weight plans use the weight measured in
    this session, else the patient's recorded weight."""
    therapy = therapy_of(s, row)
    if not therapy.rate_plan:
        return None
    weight = s.scalar(
        select(VitalSign.weight_kg)
        .where(VitalSign.session_id == row.id, VitalSign.status == EntryStatus.ACTIVE, VitalSign.weight_kg.is_not(None))
        .order_by(VitalSign.taken_at.desc(), VitalSign.id.desc())
        .limit(1)
    )
    if weight is None:
        weight = s.scalar(select(Patient.weight_kg).where(Patient.id == row.patient_id))
    ceiling = label_ceiling(therapy.rate_plan, infusion_number=infusion_number, dose=row.dose, weight_kg=weight)
    if ceiling is None or float(rate_ml_h) <= ceiling[0] + RATE_TOLERANCE:
        return None
    limit, source = ceiling
    return (
        f"{float(rate_ml_h):g} mL/h is above {source} for {therapy.brand or therapy.name} infusion "
        f"{infusion_number}: {limit:g} mL/h."
    )


def check_label_ceiling(
    s: Session, row: InfusionSession, rate_ml_h: float, infusion_number: int, *, confirmed: bool | str | None
) -> str | None:
    """`above_label`'s reason, refused (ConfirmationRequired) unless the nurse confirmed that very reason
    (`opening.confirmed`); the reason the confirmed rate is kept with in the audit trail, else None."""
    reason = above_label(s, row, rate_ml_h, infusion_number)
    if reason is not None and not is_confirmed([reason], confirmed):
        raise ConfirmationRequired([reason], lead="Check the rate")
    return f"Confirmed by the nurse: {reason}" if reason else None


@dataclass(frozen=True)
class VitalsAssessment:
    vitals: Vitals
    news2: News2
    flags: list[Flag]


def assess(
    entry: VitalsEntry,
    clinic: Clinic,
    settings: ClinicSettings,
    *,
    baseline_systolic: int | None,
    require_core: bool = False,
) -> VitalsAssessment:
    """Validate, score and flag a set of vitals without writing anything."""
    vitals = validate_vitals(
        entry, temperature_unit=clinic.temperature_unit, weight_unit=clinic.weight_unit, require_core=require_core
    )
    news = score(vitals)
    flags = alert_flags(
        vitals,
        settings.thresholds,
        baseline_systolic=baseline_systolic,
        temperature_unit=clinic.temperature_unit,
        news=news,
    )
    return VitalsAssessment(vitals, news, flags)


def _vitals_time(taken_at: datetime | None, row: InfusionSession, settings: ClinicSettings, tz: str) -> datetime:
    """When a set of vitals was taken (default now): not ahead of now, not before check-in. One rule for the
    preview and the save, so the first tap refuses what the save would."""
    return clinical_time(
        taken_at,
        field="taken_at",
        label="Vitals time",
        settings=settings,
        tz=tz,
        not_before=[(row.checked_in_at, "check-in")],
    )


def preview_vitals(
    db: Database,
    actor: Actor,
    session_id: int | None,
    entry: VitalsEntry,
    *,
    require_core: bool = False,
    taken_at: datetime | None = None,
) -> VitalsAssessment:
    """What a save would record (values, NEWS2, flags), so flags show before the nurse commits. A
    `taken_at` ahead of now is refused here, as the save would, before any flag is asked about. Only for
    someone who may chart at the session's site (the preview reads the session, as the save would)."""
    require_role(actor, CHARTING, RECORD_VITALS)
    with db.reading() as s:
        row = s.get(InfusionSession, session_id) if session_id is not None else None
        if row is not None:
            require_site(s, actor, site_of_session(s, row), RECORD_VITALS)
        clinic, settings = clinic_context(s, site_of_session(s, row) if row is not None else None)
        if taken_at is not None and row is not None:
            _vitals_time(taken_at, row, settings, clinic.timezone)
        baseline = row.baseline_systolic if row else None
        return assess(entry, clinic, settings, baseline_systolic=baseline, require_core=require_core)


@cache
def _by_token(model: type[EntryT]) -> Select[Any]:
    """The entry with a client token, built once per table (a save looks for its retry every time)."""
    return select(model).where(model.client_token == bindparam("token"))


def _existing(s: Session, model: type[EntryT], token: str | None, session_id: int) -> EntryT | None:
    """The entry a retried save (same `client_token`) already stored, if any."""
    token = clean_token(token)
    if not token:
        return None
    found = s.scalars(_by_token(model), {"token": token}).first()
    refuse_other_session(found, session_id)
    return found


def _phase(row: InfusionSession, taken_at: datetime) -> str:
    if row.iv_started_at is None or taken_at < row.iv_started_at:
        return "pre"
    if row.iv_stopped_at is None or taken_at < row.iv_stopped_at:
        return "infusion"
    return "observation"


def insert_vitals(
    s: Session,
    actor: Actor,
    row: InfusionSession,
    clinic: Clinic,
    settings: ClinicSettings,
    entry: VitalsEntry,
    *,
    taken_at: datetime,
    require_core: bool,
    acknowledge_flags: bool,
    client_token: str | None,
    audit_action: str | None = "record_vitals",
    token_checked: bool = False,
) -> VitalSign:
    """Validate and add one set of vitals to a locked session (used by check-in, later sets, corrections).
    `token_checked`: the caller already looked for a save with this `client_token` in this transaction."""
    existing = None if token_checked else _existing(s, VitalSign, client_token, row.id)
    if existing is not None:
        return existing
    baseline = row.baseline_systolic
    result = assess(entry, clinic, settings, baseline_systolic=baseline, require_core=require_core)
    if result.flags and not acknowledge_flags:
        raise ConfirmationRequired([f.message for f in result.flags])
    v = result.vitals
    now = utcnow()
    vital = VitalSign(
        session_id=row.id,
        phase=_phase(row, taken_at),
        taken_at=taken_at,
        entered_at=now,
        entered_by_id=actor.user_id,
        systolic=v.systolic,
        diastolic=v.diastolic,
        pulse=v.pulse,
        resp_rate=v.resp_rate,
        temperature_c=v.temperature_c,
        spo2=v.spo2,
        pain=v.pain,
        weight_kg=v.weight_kg,
        consciousness=v.consciousness,
        on_oxygen=v.on_oxygen,
        position=v.position,
        unable_to_obtain=v.unable_to_obtain,
        provider_notified=v.provider_notified,
        provider_name=v.provider_name,
        provider_notified_at=now if v.provider_notified else None,
        flags=[f.as_dict() for f in result.flags],
        flag_count=len(result.flags),
        news2=result.news2.total,
        news2_complete=result.news2.complete,
        note=v.note,
        status=EntryStatus.ACTIVE,
        client_token=client_token,
    )
    s.add(vital)
    summaries: dict[str, Any] = {}
    if require_core and v.systolic is not None:
        summaries["baseline_systolic"] = v.systolic
    if row.last_vitals_at is None or taken_at > row.last_vitals_at:
        summaries["last_vitals_at"] = taken_at
    s.flush()
    set_summaries(s, row, **summaries)  # an appended entry does not bump the session's version
    if audit_action:
        record(
            s,
            actor,
            audit_action,
            "vital_sign",
            vital.id,
            session_id=row.id,
            patient_id=row.patient_id,
            after=snapshot(vital),
        )
    return vital


def record_vitals(
    db: Database,
    actor: Actor,
    session_id: int,
    entry: VitalsEntry,
    *,
    taken_at: datetime | None = None,
    acknowledge_flags: bool = False,
    client_token: str | None = None,
    expected_version: int | None = None,
) -> VitalSign:
    """A set of vitals during the infusion or observation, at the time it was taken."""

    with charting(db, actor, session_id, expected_version, replayed=TokenReplay(VitalSign, client_token)) as w:
        s, row = w.s, w.row
        if w.replay is not None:
            return w.replay  # a retried save: already stored, whatever changed since
        require_status(row.status, VITALS_STATUSES, "vitals")
        moment = _vitals_time(taken_at, row, w.settings, w.tz)
        vital = insert_vitals(
            s,
            actor,
            row,
            w.clinic,
            w.settings,
            entry,
            taken_at=moment,
            require_core=False,
            acknowledge_flags=acknowledge_flags,
            client_token=client_token,
            token_checked=True,  # the opening found none under the session's lock
        )
        log.info("record_vitals session=%s vital=%s by user=%s", row.id, vital.id, actor.user_id)
        return vital


def record_premedication(
    db: Database,
    actor: Actor,
    session_id: int,
    *,
    drug: str | None = None,
    dose: str | None = None,
    route: str = "IV",
    drug_code: str | None = None,
    dose_value: float | None = None,
    dose_unit: str | None = None,
    given_at: datetime | None = None,
    client_token: str | None = None,
) -> Premedication:
    """Record a premedication: coded (drug_code, dose_value + dose_unit, route) or typed (drug, dose).

    Coded values are what de-identified exports show; typed text stays in identified files only. Typed
    text that is exactly a listed drug and a plain dose ("Benadryl", "25 mg") is coded as well, anything
    else typed as the drug is coded "other". "other" needs the drug's name in `drug`.
    """
    opening = charting(db, actor, session_id, replayed=TokenReplay(Premedication, client_token))
    problems = premedication.validate_coded(drug_code, dose_value, dose_unit, route)
    if problems:
        raise ValidationError(problems)
    if drug_code is None:
        drug = required_text(drug, "drug", "Enter the premedication drug.")
        drug_code = premedication.code_for(drug) or premedication.OTHER
    elif drug_code == premedication.OTHER:
        drug = required_text(drug, "drug", "Name the other premedication.")
    else:
        drug = (drug or "").strip() or premedication.DRUG_NAMES[drug_code]
    if dose_value is None and dose_unit is None:
        dose = required_text(dose, "dose", "Enter the premedication dose (e.g. 100 mg).")
        dose_value, dose_unit = premedication.parse_dose(dose) or (None, None)
    else:
        dose = (dose or "").strip() or premedication.format_dose(dose_value, dose_unit)
    with opening as w:
        s, row = w.s, w.row
        if w.replay is not None:
            return w.replay  # a retried save: already stored, whatever changed since
        require_status(row.status, PREMED_STATUSES, "premedication")
        moment = clinical_time(
            given_at,
            field="given_at",
            label="Premedication time",
            settings=w.settings,
            tz=w.tz,
            not_before=[(row.checked_in_at, "check-in")],
        )
        premed = Premedication(
            session_id=row.id,
            drug=drug,
            dose=dose,
            route=route,
            drug_code=drug_code,
            dose_value=None if dose_value is None else float(dose_value),
            dose_unit=dose_unit,
            given_at=moment,
            entered_at=utcnow(),
            entered_by_id=actor.user_id,
            status=EntryStatus.ACTIVE,
            client_token=client_token,
        )
        s.add(premed)
        s.flush()
        record(
            s,
            actor,
            "record_premedication",
            "premedication",
            premed.id,
            session_id=row.id,
            patient_id=row.patient_id,
            after=snapshot(premed),
        )
        log.info("record_premedication session=%s premedication=%s by user=%s", row.id, premed.id, actor.user_id)
        return premed


def _last_rate_time(s: Session, session_id: int) -> datetime | None:
    return s.scalar(
        select(func.max(RateChange.at)).where(
            RateChange.session_id == session_id, RateChange.status == EntryStatus.ACTIVE
        )
    )


def _rate_entry(
    db: Database,
    actor: Actor,
    session_id: int,
    *,
    kind: str,
    rate_ml_h: float | None,
    at: datetime | None,
    note: str | None,
    expected_version: int | None,
    client_token: str | None,
    confirm_above_label: bool | str | None = False,
) -> RateChange:
    opening = charting(db, actor, session_id, expected_version, replayed=TokenReplay(RateChange, client_token))
    if kind in ("change", "resume"):
        problem = validate_rate(rate_ml_h)
        if problem:
            raise ValidationError({"rate_ml_h": problem})
    with opening as w:
        s, row = w.s, w.row
        if w.replay is not None:
            return w.replay  # a retried save: already stored, whatever changed since
        before = {"status": row.status, "current_rate_ml_h": row.current_rate_ml_h}
        if kind == "change":
            if row.status != SessionStatus.INFUSING:
                raise StateError("Change the rate while the infusion is running (resume a paused infusion instead).")
        else:
            row.status = w.transition(kind)
        moment = clinical_time(
            at,
            field="at",
            label="Rate entry time",
            settings=w.settings,
            tz=w.tz,
            not_before=[(row.iv_started_at, "IV start"), (_last_rate_time(s, row.id), "the last rate entry")],
        )
        confirmed = None
        if kind in ("change", "resume"):
            assert rate_ml_h is not None  # validate_rate refused a missing rate
            confirmed = check_label_ceiling(s, row, rate_ml_h, row.infusion_number, confirmed=confirm_above_label)
            row.current_rate_ml_h = float(rate_ml_h)
        entry = RateChange(
            session_id=row.id,
            at=moment,
            kind=kind,
            rate_ml_h=float(rate_ml_h) if rate_ml_h is not None and kind != "pause" else None,
            note=(note or "").strip() or None,
            entered_at=utcnow(),
            entered_by_id=actor.user_id,
            status=EntryStatus.ACTIVE,
            client_token=client_token,
        )
        s.add(entry)
        s.flush()
        record(
            s,
            actor,
            f"rate_{kind}",
            "rate_change",
            entry.id,
            session_id=row.id,
            patient_id=row.patient_id,
            before=before,
            after=snapshot(entry),
            reason=confirmed,
        )
        log.info("rate_%s session=%s rate_change=%s by user=%s", kind, row.id, entry.id, actor.user_id)
        return entry


def change_rate(
    db: Database,
    actor: Actor,
    session_id: int,
    rate_ml_h: float,
    *,
    at: datetime | None = None,
    note: str | None = None,
    client_token: str | None = None,
    expected_version: int | None = None,
    confirm_above_label: bool | str | None = False,
) -> RateChange:
    return _rate_entry(
        db,
        actor,
        session_id,
        kind="change",
        confirm_above_label=confirm_above_label,
        rate_ml_h=rate_ml_h,
        at=at,
        note=note,
        expected_version=expected_version,
        client_token=client_token,
    )


def pause(
    db: Database,
    actor: Actor,
    session_id: int,
    *,
    at: datetime | None = None,
    note: str | None = None,
    expected_version: int | None = None,
    client_token: str | None = None,
) -> RateChange:
    return _rate_entry(
        db,
        actor,
        session_id,
        kind="pause",
        rate_ml_h=None,
        at=at,
        note=note,
        expected_version=expected_version,
        client_token=client_token,
    )


def resume(
    db: Database,
    actor: Actor,
    session_id: int,
    rate_ml_h: float,
    *,
    at: datetime | None = None,
    note: str | None = None,
    expected_version: int | None = None,
    client_token: str | None = None,
    confirm_above_label: bool | str | None = False,
) -> RateChange:
    return _rate_entry(
        db,
        actor,
        session_id,
        kind="resume",
        confirm_above_label=confirm_above_label,
        rate_ml_h=rate_ml_h,
        at=at,
        note=note,
        expected_version=expected_version,
        client_token=client_token,
    )


def new_reaction(
    session_id: int,
    actor: Actor,
    *,
    onset: datetime,
    symptoms: list[str],
    grade: int,
    actions: list[str],
    other_text: str | None,
    medication_given: str | None,
    resolved_at: datetime | None,
    provider_notified: bool,
    provider_name: str | None,
    note: str | None,
    **extra: Any,
) -> Reaction:
    """The one way a reaction row is built (recorded at the chair, found at the follow-up call, or a
    correction): texts stripped, blanks stored as NULL, entered now by `actor`. `extra` carries what
    only some rows have (client_token, delayed, replaces_id, correction_reason)."""
    return Reaction(
        session_id=session_id,
        onset_at=onset,
        symptoms=list(symptoms),
        other_text=(other_text or "").strip() or None,
        grade=grade,
        actions=list(actions),
        medication_given=(medication_given or "").strip() or None,
        resolved_at=resolved_at,
        provider_notified=provider_notified,
        provider_name=(provider_name or "").strip() or None,
        note=(note or "").strip() or None,
        entered_at=utcnow(),
        entered_by_id=actor.user_id,
        status=EntryStatus.ACTIVE,
        **extra,
    )


def _word_list(values: object) -> bool:
    """A list (or tuple) of vocabulary words, as the pickers send them."""
    return isinstance(values, list | tuple) and all(isinstance(v, str) for v in values)


def _validate_reaction(
    symptoms: list[str], other_text: str | None, grade: int, actions: list[str], medication_given: str | None
) -> dict[str, str]:
    problems: dict[str, str] = {}
    if not symptoms:
        problems["symptoms"] = "Pick at least one symptom."
    unknown = [x for x in symptoms if x not in SYMPTOMS]
    if unknown:
        problems["symptoms"] = f"Unknown symptom(s): {', '.join(unknown)}."
    if "other" in symptoms and not (other_text or "").strip():
        problems["other_text"] = "Describe the 'other' symptom."
    if grade not in CTCAE_IRR:
        problems["grade"] = "CTCAE grade must be 1 to 5."
    elif "anaphylaxis" in symptoms and grade < 3:
        problems["grade"] = "CTCAE v5.0 defines anaphylaxis from grade 3 (grades 1–2 do not exist for it)."
    bad_actions = [a for a in actions if a not in ACTIONS]
    if bad_actions:
        problems["actions"] = f"Unknown action(s): {', '.join(bad_actions)}."
    if not actions:
        problems["actions"] = "Record what was done (choose 'Observed only' if nothing)."
    if "medication_given" in actions and not (medication_given or "").strip():
        problems["medication_given"] = "Name the medication given (drug, dose, route)."
    elif (medication_given or "").strip() and "medication_given" not in actions:
        problems["medication_given"] = "A medication is named: tick 'Medication given' in the actions, or clear it."
    if "observed" in actions and len(set(actions)) > 1:
        problems["actions"] = "'Observed only' cannot go with another action: untick one of them."
    return problems


def record_reaction(
    db: Database,
    actor: Actor,
    session_id: int,
    *,
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
    client_token: str | None = None,
) -> Reaction:
    """A reaction observed during the infusion or observation, with its CTCAE grade and what was done."""
    opening = charting(db, actor, session_id, replayed=TokenReplay(Reaction, client_token))
    text, wrong = texts(
        other_text=other_text, medication_given=medication_given, provider_name=provider_name, note=note
    )
    if not _word_list(symptoms):
        wrong["symptoms"] = "Pick the symptoms from the list."
    if not _word_list(actions):
        wrong["actions"] = "Pick the actions from the list."
    if isinstance(grade, bool) or not isinstance(grade, int):
        wrong["grade"] = "CTCAE grade must be 1 to 5."
    if wrong:
        raise ValidationError(wrong)
    other_text, medication_given = text["other_text"] or None, text["medication_given"] or None
    provider_name, note = text["provider_name"] or None, text["note"] or None
    problems = _validate_reaction(symptoms, other_text, grade, actions, medication_given)
    if provider_notified and not (provider_name or "").strip():
        problems["provider_name"] = "Name the provider who was notified."
    if problems:
        raise ValidationError(problems)
    with opening as w:
        s, row = w.s, w.row
        if w.replay is not None:
            return w.replay  # a retried save: already stored, whatever changed since
        require_status(row.status, REACTION_STATUSES, "a reaction")
        onset = clinical_time(
            onset_at,
            field="onset_at",
            label="Reaction onset",
            settings=w.settings,
            tz=w.tz,
            not_before=[(row.checked_in_at, "check-in")],
        )
        if resolved_at is not None:
            clinical_time(
                resolved_at,
                field="resolved_at",
                label="Resolution",
                settings=w.settings,
                tz=w.tz,
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
            client_token=client_token,
        )
        s.add(reaction)
        s.flush()
        set_summaries(  # an appended entry does not bump the session's version
            s, row, reaction_count=(row.reaction_count or 0) + 1, worst_grade=max(row.worst_grade or 0, grade)
        )
        record(
            s,
            actor,
            "record_reaction",
            "reaction",
            reaction.id,
            session_id=row.id,
            patient_id=row.patient_id,
            after=snapshot(reaction),
        )
        if row.status == SessionStatus.INFUSING and set(actions) & PAUSING_ACTIONS:
            last = _last_rate_time(s, row.id)
            # charted after the fact, once the rate log moved on past the onset (paused and resumed
            # already): the log says what the pump did, and no pause is made up
            if last is None or last <= reaction.onset_at:
                _pause_for(s, actor, w, reaction)
        log.info(
            "record_reaction session=%s reaction=%s grade=%s by user=%s", row.id, reaction.id, grade, actor.user_id
        )
        return reaction


#: reaction actions that interrupt the infusion: saved with a running infusion, the same save pauses it (a
#: stopped infusion may still restart once the reaction resolves, so it is paused, not ended: the nurse
#: resumes or stops the IV from there)
PAUSING_ACTIONS = frozenset({"paused", "stopped"})


def _pause_for(s: Session, actor: Actor, w: Any, reaction: Reaction) -> RateChange:
    """Pause the running infusion of a reaction whose actions say it was paused or stopped, at its onset, in
    the reaction's transaction: the record never says "infusion paused" while the rate log says it ran on.
    Only when no rate entry came after the onset (`record_reaction`)."""
    row = w.row
    moment = reaction.onset_at
    before = {"status": row.status, "current_rate_ml_h": row.current_rate_ml_h}
    row.status = w.transition("pause")
    what = ACTIONS["stopped" if "stopped" in reaction.actions else "paused"].lower()
    pause = RateChange(
        session_id=row.id,
        at=moment,
        kind="pause",
        rate_ml_h=None,
        note=f"Reaction (CTCAE grade {reaction.grade}): {what}",
        entered_at=utcnow(),
        entered_by_id=actor.user_id,
        status=EntryStatus.ACTIVE,
    )
    s.add(pause)
    s.flush()
    record(
        s,
        actor,
        "rate_pause",
        "rate_change",
        pause.id,
        session_id=row.id,
        patient_id=row.patient_id,
        before=before,
        after=snapshot(pause),
    )
    return pause


def resolve_reaction(db: Database, actor: Actor, reaction_id: int, *, resolved_at: datetime | None = None) -> Reaction:
    """Fill in the resolution time of an open reaction (a blank becomes a value; nothing is overwritten)."""

    def session_of_reaction(s: Session) -> int:
        session_id = s.scalar(select(Reaction.session_id).where(Reaction.id == reaction_id))
        if session_id is None:
            raise NotFoundError(f"Reaction {reaction_id} not found.")
        return session_id

    with charting(db, actor, session_of_reaction) as w:
        s, row = w.s, w.row
        # locked first, then the reaction is read as it is now
        reaction = s.get(Reaction, reaction_id, populate_existing=True)
        if reaction is None:
            raise NotFoundError(f"Reaction {reaction_id} not found.")
        if reaction.status != EntryStatus.ACTIVE:
            raise StateError(
                "This reaction record was corrected or marked in error since your screen loaded; "
                "reload and resolve the current record."
            )
        if reaction.resolved_at is not None:
            raise StateError("This reaction already has a resolution time; corrections keep the original.")
        moment = clinical_time(
            resolved_at,
            field="resolved_at",
            label="Resolution",
            settings=w.settings,
            tz=w.tz,
            not_before=[(reaction.onset_at, "the onset")],
        )
        reaction.resolved_at = moment
        s.flush()
        record(
            s,
            actor,
            "resolve_reaction",
            "reaction",
            reaction.id,
            session_id=row.id,
            patient_id=row.patient_id,
            before={"resolved_at": None},
            after={"resolved_at": moment},
        )
        log.info("resolve_reaction session=%s reaction=%s by user=%s", row.id, reaction.id, actor.user_id)
        return reaction
