"""Chairside: today's sessions by urgency, and the chosen session's next step.

UI only. Every save goes through a service function in `infusion/`, which
validates, writes and audits in one transaction, and every form goes through
`ui.forms` (nothing typed is lost, a double tap saves once). Writes that change
the session's state carry the version the nurse saw, so a stale screen cannot
overwrite a newer record. The parts live in `ui/chairside/`.
"""

from __future__ import annotations

import streamlit as st

from infusion.clock import utcnow
from infusion.errors import NotFoundError, PermissionDenied
from infusion.reads import sessions as views
from ui import common as ui
from ui.chairside import infusing, record, steps
from ui.chairside.context import PANEL_KEY, Chairside, close_session, reopen_after_reload, scroll_panel_into_view
from ui.chairside.header import header
from ui.chairside.patient import news2_scale_panel
from ui.chairside.session_list import session_list, walk_in_form
from ui.chairside.vitals import vitals_form

db = ui.get_db()
nurse = ui.page_guard("chairside")
clinic = ui.working_site(db, nurse)  # the site picked in the header: its zone, units and chairs
cx = Chairside(
    db=db,
    nurse=nurse,
    tz=clinic.timezone,
    temperature_unit=clinic.temperature_unit,
    weight_unit=clinic.weight_unit,
    seen_versions=st.session_state.setdefault("seen_versions", {}),
    site_id=clinic.id,
)


def during_infusion(detail: views.SessionDetail) -> None:
    """Infusing, paused or in observation: tabs that stay where the nurse left them across saves."""
    status = detail.session.status
    infusing.open_reactions(cx, detail)
    third = "🏠 Discharge" if status == "observation" else "💧 Rate"
    labels = ["🩺 Vitals", "⚠️ Reaction", third, "📋 Record", "📈 Timeline"]
    group = "observation" if status == "observation" else "running"
    vitals, reaction, action, record_tab, timeline_tab = st.tabs(
        labels, key=f"tabs_{detail.session.id}_{group}", on_change="rerun"
    )
    with vitals:
        vitals_form(cx, detail, kind="vitals")
    with reaction:
        infusing.reaction_form(cx, detail)
    with action:
        if status == "observation":
            infusing.discharge_form(cx, detail)
        else:
            infusing.rate_controls(cx, detail)
            infusing.stop_form(cx, detail)
    with record_tab:
        record.history(cx, detail)
    with timeline_tab:
        record.timeline_panel(cx, detail)


def before_or_after(detail: views.SessionDetail) -> None:
    status = detail.session.status
    if status == "scheduled":
        steps.step_scheduled(cx, detail)
    elif status == "checked_in":
        steps.step_checked_in(cx, detail)
    elif status == "ready":
        steps.step_ready(cx, detail)
    if status in ("checked_in", "ready"):
        with st.expander("🩺 Record another set of vitals", key=f"more_vitals_{detail.session.id}", on_change="rerun"):
            vitals_form(cx, detail, kind="vitals")
    record.history(cx, detail)
    if status in ("discharged", "deferred"):
        with st.expander("📈 Timeline"):
            record.timeline_panel(cx, detail)
    if status == "discharged":
        with st.expander("🖨 Education and patient summary"):
            infusing.education_form(cx, detail)


def session_panel(session_id: int) -> None:
    try:
        detail = views.session_detail(db, nurse, session_id)
    except (PermissionDenied, NotFoundError) as error:  # an address naming another site's session
        close_session()
        st.warning(str(error), icon="🔒")
        return
    if detail is None:
        close_session()
        st.info("That session no longer exists.")
        return
    header(cx, detail, utcnow())
    ui.show_flash()  # the outcome of the last step, where the next step appears
    status = detail.session.status
    if status in ("infusing", "paused", "observation"):
        during_infusion(detail)
    else:
        before_or_after(detail)
    if status not in ("discharged", "deferred", "cancelled"):
        news2_scale_panel(cx, detail)
    if status not in ("scheduled", "cancelled"):
        with st.expander("✏️ Correct the record / addendum", key=f"amend_open_{session_id}", on_change="rerun"):
            record.amend_panel(cx, detail)
    # The version on screen now is the one the nurse's next state change is checked against.
    cx.seen_versions[session_id] = detail.session.version


reopen_after_reload()
cards = views.today_sessions(db, nurse)
left, right = st.columns([1, 2.6], gap="small")
with left:
    session_list(cx, cards)
    walk_in_form(cx)
with right:
    chosen = st.session_state.get("selected_session")
    if chosen is None:
        ui.show_flash()
        st.info("Pick a session on the left, or add a walk-in.")
    else:
        with st.container(key=PANEL_KEY):
            session_panel(chosen)
        scroll_panel_into_view()
