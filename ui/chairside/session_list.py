"""The left column: today's sessions by urgency, and the walk-in form."""

from __future__ import annotations

from datetime import date

import streamlit as st

from infusion.clock import format_local, format_minutes
from infusion.reads import sessions as views
from infusion.services import sessions, setup
from ui import common as ui
from ui import forms
from ui.chairside.context import Chairside, select_session

ALERT_MARKS = ("⚠", "⏰", "⌛")


def session_list(cx: Chairside, cards: list[views.SessionCard]) -> None:
    st.markdown(f"#### Today ({len(cards)})")
    if not cards:
        st.info("No sessions today yet. Add a walk-in below.")
    selected = st.session_state.get("selected_session")
    for card in cards:
        with st.container(border=True):
            st.markdown(
                f"**{card.patient}** · {card.chair}  \n"
                f"{card.therapy} #{card.infusion_number} · {ui.STATUS_CHIPS[card.status]}"
                + (
                    f" · {format_minutes(card.minutes_in_chair)}"
                    if card.minutes_in_chair
                    else f" · booked {format_local(card.scheduled_at, cx.tz)}"
                )
            )
            lines = [f":red[**{a}**]" if a.startswith(ALERT_MARKS) else a for a in card.alerts]
            if (
                card.status in ("infusing", "paused", "observation", "checked_in", "ready")
                and card.vitals_due.due_at
                and not card.overdue_minutes
            ):
                lines.append(f"Vitals due {format_local(card.vitals_due.due_at, cx.tz)} ({card.vitals_due.reason})")
            if lines:
                st.markdown("  \n".join(lines))
            st.button(
                "Open session" if card.id != selected else "▸ Open session",
                key=f"open_{card.id}",
                on_click=select_session,
                args=(card.id,),
                width="stretch",
                type="primary" if card.id == selected else "secondary",
            )


def walk_in_form(cx: Chairside) -> None:
    with st.expander("➕ Add a walk-in session", key="walk_in_open", on_change="rerun"):
        patients = setup.search_patients(cx.db, limit=500, site_id=cx.site_id)
        elsewhere = st.text_input(
            "Patient seen at another site of the network? Their MRN",
            key="walk_in_network_mrn",
        )
        if elsewhere.strip():
            found = setup.patient_by_mrn(cx.db, cx.nurse, elsewhere)
            if found is None:
                st.caption(f"No patient in the network has MRN {elsewhere.strip()}; add them below as new.")
            elif found.id not in {p.id for p in patients}:
                patients = [found, *patients]
        therapies = setup.list_therapies(cx.db)
        chairs = setup.list_chairs(cx.db, cx.site_id)
        if not chairs:
            st.warning("No chairs yet: an administrator adds them on the Administration page.")
            return
        with forms.entry_form("walk_in") as form:
            k = form.key
            options: list[int | None] = [None, *[p.id for p in patients]]
            by_id = {p.id: p for p in patients}
            patient_id = st.selectbox(
                "Patient",
                options,
                key=k("patient"),
                format_func=lambda i: (
                    "➕ New patient (fill in below)"
                    if i is None
                    else f"{by_id[i].family_name}, {by_id[i].given_name} · {by_id[i].mrn}"
                ),
            )
            c1, c2, c3 = st.columns(3)
            mrn = c1.text_input("New patient MRN", key=k("mrn"))
            given = c2.text_input("Given name", key=k("given"))
            family = c3.text_input("Family name", key=k("family"))
            c4, c5 = st.columns(2)
            birth = c4.date_input("Date of birth", value=None, min_value=date(1900, 1, 1), key=k("birth"))
            diagnosis = c5.selectbox("Diagnosis", setup.DIAGNOSES, key=k("dx"))
            t_by_id = {t.id: t for t in therapies}
            therapy_id = form.pick(
                "Therapy",
                "therapy",
                t_by_id,
                lambda i: t_by_id[i].name + (f" ({t_by_id[i].brand})" if t_by_id[i].brand else ""),
                "Pick the therapy",
            )
            c6, c7 = st.columns(2)
            dose = c6.number_input("Dose (empty = the dose for this point of the regimen)", value=None, key=k("dose"))
            dose_reason = st.text_input(
                "Reason for a dose other than the regimen's (e.g. a maintenance dose on a loading infusion)",
                key=k("dose_reason"),
            )
            ch_by_id = {c.id: c for c in chairs}
            chair_id = c7.selectbox("Chair", list(ch_by_id), format_func=lambda i: ch_by_id[i].name, key=k("chair"))
            if form.submit("Add session", type="primary") and form.chosen(
                therapy_id,
                "Pick the therapy.",
                also=None if patient_id is not None else lambda: setup.check_patient(mrn, given, family, birth),
            ):
                new_patient = (
                    None
                    if patient_id is not None
                    else {
                        "mrn": mrn,
                        "given_name": given,
                        "family_name": family,
                        "birth_date": birth,
                        "diagnosis": diagnosis,
                    }
                )
                token = form.token
                created = form.save(
                    lambda: sessions.create_walk_in(
                        cx.db,
                        cx.nurse,
                        patient_id=patient_id,
                        new_patient=new_patient,
                        therapy_id=therapy_id,
                        chair_id=chair_id,
                        dose=dose,
                        dose_reason=dose_reason or None,
                        client_token=token,
                    ),
                    "Walk-in session added.",
                    at_panel=True,
                    rerun=False,
                )
                if created is not None:
                    select_session(created.id)
                    st.rerun()
