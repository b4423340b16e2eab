"""What refuses a save whatever the values (a time ahead of now, a chair still in use) is said at the first
tap, in the preview, before the nurse is asked to confirm abnormal values (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from infusion.accounts.actor import Actor
from infusion.clock import utcnow
from infusion.errors import ConflictError, PermissionDenied, ValidationError
from infusion.services import entries, sessions
from tests.helpers import new_chair, new_session, normal_vitals


def test_the_preview_refuses_a_time_ahead_and_a_busy_chair_before_any_flag(db, nurse):
    chair = new_chair(db, nurse)
    busy = new_session(db, nurse, "natalizumab", chair_id=chair)
    sessions.check_in(db, nurse, busy, normal_vitals(), expected_version=None)
    waiting = new_session(db, nurse, "natalizumab", chair_id=chair)
    abnormal = normal_vitals(systolic=182)
    with pytest.raises(ConflictError, match="This chair already has an active session"):
        sessions.preview_check_in(db, nurse, waiting, abnormal, None)
    with pytest.raises(ValidationError, match="in the future"):
        sessions.preview_check_in(db, nurse, busy, abnormal, utcnow() + timedelta(hours=2))  # checked the time first
    with pytest.raises(ValidationError, match="in the future"):
        entries.preview_vitals(db, nurse, busy, abnormal, taken_at=utcnow() + timedelta(hours=2))
    assert entries.preview_vitals(db, nurse, busy, abnormal, taken_at=utcnow()).flags, "a time now: the flags"


def test_only_a_role_that_charts_is_shown_what_a_save_would_record(db, nurse):
    manager = Actor(nurse.user_id, "Mia Manager", "manager")
    sid = new_session(db, nurse, "natalizumab")
    with pytest.raises(PermissionDenied, match="record vitals"):
        entries.preview_vitals(db, manager, sid, normal_vitals(systolic=182))
    with pytest.raises(PermissionDenied, match="check patients in"):
        sessions.preview_check_in(db, manager, sid, normal_vitals(), None)


def test_free_text_past_the_one_length_rule_is_refused_naming_the_limit_and_stores_nothing(db, nurse):
    """Forms set no browser cap, so the flush's rule is the one limit: an unbounded note or reason is held to
    TEXT_MAX, a String(n) column to n, each refused with the limit and the length."""
    from sqlalchemy import func, select

    from db.models import Addendum
    from infusion.services import corrections
    from infusion.services.integrity import TEXT_MAX

    sid = new_session(db, nurse, "natalizumab")
    with pytest.raises(ValidationError, match=f"at most {TEXT_MAX} characters \\(this one has {TEXT_MAX + 1}\\)"):
        corrections.add_addendum(db, nurse, sid, "x" * (TEXT_MAX + 1))
    corrections.add_addendum(db, nurse, sid, "x" * TEXT_MAX)
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Addendum).where(Addendum.session_id == sid)) == 1
