"""Ended courses on the Due page, in a real browser at the tablet's 1024×768, as a charge nurse meets them.

What AppTest cannot see, each checked against the database:

1. a double tap on "Mark course ended" stores one mark and one audit event, only the pair picked leaves
   the overdue list (the patient listed beside it stays, unmarked), and the message names that pair;
2. a refused end (no reason; "other" without a note) shows why inside the form, keeps the pair, the
   reason and the note as picked and typed, and stores nothing; the kept values are what is then saved;
3. an ended course is still ended after a reload (a new browser session: the mark is in the database),
   and a double tap on "Resume course" resumes it once and brings the pair back on the overdue list,
   also after another reload;
4. the same double taps when the save is slow (a loaded clinic: the nurse sees nothing happen and taps
   again while the first tap is still saving). Streamlit runs the second tap beside the first; the saved
   pair may have left the picker by then, whose value would fall back to another patient. The form
   keeps the options the first tap chose from while its save is under way (`ui.forms.EntryForm.choices`),
   so the second tap replays the same save, stored once.

The history is inserted directly (discharged Tysabri sessions 60 days ago: 32 days overdue), as the
Due page's AppTests do; every test adds its own patients to the module's clinic.
"""

from __future__ import annotations

import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from db.models import AuditEvent, CourseEnd
from infusion.accounts import auth
from infusion.accounts.actor import Actor
from infusion.services import courses
from infusion.services.setup import add_patient
from tests.browser.conftest import CHROMIUM, PASSWORD, ClinicApp, settle
from tests.db.test_due import TODAY, give
from tests.helpers import therapy_id

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed"),
]
expect = pytest.importorskip("playwright.sync_api").expect

SETUP = Actor(None, "Setup", "admin")
CHARGE_USER, CHARGE_NAME = "carla", "Carla Charge"
COURSE_ACTIONS = ("end_course", "resume_course")

# ---------------------------------------------------------------- data, built before the browser opens it


@pytest.fixture(scope="module")
def charge(clinic_app: ClinicApp) -> str:
    """A charge nurse of the module's clinic (the role that ends and resumes courses); her user name."""
    auth.add_user(
        clinic_app.db, SETUP, username=CHARGE_USER, display_name=CHARGE_NAME, role="charge_nurse", password=PASSWORD
    )
    return CHARGE_USER


def _pair(app: ClinicApp, what: str) -> tuple[int, str, str]:
    """A new patient named after `what` whose last Tysabri was 60 days ago (32 days overdue):
    (id, family name, the pair as the pickers show it)."""
    family, mrn = f"{what}{uuid.uuid4().hex[:5]}", f"CE{uuid.uuid4().hex[:8]}"
    patient = add_patient(app.db, SETUP, mrn=mrn, given_name="Pat", family_name=family).id
    give(app.db, patient, "natalizumab", TODAY - timedelta(days=60))
    return patient, family, f"{family}, Pat · {mrn} · Tysabri"


def _end(app: ClinicApp, patient_id: int) -> None:
    """End a pair's course through the service (data for a test about something else)."""
    courses.end_course(app.db, SETUP, patient_id, therapy_id(app.db, "natalizumab"), "declined")


def _marks(app: ClinicApp, patient_id: int | None = None) -> list[CourseEnd]:
    """The course-end marks of a patient (None: of everyone), oldest first."""
    with app.db.reading() as s:
        query = select(CourseEnd).order_by(CourseEnd.id)
        if patient_id is not None:
            query = query.where(CourseEnd.patient_id == patient_id)
        return list(s.scalars(query))


def _events(app: ClinicApp, patient_id: int | None, *actions: str) -> int:
    """Audit events of these actions (default: ending and resuming a course) about a patient (None: anyone)."""
    with app.db.reading() as s:
        query = select(func.count()).select_from(AuditEvent).where(AuditEvent.action.in_(actions or COURSE_ACTIONS))
        if patient_id is not None:
            query = query.where(AuditEvent.patient_id == patient_id)
        return int(s.scalar(query) or 0)


def _wait_for(page: Any, done: Callable[[], bool]) -> None:
    """Wait while a loaded machine still runs the taps' reruns (up to 20 s), then until the app is idle."""
    deadline = time.time() + 20
    while time.time() < deadline and not done():
        page.wait_for_timeout(250)
    settle(page)


# ---------------------------------------------------------------- a slow save


#: about a second of work for SQLite (11^7 rows summed), in a trigger: a save that takes its time
_ELEVEN = "(VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9), (10), (11))"
_BUSY_WORK = "SELECT sum(a.column1) FROM " + ", ".join(f"{_ELEVEN} AS {t}" for t in "abcdefg")


@contextmanager
def _slow_saves(app: ClinicApp) -> Iterator[Callable[[Any, Any], None]]:
    """Ending or resuming a course takes a while to save, as on a loaded clinic's server. Yields
    `tap_again(page, button)`: once the app is inside that save (its write transaction is open), tap
    `button` again, as a nurse who saw nothing happen.

    SQLite: a trigger on `course_end` does a second of work inside the save's transaction (dropped after);
    PostgreSQL: this test holds `course_end` locked until the second tap is sent. It writes no row itself."""
    if app.backend == "sqlite":
        path = app.db.engine.url.database
        assert path
        with app.db.engine.begin() as conn:
            for op in ("INSERT", "UPDATE"):
                conn.exec_driver_sql(
                    f"CREATE TRIGGER test_slow_{op.lower()} BEFORE {op} ON course_end BEGIN {_BUSY_WORK}; END"
                )

        def writing() -> bool:
            probe = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:
                probe.execute("BEGIN IMMEDIATE")
                probe.execute("ROLLBACK")
                return False
            except sqlite3.OperationalError:  # "database is locked": a write transaction is open
                return True
            finally:
                probe.close()

        def tap_again(page: Any, button: Any) -> None:
            _until(page, lambda: _still(page, writing))
            button.click()
            page.wait_for_timeout(300)

        try:
            yield tap_again
        finally:
            with app.db.engine.begin() as conn:
                for op in ("insert", "update"):
                    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS test_slow_{op}")
        return

    with app.db.engine.connect() as conn:
        lock = conn.begin()
        conn.exec_driver_sql("LOCK TABLE course_end IN EXCLUSIVE MODE")  # reads go on; the save waits

        def waiting() -> bool:
            return bool(
                conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_locks WHERE relation = 'course_end'::regclass AND NOT granted"
                ).scalar()
            )

        def tap_again(page: Any, button: Any) -> None:
            _until(page, waiting)
            button.click()
            page.wait_for_timeout(500)  # the tap has reached the server
            lock.commit()  # the first tap's save goes on

        try:
            yield tap_again
        finally:
            if lock.is_active:
                lock.rollback()


def _still(page: Any, probe: Callable[[], bool]) -> bool:
    """`probe` holds now and 100 ms later: a write that long is the save, not a sign-in's activity touch."""
    if not probe():
        return False
    page.wait_for_timeout(100)
    return probe()


def _until(page: Any, condition: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.time() + seconds
    while not condition():
        if time.time() > deadline:
            raise AssertionError("the app never started the save")
        page.wait_for_timeout(50)


# ---------------------------------------------------------------- the page


END = re.compile(r"Course ended\? Mark it")
ENDED = re.compile(r"Ended courses \(\d+\)")


def _due_page(page: Any, app: ClinicApp) -> None:
    page.goto(f"{app.url}/due")
    settle(page)
    expect(page.get_by_role("heading", name="Due list")).to_be_visible()


def _overdue_count(page: Any) -> int:
    heading = page.get_by_role("heading", name=re.compile(r"^Overdue \(\d+\)"))
    expect(heading).to_have_count(1)
    return int(re.findall(r"\((\d+)\)", heading.inner_text())[0])


def _overdue_table(page: Any) -> Any:
    """The overdue list (the page's first table while anyone is overdue)."""
    assert _overdue_count(page) > 0
    return page.locator("[data-testid='stDataFrame']").first


def _listed(page: Any, shown: str, gone: str) -> None:
    """The overdue table shows `shown` (so it has rendered) and not `gone`."""
    table = _overdue_table(page)
    expect(table).to_contain_text(shown)
    expect(table).not_to_contain_text(gone)


def _open(page: Any, title: re.Pattern[str]) -> Any:
    """Open the expander whose title matches (if it is closed) and return it."""
    expander = page.locator("[data-testid='stExpander']").filter(has=page.locator("summary").filter(has_text=title))
    expect(expander).to_have_count(1)
    if expander.locator("details").get_attribute("open") is None:
        expander.locator("summary").click()
        settle(page)
    return expander


def _form(page: Any, scope: Any, button: str) -> Any:
    """The form in `scope` whose submit button reads `button`."""
    return scope.locator("[data-testid='stForm']").filter(has=page.get_by_role("button", name=button, exact=True))


def _choose(page: Any, field: Any, option: str) -> None:
    """Pick `option` in a selectbox (typed to filter the list, so it is shown whatever its place)."""
    field.click()
    page.keyboard.type(option[:12])
    page.get_by_role("option", name=option, exact=True).click()
    expect(field).to_have_value(option)


def _succeeded(page: Any, message: str) -> None:
    expect(page.get_by_text(message, exact=False).first).to_be_visible()
    assert page.get_by_text("Not saved", exact=False).count() == 0


def _refused_in(form: Any, message: str) -> None:
    """The refusal is inside the form, beside its button, in view."""
    alert = form.get_by_text(message, exact=False)
    expect(alert).to_be_visible()
    expect(alert).to_be_in_viewport()


def _double_tap(button: Any) -> None:
    button.dblclick()


# ---------------------------------------------------------------- 1 and 4: a double tap ends one course, once


@pytest.mark.parametrize("slow", [False, True], ids=["quick", "slow"])
def test_a_double_tap_on_mark_course_ended_ends_the_picked_course_once(
    tablet: Any, clinic_app: ClinicApp, charge: str, slow: bool
) -> None:
    """Quick: both taps reach the server before the first is served. Slow: the second tap comes while the
    first tap's save is still running (`_slow_saves`), the case of a loaded clinic."""
    stays, stays_family, _ = _pair(clinic_app, "Stays")
    ends, ends_family, label = _pair(clinic_app, "Ends")
    page = tablet(charge)
    _due_page(page, clinic_app)
    before, marks_before = _overdue_count(page), len(_marks(clinic_app))
    table = _overdue_table(page)
    expect(table).to_contain_text(stays_family)
    expect(table).to_contain_text(ends_family)

    form = _form(page, _open(page, END), "Mark course ended")
    _choose(page, form.get_by_label("Patient and therapy", exact=True), label)
    _choose(page, form.get_by_label("Reason", exact=True), "Switched to another therapy")
    form.get_by_label("Note", exact=True).fill("Now on Ocrevus")
    button = form.get_by_role("button", name="Mark course ended")
    if slow:
        with _slow_saves(clinic_app) as tap_again:
            button.click()
            tap_again(page, button)
            _wait_for(page, lambda: len(_marks(clinic_app, ends)) >= 1)
    else:
        _double_tap(button)
        _wait_for(page, lambda: len(_marks(clinic_app, ends)) >= 1)

    [mark] = _marks(clinic_app, ends)  # one mark, one audit event: the second tap stored nothing
    assert (mark.reason, mark.note, mark.ended_by_name, mark.resumed_at) == (
        "switched",
        "Now on Ocrevus",
        CHARGE_NAME,
        None,
    )
    assert _events(clinic_app, ends, "end_course") == 1
    assert len(_marks(clinic_app)) == marks_before + 1  # nobody else's course was ended

    # what the nurse reads: the pair she picked, never another one
    _succeeded(page, f"Course ended: {label} (Switched to another therapy, by {CHARGE_NAME}).")
    assert page.get_by_text(re.compile("Course ended: (?!" + re.escape(label) + ")")).count() == 0
    assert _overdue_count(page) == before - 1  # the pair left the list once
    _listed(page, shown=stays_family, gone=ends_family)
    ended = _open(page, ENDED)
    expect(ended).to_contain_text(ends_family)
    expect(ended).to_contain_text("Switched to another therapy")
    expect(ended).not_to_contain_text(stays_family)
    assert _marks(clinic_app, stays) == [] and _events(clinic_app, stays) == 0  # the neighbour is untouched


# ---------------------------------------------------------------- 2: a refusal keeps what was typed


def test_a_refused_end_keeps_the_pick_reason_and_note_beside_the_message_and_stores_nothing(
    tablet: Any, clinic_app: ClinicApp, charge: str
) -> None:
    other, other_family, _ = _pair(clinic_app, "Beside")
    patient, family, label = _pair(clinic_app, "Refused")
    page = tablet(charge)
    _due_page(page, clinic_app)
    before = _overdue_count(page)

    form = _form(page, _open(page, END), "Mark course ended")
    pair = form.get_by_label("Patient and therapy", exact=True)
    reason = form.get_by_label("Reason", exact=True)
    note = form.get_by_label("Note", exact=True)
    button = form.get_by_role("button", name="Mark course ended")

    # a note but no reason: refused, the pick and the note kept
    _choose(page, pair, label)
    note.fill("Moved to Leeds, GP letter on file")
    button.click()
    settle(page)
    _refused_in(form, "Pick why the course ended")
    expect(pair).to_have_value(label)
    expect(note).to_have_value("Moved to Leeds, GP letter on file")
    assert _marks(clinic_app, patient) == [] and _events(clinic_app, patient) == 0

    # "other" with the note emptied: refused, the pick and the reason kept
    _choose(page, reason, "Other (say why in the note)")
    note.fill("")
    button.click()
    settle(page)
    _refused_in(form, "Say why the course ended (the reason is “other”)")
    expect(pair).to_have_value(label)
    expect(reason).to_have_value("Other (say why in the note)")
    expect(note).to_have_value("")
    assert _marks(clinic_app, patient) == [] and _events(clinic_app, patient) == 0
    assert _overdue_count(page) == before
    expect(_overdue_table(page)).to_contain_text(family)  # still on the list

    # the note written: saved with the pair and the reason kept from the refusals
    note.fill("Stopped for pregnancy planning")
    button.click()
    _wait_for(page, lambda: len(_marks(clinic_app, patient)) >= 1)
    [mark] = _marks(clinic_app, patient)
    assert (mark.reason, mark.note) == ("other", "Stopped for pregnancy planning")
    assert _events(clinic_app, patient, "end_course") == 1
    assert _marks(clinic_app, other) == []
    _succeeded(page, f"Course ended: {label} (Other (say why in the note), by {CHARGE_NAME}).")
    assert _overdue_count(page) == before - 1
    _listed(page, shown=other_family, gone=family)


# ---------------------------------------------------------------- 3: kept across a reload; resumed once


def test_an_ended_course_survives_a_reload_and_a_double_tap_on_resume_resumes_it_once(
    tablet: Any, clinic_app: ClinicApp, charge: str
) -> None:
    _, other_family, _ = _pair(clinic_app, "Neighbour")
    patient, family, label = _pair(clinic_app, "Resumed")
    page = tablet(charge)
    _due_page(page, clinic_app)
    before = _overdue_count(page)

    form = _form(page, _open(page, END), "Mark course ended")
    _choose(page, form.get_by_label("Patient and therapy", exact=True), label)
    _choose(page, form.get_by_label("Reason", exact=True), "Care transferred elsewhere")
    form.get_by_role("button", name="Mark course ended").click()
    _wait_for(page, lambda: len(_marks(clinic_app, patient)) >= 1)
    _succeeded(page, f"Course ended: {label}")

    page.reload()  # a new browser session (signed in again from the cookie): only the database remembers
    settle(page)
    expect(page.get_by_role("heading", name="Due list")).to_be_visible()
    assert _overdue_count(page) == before - 1
    _listed(page, shown=other_family, gone=family)
    ended = _open(page, ENDED)
    expect(ended).to_contain_text(family)
    expect(ended).to_contain_text("Care transferred elsewhere")

    resumes = _events(clinic_app, None, "resume_course")
    resume = _form(page, ended, "Resume course")
    _choose(page, resume.get_by_label("Course to resume", exact=True), label)
    resume.get_by_label("Why it is resumed", exact=True).fill("Back from Leeds, continues Tysabri here")
    _double_tap(resume.get_by_role("button", name="Resume course"))
    _wait_for(page, lambda: _marks(clinic_app, patient)[0].resumed_at is not None)

    [mark] = _marks(clinic_app, patient)  # the end stays on record, resumed once
    assert (mark.reason, mark.resumed_by_name, mark.resume_reason) == (
        "transferred",
        CHARGE_NAME,
        "Back from Leeds, continues Tysabri here",
    )
    assert _events(clinic_app, patient, "end_course") == 1
    assert _events(clinic_app, None, "resume_course") == resumes + 1  # this one, and no other course
    _succeeded(page, f"Course resumed: {label} is on the due list again.")
    assert _overdue_count(page) == before
    expect(_overdue_table(page)).to_contain_text(family)
    expect(_open(page, ENDED)).not_to_contain_text(family)

    page.reload()  # and the resume holds after a reload too
    settle(page)
    assert _overdue_count(page) == before
    expect(_overdue_table(page)).to_contain_text(family)
    expect(_open(page, ENDED)).not_to_contain_text(family)
    assert _events(clinic_app, patient, "resume_course") == 1


# ---------------------------------------------------------------- 4: resume, tapped again while it saves


def test_a_second_tap_on_resume_while_it_saves_resumes_only_the_picked_course(
    tablet: Any, clinic_app: ClinicApp, charge: str
) -> None:
    """Before the form kept its options while saving, the second tap resumed the course listed first under
    Ended courses: another patient's."""
    earlier, earlier_family, _ = _pair(clinic_app, "StillEnded")
    patient, family, label = _pair(clinic_app, "SlowResume")
    _end(clinic_app, earlier)
    _end(clinic_app, patient)  # listed first under Ended courses (the most recent)
    page = tablet(charge)
    _due_page(page, clinic_app)
    before, resumes = _overdue_count(page), _events(clinic_app, None, "resume_course")
    ended = _open(page, ENDED)
    expect(ended).to_contain_text(earlier_family)

    resume = _form(page, ended, "Resume course")
    _choose(page, resume.get_by_label("Course to resume", exact=True), label)
    resume.get_by_label("Why it is resumed", exact=True).fill("Declined in error")
    button = resume.get_by_role("button", name="Resume course")
    with _slow_saves(clinic_app) as tap_again:
        button.click()
        tap_again(page, button)
        _wait_for(page, lambda: _marks(clinic_app, patient)[0].resumed_at is not None)

    assert _events(clinic_app, patient, "resume_course") == 1
    assert _events(clinic_app, None, "resume_course") == resumes + 1  # no other course was resumed
    assert [m.resumed_at for m in _marks(clinic_app, earlier)] == [None]
    _succeeded(page, f"Course resumed: {label} is on the due list again.")
    assert _overdue_count(page) == before + 1
    expect(_open(page, ENDED)).to_contain_text(earlier_family)
