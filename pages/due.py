"""Due list: who is overdue or due this week, bookings made too early, and booking the next session.

UI only: the rhythm, the too-early rule and the expected dose live in
`infusion.reads.due`; bookings go through `infusion.services.scheduling`, which refuses a dose
other than the expected one without a reason and a date before the minimum
interval without an override reason.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from infusion.accounts.permissions import CHARTING
from infusion.clock import format_local, from_local, utcnow
from infusion.errors import ChairsideError
from infusion.reads import due
from infusion.services import scheduling, setup
from ui import common as ui

db = ui.get_db()
viewer = ui.page_guard("due")
clinic = setup.get_clinic(db)
TZ = clinic.timezone
today = utcnow().astimezone(ZoneInfo(TZ)).date()
can_book = viewer.role in CHARTING
can_set_protocol = viewer.role in due.PROTOCOL_EDIT
DEFAULT_TIME = time(9, 0)  # product choice: a new booking starts at the clinic's usual first slot

st.header("Due list")
ui.show_flash()
st.caption(
    "Next infusion due from each patient's therapy history and the catalog's rhythm "
    "(Tysabri every 4 weeks; Ocrevus and Briumvi day 1 and day 15, then every 6 months / 24 weeks, "
    "never under 5 months apart; Lemtrada courses). IVIG and cyclophosphamide follow the interval the "
    "clinic sets per patient; IV methylprednisolone, plasma exchange and edaravone have no due date."
)

chairs = setup.list_chairs(db)
chair_names = {c.id: c.name for c in chairs}


def _when(day: date, at: time | None) -> datetime:
    return from_local(datetime.combine(day, at or DEFAULT_TIME), TZ)


def _booked(
    patient_id: int,
    therapy_id: int,
    chair_id: int,
    when: datetime,
    dose: float | None,
    dose_reason: str,
    early_reason: str,
) -> None:
    """Book through the service; a warning-only too-early date is booked and said in the flash."""
    try:
        warning = due.check_too_early(db, patient_id, therapy_id, when)
        row = scheduling.schedule_session(
            db,
            viewer,
            patient_id,
            therapy_id,
            chair_id,
            when,
            dose=dose,
            dose_reason=dose_reason,
            override_too_early_reason=early_reason,
        )
    except ChairsideError as error:
        ui.show_error(error)
        return
    message = (
        f"Booked {format_local(row.scheduled_at, TZ, '%a %d %b %Y %H:%M')} in "
        f"{chair_names.get(row.chair_id, 'the chair')}, {row.dose:g} {row.dose_unit}."
    )
    if warning is not None and not warning.enforced:
        message += f" Note: {warning.message}"
    ui.flash(message)
    st.rerun()


def schedule_form(
    key: str, patient_id: int, therapy_id: int, title: str, *, day: date, expected: float | None, unit: str, label: str
) -> None:
    """Book the next session of one patient and therapy; the dose starts at the one the schedule expects."""
    with st.expander(f"📅 Schedule · {title}"):
        with st.form(key):
            st.markdown(
                f"**{label}** · expected dose "
                + (f"{expected:g} {unit}" if expected is not None else "not set (enter it)")
            )
            c1, c2, c3 = st.columns(3)
            chair_id = c1.selectbox(
                "Chair", list(chair_names), format_func=lambda i: chair_names[i], key=f"{key}_chair"
            )
            picked_day = c2.date_input("Date", value=max(day, today), min_value=today, key=f"{key}_date")
            picked_time = c3.time_input("Time", value=DEFAULT_TIME, step=900, key=f"{key}_time")
            c4, c5 = st.columns([1, 2])
            dose = c4.number_input(
                f"Dose ({unit})",
                value=float(expected) if expected is not None else None,
                min_value=0.0,
                step=1.0,
                key=f"{key}_dose",
            )
            dose_reason = c5.text_input(
                "Reason for a different dose",
                key=f"{key}_dose_reason",
                help="Needed only when the dose differs from the expected one.",
            )
            early_reason = st.text_input(
                "Reason to book before the allowed date",
                key=f"{key}_early_reason",
                help="Needed only before the therapy's minimum interval (e.g. Ocrevus 5 months).",
            )
            submitted = st.form_submit_button("Schedule", type="primary", key=f"{key}_submit")
        if submitted:
            _booked(patient_id, therapy_id, chair_id, _when(picked_day, picked_time), dose, dose_reason, early_reason)


def due_table(frame: pd.DataFrame, *, overdue: bool) -> None:
    shown = pd.DataFrame(
        {
            "Patient": frame["patient"],
            "MRN": frame["mrn"],
            "Therapy": frame["therapy"],
            "Last infusion": frame["last_infusion"],
            "Next due": frame["next_due"],
            **({"Days overdue": frame["days_overdue"]} if overdue else {}),
            "Next": frame["course_label"],
            "Expected dose": [
                f"{d:g} {u}" if pd.notna(d) else "—" for d, u in zip(frame["expected_dose"], frame["dose_unit"])
            ],
            "Booked": [b.strftime("%d %b") if b else "—" for b in frame["booked"]],
            "Note": frame["note"],
        }
    )
    st.dataframe(shown, hide_index=True, width="stretch")


def due_section(title: str, frame: pd.DataFrame, *, overdue: bool) -> None:
    st.subheader(f"{title} ({len(frame)})")
    if frame.empty:
        st.caption("Nobody." if overdue else "Nobody else this week.")
        return
    due_table(frame, overdue=overdue)
    if not can_book:
        st.caption("Booking is for nurses and charge nurses.")
        return
    if not chairs:
        st.warning("No chairs yet: an administrator adds them on the Administration page.")
        return
    for r in frame.itertuples():
        schedule_form(
            f"sched_{r.patient_id}_{r.therapy_id}",
            int(r.patient_id),
            int(r.therapy_id),
            f"{r.patient} · {r.therapy}" + (f" · {r.days_overdue} d overdue" if overdue else ""),
            day=r.next_due,
            expected=None if pd.isna(r.expected_dose) else float(r.expected_dose),
            unit=r.dose_unit,
            label=r.course_label,
        )


def too_early_section(frame: pd.DataFrame) -> None:
    st.subheader(f"Booked too early ({len(frame)})")
    if frame.empty:
        st.caption("No booking is before its therapy's allowed date.")
        return
    for r in frame.itertuples():
        with st.container(border=True):
            kind = "🚫 before the minimum interval" if r.enforced else "⚠️ earlier than usual"
            st.markdown(
                f"**{r.patient}** · {r.therapy} · booked {format_local(r.scheduled, TZ, '%a %d %b %Y %H:%M')} · {kind}"
            )
            (st.error if r.enforced else st.warning)(r.message)
            if can_book:
                move_form(r)


def move_form(r: Any) -> None:
    key = f"move_{r.session_id}"
    with st.form(key):
        c1, c2 = st.columns(2)
        new_day = c1.date_input("Move to", value=max(r.allowed_from, today), min_value=today, key=f"{key}_date")
        new_time = c2.time_input(
            "Time", value=r.scheduled.astimezone(ZoneInfo(TZ)).time().replace(tzinfo=None), step=900, key=f"{key}_time"
        )
        reason = st.text_input("Or keep this date: reason to book before the allowed date", key=f"{key}_reason")
        c3, c4 = st.columns(2)
        move = c3.form_submit_button("Move booking", type="primary", key=f"{key}_move")
        keep = c4.form_submit_button("Keep with reason", key=f"{key}_keep")
    if move or keep:
        when = r.scheduled if keep else _when(new_day, new_time)
        if ui.attempt(
            lambda: scheduling.move_booking(
                db,
                viewer,
                int(r.session_id),
                when,
                expected_version=int(r.version),
                override_too_early_reason=reason if keep else None,
            ),
            "Booking moved." if move else "Booking kept; the reason is in the audit log.",
        ):
            st.rerun()


def protocol_section() -> None:
    st.subheader("Protocol intervals (IVIG, cyclophosphamide)")
    frame = due.protocol_patients(db, viewer)
    if frame.empty:
        st.caption("No patient has IVIG or cyclophosphamide sessions yet.")
        return
    st.dataframe(
        pd.DataFrame(
            {
                "Patient": frame["patient"],
                "MRN": frame["mrn"],
                "Therapy": frame["therapy"],
                "Interval": [
                    f"every {int(d)} days" if pd.notna(d) else "not set: no due date" for d in frame["interval_days"]
                ],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    if not can_set_protocol:
        st.caption("A charge nurse or an administrator sets the protocol interval.")
        return
    pairs = {f"{r.patient_id}:{r.therapy_id}": r for r in frame.itertuples()}
    with st.form("protocol"):
        picked = st.selectbox(
            "Patient and therapy",
            list(pairs),
            key="protocol_pair",
            format_func=lambda k: f"{pairs[k].patient} · {pairs[k].therapy}",
        )
        c1, c2 = st.columns([1, 2])
        days = c1.number_input(
            "Interval (days)", min_value=1, max_value=due.PROTOCOL_MAX_DAYS, value=None, step=1, key="protocol_days"
        )
        note = c2.text_input("Protocol (e.g. 1 g/kg every 3 weeks)", key="protocol_note")
        submitted = st.form_submit_button("Save protocol interval", type="primary", key="protocol_submit")
    if submitted:
        r = pairs[picked]
        version = None if pd.isna(r.version) else int(r.version)
        if ui.attempt(
            lambda: due.set_protocol_interval(
                db,
                viewer,
                int(r.patient_id),
                int(r.therapy_id),
                int(days) if days is not None else 0,
                note,
                expected_version=version,
            ),
            f"Protocol interval saved for {r.patient}.",
        ):
            st.rerun()


def book_any() -> None:
    """Any patient and therapy, e.g. a first infusion (no history yet, so not on the lists above)."""
    st.subheader("Book a session")
    if not can_book:
        st.caption("Booking is for nurses and charge nurses.")
        return
    if not chairs:
        st.warning("No chairs yet: an administrator adds them on the Administration page.")
        return
    patients = setup.search_patients(db, limit=500)
    if not patients:
        st.caption("No patients yet: add one as a walk-in on the Chairside page.")
        return
    therapies = setup.list_therapies(db)
    p_by_id, t_by_id = {p.id: p for p in patients}, {t.id: t for t in therapies}
    with st.form("sched_any"):
        c1, c2 = st.columns(2)
        patient_id = c1.selectbox(
            "Patient",
            list(p_by_id),
            key="sched_any_patient",
            format_func=lambda i: f"{p_by_id[i].family_name}, {p_by_id[i].given_name} · {p_by_id[i].mrn}",
        )
        therapy_id = c2.selectbox(
            "Therapy",
            list(t_by_id),
            key="sched_any_therapy",
            format_func=lambda i: t_by_id[i].name + (f" ({t_by_id[i].brand})" if t_by_id[i].brand else ""),
        )
        c3, c4, c5 = st.columns(3)
        chair_id = c3.selectbox("Chair", list(chair_names), format_func=lambda i: chair_names[i], key="sched_any_chair")
        picked_day = c4.date_input("Date", value=today, min_value=today, key="sched_any_date")
        picked_time = c5.time_input("Time", value=DEFAULT_TIME, step=900, key="sched_any_time")
        c6, c7 = st.columns([1, 2])
        dose = c6.number_input(
            "Dose (empty = the dose the schedule expects)", value=None, min_value=0.0, key="sched_any_dose"
        )
        dose_reason = c7.text_input("Reason for a different dose", key="sched_any_dose_reason")
        early_reason = st.text_input("Reason to book before the allowed date", key="sched_any_early_reason")
        submitted = st.form_submit_button("Schedule", type="primary", key="sched_any_submit")
    if submitted:
        _booked(patient_id, therapy_id, chair_id, _when(picked_day, picked_time), dose, dose_reason, early_reason)


frame = due.due_list(db, viewer, today)
early = due.too_early_bookings(db, viewer, today)
overdue = frame[frame["section"] == due.SECTION_OVERDUE]
this_week = frame[frame["section"] == due.SECTION_WEEK]
if overdue.empty and this_week.empty and early.empty:
    st.info(
        "Nobody is overdue or due this week. Due dates appear once a patient has had an infusion of a "
        "therapy with a rhythm (Tysabri, Ocrevus, Briumvi, Lemtrada, Zunovo, rituximab); IVIG and "
        "cyclophosphamide also need the patient's protocol interval. Book a first infusion below.",
        icon="📅",
    )
due_section("Overdue", overdue, overdue=True)
due_section("Due this week", this_week, overdue=False)
too_early_section(early)
needs = frame[frame["section"] == due.SECTION_PROTOCOL]
if not needs.empty:
    st.warning(
        "No due date for "
        + ", ".join(f"{r.patient} ({r.therapy})" for r in needs.itertuples())
        + ": set the protocol interval below."
    )
protocol_section()
book_any()
