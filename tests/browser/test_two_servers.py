"""Several app servers on one PostgreSQL database: a save through one shows on the other's board and Trends.

The embedded default stays one process on SQLite; a clinic network runs any number of
`streamlit run` servers behind a proxy with sticky sessions, all on one PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest

from infusion.accounts import auth
from infusion.accounts.actor import Actor
from infusion.services import sessions, setup
from tests.browser.conftest import PASSWORD, TABLET, ClinicApp, app_server, settle
from tests.helpers import ago, therapy_id, walk

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect


def _sign_in(page: Any, url: str, username: str) -> None:
    page.goto(url)
    settle(page)
    page.locator("input[aria-label='User name']").fill(username)
    page.locator("input[aria-label='Password']").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    settle(page)


def test_a_check_in_on_one_server_shows_on_the_other_servers_board(
    chromium: Any, clinic_app: ClinicApp, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if clinic_app.backend != "postgresql":
        pytest.skip("several servers share one PostgreSQL database; SQLite is the one-process default")
    db, setup_actor = clinic_app.db, Actor(None, "Setup", "admin")
    auth.add_user(
        db, setup_actor, username="karen", display_name="Karen Miller", role="charge_nurse", password=PASSWORD
    )
    auth.add_user(db, setup_actor, username="paul", display_name="Paul Richards", role="manager", password=PASSWORD)
    chair = setup.add_chair(db, setup_actor, "Chair Two-Servers")
    patient = setup.add_patient(db, setup_actor, mrn="MRN-2S", given_name="Tara", family_name="Twoserver")
    sid = sessions.create_session(
        db, clinic_app.nurse, patient_id=patient.id, therapy_id=therapy_id(db, "natalizumab"), chair_id=chair.id
    ).id
    with app_server(clinic_app.url and _db_url(db), tmp_path_factory.mktemp("second")) as second:
        charge_ctx, nurse_ctx = chromium.new_context(viewport=TABLET), chromium.new_context(viewport=TABLET)
        manager_ctx = chromium.new_context(viewport=TABLET)
        board, tablet, trends = charge_ctx.new_page(), nurse_ctx.new_page(), manager_ctx.new_page()
        try:
            _sign_in(board, second, "karen")  # the charge nurse is on server B
            board.goto(f"{second}/board")
            settle(board)
            expect(board.get_by_text("Twoserver, T.").first).to_be_visible()
            _sign_in(tablet, clinic_app.url, clinic_app.username)  # the nurse is on server A
            tablet.locator(f".st-key-open_{sid} button").click()
            settle(tablet)
            form = tablet.locator("[data-testid='stForm']").filter(has_text="Check-in vitals")
            for label, value in {
                "Systolic BP": "122",
                "Diastolic BP": "76",
                "Pulse": "70",
                "Temperature °C": "36.7",
                "Respiration": "16",
                "SpO2 %": "98",
                "Weight kg": "70",
            }.items():
                form.get_by_label(label, exact=True).fill(value)
            form.get_by_role("button", name="Check in").click()
            settle(tablet)
            expect(tablet.get_by_text("Checked in · NEWS2").first).to_be_visible()
            # server B's board picks the check-in up on its own 30 s refresh
            expect(board.get_by_text("Twoserver, T. · Tysabri #1 · Checked in")).to_be_visible(timeout=45000)

            # server B's Trends cache holds until a write anywhere moves the data version in the database
            _sign_in(trends, second, "paul")
            trends.goto(f"{second}/trends")
            settle(trends)
            expect(trends.get_by_text("No completed sessions match these filters yet")).to_be_visible()
            other = sessions.create_session(  # another process completes a session
                db,
                clinic_app.nurse,
                patient_id=setup.add_patient(db, setup_actor, mrn="MRN-2S-B", given_name="Uma", family_name="Other").id,
                therapy_id=therapy_id(db, "natalizumab"),
                chair_id=setup.add_chair(db, setup_actor, "Chair Two-Servers B").id,
            ).id
            walk(db, clinic_app.nurse, other, "discharged", t0=ago(200))
            trends.reload()
            settle(trends)
            expect(trends.get_by_role("heading", name="Reaction rate per therapy")).to_be_visible()
        finally:
            charge_ctx.close()
            nurse_ctx.close()
            manager_ctx.close()


def _db_url(db: Any) -> str:
    return db.engine.url.render_as_string(hide_password=False)
