"""Ending a course and resuming it, on the Due page: the "End a course" form under the overdue list and the
protocol table, and the "Ended courses" list with its Resume form.

The writes are `infusion.services.courses` (charge nurse, administrator; audited); the list is
`infusion.reads.courses.ended_courses`. Both forms go through `ui.forms`: a double tap saves once, a refused
save keeps what was typed with the reason beside the button.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from infusion.clinical.course_end import REASONS
from infusion.clock import format_local
from infusion.services import courses
from ui.due.context import Due, pair_label
from ui.forms import entry_form


def end_course_form(cx: Due, name: str, frame: pd.DataFrame) -> None:
    """Mark one of the listed pairs' course ended, with a reason (and a note; "other" needs one). The pair
    leaves the lists above and shows under "Ended courses", where it can be resumed."""
    if not cx.can_end_course or frame.empty:
        return
    with st.expander("⏹️ Course ended? Mark it", key=f"{name}_open"):
        st.caption(
            "For a patient who stopped this therapy (completed, switched, moved, declined, died): the course "
            "leaves the due list until someone resumes it under Ended courses, or the patient is given an "
            "infusion of it again. Who, when and why are kept."
        )
        with entry_form(name) as form:
            pairs = form.choices("pair", {f"{r.patient_id}:{r.therapy_id}": r for r in frame.itertuples()})
            picked = form.pick(
                "Patient and therapy", "pair", pairs, lambda p: pair_label(pairs[p]), "Pick the patient and therapy"
            )
            c1, c2 = st.columns([1, 2])
            reason = c1.selectbox(
                "Reason", list(REASONS), key=form.key("reason"), format_func=REASONS.__getitem__, index=None
            )
            note = c2.text_input("Note", key=form.key("note"), help="Needed for “Other”.")
            if form.submit("Mark course ended") and form.chosen(
                picked,
                "Pick the patient and therapy whose course ended.",
                also=lambda: courses.check_end(reason, note),
            ):
                r = pairs[picked]
                form.save(
                    lambda: courses.end_course(
                        cx.db, cx.viewer, int(r.patient_id), int(r.therapy_id), reason, note, client_token=form.token
                    ),
                    lambda row: (  # named from what was stored: a replayed tap returns the first tap's row
                        f"Course ended: {pair_label(pairs.get(f'{row.patient_id}:{row.therapy_id}', r))} "
                        f"({REASONS[row.reason]}, by {row.ended_by_name}). "
                        "It is under Ended courses, where it can be resumed."
                    ),
                    at_panel=True,  # the pair leaves the list this form picks from
                )


def ended_section(cx: Due, frame: pd.DataFrame) -> None:
    """The site's courses marked ended (`ended_courses`): who, when and why; resumed by a charge nurse or an
    administrator with a reason."""
    with st.expander(f"Ended courses ({len(frame)})", key="ended_courses_open"):
        if frame.empty:
            st.caption("No course is marked ended at this site.")
            return
        st.dataframe(
            pd.DataFrame(
                {
                    "Patient": frame["patient"],
                    "MRN": frame["mrn"],
                    "Therapy": frame["therapy"],
                    "Reason": frame["reason"],
                    "Note": frame["note"],
                    "Ended": [format_local(t, cx.tz, "%d %b %Y %H:%M") for t in frame["ended_at"]],
                    "By": frame["ended_by"],
                    "Last infusion": [d.isoformat() if pd.notna(d) else "—" for d in frame["last_infusion"]],
                }
            ),
            hide_index=True,
            width="stretch",
        )
        if not cx.can_end_course:
            st.caption("A charge nurse or an administrator resumes a course.")
            return
        with entry_form("resume_course") as form:
            rows = form.choices("pick", {int(r.course_end_id): r for r in frame.itertuples()})
            picked = form.pick(
                "Course to resume", "pick", rows, lambda i: pair_label(rows[i]), "Pick the course to resume"
            )
            why = st.text_input("Why it is resumed", key=form.key("reason"))
            if form.submit("Resume course") and form.chosen(
                picked, "Pick the course to resume.", also=lambda: courses.check_resume(why)
            ):
                r = rows[picked]
                form.save(
                    lambda: courses.resume_course(cx.db, cx.viewer, int(r.course_end_id), why),
                    lambda row: f"Course resumed: {pair_label(rows.get(int(row.id), r))} is on the due list again.",
                    at_panel=True,
                )
