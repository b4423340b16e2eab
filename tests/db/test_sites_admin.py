"""Running a clinic network (issue 13): adding and editing sites, where a person works, the site a
person picked, and a wall display paired at a site. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from db.models import AppUser, AuditEvent, UserSite
from infusion.accounts import auth, tokens
from infusion.accounts import cli as users
from infusion.accounts.actor import Actor
from infusion.clock import utcnow
from infusion.errors import ConflictError, NotFoundError, PermissionDenied, ValidationError
from infusion.reads import board
from infusion.services import setup
from tests.helpers import ADMIN, new_patient, staff_actor, therapy_id, walk


@pytest.fixture(autouse=True)
def _fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def _site_b(db, unit: str = "F"):  # type: ignore[no-untyped-def]
    weight = "lb" if unit == "F" else "kg"
    return setup.add_site(db, ADMIN, "Riverside", "riv", "America/Los_Angeles", unit, weight, phone="555-0199")


def test_an_administrator_adds_a_site_with_its_own_zone_and_units_and_it_is_audited(db):
    site = _site_b(db)
    assert (site.code, site.timezone, site.temperature_unit, site.weight_unit, site.active) == (
        "RIV",
        "America/Los_Angeles",
        "F",
        "lb",
        True,
    )
    assert {s.code for s in setup.list_sites(db, ADMIN)} == {"S1", "RIV"}
    with db.reading() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.entity == "clinic", AuditEvent.action == "create"))
        assert any(e.entity_id == site.id and e.after["code"] == "RIV" for e in event)


def test_add_site_says_what_is_wrong_beside_each_field(db):
    with pytest.raises(ValidationError) as refused:
        setup.add_site(db, ADMIN, "  ", "no spaces!", "Mars/Olympus", "K", "st")
    problems = refused.value.problems
    assert problems["name"] == "The site needs a name."
    assert "letters or digits" in problems["code"]
    assert "Unknown time zone 'Mars/Olympus'" in problems["timezone"]
    assert "C or F" in problems["temperature_unit"] and "kg or lb" in problems["weight_unit"]
    with pytest.raises(ValidationError) as refused:
        setup.add_site(db, ADMIN, "Empty code", "", "UTC", "C", "kg")
    assert set(refused.value.problems) == {"code"}
    _site_b(db)
    with pytest.raises(ConflictError, match="RIV is already used by Riverside"):
        setup.add_site(db, ADMIN, "Another", "Riv", "UTC", "C", "kg")
    with pytest.raises(PermissionDenied):
        setup.add_site(db, staff_actor(db, "Mo Manager", "manager"), "North", "N", "UTC", "C", "kg")
    assert len(setup.list_sites(db, ADMIN)) == 2


def test_a_named_site_is_edited_with_its_code_and_the_version_the_administrator_saw(db):
    site = _site_b(db)
    first = setup.get_clinic(db)
    edited = setup.update_clinic(
        db,
        ADMIN,
        site_id=site.id,
        name="Riverside Center",
        code="RVS",
        timezone="America/Denver",
        temperature_unit="F",
        weight_unit="lb",
        expected_version=site.version,
    )
    assert (edited.name, edited.code, edited.timezone) == ("Riverside Center", "RVS", "America/Denver")
    assert setup.get_clinic(db).name == first.name  # the first site is untouched
    with pytest.raises(ConflictError, match="since you opened them"):
        setup.update_clinic(
            db,
            ADMIN,
            site_id=site.id,
            name="Stale",
            timezone="UTC",
            temperature_unit="C",
            weight_unit="kg",
            expected_version=site.version,
        )
    with pytest.raises(ConflictError, match="S1 is already used"):
        setup.update_clinic(
            db, ADMIN, site_id=site.id, name="X", code="s1", timezone="UTC", temperature_unit="C", weight_unit="kg"
        )
    closed = setup.update_clinic(
        db, ADMIN, site_id=site.id, name="R", timezone="UTC", temperature_unit="C", weight_unit="kg", active=False
    )
    assert not closed.active
    with pytest.raises(ValidationError, match="only open site"):
        setup.update_clinic(
            db, ADMIN, site_id=first.id, name="F", timezone="UTC", temperature_unit="C", weight_unit="kg", active=False
        )


def test_set_user_scope_replaces_the_sites_is_audited_and_refuses_an_empty_scope(db):
    site_b = _site_b(db).id
    site_a = setup.get_clinic(db).id
    admin = staff_actor(db, "Ada Admin", "admin")
    nurse = setup.add_staff(db, ADMIN, "Nina Nurse", "nurse", sites=[site_a])
    setup.set_user_scope(db, admin, nurse.id, network_wide=False, sites=[site_b])
    with db.reading() as s:
        held = set(s.scalars(select(UserSite.site_id).where(UserSite.user_id == nurse.id)))
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "set_scope")).one()
    assert held == {site_b}
    assert event.before == {"network_wide": False, "sites": [site_a]}
    assert event.after == {"network_wide": False, "sites": [site_b]}
    assert event.user_name == "Ada Admin"

    with pytest.raises(ValidationError) as refused:
        setup.set_user_scope(db, admin, nurse.id, network_wide=False, sites=[])
    assert "at least one site" in refused.value.problems["sites"]
    with pytest.raises(ValidationError):
        setup.set_user_scope(db, admin, nurse.id, network_wide=False, sites=[987654])
    with pytest.raises(PermissionDenied):
        setup.set_user_scope(db, staff_actor(db, "Cal Charge", "charge_nurse"), nurse.id, network_wide=True, sites=[])

    setup.set_user_scope(db, admin, nurse.id, network_wide=True, sites=[])
    with db.reading() as s:
        user = s.get(AppUser, nurse.id)
        assert user is not None and user.network_wide
        assert not list(s.scalars(select(UserSite).where(UserSite.user_id == nurse.id)))


def test_new_staff_get_the_scope_given_and_a_site_bound_person_needs_a_site(db):
    site_b = _site_b(db).id
    nurse = setup.add_staff(db, ADMIN, "Bea Nurse", "nurse", sites=[site_b])
    manager = setup.add_staff(db, ADMIN, "Max Manager", "manager", network_wide=False, sites=[site_b])
    account = auth.add_user(
        db, ADMIN, username="nw", display_name="Net Wide", role="charge_nurse", password=None, network_wide=True
    )
    with db.reading() as s:
        assert set(s.scalars(select(UserSite.site_id).where(UserSite.user_id == nurse.id))) == {site_b}
        assert not s.get(AppUser, manager.id).network_wide  # type: ignore[union-attr]
        assert s.get(AppUser, account.id).network_wide  # type: ignore[union-attr]
    with pytest.raises(ValidationError, match="at least one site"):
        auth.add_user(db, ADMIN, username="nobody", display_name="No Site", role="nurse", network_wide=False, sites=[])


def test_choose_site_is_remembered_for_the_next_sign_in_and_refuses_a_site_not_held(db):
    site_a = setup.get_clinic(db).id
    site_b = _site_b(db).id
    manager = staff_actor(db, "Mo Manager", "manager")  # network-wide by role
    assert setup.working_clinic(db, manager).id == site_a
    setup.choose_site(db, manager, site_b)
    fresh = Actor(manager.user_id, manager.name, manager.role)  # a new sign-in: no site picked yet
    assert setup.working_clinic(db, fresh).id == site_b
    with db.reading() as s:
        assert s.get(AppUser, manager.user_id).last_site_id == site_b  # type: ignore[union-attr]
        assert not list(s.scalars(select(AuditEvent).where(AuditEvent.action.like("%site%"))))

    nurse = staff_actor(db, "Nina Nurse")  # at the first site only
    with pytest.raises(PermissionDenied, match="do not work at Riverside"):
        setup.choose_site(db, nurse, site_b)
    with pytest.raises(NotFoundError):
        setup.choose_site(db, nurse, 987654)
    assert setup.working_clinic(db, nurse).id == site_a


def test_a_wall_display_paired_at_site_b_shows_site_b_chairs_only(db):
    site_a = setup.get_clinic(db).id
    site_b = _site_b(db, "C").id
    setup.add_chair(db, ADMIN, "A-1", site_id=site_a)
    b_chair = setup.add_chair(db, ADMIN, "B-1", site_id=site_b).id
    nurse_b = Actor(setup.add_staff(db, ADMIN, "Bo Nurse", "nurse", sites=[site_b]).id, "Bo Nurse", "nurse")
    from infusion.services import sessions

    sid = sessions.create_session(
        db, nurse_b, patient_id=new_patient(db, nurse_b), therapy_id=therapy_id(db, "natalizumab"), chair_id=b_chair
    ).id
    walk(db, nurse_b, sid, "infusing")
    admin = staff_actor(db, "Ada Admin", "admin")
    issued = tokens.issue_display(db, admin, "Riverside bay", site_id=site_b)
    screen = tokens.resume(db, issued.token, 15, now=utcnow() + timedelta(hours=2))
    assert screen is not None and screen.site_id == site_b and screen.sites == frozenset({site_b})
    frame = board.board_frame(db, screen, initials=True)
    assert set(frame["chair"]) == {"B-1"}
    (paired,) = tokens.displays(db, admin)
    assert paired.site_id == site_b

    # paired without naming a site: the administrator's working site
    setup.choose_site(db, admin, site_a)
    other = tokens.issue_display(db, admin, "Main bay")
    main = tokens.resume(db, other.token, 15)
    assert main is not None and main.site_id == site_a
    assert board.board_frame(db, main, initials=True).empty


def test_cli_adds_a_user_at_named_sites_or_network_wide(db, db_url, monkeypatch, capsys):
    if not db_url.startswith("sqlite"):
        pytest.skip("the command line is exercised on SQLite")
    _site_b(db)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(""))
    assert users.main(["--database-url", db_url, "add", "bea", "--name", "Bea", "--role", "nurse",
                       "--no-password", "--site", "riv", "--site", "S1"]) == 0  # fmt: skip
    assert capsys.readouterr().out.strip() == "Added bea (nurse, RIV,S1)."
    assert users.main(["--database-url", db_url, "add", "cy", "--name", "Cy", "--role", "nurse",
                       "--no-password", "--network"]) == 0  # fmt: skip
    assert capsys.readouterr().out.strip() == "Added cy (nurse, network)."
    assert users.main(["--database-url", db_url, "add", "di", "--name", "Di", "--role", "nurse",
                       "--no-password", "--site", "NOPE"]) == 1  # fmt: skip
    assert "No site with the code NOPE" in capsys.readouterr().err
