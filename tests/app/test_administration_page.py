"""AppTest: the Administration page keeps what was typed on a refused save, and stays on its tab."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from db.models import AppUser
from infusion.accounts import auth
from infusion.accounts.actor import Actor
from tests.app.helpers import run_app
from tests.helpers import ADMIN, form_key

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def _click(at, label: str):  # type: ignore[no-untyped-def]
    next(b for b in at.button if b.label == label).click()
    return run_app(at)


def _users(db) -> int:  # type: ignore[no-untyped-def]
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(AppUser)) or 0


def _open_users_tab(db, make_app):  # type: ignore[no-untyped-def]
    user = auth.add_user(db, ADMIN, username="boss", display_name="Bo Boss", role="admin", password=PASSWORD)
    at = make_app()
    at.session_state["actor"] = Actor(user.id, user.display_name, "admin")
    run_app(at)
    run_app(at.switch_page("pages/administration.py"))
    at.session_state["admin_tab"] = "Users"  # the administrator picks the Users tab
    return run_app(at)


def _fill(at, **fields: str) -> None:  # type: ignore[no-untyped-def]
    for field, value in fields.items():
        at.text_input(key=form_key(at, "add_user", field)).set_value(value)


def test_a_refused_add_user_keeps_what_was_typed_and_stays_on_the_users_tab(db, make_app):
    at = _open_users_tab(db, make_app)
    before = _users(db)
    _fill(at, username="boss", name="Nora Nurse", email="nora@example.org", password=PASSWORD)
    at.selectbox(key=form_key(at, "add_user", "role")).set_value("nurse")
    _click(at, "Add user")

    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("Not saved.") and "boss" in errors[0], errors
    assert _users(db) == before
    assert at.session_state["admin_tab"] == "Users"
    for field, value in {"username": "boss", "name": "Nora Nurse", "email": "nora@example.org"}.items():
        assert at.text_input(key=form_key(at, "add_user", field)).value == value, field
    assert at.text_input(key=form_key(at, "add_user", "password")).value == PASSWORD
    assert at.selectbox(key=form_key(at, "add_user", "role")).value == "nurse"

    # corrected, it is saved once and the form starts blank, still on the Users tab
    at.text_input(key=form_key(at, "add_user", "username")).set_value("nora")
    _click(at, "Add user")
    assert [e.value for e in at.error] == []
    assert _users(db) == before + 1
    assert at.session_state["admin_tab"] == "Users"
    assert "User nora added." in [s.value for s in at.success]
    assert at.text_input(key=form_key(at, "add_user", "username")).value == ""
    assert at.text_input(key=form_key(at, "add_user", "name")).value == ""


def test_a_too_short_password_is_refused_with_the_fields_kept(db, make_app):
    at = _open_users_tab(db, make_app)
    _fill(at, username="nora", name="Nora Nurse", password="short")
    _click(at, "Add user")
    assert any("Not saved." in e.value for e in at.error), [e.value for e in at.error]
    assert at.text_input(key=form_key(at, "add_user", "username")).value == "nora"
    assert at.text_input(key=form_key(at, "add_user", "name")).value == "Nora Nurse"
    assert at.session_state["admin_tab"] == "Users"
    with db.reading() as s:
        assert s.scalar(select(AppUser).where(AppUser.username == "nora")) is None
