"""Real-browser journey: Debian's Chromium drives `streamlit run dashboard.py`.

A nurse signs in, opens a waiting session, checks the patient in with a
set of vitals (°F clinic), sees the flag for a fever before saving, confirms,
and the check-in shows; the database holds what she typed, in °C.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from db.models import InfusionSession, VitalSign
from infusion.accounts.actor import Actor
from infusion.services import sessions, setup
from tests.browser.conftest import ClinicApp, settle

pytestmark = pytest.mark.browser


def test_nurse_checks_in_a_patient_in_a_real_browser(tablet: Any, clinic_app: ClinicApp) -> None:
    db = clinic_app.db
    admin = Actor(None, "Setup", "admin")
    setup.update_clinic(
        db, admin, name="Browser Test Clinic", timezone="America/New_York", temperature_unit="F", weight_unit="lb"
    )
    chair = setup.add_chair(db, admin, "Chair 1")
    patient = setup.add_patient(db, admin, mrn="MRN-77", given_name="Ann", family_name="Lee")
    therapy = next(t for t in setup.list_therapies(db) if t.code == "natalizumab")
    session_id = sessions.create_session(
        db, clinic_app.nurse, patient_id=patient.id, therapy_id=therapy.id, chair_id=chair.id
    ).id

    page = tablet()  # the tablet the brief names: 1024×768
    page.get_by_role("button", name="Open session").first.click()
    settle(page)
    page.get_by_text("Check-in vitals (baseline)").wait_for()
    form = page.locator("[data-testid='stForm']").filter(has_text="Check-in vitals")
    values = {
        "Systolic BP": "118",
        "Diastolic BP": "74",
        "Pulse": "88",
        "Temperature °F": "100.9",
        "Respiration": "18",
        "SpO2 %": "97",
        "Pain 0–10": "2",
        "Weight lb": "154",
    }
    for label, value in values.items():
        form.get_by_label(label, exact=True).fill(value)
    form.get_by_role("button", name="Check in").click()
    settle(page)
    page.get_by_text("Abnormal values — confirm before saving").wait_for()
    assert page.get_by_text("Temperature 100.9 °F ≥ 100.4 °F").count() >= 1
    page.get_by_role("button", name="Confirm and save").click()
    settle(page)
    page.get_by_text("Checked in · NEWS2").first.wait_for()
    assert page.locator("[data-testid='stException']").count() == 0
    page.screenshot(
        path=str(Path(os.environ.get("CHAIRSIDE_SCREENSHOT_DIR", "/tmp")) / "chairside-checkin.png"), full_page=True
    )

    with db.reading() as s:
        row = s.get(InfusionSession, session_id)
        vitals = s.scalars(select(VitalSign).where(VitalSign.session_id == session_id)).one()
    assert row.status == "checked_in"
    assert vitals.temperature_c == pytest.approx(38.28, abs=0.01)  # stored in °C
    assert vitals.weight_kg == pytest.approx(69.85, abs=0.01)  # stored in kg
    assert [f["code"] for f in vitals.flags] == ["temp_high"]
