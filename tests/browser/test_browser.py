"""Real-browser journey: Debian's Chromium drives `streamlit run dashboard.py`.

A nurse signs in, opens a waiting session, checks the patient in with a
set of vitals (°F clinic), sees the flag for a fever before saving, confirms,
and the check-in shows; the database holds what she typed, in °C.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from db.engine import Database, make_engine
from db.models import InfusionSession, VitalSign
from infusion.accounts import auth
from infusion.accounts.actor import Actor
from infusion.services import sessions, setup

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "tablet-at-chair-4"
ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed"),
]
playwright = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def clinic_server(db_url: str, db: Database):
    admin = Actor(None, "Setup", "admin")
    setup.update_clinic(
        db, admin, name="Browser Test Clinic", timezone="America/New_York", temperature_unit="F", weight_unit="lb"
    )
    nurse = auth.add_user(db, admin, username="maria", display_name="Maria Gomez", role="nurse", password=PASSWORD)
    chair = setup.add_chair(db, admin, "Chair 1")
    patient = setup.add_patient(db, admin, mrn="MRN-77", given_name="Ann", family_name="Lee")
    therapy = next(t for t in setup.list_therapies(db) if t.code == "natalizumab")
    session = sessions.create_session(
        db, Actor(nurse.id, nurse.display_name), patient_id=patient.id, therapy_id=therapy.id, chair_id=chair.id
    )
    port = _free_port()
    env = {**os.environ, "CHAIRSIDE_DATABASE_URL": db_url}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "dashboard.py"),
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("streamlit did not start")
        yield url, session.id
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _idle(page) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_timeout(400)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=30000)


def test_nurse_checks_in_a_patient_in_a_real_browser(clinic_server, db_url):
    url, session_id = clinic_server
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1024, "height": 768})  # the tablet the brief names
        page.goto(url)
        _idle(page)
        page.locator("input[aria-label='User name']").fill("maria")
        page.locator("input[aria-label='Password']").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        _idle(page)
        page.get_by_role("button", name="Open session").first.wait_for()
        page.get_by_role("button", name="Open session").first.click()
        _idle(page)
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
        _idle(page)
        page.get_by_text("Abnormal values — confirm before saving").wait_for()
        assert page.get_by_text("Temperature 100.9 °F ≥ 100.4 °F").count() >= 1
        page.get_by_role("button", name="Confirm and save").click()
        _idle(page)
        page.get_by_text("Checked in · NEWS2").wait_for()
        assert page.locator("[data-testid='stException']").count() == 0
        page.screenshot(
            path=str(Path(os.environ.get("CHAIRSIDE_SCREENSHOT_DIR", "/tmp")) / "chairside-checkin.png"), full_page=True
        )
        browser.close()

    database = Database(make_engine(db_url))
    with database.reading() as s:
        row = s.get(InfusionSession, session_id)
        vitals = s.scalars(select(VitalSign).where(VitalSign.session_id == session_id)).one()
    database.engine.dispose()
    assert row.status == "checked_in"
    assert vitals.temperature_c == pytest.approx(38.28, abs=0.01)  # stored in °C
    assert vitals.weight_kg == pytest.approx(69.85, abs=0.01)  # stored in kg
    assert [f["code"] for f in vitals.flags] == ["temp_high"]
