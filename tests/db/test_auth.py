"""Accounts (issue 5): Argon2 hashing, sign-in, lockout, disabled accounts, password
rules, the first administrator, who may change passwords/roles/activity, single
sign-on mapping and the idle sign-out rule. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher, extract_parameters
from sqlalchemy import select

from db.models import AppUser, AuditEvent
from infusion.accounts import auth
from infusion.accounts.actor import SYSTEM, Actor
from infusion.clock import utcnow
from infusion.errors import AuthError, ConflictError, PermissionDenied, ValidationError
from infusion.services.setup import update_settings
from infusion.settings import ClinicSettings
from tests.helpers import audit_count, audits_since

PASSWORD = "correct horse battery"  # 21 characters, contains no user name used here
OTHER_PASSWORD = "staple gun lighthouse"
NOT_RECOGNISED = "User name or password not recognised."
DEFAULTS = ClinicSettings()


@pytest.fixture(autouse=True)
def _fast_argon2(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 with the production parameters takes ~0.5 s per hash here; the rules under test
    do not depend on the cost, so tests hash cheaply unless they ask for `real_argon2`."""
    if "real_argon2" not in request.fixturenames:
        monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def real_argon2() -> None:
    """Keep the production hasher (see _fast_argon2)."""


@pytest.fixture
def admin(db) -> Actor:
    return auth.create_first_admin(db, username="boss", display_name="Bo Boss", password=PASSWORD)


def _user(db, admin: Actor, username: str = "nora", role: str = "nurse", **kwargs) -> AppUser:
    kwargs.setdefault("password", PASSWORD)
    return auth.add_user(db, admin, username=username, display_name=username.title() + " Person", role=role, **kwargs)


def _stored(db, user_id: int) -> AppUser:
    """The user row as another connection sees it now (proves what was committed)."""
    with db.reading() as s:
        return s.get(AppUser, user_id)


def _refused(db, username: str, password: str, now: datetime | None = None) -> str:
    with pytest.raises(AuthError) as refused:
        auth.authenticate(db, username, password, now=now)
    return str(refused.value)


# ------------------------------------------------------------------ hashing
def test_hash_is_argon2_and_verifies_only_the_right_password(real_argon2):
    hashed = auth.hash_password(PASSWORD)
    assert hashed != PASSWORD
    assert PASSWORD not in hashed
    assert hashed.startswith("$argon2id$")
    cost = extract_parameters(hashed)  # at least OWASP's minimum for Argon2id (19 MiB, 2 passes)
    assert cost.memory_cost >= 19 * 1024 and cost.time_cost >= 2
    assert auth.verify_password(hashed, PASSWORD)
    assert not auth.verify_password(hashed, PASSWORD + "x")
    assert not auth.verify_password(hashed, "")
    # salted: the same password never hashes to the same string
    assert auth.hash_password(PASSWORD) != hashed


def test_verify_tolerates_missing_and_malformed_hashes():
    assert not auth.verify_password(None, PASSWORD)
    assert not auth.verify_password("", PASSWORD)
    assert not auth.verify_password("not-a-hash", PASSWORD)
    assert not auth.verify_password("$argon2id$v=19$m=1,t=1,p=1$broken", PASSWORD)


def test_the_database_stores_only_the_hash(db, admin):
    user = _user(db, admin)
    stored = _stored(db, user.id)
    assert stored.password_hash.startswith("$argon2")
    assert PASSWORD not in stored.password_hash
    assert auth.verify_password(stored.password_hash, PASSWORD)


# ------------------------------------------------------------------ sign-in
def test_sign_in_returns_the_actor_records_an_event_and_resets_failures(db, admin):
    user = _user(db, admin)
    now = utcnow()
    for _ in range(2):
        _refused(db, "nora", "wrong password here", now=now)
    assert _stored(db, user.id).failed_attempts == 2

    before = audit_count(db)
    who = auth.authenticate(db, "  Nora ", PASSWORD, now=now)  # user names are trimmed and case-insensitive
    assert who == Actor(user.id, "Nora Person", "nurse")

    stored = _stored(db, user.id)
    assert stored.failed_attempts == 0
    assert stored.locked_until is None
    assert stored.last_sign_in_at == now
    events = audits_since(db, before)
    assert [(e.action, e.entity, e.entity_id, e.user_id, e.user_name) for e in events] == [
        ("sign_in", "app_user", user.id, user.id, "Nora Person")
    ]


def test_wrong_password_and_unknown_user_get_the_same_message(db, admin):
    _user(db, admin)
    wrong_password = _refused(db, "nora", "not the password")
    unknown_user = _refused(db, "nobody", "not the password")
    unknown_with_a_real_password = _refused(db, "nobody", PASSWORD)
    assert wrong_password == unknown_user == unknown_with_a_real_password == NOT_RECOGNISED
    assert "nora" not in wrong_password and "nobody" not in unknown_user


def test_empty_user_name_or_password_is_refused(db, admin):
    _user(db, admin)
    assert _refused(db, "", PASSWORD) == NOT_RECOGNISED
    assert _refused(db, "nora", "") == NOT_RECOGNISED


class _CountingHasher:
    """Delegates to the real Argon2 hasher and counts verifications."""

    def __init__(self, real) -> None:  # type: ignore[no-untyped-def]
        self.real, self.verifications = real, 0

    def hash(self, password: str) -> str:
        return self.real.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        self.verifications += 1
        return self.real.verify(password_hash, password)


def test_a_known_user_with_a_wrong_password_costs_one_argon2_verification(db, admin, monkeypatch):
    _user(db, admin)
    counting = _CountingHasher(auth._hasher)
    monkeypatch.setattr(auth, "_hasher", counting)
    _refused(db, "nora", "not the password")
    assert counting.verifications == 1


@pytest.mark.parametrize("who", ["unknown", "disabled"])
def test_unknown_or_disabled_accounts_cost_the_same_argon2_work(db, admin, monkeypatch, who):
    user = _user(db, admin)
    if who == "disabled":
        auth.set_active(db, admin, user.id, False)
    counting = _CountingHasher(auth._hasher)
    monkeypatch.setattr(auth, "_hasher", counting)
    _refused(db, "nobody" if who == "unknown" else "nora", "not the password")
    assert counting.verifications == 1


def test_failed_attempts_are_committed_and_audited(db, admin):
    user = _user(db, admin)
    before = audit_count(db)
    _refused(db, "nora", "not the password")
    _refused(db, "nobody", "not the password")

    assert _stored(db, user.id).failed_attempts == 1  # committed although AuthError was raised
    events = audits_since(db, before)
    assert [(e.action, e.entity, e.entity_id, e.user_id, e.user_name) for e in events] == [
        ("sign_in_failed", "app_user", user.id, None, SYSTEM.name),
        ("sign_in_failed", "app_user", None, None, SYSTEM.name),
    ]
    assert events[0].after == {"username": "nora"}
    assert events[0].reason == "wrong password (1)"
    assert events[1].after == {"username": "nobody"}
    assert events[1].reason == "unknown or disabled account"
    assert all(PASSWORD not in str(e.after) and "not the password" not in str(e.after) for e in events)


@pytest.mark.parametrize("custom", [False, True], ids=["default_settings", "clinic_settings"])
def test_lockout_after_repeated_failures_until_the_time_passes(db, admin, custom):
    attempts, minutes = DEFAULTS.lockout_attempts, DEFAULTS.lockout_minutes
    if custom:
        attempts, minutes = 3, 2
        update_settings(db, admin, {"lockout_attempts": attempts, "lockout_minutes": minutes})
    user = _user(db, admin)
    t0 = utcnow()

    for n in range(1, attempts):
        assert _refused(db, "nora", "not the password", now=t0) == NOT_RECOGNISED
        stored = _stored(db, user.id)
        assert (stored.failed_attempts, stored.locked_until) == (n, None)

    # the attempt that reaches the limit locks the account (its message still reveals nothing)
    assert _refused(db, "nora", "not the password", now=t0) == NOT_RECOGNISED
    stored = _stored(db, user.id)
    assert stored.locked_until == t0 + timedelta(minutes=minutes)
    assert stored.failed_attempts == 0

    # locked: even the right password is refused, and nothing is reset
    before = audit_count(db)
    for later in (timedelta(seconds=1), timedelta(minutes=minutes) - timedelta(seconds=1)):
        message = _refused(db, "nora", PASSWORD, now=t0 + later)
        assert message == NOT_RECOGNISED  # the same answer as an unknown account: no enumeration
    assert [e.action for e in audits_since(db, before)] == ["sign_in_locked", "sign_in_locked"]
    assert _stored(db, user.id).locked_until == t0 + timedelta(minutes=minutes)

    # once the lockout has run out, the right password works and clears it
    who = auth.authenticate(db, "nora", PASSWORD, now=t0 + timedelta(minutes=minutes))
    assert who.user_id == user.id
    stored = _stored(db, user.id)
    assert (stored.failed_attempts, stored.locked_until) == (0, None)


def _locked_reason(db) -> str:
    with db.reading() as s:
        event = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "sign_in_locked").order_by(AuditEvent.id.desc()).limit(1)
        ).one()
    return event.reason or ""


def test_lockout_minutes_left_go_to_the_audit_trail_not_the_screen(db, admin):
    user = _user(db, admin)
    t0 = utcnow()
    for _ in range(DEFAULTS.lockout_attempts):
        _refused(db, "nora", "not the password", now=t0)
    assert _stored(db, user.id).locked_until is not None
    assert _refused(db, "nora", PASSWORD, now=t0 + timedelta(seconds=30)) == NOT_RECOGNISED
    assert "locked for 5 more min" in _locked_reason(db)
    assert _refused(db, "nora", PASSWORD, now=t0 + timedelta(minutes=4, seconds=30)) == NOT_RECOGNISED
    assert "locked for 1 more min" in _locked_reason(db)


def test_lockout_never_promises_more_than_the_lockout(db, admin):
    _user(db, admin)
    t0 = utcnow()
    for _ in range(DEFAULTS.lockout_attempts):
        _refused(db, "nora", "not the password", now=t0)
    assert _refused(db, "nora", PASSWORD, now=t0) == NOT_RECOGNISED
    assert f"locked for {DEFAULTS.lockout_minutes} more min" in _locked_reason(db)


def test_failures_after_a_lockout_expired_count_from_zero(db, admin):
    user = _user(db, admin)
    t0 = utcnow()
    for _ in range(DEFAULTS.lockout_attempts):
        _refused(db, "nora", "not the password", now=t0)
    later = t0 + timedelta(minutes=DEFAULTS.lockout_minutes, seconds=1)
    assert _refused(db, "nora", "not the password", now=later) == NOT_RECOGNISED
    stored = _stored(db, user.id)
    assert stored.failed_attempts == 1
    assert stored.locked_until is not None and stored.locked_until < later  # the old lock, not a new one
    assert auth.authenticate(db, "nora", PASSWORD, now=later).user_id == user.id


def test_a_disabled_user_cannot_sign_in(db, admin):
    user = _user(db, admin)
    auth.set_active(db, admin, user.id, False)
    before = audit_count(db)
    assert _refused(db, "nora", PASSWORD) == NOT_RECOGNISED
    events = audits_since(db, before)
    assert [(e.action, e.entity_id) for e in events] == [("sign_in_failed", user.id)]
    assert _stored(db, user.id).failed_attempts == 0  # a disabled account is not counted toward a lockout

    auth.set_active(db, admin, user.id, True)
    assert auth.authenticate(db, "nora", PASSWORD).user_id == user.id


def test_a_single_sign_on_only_account_cannot_sign_in_with_a_password(db, admin):
    user = _user(db, admin, password=None, email="nora@clinic.example")
    assert _stored(db, user.id).password_hash is None
    assert _refused(db, "nora", "") == NOT_RECOGNISED
    assert _refused(db, "nora", PASSWORD) == NOT_RECOGNISED


def test_sign_out_is_audited(db, admin):
    before = audit_count(db)
    auth.sign_out(db, admin, "idle")
    events = audits_since(db, before)
    assert [(e.action, e.user_id, e.reason) for e in events] == [("sign_out", admin.user_id, "idle")]


# ------------------------------------------------------------------ password rules
def test_minimum_password_length(db, admin):
    n = DEFAULTS.min_password_length
    with pytest.raises(ValidationError) as short:
        _user(db, admin, "nora", password="p" * (n - 1))
    assert "password" in short.value.problems
    assert f"at least {n} characters" in str(short.value)
    assert _user(db, admin, "nora", password="p" * n).username == "nora"


def test_minimum_password_length_follows_clinic_settings(db, admin):
    update_settings(db, admin, {"min_password_length": 16})
    with pytest.raises(ValidationError, match="at least 16 characters"):
        _user(db, admin, "nora", password="x" * 15)
    user = _user(db, admin, "nora", password="x" * 16)
    with pytest.raises(ValidationError, match="at least 16 characters"):
        auth.set_password(db, admin, user.id, "y" * 15)


@pytest.mark.parametrize("password", ["nora-password-1", "my-NORA-password", "xxxxxxxxxxxxnora"])
def test_a_password_must_not_contain_the_user_name(db, admin, password):
    with pytest.raises(ValidationError) as refused:
        _user(db, admin, "nora", password=password)
    assert refused.value.problems == {"password": "The password must not contain the user name."}


def test_password_rules_apply_to_every_way_of_setting_one(db, admin):
    user = _user(db, admin)
    for bad in ("short", "nora-is-my-password"):
        with pytest.raises(ValidationError):
            auth.set_password(db, admin, user.id, bad)
        with pytest.raises(ValidationError):
            auth.set_password(db, Actor(user.id, "Nora Person", "nurse"), user.id, bad, current_password=PASSWORD)
    assert auth.authenticate(db, "nora", PASSWORD).user_id == user.id  # unchanged


def test_rejected_new_user_stores_nothing(db, admin):
    before = audit_count(db)
    with pytest.raises(ValidationError):
        _user(db, admin, "nora", password="short")
    with db.reading() as s:
        assert s.scalars(select(AppUser).where(AppUser.username == "nora")).first() is None
    assert audit_count(db) == before


# ------------------------------------------------------------------ the first administrator
def test_first_administrator_only_once(db):
    assert auth.needs_first_admin(db)
    before = audit_count(db)
    first = auth.create_first_admin(db, username="Boss", display_name=" Bo Boss ", password=PASSWORD)
    assert first.role == "admin" and first.name == "Bo Boss" and first.user_id is not None
    assert not auth.needs_first_admin(db)
    assert [(e.action, e.entity, e.entity_id, e.user_name) for e in audits_since(db, before)] == [
        ("create", "app_user", first.user_id, SYSTEM.name)
    ]

    with pytest.raises(ConflictError):
        auth.create_first_admin(db, username="intruder", display_name="Intruder", password=OTHER_PASSWORD)
    with db.reading() as s:
        assert s.scalars(select(AppUser.username)).all() == ["boss"]
    assert auth.authenticate(db, "boss", PASSWORD) == first


def test_first_administrator_password_rules(db):
    with pytest.raises(ValidationError):
        auth.create_first_admin(db, username="boss", display_name="Bo Boss", password="short")
    with pytest.raises(ValidationError):
        auth.create_first_admin(db, username="boss", display_name="Bo Boss", password="boss-password-123")
    assert auth.needs_first_admin(db)


def test_any_active_account_with_a_password_ends_the_first_start(db):
    """Accounts made at the command line count too: that clinic is not new (auth.needs_first_admin)."""
    cli = Actor(None, "command line", "admin")
    nurse = auth.add_user(db, cli, username="nora", display_name="Nora", role="nurse", password=PASSWORD)
    assert not auth.needs_first_admin(db)
    with pytest.raises(ConflictError):
        auth.create_first_admin(db, username="intruder", display_name="Intruder", password=OTHER_PASSWORD)

    auth.set_active(db, cli, nurse.id, False)  # nobody left who can sign in
    assert auth.needs_first_admin(db)


# ------------------------------------------------------------------ who may change what
def test_everyone_may_change_their_own_password(db, admin):
    user = _user(db, admin)
    me = Actor(user.id, "Nora Person", "nurse")
    before = audit_count(db)
    with pytest.raises(AuthError):  # a tablet left signed in cannot be used to take the account over
        auth.set_password(db, me, user.id, OTHER_PASSWORD, current_password="not my password")
    auth.set_password(db, me, user.id, OTHER_PASSWORD, current_password=PASSWORD)
    assert [(e.action, e.entity_id, e.user_id) for e in audits_since(db, before)] == [
        ("set_password", user.id, user.id)
    ]
    _refused(db, "nora", PASSWORD)
    assert auth.authenticate(db, "nora", OTHER_PASSWORD).user_id == user.id


@pytest.mark.parametrize("role", ["nurse", "charge_nurse", "manager", "quality"])
def test_only_an_administrator_may_set_another_users_password(db, admin, role):
    victim = _user(db, admin, "nora")
    other = _user(db, admin, "olga", role=role)
    before = audit_count(db)
    with pytest.raises(PermissionDenied):
        auth.set_password(db, Actor(other.id, "Olga Person", role), victim.id, OTHER_PASSWORD)
    assert audit_count(db) == before
    assert auth.authenticate(db, "nora", PASSWORD).user_id == victim.id


def test_an_administrator_resets_a_password_and_clears_a_lockout(db, admin):
    user = _user(db, admin)
    for _ in range(DEFAULTS.lockout_attempts):
        _refused(db, "nora", "not the password")
    assert _stored(db, user.id).locked_until is not None

    before = audit_count(db)
    auth.set_password(db, admin, user.id, OTHER_PASSWORD)
    stored = _stored(db, user.id)
    assert (stored.failed_attempts, stored.locked_until) == (0, None)
    assert [(e.action, e.entity_id, e.user_id) for e in audits_since(db, before)] == [
        ("set_password", user.id, admin.user_id)
    ]
    assert auth.authenticate(db, "nora", OTHER_PASSWORD).user_id == user.id


@pytest.mark.parametrize("role", ["nurse", "charge_nurse", "manager", "quality"])
def test_non_administrators_may_not_change_roles_or_disable_users(db, admin, role):
    target = _user(db, admin, "nora")
    actor_row = _user(db, admin, "olga", role=role)
    actor = Actor(actor_row.id, "Olga Person", role)
    before = audit_count(db)
    with pytest.raises(PermissionDenied):
        auth.change_role(db, actor, target.id, "admin")
    with pytest.raises(PermissionDenied):
        auth.change_role(db, actor, actor_row.id, "admin")  # nor promote themselves
    with pytest.raises(PermissionDenied):
        auth.set_active(db, actor, target.id, False)
    with pytest.raises(PermissionDenied):
        auth.add_user(db, actor, username="newbie", display_name="New", role="nurse", password=PASSWORD)
    with pytest.raises(PermissionDenied):
        auth.list_users(db, actor)
    assert audit_count(db) == before
    stored = _stored(db, target.id)
    assert (stored.role, stored.active) == ("nurse", True)
    assert _stored(db, actor_row.id).role == role


def test_an_administrator_cannot_disable_or_demote_themself(db, admin):
    before = audit_count(db)
    with pytest.raises(ValidationError):
        auth.set_active(db, admin, admin.user_id, False)
    for role in ("nurse", "charge_nurse", "manager", "quality"):
        with pytest.raises(ValidationError):
            auth.change_role(db, admin, admin.user_id, role)
    assert audit_count(db) == before
    stored = _stored(db, admin.user_id)
    assert (stored.role, stored.active) == ("admin", True)
    assert not auth.needs_first_admin(db)


def test_an_administrator_changes_roles_and_disables_others(db, admin):
    user = _user(db, admin)
    before = audit_count(db)
    auth.change_role(db, admin, user.id, "charge_nurse")
    auth.set_active(db, admin, user.id, False)
    auth.set_active(db, admin, user.id, True)
    events = audits_since(db, before)
    assert [(e.action, e.entity_id, e.user_id, e.before, e.after) for e in events] == [
        ("change_role", user.id, admin.user_id, {"role": "nurse"}, {"role": "charge_nurse"}),
        ("disable_user", user.id, admin.user_id, {"active": True}, {"active": False}),
        ("enable_user", user.id, admin.user_id, {"active": False}, {"active": True}),
    ]
    assert auth.authenticate(db, "nora", PASSWORD).role == "charge_nurse"
    with pytest.raises(ValidationError):
        auth.change_role(db, admin, user.id, "superuser")


def test_user_names_are_unique_whatever_the_case(db, admin):
    _user(db, admin, "nora")
    with pytest.raises(ConflictError):
        _user(db, admin, "NORA")


def test_a_duplicate_sso_email_is_a_conflict(db, admin):
    _user(db, admin, "nora", email="nora@clinic.example")
    with pytest.raises(ConflictError):
        _user(db, admin, "nora2", email="Nora@Clinic.example")


# ------------------------------------------------------------------ single sign-on
def test_sso_maps_the_email_case_insensitively_to_the_local_user(db, admin):
    user = _user(db, admin, "nora", role="charge_nurse", password=None, email="Nora.Nurse@Clinic.example")
    assert _stored(db, user.id).email == "nora.nurse@clinic.example"
    before = audit_count(db)
    who = auth.sso_actor(db, "  NORA.nurse@clinic.EXAMPLE ")
    assert who == Actor(user.id, "Nora Person", "charge_nurse")
    events = audits_since(db, before)
    assert [(e.action, e.user_id, e.reason) for e in events] == [("sign_in", user.id, "single sign-on")]
    assert _stored(db, user.id).last_sign_in_at is not None


def test_sso_refuses_unknown_missing_and_disabled_identities(db, admin):
    user = _user(db, admin, "nora", password=None, email="nora@clinic.example")
    for email in (None, "", "   "):
        with pytest.raises(AuthError, match="did not share an e-mail"):
            auth.sso_actor(db, email)
    with pytest.raises(AuthError, match="not a Chairside user"):
        auth.sso_actor(db, "stranger@clinic.example")
    auth.set_active(db, admin, user.id, False)
    with pytest.raises(AuthError, match="not a Chairside user"):
        auth.sso_actor(db, "nora@clinic.example")


def test_a_refused_sso_sign_in_is_audited(db, admin):
    before = audit_count(db)
    with pytest.raises(AuthError):
        auth.sso_actor(db, "stranger@clinic.example")
    assert [e.action for e in audits_since(db, before)] == ["sign_in_failed"]


# ------------------------------------------------------------------ idle sign-out
def test_idle_expired_edges():
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    limit = DEFAULTS.idle_sign_out_minutes
    assert limit == 15
    assert not auth.idle_expired(None, now, limit)  # never active yet: nothing to expire
    assert not auth.idle_expired(now, now, limit)
    assert not auth.idle_expired(now - timedelta(minutes=limit), now, limit)  # exactly at the limit
    assert auth.idle_expired(now - timedelta(minutes=limit, seconds=1), now, limit)  # one second over
    assert auth.idle_expired(now - timedelta(hours=3), now, limit)
    assert not auth.idle_expired(now - timedelta(minutes=20), now, 30)
    assert auth.idle_expired(now - timedelta(minutes=5, microseconds=1), now, 5)


# ------------------------------------------------------------------ issue 12: no enumeration, no name-based bypass
def test_a_locked_account_and_an_unknown_one_get_the_same_answer(db, admin):
    _user(db, admin)
    t0 = utcnow()
    for _ in range(ClinicSettings().lockout_attempts):
        _refused(db, "nora", "not the password", now=t0)
    locked = _refused(db, "nora", PASSWORD, now=t0 + timedelta(seconds=5))
    unknown = _refused(db, "nobody-here", PASSWORD, now=t0 + timedelta(seconds=5))
    assert locked == unknown == NOT_RECOGNISED


def test_a_user_named_command_line_must_give_the_current_password(db, admin):
    user = _user(db, admin)
    auth.set_password(db, admin, user.id, PASSWORD)
    me = Actor(user.id, "command line", "nurse")  # a display name is not a privilege
    with pytest.raises(AuthError):
        auth.set_password(db, me, user.id, OTHER_PASSWORD)
    assert auth.authenticate(db, "nora", PASSWORD).user_id == user.id


def test_a_disabled_accounts_open_browser_can_no_longer_write(db, admin):
    from infusion.services import sessions, setup
    from tests.helpers import new_session

    user = _user(db, admin)
    me = auth.authenticate(db, "nora", PASSWORD)
    sid = new_session(db, me)
    auth.set_active(db, admin, user.id, False)
    before = audit_count(db)
    with pytest.raises(PermissionDenied, match="disabled"):
        sessions.cancel(db, me, sid, "no longer needed", expected_version=None)
    with pytest.raises(PermissionDenied, match="disabled"):
        setup.add_patient(db, me, mrn="X-1", given_name="A", family_name="B")
    assert audit_count(db) == before


@pytest.mark.parametrize(
    ("username", "password"),
    [(None, PASSWORD), ("nora", None), ("no\x00ra", PASSWORD), ("nora", "pa\x00ss"), ("\ud800", "x"), (5, 6)],
)
def test_unusable_sign_in_input_is_a_plain_refusal(db, admin, username, password):
    _user(db, admin)
    with pytest.raises(AuthError) as refused:
        auth.authenticate(db, username, password)
    assert str(refused.value) == NOT_RECOGNISED
