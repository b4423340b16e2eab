"""The clinic's per-patient dosing protocol for IVIG and cyclophosphamide: setting the interval (a write,
audited with before/after). The due list reads it through `infusion.reads.due`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from db.engine import Database
from db.models import Patient, PatientProtocol, Therapy
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import ADMIN, CHARGE, require_role
from infusion.clinical.regimen import PROTOCOL_THERAPIES
from infusion.clock import utcnow
from infusion.errors import ConflictError, ValidationError
from infusion.services.audit import changed, record, snapshot

#: roles that set a patient's protocol interval: a clinical decision, not a nurse's booking
PROTOCOL_EDIT = (CHARGE, ADMIN)
#: the longest protocol interval a clinic may set, in days
PROTOCOL_MAX_DAYS = 366


def check_interval(interval_days: object) -> int:
    """An interval in whole days, 1 to PROTOCOL_MAX_DAYS, or ValidationError; asked by the form too when
    nothing is picked yet, so one refusal names all that is missing."""
    if (
        isinstance(interval_days, bool)
        or not isinstance(interval_days, int)
        or not 1 <= interval_days <= PROTOCOL_MAX_DAYS
    ):
        raise ValidationError({"interval_days": f"Enter the interval in whole days, 1 to {PROTOCOL_MAX_DAYS}."})
    return interval_days


def set_protocol_interval(
    db: Database,
    actor: Actor,
    patient_id: int,
    therapy_id: int,
    interval_days: int,
    note: str | None = None,
    *,
    expected_version: int | None = None,
) -> PatientProtocol:
    """Set (or change) the clinic's dosing interval for one patient on IVIG or cyclophosphamide.

    Audited with before/after. Only protocol therapies take one: the others follow the catalog's rhythm.
    """
    require_role(actor, PROTOCOL_EDIT, "set protocol intervals")
    interval_days = check_interval(interval_days)
    try:
        with db.writing() as s:
            therapy, patient = s.get(Therapy, therapy_id), s.get(Patient, patient_id)
            if patient is None:
                raise ValidationError({"patient": "Pick a patient."})
            if therapy is None or therapy.code not in PROTOCOL_THERAPIES:
                raise ValidationError(
                    {
                        "therapy": "Only IVIG and cyclophosphamide are dosed by a per-patient protocol; "
                        "other therapies follow the catalog."
                    }
                )
            row = s.scalars(
                select(PatientProtocol)
                .where(PatientProtocol.patient_id == patient_id, PatientProtocol.therapy_id == therapy_id)
                .with_for_update()
            ).first()
            text = (note or "").strip() or None
            if row is None:
                row = PatientProtocol(
                    patient_id=patient_id,
                    therapy_id=therapy_id,
                    interval_days=interval_days,
                    note=text,
                    set_at=utcnow(),
                    set_by_id=actor.user_id,
                )
                s.add(row)
                s.flush()
                record(
                    s,
                    actor,
                    "set_protocol_interval",
                    "patient_protocol",
                    row.id,
                    patient_id=patient_id,
                    after=snapshot(row),
                    reason=text,
                )
                return row
            if expected_version is not None and row.version != expected_version:
                raise ConflictError(
                    "This protocol interval was changed after you opened it. Nothing was saved; "
                    "review it and try again."
                )
            before = snapshot(row)
            row.interval_days, row.note, row.set_at, row.set_by_id = interval_days, text, utcnow(), actor.user_id
            s.flush()
            old, new = changed(before, snapshot(row))
            old.pop("version", None)
            new.pop("version", None)
            record(
                s,
                actor,
                "set_protocol_interval",
                "patient_protocol",
                row.id,
                patient_id=patient_id,
                before=old,
                after=new,
                reason=text,
            )
            return row
    except IntegrityError:
        raise ConflictError("Someone set this protocol interval at the same time; review it and try again.") from None
