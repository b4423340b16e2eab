"""Session record: find any session and see its timeline and full record (read-only)."""

from __future__ import annotations

from datetime import date

import streamlit as st

from infusion.charts import timeline
from infusion.clock import format_local, local_date, utcnow
from infusion.reads import sessions as views
from ui import common as ui
from ui import forms

db = ui.get_db()
reader = ui.page_guard("session")
st.header("Session record")

with forms.entry_form("find_session") as form:
    c = st.columns([2, 2, 1])
    mrn = c[0].text_input("Patient MRN", key=form.key("mrn"))
    # the site's calendar day: in the evening the UTC date is already tomorrow's
    today = local_date(utcnow(), ui.working_site(db, reader).timezone)
    day = c[1].date_input("Day", value=today, key=form.key("day"))
    any_day = c[2].checkbox("Any day", key=form.key("any_day"))
    form.submit("Find", type="primary")

found = views.find_sessions(db, reader, mrn=mrn or None, day=None if any_day or not isinstance(day, date) else day)
if found.empty:
    st.info("No sessions match. Try another day, or tick 'Any day' with an MRN.")
    st.stop()
labels = {int(r.id): f"{r.date} · {r.patient} · {r.therapy} · {r.chair} · {r.status}" for r in found.itertuples()}
chosen = st.selectbox("Session", list(labels), format_func=lambda i: labels[i], key="find_pick")
detail = views.session_detail(db, reader, chosen) if chosen is not None else None
if detail is None:
    st.info("That session no longer exists.")
    st.stop()
row, tz = detail.session, detail.clinic.timezone
st.markdown(
    f"### {detail.patient.given_name} {detail.patient.family_name} · {detail.therapy.brand or detail.therapy.name} "
    f"#{row.infusion_number} · {detail.chair.name}"
)
st.caption(
    f"MRN {detail.patient.mrn} · {ui.STATUS_CHIPS[row.status]} · checked in "
    f"{format_local(row.checked_in_at, tz, '%d %b %H:%M')} · IV {format_local(row.iv_started_at, tz)}–"
    f"{format_local(row.iv_stopped_at, tz)} · discharged {format_local(row.discharged_at, tz)}"
)
st.plotly_chart(
    timeline.session_timeline(detail), width="stretch", key="session_timeline", config={"displayModeBar": False}
)
ui.csv_download(
    "Timeline data (CSV)",
    timeline.timeline_frame(detail),
    file_name=f"session_{row.id}_timeline.csv",
    key="session_timeline_csv",
)
for title, frame in (
    ("Vitals", views.vitals_table(detail)),
    ("Reactions", views.reactions_table(detail)),
    ("Rate", views.rates_table(detail)),
    ("Premedication", views.premeds_table(detail)),
):
    if not frame.empty:
        st.markdown(f"**{title}**")
        st.dataframe(ui.as_charted(frame), hide_index=True, width="stretch")
