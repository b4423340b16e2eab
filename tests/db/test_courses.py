"""Ended courses (`infusion.services.courses`) on SQLite and PostgreSQL: a course marked ended leaves the due
list (every section), the protocol table and its "set protocol" warning, is listed under "Ended courses"
with who, when and why, and comes back when resumed; refusals (role, site, reason, note) store nothing;
a double tap stores one mark; a booking after the end is allowed and does not bring the pair back, an
infusion given after it does; the
summary (`due_pair.ended`) stays equal to the raw-row path."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import func, select, update

from db.models import CourseEnd
from infusion.accounts.actor import Actor
from infusion.errors import ConflictError, PermissionDenied, ValidationError
from infusion.reads import due, due_summary
from infusion.reads.courses import ENDED_COLUMNS, ended_courses
from infusion.services import courses
from infusion.services.scheduling import schedule_session
from infusion.services.setup import add_chair, add_site
from tests.db.test_due import CHARGE, MANAGER, TODAY, at, give, history
from tests.helpers import ADMIN, audit_count, audits_since, new_chair, new_patient, therapy_id

ALL = (due.SECTION_OVERDUE, due.SECTION_WEEK, due.SECTION_PROTOCOL, due.SECTION_LATER, due.SECTION_NONE)


def listed(db, actor=CHARGE, sections=ALL) -> set[tuple[int, int]]:
    """The pairs the due list shows, checked against the raw-row path and the summary against a rebuild."""
    fast = due.due_list(db, actor, TODAY, sections=sections)
    pd.testing.assert_frame_equal(fast, due._due_list_raw(db, actor, TODAY, sections=sections))
    with db.reading() as s:
        assert due_summary.compare(s.connection()) == []
    return {(int(p), int(t)) for p, t in zip(fast.patient_id, fast.therapy_id)}


def marks(db) -> list[CourseEnd]:
    with db.reading() as s:
        return list(s.scalars(select(CourseEnd).order_by(CourseEnd.id)))


def test_an_ended_course_leaves_the_due_list_and_comes_back_when_resumed(db, nurse):
    tysabri = therapy_id(db, "natalizumab")
    gone = history(db, nurse, "natalizumab", [TODAY - timedelta(days=400), TODAY - timedelta(days=372)])
    stays = history(db, nurse, "natalizumab", [TODAY - timedelta(days=40)])
    assert listed(db) == {(gone, tysabri), (stays, tysabri)}
    overdue_before = due.due_list(db, nurse, TODAY).set_index("patient_id").loc[gone, "days_overdue"]

    mark = audit_count(db)
    row = courses.end_course(db, CHARGE, gone, tysabri, "transferred", "  Moved to Leeds  ")
    assert listed(db) == {(stays, tysabri)}
    assert listed(db, sections=(due.SECTION_OVERDUE,)) == {(stays, tysabri)}
    [event] = audits_since(db, mark)
    assert (event.action, event.entity, event.entity_id, event.patient_id, event.user_name) == (
        "end_course",
        "course_end",
        row.id,
        gone,
        "Test Charge",
    )
    assert event.after["reason"] == "transferred" and event.reason == "Care transferred elsewhere: Moved to Leeds"

    shown = ended_courses(db, nurse)  # every Due reader sees the list (only some may resume)
    assert list(shown.columns) == ENDED_COLUMNS
    [r] = shown.itertuples()
    assert (r.patient_id, r.therapy, r.reason, r.note, r.ended_by, r.last_infusion) == (
        gone,
        "Tysabri",
        "Care transferred elsewhere",
        "Moved to Leeds",
        "Test Charge",
        TODAY - timedelta(days=372),
    )

    mark = audit_count(db)
    resumed = courses.resume_course(db, ADMIN, row.id, "Back from Leeds")
    assert listed(db) == {(gone, tysabri), (stays, tysabri)}
    again = due.due_list(db, nurse, TODAY).set_index("patient_id").loc[gone]
    assert (again.section, again.days_overdue) == ("overdue", overdue_before)
    assert ended_courses(db, nurse).empty
    [event] = audits_since(db, mark)
    assert (event.action, event.entity_id, event.reason) == ("resume_course", row.id, "Back from Leeds")
    assert event.after["resume_reason"] == "Back from Leeds" and event.after["resumed_by_name"] == "Test Admin"
    assert set(event.before) == {"resumed_at", "resumed_by_name", "resume_reason"}  # only what was filled in

    # ended again: a new mark; the first keeps its end and its resume, nothing overwritten
    courses.end_course(db, CHARGE, gone, tysabri, "died")
    first, second = marks(db)
    assert (first.id, first.reason, first.note, first.ended_by_name) == (
        row.id,
        "transferred",
        "Moved to Leeds",
        "Test Charge",
    )
    assert (first.resumed_at, first.resume_reason) == (resumed.resumed_at, "Back from Leeds")
    assert (second.reason, second.resumed_at) == ("died", None)
    assert listed(db) == {(stays, tysabri)}


def test_an_ended_protocol_pair_leaves_the_protocol_table_and_its_warning(db, nurse):
    ivig = therapy_id(db, "ivig")
    old = history(db, nurse, "ivig", [TODAY - timedelta(days=900)])
    current = history(db, nurse, "ivig", [TODAY - timedelta(days=20)])
    needs = due.without_due_date(due.protocol_patients(db, CHARGE))
    assert set(needs.patient_id) == {old, current}
    assert listed(db, sections=(due.SECTION_PROTOCOL,)) == {(old, ivig), (current, ivig)}

    courses.end_course(db, CHARGE, old, ivig, "completed")
    table = due.protocol_patients(db, CHARGE)
    assert list(table.patient_id) == [current]
    assert list(due.without_due_date(table).patient_id) == [current]
    assert listed(db, sections=(due.SECTION_PROTOCOL,)) == {(current, ivig)}


def test_refusals_name_the_field_and_store_nothing(db, nurse):
    tysabri = therapy_id(db, "natalizumab")
    patient = history(db, nurse, "natalizumab", [TODAY - timedelta(days=100)])
    never = new_patient(db, nurse)
    before = audit_count(db)
    for actor in (nurse, MANAGER, Actor(None, "Q", "quality")):
        with pytest.raises(PermissionDenied):
            courses.end_course(db, actor, patient, tysabri, "completed")
    cases = [
        ((patient, tysabri, "stopped", None), "reason"),
        ((patient, tysabri, None, None), "reason"),
        ((patient, tysabri, "other", "   "), "note"),
        ((patient, tysabri, "completed", "x" * 501), "note"),
        ((patient, tysabri, "completed", "a\x00b"), "note"),
        ((never, tysabri, "completed", None), "therapy"),  # nothing given nor booked: no course
        ((10**9, tysabri, "completed", None), "patient"),
        ((patient, 10**9, "completed", None), "therapy"),
        (("1", tysabri, "completed", None), "patient"),
    ]
    for args, field in cases:
        with pytest.raises(ValidationError) as refused:
            courses.end_course(db, CHARGE, *args)
        assert set(refused.value.problems) == {field}, args
    assert marks(db) == [] and audit_count(db) == before
    assert (patient, tysabri) in listed(db)

    row = courses.end_course(db, CHARGE, patient, tysabri, "other", "Trial drug elsewhere")
    before = audit_count(db)
    with pytest.raises(PermissionDenied):
        courses.resume_course(db, nurse, row.id, "back")
    for reason in ("", "   ", None, "x" * 501):
        with pytest.raises(ValidationError) as refused:
            courses.resume_course(db, CHARGE, row.id, reason)  # type: ignore[arg-type]
        assert set(refused.value.problems) == {"resume_reason"}
    assert audit_count(db) == before and marks(db)[0].resumed_at is None


def test_a_double_tap_stores_one_mark_and_one_event(db, nurse):
    tysabri = therapy_id(db, "natalizumab")
    patient = history(db, nurse, "natalizumab", [TODAY - timedelta(days=100)])
    before = audit_count(db)
    first = courses.end_course(db, CHARGE, patient, tysabri, "switched", client_token="tap-1")
    second = courses.end_course(db, CHARGE, patient, tysabri, "switched", client_token="tap-1")
    third = courses.end_course(db, ADMIN, patient, tysabri, "completed", client_token="tap-2")  # already ended
    assert first.id == second.id == third.id and third.reason == "switched"
    assert len(marks(db)) == 1 and audit_count(db) == before + 1
    courses.resume_course(db, CHARGE, first.id, "restarted")
    courses.resume_course(db, CHARGE, first.id, "restarted twice")
    assert marks(db)[0].resume_reason == "restarted" and audit_count(db) == before + 2


def test_a_form_token_already_spent_on_another_pair_ends_nothing_and_says_so(db, nurse):
    """A form whose earlier save went through but which never moved on (its run was stopped) sends the same
    token with another pair: that pair is not ended, and the earlier pair's mark is not reported as its own."""
    tysabri = therapy_id(db, "natalizumab")
    first = history(db, nurse, "natalizumab", [TODAY - timedelta(days=100)])
    second = history(db, nurse, "natalizumab", [TODAY - timedelta(days=90)])
    courses.end_course(db, CHARGE, first, tysabri, "switched", client_token="form-7")
    before = audit_count(db)
    with pytest.raises(ConflictError, match="already ended another course"):
        courses.end_course(db, CHARGE, second, tysabri, "completed", client_token="form-7")
    assert [m.patient_id for m in marks(db)] == [first] and audit_count(db) == before


def test_site_is_checked_where_the_pair_is_listed_or_booked(db, nurse):
    tysabri = therapy_id(db, "natalizumab")
    home_chair = new_chair(db, ADMIN)
    other = add_site(db, ADMIN, "North", "NTH", "UTC", "C", "kg").id
    other_chair = add_chair(db, ADMIN, "North chair", site_id=other).id
    patient = new_patient(db, nurse)
    give(db, patient, "natalizumab", TODAY - timedelta(days=90), chair_id=home_chair)
    north = Actor(None, "North Charge", "charge_nurse", sites=frozenset({other}), site_id=other)
    before = audit_count(db)
    with pytest.raises(PermissionDenied, match="do not work at"):
        courses.end_course(db, north, patient, tysabri, "transferred")
    assert marks(db) == [] and audit_count(db) == before
    # booked at North: its charge nurse may end it there, and it is filed under North
    schedule_session(db, ADMIN, patient, tysabri, other_chair, at(TODAY + timedelta(days=3)))
    row = courses.end_course(db, north, patient, tysabri, "declined", "Declined at North")
    assert row.site_id == other
    assert list(ended_courses(db, north).patient_id) == [patient]
    assert list(ended_courses(db, CHARGE).patient_id) == [patient]  # still listed at home: its last infusion
    south = Actor(None, "South Charge", "charge_nurse", sites=frozenset({other + 1}), site_id=None)
    with pytest.raises(PermissionDenied):
        courses.resume_course(db, south, row.id, "wrong site")


def test_a_booking_after_the_end_is_allowed_and_an_infusion_given_after_it_lists_the_pair_again(db, nurse):
    """A booking does not undo an end; an infusion given after the mark does (the patient is due again, so
    a restarted course cannot miss its next dose because of an old mark). Ending it again closes the old
    mark, by the person ending it, and keeps both."""
    tysabri = therapy_id(db, "natalizumab")
    chair = new_chair(db, ADMIN)
    patient = history(db, nurse, "natalizumab", [TODAY - timedelta(days=300)])
    row = courses.end_course(db, CHARGE, patient, tysabri, "switched")
    booked = schedule_session(db, nurse, patient, tysabri, chair, at(TODAY + timedelta(days=2)))
    assert booked.id is not None
    assert (patient, tysabri) not in listed(db)
    # an infusion entered late, given before the mark was made: the mark holds
    give(db, patient, "natalizumab", TODAY - timedelta(days=1), chair_id=chair)
    assert (patient, tysabri) not in listed(db)
    assert ended_courses(db, nurse).iloc[0].last_infusion == TODAY - timedelta(days=1)

    # the same mark made ten days ago: that infusion was given after it, so the patient is due again
    with db.writing() as s:
        mark = s.get(CourseEnd, row.id)
        assert mark is not None
        mark.ended_at = at(TODAY - timedelta(days=10))
    assert (patient, tysabri) in listed(db)
    assert ended_courses(db, nurse).empty
    again = due.due_list(db, nurse, TODAY, sections=ALL).set_index("patient_id").loc[patient]
    assert again.booked == TODAY + timedelta(days=2) and again.last_infusion == TODAY - timedelta(days=1)

    before = audit_count(db)
    renewed = courses.end_course(db, CHARGE, patient, tysabri, "declined")
    assert renewed.id != row.id and (patient, tysabri) not in listed(db)
    old, new = marks(db)
    assert old.resumed_by_name == "Test Charge" and "Treated again" in (old.resume_reason or "")
    assert (new.reason, new.resumed_at) == ("declined", None)
    assert [e.action for e in audits_since(db, before)] == ["resume_course", "end_course"]


def test_a_bulk_update_of_marks_keeps_the_summary(db, nurse):
    tysabri = therapy_id(db, "natalizumab")
    patient = history(db, nurse, "natalizumab", [TODAY - timedelta(days=100)])
    courses.end_course(db, CHARGE, patient, tysabri, "completed")
    assert (patient, tysabri) not in listed(db)
    with db.writing() as s:  # e.g. a data fix run through the ORM
        s.execute(update(CourseEnd).values(resumed_at=at(TODAY), resume_reason="data fix"))
    assert (patient, tysabri) in listed(db)
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(CourseEnd)) == 1
