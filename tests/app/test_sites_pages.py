"""AppTest: working in one site of a clinic network (issue 13) — the header's site picker, the pages that
show the working site only, the Sites section of Administration, and a wall display paired at a site."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from db.models import AppUser, Clinic, UserSite
from infusion.accounts import auth, tokens
from infusion.accounts.actor import Actor
from infusion.services import sessions, setup
from tests.app.helpers import run_app
from tests.helpers import ADMIN, form_key, therapy_id
from ui.shell import SITE_PICKER, TOKEN_KEY

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def _open(make_app, actor: Actor, path: str | None = None):  # type: ignore[no-untyped-def]
    at = make_app()
    at.session_state["actor"] = actor
    run_app(at)
    return run_app(at.switch_page(path)) if path else at


def _texts(at) -> str:  # type: ignore[no-untyped-def]
    parts: list[Any] = [e.value for e in (*at.error, *at.warning, *at.success, *at.info)]
    parts += [m.value for m in at.markdown] + [c.value for c in at.caption]
    return "\n".join(str(p) for p in parts)


def _board_chairs(at) -> str:  # type: ignore[no-untyped-def]
    """The chair board figure as JSON (its rows are the chairs)."""
    return "".join(chart.proto.spec for chart in at.get("plotly_chart"))


@pytest.fixture
def network(db) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Two sites, a chair and a booked patient at each, a nurse held at site A only."""
    site_a = setup.update_clinic(
        db, ADMIN, name="Northside", code="NTH", timezone="UTC", temperature_unit="C", weight_unit="kg"
    )
    site_b = setup.add_site(db, ADMIN, "Riverside", "RIV", "America/Los_Angeles", "C", "kg")
    chair_a = setup.add_chair(db, ADMIN, "North chair 1", site_id=site_a.id).id
    chair_b = setup.add_chair(db, ADMIN, "River chair 1", site_id=site_b.id).id
    for chair, family in ((chair_a, "Ashby"), (chair_b, "Brook")):
        pid = setup.add_patient(db, ADMIN, mrn=f"MRN-{family}", given_name="Pat", family_name=family).id
        sessions.create_session(db, ADMIN, patient_id=pid, therapy_id=therapy_id(db, "natalizumab"), chair_id=chair)
    nurse = setup.add_staff(db, ADMIN, "Nora Nurse", "nurse", sites=[site_a.id])
    charge = setup.add_staff(db, ADMIN, "Cal Charge", "charge_nurse", sites=[site_a.id])
    return {
        "a": site_a,
        "b": site_b,
        "nurse": Actor(nurse.id, nurse.display_name, "nurse"),
        "charge": Actor(charge.id, charge.display_name, "charge_nurse"),
    }


def test_staff_at_site_a_see_no_picker_and_only_site_a_sessions_and_chairs(db, make_app, network):
    at = _open(make_app, network["nurse"], "pages/chairside.py")
    assert SITE_PICKER not in [s.key for s in at.selectbox]  # one site: no picker, the name only
    assert "🏥 **Northside**" in [m.value for m in at.markdown]
    shown = _texts(at)
    assert "Ashby" in shown and "Brook" not in shown
    assert "Today (1)" in shown

    board = _open(make_app, network["charge"], "pages/board.py")  # nurses have no board page; charge nurses do
    assert SITE_PICKER not in [s.key for s in board.selectbox]
    chairs = _board_chairs(board)
    assert "North chair 1" in chairs and "River chair 1" not in chairs


def test_a_network_manager_switches_site_and_the_next_sign_in_starts_there(db, make_app, network):
    user = auth.add_user(db, ADMIN, username="mo", display_name="Mo Manager", role="manager", password=PASSWORD)
    manager = Actor(user.id, user.display_name, "manager")
    at = _open(make_app, manager, "pages/board.py")
    picker = at.selectbox(key=SITE_PICKER)
    assert sorted(picker.options) == sorted(["🏥 Northside (NTH)", "🏥 Riverside (RIV)"])
    assert picker.value == network["a"].id
    assert "North chair 1" in _board_chairs(at)

    picker.set_value(network["b"].id)
    run_app(at)
    assert at.session_state["actor"].site_id == network["b"].id
    chairs = _board_chairs(at)
    assert "River chair 1" in chairs and "North chair 1" not in chairs
    with db.reading() as s:
        assert s.get(AppUser, user.id).last_site_id == network["b"].id  # type: ignore[union-attr]

    # a new sign-in (a fresh actor, no site picked) starts at Riverside
    again = _open(make_app, auth.authenticate(db, "mo", PASSWORD), "pages/board.py")
    assert again.selectbox(key=SITE_PICKER).value == network["b"].id
    assert "River chair 1" in _board_chairs(again)


def test_add_site_refuses_with_a_message_beside_the_form_and_keeps_what_was_typed(db, make_app, network):
    admin = auth.add_user(db, ADMIN, username="ada", display_name="Ada Admin", role="admin", password=PASSWORD)
    at = _open(make_app, Actor(admin.id, admin.display_name, "admin"), "pages/administration.py")
    assert at.session_state["admin_tab"] == "Sites"
    at.text_input(key=form_key(at, "add_site", "name")).set_value("Lakeside")
    at.text_input(key=form_key(at, "add_site", "code")).set_value("riv")
    next(b for b in at.button if b.label == "Add site").click()
    run_app(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "RIV is already used by Riverside" in errors[0], errors
    assert at.text_input(key=form_key(at, "add_site", "name")).value == "Lakeside"
    assert at.text_input(key=form_key(at, "add_site", "code")).value == "riv"

    at.text_input(key=form_key(at, "add_site", "code")).set_value("LAK")
    next(b for b in at.button if b.label == "Add site").click()
    run_app(at)
    assert [e.value for e in at.error] == []
    assert "Site Lakeside (LAK) added." in [s.value for s in at.success]
    with db.reading() as s:
        assert s.scalar(select(Clinic.name).where(Clinic.code == "LAK")) == "Lakeside"
    codes = list(at.dataframe[0].value["Code"])
    assert sorted(codes) == ["LAK", "NTH", "RIV"]


def test_a_wall_display_paired_at_site_b_shows_site_b_chairs(db, make_app, network):
    admin = auth.add_user(db, ADMIN, username="ada", display_name="Ada Admin", role="admin", password=PASSWORD)
    admin_actor = Actor(admin.id, admin.display_name, "admin")
    issued = tokens.issue_display(db, admin_actor, "River bay", site_id=network["b"].id)
    screen = tokens.resume(db, issued.token, 15)
    assert screen is not None
    at = make_app()
    at.session_state["actor"] = screen
    at.session_state[TOKEN_KEY] = issued.token
    run_app(at)
    chairs = _board_chairs(at)
    assert "River chair 1" in chairs and "North chair 1" not in chairs
    assert "🏥 **Riverside**" in [m.value for m in at.markdown]
    assert "B.P." in str(chairs) or "P.B." in str(chairs)  # the patient by initials, never the name
    assert "Brook" not in chairs


def test_a_nurse_without_a_site_is_told_so_not_shown_a_traceback(db, make_app, network):
    nurse = network["nurse"]
    with db.writing() as s:
        for row in s.scalars(select(UserSite).where(UserSite.user_id == nurse.user_id)):
            s.delete(row)
    at = _open(make_app, nurse, "pages/chairside.py")
    assert any("do not hold a role at any site" in e.value for e in at.error), [e.value for e in at.error]


def test_users_get_their_sites_on_add_and_edit_and_an_empty_scope_is_refused(db, make_app, network):
    admin = auth.add_user(db, ADMIN, username="ada", display_name="Ada Admin", role="admin", password=PASSWORD)
    at = _open(make_app, Actor(admin.id, admin.display_name, "admin"), "pages/administration.py")
    at.session_state["admin_tab"] = "Users"
    run_app(at)
    at.text_input(key=form_key(at, "add_user", "username")).set_value("bea")
    at.text_input(key=form_key(at, "add_user", "name")).set_value("Bea Nurse")
    at.text_input(key=form_key(at, "add_user", "password")).set_value(PASSWORD)
    at.multiselect(key=form_key(at, "add_user", "sites")).set_value([])
    next(b for b in at.button if b.label == "Add user").click()
    run_app(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "Pick at least one site" in errors[0], errors
    assert at.text_input(key=form_key(at, "add_user", "username")).value == "bea"

    at.multiselect(key=form_key(at, "add_user", "sites")).set_value([network["b"].id])
    next(b for b in at.button if b.label == "Add user").click()
    run_app(at)
    assert "User bea added." in [s.value for s in at.success]
    users = next(d.value for d in at.dataframe if "User name" in d.value.columns)
    assert list(users.loc[users["User name"] == "bea", "Works at"]) == ["RIV"]

    # where Bea works: network-wide from now on (audited by the service)
    bea = auth.authenticate(db, "bea", PASSWORD)
    at.selectbox(key="scope_user").set_value(bea.user_id)
    run_app(at)
    at.checkbox(key=form_key(at, f"scope_{bea.user_id}", "network")).check()
    next(b for b in at.button if b.label == "Save sites").click()
    run_app(at)
    assert "Bea Nurse: sites saved." in [s.value for s in at.success]
    with db.reading() as s:
        assert s.get(AppUser, bea.user_id).network_wide  # type: ignore[union-attr]


def test_an_administrator_sets_a_sites_opening_hours_and_a_closing_before_opening_is_refused(db, make_app, network):  # type: ignore[no-untyped-def]
    admin = auth.add_user(db, ADMIN, username="ada", display_name="Ada Admin", role="admin", password=PASSWORD)
    at = _open(make_app, Actor(admin.id, admin.display_name, "admin"), "pages/administration.py")
    site = network["a"].id
    at.number_input(key=form_key(at, f"hours_{site}", "open")).set_value(19)
    at.number_input(key=form_key(at, f"hours_{site}", "close")).set_value(7)
    next(b for b in at.button if b.label == "Save opening hours").click()
    run_app(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "closing hour must be after the opening hour" in errors[0], errors
    assert at.number_input(key=form_key(at, f"hours_{site}", "open")).value == 19  # kept as typed

    at.number_input(key=form_key(at, f"hours_{site}", "close")).set_value(22)
    at.multiselect(key=form_key(at, f"hours_{site}", "days")).set_value([0, 1, 2, 3, 4, 5])
    next(b for b in at.button if b.label == "Save opening hours").click()
    run_app(at)
    assert [e.value for e in at.error] == []
    with db.reading() as s:
        stored = s.get(Clinic, site).settings
    assert (stored["opening_hour"], stored["closing_hour"], stored["open_weekdays"]) == (19, 22, [0, 1, 2, 3, 4, 5])
