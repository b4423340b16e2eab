"""Booking checks the chair and the clock: a time already past today is refused, and a chair another open
session holds for part of the planned chair time is booked only once confirmed, with the confirmation in
the audit trail (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select

from db.models import AuditEvent
from infusion.clock import utcnow
from infusion.errors import ConfirmationRequired, ValidationError
from infusion.services.scheduling import schedule_session
from tests.helpers import ADMIN, new_chair, new_patient, therapy_id

DAY = utcnow().date() + timedelta(days=3)  # the test clinic runs on UTC


def at(hour: int, minute: int = 0) -> datetime:
    return datetime.combine(DAY, time(hour, minute), tzinfo=UTC)


def test_a_chair_booked_at_the_same_time_is_booked_again_only_once_confirmed(db, nurse):
    chair = new_chair(db, ADMIN)
    tysabri = therapy_id(db, "natalizumab")
    first = new_patient(db, nurse)
    schedule_session(db, nurse, first, tysabri, chair, at(9))
    second = new_patient(db, nurse)
    with pytest.raises(ConfirmationRequired) as asked:
        schedule_session(db, nurse, second, tysabri, chair, at(9, 30))
    assert "The chair is booked for Tester" in str(asked.value) and "09:00–" in str(asked.value)
    booked = schedule_session(db, nurse, second, tysabri, chair, at(9, 30), confirm_shared_chair=True)
    with db.reading() as s:
        event = s.scalars(
            select(AuditEvent).where(AuditEvent.session_id == booked.id, AuditEvent.action == "schedule")
        ).one()
    assert event.reason is not None and event.reason.startswith("chair shared, confirmed: The chair is booked for")


def test_another_chair_or_a_time_after_the_planned_chair_time_needs_no_confirmation(db, nurse):
    chair, other = new_chair(db, ADMIN), new_chair(db, ADMIN)
    tysabri = therapy_id(db, "natalizumab")
    schedule_session(db, nurse, new_patient(db, nurse), tysabri, chair, at(9))
    schedule_session(db, nurse, new_patient(db, nurse), tysabri, other, at(9))
    schedule_session(db, nurse, new_patient(db, nurse), tysabri, chair, at(14))  # hours after: free again


def test_a_time_already_past_today_is_refused_and_the_current_slot_is_not(db, nurse):
    chair = new_chair(db, ADMIN)
    tysabri = therapy_id(db, "natalizumab")
    with pytest.raises(ValidationError) as refused:
        schedule_session(db, nurse, new_patient(db, nurse), tysabri, chair, utcnow() - timedelta(hours=3))
    assert "scheduled_at" in refused.value.problems  # "has passed" (or, just after midnight, "in the past")
    schedule_session(db, nurse, new_patient(db, nurse), tysabri, chair, utcnow() - timedelta(minutes=5))
