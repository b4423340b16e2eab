"""The frame around every page: who is signed in, idle sign-out and the header.

The router (`dashboard.py`) calls these in order; pages never do.
"""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from db.engine import Database
from db.models import Clinic
from infusion.accounts import auth
from infusion.accounts.permissions import ROLE_LABELS
from infusion.clock import format_local, utcnow
from infusion.errors import ChairsideError
from infusion.settings import ClinicSettings
from ui import common as ui

# Tablet first: less padding around the page so two columns fit at 1024 px.
COMPACT_CSS = """<style>
[data-testid="stMainBlockContainer"] {padding: 3.5rem 1rem 2rem 1rem; max-width: 100%;}
</style>"""


def sign_out(database: Database, settings: ClinicSettings, reason: str) -> None:
    """End the sign-in: audit it, forget everything this browser tab held."""
    who = ui.actor()
    if who is not None:
        auth.sign_out(database, who, reason)
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if reason == "idle":
        ui.flash(f"Signed out after {settings.idle_sign_out_minutes} minutes without activity.")


def refresh_actor(database: Database, settings: ClinicSettings, now: datetime) -> None:
    """A disabled account is signed out, a changed role applies, and an idle tab signs out, at the next run."""
    who = ui.actor()
    if who is not None:
        fresh = auth.current_actor(database, who)
        if fresh is None:
            sign_out(database, settings, "account disabled")
            ui.flash("Your account has been disabled; ask an administrator.")
        else:
            st.session_state["actor"] = fresh
    if ui.actor() is not None and auth.idle_expired(
        st.session_state.get("_last_activity"), now, settings.idle_sign_out_minutes
    ):
        sign_out(database, settings, "idle")
    st.session_state["_last_activity"] = now


def idle_watch(settings: ClinicSettings) -> None:
    """A timer so an idle screen clears itself, not only at the next tap."""

    @st.fragment(run_every=60)
    def watch() -> None:
        if auth.idle_expired(st.session_state.get("_last_activity"), utcnow(), settings.idle_sign_out_minutes):
            st.rerun(scope="app")

    watch()


def header(database: Database, clinic: Clinic, settings: ClinicSettings, now: datetime) -> None:
    who = ui.actor()
    assert who is not None
    st.markdown(COMPACT_CSS, unsafe_allow_html=True)
    title, user = st.columns([3, 1], vertical_alignment="center")
    title.markdown(f"**💉 {clinic.name}** · {format_local(now, clinic.timezone, '%a %d %b, %H:%M')}")
    with user.popover(f"👤 {who.name} · {ROLE_LABELS.get(who.role, who.role)}", width="stretch"):
        if st.button("Sign out", key="sign_out", width="stretch"):
            sign_out(database, settings, "signed out")
            st.rerun()
        with st.form("own_password", clear_on_submit=True):
            current = st.text_input("Current password", type="password", key="own_current_password")
            new = st.text_input("New password", type="password", key="own_new_password")
            again = st.text_input("Repeat", type="password", key="own_new_password_again")
            if st.form_submit_button("Change my password"):
                if new != again:
                    st.error("The two passwords differ.")
                else:
                    try:
                        auth.set_password(database, who, who.user_id or -1, new, current_password=current)
                    except ChairsideError as error:
                        st.error(str(error))
                    else:
                        st.success("Password changed.")


def database_unreachable() -> None:
    """A plain page while the clinic database cannot be opened; it retries by itself."""
    st.error(
        "**The clinic database is not reachable.** Nothing you typed on this screen was saved. "
        "Chairside tries again every 10 seconds; if this stays, call your IT contact.",
        icon="🔌",
    )

    @st.fragment(run_every=10)
    def retry() -> None:
        st.caption(f"Last try {utcnow():%H:%M:%S} UTC.")
        if st.session_state.get("_db_retry_armed"):
            st.rerun(scope="app")
        st.session_state["_db_retry_armed"] = True

    retry()
