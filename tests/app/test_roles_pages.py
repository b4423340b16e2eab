"""AppTest (issue 5): the role × page matrix, by navigation and by URL; sign-in, the first
administrator, wrong passwords, idle sign-out and the demo-mode note on the sign-in page.

The pages come from `PAGES` in dashboard.py, read with `ast` (importing dashboard.py
would run the Streamlit app), so a page added there joins the matrix by itself.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import streamlit
from argon2 import PasswordHasher
from sqlalchemy import select

from db.models import AuditEvent
from infusion.accounts import auth
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import ROLE_LABELS
from infusion.clock import utcnow
from infusion.demo.clinic import DEMO_PASSWORD
from infusion.services.setup import update_settings
from infusion.settings import ClinicSettings
from tests.app.helpers import run_app
from tests.helpers import ADMIN, ROOT
from ui.registry import PAGES as REGISTRY

PASSWORD = "correct horse battery"
ROLES = ("nurse", "charge_nurse", "manager", "quality", "admin")
NOT_RECOGNISED = "User name or password not recognised."


PAGES = [(page.key, page.file, page.title) for page in REGISTRY]
PAGE_ROLES = {page.key: page.roles for page in REGISTRY}


def test_pages_are_the_permission_table_pages_that_exist():
    keys = [key for key, _, _ in PAGES]
    assert {"chairside", "administration"} <= set(keys)
    assert set(keys) <= set(PAGE_ROLES)
    for key, path, _ in PAGES:
        assert path == f"pages/{key}.py"
    # every page the permission table names and that exists as a file is in the navigation
    assert {key for key in PAGE_ROLES if (ROOT / "pages" / f"{key}.py").is_file()} == set(keys)


@pytest.fixture(autouse=True)
def _fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def navigation_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[tuple[str, str, bool]]]:
    """Records each st.navigation call as [(title, visibility, default)]: what the menu offers."""
    calls: list[list[tuple[str, str, bool]]] = []
    real = streamlit.navigation

    def recording(pages, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append([(p.title, p.visibility, bool(getattr(p, "_default", False))) for p in pages])
        return real(pages, *args, **kwargs)

    monkeypatch.setattr(streamlit, "navigation", recording)
    return calls


# ------------------------------------------------------------------ helpers
def _user(db, role: str, username: str | None = None, password: str | None = PASSWORD) -> Actor:
    user = auth.add_user(
        db, ADMIN, username=username or f"the.{role}", display_name=f"The {role}", role=role, password=password
    )
    return Actor(user.id, user.display_name, role)


def _texts(elements: Any) -> list[str]:
    return [str(e.value) for e in elements]


def _everything(at) -> str:  # type: ignore[no-untyped-def]
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "error", "warning", "info", "success"):
        parts += _texts(getattr(at, kind))
    return "\n".join(parts)


def _refusals(at) -> list[str]:  # type: ignore[no-untyped-def]
    return [e for e in _texts(at.error) if "may not open" in e]


def _shows_page(at, key: str, title: str) -> bool:  # type: ignore[no-untyped-def]
    """Whether the page's own content is on screen (not just the dashboard header)."""
    if key == "chairside":
        return any(m.startswith("#### Today (") for m in _texts(at.markdown))
    return title in _texts(at.header) + _texts(at.title) + _texts(at.subheader)


#: the dashboard's own header (the user menu) is on every page
HEADER_INPUTS = {"own_current_password", "own_new_password", "own_new_password_again"}


def _page_inputs(at) -> set[str]:  # type: ignore[no-untyped-def]
    """Keys (or labels) of the input widgets a page drew, apart from the dashboard header's."""
    found = set()
    for kind in (
        "text_input",
        "number_input",
        "selectbox",
        "multiselect",
        "date_input",
        "time_input",
        "text_area",
        "toggle",
        "checkbox",
        "radio",
    ):
        found |= {w.key or w.label for w in getattr(at, kind)}
    return found - HEADER_INPUTS


def _on_sign_in_page(at) -> bool:  # type: ignore[no-untyped-def]
    keys = {t.key for t in at.text_input}
    return "si_username" in keys or "fa_username" in keys


def _click(at, label: str):  # type: ignore[no-untyped-def]
    next(b for b in at.button if b.label == label).click()
    return run_app(at)


def _signed_in_app(make_app, actor: Actor):  # type: ignore[no-untyped-def]
    at = make_app()
    at.session_state["actor"] = actor
    return run_app(at)


# ------------------------------------------------------------------ the matrix
@pytest.mark.parametrize("role", ROLES)
def test_role_page_matrix(db, make_app, navigation_calls, role):
    actor = _user(db, role)
    at = _signed_in_app(make_app, actor)
    allowed = {key for key, _, _ in PAGES if role in PAGE_ROLES[key]}

    # by navigation: the menu lists exactly the role's pages, the first of them as the landing page
    menu = navigation_calls[-1]
    assert [title for title, visibility, _ in menu if visibility == "visible"] == [
        title for key, _, title in PAGES if key in allowed
    ]
    first = [title for key, _, title in PAGES if key in allowed][:1]
    assert [title for title, _, default in menu if default] == first

    # by URL: every page, allowed or not
    for key, path, title in PAGES:
        run_app(at.switch_page(path))
        assert at.session_state["actor"] == actor
        if key in allowed:
            assert _refusals(at) == [], f"{role} refused {key}"
            assert _shows_page(at, key, title), f"{role} does not see {key}"
        else:
            label = ROLE_LABELS[role]
            assert _refusals(at) == [
                f"Your role ({label}) may not open {title}. Ask an administrator if you need it."
            ], (role, key)
            assert not _shows_page(at, key, title), f"{role} sees the content of {key}"
            assert not at.dataframe and not at.tabs, f"{role} sees data on {key}"
            assert _page_inputs(at) == set(), f"{role} gets the forms of {key}"


@pytest.mark.parametrize("role", ROLES)
def test_landing_page_after_sign_in(db, make_app, role):
    """Signing in through the form lands on the role's first page, or, for a role none of
    whose pages exist yet, on a clear refusal rather than an error."""
    _user(db, "admin", username="boss")
    if role != "admin":
        _user(db, role)
    username = "boss" if role == "admin" else f"the.{role}"
    at = run_app(make_app())
    assert _on_sign_in_page(at)
    at.text_input(key="si_username").input(username)
    at.text_input(key="si_password").input(PASSWORD)
    _click(at, "Sign in")

    assert at.session_state["actor"].role == role
    assert not _on_sign_in_page(at)
    allowed = [(key, title) for key, _, title in PAGES if role in PAGE_ROLES[key]]
    if allowed:
        key, title = allowed[0]
        assert _shows_page(at, key, title)
        assert _refusals(at) == []
    else:
        assert len(_refusals(at)) == 1
    assert not any(_shows_page(at, k, t) for k, _, t in PAGES if role not in PAGE_ROLES[k])


# ------------------------------------------------------------------ signing in and out
def test_first_start_asks_for_the_administrator(db, make_app):
    at = run_app(make_app())
    assert "Create the administrator" in _texts(at.subheader)
    assert "si_username" not in {t.key for t in at.text_input}
    assert not any(_shows_page(at, k, t) for k, _, t in PAGES)

    at.text_input(key="fa_username").input("boss")
    at.text_input(key="fa_name").input("Bo Boss")
    at.text_input(key="fa_password").input(PASSWORD)
    at.text_input(key="fa_again").input(PASSWORD)
    _click(at, "Create administrator")

    assert at.session_state["actor"].role == "admin"
    assert not auth.needs_first_admin(db)
    first_admin_page = next((k, t) for k, _, t in PAGES if "admin" in PAGE_ROLES[k])
    assert _shows_page(at, *first_admin_page)

    # a second visitor now gets the sign-in form, not the administrator form
    again = run_app(make_app())
    assert "si_username" in {t.key for t in again.text_input}
    assert "Create the administrator" not in _texts(again.subheader)


def test_first_administrator_form_refuses_a_short_password(db, make_app):
    at = run_app(make_app())
    at.text_input(key="fa_username").input("boss")
    at.text_input(key="fa_name").input("Bo Boss")
    at.text_input(key="fa_password").input("short")
    at.text_input(key="fa_again").input("short")
    _click(at, "Create administrator")
    assert "actor" not in at.session_state
    assert any("at least" in e for e in _texts(at.error))
    assert auth.needs_first_admin(db)


def test_signed_out_visitor_sees_the_sign_in_form_once_an_administrator_exists(db, make_app):
    _user(db, "admin", username="boss")
    at = run_app(make_app())
    assert "actor" not in at.session_state
    assert "si_username" in {t.key for t in at.text_input}
    assert "Create the administrator" not in _texts(at.subheader)
    assert not any(_shows_page(at, k, t) for k, _, t in PAGES)


def test_a_page_url_without_signing_in_shows_the_sign_in_page(db, make_app):
    admin = _user(db, "admin", username="boss")
    for key, path, title in PAGES:
        at = _signed_in_app(make_app, admin)  # registers every page so its URL can be resolved
        del at.session_state["actor"]  # the same URL in a browser that is not signed in
        run_app(at.switch_page(path))
        assert _on_sign_in_page(at), key
        assert not _shows_page(at, key, title), key
        assert "actor" not in at.session_state


def test_wrong_password_is_refused_on_the_sign_in_page(db, make_app):
    _user(db, "admin", username="boss")
    _user(db, "nurse", username="nora")
    for username in ("nora", "nobody"):
        at = run_app(make_app())
        at.text_input(key="si_username").input(username)
        at.text_input(key="si_password").input("not the password")
        _click(at, "Sign in")
        assert NOT_RECOGNISED in _texts(at.error), username
        assert "actor" not in at.session_state
        assert _on_sign_in_page(at)


def test_repeated_failures_lock_the_account_on_the_sign_in_page(db, make_app):
    _user(db, "admin", username="boss")
    _user(db, "nurse", username="nora")
    at = run_app(make_app())
    for attempt in range(ClinicSettings().lockout_attempts):
        at.text_input(key="si_username").input("nora")
        at.text_input(key="si_password").input(f"wrong password {attempt}")
        _click(at, "Sign in")
        assert NOT_RECOGNISED in _texts(at.error)
    at.text_input(key="si_username").input("nora")
    at.text_input(key="si_password").input(PASSWORD)
    _click(at, "Sign in")
    assert "actor" not in at.session_state
    # locked out: the same answer as an unknown account, so accounts cannot be enumerated
    assert NOT_RECOGNISED in _texts(at.error)


def test_sign_out_button_signs_out_and_is_audited(db, make_app):
    nurse = _user(db, "nurse")
    at = _signed_in_app(make_app, nurse)
    at.query_params["session"] = "42"  # the session she had open: not for whoever signs in next
    _click(at, "Sign out")
    assert "actor" not in at.session_state
    assert "session" not in at.query_params
    assert _on_sign_in_page(at)
    with db.reading() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "sign_out")).one()
    assert (event.user_id, event.reason) == (nurse.user_id, "signed out")


def test_idle_sign_out(db, make_app):
    nurse = _user(db, "nurse")
    minutes = ClinicSettings().idle_sign_out_minutes
    at = make_app()
    at.session_state["actor"] = nurse
    at.session_state["_last_activity"] = utcnow() - timedelta(minutes=minutes, seconds=5)
    run_app(at)
    assert "actor" not in at.session_state
    assert _on_sign_in_page(at)
    assert f"Signed out after {minutes} minutes without activity." in _texts(at.success)
    assert not any(_shows_page(at, k, t) for k, _, t in PAGES)
    with db.reading() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "sign_out")).one()
    assert (event.user_id, event.reason) == (nurse.user_id, "idle")


def test_idle_sign_out_follows_the_clinic_setting(db, make_app):
    nurse = _user(db, "nurse")
    update_settings(db, ADMIN, {"idle_sign_out_minutes": 5})
    at = make_app()
    at.session_state["actor"] = nurse
    at.session_state["_last_activity"] = utcnow() - timedelta(minutes=6)
    run_app(at)
    assert "actor" not in at.session_state
    assert "Signed out after 5 minutes without activity." in _texts(at.success)


def test_activity_within_the_idle_limit_keeps_the_user_signed_in(db, make_app):
    nurse = _user(db, "nurse")
    minutes = ClinicSettings().idle_sign_out_minutes
    at = make_app()
    at.session_state["actor"] = nurse
    at.session_state["_last_activity"] = utcnow() - timedelta(minutes=minutes - 1)
    run_app(at)
    assert at.session_state["actor"] == nurse
    assert _shows_page(at, "chairside", "Chairside")
    assert at.session_state["_last_activity"] > utcnow() - timedelta(minutes=1)  # the clock restarted


@pytest.mark.parametrize("demo", [False, True])
def test_demo_accounts_are_listed_only_in_demo_mode(db, make_app, demo):
    _user(db, "admin", username="boss")
    if demo:
        update_settings(db, ADMIN, {"demo_mode": True})
    at = run_app(make_app())
    assert _on_sign_in_page(at)
    listed = [i for i in _texts(at.info) if "Demo accounts" in i]
    if demo:
        assert len(listed) == 1
        assert f"`{DEMO_PASSWORD}`" in listed[0]
        for role in ROLES:  # one documented account per role
            assert f"({role.replace('_', ' ')})" in listed[0], role
    else:
        assert listed == []
        assert DEMO_PASSWORD not in _everything(at)


# ------------------------------------------------------------------ account changes while signed in
STALE_ACTOR = (
    "BUG: dashboard.py keeps the Actor (user id, name, role) stored in st.session_state at sign-in and "
    "never re-reads the app_user row, and the services trust actor.role; so a user an administrator "
    "disables (Administration page or `python -m infusion.accounts disable`) keeps charting on an open "
    "tablet, and a user whose role is changed keeps the old role's pages and service rights, until "
    "they sign out or go idle. Fix: on every run reload the user (active, role) and sign out or "
    "replace the actor when it changed."
)


def test_a_disabled_user_is_signed_out_at_the_next_interaction(db, make_app):
    nurse = _user(db, "nurse")
    at = _signed_in_app(make_app, nurse)
    assert _shows_page(at, "chairside", "Chairside")
    auth.set_active(db, ADMIN, nurse.user_id, False)
    run_app(at)
    assert not _shows_page(at, "chairside", "Chairside")
    assert _on_sign_in_page(at)


def test_a_role_change_applies_at_the_next_interaction(db, make_app):
    boss = _user(db, "admin", username="boss")
    other = _user(db, "admin", username="boss2")
    at = _signed_in_app(make_app, boss)
    run_app(at.switch_page("pages/administration.py"))
    assert _shows_page(at, "administration", "Administration")
    auth.change_role(db, other, boss.user_id, "nurse")
    run_app(at)
    assert not _shows_page(at, "administration", "Administration")
