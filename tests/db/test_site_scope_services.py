"""Site scoping in the services (issue 13): a nurse held at one site charts, reads and books there
only; another site's session is refused by the service itself, whatever a page or URL asks, and a
network-wide role sees every site. Runs on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from db.engine import Database
from db.models import AppUser, AuditEvent, Clinic, UserSite
from infusion.accounts.actor import Actor
from infusion.errors import PermissionDenied, ValidationError
from infusion.reads import due
from infusion.reads import sessions as views
from infusion.reads.board import board_frame
from infusion.services import chairs, entries, sessions
from infusion.services.setup import add_chair, add_patient, add_staff, get_clinic, search_patients
from tests.helpers import ADMIN, new_patient, normal_vitals, therapy_id, walk


def _second_site(db: Database) -> int:
    with db.writing() as s:
        site = Clinic(
            name="Riverside Infusion Center",
            code="RIV",
            timezone="America/Los_Angeles",
            temperature_unit="C",
            weight_unit="kg",
            settings=dict(get_clinic(db).settings),
        )
        s.add(site)
        s.flush()
        return site.id


@pytest.fixture
def two_sites(db: Database) -> dict[str, int]:
    a = get_clinic(db).id
    b = _second_site(db)
    return {
        "a": a,
        "b": b,
        "chair_a": add_chair(db, ADMIN, "Chair 1", site_id=a).id,
        "chair_b": add_chair(db, ADMIN, "Chair 1", site_id=b).id,  # the same name at another site
        "chair_b2": add_chair(db, ADMIN, "Chair 2", site_id=b).id,
    }


def _staff(db: Database, name: str, role: str, sites: list[int] | None) -> Actor:
    user = add_staff(db, ADMIN, name, role)
    with db.writing() as s:
        row = s.get(AppUser, user.id)
        assert row is not None
        for old in s.scalars(select(UserSite).where(UserSite.user_id == user.id)):
            s.delete(old)
        row.network_wide = sites is None
        for site in sites or []:
            s.add(UserSite(user_id=user.id, site_id=site))
    return Actor(user.id, user.display_name, role)


def _booked(db: Database, actor: Actor, chair: int) -> int:
    return sessions.create_session(
        db, actor, patient_id=new_patient(db, actor), therapy_id=therapy_id(db, "natalizumab"), chair_id=chair
    ).id


def test_a_nurse_at_one_site_is_refused_the_other_sites_session(db: Database, two_sites: dict[str, int]) -> None:
    nurse_a = _staff(db, "Ann A", "nurse", [two_sites["a"]])
    nurse_b = _staff(db, "Bea B", "nurse", [two_sites["b"]])
    at_b = _booked(db, nurse_b, two_sites["chair_b"])
    walk(db, nurse_b, at_b, "infusing")

    with pytest.raises(PermissionDenied, match="Riverside"):
        entries.record_vitals(db, nurse_a, at_b, normal_vitals())
    with pytest.raises(PermissionDenied):
        sessions.stop_iv(db, nurse_a, at_b, expected_version=None)
    with db.reading() as s:
        views_before = s.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
    with pytest.raises(PermissionDenied):
        views.session_detail(db, nurse_a, at_b)
    with db.reading() as s:  # a refused look is not recorded as a view of the patient's record
        assert s.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1)) == views_before
    with pytest.raises(PermissionDenied):
        _booked(db, nurse_a, two_sites["chair_b2"])
    with pytest.raises(PermissionDenied, match="Riverside"):  # the flags a save would show read the session too
        entries.preview_vitals(db, nurse_a, at_b, normal_vitals(systolic=182))
    waiting = _booked(db, nurse_b, two_sites["chair_b2"])
    with pytest.raises(PermissionDenied, match="Riverside"):
        sessions.preview_check_in(db, nurse_a, waiting, normal_vitals(), None)

    # the nurse at the session's own site charts as before
    entries.record_vitals(db, nurse_b, at_b, normal_vitals())
    assert views.session_detail(db, nurse_b, at_b) is not None
    assert entries.preview_vitals(db, nurse_b, at_b, normal_vitals(systolic=182)).flags
    assert sessions.preview_check_in(db, nurse_b, waiting, normal_vitals(), None).news2 is not None


def test_lists_show_the_working_site_only(db: Database, two_sites: dict[str, int]) -> None:
    nurse_a = _staff(db, "Ann A", "nurse", [two_sites["a"]])
    nurse_b = _staff(db, "Bea B", "nurse", [two_sites["b"]])
    at_a = _booked(db, nurse_a, two_sites["chair_a"])
    at_b = _booked(db, nurse_b, two_sites["chair_b"])

    assert [c.id for c in views.today_sessions(db, nurse_a)] == [at_a]
    assert [c.id for c in views.today_sessions(db, nurse_b)] == [at_b]
    assert {c.id for c in chairs.free_chairs(db, nurse_a)} == {two_sites["chair_a"]}
    assert list(views.find_sessions(db, nurse_a)["id"]) == [at_a]

    # a charge nurse holding both sites works in the one picked; the board follows
    charge = _staff(db, "Cal C", "charge_nurse", [two_sites["a"], two_sites["b"]])
    at_b_view = Actor(charge.user_id, charge.name, charge.role, site_id=two_sites["b"])
    assert [c.id for c in views.today_sessions(db, at_b_view)] == [at_b]
    assert list(board_frame(db, at_b_view)["session_id"]) == [at_b]
    # a site not held is never the working site, whatever the browser asks
    sneaky = Actor(nurse_a.user_id, nurse_a.name, nurse_a.role, site_id=two_sites["b"])
    assert [c.id for c in views.today_sessions(db, sneaky)] == [at_a]


def test_a_session_moves_only_within_its_site(db: Database, two_sites: dict[str, int]) -> None:
    nurse_b = _staff(db, "Bea B", "nurse", [two_sites["b"]])
    at_b = _booked(db, nurse_b, two_sites["chair_b"])
    admin = _staff(db, "Ada Admin", "admin", None)
    with pytest.raises(ValidationError, match="another site"):
        chairs.move_session(db, admin, at_b, two_sites["chair_a"], expected_version=None)
    moved = chairs.move_session(db, nurse_b, at_b, two_sites["chair_b2"], expected_version=None)
    assert moved.chair_id == two_sites["chair_b2"]


def test_the_due_list_follows_the_patient_to_the_site_treating_them(db: Database, two_sites: dict[str, int]) -> None:
    nurse_a = _staff(db, "Ann A", "nurse", [two_sites["a"]])
    nurse_b = _staff(db, "Bea B", "nurse", [two_sites["b"]])
    network = _staff(db, "Max Manager", "charge_nurse", [two_sites["a"], two_sites["b"]])
    patient = new_patient(db, nurse_a)
    natalizumab = therapy_id(db, "natalizumab")
    first = sessions.create_session(
        db, nurse_a, patient_id=patient, therapy_id=natalizumab, chair_id=two_sites["chair_a"]
    ).id
    walk(db, nurse_a, first, "discharged", t0=views.utcnow() - timedelta(days=40))
    today = views.utcnow().date()
    every = (due.SECTION_OVERDUE, due.SECTION_WEEK, due.SECTION_LATER)
    assert list(due.due_list(db, nurse_a, today, sections=every)["patient_id"]) == [patient]
    assert due.due_list(db, nurse_b, today, sections=every).empty
    # the next infusion given at site B: the patient now belongs to B's list, their history counted
    second = sessions.create_session(
        db, nurse_b, patient_id=patient, therapy_id=natalizumab, chair_id=two_sites["chair_b"]
    ).id
    walk(db, nurse_b, second, "discharged", t0=views.utcnow() - timedelta(days=10))
    at_b = due.due_list(db, nurse_b, today, sections=every)
    assert list(at_b["patient_id"]) == [patient]
    assert due.due_list(db, nurse_a, today, sections=every).empty
    as_b = Actor(network.user_id, network.name, network.role, site_id=two_sites["b"])
    assert list(due.due_list(db, as_b, today, sections=every)["patient_id"]) == [patient]


def test_a_disabled_account_reads_nothing(db: Database, two_sites: dict[str, int]) -> None:
    nurse_a = _staff(db, "Ann A", "nurse", [two_sites["a"]])
    _booked(db, nurse_a, two_sites["chair_a"])
    with db.writing() as s:
        user = s.get(AppUser, nurse_a.user_id)
        assert user is not None
        user.active = False
    with pytest.raises(PermissionDenied, match="disabled"):
        views.today_sessions(db, nurse_a)


def test_sites_read_with_the_account_follow_a_change_in_the_same_transaction(db: Database, two_sites) -> None:
    """A write reads the account and its sites in one statement and keeps them for the transaction;
    a `user_site` row added or removed later in that transaction is what the site check sees."""
    from infusion.accounts.sites import held_sites, load_account

    nurse = _staff(db, "Nurse Scope", "nurse", [two_sites["a"]])
    with db.writing() as s:
        assert load_account(s, nurse.user_id) is not None
        assert held_sites(s, nurse) == {two_sites["a"]}
        s.add(UserSite(user_id=nurse.user_id, site_id=two_sites["b"]))
        s.flush()
        assert held_sites(s, nurse) == {two_sites["a"], two_sites["b"]}
        for row in s.scalars(select(UserSite).where(UserSite.user_id == nurse.user_id)):
            if row.site_id == two_sites["a"]:
                s.delete(row)
        s.flush()
        assert held_sites(s, nurse) == {two_sites["b"]}
        s.rollback()


def test_the_patient_pickers_list_the_sites_own_patients_and_the_new_ones_by_name(
    db: Database, two_sites: dict[str, int]
) -> None:
    """The walk-in and booking pickers (`search_patients` with the site): a patient with any session at the
    site, and a patient with no session anywhere yet; never a patient seen only at another site (found by
    MRN instead). In name order, cut at the limit."""
    nurse_a = _staff(db, "Ann A", "nurse", [two_sites["a"]])
    nurse_b = _staff(db, "Bea B", "nurse", [two_sites["b"]])

    def patient(family: str, given: str = "Pat") -> int:
        return add_patient(db, ADMIN, mrn=f"PICK-{family}-{given}", given_name=given, family_name=family).id

    only_a = patient("Young")
    only_b = patient("Adams")
    both = patient("Moore")
    new = patient("Baker")
    twin = patient("Moore", "Ada")  # the same family name: the given name orders them
    for who, pid, chair in (
        (nurse_a, only_a, "chair_a"),
        (nurse_b, only_b, "chair_b"),
        (nurse_b, both, "chair_b2"),
        (nurse_a, both, "chair_a"),
        (nurse_a, twin, "chair_a"),
    ):
        sessions.create_session(
            db, who, patient_id=pid, therapy_id=therapy_id(db, "natalizumab"), chair_id=two_sites[chair]
        )

    def picked(site: str, limit: int = 50) -> list[int]:
        return [p.id for p in search_patients(db, limit=limit, site_id=two_sites[site])]

    assert picked("a") == [new, twin, both, only_a]
    assert picked("b") == [only_b, new, both]
    assert picked("a", limit=2) == [new, twin]
    # without a site (the administrator's search): every patient
    assert {only_a, only_b, both, new, twin} <= {p.id for p in search_patients(db, limit=500)}
