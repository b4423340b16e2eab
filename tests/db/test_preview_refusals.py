"""What refuses a save whatever the values (a time ahead of now, a chair still in use) is said at the first
tap, in the preview, before the nurse is asked to confirm abnormal values (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from infusion.clock import utcnow
from infusion.errors import ConflictError, ValidationError
from infusion.services import entries, sessions
from tests.helpers import new_chair, new_session, normal_vitals


def test_the_preview_refuses_a_time_ahead_and_a_busy_chair_before_any_flag(db, nurse):
    chair = new_chair(db, nurse)
    busy = new_session(db, nurse, "natalizumab", chair_id=chair)
    sessions.check_in(db, nurse, busy, normal_vitals(), expected_version=None)
    waiting = new_session(db, nurse, "natalizumab", chair_id=chair)
    abnormal = normal_vitals(systolic=182)
    with pytest.raises(ConflictError, match="This chair already has an active session"):
        sessions.preview_check_in(db, waiting, abnormal, None)
    with pytest.raises(ValidationError, match="in the future"):
        sessions.preview_check_in(db, busy, abnormal, utcnow() + timedelta(hours=2))  # checked the time first
    with pytest.raises(ValidationError, match="in the future"):
        entries.preview_vitals(db, busy, abnormal, taken_at=utcnow() + timedelta(hours=2))
    assert entries.preview_vitals(db, busy, abnormal, taken_at=utcnow()).flags, "a time now: the flags"
