"""The patient's NEWS2 SpO2 scale: a clinician's decision, recorded with its reason and audited.

RCP NEWS2 (2017) Chart 1: SpO2 Scale 2 is for patients with hypercapnic
respiratory failure whose prescribed target saturation is 88–92 %; the decision
is a clinical one and is recorded (docs/clinical-basis.md §5). In this clinic
that is typically an ALS patient with respiratory muscle weakness. Everyone else
is scored on Scale 1. Charge nurses and administrators set it (the same roles
that set a patient's protocol interval); the reason is required either way.
"""

from __future__ import annotations

import logging

from db.engine import Database
from db.models import Patient
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import ADMIN, CHARGE, require_role
from infusion.clinical.news2 import SPO2_SCALES
from infusion.errors import ConflictError, NotFoundError, ValidationError
from infusion.services.audit import record

log = logging.getLogger(__name__)

#: roles that set the scale: a clinical decision, not a nurse's charting entry
SCALE_EDIT = (CHARGE, ADMIN)


def set_news2_scale(
    db: Database,
    actor: Actor,
    patient_id: int,
    scale: int,
    reason: str,
    *,
    expected_scale: int | None = None,
) -> Patient:
    """Set the patient's NEWS2 SpO2 scale (1 or 2) with the clinical reason; audited before/after.

    `expected_scale` is the scale the screen showed: if another clinician changed it since, nothing
    is saved. Vitals recorded afterwards are scored on the new scale; earlier ones keep their score.
    """
    require_role(actor, SCALE_EDIT, "set a patient's NEWS2 SpO2 scale")
    if isinstance(scale, bool) or scale not in SPO2_SCALES:
        raise ValidationError({"news2_spo2_scale": "Choose SpO2 Scale 1 or Scale 2."})
    why = (reason or "").strip()
    if not why:
        raise ValidationError(
            {
                "news2_spo2_scale_reason": "Give the clinical reason (e.g. hypercapnic respiratory failure, target 88–92 %)."
            }
        )
    with db.writing() as s:
        patient = s.get(Patient, patient_id, with_for_update=True)
        if patient is None:
            raise NotFoundError(f"Patient {patient_id} not found.")
        if expected_scale is not None and patient.news2_spo2_scale != expected_scale:
            raise ConflictError("The NEWS2 scale was changed after you opened it. Nothing was saved; review it.")
        before = patient.news2_spo2_scale
        patient.news2_spo2_scale = int(scale)
        s.flush()
        record(
            s,
            actor,
            "set_news2_scale",
            "patient",
            patient.id,
            patient_id=patient.id,
            before={"news2_spo2_scale": before},
            after={"news2_spo2_scale": int(scale)},
            reason=why,
        )
        log.info("set_news2_scale patient=%s scale=%s by user=%s", patient.id, scale, actor.user_id)
        return patient
