"""AppTest of the Due page (issue 6): the empty state, overdue patients, booking through the form,
a too-early date refused with the date it becomes allowed, the protocol-interval form, and a course
marked ended (overdue list and protocol table) and resumed under "Ended courses".

Works before and after "due" is wired into PAGE_ROLES / dashboard.PAGES: once dashboard.PAGES lists
the page it is opened through the app with `switch_page`; until then the page file runs on its own
and the test adds "due" to the permission table for its duration.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from dateutil.relativedelta import relativedelta
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from db.models import CourseEnd, InfusionSession, PatientProtocol
from infusion.accounts import permissions
from infusion.accounts.actor import Actor
from infusion.clock import utcnow
from infusion.services import courses, setup
from infusion.services.scheduling import schedule_session
from tests.app.helpers import run_app
from tests.helpers import ADMIN, ROOT, form_key, therapy_id
from ui.registry import BY_KEY

TODAY = utcnow().date()  # the seeded clinic runs on UTC; renewed as each test starts (tests/conftest.py)


DUE_ROLES = (permissions.NURSE, permissions.CHARGE, permissions.MANAGER, permissions.ADMIN)


def _wired() -> bool:
    return "due" in BY_KEY


@pytest.fixture
def open_due(make_app, monkeypatch: pytest.MonkeyPatch):
    """Open the Due page as `actor`, through the app's navigation when it is wired."""

    def go(actor: Actor) -> AppTest:
        if _wired():
            at = make_app()
            at.session_state["actor"] = actor
            run_app(at)
            run_app(at.switch_page("pages/due.py"))
        else:
            at = AppTest.from_file(str(ROOT / "pages" / "due.py"), default_timeout=60)
            at.session_state["actor"] = actor
            run_app(at)
        return at

    return go


def _submit(at: AppTest, form: str) -> AppTest:
    at.button(key=form_key(at, form, "submit")).click()
    return run_app(at)


def _book_for(at: AppTest, patient: int, therapy: int, section: str = "overdue") -> str:
    """Pick whom to book in a section's "Book for" picker; the booking form's name."""
    at.selectbox(key=f"book_pick_{section}").set_value(f"{patient}_{therapy}")
    run_app(at)
    return f"sched_{patient}_{therapy}"


def _texts(at: AppTest) -> str:
    parts = [e.value for e in (*at.error, *at.warning, *at.success, *at.info)]
    parts += [m.value for m in at.markdown] + [c.value for c in at.caption] + [h.value for h in at.subheader]
    return "\n".join(str(p) for p in parts)


def _seed(db):
    nurse = setup.add_staff(db, ADMIN, "Nora Nurse", "nurse")
    chair = setup.add_chair(db, ADMIN, "Chair 1")
    return Actor(nurse.id, nurse.display_name, "nurse"), chair.id


def _give(db, patient_id: int, code: str, day: date, chair_id: int) -> None:
    moment = datetime.combine(day, time(10), tzinfo=UTC)
    tid = therapy_id(db, code)
    with db.writing() as s:
        given = s.scalar(
            select(func.count())
            .select_from(InfusionSession)
            .where(InfusionSession.patient_id == patient_id, InfusionSession.therapy_id == tid)
        )
        s.add(
            InfusionSession(
                patient_id=patient_id,
                therapy_id=tid,
                infusion_number=int(given or 0) + 1,  # the stored chain is the regimen's source of truth
                chair_id=chair_id,
                dose=300,
                status="discharged",
                scheduled_at=moment,
                checked_in_at=moment,
                iv_started_at=moment,
                iv_stopped_at=moment + timedelta(hours=1),
                discharged_at=moment + timedelta(hours=2),
                created_at=moment,
            )
        )


def _patient(db, nurse: Actor, mrn: str, family: str) -> int:
    return setup.add_patient(db, nurse, mrn=mrn, given_name="Pat", family_name=family).id


def _sessions(db) -> list[InfusionSession]:
    with db.reading() as s:
        return list(s.scalars(select(InfusionSession).where(InfusionSession.status == "scheduled")))


def test_empty_clinic_shows_a_helpful_empty_state(db, open_due):
    at = open_due(Actor(None, "Nurse", "nurse"))
    assert "Due list" in [h.value for h in at.header]
    texts = _texts(at)
    assert "Nobody is overdue or due this week" in texts
    assert "No chairs yet" in texts


def test_overdue_patient_is_listed_and_booked_through_the_form(db, open_due):
    nurse, chair = _seed(db)
    patient = _patient(db, nurse, "MRN-1", "Lee")
    _give(db, patient, "natalizumab", TODAY - timedelta(days=40), chair)
    at = open_due(nurse)
    assert "Overdue (1)" in _texts(at)
    table = at.dataframe[0].value
    assert list(table["Patient"]) == ["Lee, Pat"] and int(table["Days overdue"].iloc[0]) == 12
    assert table["Expected dose"].iloc[0] == "300 mg"

    picker = at.selectbox(key="book_pick_overdue")
    assert picker.value is None, "nobody is picked for a booking until the nurse picks"
    assert not [e for e in at.expander if e.label.startswith("📅 Schedule")], "no booking form before a pick"
    assert "Pick a patient above to book their next session." in _texts(at)
    form = _book_for(at, patient, therapy_id(db, "natalizumab"))
    assert at.number_input(key=form_key(at, form, "dose")).value == 300  # prefilled with the expected dose
    at.date_input(key=form_key(at, form, "date")).set_value(TODAY + timedelta(days=1))
    at.time_input(key=form_key(at, form, "time")).set_value(time(10, 30))
    _submit(at, form)
    [booked] = _sessions(db)
    assert (booked.patient_id, booked.dose, booked.walk_in) == (patient, 300, False)
    assert booked.scheduled_at == datetime.combine(TODAY + timedelta(days=1), time(10, 30), tzinfo=UTC)
    texts = _texts(at)
    assert "Booked" in texts and "Chair 1" in texts
    assert f"{(TODAY + timedelta(days=1)):%d %b}" in at.dataframe[0].value["Booked"].iloc[0]


def test_too_early_date_is_refused_naming_the_allowed_date(db, open_due):
    nurse, chair = _seed(db)
    patient = _patient(db, nurse, "MRN-2", "Ode")
    last = TODAY - timedelta(days=100)
    for day in (TODAY - timedelta(days=220), TODAY - timedelta(days=206), last):
        _give(db, patient, "ocrelizumab_iv", day, chair)
    at = open_due(nurse)
    at.selectbox(key=form_key(at, "sched_any", "patient")).set_value(patient)
    at.selectbox(key=form_key(at, "sched_any", "therapy")).set_value(therapy_id(db, "ocrelizumab_iv"))
    at.date_input(key=form_key(at, "sched_any", "date")).set_value(TODAY + timedelta(days=1))
    _submit(at, "sched_any")
    allowed = last + relativedelta(months=5)  # Ocrevus label: at least 5 months between doses
    errors = " ".join(e.value for e in at.error)
    assert "Not saved" in errors and f"allowed from {allowed:%d %b %Y}" in errors
    assert _sessions(db) == []

    # with a reason it is booked, and then listed as booked too early
    at.text_input(key=form_key(at, "sched_any", "early_reason")).set_value("Moving abroad; neurologist agreed")
    _submit(at, "sched_any")
    assert len(_sessions(db)) == 1
    assert "Booked too early (1)" in _texts(at)


def test_protocol_interval_form_for_charge_nurse_and_read_only_for_manager(db, open_due):
    nurse, chair = _seed(db)
    patient = _patient(db, nurse, "MRN-3", "Ivy")
    _give(db, patient, "ivig", TODAY - timedelta(days=30), chair)
    manager = open_due(Actor(None, "Manager", "manager"))
    texts = _texts(manager)
    # the manager is told who sets the interval, not asked to set it; the patient is named with the MRN
    assert "No due date until the protocol interval is set: " in texts
    assert "MRN-3 · Immune globulin" in texts or "MRN-3 · IVIG" in texts
    assert "A charge nurse or an administrator sets it in Protocol intervals below." in texts
    assert "Set the protocol interval in Protocol intervals below." not in texts
    assert "Booking is for nurses and charge nurses." in texts

    at = open_due(Actor(None, "Charge", "charge_nurse"))
    assert "Set the protocol interval in Protocol intervals below." in _texts(at)
    # two patients may share a name: the picker shows each one's MRN
    pair = at.selectbox(key=form_key(at, "protocol", "pair"))
    assert [o for o in pair.options if "MRN-3" in o]
    # the picker starts empty: saved without a pick, it says so beside the button and keeps what was typed
    assert pair.value is None
    at.text_input(key=form_key(at, "protocol", "note")).set_value("CIDP 1 g/kg every 3 weeks")
    _submit(at, "protocol")  # nor an interval: one refusal names both
    refusal = " ".join(e.value for e in at.error)
    assert "Pick the patient and therapy the interval is for." in refusal and "Enter the interval" in refusal
    at.number_input(key=form_key(at, "protocol", "days")).set_value(21)
    _submit(at, "protocol")
    assert "Pick the patient and therapy the interval is for." in " ".join(e.value for e in at.error)
    assert "Enter the interval" not in " ".join(e.value for e in at.error)
    assert at.text_input(key=form_key(at, "protocol", "note")).value == "CIDP 1 g/kg every 3 weeks"
    assert at.number_input(key=form_key(at, "protocol", "days")).value == 21
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(PatientProtocol)) == 0
    at.selectbox(key=form_key(at, "protocol", "pair")).select_index(0)
    _submit(at, "protocol")
    with db.reading() as s:
        assert s.scalar(select(func.max(PatientProtocol.interval_days))) == 21
    assert "Overdue (1)" in _texts(at)  # 30 days since the last IVIG, every 21 days


def test_a_booking_refused_as_too_early_keeps_every_field(db, open_due):
    nurse, chair = _seed(db)
    second_chair = setup.add_chair(db, ADMIN, "Chair 2").id
    patient = _patient(db, nurse, "MRN-4", "Kay")
    last = TODAY - timedelta(days=100)
    for day in (TODAY - timedelta(days=220), TODAY - timedelta(days=206), last):
        _give(db, patient, "ocrelizumab_iv", day, chair)
    ocrevus = therapy_id(db, "ocrelizumab_iv")
    at = open_due(nurse)
    typed = {
        ("selectbox", "patient"): patient,
        ("selectbox", "therapy"): ocrevus,
        ("selectbox", "chair"): second_chair,
        ("date_input", "date"): TODAY + timedelta(days=2),
        ("time_input", "time"): time(13, 45),
        ("number_input", "dose"): 450.0,
        ("text_input", "dose_reason"): "Weight change; neurologist's order",
    }
    # the patient and therapy pickers start empty: a booking is never made for whoever is listed first
    assert at.selectbox(key=form_key(at, "sched_any", "patient")).value is None
    assert at.selectbox(key=form_key(at, "sched_any", "therapy")).value is None
    _submit(at, "sched_any")
    assert "Choose the patient, the therapy and the chair." in " ".join(e.value for e in at.error)
    assert _sessions(db) == []

    for (kind, field), value in typed.items():
        getattr(at, kind)(key=form_key(at, "sched_any", field)).set_value(value)
    _submit(at, "sched_any")

    errors = " ".join(e.value for e in at.error)
    assert "Not saved" in errors and f"allowed from {last + relativedelta(months=5):%d %b %Y}" in errors, errors
    assert _sessions(db) == []
    for (kind, field), value in typed.items():
        assert getattr(at, kind)(key=form_key(at, "sched_any", field)).value == value, field

    # the reason added, the same form books once, with what was typed, and starts blank
    at.text_input(key=form_key(at, "sched_any", "early_reason")).set_value("Moving abroad; neurologist agreed")
    _submit(at, "sched_any")
    [booked] = _sessions(db)
    assert (booked.patient_id, booked.therapy_id, booked.chair_id, booked.dose) == (
        patient,
        ocrevus,
        second_chair,
        450,
    )
    assert booked.scheduled_at == datetime.combine(TODAY + timedelta(days=2), time(13, 45), tzinfo=UTC)
    assert "Booked" in " ".join(s.value for s in at.success)
    assert at.text_input(key=form_key(at, "sched_any", "early_reason")).value == ""
    assert at.number_input(key=form_key(at, "sched_any", "dose")).value is None


def test_a_charge_nurse_ends_an_overdue_course_and_resumes_it(db, open_due):
    nurse, chair = _seed(db)
    patient = _patient(db, nurse, "MRN-5", "Moss")
    _give(db, patient, "natalizumab", TODAY - timedelta(days=400), chair)
    at = open_due(Actor(None, "Charge", "charge_nurse"))
    assert "Overdue (1)" in _texts(at) and "Ended courses (0)" in [e.label for e in at.expander]

    # no patient picked (the picker starts empty) and no reason: one refusal names both, beside the button;
    # the note kept, nothing stored
    at.text_input(key=form_key(at, "end_overdue", "note")).set_value("Now on Ocrevus at North")
    _submit(at, "end_overdue")
    refusal = " ".join(e.value for e in at.error)
    assert "Pick the patient and therapy whose course ended." in refusal and "Pick why the course ended" in refusal
    assert at.text_input(key=form_key(at, "end_overdue", "note")).value == "Now on Ocrevus at North"

    # no reason picked: refused beside the button, the pick and the note kept, nothing stored
    at.selectbox(key=form_key(at, "end_overdue", "pair")).select_index(0)
    _submit(at, "end_overdue")
    assert "Pick why the course ended" in " ".join(e.value for e in at.error)
    assert at.selectbox(key=form_key(at, "end_overdue", "pair")).value is not None
    assert at.text_input(key=form_key(at, "end_overdue", "note")).value == "Now on Ocrevus at North"
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(CourseEnd)) == 0

    at.selectbox(key=form_key(at, "end_overdue", "reason")).set_value("switched")
    _submit(at, "end_overdue")
    texts = _texts(at)
    assert "Course ended: Moss, Pat · MRN-5 · Tysabri (Switched to another therapy, by Charge)" in texts
    assert "Overdue (0)" in texts and "Ended courses (1)" in [e.label for e in at.expander]
    ended = at.dataframe[-1].value
    assert (ended["Patient"].iloc[0], ended["Reason"].iloc[0], ended["Note"].iloc[0], ended["By"].iloc[0]) == (
        "Moss, Pat",
        "Switched to another therapy",
        "Now on Ocrevus at North",
        "Charge",
    )

    # resuming needs the course picked and a reason; then the patient is overdue again and the end stays on record
    _submit(at, "resume_course")
    refusal = " ".join(e.value for e in at.error)
    assert "Pick the course to resume." in refusal and "Say why the course is resumed." in refusal
    at.selectbox(key=form_key(at, "resume_course", "pick")).select_index(0)
    _submit(at, "resume_course")
    assert "Say why the course is resumed." in " ".join(e.value for e in at.error)
    at.text_input(key=form_key(at, "resume_course", "reason")).set_value("Ocrevus stopped; back on Tysabri")
    _submit(at, "resume_course")
    texts = _texts(at)
    assert "Course resumed: Moss, Pat · MRN-5 · Tysabri is on the due list again." in texts
    assert "Overdue (1)" in texts and "Ended courses (0)" in [e.label for e in at.expander]
    with db.reading() as s:
        [mark] = s.scalars(select(CourseEnd))
    assert (mark.reason, mark.note, mark.resume_reason) == (
        "switched",
        "Now on Ocrevus at North",
        "Ocrevus stopped; back on Tysabri",
    )


def test_an_ended_protocol_course_leaves_the_warning_and_a_nurse_only_sees_the_list(db, open_due):
    nurse, chair = _seed(db)
    patient = _patient(db, nurse, "MRN-6", "Ash")
    _give(db, patient, "ivig", TODAY - timedelta(days=700), chair)
    at = open_due(Actor(None, "Charge", "charge_nurse"))
    assert "No due date until the protocol interval is set" in _texts(at)
    at.selectbox(key=form_key(at, "end_protocol", "pair")).select_index(0)
    at.selectbox(key=form_key(at, "end_protocol", "reason")).set_value("other")
    _submit(at, "end_protocol")
    assert "Say why the course ended" in " ".join(e.value for e in at.error)  # "other" needs a note
    at.text_input(key=form_key(at, "end_protocol", "note")).set_value("Course of 6 cycles finished in 2024")
    _submit(at, "end_protocol")
    texts = _texts(at)
    assert "No due date until the protocol interval is set" not in texts
    assert "No patient of this site has IVIG or cyclophosphamide sessions yet." in texts

    seen = open_due(nurse)  # a nurse sees who was ended and why, and is told who resumes
    assert "Ended courses (1)" in [e.label for e in seen.expander]
    assert "A charge nurse or an administrator resumes a course." in _texts(seen)
    keys = {w.key for w in seen.selectbox}
    assert form_key(seen, "resume_course", "pick") not in keys and form_key(seen, "end_overdue", "pair") not in keys


def test_a_picked_course_ended_elsewhere_before_the_tap_is_not_saved_for_another_patient(db, open_due):
    """The pair picked leaves the list (another charge nurse ended it) before this nurse taps: the picker,
    which starts empty, goes back to empty and the form asks for a pick. It never ends the course of the
    patient listed first instead."""
    nurse, chair = _seed(db)
    first = _patient(db, nurse, "MRN-7", "Abe")
    second = _patient(db, nurse, "MRN-8", "Zed")
    for patient in (first, second):
        _give(db, patient, "natalizumab", TODAY - timedelta(days=400), chair)
    charge = Actor(None, "Charge", "charge_nurse")
    at = open_due(charge)
    pair = at.selectbox(key=form_key(at, "end_overdue", "pair"))
    pair.select_index(next(i for i, label in enumerate(pair.options) if "MRN-8" in label))
    at.selectbox(key=form_key(at, "end_overdue", "reason")).set_value("switched")

    courses.end_course(db, ADMIN, second, therapy_id(db, "natalizumab"), "transferred")  # elsewhere, meanwhile
    _submit(at, "end_overdue")
    with db.reading() as s:
        ended = s.scalars(select(CourseEnd.patient_id)).all()
    # only the one ended elsewhere: the first patient's course is untouched (a picker that started on its
    # first option fell back to it here, and ended Abe's course: [first, second])
    assert ended == [second]
    assert "Pick the patient and therapy whose course ended." in " ".join(e.value for e in at.error)


def test_a_booking_into_a_chair_already_booked_then_asks_beside_the_button_and_books_once_ticked(db, open_due):
    nurse, chair = _seed(db)
    patient = _patient(db, nurse, "MRN-21", "Lee")
    _give(db, patient, "natalizumab", TODAY - timedelta(days=40), chair)
    day = TODAY + timedelta(days=1)
    other = _patient(db, nurse, "MRN-22", "Ode")
    schedule_session(
        db, nurse, other, therapy_id(db, "natalizumab"), chair, datetime.combine(day, time(10), tzinfo=UTC)
    )
    at = open_due(nurse)
    form = _book_for(at, patient, therapy_id(db, "natalizumab"))
    at.date_input(key=form_key(at, form, "date")).set_value(day)
    at.time_input(key=form_key(at, form, "time")).set_value(time(10, 30))
    _submit(at, form)
    warning = " ".join(w.value for w in at.warning)
    assert "Not saved yet" in warning and "The chair is booked for Ode, P. (Tysabri) 10:00–" in warning
    assert [s.patient_id for s in _sessions(db)] == [other]
    assert at.time_input(key=form_key(at, form, "time")).value == time(10, 30)  # what was typed stays
    [tick] = [c for c in at.checkbox if c.key and c.key.startswith(form_key(at, form, "confirm_save"))]
    tick.check()
    _submit(at, form)
    assert sorted(s.patient_id for s in _sessions(db)) == sorted([other, patient])
    assert "Booked" in _texts(at)
