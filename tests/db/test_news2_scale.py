"""The patient's NEWS2 SpO2 scale (RCP NEWS2 Chart 1 Scale 2, docs/clinical-basis.md §5): set by a
clinician with a reason, audited, and used to score the vitals recorded afterwards."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.models import AuditEvent, Patient, VitalSign
from infusion.accounts.actor import Actor
from infusion.errors import PermissionDenied, ValidationError
from infusion.services import sessions
from infusion.services.news2_scale import set_news2_scale
from tests.helpers import ADMIN, new_chair, new_patient, normal_vitals, therapy_id

CHARGE = Actor(None, "Test Charge", "charge_nurse")


def test_a_charge_nurse_sets_scale_2_with_a_reason_and_it_is_audited(db, nurse):
    patient = new_patient(db, nurse)
    with pytest.raises(PermissionDenied):
        set_news2_scale(db, nurse, patient, 2, "ALS, hypercapnic")
    with pytest.raises(ValidationError) as refused:
        set_news2_scale(db, CHARGE, patient, 2, "  ")
    assert "news2_spo2_scale_reason" in refused.value.problems
    with pytest.raises(ValidationError):
        set_news2_scale(db, CHARGE, patient, 3, "no such scale")
    set_news2_scale(db, CHARGE, patient, 2, "ALS with hypercapnic respiratory failure, target 88-92 %")
    with db.reading() as s:
        assert s.get(Patient, patient).news2_spo2_scale == 2
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "set_news2_scale")).one()
    assert (event.before, event.after) == ({"news2_spo2_scale": 1}, {"news2_spo2_scale": 2})
    assert "hypercapnic" in event.reason


def test_check_in_scores_spo2_on_the_patients_scale(db, nurse):
    chair = new_chair(db, ADMIN)
    scale1, scale2 = new_patient(db, nurse), new_patient(db, nurse)
    set_news2_scale(db, CHARGE, scale2, 2, "ALS with hypercapnic respiratory failure")
    stored = {}
    for patient in (scale1, scale2):
        row = sessions.create_session(
            db, nurse, patient_id=patient, therapy_id=therapy_id(db, "edaravone"), chair_id=chair
        )
        # 89 % on air: 3 points on Scale 1, 0 on Scale 2 (inside the 88–92 % target)
        sessions.check_in(db, nurse, row.id, normal_vitals(spo2=89), expected_version=None, acknowledge_flags=True)
        with db.reading() as s:
            stored[patient] = s.scalars(select(VitalSign).where(VitalSign.session_id == row.id)).one()
        chair = new_chair(db, ADMIN)
    assert stored[scale1].news2 == 3
    assert stored[scale2].news2 == 0
