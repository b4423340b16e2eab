"""Issue 11: the dose, infusion number and course position of a new session come from one rule
(`infusion.reads.due.next_in`), whatever creates the session. Sources: docs/clinical-basis.md §1 (Ocrevus
USPI §2.3, Briumvi USPI §2.3: loading doses), §2 (intervals), §3 (Lemtrada premedication by course day)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from db.models import InfusionSession
from infusion.clinical.catalog import premedication_due
from infusion.errors import ValidationError
from infusion.services import sessions
from infusion.services.scheduling import schedule_session
from tests.db.test_due import TODAY, at, give
from tests.helpers import ADMIN, new_chair, new_patient, normal_vitals, therapy_id, walk


def _walk_in(db, nurse, patient, code, **kw) -> InfusionSession:
    return sessions.create_walk_in(
        db, nurse, therapy_id=therapy_id(db, code), chair_id=new_chair(db, ADMIN), patient_id=patient, **kw
    )


def test_first_ocrevus_and_briumvi_walk_ins_take_the_label_loading_dose(db, nurse):
    # Ocrevus USPI §2.3: 300 mg for infusions 1 and 2; Briumvi USPI §2.3: 150 mg for infusion 1
    ocr = _walk_in(db, nurse, new_patient(db, nurse), "ocrelizumab_iv")
    assert (ocr.dose, ocr.infusion_number) == (300, 1)
    bri = _walk_in(db, nurse, new_patient(db, nurse), "ublituximab")
    assert (bri.dose, bri.infusion_number) == (150, 1)
    booked = sessions.create_session(
        db,
        nurse,
        patient_id=new_patient(db, nurse),
        therapy_id=therapy_id(db, "ocrelizumab_iv"),
        chair_id=new_chair(db, ADMIN),
        scheduled_at=at(TODAY + timedelta(days=3)),
        walk_in=False,
    )
    assert booked.dose == 300


def test_a_maintenance_dose_on_a_loading_infusion_needs_a_reason(db, nurse):
    patient = new_patient(db, nurse)
    with pytest.raises(ValidationError) as refused:
        _walk_in(db, nurse, patient, "ocrelizumab_iv", dose=600)
    assert "dose_reason" in refused.value.problems and "300 mg" in str(refused.value)
    row = _walk_in(db, nurse, patient, "ocrelizumab_iv", dose=600, dose_reason="Neurologist's order, single 600 mg")
    assert row.dose == 600 and row.dose_reason == "Neurologist's order, single 600 mg"


def test_infusion_number_follows_the_stored_number_at_booking_check_in_and_iv_start(db, nurse):
    # a Tysabri patient who had infusion #33 before: the next is #34 at booking, check-in and IV start
    patient = new_patient(db, nurse)
    give(db, patient, "natalizumab", TODAY - timedelta(days=28), number=33)
    row = _walk_in(db, nurse, patient, "natalizumab")
    assert row.infusion_number == 34
    walk(db, nurse, row.id, "infusing")
    with db.reading() as s:
        assert s.get(InfusionSession, row.id).infusion_number == 34


def test_lemtrada_course_position_premedication_and_early_course_override(db, nurse):
    # Lemtrada USPI §2.2: corticosteroid on the first 3 days of each course
    assert premedication_due("alemtuzumab", True, 3) and not premedication_due("alemtuzumab", True, 4)
    assert premedication_due("alemtuzumab", True, None)  # no stored day: the cautious reading
    assert premedication_due("ocrelizumab_iv", True, 9) and not premedication_due("natalizumab", False, None)
    patient = new_patient(db, nurse)
    d0 = TODAY - timedelta(days=3)
    for i in range(3):
        give(db, patient, "alemtuzumab", d0 + timedelta(days=i), course=(1, i + 1))
    day4 = _walk_in(db, nurse, patient, "alemtuzumab")
    assert (day4.course_number, day4.course_day, day4.infusion_number) == (1, 4, 4)
    sessions.check_in(db, nurse, day4.id, normal_vitals(), expected_version=None)
    sessions.proceed(db, nurse, day4.id, expected_version=None)
    sessions.confirm_program(db, nurse, day4.id, authorization_ref="LRP-1")
    # course day 4: no corticosteroid required, so IV start needs no premedication or skip reason
    started = sessions.start_iv(
        db,
        nurse,
        day4.id,
        expected_version=None,
        site="Left forearm",
        gauge=22,
        attempts=1,
        lot_number="LM-1",
        rate_ml_h=25,
    )
    assert started.status == "infusing"


def test_an_early_lemtrada_course_needs_an_audited_override(db, nurse):
    # Lemtrada USPI §2.2: course 2 twelve months after course 1; earlier needs a reason
    patient = new_patient(db, nurse)
    d0 = TODAY - timedelta(days=40)
    for i in range(5):
        give(db, patient, "alemtuzumab", d0 + timedelta(days=i), course=(1, i + 1))
    tid, chair = therapy_id(db, "alemtuzumab"), new_chair(db, ADMIN)
    with pytest.raises(ValidationError) as refused:
        schedule_session(db, nurse, patient, tid, chair, at(TODAY + timedelta(days=30)))
    assert "override_too_early_reason" in refused.value.problems
    row = schedule_session(
        db,
        nurse,
        patient,
        tid,
        chair,
        at(TODAY + timedelta(days=30)),
        override_too_early_reason="Neurologist: early retreatment for disease activity",
    )
    assert (row.course_number, row.course_day) == (2, 1)
