"""Audit log (quality, administrators): filter the trail by user, patient, session, action and date."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from infusion.clock import utcnow
from infusion.reads import audit_log
from infusion.services.setup import get_clinic
from ui import common as ui

db = ui.get_db()
reader = ui.page_guard("audit")
clinic = get_clinic(db)
st.header("Audit log")
st.caption(
    "Every write and every opening of a patient's session is recorded here and can never be changed "
    "or deleted (the database refuses it). Searching the log is recorded too."
)

today = utcnow().date()
with st.form("audit_filters"):
    c = st.columns(3)
    start = c[0].date_input("From", value=today - timedelta(days=7), key="audit_from")
    end = c[1].date_input("To", value=today, key="audit_to")
    action = c[2].selectbox(
        "Action",
        [None, *audit_log.actions(db, reader)],
        key="audit_action",
        format_func=lambda a: "any" if a is None else a.replace("_", " "),
    )
    c = st.columns(3)
    user = c[0].text_input("User name contains", key="audit_user")
    mrn = c[1].text_input("Patient MRN", key="audit_mrn")
    session = c[2].number_input("Session id", value=None, step=1, key="audit_session")
    submitted = st.form_submit_button("Search", type="primary")

filters = audit_log.AuditFilters(
    start=start,
    end=end,
    user_name=user or None,
    patient_mrn=mrn or None,
    session_id=int(session) if session is not None else None,
    action=action,
)
result = ui.attempt(lambda: audit_log.search(db, reader, filters)) if submitted else None
if result is not None:
    frame, total = result
    st.session_state["_audit_result"] = (frame, total, filters)
stored = st.session_state.get("_audit_result")
if stored:
    frame, total, shown = stored
    st.markdown(f"**{total}** matching events" + (f" (showing the newest {len(frame)})" if total > len(frame) else ""))
    if frame.empty:
        st.info("No audit events match these filters.")
    else:
        st.dataframe(frame, hide_index=True, width="stretch")
        st.download_button(
            "Download these events (CSV)",
            audit_log.to_csv(frame),
            file_name=f"chairside_audit_{shown.start}_{shown.end}.csv",
            mime="text/csv",
        )
else:
    st.info("Choose filters and press Search.")
