"""Due list: who is overdue or due this week, bookings made too early, and booking the next session.

UI only: the rhythm, the too-early rule and the expected dose live in
`infusion.reads.due`; bookings go through `infusion.services.scheduling`, which refuses a dose
other than the expected one without a reason and a date before the minimum
interval without an override reason. Every form goes through `ui.forms` (a refused
booking keeps its fields); the parts live in `ui/due/`.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import streamlit as st

from infusion.accounts.permissions import CHARTING
from infusion.clock import utcnow
from infusion.reads import due
from infusion.reads.courses import ended_courses
from infusion.services import courses, protocols, setup
from ui import common as ui
from ui.due.booking import book_any
from ui.due.context import Due
from ui.due.courses import ended_section
from ui.due.sections import due_section, protocol_section, protocol_warning, too_early_section

db = ui.get_db()
viewer = ui.page_guard("due")
clinic = ui.working_site(db, viewer)  # the site picked in the header: its day, zone and chairs
cx = Due(
    db=db,
    viewer=viewer,
    tz=clinic.timezone,
    today=utcnow().astimezone(ZoneInfo(clinic.timezone)).date(),
    can_book=viewer.role in CHARTING,
    can_set_protocol=viewer.role in protocols.PROTOCOL_EDIT,
    can_end_course=viewer.role in courses.COURSE_EDIT,
    chair_names={c.id: c.name for c in setup.list_chairs(db, clinic.id)},
    site_id=clinic.id,
    # the open sites this person holds: a patient due at one of them is booked in its chairs and zone
    sites={s.id: (s.name, s.timezone) for s in setup.list_sites(db, viewer) if s.active},
)

st.header("Due list")
ui.show_flash()
st.caption(
    "Next infusion due from each patient's therapy history and the catalog's rhythm "
    "(Tysabri every 4 weeks; Ocrevus and Briumvi day 1 and day 15, then every 6 months / 24 weeks, "
    "never under 5 months apart; Lemtrada courses). IVIG and cyclophosphamide follow the interval the "
    "clinic sets per patient; IV methylprednisolone, plasma exchange and edaravone have no due date. "
    "A course marked ended (under Ended courses) is not listed until it is resumed."
)

# the worklist's two sections; the patients without a due date come from the protocol table's read
frame = due.due_list(db, viewer, cx.today, sections=(due.SECTION_OVERDUE, due.SECTION_WEEK))
protocol = due.protocol_patients(db, viewer)
early = due.too_early_bookings(db, viewer, cx.today)
overdue = frame[frame["section"] == due.SECTION_OVERDUE]
this_week = frame[frame["section"] == due.SECTION_WEEK]
if overdue.empty and this_week.empty and early.empty:
    st.info(
        "Nobody is overdue or due this week. Due dates appear once a patient has had an infusion of a "
        "therapy with a rhythm (Tysabri, Ocrevus, Briumvi, Lemtrada, Zunovo, rituximab); IVIG and "
        "cyclophosphamide also need the patient's protocol interval. Book a first infusion below.",
        icon="📅",
    )
due_section(cx, "Overdue", overdue, overdue=True)
due_section(cx, "Due this week", this_week, overdue=False)
too_early_section(cx, early)
needs = due.without_due_date(protocol)
if not needs.empty:
    st.warning(protocol_warning(needs, can_set=cx.can_set_protocol))
protocol_section(cx, protocol)
ended_section(cx, ended_courses(db, viewer))
book_any(cx)
