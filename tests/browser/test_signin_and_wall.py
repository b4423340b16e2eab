"""In Chromium: a reload keeps the nurse signed in (and sign-out ends it), and a wall display paired by an
administrator keeps showing the board past the idle limit while a nurse's idle tablet is signed out."""

from __future__ import annotations

import time
from typing import Any

import pytest

from infusion.accounts import auth, tokens
from infusion.accounts.actor import Actor
from infusion.services import setup
from tests.browser.conftest import PASSWORD, TABLET, ClinicApp, settle

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect

WALL = {"width": 1920, "height": 1080}


def _sign_in(page: Any, app: ClinicApp, username: str, password: str = PASSWORD) -> None:
    page.goto(app.url)
    settle(page)
    page.locator("input[aria-label='User name']").fill(username)
    page.locator("input[aria-label='Password']").fill(password)
    page.get_by_role("button", name="Sign in").click()
    settle(page)


def _on_sign_in_page(page: Any) -> bool:
    return page.locator("input[aria-label='Password']").count() > 0


def test_a_reload_keeps_the_nurse_signed_in_and_sign_out_ends_it(chromium: Any, clinic_app: ClinicApp) -> None:
    context = chromium.new_context(viewport=TABLET)
    page = context.new_page()
    try:
        _sign_in(page, clinic_app, clinic_app.username)
        expect(page.get_by_text("Pick a session on the left, or add a walk-in.")).to_be_visible()
        page.reload()  # a refresh, or a tablet waking up
        settle(page)
        expect(page.get_by_text("Pick a session on the left, or add a walk-in.")).to_be_visible()
        assert not _on_sign_in_page(page)
        page.goto(f"{clinic_app.url}/due")  # typing a page's address
        settle(page)
        assert not _on_sign_in_page(page)
        expect(page.get_by_role("heading", name="Due list")).to_be_visible()
        page.get_by_role("button", name="Maria Gomez").click()
        page.get_by_role("button", name="Sign out").click()
        settle(page)
        assert _on_sign_in_page(page)
        page.reload()
        settle(page)
        assert _on_sign_in_page(page)  # the token was revoked and the cookie cleared
    finally:
        context.close()


def test_a_wall_display_outlives_the_idle_limit_that_signs_a_nurse_out(chromium: Any, clinic_app: ClinicApp) -> None:
    db = clinic_app.db
    setup_actor = Actor(None, "Setup", "admin")
    ada = auth.add_user(db, setup_actor, username="ada", display_name="Ada Admin", role="admin", password=PASSWORD)
    clinic = setup.get_clinic(db)
    setup.update_settings(db, setup_actor, {"idle_sign_out_minutes": 1}, expected_version=clinic.version)
    setup.add_chair(db, setup_actor, "Chair Wall 1")
    wall_context = chromium.new_context(viewport=WALL)
    nurse_context = chromium.new_context(viewport=TABLET)
    wall, tablet = wall_context.new_page(), nurse_context.new_page()
    try:
        _sign_in(wall, clinic_app, "ada")
        wall.goto(f"{clinic_app.url}/board")
        settle(wall)
        wall.get_by_text("Make this browser a wall display").click()
        wall.get_by_label("Screen name").fill("Infusion bay A")
        wall.get_by_role("button", name="Pair this browser").click()
        settle(wall)
        expect(wall.get_by_text("Wall display · Infusion bay A")).to_be_visible()
        expect(wall.get_by_role("heading", name="Chair board")).to_be_visible()
        _sign_in(tablet, clinic_app, clinic_app.username)
        assert not _on_sign_in_page(tablet)
        started = time.time()
        while time.time() - started < 240 and not _on_sign_in_page(tablet):  # idle limit 1 min, checked each minute
            tablet.wait_for_timeout(5000)
        assert _on_sign_in_page(tablet), "the idle nurse tablet was not signed out"
        settle(wall)
        assert not _on_sign_in_page(wall)
        expect(wall.get_by_role("heading", name="Chair board")).to_be_visible()
        expect(wall.get_by_text("Reaction open")).to_be_visible()  # the legend
        wall.reload()
        settle(wall)
        expect(wall.get_by_role("heading", name="Chair board")).to_be_visible()
        assert not _on_sign_in_page(wall)
        assert wall.get_by_role("button", name="Sign out").count() == 0  # read-only screen

        # stopped on Administration: within one board refresh the screen shows the sign-in page
        admin = Actor(ada.id, ada.display_name, "admin")
        (display,) = tokens.displays(db, admin)
        tokens.unpair_display(db, admin, display.id)
        wall.locator("input[aria-label='Password']").wait_for(timeout=100000)  # one board refresh, on a busy machine
        expect(wall.get_by_role("heading", name="Chair board")).to_have_count(0)
    finally:
        wall_context.close()
        nurse_context.close()
