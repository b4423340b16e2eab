"""Chairside entry point: page setup, who is charting, and navigation.

Run with `streamlit run dashboard.py`. The database comes from
CHAIRSIDE_DATABASE_URL (default: chairside.sqlite here); migrations run on start.
"""
from __future__ import annotations

import logging

import streamlit as st

from infusion.audit import Actor
from infusion.clock import format_local, utcnow
from infusion.errors import ChairsideError
from infusion.setup import add_staff, get_clinic, list_staff
from pages import _ui as ui

st.set_page_config(page_title="Chairside", page_icon="💉", layout="wide")
log = logging.getLogger("chairside")
# Tablet first: less padding around the page so two columns fit at 1024 px.
COMPACT_CSS = """<style>
[data-testid="stMainBlockContainer"] {padding: 3.5rem 1rem 2rem 1rem; max-width: 100%;}
</style>"""


def who_is_charting() -> None:
    """The clinic name and the 'charting as' picker, above every page (no sidebar: tablets need the width)."""
    database = ui.get_db()
    clinic = get_clinic(database)
    title, picker = st.columns([3, 1], vertical_alignment="center")
    title.markdown(f"**💉 {clinic.name}** · {format_local(utcnow(), clinic.timezone, '%a %d %b, %H:%M')}")
    staff = [u for u in list_staff(database) if u.role in ("nurse", "charge_nurse")]
    if not staff:
        title.info("No nurses yet. Add yourself to start charting.")
        with picker.form("first_nurse"):
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
    if current is not None and current.user_id in by_id and st.session_state.get("charting_as") is None:
        st.session_state["charting_as"] = current.user_id
    chosen = picker.selectbox(
        "Charting as", ids, index=None, format_func=lambda i: by_id[i].display_name,
        placeholder="Charting as… pick your name", key="charting_as", label_visibility="collapsed",
        help="Every save is recorded under this name (sign-in comes later).",
    )
    if chosen is not None:
        user = by_id[chosen]
        st.session_state["actor"] = Actor(user.id, user.display_name, user.role)


pages = [
    st.Page("pages/chairside.py", title="Chairside", icon="🩺", default=True),
    st.Page("pages/setup.py", title="Setup", icon="⚙️"),
]
navigation = st.navigation(pages, position="top")
st.markdown(COMPACT_CSS, unsafe_allow_html=True)
who_is_charting()
try:
    navigation.run()
except Exception:  # noqa: BLE001 - the last line of defence: no traceback on a tablet
    log.exception("unexpected error on page %s", navigation.title)
    st.error("Something went wrong showing this page. Nothing was saved by the step that failed; "
             "reload the page and try again. The error has been logged.", icon="🚫")
