"""Chairside entry point: page setup, who is charting, and navigation.

Run with `streamlit run dashboard.py`. The database comes from
CHAIRSIDE_DATABASE_URL (default: chairside.sqlite here); migrations run on start.
"""
from __future__ import annotations

import logging

import streamlit as st

from infusion.audit import Actor
from infusion.errors import ChairsideError
from infusion.setup import add_staff, get_clinic, list_staff
from pages import _ui as ui

st.set_page_config(page_title="Chairside", page_icon="💉", layout="wide")
log = logging.getLogger("chairside")


def sidebar() -> None:
    database = ui.get_db()
    clinic = get_clinic(database)
    st.sidebar.markdown(f"### 💉 {clinic.name}")
    staff = [u for u in list_staff(database) if u.role in ("nurse", "charge_nurse")]
    if not staff:
        st.sidebar.info("No nurses yet. Add yourself to start charting.")
        with st.sidebar.form("first_nurse"):
            name = st.text_input("Your name", key="first_nurse_name")
            if st.form_submit_button("Add me as a nurse"):
                try:
                    user = add_staff(database, Actor(None, name or "unknown"), name, "nurse")
                except ChairsideError as error:
                    st.error(str(error))
                else:
                    st.session_state["actor"] = Actor(user.id, user.display_name, user.role)
                    st.rerun()
        return
    by_id = {u.id: u for u in staff}
    current = ui.actor()
    ids = list(by_id)
    index = ids.index(current.user_id) if current and current.user_id in by_id else None
    chosen = st.sidebar.selectbox(
        "Charting as", ids, index=index, format_func=lambda i: by_id[i].display_name,
        placeholder="Pick your name", key="charting_as",
        help="Every save is recorded under this name (sign-in comes later).",
    )
    if chosen is not None:
        user = by_id[chosen]
        st.session_state["actor"] = Actor(user.id, user.display_name, user.role)


pages = [
    st.Page("pages/chairside.py", title="Chairside", icon="🩺", default=True),
    st.Page("pages/setup.py", title="Setup", icon="⚙️"),
]
navigation = st.navigation(pages)
sidebar()
try:
    navigation.run()
except Exception:  # noqa: BLE001 - the last line of defence: no traceback on a tablet
    log.exception("unexpected error on page %s", navigation.title)
    st.error("Something went wrong showing this page. Nothing was saved by the step that failed; "
             "reload the page and try again. The error has been logged.", icon="🚫")
