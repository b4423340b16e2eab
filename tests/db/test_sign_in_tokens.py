"""Sign-in that survives a reload: a browser's token resumes the sign-in until sign-out,
the idle limit, expiry or the account being disabled (on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from db.models import AuditEvent, SignInToken
from infusion.accounts import auth, tokens
from infusion.clock import utcnow
from tests.helpers import ADMIN

IDLE = 15


@pytest.fixture(autouse=True)
def _fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def nurse(db):
    auth.add_user(db, ADMIN, username="nina", display_name="Nina Nurse", role="nurse", password="long enough pw 1")
    return auth.authenticate(db, "nina", "long enough pw 1")


def test_a_token_resumes_the_same_person_after_a_reload(db, nurse):
    issued = tokens.issue(db, nurse)
    again = tokens.resume(db, issued.token, IDLE)
    assert again is not None and (again.user_id, again.name, again.role) == (nurse.user_id, "Nina Nurse", "nurse")


def test_only_a_hash_is_stored_and_issuing_is_audited(db, nurse):
    issued = tokens.issue(db, nurse)
    with db.reading() as s:
        stored = s.scalars(select(SignInToken.token_hash)).all()
        audited = s.scalars(select(AuditEvent.action).where(AuditEvent.user_id == nurse.user_id)).all()
    assert stored and issued.token not in stored[0] and len(stored[0]) == 64
    assert "sign_in_token_issued" in audited


@pytest.mark.parametrize("token", [None, "", "not-a-token", "x" * 500, 42])
def test_unknown_or_malformed_tokens_sign_no_one_in(db, nurse, token):
    tokens.issue(db, nurse)
    assert tokens.resume(db, token, IDLE) is None  # type: ignore[arg-type]


def test_sign_out_revokes_the_token(db, nurse):
    issued = tokens.issue(db, nurse)
    tokens.revoke(db, issued.token, "signed out")
    assert tokens.resume(db, issued.token, IDLE) is None


def test_the_idle_limit_ends_a_token_and_activity_keeps_it(db, nurse):
    start = utcnow()
    issued = tokens.issue(db, nurse, now=start)
    # activity at +10 min keeps it alive at +20 min (idle limit 15)
    assert tokens.resume(db, issued.token, IDLE, now=start + timedelta(minutes=10)) is not None
    assert tokens.resume(db, issued.token, IDLE, now=start + timedelta(minutes=20)) is not None
    # 16 minutes without activity: gone, and it stays gone
    assert tokens.resume(db, issued.token, IDLE, now=start + timedelta(minutes=37)) is None
    assert tokens.resume(db, issued.token, IDLE, now=start + timedelta(minutes=38)) is None


def test_a_token_expires_even_when_used(db, nurse):
    start = utcnow()
    issued = tokens.issue(db, nurse, now=start)
    moment = start
    while moment < start + tokens.MAX_AGE - timedelta(minutes=10):
        moment += timedelta(minutes=10)
        assert tokens.resume(db, issued.token, IDLE, now=moment) is not None
    assert tokens.resume(db, issued.token, IDLE, now=start + tokens.MAX_AGE) is None


def test_disabling_the_account_ends_every_sign_in_at_once(db, nurse):
    first, second = tokens.issue(db, nurse), tokens.issue(db, nurse)
    auth.set_active(db, ADMIN, nurse.user_id, False)
    assert tokens.resume(db, first.token, IDLE) is None
    auth.set_active(db, ADMIN, nurse.user_id, True)
    assert tokens.resume(db, second.token, IDLE) is None  # revoked when refused, not revived
    assert tokens.revoke_user(db, nurse.user_id, "password reset") == 0
