"""In Chromium: a charge nurse who works at two sites switches site with the header's picker. The Chairside
list and the chair board then show only the chosen site's chairs and patients, and after a reload (a new
browser session resumed from the sign-in cookie) the choice still holds."""

from __future__ import annotations

from typing import Any

import pytest

from infusion.accounts import auth
from infusion.accounts.actor import Actor
from infusion.services import sessions, setup
from tests.browser.conftest import PASSWORD, TABLET, ClinicApp, settle

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect

ADMIN = Actor(None, "Setup", "admin")


def _two_sites(app: ClinicApp) -> None:
    db = app.db
    north = setup.update_clinic(
        db, ADMIN, name="Northside", code="NTH", timezone="UTC", temperature_unit="C", weight_unit="kg"
    )
    river = setup.add_site(db, ADMIN, "Riverside", "RIV", "America/Los_Angeles", "C", "kg")
    natalizumab = next(t.id for t in setup.list_therapies(db) if t.code == "natalizumab")
    for site, chair_name, family in ((north, "North chair 1", "Ashby"), (river, "River chair 1", "Brook")):
        chair = setup.add_chair(db, ADMIN, chair_name, site_id=site.id).id
        patient = setup.add_patient(db, ADMIN, mrn=f"MRN-{family}", given_name="Pat", family_name=family).id
        sessions.create_session(db, ADMIN, patient_id=patient, therapy_id=natalizumab, chair_id=chair)
    auth.add_user(
        db,
        ADMIN,
        username="cora",
        display_name="Cora Charge",
        role="charge_nurse",
        password=PASSWORD,
        sites=[north.id, river.id],
    )


def _picker(page: Any) -> Any:
    """The header's site picker (a combobox whose value is the site shown)."""
    return page.get_by_role("combobox", name="Site")


def _shows_only(page: Any, shown: str, hidden: str) -> None:
    main = page.locator("[data-testid='stMain']")
    expect(main.get_by_text(shown).first).to_be_visible()
    assert main.get_by_text(hidden).count() == 0, f"{hidden} is shown"


def test_the_site_picker_switches_the_list_and_the_board_and_holds_after_a_reload(
    chromium: Any, clinic_app: ClinicApp
) -> None:
    _two_sites(clinic_app)
    context = chromium.new_context(viewport=TABLET)
    context.set_default_timeout(20000)
    page = context.new_page()
    try:
        page.goto(clinic_app.url)
        settle(page)
        page.locator("input[aria-label='User name']").fill("cora")
        page.locator("input[aria-label='Password']").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        settle(page)
        expect(_picker(page)).to_have_value("🏥 Northside (NTH)")
        _shows_only(page, "Ashby, Pat", "Brook, Pat")
        _shows_only(page, "North chair 1", "River chair 1")

        _picker(page).click()
        page.get_by_role("option", name="🏥 Riverside (RIV)").click()
        settle(page)
        expect(_picker(page)).to_have_value("🏥 Riverside (RIV)")
        _shows_only(page, "Brook, Pat", "Ashby, Pat")
        _shows_only(page, "River chair 1", "North chair 1")

        page.goto(f"{clinic_app.url}/board")  # the board: one row per chair of the working site
        settle(page)
        expect(_picker(page)).to_have_value("🏥 Riverside (RIV)")
        board = page.locator("[data-testid='stPlotlyChart']").first
        expect(board).to_contain_text("River chair 1")
        assert "North chair 1" not in board.inner_text()

        page.reload()  # a new browser session, signed in again from the cookie: the choice holds
        settle(page)
        expect(_picker(page)).to_have_value("🏥 Riverside (RIV)")
        board = page.locator("[data-testid='stPlotlyChart']").first
        expect(board).to_contain_text("River chair 1")
        assert "North chair 1" not in board.inner_text()

        page.goto(clinic_app.url)  # and the Chairside list
        settle(page)
        expect(_picker(page)).to_have_value("🏥 Riverside (RIV)")
        _shows_only(page, "Brook, Pat", "Ashby, Pat")
        assert page.locator("[data-testid='stException']").count() == 0, "a traceback was shown"
    except Exception:
        page.screenshot(path="/tmp/failed-site-picker.png", full_page=True)
        raise
    finally:
        context.close()
