"""Account security across a clinic network: the idle sign-out, the minimum password length and the lockout
are the network's, the strictest of the open sites' settings, whichever site is first (before sign-in no
site is known). Two sites with different values, in both orders."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher

from db.engine import Database
from infusion.accounts import auth
from infusion.clock import utcnow
from infusion.errors import AuthError, ValidationError
from infusion.services import setup
from infusion.settings import AccountSecurity, ClinicSettings, account_security
from tests.helpers import ADMIN

PASSWORD = "correct horse battery staple"
LOOSE = {"idle_sign_out_minutes": 30, "min_password_length": 10, "lockout_attempts": 8, "lockout_minutes": 2}
STRICT = {"idle_sign_out_minutes": 10, "min_password_length": 14, "lockout_attempts": 3, "lockout_minutes": 20}


@pytest.fixture(autouse=True)
def _fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def _two_sites(db: Database, first: dict[str, int], second: dict[str, int]) -> tuple[int, int]:
    site_a = setup.update_clinic(
        db, ADMIN, name="Northside", code="NTH", timezone="UTC", temperature_unit="C", weight_unit="kg"
    )
    site_b = setup.add_site(db, ADMIN, "Riverside", "RIV", "America/Los_Angeles", "C", "kg")
    setup.update_settings(db, ADMIN, first, site_id=site_a.id)
    setup.update_settings(db, ADMIN, second, site_id=site_b.id)
    return site_a.id, site_b.id


def test_the_strictest_of_the_sites_whichever_is_first() -> None:
    mixed = [
        ClinicSettings(idle_sign_out_minutes=30, lockout_attempts=3, lockout_minutes=2, min_password_length=10),
        ClinicSettings(idle_sign_out_minutes=10, lockout_attempts=8, lockout_minutes=20, min_password_length=14),
    ]
    expected = AccountSecurity(idle_sign_out_minutes=10, min_password_length=14, lockout_attempts=3, lockout_minutes=20)
    assert account_security(mixed) == account_security(reversed(mixed)) == expected
    assert account_security([]) == AccountSecurity()  # before set-up: the documented defaults
    defaults = ClinicSettings()
    assert AccountSecurity().idle_sign_out_minutes == defaults.idle_sign_out_minutes


@pytest.mark.parametrize("strict_first", [True, False])
def test_the_network_applies_the_strictest_sites_values(db: Database, strict_first: bool) -> None:
    first, second = (STRICT, LOOSE) if strict_first else (LOOSE, STRICT)
    _, site_b = _two_sites(db, first, second)
    assert setup.network_security(db) == AccountSecurity(**STRICT)

    # a nurse of the loose site is held to the strict rules: 14 characters, locked after 3 tries for 20 min
    with pytest.raises(ValidationError, match="at least 14 characters"):
        auth.add_user(
            db, ADMIN, username="rita", display_name="Rita", role="nurse", password="twelve chars", sites=[site_b]
        )
    auth.add_user(db, ADMIN, username="rita", display_name="Rita", role="nurse", password=PASSWORD, sites=[site_b])
    now = utcnow()
    for _ in range(3):
        with pytest.raises(AuthError):
            auth.authenticate(db, "rita", "wrong password!", now=now)
    with pytest.raises(AuthError):  # the right password while locked
        auth.authenticate(db, "rita", PASSWORD, now=now + timedelta(minutes=19))
    assert auth.authenticate(db, "rita", PASSWORD, now=now + timedelta(minutes=21)).name == "Rita"


def test_a_closed_sites_settings_no_longer_count(db: Database) -> None:
    _, site_b = _two_sites(db, LOOSE, STRICT)
    setup.update_clinic(
        db,
        ADMIN,
        name="Riverside",
        code="RIV",
        timezone="America/Los_Angeles",
        temperature_unit="C",
        weight_unit="kg",
        site_id=site_b,
        active=False,
    )
    assert setup.network_security(db) == AccountSecurity(**LOOSE)
