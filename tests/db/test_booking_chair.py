"""Booking checks the chair and the clock: a time already past today is refused, and a chair another open
session holds for part of the planned chair time is booked only once confirmed, with the confirmation in
the audit trail (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select

from db.models import AuditEvent, InfusionSession
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
    today = datetime.combine(utcnow().date(), time(0), tzinfo=UTC)
    schedule_session(db, nurse, new_patient(db, nurse), tysabri, chair, max(utcnow() - timedelta(minutes=5), today))


def test_a_home_visit_location_holds_any_number_of_visits(db, nurse):
    from infusion.services.setup import add_chair

    home = add_chair(db, ADMIN, "Home visits", kind="home").id
    tysabri = therapy_id(db, "natalizumab")
    schedule_session(db, nurse, new_patient(db, nurse), tysabri, home, at(9))
    schedule_session(db, nurse, new_patient(db, nurse), tysabri, home, at(9))  # no question


def test_a_session_checked_in_late_holds_its_chair_from_check_in(db, nurse):
    from infusion.services import sessions
    from tests.helpers import normal_vitals

    chair = new_chair(db, ADMIN)
    tysabri = therapy_id(db, "natalizumab")
    late = sessions.create_session(
        db,
        nurse,
        patient_id=new_patient(db, nurse),
        therapy_id=tysabri,
        chair_id=chair,
        scheduled_at=utcnow() - timedelta(hours=3),
    ).id
    sessions.check_in(db, nurse, late, normal_vitals(), expected_version=None)  # now, three hours late
    with pytest.raises(ConfirmationRequired, match="in use by"):
        schedule_session(db, nurse, new_patient(db, nurse), tysabri, chair, utcnow() + timedelta(minutes=60))


def test_moving_a_booking_checks_the_clock_and_the_chair_like_a_new_one(db, nurse):
    from infusion.services.scheduling import move_booking

    chair = new_chair(db, ADMIN)
    tysabri = therapy_id(db, "natalizumab")
    schedule_session(db, nurse, new_patient(db, nurse), tysabri, chair, at(9))
    moving = schedule_session(db, nurse, new_patient(db, nurse), tysabri, chair, at(15))
    with pytest.raises(ConfirmationRequired, match="The chair is booked for"):
        move_booking(db, nurse, moving.id, at(9, 15), expected_version=None)
    with pytest.raises(ValidationError, match="passed|in the past"):
        move_booking(db, nurse, moving.id, utcnow() - timedelta(hours=2), expected_version=None)
    moved = move_booking(db, nurse, moving.id, at(9, 15), expected_version=None, confirm_shared_chair=True)
    assert moved.scheduled_at == at(9, 15)
    move_booking(db, nurse, moving.id, at(16), expected_version=None)  # its own old time never clashes


def test_moving_a_booking_to_another_chair_asks_when_that_chair_is_booked_then(db, nurse):
    from infusion.services.chairs import move_session

    chair, other = new_chair(db, ADMIN), new_chair(db, ADMIN)
    tysabri = therapy_id(db, "natalizumab")
    schedule_session(db, nurse, new_patient(db, nurse), tysabri, other, at(9))
    moving = schedule_session(db, nurse, new_patient(db, nurse), tysabri, chair, at(9, 30))
    with pytest.raises(ConfirmationRequired, match="The chair is booked for") as asked:
        move_session(db, nurse, moving.id, other, expected_version=None)
    assert "09:00–" in str(asked.value)
    with db.reading() as s:
        assert s.get(InfusionSession, moving.id).chair_id == chair  # nothing moved
    answer = " ".join(asked.value.flags)
    moved = move_session(
        db, nurse, moving.id, other, reason="window seat", expected_version=None, confirm_shared_chair=answer
    )
    assert moved.chair_id == other
    with db.reading() as s:
        event = s.scalars(
            select(AuditEvent).where(AuditEvent.session_id == moving.id, AuditEvent.action == "move_chair")
        ).one()
    assert event.reason is not None and event.reason.startswith("window seat; chair shared, confirmed: The chair is")


def test_moving_into_a_chair_free_for_the_planned_time_asks_nothing(db, nurse):
    from infusion.services.chairs import move_session

    chair, other = new_chair(db, ADMIN), new_chair(db, ADMIN)
    tysabri = therapy_id(db, "natalizumab")
    schedule_session(db, nurse, new_patient(db, nurse), tysabri, other, at(14))  # hours after
    moving = schedule_session(db, nurse, new_patient(db, nurse), tysabri, chair, at(9))
    assert move_session(db, nurse, moving.id, other, expected_version=None).chair_id == other


def test_moving_a_patient_in_the_chair_asks_about_a_booking_due_in_the_new_chair(db, nurse):
    from infusion.services import sessions
    from infusion.services.chairs import move_session
    from tests.helpers import normal_vitals

    chair, other = new_chair(db, ADMIN), new_chair(db, ADMIN)
    tysabri = therapy_id(db, "natalizumab")
    now = utcnow()
    here = sessions.create_session(
        db, nurse, patient_id=new_patient(db, nurse), therapy_id=tysabri, chair_id=chair, scheduled_at=now
    ).id
    sessions.check_in(db, nurse, here, normal_vitals(), expected_version=None)
    booked = sessions.create_session(
        db,
        nurse,
        patient_id=new_patient(db, nurse),
        therapy_id=tysabri,
        chair_id=other,
        scheduled_at=now + timedelta(minutes=45),
    ).id
    with pytest.raises(ConfirmationRequired, match="The chair is booked for"):
        move_session(db, nurse, here, other, expected_version=None)
    assert move_session(db, nurse, here, other, expected_version=None, confirm_shared_chair=True).chair_id == other
    with db.reading() as s:
        assert s.get(InfusionSession, booked).chair_id == other  # the booking is not moved away silently


def _booking(db, nurse, chair: int, when: datetime) -> int:
    """A booking at any time, past ones included (a late patient's), through the session service."""
    from infusion.services import sessions

    tysabri = therapy_id(db, "natalizumab")
    return sessions.create_session(
        db, nurse, patient_id=new_patient(db, nurse), therapy_id=tysabri, chair_id=chair, scheduled_at=when
    ).id


def _planned(db) -> timedelta:
    from db.models import Therapy
    from infusion.reads.sessions import planned_minutes_of

    with db.reading() as s:
        return timedelta(minutes=planned_minutes_of(s.get(Therapy, therapy_id(db, "natalizumab")), 1))


def test_moving_a_late_patients_booking_asks_about_the_chair_from_now_not_from_the_booked_time(db, nurse):
    from infusion.services.chairs import move_session

    chair, other = new_chair(db, ADMIN), new_chair(db, ADMIN)
    now = utcnow()
    # booked so long ago that its planned chair time ends in ten minutes: the patient has only just come
    late = _booking(db, nurse, chair, now - _planned(db) + timedelta(minutes=10))
    _booking(db, nurse, other, now + timedelta(minutes=30))
    with pytest.raises(ConfirmationRequired, match="The chair is booked for"):
        move_session(db, nurse, late, other, expected_version=None)
    with db.reading() as s:
        assert s.get(InfusionSession, late).chair_id == chair  # nothing moved before the nurse answers


def _due_now_beside_an_overrunning_patient(db, nurse) -> tuple[datetime, int, int]:
    """(now, a chair whose patient is still there an hour past the planned time, a booking due now elsewhere)."""
    from infusion.services import sessions
    from tests.helpers import normal_vitals

    chair, other = new_chair(db, ADMIN), new_chair(db, ADMIN)
    now = utcnow()
    long_ago = now - _planned(db) - timedelta(hours=1)
    overrunning = _booking(db, nurse, other, long_ago)
    sessions.check_in(db, nurse, overrunning, normal_vitals(), expected_version=None, at=long_ago)
    return now, other, _booking(db, nurse, chair, now - timedelta(minutes=5))


def test_moving_a_booking_into_a_chair_whose_patient_is_still_there_after_the_planned_time_asks(db, nurse):
    from infusion.services.chairs import move_session

    _, other, due_now = _due_now_beside_an_overrunning_patient(db, nurse)
    with pytest.raises(ConfirmationRequired, match=r"in use by .* since \d\d:\d\d, planned until \d\d:\d\d") as asked:
        move_session(db, nurse, due_now, other, expected_version=None)
    answer = " ".join(asked.value.flags)
    assert move_session(db, nurse, due_now, other, expected_version=None, confirm_shared_chair=answer).chair_id == other


def test_a_confirmation_still_holds_minutes_later_while_the_other_patient_stays(db, nurse, monkeypatch):
    """The nurse is asked, takes off her gloves and ticks the box: the question must be the same one."""
    import infusion.services.chairs as chairs_service
    from infusion.services.chairs import move_session

    now, other, due_now = _due_now_beside_an_overrunning_patient(db, nurse)
    with pytest.raises(ConfirmationRequired) as asked:
        move_session(db, nurse, due_now, other, expected_version=None)
    answer = " ".join(asked.value.flags)
    import infusion.reads.sessions as session_reads

    for module in (chairs_service, session_reads):  # three minutes on, wherever the time is read
        monkeypatch.setattr(module, "utcnow", lambda: now + timedelta(minutes=3))
    assert move_session(db, nurse, due_now, other, expected_version=None, confirm_shared_chair=answer).chair_id == other


def _in_chair(db, nurse, chair: int, since: datetime) -> int:
    """A patient booked and checked in at `since`."""
    from infusion.services import sessions
    from tests.helpers import normal_vitals

    sid = _booking(db, nurse, chair, since)
    sessions.check_in(db, nurse, sid, normal_vitals(), expected_version=None, at=since)
    return sid


def test_a_booking_that_starts_when_the_patient_in_the_chair_is_planned_to_leave_does_not_clash(db, nurse):
    from infusion.services.chairs import move_session

    chair, other = new_chair(db, ADMIN), new_chair(db, ADMIN)
    since = utcnow().replace(second=0, microsecond=0) - timedelta(minutes=10)
    _in_chair(db, nurse, other, since)
    moved = _booking(db, nurse, chair, since + _planned(db))
    assert move_session(db, nurse, moved, other, expected_version=None).chair_id == other
    later = schedule_session(
        db, nurse, new_patient(db, nurse), therapy_id(db, "natalizumab"), other, since + 2 * _planned(db)
    )
    assert later.chair_id == other  # and a new booking straight after asks nothing either


def test_moving_a_patient_past_their_planned_time_into_a_chair_booked_from_this_minute_asks(db, nurse, monkeypatch):
    import infusion.services.chairs as chairs_service
    from infusion.services.chairs import move_session

    chair, other = new_chair(db, ADMIN), new_chair(db, ADMIN)
    now = utcnow()
    overrunning = _in_chair(db, nurse, chair, now - _planned(db) - timedelta(hours=1))
    _booking(db, nurse, other, now + timedelta(minutes=1))
    monkeypatch.setattr(chairs_service, "utcnow", lambda: now + timedelta(minutes=1))  # the booking's minute
    with pytest.raises(ConfirmationRequired, match="The chair is booked for"):
        move_session(db, nurse, overrunning, other, expected_version=None)


def test_a_confirmation_given_before_the_other_patients_planned_end_holds_after_it(db, nurse, monkeypatch):
    import infusion.services.chairs as chairs_service
    from infusion.services.chairs import move_session

    chair, other = new_chair(db, ADMIN), new_chair(db, ADMIN)
    now = utcnow()
    _in_chair(db, nurse, other, now - _planned(db) + timedelta(minutes=1))  # planned to leave in a minute
    due = _booking(db, nurse, chair, now - timedelta(minutes=5))
    monkeypatch.setattr(chairs_service, "utcnow", lambda: now)
    with pytest.raises(ConfirmationRequired) as asked:
        move_session(db, nurse, due, other, expected_version=None)
    answer = " ".join(asked.value.flags)
    monkeypatch.setattr(chairs_service, "utcnow", lambda: now + timedelta(minutes=3))  # still there, now late
    assert move_session(db, nurse, due, other, expected_version=None, confirm_shared_chair=answer).chair_id == other


def test_a_patient_checked_in_early_for_a_later_booking_holds_the_chair_now(db, nurse):
    from infusion.services import sessions
    from infusion.services.chairs import move_session
    from tests.helpers import normal_vitals

    chair, other = new_chair(db, ADMIN), new_chair(db, ADMIN)
    now = utcnow()
    early = _booking(db, nurse, other, now + _planned(db) + timedelta(hours=1))
    sessions.check_in(db, nurse, early, normal_vitals(), expected_version=None, at=now - timedelta(minutes=5))
    due = _booking(db, nurse, chair, now - timedelta(minutes=5))
    with pytest.raises(ConfirmationRequired, match="in use by"):
        move_session(db, nurse, due, other, expected_version=None)
