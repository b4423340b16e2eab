"""Ended courses under random sequences (hypothesis, in the style of tests/db/test_properties.py): ends and
resumes with any reason, note and token (valid or not), bookings and infusions given in between, by a
charge nurse or someone not allowed. After every step the due list read from `due_pair` equals the raw-row
path in the sections the page shows and in every section, the summary equals a rebuild, at most one mark
is in force per pair, the pair is listed exactly when no mark is in force, and a refusal changes no row."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import pandas as pd
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import select

from db.models import CourseEnd
from infusion.clinical.course_end import REASON_CODES
from infusion.reads import due, due_summary
from infusion.services import courses
from infusion.services.scheduling import schedule_session
from tests.db.test_due import CHARGE, MANAGER, TODAY, at, give, history
from tests.db.test_properties import PROPERTY, nasty_text, stored_or_refused, token
from tests.helpers import ADMIN, new_chair, therapy_id

ALL = (due.SECTION_OVERDUE, due.SECTION_WEEK, due.SECTION_PROTOCOL, due.SECTION_LATER, due.SECTION_NONE)
PAGE = (due.SECTION_OVERDUE, due.SECTION_WEEK)
CODES: dict[int, str] = {}

reasons = st.one_of(st.sampled_from(REASON_CODES), st.sampled_from(["", "Other", "stopped"]), nasty_text)
notes = st.one_of(st.sampled_from(["moved to Leeds", "x" * 500, "x" * 501]), nasty_text)
#: a few tokens reused across steps (a double tap), or anything
tokens = st.one_of(st.sampled_from(["t1", "t2", "t3"]), token)
steps = st.lists(
    st.tuples(
        st.sampled_from(["end", "end", "resume", "resume", "book", "give"]),
        st.integers(min_value=0, max_value=3),  # which pair
        reasons,
        notes,
        tokens,
        st.sampled_from([CHARGE, ADMIN, MANAGER]),
        st.integers(min_value=1, max_value=200),  # days: of a booking ahead, of an infusion back
    ),
    min_size=1,
    max_size=8,
)


def _in_force(db) -> dict[tuple[int, int], int]:
    with db.reading() as s:
        rows = s.execute(
            select(CourseEnd.patient_id, CourseEnd.therapy_id, CourseEnd.id).where(CourseEnd.resumed_at.is_(None))
        ).all()
    out: dict[tuple[int, int], int] = {}
    for p, t, i in rows:
        assert (p, t) not in out, "two marks in force for one pair"
        out[(p, t)] = i
    return out


def _check(db, pairs: list[tuple[int, int]]) -> None:
    for sections in (PAGE, ALL):
        fast = due.due_list(db, CHARGE, TODAY, sections=sections)
        pd.testing.assert_frame_equal(fast, due._due_list_raw(db, CHARGE, TODAY, sections=sections))
    with db.reading() as s:
        assert due_summary.compare(s.connection()) == []
    shown = {(int(p), int(t)) for p, t in zip(fast.patient_id, fast.therapy_id)}
    ended = _in_force(db)
    for pair in pairs:
        assert (pair in shown) == (pair not in ended), pair
    protocol = due.protocol_patients(db, CHARGE)
    assert not {(int(p), int(t)) for p, t in zip(protocol.patient_id, protocol.therapy_id)} & set(ended)


def test_random_ends_and_resumes_keep_the_due_list_equal_to_the_raw_path(db, nurse):
    tysabri, ivig, ocrevus = (therapy_id(db, c) for c in ("natalizumab", "ivig", "ocrelizumab_iv"))
    chair = new_chair(db, ADMIN)
    one = history(db, nurse, "natalizumab", [TODAY - timedelta(days=90), TODAY - timedelta(days=62)])
    two = history(db, nurse, "natalizumab", [TODAY - timedelta(days=3000)])
    three = history(db, nurse, "ivig", [TODAY - timedelta(days=30)])
    four = history(db, nurse, "ocrelizumab_iv", [TODAY - timedelta(days=400), TODAY - timedelta(days=386)])
    pairs = [(one, tysabri), (two, tysabri), (three, ivig), (four, ocrevus)]
    CODES.update({tysabri: "natalizumab", ivig: "ivig", ocrevus: "ocrelizumab_iv"})
    _check(db, pairs)

    @PROPERTY
    @given(steps)
    @example(  # the plain path, always among the examples: end, double tap, book and give while ended, resume
        [
            ("end", 0, "switched", "to Ocrevus", "t1", CHARGE, 1),
            ("end", 0, "switched", "to Ocrevus", "t1", CHARGE, 1),
            ("book", 0, "", "", None, CHARGE, 30),
            ("give", 0, "", "", None, CHARGE, 1),
            ("end", 2, "other", "", None, ADMIN, 1),
            ("end", 2, "other", "Plasma exchange instead", None, ADMIN, 1),
            ("resume", 0, "", "restarted", None, ADMIN, 1),
            ("end", 0, "died", None, None, CHARGE, 1),
        ]
    )
    def run(sequence) -> None:
        for action, which, reason, note, tap, actor, days in sequence:
            patient, therapy = pairs[which]
            if action == "end":
                end = partial(courses.end_course, db, actor, patient, therapy, reason, note, client_token=tap)
                row = stored_or_refused(db, end, "end_course")
                if row is not None and (row.patient_id, row.therapy_id) == (patient, therapy) and not row.resumed_at:
                    assert _in_force(db).get((patient, therapy)) == row.id
            elif action == "resume":
                mark = _in_force(db).get((patient, therapy))
                if mark is None:
                    continue
                if stored_or_refused(db, partial(courses.resume_course, db, actor, mark, note), "resume") is not None:
                    assert (patient, therapy) not in _in_force(db)
            elif action == "book":
                when = at(TODAY + timedelta(days=days))
                stored_or_refused(db, partial(schedule_session, db, CHARGE, patient, therapy, chair, when), "book")
            else:
                give(db, patient, CODES[therapy], TODAY - timedelta(days=days), chair_id=chair)
            _check(db, pairs)

    run()
