"""AppTest: account security is the network's, the strictest of the sites' settings. With the first site
at a 30-minute idle limit and another at 10, the sign-in page says 10, a nurse of the first site is signed
out after 10 idle minutes, and Administration shows the values in force."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from db.models import AuditEvent
from infusion.accounts import auth
from infusion.accounts.actor import Actor
from infusion.clock import utcnow
from infusion.services import setup
from tests.app.helpers import run_app
from tests.helpers import ADMIN

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def _texts(at) -> str:
    parts: list[Any] = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success"):
        parts += [e.value for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


@pytest.fixture
def sites(db) -> tuple[int, int]:
    first = setup.update_clinic(
        db, ADMIN, name="Northside", code="NTH", timezone="UTC", temperature_unit="C", weight_unit="kg"
    )
    other = setup.add_site(db, ADMIN, "Riverside", "RIV", "America/Los_Angeles", "C", "kg")
    setup.update_settings(db, ADMIN, {"idle_sign_out_minutes": 30, "lockout_attempts": 8}, site_id=first.id)
    setup.update_settings(db, ADMIN, {"idle_sign_out_minutes": 10, "lockout_minutes": 20}, site_id=other.id)
    return first.id, other.id


def test_the_sign_in_page_states_the_strictest_idle_limit(db, make_app, sites) -> None:
    auth.add_user(db, ADMIN, username="boss", display_name="Boss", role="admin", password=PASSWORD)
    at = run_app(make_app())
    shown = _texts(at)
    assert "signed out after 10 minutes without activity" in shown and "30 minutes" not in shown


def test_a_nurse_of_the_first_site_is_signed_out_after_the_networks_idle_limit(db, make_app, sites) -> None:
    user = auth.add_user(
        db, ADMIN, username="nora", display_name="Nora", role="nurse", password=PASSWORD, sites=[sites[0]]
    )
    nurse = Actor(user.id, user.display_name, "nurse")
    at = make_app()
    at.session_state["actor"] = nurse
    at.session_state["_last_activity"] = utcnow() - timedelta(minutes=11)  # within her site's 30, past the 10
    run_app(at)
    assert "actor" not in at.session_state
    assert "Signed out after 10 minutes without activity." in _texts(at)
    with db.reading() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "sign_out")).one()
    assert (event.user_id, event.reason) == (nurse.user_id, "idle")


def test_administration_shows_the_account_rules_in_force(db, make_app, sites) -> None:
    user = auth.add_user(db, ADMIN, username="ada", display_name="Ada", role="admin", password=PASSWORD)
    at = make_app()
    at.session_state["actor"] = Actor(user.id, user.display_name, "admin")
    run_app(at)
    run_app(at.switch_page("pages/administration.py"))
    shown = _texts(at)
    assert "now 10 min idle sign-out" in shown, shown
    assert "a 20 min lockout after 5 failed sign-ins" in shown
