"""Audit log (quality, administrators): filter the trail by user, patient, session, action and date."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import streamlit as st

from infusion.clock import utcnow
from infusion.reads import audit_log
from ui import common as ui
from ui import forms

db = ui.get_db()
reader = ui.page_guard("audit")
clinic = ui.working_site(db, reader)  # the days of the filter are this site's (the header's picker)
st.header("Audit log")
st.caption(
    "Every write and every opening of a patient's session is recorded here and can never be changed "
    "or deleted (the database refuses it). Searching the log is recorded too. "
    f"Days are {clinic.name}'s ({clinic.timezone})."
)
scope = audit_log.reader_sites(db, reader)
if scope is not None:  # minimum necessary: a site-scoped reader sees their sites' events only
    st.caption(
        f"You see the events about {', '.join(scope) or 'no site'} only: the sites you hold your role at. "
        "Other sites' events and network events (sign-ins, accounts, the catalog, exports) are for "
        "network-wide quality staff and administrators."
    )

today = utcnow().astimezone(ZoneInfo(clinic.timezone)).date()
with forms.entry_form("audit_filters") as form:
    k = form.key
    c = st.columns(3)
    start = c[0].date_input("From", value=today - timedelta(days=7), key=k("from"))
    end = c[1].date_input("To", value=today, key=k("to"))
    action = c[2].selectbox(
        "Action",
        [None, *audit_log.actions(db, reader)],
        key=k("action"),
        format_func=lambda a: "any" if a is None else a.replace("_", " "),
    )
    d = st.columns(3)
    user = d[0].text_input("User name contains", key=k("user"))
    mrn = d[1].text_input("Patient MRN", key=k("mrn"))
    session = d[2].number_input("Session id", value=None, step=1, key=k("session"))
    submitted = form.submit("Search", type="primary")

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
        st.download_button(  # audit_log.to_csv: the spreadsheet-safe cells of infusion/exports/csv_writer
            "Download these events (CSV)",
            audit_log.to_csv(frame),
            file_name=f"chairside_audit_{shown.start}_{shown.end}.csv",
            mime="text/csv",
            key="audit_csv",
            on_click="ignore",
        )
else:
    st.info("Choose filters and press Search.")
