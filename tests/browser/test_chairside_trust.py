"""Chairside a nurse can trust, in a real browser at the tablet's 1024×768.

What a nurse met at the chair, each checked against the database:

1. a double or triple tap on a save button stores exactly one entry and shows success;
2. a refused save keeps every field as typed, with the message in view beside the button;
3. the tab in use stays selected after a save or a refusal;
4. a session opened low in the list (or a walk-in added) scrolls into view;
5. the vitals form is blank after a confirmed save;
6. a flagged-vitals confirmation does not outlive a switch to another session;
9. a booked patient whose chair is still occupied can be moved to a free chair (audited).

The data is built with the service functions before the browser opens it; one app
server and one Chromium serve the whole module, each test has its own sessions.
"""

from __future__ import annotations

import itertools
import re
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from db.models import Addendum, AuditEvent, InfusionSession, Premedication, RateChange, Reaction, VitalSign
from infusion.services import sessions
from infusion.services.setup import add_chair, add_patient
from tests.browser.conftest import CHROMIUM, ClinicApp, settle
from tests.helpers import ADMIN, ago, therapy_id, walk
from ui.chairside.chairs import SHARED_CHAIR
from ui.chairside.context import PANEL_KEY

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(), reason="Debian chromium not installed"),
]
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

_n = itertools.count(1)


# ---------------------------------------------------------------- data, built with the services


def _patient(app: ClinicApp) -> tuple[int, str]:
    n = next(_n)
    family = f"Trust{n}{uuid.uuid4().hex[:4]}"
    p = add_patient(app.db, app.nurse, mrn=f"TR{uuid.uuid4().hex[:8]}", given_name="Rosa", family_name=family)
    return p.id, f"Rosa {family}"


def _chair(app: ClinicApp) -> tuple[int, str]:
    name = f"Bay {next(_n)}-{uuid.uuid4().hex[:4]}"
    return add_chair(app.db, ADMIN, name).id, name


def _session(app: ClinicApp, therapy: str = "natalizumab", *, to: str | None = "infusing", chair_id: int | None = None):
    """A session of a new patient, walked to `to` (None: booked, not checked in); returns (id, patient name)."""
    patient_id, name = _patient(app)
    sid = sessions.create_session(
        app.db,
        app.nurse,
        patient_id=patient_id,
        therapy_id=therapy_id(app.db, therapy),
        chair_id=chair_id or _chair(app)[0],
    ).id
    if to is not None:
        walk(app.db, app.nurse, sid, to, t0=ago(40))  # IV started 20 min ago: inside every window
    return sid, name


def _count(app: ClinicApp, model: Any, sid: int, *where: Any) -> int:
    with app.db.reading() as s:
        return s.scalar(select(func.count()).select_from(model).where(model.session_id == sid, *where))


def _expect_count(page: Any, app: ClinicApp, model: Any, sid: int, expected: int, *where: Any) -> None:
    """The rows a tap stored: waits while a loaded machine is still running the taps' reruns, then
    checks the exact count (a double or triple tap must never store more than one)."""
    deadline = time.time() + 20
    while time.time() < deadline and _count(app, model, sid, *where) < expected:
        page.wait_for_timeout(250)
    settle(page)
    assert _count(app, model, sid, *where) == expected


# ---------------------------------------------------------------- the page


def _open(page: Any, sid: int) -> None:
    page.locator(f".st-key-open_{sid} button").click()
    settle(page)


def _form(page: Any, button: str) -> Any:
    """The form whose submit button reads `button`."""
    return page.locator("[data-testid='stForm']").filter(has=page.get_by_role("button", name=button, exact=True))


def _tab(page: Any, name: str) -> Any:
    return page.get_by_role("tab", name=re.compile(name))


def _select_tab(page: Any, name: str) -> None:
    _tab(page, name).click()
    settle(page)
    expect(_tab(page, name)).to_have_attribute("aria-selected", "true")


def _pick(page: Any, field: Any, option: str) -> None:
    """Choose `option` in a selectbox or multiselect (the list opens in a popover outside the form)."""
    field.click()
    page.keyboard.type(option)  # filter the list, so the option is rendered whatever its place
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")


def _choose(page: Any, field: Any, option: str) -> None:
    """Choose `option` in a single selectbox (no Escape afterwards: it clears a box that may be empty)."""
    field.click()
    page.get_by_role("option", name=option, exact=True).click()


def _double(button: Any) -> None:
    button.dblclick()


def _triple(button: Any) -> None:
    button.click(click_count=3)


def _refused(page: Any, message: str) -> None:
    """The refusal is on screen where the nurse is looking (not hidden in a tab or below the fold)."""
    alert = page.get_by_text(message, exact=False).first
    expect(alert).to_be_visible()
    expect(alert).to_be_in_viewport()


def _succeeded(page: Any, message: str) -> None:
    expect(page.get_by_text(message, exact=False).first).to_be_visible()
    assert page.get_by_text("Not saved", exact=False).count() == 0


# ---------------------------------------------------------------- 1, 2, 5: every save button


def test_premedication_refused_then_double_and_triple_tap(tablet: Any, clinic_app: ClinicApp) -> None:
    """Premedication is charted before the IV starts (the Ready step), as coded choices."""
    sid, _ = _session(clinic_app, "ocrelizumab_iv", to="ready")
    page = tablet()
    _open(page, sid)
    form = _form(page, "Record premedication")
    drug, dose = form.get_by_label("Drug", exact=True), form.get_by_label("Dose", exact=True)
    button = form.get_by_role("button", name="Record premedication")

    _choose(page, drug, "Diphenhydramine (antihistamine)")
    button.click()
    settle(page)
    _refused(page, "Enter the premedication dose")
    expect(drug).to_have_value("Diphenhydramine (antihistamine)")  # the pick is kept
    assert _count(clinic_app, Premedication, sid) == 0

    dose.fill("25")
    _double(button)
    settle(page)
    _expect_count(page, clinic_app, Premedication, sid, 1)
    _succeeded(page, "Premedication recorded.")
    expect(dose).to_have_value("")  # a blank form after a confirmed save
    expect(drug).to_have_value("")

    _choose(page, drug, "Acetaminophen (paracetamol)")
    dose.fill("650")
    _triple(button)
    settle(page)
    _expect_count(page, clinic_app, Premedication, sid, 2)
    _succeeded(page, "Premedication recorded.")
    with clinic_app.db.reading() as s:
        coded = sorted(
            s.execute(
                select(Premedication.drug_code, Premedication.dose_value, Premedication.dose_unit).where(
                    Premedication.session_id == sid
                )
            ).all()
        )
    assert coded == [("acetaminophen", 650.0, "mg"), ("diphenhydramine", 25.0, "mg")]


VITALS = {"Systolic BP": "118", "Diastolic BP": "74", "Pulse": "80", "Respiration": "16", "SpO2 %": "98"}


def _fill(form: Any, values: dict[str, str]) -> None:
    for label, value in values.items():
        form.get_by_label(label, exact=True).fill(value)


def test_vitals_refused_kept_then_blank_after_double_and_triple_tap(tablet: Any, clinic_app: ClinicApp) -> None:
    sid, _ = _session(clinic_app)
    before = _count(clinic_app, VitalSign, sid)  # the check-in set
    page = tablet()
    _open(page, sid)
    expect(_tab(page, "Vitals")).to_have_attribute("aria-selected", "true")
    form = _form(page, "Save vitals")
    button = form.get_by_role("button", name="Save vitals")

    _fill(form, {**VITALS, "Diastolic BP": "130"})
    button.click()
    settle(page)
    _refused(page, "Diastolic BP 130 must be below systolic BP 118")
    for label, value in {**VITALS, "Diastolic BP": "130"}.items():
        expect(form.get_by_label(label, exact=True)).to_have_value(value)
    expect(_tab(page, "Vitals")).to_have_attribute("aria-selected", "true")
    assert _count(clinic_app, VitalSign, sid) == before

    form.get_by_label("Diastolic BP", exact=True).fill("74")
    _double(button)
    settle(page)
    _expect_count(page, clinic_app, VitalSign, sid, before + 1)
    _succeeded(page, "Vitals saved")
    for label in VITALS:  # blank: one more tap cannot store the same set again
        expect(form.get_by_label(label, exact=True)).to_have_value("")
    expect(_tab(page, "Vitals")).to_have_attribute("aria-selected", "true")

    _fill(form, {**VITALS, "Pulse": "76"})
    _triple(button)
    settle(page)
    _expect_count(page, clinic_app, VitalSign, sid, before + 2)
    _succeeded(page, "Vitals saved")
    expect(form.get_by_label("Pulse", exact=True)).to_have_value("")


def test_rate_change_and_early_stop_keep_the_rate_tab(tablet: Any, clinic_app: ClinicApp) -> None:
    sid, _ = _session(clinic_app)
    changes = (RateChange.kind == "change",)
    page = tablet()
    _open(page, sid)
    _select_tab(page, "Rate")
    form = _form(page, "Change rate")
    rate, note = form.get_by_label("New rate mL/h", exact=True), form.get_by_label("Note", exact=True)
    button = form.get_by_role("button", name="Change rate")

    rate.fill("0")
    note.fill("titration step")
    button.click()
    settle(page)
    _refused(page, "Rate 0 mL/h: enter a rate above 0")
    expect(_tab(page, "Rate")).to_have_attribute("aria-selected", "true")
    expect(rate).to_have_value("0.00")
    expect(note).to_have_value("titration step")
    assert _count(clinic_app, RateChange, sid, *changes) == 0

    rate.fill("80")
    _double(button)
    settle(page)
    _expect_count(page, clinic_app, RateChange, sid, 1, *changes)
    _succeeded(page, "Rate changed to 80 mL/h.")
    expect(_tab(page, "Rate")).to_have_attribute("aria-selected", "true")

    # above the label's ceiling (Tysabri: 100 mL in about an hour, 100 mL/h): a triple tap saves nothing and
    # asks, beside the button, on the Rate tab; ticked, one tap saves it once
    form = _form(page, "Change rate")
    form.get_by_label("New rate mL/h", exact=True).fill("120")
    _triple(form.get_by_role("button", name="Change rate"))
    settle(page)
    _refused(page, "120 mL/h is above the rate of the label's infusion time")
    expect(_tab(page, "Rate")).to_have_attribute("aria-selected", "true")
    assert _count(clinic_app, RateChange, sid, *changes) == 1
    form = _form(page, "Change rate")
    expect(form.get_by_label("New rate mL/h", exact=True)).to_have_value("120.00")
    form.get_by_text("Give this rate: I have checked it against the order").click()
    _double(form.get_by_role("button", name="Change rate"))
    settle(page)
    _expect_count(page, clinic_app, RateChange, sid, 2, *changes)
    _succeeded(page, "Rate changed to 120 mL/h.")
    expect(_tab(page, "Rate")).to_have_attribute("aria-selected", "true")
    with clinic_app.db.reading() as s:
        assert s.get(InfusionSession, sid).current_rate_ml_h == 120

    # IV stop 20 min into a 60 min infusion, without the deliberate tick: refused, still on Rate
    stop = _form(page, "⏹ Stop IV")
    stop.get_by_role("button", name="⏹ Stop IV").click()
    settle(page)
    _refused(page, "Tick “Yes, stop the IV now”")
    expect(_tab(page, "Rate")).to_have_attribute("aria-selected", "true")
    with clinic_app.db.reading() as s:
        assert s.get(InfusionSession, sid).status == "infusing"


def test_reaction_refused_keeps_every_field_then_double_and_triple_tap(tablet: Any, clinic_app: ClinicApp) -> None:
    sid, _ = _session(clinic_app)
    page = tablet()
    _open(page, sid)
    _select_tab(page, "Reaction")
    form = _form(page, "Save reaction")
    button = form.get_by_role("button", name="Save reaction")
    medication = form.get_by_label("Medication given (drug, dose, route)", exact=True)

    _pick(page, form.get_by_label("Symptoms", exact=True), "Flushing")
    form.get_by_text("🟡 G1", exact=True).click()
    # the nurse sees her grade chosen before she goes on (on a loaded machine a click during a rerun is lost)
    expect(form.get_by_role("radio", name="🟡 G1")).to_be_checked()
    medication.fill("Diphenhydramine 25 mg IV")
    button.click()
    settle(page)
    _refused(page, "Record what was done")
    expect(_tab(page, "Reaction")).to_have_attribute("aria-selected", "true")
    expect(form.get_by_text("Flushing", exact=True)).to_be_visible()  # the chosen symptom is still there
    expect(form.get_by_role("radio", name="🟡 G1")).to_be_checked()
    expect(medication).to_have_value("Diphenhydramine 25 mg IV")
    assert _count(clinic_app, Reaction, sid) == 0

    _pick(page, form.get_by_label("Action taken", exact=True), "Medication given")
    # the nurse sees her choice in the form before she taps (on a loaded machine the list can still be closing)
    expect(form.get_by_text("Medication given", exact=True)).to_be_visible()
    _double(button)
    settle(page)
    _expect_count(page, clinic_app, Reaction, sid, 1)
    _succeeded(page, "Reaction recorded.")
    expect(_tab(page, "Reaction")).to_have_attribute("aria-selected", "true")
    expect(medication).to_have_value("")

    form = _form(page, "Save reaction")
    _pick(page, form.get_by_label("Symptoms", exact=True), "Rash")
    form.get_by_text("🟡 G1", exact=True).click()
    expect(form.get_by_role("radio", name="🟡 G1")).to_be_checked()
    _pick(page, form.get_by_label("Action taken", exact=True), "Observed only")
    _triple(form.get_by_role("button", name="Save reaction"))
    settle(page)
    _expect_count(page, clinic_app, Reaction, sid, 2)
    _succeeded(page, "Reaction recorded.")
    expect(_tab(page, "Reaction")).to_have_attribute("aria-selected", "true")


def test_addendum_refused_then_double_and_triple_tap(tablet: Any, clinic_app: ClinicApp) -> None:
    sid, _ = _session(clinic_app)
    page = tablet()
    _open(page, sid)
    _select_tab(page, "Reaction")  # the tab in use must survive a save below the tabs
    page.get_by_text("Correct the record / addendum").click()
    settle(page)
    form = _form(page, "Add addendum")
    text = form.get_by_label("Text", exact=True)
    button = form.get_by_role("button", name="Add addendum")

    text.fill("   ")
    button.click()
    settle(page)
    _refused(page, "Write the addendum.")
    expect(text).to_have_value("   ")
    expect(_tab(page, "Reaction")).to_have_attribute("aria-selected", "true")
    assert _count(clinic_app, Addendum, sid) == 0

    text.fill("Patient tolerated the first 20 minutes well.")
    _double(button)
    settle(page)
    _expect_count(page, clinic_app, Addendum, sid, 1)
    _succeeded(page, "Addendum added.")
    expect(text).to_have_value("")
    expect(_tab(page, "Reaction")).to_have_attribute("aria-selected", "true")

    text.fill("Family member present.")
    _triple(button)
    settle(page)
    _expect_count(page, clinic_app, Addendum, sid, 2)
    _succeeded(page, "Addendum added.")


# ---------------------------------------------------------------- 4: the panel comes into view


def test_opening_a_card_low_in_the_list_and_a_walk_in_scroll_the_panel_into_view(
    tablet: Any, clinic_app: ClinicApp
) -> None:
    for _ in range(12):
        _session(clinic_app, to=None)
    page = tablet()
    buttons = page.locator("[class*='st-key-open_'] button")
    last = buttons.last
    expect(last).not_to_be_in_viewport()  # precondition: the card is below the fold
    key = next(
        c
        for c in last.locator("xpath=ancestor::*[contains(@class,'st-key-open_')][1]").get_attribute("class").split()
        if c.startswith("st-key-open_")
    )
    sid = int(key.removeprefix("st-key-open_"))
    with clinic_app.db.reading() as s:
        row = s.get(InfusionSession, sid)
    last.click()
    settle(page)
    panel = page.locator(".st-key-session_panel")
    heading = panel.locator("h3").first
    expect(heading).to_be_visible()
    expect(heading).to_be_in_viewport()
    assert row is not None
    expect(page.locator(f".st-key-open_{sid} button")).to_have_text("▸ Open session")

    # a walk-in added from the bottom of the list opens, in view
    page.get_by_text("Add a walk-in session").click()
    settle(page)
    walk_in = _form(page, "Add session")
    family = f"Walkin{uuid.uuid4().hex[:6]}"
    walk_in.get_by_label("New patient MRN", exact=True).fill(f"WI{uuid.uuid4().hex[:8]}")
    walk_in.get_by_label("Given name", exact=True).fill("Lena")
    walk_in.get_by_label("Family name", exact=True).fill(family)
    walk_in.get_by_label("Therapy", exact=True).click()  # starts empty: picked, typed to filter the list
    page.keyboard.type("Natalizumab")
    page.get_by_role("option", name="Natalizumab (Tysabri)", exact=True).click()
    walk_in.get_by_role("button", name="Add session").click()
    settle(page)
    heading = page.locator(".st-key-session_panel h3").first
    expect(heading).to_contain_text(f"Lena {family}")
    expect(heading).to_be_in_viewport()
    _succeeded(page, "Walk-in session added.")


# ---------------------------------------------------------------- 6: no confirmation outlives its session


def test_flagged_confirmation_is_dropped_on_switching_sessions(tablet: Any, clinic_app: ClinicApp) -> None:
    first, _ = _session(clinic_app)
    other, _ = _session(clinic_app)
    before = _count(clinic_app, VitalSign, first)
    page = tablet()
    _open(page, first)
    form = _form(page, "Save vitals")
    _fill(form, {**VITALS, "Temperature °C": "39.2"})
    form.get_by_role("button", name="Save vitals").click()
    settle(page)
    pending = page.get_by_text("Abnormal values — confirm before saving")
    expect(pending).to_be_visible()

    _open(page, other)
    _open(page, first)
    expect(pending).to_have_count(0)
    expect(page.get_by_role("button", name="Confirm and save")).to_have_count(0)
    assert _count(clinic_app, VitalSign, first) == before

    # flagged again, then a double tap on "Confirm and save": one set stored, a blank form
    form = _form(page, "Save vitals")
    _fill(form, {**VITALS, "Temperature °C": "39.2"})
    form.get_by_role("button", name="Save vitals").click()
    settle(page)
    _double(page.get_by_role("button", name="Confirm and save"))
    settle(page)
    _expect_count(page, clinic_app, VitalSign, first, before + 1)
    _succeeded(page, "Vitals saved")
    expect(pending).to_have_count(0)
    expect(form.get_by_label("Temperature °C", exact=True)).to_have_value("")


# ---------------------------------------------------------------- 9: move to another chair


def test_booked_patient_moves_from_an_occupied_chair(tablet: Any, clinic_app: ClinicApp) -> None:
    chair_id, _ = _chair(clinic_app)
    _session(clinic_app, chair_id=chair_id)  # still infusing in the booked chair
    booked, _ = _session(clinic_app, chair_id=chair_id, to=None)
    target_id, target = _chair(clinic_app)
    page = tablet()
    _open(page, booked)
    expect(page.get_by_text("Move to another chair — this chair is still occupied")).to_be_visible()
    form = _form(page, "Move session")
    _pick(page, form.get_by_label("Free chair", exact=True), target)
    form.get_by_label("Why (optional)", exact=True).fill("booked chair occupied")
    _double(form.get_by_role("button", name="Move session"))
    settle(page)
    _succeeded(page, f"Moved to {target}.")
    with clinic_app.db.reading() as s:
        assert s.get(InfusionSession, booked).chair_id == target_id
        moves = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "move_chair", AuditEvent.session_id == booked)
        ).all()
    assert len(moves) == 1
    assert moves[0].before == {"chair_id": chair_id}
    assert moves[0].after == {"chair_id": target_id}
    assert moves[0].reason == "booked chair occupied"
    expect(page.get_by_text("this chair is still occupied")).to_have_count(0)


def test_a_move_into_a_chair_booked_then_is_asked_about_and_moves_once_confirmed(
    tablet: Any, clinic_app: ClinicApp
) -> None:
    """The free chair picked is booked for another patient at this time: the first tap moves nothing and
    says who holds it, beside the button; ticked and tapped twice, the session moves once, and the audit
    says the shared chair was confirmed."""
    chair_id, _ = _chair(clinic_app)
    _session(clinic_app, chair_id=chair_id)  # still infusing in the booked chair
    booked, _ = _session(clinic_app, chair_id=chair_id, to=None)
    target_id, target = _chair(clinic_app)
    _session(clinic_app, chair_id=target_id, to=None)  # another patient booked in that chair now
    page = tablet()
    _open(page, booked)
    form = _form(page, "Move session")
    _pick(page, form.get_by_label("Free chair", exact=True), target)
    form.get_by_role("button", name="Move session").click()
    settle(page)
    _refused(page, "The chair is booked for")
    with clinic_app.db.reading() as s:
        assert s.get(InfusionSession, booked).chair_id == chair_id
    form.get_by_text(SHARED_CHAIR).click()
    _double(form.get_by_role("button", name="Move session"))
    settle(page)
    _succeeded(page, f"Moved to {target}.")
    with clinic_app.db.reading() as s:
        assert s.get(InfusionSession, booked).chair_id == target_id
        moves = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "move_chair", AuditEvent.session_id == booked)
        ).all()
    assert len(moves) == 1
    assert moves[0].reason is not None and moves[0].reason.startswith(
        "chair shared, confirmed: The chair is booked for"
    )


def test_a_lot_number_longer_than_the_column_is_kept_and_refused_in_words(tablet: Any, clinic_app: ClinicApp) -> None:
    """A pasted or scanned code longer than the column is never cut short or dropped in the browser (a cap on
    the field drops a paste whole and cuts a scan at the cap, recording another lot): the field keeps every
    character and the save is refused beside the button, naming the limit."""
    sid, _ = _session(clinic_app, "methylprednisolone", to="ready")  # no program, no premedication
    page = tablet()
    _open(page, sid)
    form = _form(page, "▶ Start IV")
    scanned = "01095011015300031721123110LOT" + "7" * 51  # 80 characters, like a GS1 label's run of fields
    lot = form.get_by_label("Product lot number", exact=True)
    lot.fill(scanned)
    expect(lot).to_have_value(scanned)
    _choose(page, form.get_by_label("Site", exact=True), "Left forearm")
    form.get_by_label("Rate mL/h", exact=True).fill("100")
    form.get_by_role("button", name="▶ Start IV").click()
    settle(page)
    _refused(page, "Lot number: at most 60 characters (this one has 80)")
    expect(form.get_by_label("Product lot number", exact=True)).to_have_value(scanned)
    with clinic_app.db.reading() as s:
        assert s.get(InfusionSession, sid).status == "ready"


def test_a_reload_opens_the_same_session_again(tablet: Any, clinic_app: ClinicApp) -> None:
    """A reload (or a dropped tablet connection) used to land on "Pick a session…": the address names the
    open session, so the nurse is back in it."""
    sid, name = _session(clinic_app)
    page = tablet()
    _open(page, sid)
    expect(page.locator(f".st-key-{PANEL_KEY}").get_by_text(name, exact=False).first).to_be_visible()
    page.reload()
    settle(page)
    expect(page.locator(f".st-key-{PANEL_KEY}").get_by_text(name, exact=False).first).to_be_visible()
    assert page.get_by_text("Pick a session on the left, or add a walk-in.").count() == 0
