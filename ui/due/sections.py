"""The Due page's lists: overdue and due this week, bookings made too early, protocol intervals."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from infusion.clock import format_local
from infusion.services import protocols
from ui.due.booking import move_form, schedule_form
from ui.due.context import Due, pair_label
from ui.due.courses import end_course_form
from ui.forms import entry_form


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


def due_section(cx: Due, title: str, frame: pd.DataFrame, *, overdue: bool) -> None:
    """The table, then ONE booking form for the row picked (a form per row made a long list take seconds)."""
    st.subheader(f"{title} ({len(frame)})")
    if frame.empty:
        st.caption("Nobody." if overdue else "Nobody else this week.")
        return
    due_table(frame, overdue=overdue)
    if overdue:
        end_course_form(cx, "end_overdue", frame)
    if not cx.can_book:
        st.caption("Booking is for nurses and charge nurses.")
        return
    if not cx.chair_names:
        st.warning("No chairs yet: an administrator adds them on the Administration page.")
        return
    rows = {f"{r.patient_id}_{r.therapy_id}": r for r in frame.itertuples()}

    def describe(key: str) -> str:
        r = rows[key]
        return f"{r.patient} · {r.therapy}" + (f" · {r.days_overdue} d overdue" if overdue else "")

    # starts empty, as every picker naming whose record a save changes: the booking form opens for the patient
    # picked, never for whoever happens to be listed first
    picked = st.selectbox(
        "Book for",
        list(rows),
        format_func=describe,
        key=f"book_pick_{'overdue' if overdue else 'soon'}",
        index=None,
        placeholder="Pick the patient to book…",
    )
    if picked is None:
        st.caption("Pick a patient above to book their next session.")
        return
    r = rows[picked]
    schedule_form(
        cx,
        f"sched_{r.patient_id}_{r.therapy_id}",
        int(r.patient_id),
        int(r.therapy_id),
        describe(picked),
        day=r.next_due,
        expected=None if pd.isna(r.expected_dose) else float(r.expected_dose),
        unit=str(r.dose_unit),
        label=str(r.course_label),
        site_id=None if pd.isna(r.site_id) else int(r.site_id),
    )


def too_early_section(cx: Due, frame: pd.DataFrame) -> None:
    st.subheader(f"Booked too early ({len(frame)})")
    if frame.empty:
        st.caption("No booking is before its therapy's allowed date.")
        return
    for r in frame.itertuples():
        with st.container(border=True):
            kind = "🚫 before the minimum interval" if r.enforced else "⚠️ earlier than usual"
            when = format_local(r.scheduled, cx.tz, "%a %d %b %Y %H:%M")
            st.markdown(f"**{r.patient}** · {r.therapy} · booked {when} · {kind}")
            (st.error if r.enforced else st.warning)(r.message)
            if cx.can_book:
                move_form(cx, r)


#: names the "no due date" warning spells out; the rest are counted (the table below lists them all)
NAMED_IN_WARNING = 10


def protocol_warning(needs: pd.DataFrame, *, can_set: bool) -> str:
    """The warning over the protocol table: the most recently treated patients without an interval by
    name and MRN (two patients may share a name), the rest as a count, so a site with years of IVIG
    history gets one readable paragraph; it asks to set the intervals only those who may."""
    recent = needs.sort_values(["last_infusion", "patient"], ascending=[False, True])
    named = "; ".join(pair_label(r) for r in recent.head(NAMED_IN_WARNING).itertuples())
    act = (
        "Set the protocol interval in Protocol intervals below."
        if can_set
        else "A charge nurse or an administrator sets it in Protocol intervals below."
    )
    more = len(recent) - NAMED_IN_WARNING
    if more <= 0:
        return f"No due date until the protocol interval is set: {named}. {act}"
    patients = recent["patient_id"].nunique()
    return (
        f"No due date for {patients:,} patients until their protocol interval is set. Most recently treated: "
        f"{named}; and {more:,} more. {act}"
    )


def protocol_section(cx: Due, frame: pd.DataFrame) -> None:
    """IVIG and cyclophosphamide follow the interval the clinic sets per patient (`frame`:
    `due.protocol_patients`)."""
    st.subheader("Protocol intervals (IVIG, cyclophosphamide)")
    if frame.empty:
        st.caption("No patient of this site has IVIG or cyclophosphamide sessions yet.")
        return
    st.dataframe(
        pd.DataFrame(
            {
                "Patient": frame["patient"],
                "MRN": frame["mrn"],
                "Therapy": frame["therapy"],
                "Last infusion": [d.isoformat() if pd.notna(d) else "—" for d in frame["last_infusion"]],
                "Interval": [
                    f"every {int(d)} days" if pd.notna(d) else "not set: no due date" for d in frame["interval_days"]
                ],
                "Next due": [d.isoformat() if pd.notna(d) else "—" for d in frame["next_due"]],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    if not cx.can_set_protocol:
        st.caption("A charge nurse or an administrator sets the protocol interval.")
        return
    pairs = {f"{r.patient_id}:{r.therapy_id}": r for r in frame.itertuples()}
    with entry_form("protocol") as form:
        picked = form.pick(
            "Patient and therapy", "pair", pairs, lambda p: pair_label(pairs[p]), "Pick the patient and therapy"
        )
        c1, c2 = st.columns([1, 2])
        days = c1.number_input(
            "Interval (days)",
            min_value=1,
            max_value=protocols.PROTOCOL_MAX_DAYS,
            value=None,
            step=1,
            key=form.key("days"),
        )
        note = c2.text_input("Protocol (e.g. 1 g/kg every 3 weeks)", key=form.key("note"))
        if form.submit("Save protocol interval", type="primary") and form.chosen(
            picked,
            "Pick the patient and therapy the interval is for.",
            also=lambda: protocols.check_interval(None if days is None else int(days)),
        ):
            r = pairs[picked]
            form.save(
                lambda: protocols.set_protocol_interval(
                    cx.db,
                    cx.viewer,
                    int(r.patient_id),
                    int(r.therapy_id),
                    int(days) if days is not None else 0,
                    note,
                    expected_version=None if pd.isna(r.version) else int(r.version),
                ),
                f"Protocol interval saved for {r.patient}.",
            )
    end_course_form(cx, "end_protocol", frame)
