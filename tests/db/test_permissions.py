"""Roles in the service layer (issue 5): every write refuses roles that do not chart,
set-up refuses non-administrators, the read side checks the role and audits session
views, the audit table is append-only in the database itself, and each write type
leaves exactly the audit events listed here, attributed to the signed-in user.

Runs on SQLite and, with CHAIRSIDE_TEST_POSTGRES_URL, on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from db.models import AuditEvent, Reaction
from infusion.accounts import auth
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import CHARTING
from infusion.clock import utcnow
from infusion.errors import PermissionDenied
from infusion.reads import sessions as views
from infusion.services import entries, sessions, setup
from tests.helpers import (
    ADMIN,
    ago,
    audit_count,
    audits_since,
    new_chair,
    new_patient,
    new_session,
    normal_vitals,
    snapshot,
    therapy_id,
    version,
    walk,
)
from ui.registry import BY_KEY
from ui.registry import pages_for as page_specs

ROLES = ("nurse", "charge_nurse", "manager", "quality", "admin")
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap Argon2 parameters: these tests are about roles, not hashing cost."""
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def people(db) -> dict[str, Actor]:
    """One real user per role (so audit rows can name their user id)."""
    out = {}
    for role in ROLES:
        user = auth.add_user(db, ADMIN, username=f"the.{role}", display_name=f"The {role}", role=role)
        out[role] = Actor(user.id, user.display_name, role)
    return out


ISSUE_PAGES = {  # issue 5, "Roles"; issue 6 adds the Due list for nurses, charge nurses and managers
    "nurse": {"chairside", "session", "due", "follow_up"},
    "charge_nurse": {"chairside", "session", "board", "due", "follow_up"},
    "manager": {"board", "trends", "due"},
    "quality": {"trends", "export", "audit"},
    "admin": set(BY_KEY),  # everything, plus Administration
}


@pytest.mark.parametrize("role", ROLES)
def test_role_tables_match_the_issue(role):
    """Every page but the session record (see the next test) is given to exactly the issue's roles."""
    assert "administration" in ISSUE_PAGES["admin"]
    assert {p.key for p in page_specs(role)} - {"session"} == ISSUE_PAGES[role] - {"session"}
    assert set(CHARTING) == {"nurse", "charge_nurse", "admin"}


def test_the_session_record_page_is_for_nurses_charge_nurses_and_admin():
    assert {role for role in ROLES if "session" in {p.key for p in page_specs(role)}} == {
        "nurse",
        "charge_nurse",
        "admin",
    }


# ------------------------------------------------------------------ charting writes
Prepare = Callable[[Any, Actor], dict[str, Any]]
Call = Callable[[Any, Actor, dict[str, Any]], Any]


def _at(db, nurse, to: str) -> dict[str, Any]:
    sid = new_session(db, nurse)
    walk(db, nurse, sid, to)
    return {"sid": sid}


def _paused(db, nurse) -> dict[str, Any]:
    ctx = _at(db, nurse, "infusing")
    entries.pause(db, nurse, ctx["sid"], at=ago(30))
    return ctx


def _ready_with_program(db, nurse) -> dict[str, Any]:
    ctx = _at(db, nurse, "ready")
    sessions.confirm_program(db, nurse, ctx["sid"], authorization_ref="AUTH-1")
    return ctx


def _open_reaction(db, nurse) -> dict[str, Any]:
    ctx = _at(db, nurse, "infusing")
    ctx["reaction"] = entries.record_reaction(
        db, nurse, ctx["sid"], symptoms=["rash"], grade=1, actions=["observed"], onset_at=ago(30)
    ).id
    return ctx


def _booking(db, nurse) -> dict[str, Any]:
    return {"patient": new_patient(db, nurse), "chair": new_chair(db, nurse), "therapy": therapy_id(db, "natalizumab")}


CHARTING_WRITES: dict[str, tuple[Prepare, Call]] = {
    "create_session": (
        _booking,
        lambda db, a, c: sessions.create_session(
            db, a, patient_id=c["patient"], therapy_id=c["therapy"], chair_id=c["chair"]
        ),
    ),
    "check_in": (
        lambda db, n: {"sid": new_session(db, n)},
        lambda db, a, c: sessions.check_in(db, a, c["sid"], normal_vitals(), expected_version=None),
    ),
    "proceed": (
        lambda db, n: _at(db, n, "checked_in"),
        lambda db, a, c: sessions.proceed(db, a, c["sid"], expected_version=None),
    ),
    "defer": (
        lambda db, n: _at(db, n, "checked_in"),
        lambda db, a, c: sessions.defer(db, a, c["sid"], "Fever", expected_version=None),
    ),
    "cancel": (
        lambda db, n: {"sid": new_session(db, n)},
        lambda db, a, c: sessions.cancel(db, a, c["sid"], "Patient rang to cancel", expected_version=None),
    ),
    "confirm_program": (
        lambda db, n: _at(db, n, "checked_in"),
        lambda db, a, c: sessions.confirm_program(db, a, c["sid"], authorization_ref="TOUCH-1"),
    ),
    "start_iv": (
        _ready_with_program,
        lambda db, a, c: sessions.start_iv(
            db,
            a,
            c["sid"],
            expected_version=None,
            site="Left forearm",
            gauge=22,
            attempts=1,
            lot_number="LOT-9",
            rate_ml_h=100,
        ),
    ),
    "stop_iv": (
        lambda db, n: _at(db, n, "infusing"),
        lambda db, a, c: sessions.stop_iv(db, a, c["sid"], expected_version=None),
    ),
    "discharge": (
        lambda db, n: _at(db, n, "observation"),
        lambda db, a, c: sessions.discharge(db, a, c["sid"], expected_version=None, early_reason="test"),
    ),
    "record_vitals": (
        lambda db, n: _at(db, n, "infusing"),
        lambda db, a, c: entries.record_vitals(db, a, c["sid"], normal_vitals()),
    ),
    "record_premedication": (
        lambda db, n: _at(db, n, "checked_in"),
        lambda db, a, c: entries.record_premedication(db, a, c["sid"], drug="Cetirizine", dose="10 mg", route="PO"),
    ),
    "change_rate": (lambda db, n: _at(db, n, "infusing"), lambda db, a, c: entries.change_rate(db, a, c["sid"], 90)),
    "pause": (lambda db, n: _at(db, n, "infusing"), lambda db, a, c: entries.pause(db, a, c["sid"])),
    "resume": (_paused, lambda db, a, c: entries.resume(db, a, c["sid"], 100)),
    "record_reaction": (
        lambda db, n: _at(db, n, "infusing"),
        lambda db, a, c: entries.record_reaction(db, a, c["sid"], symptoms=["flushing"], grade=1, actions=["observed"]),
    ),
    "resolve_reaction": (_open_reaction, lambda db, a, c: entries.resolve_reaction(db, a, c["reaction"])),
    "add_patient": (
        lambda db, n: {},
        lambda db, a, c: setup.add_patient(db, a, mrn="MRN-NEW", given_name="New", family_name="Patient"),
    ),
}


@pytest.mark.parametrize("service", list(CHARTING_WRITES))
def test_charting_writes_refuse_roles_that_do_not_chart_and_store_nothing(db, people, service):
    prepare, call = CHARTING_WRITES[service]
    ctx = prepare(db, people["nurse"])
    before = snapshot(db)
    for actor in (people["manager"], people["quality"], None, Actor(None, "Visitor", "visitor")):
        with pytest.raises(PermissionDenied):
            call(db, actor, ctx)
        assert snapshot(db) == before, f"{service} as {actor} changed the database"

    # the refusal was the role: the same call as a nurse goes through
    count = audit_count(db)
    call(db, people["nurse"], ctx)
    assert audit_count(db) > count


def test_refusal_message_names_the_role(db, people):
    ctx = _booking(db, people["nurse"])
    with pytest.raises(PermissionDenied, match=r"Your role \(Clinic manager\) may not chart infusion sessions"):
        CHARTING_WRITES["create_session"][1](db, people["manager"], ctx)
    with pytest.raises(PermissionDenied, match="Sign in to chart infusion sessions"):
        CHARTING_WRITES["create_session"][1](db, None, ctx)


@pytest.mark.parametrize("role", ["charge_nurse", "admin"])
def test_charge_nurses_and_administrators_chart_too(db, people, role):
    actor = people[role]
    sid = new_session(db, actor)
    walk(db, actor, sid, "discharged")
    assert sessions.get_session(db, sid).status == "discharged"


# ------------------------------------------------------------------ set-up and accounts
def _target(db, admin) -> dict[str, Any]:
    user = auth.add_user(db, ADMIN, username="target", display_name="Target User", role="nurse")
    return {"user": user.id, "therapy": therapy_id(db, "natalizumab")}


ADMIN_WRITES: dict[str, Call] = {
    "update_clinic": lambda db, a, c: setup.update_clinic(
        db, a, name="Renamed clinic", timezone="Europe/Paris", temperature_unit="F", weight_unit="lb"
    ),
    "update_settings": lambda db, a, c: setup.update_settings(db, a, {"idle_sign_out_minutes": 5}),
    "update_thresholds": lambda db, a, c: setup.update_settings(db, a, {"thresholds": {"spo2_low": 90}}),
    "update_therapy": lambda db, a, c: setup.update_therapy(
        db, a, c["therapy"], {"notes": "Changed"}, expected_version=None
    ),
    "add_chair": lambda db, a, c: setup.add_chair(db, a, "Chair 99"),
    "add_staff": lambda db, a, c: setup.add_staff(db, a, "Sam Staff", "nurse"),
    "add_user": lambda db, a, c: auth.add_user(
        db, a, username="newbie", display_name="New Bie", role="nurse", password=PASSWORD
    ),
    "set_password_of_another": lambda db, a, c: auth.set_password(db, a, c["user"], "a whole new password"),
    "disable_user": lambda db, a, c: auth.set_active(db, a, c["user"], False),
    "change_role": lambda db, a, c: auth.change_role(db, a, c["user"], "charge_nurse"),
}


@pytest.mark.parametrize("service", list(ADMIN_WRITES))
def test_set_up_and_account_services_refuse_non_administrators(db, people, service):
    call = ADMIN_WRITES[service]
    ctx = _target(db, people["admin"])
    before = snapshot(db)
    for role in ("nurse", "charge_nurse", "manager", "quality"):
        with pytest.raises(PermissionDenied):
            call(db, people[role], ctx)
        assert snapshot(db) == before, f"{service} as {role} changed the database"
    if service != "set_password_of_another":  # see test_set_password_refuses_a_signed_out_caller
        with pytest.raises(PermissionDenied):
            call(db, None, ctx)
        assert snapshot(db) == before

    count = audit_count(db)
    call(db, people["admin"], ctx)
    assert audit_count(db) == count + 1


def test_set_password_refuses_a_signed_out_caller(db, people):
    ctx = _target(db, people["admin"])
    before = snapshot(db)
    try:
        with pytest.raises(PermissionDenied):
            auth.set_password(db, None, ctx["user"], "a whole new password")  # type: ignore[arg-type]
    finally:
        assert snapshot(db) == before


@pytest.mark.parametrize("role", ["nurse", "charge_nurse", "manager", "quality"])
def test_only_administrators_list_users(db, people, role):
    with pytest.raises(PermissionDenied):
        auth.list_users(db, people[role])
    assert {u.username for u in auth.list_users(db, people["admin"])} >= {f"the.{r}" for r in ROLES}


# ------------------------------------------------------------------ read side
@pytest.mark.parametrize("role", ROLES)
def test_today_sessions_is_for_charting_and_board_roles(db, people, role):
    sid = new_session(db, people["nurse"])
    if role == "quality":
        with pytest.raises(PermissionDenied):
            views.today_sessions(db, people[role])
    else:
        assert [c.id for c in views.today_sessions(db, people[role])] == [sid]


def test_today_sessions_refuses_a_signed_out_visitor(db, people):
    new_session(db, people["nurse"])
    with pytest.raises(PermissionDenied):
        views.today_sessions(db, None)  # type: ignore[arg-type]


def _views(db, session_id: int) -> list[AuditEvent]:
    with db.reading() as s:
        return list(
            s.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "view", AuditEvent.session_id == session_id)
                .order_by(AuditEvent.id)
            )
        )


@pytest.mark.parametrize("actor", [None, Actor(None, "Visitor", "visitor")], ids=["signed_out", "unknown_role"])
def test_session_detail_refuses_a_role_not_allowed_and_audits_nothing(db, people, actor):
    sid = new_session(db, people["nurse"])
    before = snapshot(db)
    with pytest.raises(PermissionDenied):
        views.session_detail(db, actor, sid)  # type: ignore[arg-type]
    assert snapshot(db) == before


@pytest.mark.parametrize("role", ROLES)
def test_every_clinical_role_may_open_a_session_and_the_view_is_audited(db, people, role):
    nurse = people["nurse"]
    sid = new_session(db, nurse)
    with db.reading() as s:
        patient_id = s.scalar(select(AuditEvent.patient_id).where(AuditEvent.session_id == sid))
    detail = views.session_detail(db, people[role], sid)
    assert detail is not None and detail.session.id == sid
    [event] = _views(db, sid)
    assert (event.user_id, event.user_name, event.entity, event.entity_id, event.patient_id) == (
        people[role].user_id,
        people[role].name,
        "session",
        sid,
        patient_id,
    )


def test_one_view_event_per_user_and_session_within_ten_minutes(db, people):
    nurse, charge = people["nurse"], people["charge_nurse"]
    sid = new_session(db, nurse)
    other = new_session(db, nurse)
    t0 = utcnow()

    views.session_detail(db, nurse, sid, now=t0)
    views.session_detail(db, nurse, sid, now=t0)  # a rerun of the page is not a new read
    views.session_detail(db, nurse, sid, now=t0 + timedelta(minutes=5))
    assert [(e.user_id, e.at) for e in _views(db, sid)] == [(nurse.user_id, t0)]

    views.session_detail(db, charge, sid, now=t0 + timedelta(minutes=5))  # another user: a read of their own
    views.session_detail(db, nurse, other, now=t0 + timedelta(minutes=5))  # another session: its own read
    assert [e.user_id for e in _views(db, sid)] == [nurse.user_id, charge.user_id]
    assert [e.user_id for e in _views(db, other)] == [nurse.user_id]

    views.session_detail(db, nurse, sid, now=t0 + timedelta(minutes=10))  # exactly 10 min: still the same read
    assert len(_views(db, sid)) == 2
    views.session_detail(db, nurse, sid, now=t0 + timedelta(minutes=10, seconds=1))  # after: a new read
    assert [(e.user_id, e.at) for e in _views(db, sid)] == [
        (nurse.user_id, t0),
        (charge.user_id, t0 + timedelta(minutes=5)),
        (nurse.user_id, t0 + timedelta(minutes=10, seconds=1)),
    ]


def test_opening_a_missing_session_audits_nothing(db, people):
    count = audit_count(db)
    assert views.session_detail(db, people["nurse"], 987654) is None
    assert audit_count(db) == count


# ------------------------------------------------------------------ the audit table is append-only
def _latest_event(db) -> tuple:
    with db.reading() as s:
        event = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
        return event.id, event.action, event.user_name, event.before, event.after, event.at


def _row(db, event_id: int) -> tuple:
    with db.reading() as s:
        event = s.get(AuditEvent, event_id)
        return event.id, event.action, event.user_name, event.before, event.after, event.at


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET action = 'tampered', user_name = 'nobody' WHERE id = :id",
        "DELETE FROM audit_event WHERE id = :id",
        "DELETE FROM audit_event",
    ],
    ids=["update", "delete_one", "delete_all"],
)
def test_the_database_refuses_to_change_or_delete_audit_rows(db, people, statement):
    new_patient(db, people["nurse"])
    original = _latest_event(db)
    count = audit_count(db)
    with pytest.raises(DBAPIError, match="append-only"):
        with db.writing() as s:
            s.execute(text(statement), {"id": original[0]})
    assert _row(db, original[0]) == original
    assert audit_count(db) == count


def test_the_orm_cannot_change_an_audit_row_either(db, people):
    new_patient(db, people["nurse"])
    original = _latest_event(db)
    with pytest.raises(DBAPIError, match="append-only"):
        with db.writing() as s:
            s.get(AuditEvent, original[0]).reason = "edited later"
    with pytest.raises(DBAPIError, match="append-only"):
        with db.writing() as s:
            s.delete(s.get(AuditEvent, original[0]))
    assert _row(db, original[0]) == original


def test_postgresql_refuses_truncating_the_audit_table(db, people):
    if db.dialect != "postgresql":
        pytest.skip("TRUNCATE exists on PostgreSQL only (SQLite's DELETE is covered above)")
    new_patient(db, people["nurse"])
    count = audit_count(db)
    with pytest.raises(DBAPIError, match="append-only"):
        with db.writing() as s:
            s.execute(text("TRUNCATE audit_event"))
    assert audit_count(db) == count


def test_new_audit_rows_can_still_be_added_after_a_refused_change(db, people):
    new_patient(db, people["nurse"])
    with pytest.raises(DBAPIError):
        with db.writing() as s:
            s.execute(text("UPDATE audit_event SET reason = 'x'"))
    count = audit_count(db)
    new_patient(db, people["nurse"])
    assert audit_count(db) == count + 1


# ------------------------------------------------------------------ one audit event per write
def _audited(db, actor: Actor, action: Callable[[], Any]) -> list[tuple[str, str]]:
    """Run one write; return (action, entity) of the audit rows it added, checking who they name."""
    count = audit_count(db)
    action()
    events = audits_since(db, count)
    for event in events:
        assert (event.user_id, event.user_name) == (actor.user_id, actor.name), event.action
    return [(e.action, e.entity) for e in events]


def test_each_write_of_a_whole_session_leaves_exactly_its_audit_events(db, people):
    """check_in is the one write with two events: the baseline vitals it stores
    ("record_vitals" on vital_sign) and the session's change of state ("check_in");
    every other step leaves exactly one. The RateChange rows that start_iv and stop_iv
    add are covered by the session event of that step, not audited separately."""
    nurse = people["nurse"]
    t0 = ago(300)
    patient = _audited(db, nurse, lambda: new_patient(db, nurse))
    assert patient == [("create", "patient")]
    chair = _audited(db, people["admin"], lambda: setup.add_chair(db, people["admin"], "Chair 7"))
    assert chair == [("create", "chair")]

    booking = _booking(db, nurse)
    created: list[int] = []
    assert _audited(
        db,
        nurse,
        lambda: created.append(
            sessions.create_session(
                db, nurse, patient_id=booking["patient"], therapy_id=booking["therapy"], chair_id=booking["chair"]
            ).id
        ),
    ) == [("create", "session")]
    sid = created[0]

    steps: list[tuple[str, Callable[[], Any], list[tuple[str, str]]]] = [
        (
            "check_in",
            lambda: sessions.check_in(
                db, nurse, sid, normal_vitals(), expected_version=version(db, sid), at=t0, client_token="ci-1"
            ),
            [("record_vitals", "vital_sign"), ("check_in", "session")],
        ),
        (
            "proceed",
            lambda: sessions.proceed(db, nurse, sid, expected_version=version(db, sid), at=t0 + timedelta(minutes=5)),
            [("proceed", "session")],
        ),
        (
            "confirm_program",
            lambda: sessions.confirm_program(db, nurse, sid, authorization_ref="TOUCH-1"),
            [("confirm_program", "program_check")],
        ),
        (
            "record_premedication",
            lambda: entries.record_premedication(
                db,
                nurse,
                sid,
                drug="Cetirizine",
                dose="10 mg",
                route="PO",
                given_at=t0 + timedelta(minutes=10),
                client_token="pm-1",
            ),
            [("record_premedication", "premedication")],
        ),
        (
            "start_iv",
            lambda: sessions.start_iv(
                db,
                nurse,
                sid,
                expected_version=version(db, sid),
                site="Left forearm",
                gauge=22,
                attempts=1,
                lot_number="LOT-1",
                rate_ml_h=100,
                at=t0 + timedelta(minutes=20),
            ),
            [("start_iv", "session")],
        ),
        (
            "record_vitals",
            lambda: entries.record_vitals(
                db, nurse, sid, normal_vitals(), taken_at=t0 + timedelta(minutes=35), client_token="v-1"
            ),
            [("record_vitals", "vital_sign")],
        ),
        (
            "change_rate",
            lambda: entries.change_rate(db, nurse, sid, 90, at=t0 + timedelta(minutes=40), client_token="r-1"),
            [("rate_change", "rate_change")],
        ),
        (
            "pause",
            lambda: entries.pause(db, nurse, sid, at=t0 + timedelta(minutes=50), client_token="r-2"),
            [("rate_pause", "rate_change")],
        ),
        (
            "resume",
            lambda: entries.resume(db, nurse, sid, 100, at=t0 + timedelta(minutes=55), client_token="r-3"),
            [("rate_resume", "rate_change")],
        ),
        (
            "record_reaction",
            lambda: entries.record_reaction(
                db,
                nurse,
                sid,
                symptoms=["flushing"],
                grade=1,
                actions=["observed"],
                onset_at=t0 + timedelta(minutes=60),
                client_token="x-1",
            ),
            [("record_reaction", "reaction")],
        ),
        (
            "resolve_reaction",
            lambda: entries.resolve_reaction(db, nurse, _reaction_of(db, sid), resolved_at=t0 + timedelta(minutes=70)),
            [("resolve_reaction", "reaction")],
        ),
        (
            "stop_iv",
            lambda: sessions.stop_iv(db, nurse, sid, expected_version=version(db, sid), at=t0 + timedelta(minutes=100)),
            [("stop_iv", "session")],
        ),
        (
            "discharge",
            lambda: sessions.discharge(db, nurse, sid, expected_version=version(db, sid)),
            [("discharge", "session")],
        ),
    ]
    for name, call, expected in steps:
        assert _audited(db, nurse, call) == expected, name

    # retried saves (same client token) are already stored: no second event
    for name, call in [
        (
            "check_in",
            lambda: sessions.check_in(
                db, nurse, sid, normal_vitals(), expected_version=None, at=t0, client_token="ci-1"
            ),
        ),
        (
            "record_vitals",
            lambda: entries.record_vitals(
                db, nurse, sid, normal_vitals(), taken_at=t0 + timedelta(minutes=35), client_token="v-1"
            ),
        ),
        (
            "change_rate",
            lambda: entries.change_rate(db, nurse, sid, 90, at=t0 + timedelta(minutes=40), client_token="r-1"),
        ),
    ]:
        assert _audited(db, nurse, call) == [], f"retried {name}"

    # every event of this session names the nurse, the session and the patient
    with db.reading() as s:
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.session_id == sid)))
    assert {(e.user_id, e.patient_id) for e in rows} == {(nurse.user_id, booking["patient"])}


def _reaction_of(db, session_id: int) -> int:
    with db.reading() as s:
        return s.scalars(select(Reaction.id).where(Reaction.session_id == session_id)).one()


def test_defer_and_cancel_leave_one_event_each(db, people):
    charge = people["charge_nurse"]
    deferred = new_session(db, charge)
    walk(db, charge, deferred, "checked_in")
    assert _audited(db, charge, lambda: sessions.defer(db, charge, deferred, "Fever", expected_version=None)) == [
        ("defer", "session")
    ]
    cancelled = new_session(db, charge)
    assert _audited(db, charge, lambda: sessions.cancel(db, charge, cancelled, "Rebooked", expected_version=None)) == [
        ("cancel", "session")
    ]


def test_each_administration_write_leaves_one_event(db, people):
    admin = people["admin"]
    target = auth.add_user(db, ADMIN, username="target", display_name="Target User", role="nurse")
    natalizumab = therapy_id(db, "natalizumab")
    steps: list[tuple[Callable[[], Any], list[tuple[str, str]]]] = [
        (
            lambda: auth.add_user(
                db, admin, username="newbie", display_name="New Bie", role="nurse", password=PASSWORD
            ),
            [("create", "app_user")],
        ),
        (lambda: auth.set_password(db, admin, target.id, "a whole new password"), [("set_password", "app_user")]),
        (lambda: auth.change_role(db, admin, target.id, "quality"), [("change_role", "app_user")]),
        (lambda: auth.set_active(db, admin, target.id, False), [("disable_user", "app_user")]),
        (lambda: auth.set_active(db, admin, target.id, True), [("enable_user", "app_user")]),
        (
            lambda: setup.update_clinic(
                db, admin, name="Renamed", timezone="Europe/Paris", temperature_unit="F", weight_unit="lb"
            ),
            [("update", "clinic")],
        ),
        (
            lambda: setup.update_settings(db, admin, {"idle_sign_out_minutes": 5, "thresholds": {"spo2_low": 90}}),
            [("update_settings", "clinic")],
        ),
        (
            lambda: setup.update_therapy(db, admin, natalizumab, {"notes": "Local note"}, expected_version=None),
            [("update_therapy", "therapy")],
        ),
        (lambda: setup.add_chair(db, admin, "Chair 12"), [("create", "chair")]),
        (lambda: setup.add_staff(db, admin, "Sam Staff", "nurse"), [("create", "app_user")]),
    ]
    for call, expected in steps:
        assert _audited(db, admin, call) == expected
    # the settings change records old and new values of the changed fields only
    with db.reading() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "update_settings")).one()
    assert event.before["idle_sign_out_minutes"] == 15 and event.after["idle_sign_out_minutes"] == 5
    assert event.before["thresholds"]["spo2_low"] == 92 and event.after["thresholds"]["spo2_low"] == 90
    assert "lockout_minutes" not in event.after
