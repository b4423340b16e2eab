"""Booking: the next session of a listed patient, any patient and therapy, and moving a too-early booking.

Every form goes through `ui.forms`: a refused booking (dose without a reason, a date before
the minimum interval) keeps every field, with the reason beside the button.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import streamlit as st

from infusion.clock import format_local
from infusion.errors import ValidationError
from infusion.reads import due
from infusion.services import scheduling, setup
from ui.due.context import Due
from ui.forms import EntryForm, entry_form


def pick_site(cx: Due, key: str, preferred: int | None) -> int | None:
    """The site a booking is made at: where the patient is due if the person holds it, else the working
    site; a person who holds several open sites may change it (outside the form, so the chairs follow).
    Another site's name is never shown to someone who does not hold it."""
    default = preferred if preferred in cx.sites else cx.site_id
    if len(cx.sites) <= 1 or default is None:
        return default
    options = list(cx.sites)
    site_id: int = st.selectbox(
        "Site",
        options,
        index=options.index(default) if default in options else 0,
        format_func=lambda i: cx.sites[i][0],
        key=key,
        help="Where the session takes place: its chairs, and the date and time are that site's.",
    )
    if site_id != cx.site_id:
        name, zone = cx.sites[site_id]
        st.caption(f"Booking at {name}: {name}'s chairs; the date and time are {name}'s ({zone}).")
    return site_id


#: the tick box that books a chair another session holds at the time (`scheduling.schedule_session`)
SHARED_CHAIR = "Book it anyway: I have checked the chair is free"


def _book(
    cx: Due,
    form: EntryForm,
    patient_id: int | None,
    therapy_id: int | None,
    chair_id: int | None,
    when: Any,
    dose: float | None,
    dose_reason: str,
    early_reason: str,
    site_id: int | None = None,
    shared_chair: str | None = None,
) -> None:
    """Book through the service; a warning-only too-early date is booked and said in the message, which
    names the chair and, at another site than the working one, the site (in that site's time).

    The form's token goes with the booking, so a double tap books once."""
    token = form.token

    def action() -> tuple[Any, due.TooEarly | None]:
        if patient_id is None or therapy_id is None or chair_id is None:
            raise ValidationError({"booking": "Choose the patient, the therapy and the chair."})
        warning = due.check_too_early(cx.db, patient_id, therapy_id, when)
        row = scheduling.schedule_session(
            cx.db,
            cx.viewer,
            patient_id,
            therapy_id,
            chair_id,
            when,
            dose=dose,
            dose_reason=dose_reason,
            override_too_early_reason=early_reason,
            client_token=token,
            confirm_shared_chair=shared_chair,
        )
        return row, warning

    def message(result: tuple[Any, due.TooEarly | None]) -> str:
        row, warning = result
        chair = cx.chairs_at(site_id).get(row.chair_id) or cx.chair_names.get(row.chair_id) or "the chair chosen"
        where = f" at {cx.site_name(site_id)}" if site_id not in (None, cx.site_id) else ""
        text = (
            f"Booked {format_local(row.scheduled_at, cx.zone_of(site_id), '%a %d %b %Y %H:%M')} in "
            f"{chair}{where}, {row.dose:g} {row.dose_unit}."
        )
        if warning is not None and not warning.enforced:
            text += f" Note: {warning.message}"
        return text

    # booked at another site, the patient moves to that site's list and this form goes: the message
    # shows at the top of the page
    form.save(action, message, at_panel=site_id not in (None, cx.site_id), confirmable=True)


def schedule_form(
    cx: Due,
    name: str,
    patient_id: int,
    therapy_id: int,
    title: str,
    *,
    day: date,
    expected: float | None,
    unit: str,
    label: str,
    site_id: int | None = None,
) -> None:
    """Book the next session of one patient and therapy; the dose starts at the one the schedule expects.
    `site_id`: where the patient is due (last given); the booking starts there if the person holds it."""
    with st.expander(f"📅 Schedule · {title}", key=f"{name}_open", on_change="rerun"):
        at_site = pick_site(cx, f"{name}_site", site_id)
        chairs = cx.chairs_at(at_site)
        if not chairs:
            st.warning(f"No chairs at {cx.site_name(at_site) or 'this site'} yet: an administrator adds them.")
            return
        today = cx.today_at(at_site)
        with entry_form(name) as form:
            k = form.key
            st.markdown(
                f"**{label}** · expected dose "
                + (f"{expected:g} {unit}" if expected is not None else "not set (enter it)")
            )
            c1, c2, c3 = st.columns(3)
            # the chair's key names the site, so a chair of the site chosen before is never kept
            chair_id = c1.selectbox(
                "Chair",
                list(chairs),
                format_func=lambda i: chairs[i],
                key=k("chair" if at_site == cx.site_id else f"chair_{at_site}"),
            )
            picked_day = c2.date_input("Date", value=max(day, today), min_value=today, key=k("date"))
            picked_time = c3.time_input("Time", value=cx.first_slot(max(day, today), at_site), step=900, key=k("time"))
            c4, c5 = st.columns([1, 2])
            dose = c4.number_input(
                f"Dose ({unit})",
                value=float(expected) if expected is not None else None,
                min_value=0.0,
                step=1.0,
                key=k("dose"),
            )
            dose_reason = c5.text_input(
                "Reason for a different dose",
                key=k("dose_reason"),
                help="Needed only when the dose differs from the expected one.",
            )
            early_reason = st.text_input(
                "Reason to book before the allowed date",
                key=k("early_reason"),
                help="Needed only before the therapy's minimum interval (e.g. Ocrevus 5 months).",
            )
            shared = form.confirmation(SHARED_CHAIR)
            if form.submit("Schedule", type="primary"):
                when = cx.when(picked_day, picked_time, at_site)
                _book(
                    cx, form, patient_id, therapy_id, chair_id, when, dose, dose_reason, early_reason, at_site, shared
                )


def book_any(cx: Due) -> None:
    """Any patient and therapy, e.g. a first infusion (no history yet, so not on the lists above)."""
    st.subheader("Book a session")
    if not cx.can_book:
        st.caption("Booking is for nurses and charge nurses.")
        return
    if not cx.chair_names:
        st.warning("No chairs yet: an administrator adds them on the Administration page.")
        return
    patients = setup.search_patients(cx.db, limit=500, site_id=cx.site_id)
    if not patients:
        st.caption("No patients yet: add one as a walk-in on the Chairside page.")
        return
    p_by_id = {p.id: p for p in patients}
    t_by_id = {t.id: t for t in setup.list_therapies(cx.db)}
    at_site = pick_site(cx, "sched_any_site", cx.site_id)
    chairs = cx.chairs_at(at_site)
    if not chairs:
        st.warning(f"No chairs at {cx.site_name(at_site) or 'this site'} yet: an administrator adds them.")
        return
    today = cx.today_at(at_site)
    with entry_form("sched_any") as form:
        k = form.key
        c1, c2 = st.columns(2)
        patient_id = form.pick(
            "Patient",
            "patient",
            p_by_id,
            lambda i: f"{p_by_id[i].family_name}, {p_by_id[i].given_name} · {p_by_id[i].mrn}",
            "Pick the patient",
            at=c1,
        )
        therapy_id = form.pick(
            "Therapy",
            "therapy",
            t_by_id,
            lambda i: t_by_id[i].name + (f" ({t_by_id[i].brand})" if t_by_id[i].brand else ""),
            "Pick the therapy",
            at=c2,
        )
        c3, c4, c5 = st.columns(3)
        chair_id = c3.selectbox(
            "Chair",
            list(chairs),
            format_func=lambda i: chairs[i],
            key=k("chair" if at_site == cx.site_id else f"chair_{at_site}"),
        )
        picked_day = c4.date_input("Date", value=today, min_value=today, key=k("date"))
        picked_time = c5.time_input("Time", value=cx.first_slot(today, at_site), step=900, key=k("time"))
        c6, c7 = st.columns([1, 2])
        dose = c6.number_input("Dose (empty = the dose the schedule expects)", value=None, min_value=0.0, key=k("dose"))
        dose_reason = c7.text_input("Reason for a different dose", key=k("dose_reason"))
        early_reason = st.text_input("Reason to book before the allowed date", key=k("early_reason"))
        shared = form.confirmation(SHARED_CHAIR)
        if form.submit("Schedule", type="primary"):
            when = cx.when(picked_day, picked_time, at_site)
            _book(cx, form, patient_id, therapy_id, chair_id, when, dose, dose_reason, early_reason, at_site, shared)


def move_form(cx: Due, r: Any) -> None:
    """Move a too-early booking to a later date, or keep it with a reason (audited).

    A confirmed move takes the booking off this list, so its message shows at the top of the page.
    """
    with entry_form(f"move_{r.session_id}") as form:
        k = form.key
        c1, c2 = st.columns(2)
        new_day = c1.date_input("Move to", value=max(r.allowed_from, cx.today), min_value=cx.today, key=k("date"))
        booked_time = r.scheduled.astimezone(ZoneInfo(cx.tz)).time().replace(tzinfo=None)
        new_time = c2.time_input("Time", value=booked_time, step=900, key=k("time"))
        reason = st.text_input("Or keep this date: reason to book before the allowed date", key=k("reason"))
        shared = form.confirmation(SHARED_CHAIR)
        c3, c4 = st.columns(2)
        with c3:
            move = form.submit("Move booking", name="move", type="primary")
        with c4:
            keep = form.submit("Keep with reason", name="keep")
        if move or keep:
            form.save(
                lambda: scheduling.move_booking(
                    cx.db,
                    cx.viewer,
                    int(r.session_id),
                    r.scheduled if keep else cx.when(new_day, new_time),
                    expected_version=int(r.version),
                    override_too_early_reason=reason if keep else None,
                    confirm_shared_chair=shared,
                ),
                "Booking moved." if move else "Booking kept; the reason is in the audit log.",
                at_panel=True,
                confirmable=True,
            )
