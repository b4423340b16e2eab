"""Due dates, courses, expected doses, protocol intervals and booking rules (issue 6), on SQLite and
PostgreSQL. Histories are hand-made: long ones inserted as discharged rows, one walked through the
lifecycle services, bookings made through `schedule_session`."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import select

from db.models import AuditEvent, InfusionSession, PatientProtocol
from infusion.accounts.actor import Actor
from infusion.clinical.intervals import add_months
from infusion.clinical.regimen import Dose, Rhythm, plan_next, too_early
from infusion.clock import utcnow
from infusion.errors import PermissionDenied, ValidationError
from infusion.reads import due
from infusion.services import protocols, sessions
from infusion.services.scheduling import schedule_session
from tests.helpers import ADMIN, audit_count, audits_since, new_chair, new_patient, snapshot, therapy_id, walk

CHARGE = Actor(None, "Test Charge", "charge_nurse")
MANAGER = Actor(None, "Test Manager", "manager")
QUALITY = Actor(None, "Test Quality", "quality")
TODAY = utcnow().date()  # the seeded clinic runs on UTC; renewed as each test starts (tests/conftest.py)


def at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def give(
    db,
    patient_id: int,
    code: str,
    day: date,
    *,
    chair_id: int | None = None,
    course: tuple[int, int] | None = None,
    dose: float | None = None,
    number: int | None = None,
) -> int:
    """A discharged session with its IV started on `day` (a history row, inserted directly), numbered as
    the services number it (`due.infusion_number_after` the infusion before it) unless `number` is given."""
    tid = therapy_id(db, code)
    chair_id = chair_id or new_chair(db, ADMIN)
    with db.writing() as s:
        if number is None:
            before = s.scalar(
                select(InfusionSession.infusion_number)
                .where(
                    InfusionSession.patient_id == patient_id,
                    InfusionSession.therapy_id == tid,
                    InfusionSession.iv_started_at < at(day, 10),
                )
                .order_by(InfusionSession.iv_started_at.desc())
                .limit(1)
            )
            number = (before or 0) + 1
        row = InfusionSession(
            infusion_number=number,
            patient_id=patient_id,
            therapy_id=therapy_id(db, code),
            chair_id=chair_id,
            dose=dose or 1.0,
            status="discharged",
            walk_in=False,
            scheduled_at=at(day, 9),
            checked_in_at=at(day, 9),
            ready_at=at(day, 9),
            iv_started_at=at(day, 10),
            iv_stopped_at=at(day, 11),
            discharged_at=at(day, 12),
            created_at=at(day, 8),
            course_number=course[0] if course else None,
            course_day=course[1] if course else None,
        )
        s.add(row)
        s.flush()
        return row.id


def history(db, nurse, code: str, days: list[date]) -> int:
    patient = new_patient(db, nurse)
    for day in days:
        give(db, patient, code, day)
    return patient


def nxt(db, patient: int, code: str, when=None) -> due.NextInfusion:
    return due.next_for(db, patient, therapy_id(db, code), when)


# ------------------------------------------------------------------ rhythms
def test_tysabri_every_four_weeks_and_zunovo_rituximab_every_six_months(db, nurse):
    tys = history(db, nurse, "natalizumab", [date(2025, 1, 6), date(2025, 2, 3)])
    assert nxt(db, tys, "natalizumab").due == date(2025, 3, 3)
    assert nxt(db, tys, "natalizumab").label == "Tysabri infusion 3"
    zun = history(db, nurse, "ocrelizumab_sc", [date(2025, 1, 6)])
    # Zunovo label: every 6 months, counted in calendar months (docs/clinical-basis.md §2)
    assert nxt(db, zun, "ocrelizumab_sc").due == date(2025, 7, 6)
    rtx = history(db, nurse, "rituximab", [date(2025, 1, 6)])
    assert nxt(db, rtx, "rituximab").due == date(2025, 1, 6) + timedelta(days=182)


def test_ocrevus_day_1_day_15_then_every_six_months_from_day_1(db, nurse):
    patient = new_patient(db, nurse)
    first = nxt(db, patient, "ocrelizumab_iv")
    assert (first.label, first.expected_dose, first.due) == ("Ocrevus initial dose 1 of 2", 300, None)
    give(db, patient, "ocrelizumab_iv", date(2024, 7, 12))
    second = nxt(db, patient, "ocrelizumab_iv")
    assert (second.label, second.expected_dose, second.due) == ("Ocrevus initial dose 2 of 2", 300, date(2024, 7, 26))
    give(db, patient, "ocrelizumab_iv", date(2024, 7, 26))
    third = nxt(db, patient, "ocrelizumab_iv")
    assert (third.label, third.expected_dose) == ("Ocrevus infusion 3", 600)
    # Ocrevus USPI §2.3 (docs/clinical-basis.md §2): 6 calendar months counted from infusion 1, and
    # "a minimum of 5 months" (calendar months, not 140 days) after the last infusion
    assert third.due == date(2025, 1, 12)
    assert third.allowed_from == date(2024, 12, 26)
    give(db, patient, "ocrelizumab_iv", date(2025, 1, 10))
    assert nxt(db, patient, "ocrelizumab_iv").due == date(2025, 7, 10)


def test_ocrevus_exactly_five_months_is_allowed_one_day_less_is_too_early(db, nurse):
    patient = history(db, nurse, "ocrelizumab_iv", [date(2024, 7, 12), date(2024, 7, 26), date(2025, 1, 10)])
    tid = therapy_id(db, "ocrelizumab_iv")
    # Ocrevus USPI §2.3: "a minimum of 5 months should separate each dose", in calendar months
    # (docs/clinical-basis.md §2): 10 Jan → 10 Jun (151 days) is allowed; day 140 (30 May) and 9 Jun are not
    assert due.check_too_early(db, patient, tid, date(2025, 6, 10)) is None
    for day in (date(2025, 5, 30), date(2025, 6, 9)):
        early = due.check_too_early(db, patient, tid, at(day))
        assert early is not None and early.enforced
        assert early.allowed_from == date(2025, 6, 10)
    assert "allowed from 10 Jun 2025" in early.message and "150 days" in early.message


def test_briumvi_150_then_450_every_24_weeks_and_five_calendar_months_edge(db, nurse):
    patient = new_patient(db, nurse)
    assert nxt(db, patient, "ublituximab").label == "Briumvi initial dose 1 of 2"
    assert nxt(db, patient, "ublituximab").expected_dose == 150
    give(db, patient, "ublituximab", date(2024, 8, 16))
    assert (nxt(db, patient, "ublituximab").label, nxt(db, patient, "ublituximab").expected_dose) == (
        "Briumvi initial dose 2 of 2",
        450,
    )
    give(db, patient, "ublituximab", date(2024, 8, 30))
    third = nxt(db, patient, "ublituximab")
    assert third.due == date(2024, 8, 16) + timedelta(weeks=24) and third.expected_dose == 450
    give(db, patient, "ublituximab", date(2025, 2, 1))
    tid = therapy_id(db, "ublituximab")
    # catalog: ≥ 5 months = 150 days; 1 Feb → 1 Jul 2025 is exactly five calendar months and 150 days
    assert due.check_too_early(db, patient, tid, date(2025, 7, 1)) is None
    early = due.check_too_early(db, patient, tid, date(2025, 6, 30))
    assert early is not None and early.enforced and early.allowed_from == date(2025, 7, 1)


def test_lemtrada_course_interrupted_after_day_3_continues_with_day_4_the_next_day(db, nurse):
    d0 = TODAY - timedelta(days=20)
    patient = history(db, nurse, "alemtuzumab", [d0, d0 + timedelta(days=1), d0 + timedelta(days=2)])
    n = nxt(db, patient, "alemtuzumab")
    assert n.label == "Lemtrada course 1, day 4 of 5"
    assert (n.course_number, n.course_day, n.due) == (1, 4, d0 + timedelta(days=3))
    # a second infusion on day 3 itself warns (course days are consecutive)
    same_day = due.check_too_early(db, patient, therapy_id(db, "alemtuzumab"), at(d0 + timedelta(days=2), 14))
    assert same_day is not None and not same_day.enforced
    frame = due.due_list(db, nurse, TODAY)
    row = frame[frame.patient_id == patient].iloc[0]
    assert row.section == "overdue" and row.days_overdue == 17
    assert row.note == "Course 1 interrupted after day 3."
    # resumed 3 weeks later: still course 1 (days 4 and 5), then course 2 twelve months after the last day
    give(db, patient, "alemtuzumab", TODAY - timedelta(days=1))
    give(db, patient, "alemtuzumab", TODAY)
    n = nxt(db, patient, "alemtuzumab")
    assert n.label == "Lemtrada course 2, day 1 of 3" and n.due == add_months(TODAY, 12)
    # Lemtrada USPI §2.2 (docs/clinical-basis.md §2): course 2 "12 months after" course 1: a booking a week
    # after course 1 is refused without an override reason, and allowed from 12 calendar months on
    early = due.check_too_early(db, patient, therapy_id(db, "alemtuzumab"), TODAY + timedelta(days=7))
    assert early is not None and early.enforced and "Lemtrada course 2, day 1 of 3" in early.message
    assert early.allowed_from == add_months(TODAY, 12)


def test_lemtrada_two_courses_then_no_due_date(db, nurse):
    c1 = [date(2023, 3, 6) + timedelta(days=i) for i in range(5)]
    c2 = [date(2024, 3, 11) + timedelta(days=i) for i in range(3)]
    patient = history(db, nurse, "alemtuzumab", c1 + c2[:2])
    assert nxt(db, patient, "alemtuzumab").label == "Lemtrada course 2, day 3 of 3"
    give(db, patient, "alemtuzumab", c2[2])
    n = nxt(db, patient, "alemtuzumab")
    assert n.due is None and "only if needed" in n.note and n.label == "Lemtrada course 3, day 1 of 3"


def test_stored_course_position_wins_over_inference(db, nurse):
    # the clinic closed course 1 after day 3 and started course 2: the stored position says so
    patient = new_patient(db, nurse)
    for i in range(3):
        give(db, patient, "alemtuzumab", date(2023, 3, 6) + timedelta(days=i))
    give(db, patient, "alemtuzumab", date(2024, 3, 11), course=(2, 1))
    assert nxt(db, patient, "alemtuzumab").label == "Lemtrada course 2, day 2 of 3"


def test_on_demand_and_cycle_therapies_have_no_due_date(db, nurse):
    for code, words in (
        ("methylprednisolone", "on demand"),
        ("plasma_exchange", "UNCONFIRMED"),
        ("edaravone", "Cycle-based"),
    ):
        patient = history(db, nurse, code, [TODAY - timedelta(days=400)])
        n = nxt(db, patient, code)
        assert n.due is None and words in n.note
        assert due.check_too_early(db, patient, therapy_id(db, code), TODAY) is None
    assert due.due_list(db, nurse, TODAY).empty


# ------------------------------------------------------------------ protocol intervals
def test_ivig_and_cyclophosphamide_follow_the_protocol_interval(db, nurse):
    last = TODAY - timedelta(days=30)
    ivig = history(db, nurse, "ivig", [last])
    cyc = history(db, nurse, "cyclophosphamide", [TODAY - timedelta(days=25)])
    frame = due.due_list(db, nurse, TODAY)
    assert set(frame.section) == {"set protocol"}
    assert set(frame.note) == {"No due date: set the protocol interval."}

    before = audit_count(db)
    with pytest.raises(PermissionDenied):
        protocols.set_protocol_interval(db, nurse, ivig, therapy_id(db, "ivig"), 21, "CIDP maintenance")
    with pytest.raises(ValidationError):
        protocols.set_protocol_interval(db, CHARGE, ivig, therapy_id(db, "ivig"), 0, "")
    with pytest.raises(ValidationError, match="follow the catalog"):
        protocols.set_protocol_interval(db, CHARGE, ivig, therapy_id(db, "natalizumab"), 21, "")
    assert audit_count(db) == before

    protocols.set_protocol_interval(db, CHARGE, ivig, therapy_id(db, "ivig"), 21, "CIDP maintenance 1 g/kg")
    protocols.set_protocol_interval(db, ADMIN, cyc, therapy_id(db, "cyclophosphamide"), 28, "1 g/m² every 4 weeks × 6")
    assert nxt(db, ivig, "ivig").due == last + timedelta(days=21)
    frame = due.due_list(db, nurse, TODAY)
    row = frame[frame.patient_id == ivig].iloc[0]
    assert row.section == "overdue" and row.days_overdue == 9
    assert frame[frame.patient_id == cyc].iloc[0].section == "due this week"

    current = due.protocol_interval(db, ivig, therapy_id(db, "ivig"))
    mark = audit_count(db)
    protocols.set_protocol_interval(
        db, CHARGE, ivig, therapy_id(db, "ivig"), 28, "Spacing out", expected_version=current.version
    )
    [event] = audits_since(db, mark)
    assert (event.action, event.before, event.after["interval_days"], event.reason) == (
        "set_protocol_interval",
        {"interval_days": 21, "note": "CIDP maintenance 1 g/kg", "set_at": event.before["set_at"]},
        28,
        "Spacing out",
    )
    with db.reading() as s:
        assert s.scalars(select(PatientProtocol.interval_days).where(PatientProtocol.patient_id == ivig)).one() == 28
    listed = due.protocol_patients(db, CHARGE)
    assert set(listed.interval_days) == {28}


# ------------------------------------------------------------------ the due list
def test_due_list_sections_roles_and_switched_therapy(db, nurse):
    overdue = history(db, nurse, "natalizumab", [TODAY - timedelta(days=68), TODAY - timedelta(days=40)])
    this_week = history(db, nurse, "natalizumab", [TODAY - timedelta(days=25)])
    history(db, nurse, "natalizumab", [TODAY - timedelta(days=5)])  # later: not listed
    switched = history(db, nurse, "natalizumab", [TODAY - timedelta(days=200)])
    give(db, switched, "ocrelizumab_iv", TODAY - timedelta(days=120))
    give(db, switched, "ocrelizumab_iv", TODAY - timedelta(days=106))
    frame = due.due_list(db, MANAGER, TODAY)
    assert list(frame.columns) == due.DUE_COLUMNS
    assert list(frame.patient_id) == [overdue, this_week]  # the switched patient's Tysabri is not due
    top = frame.iloc[0]
    assert (top.section, top.days_overdue, top.next_due, top.last_infusion) == (
        "overdue",
        12,
        TODAY - timedelta(days=12),
        TODAY - timedelta(days=40),
    )
    assert (top.course_label, top.expected_dose) == ("Tysabri infusion 3", 300)
    assert frame.iloc[1].section == "due this week" and frame.iloc[1].next_due == TODAY + timedelta(days=3)
    everything = due.due_list(db, nurse, TODAY, sections=("overdue", "due this week", "later", "no due date"))
    assert len(everything) == 4  # + the later Tysabri and the switched patient's Ocrevus
    with pytest.raises(PermissionDenied):
        due.due_list(db, QUALITY, TODAY)


def test_history_walked_through_the_lifecycle_counts(db, nurse):
    patient = new_patient(db, nurse)
    sid = sessions.create_session(
        db,
        nurse,
        patient_id=patient,
        therapy_id=therapy_id(db, "ocrelizumab_iv"),
        chair_id=new_chair(db, ADMIN),
        dose=300,
        scheduled_at=utcnow() - timedelta(days=3, hours=1),
    ).id
    walk(db, nurse, sid, "discharged", t0=utcnow() - timedelta(days=3), infusion_minutes=160)
    n = nxt(db, patient, "ocrelizumab_iv")
    assert n.label == "Ocrevus initial dose 2 of 2" and n.due == TODAY - timedelta(days=3) + timedelta(days=14)
    assert due.course_position(db, patient, therapy_id(db, "ocrelizumab_iv")) == "Ocrevus initial dose 2 of 2"
    assert due.expected_dose(db, patient, therapy_id(db, "ocrelizumab_iv")) == 300
    # a deferred session never reached IV start: it is not an infusion
    deferred = sessions.create_session(
        db, nurse, patient_id=patient, therapy_id=therapy_id(db, "ocrelizumab_iv"), chair_id=new_chair(db, ADMIN)
    ).id
    sessions.defer(db, nurse, deferred, "Fever", expected_version=None)
    assert nxt(db, patient, "ocrelizumab_iv").infusion_number == 2


# ------------------------------------------------------------------ scheduling
def test_schedule_prefills_the_expected_dose_and_books_a_whole_lemtrada_course(db, nurse):
    chair = new_chair(db, ADMIN)
    ocr = new_patient(db, nurse)
    first = schedule_session(db, nurse, ocr, therapy_id(db, "ocrelizumab_iv"), chair, at(TODAY + timedelta(days=1)))
    second = schedule_session(db, nurse, ocr, therapy_id(db, "ocrelizumab_iv"), chair, at(TODAY + timedelta(days=15)))
    assert (first.dose, second.dose, first.walk_in, first.status) == (300, 300, False, "scheduled")
    assert first.scheduled_at == at(TODAY + timedelta(days=1))

    lem, lem_chair = new_patient(db, nurse), new_chair(db, ADMIN)  # Ocrevus has the first chair at 10:00
    rows = [
        schedule_session(db, nurse, lem, therapy_id(db, "alemtuzumab"), lem_chair, at(TODAY + timedelta(days=i), 8))
        for i in range(1, 6)
    ]
    assert [(r.course_number, r.course_day) for r in rows] == [(1, d) for d in range(1, 6)]
    with db.reading() as s:
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.session_id == rows[2].id).order_by(AuditEvent.id)))
    assert [e.action for e in events] == ["create", "schedule"]
    assert events[1].after["course_label"] == "Lemtrada course 1, day 3 of 5"


def test_schedule_refusals_store_nothing(db, nurse):
    chair = new_chair(db, ADMIN)
    ocr = history(
        db,
        nurse,
        "ocrelizumab_iv",
        [TODAY - timedelta(days=220), TODAY - timedelta(days=206), TODAY - timedelta(days=100)],
    )
    tid = therapy_id(db, "ocrelizumab_iv")
    before = snapshot(db)
    # too early (100 days after the last 600 mg): refused, naming the date it becomes allowed
    allowed = add_months(TODAY - timedelta(days=100), 5)  # Ocrevus: 5 calendar months
    with pytest.raises(ValidationError) as refused:
        schedule_session(db, nurse, ocr, tid, chair, at(TODAY + timedelta(days=1)))
    assert f"allowed from {allowed:%d %b %Y}" in str(refused.value)
    assert "override_too_early_reason" in refused.value.problems
    # a dose other than the expected 600 mg without a reason
    with pytest.raises(ValidationError, match="expects 600 mg for Ocrevus infusion 4; give a reason for 300 mg"):
        schedule_session(db, nurse, ocr, tid, chair, at(allowed), dose=300)
    # in the past, the wrong role, an unknown chair
    with pytest.raises(ValidationError, match="in the past"):
        schedule_session(db, nurse, ocr, tid, chair, at(TODAY - timedelta(days=1)))
    with pytest.raises(PermissionDenied):
        schedule_session(db, MANAGER, ocr, tid, chair, at(allowed))
    with pytest.raises(ValidationError, match="Pick a chair"):
        schedule_session(db, nurse, ocr, tid, 999_999, at(allowed))
    with pytest.raises(ValidationError, match="Enter the dose"):  # cyclophosphamide has no catalog dose
        schedule_session(db, nurse, ocr, therapy_id(db, "cyclophosphamide"), chair, at(allowed))
    assert snapshot(db) == before

    # with reasons: booked, and the reasons are kept
    row = schedule_session(
        db,
        nurse,
        ocr,
        tid,
        chair,
        at(TODAY + timedelta(days=1)),
        dose=300,
        dose_reason="Neurologist: reduced dose after infection",
        override_too_early_reason="Travelling abroad for 3 months; neurologist agreed",
    )
    assert (row.dose, row.dose_reason) == (300, "Neurologist: reduced dose after infection")
    with db.reading() as s:
        event = s.scalars(
            select(AuditEvent).where(AuditEvent.session_id == row.id, AuditEvent.action == "schedule")
        ).one()
    assert f"booked before {allowed:%Y-%m-%d}: Travelling abroad" in event.reason


def test_soft_too_early_warns_but_books_and_lists_the_booking(db, nurse):
    chair = new_chair(db, ADMIN)
    tys = history(db, nurse, "natalizumab", [TODAY - timedelta(days=5)])
    tid = therapy_id(db, "natalizumab")
    early = due.check_too_early(db, tys, tid, at(TODAY + timedelta(days=10)))
    # docs/clinical-basis.md gives Tysabri no minimum: warn (product choice) before due − 7 days, never refuse
    assert (
        early is not None
        and not early.enforced
        and early.allowed_from == TODAY - timedelta(days=5) + timedelta(days=21)
    )
    assert due.check_too_early(db, tys, tid, at(TODAY - timedelta(days=5) + timedelta(days=21))) is None
    warned = schedule_session(db, nurse, tys, tid, chair, at(TODAY + timedelta(days=10)))
    ocr = history(
        db,
        nurse,
        "ocrelizumab_iv",
        [TODAY - timedelta(days=220), TODAY - timedelta(days=206), TODAY - timedelta(days=60)],
    )
    # a booking made around the rules (create_session directly) still shows up as too early
    forced = sessions.create_session(
        db,
        nurse,
        patient_id=ocr,
        therapy_id=therapy_id(db, "ocrelizumab_iv"),
        chair_id=chair,
        scheduled_at=at(TODAY + timedelta(days=2)),
        walk_in=False,
    ).id
    listed = due.too_early_bookings(db, nurse, TODAY)
    assert list(listed.session_id) == [forced, warned.id]
    assert list(listed.enforced) == [True, False]
    assert listed.iloc[0].allowed_from == add_months(TODAY - timedelta(days=60), 5)
    # a later booking counts the earlier one: a second Tysabri 3 days after the booked one warns
    again = due.check_too_early(db, tys, tid, at(TODAY + timedelta(days=13)))
    assert again is not None and "booked infusion" in again.message


# ------------------------------------------------------------------ pure rules (no database)
def test_plan_next_without_history_and_weekly_protocol_tolerance():
    tys = Rhythm("natalizumab", "Tysabri", 28, None, 300)
    assert plan_next(tys, []).due is None
    cyc = Rhythm("cyclophosphamide", "Cyclophosphamide IV", None, None, None)
    weekly = plan_next(cyc, [Dose(date(2025, 3, 3))], protocol_days=7)
    assert weekly.due == date(2025, 3, 10) and weekly.warn_before == date(2025, 3, 7)  # half the interval
    assert too_early(weekly, date(2025, 3, 6)) is not None and too_early(weekly, date(2025, 3, 7)) is None
