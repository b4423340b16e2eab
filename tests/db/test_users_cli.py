"""`python -m infusion.accounts` (issue 5): the administrator's command line for accounts,
run against a temporary SQLite database given with --database-url."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from db.engine import Database, make_engine
from db.models import AppUser, AuditEvent
from infusion.accounts import auth
from infusion.accounts import cli as users
from infusion.clock import utcnow
from infusion.errors import AuthError
from infusion.settings import ClinicSettings

PASSWORD = "correct horse battery"
NEW_PASSWORD = "staple gun lighthouse"


@pytest.fixture(autouse=True)
def _fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    # make sure nothing falls back to ./chairside.sqlite or a developer's database
    monkeypatch.delenv("CHAIRSIDE_DATABASE_URL", raising=False)
    return f"sqlite:///{tmp_path / 'cli.sqlite'}"


@pytest.fixture
def database(url: str) -> Iterator[Database]:
    """The same database, opened by the test to check what the command line stored."""
    db = Database(make_engine(url))
    yield db
    db.engine.dispose()


def cli(url: str, *args: str, stdin: str | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> int:
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return users.main(["--database-url", url, *args])


def _add(url, monkeypatch, username="nora", role="nurse", password=PASSWORD, *extra: str) -> int:  # type: ignore[no-untyped-def]
    return cli(
        url,
        "add",
        username,
        "--name",
        f"{username.title()} Person",
        "--role",
        role,
        "--password-stdin",
        *extra,
        stdin=password + "\n",
        monkeypatch=monkeypatch,
    )


def _user(database: Database, username: str) -> AppUser:
    with database.reading() as s:
        return s.scalars(select(AppUser).where(AppUser.username == username)).one()


def test_add_reads_the_password_from_stdin(url, database, monkeypatch, capsys):
    assert _add(url, monkeypatch) == 0
    assert capsys.readouterr().out.strip() == "Added nora (nurse)."
    user = _user(database, "nora")
    assert (user.display_name, user.role, user.active) == ("Nora Person", "nurse", True)
    assert user.password_hash.startswith("$argon2") and PASSWORD not in user.password_hash
    assert auth.authenticate(database, "nora", PASSWORD).user_id == user.id
    with database.reading() as s:
        event = s.scalars(
            select(AuditEvent).where(AuditEvent.entity == "app_user", AuditEvent.action == "create")
        ).one()
    assert (event.user_id, event.user_name, event.entity_id) == (None, "command line", user.id)


def test_add_the_first_administrator_on_a_new_database(url, database, monkeypatch):
    assert _add(url, monkeypatch, "boss", "admin") == 0
    assert not auth.needs_first_admin(database)
    assert auth.authenticate(database, "boss", PASSWORD).role == "admin"


def test_add_a_single_sign_on_user_without_password(url, database, monkeypatch, capsys):
    code = cli(
        url,
        "add",
        "sso.user",
        "--name",
        "Sso User",
        "--role",
        "charge_nurse",
        "--no-password",
        "--email",
        "SSO.User@Clinic.example",
    )
    assert code == 0, capsys.readouterr().err
    user = _user(database, "sso.user")
    assert user.password_hash is None and user.email == "sso.user@clinic.example"
    assert auth.sso_actor(database, "sso.user@clinic.example").role == "charge_nurse"


def test_a_duplicate_user_name_exits_1_with_a_message(url, database, monkeypatch, capsys):
    assert _add(url, monkeypatch) == 0
    capsys.readouterr()
    assert _add(url, monkeypatch, "NORA") == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == "error: The user name 'nora' is taken."
    assert captured.out == ""
    with database.reading() as s:
        assert len(s.scalars(select(AppUser)).all()) == 1


def test_a_duplicate_sso_email_exits_1_with_a_message(url, monkeypatch, capsys):
    assert cli(url, "add", "ann", "--name", "Ann", "--role", "nurse", "--no-password", "--email", "a@x.org") == 0
    capsys.readouterr()
    assert cli(url, "add", "bea", "--name", "Bea", "--role", "nurse", "--no-password", "--email", "A@x.org") == 1
    assert capsys.readouterr().err.startswith("error: ")


def test_a_password_breaking_the_rules_exits_1_and_adds_nobody(url, database, monkeypatch, capsys):
    n = ClinicSettings().min_password_length
    assert _add(url, monkeypatch, password="x" * (n - 1)) == 1
    assert capsys.readouterr().err.strip() == f"error: Use at least {n} characters."
    assert _add(url, monkeypatch, password="nora" * 4) == 1
    assert capsys.readouterr().err.strip() == "error: The password must not contain the user name."
    with database.reading() as s:
        assert s.scalars(select(AppUser)).all() == []


def test_an_unknown_role_is_a_usage_error(url, monkeypatch, capsys):
    with pytest.raises(SystemExit) as usage:
        _add(url, monkeypatch, role="superuser")
    assert usage.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_reset_password_sets_it_and_clears_a_lockout(url, database, monkeypatch, capsys):
    assert _add(url, monkeypatch) == 0
    settings = ClinicSettings()
    now = utcnow()
    for _ in range(settings.lockout_attempts):
        with pytest.raises(AuthError):
            auth.authenticate(database, "nora", "not the password", now=now)
    assert _user(database, "nora").locked_until == now + timedelta(minutes=settings.lockout_minutes)
    with pytest.raises(AuthError, match="not recognised"):  # locked: the same answer as any refusal
        auth.authenticate(database, "nora", PASSWORD, now=now)
    capsys.readouterr()

    assert (
        cli(url, "reset-password", "Nora", "--password-stdin", stdin=NEW_PASSWORD + "\n", monkeypatch=monkeypatch) == 0
    )
    assert capsys.readouterr().out.strip() == "Password set for Nora."
    user = _user(database, "nora")
    assert (user.failed_attempts, user.locked_until) == (0, None)
    assert auth.authenticate(database, "nora", NEW_PASSWORD, now=now).user_id == user.id  # no wait
    with pytest.raises(AuthError):
        auth.authenticate(database, "nora", PASSWORD, now=now)
    with database.reading() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "set_password")).one()
    assert (event.user_name, event.entity_id) == ("command line", user.id)


def test_reset_password_refuses_a_weak_password_and_keeps_the_old_one(url, database, monkeypatch, capsys):
    assert _add(url, monkeypatch) == 0
    capsys.readouterr()
    assert cli(url, "reset-password", "nora", "--password-stdin", stdin="short\n", monkeypatch=monkeypatch) == 1
    assert capsys.readouterr().err.startswith("error: Use at least")
    assert auth.authenticate(database, "nora", PASSWORD).role == "nurse"


def test_reset_password_with_a_prompt_refuses_two_different_entries(url, database, monkeypatch, capsys):
    assert _add(url, monkeypatch) == 0
    capsys.readouterr()
    typed = iter([NEW_PASSWORD, NEW_PASSWORD + "!"])
    monkeypatch.setattr(users.getpass, "getpass", lambda prompt="": next(typed))
    assert cli(url, "reset-password", "nora") == 1
    assert capsys.readouterr().err.strip() == "error: The two passwords differ; nothing was changed."
    assert auth.authenticate(database, "nora", PASSWORD).role == "nurse"

    typed = iter([NEW_PASSWORD, NEW_PASSWORD])
    assert cli(url, "reset-password", "nora") == 0
    assert auth.authenticate(database, "nora", NEW_PASSWORD).role == "nurse"


def test_disable_stops_sign_in_and_keeps_the_account(url, database, monkeypatch, capsys):
    assert _add(url, monkeypatch) == 0
    capsys.readouterr()
    assert cli(url, "disable", "nora") == 0
    assert capsys.readouterr().out.strip() == "Disabled nora."
    user = _user(database, "nora")
    assert user.active is False
    with pytest.raises(AuthError, match="not recognised"):
        auth.authenticate(database, "nora", PASSWORD)
    with database.reading() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "disable_user")).one()
    assert (event.user_name, event.entity_id, event.after) == ("command line", user.id, {"active": False})


def test_list_shows_every_account_with_role_and_state(url, monkeypatch, capsys):
    assert _add(url, monkeypatch, "boss", "admin") == 0
    assert _add(url, monkeypatch, "nora", "nurse") == 0
    assert _add(url, monkeypatch, "quinn", "quality") == 0
    assert cli(url, "disable", "quinn") == 0
    capsys.readouterr()

    assert cli(url, "list") == 0
    lines = [line.split() for line in capsys.readouterr().out.strip().splitlines()]
    # active accounts first, then by name; columns: user name, role, state, display name
    assert lines == [
        ["boss", "admin", "active", "Boss", "Person"],
        ["nora", "nurse", "active", "Nora", "Person"],
        ["quinn", "quality", "disabled", "Quinn", "Person"],
    ]


def test_list_on_a_new_database_prints_nothing(url, capsys):
    assert cli(url, "list") == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("command", [["reset-password", "ghost", "--password-stdin"], ["disable", "ghost"]])
def test_an_unknown_user_exits_1_with_a_message(url, monkeypatch, capsys, command):
    assert _add(url, monkeypatch) == 0
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO(NEW_PASSWORD + "\n"))
    assert users.main(["--database-url", url, *command]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == "error: No user named 'ghost'."
    assert captured.out == ""


def test_the_database_url_defaults_to_the_environment(url, database, monkeypatch, capsys):
    monkeypatch.setenv("CHAIRSIDE_DATABASE_URL", url)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert users.main(["add", "nora", "--name", "Nora Person", "--role", "nurse", "--password-stdin"]) == 0
    assert _user(database, "nora").role == "nurse"
