"""Chairside entry point: sign-in, idle sign-out, and the role → pages map.

Run with `streamlit run dashboard.py` (add `-- --demo` to load the demo clinic
into an empty database). The database comes from CHAIRSIDE_DATABASE_URL
(default: chairside.sqlite here); migrations run on start.
"""

from __future__ import annotations

import logging
import sys

import streamlit as st

from infusion.accounts import auth
from infusion.accounts.permissions import PAGE_ROLES, ROLE_LABELS
from infusion.clock import format_local, utcnow
from infusion.errors import ChairsideError
from infusion.services.setup import clinic_settings, get_clinic
from ui import common as ui

st.set_page_config(page_title="Chairside", page_icon="💉", layout="wide")
log = logging.getLogger("chairside")
# Tablet first: less padding around the page so two columns fit at 1024 px.
COMPACT_CSS = """<style>
[data-testid="stMainBlockContainer"] {padding: 3.5rem 1rem 2rem 1rem; max-width: 100%;}
</style>"""

PAGES = [  # (key, file, title, icon)
    ("chairside", "pages/chairside.py", "Chairside", "🩺"),
    ("session", "pages/session.py", "Session record", "📋"),
    ("board", "pages/board.py", "Chair board", "🪑"),
    ("due", "pages/due.py", "Due list", "📅"),
    ("follow_up", "pages/follow_up.py", "Follow-up calls", "📞"),
    ("trends", "pages/trends.py", "Trends", "📈"),
    ("export", "pages/export.py", "Exports", "⬇️"),
    ("audit", "pages/audit.py", "Audit log", "🔎"),
    ("administration", "pages/administration.py", "Administration", "⚙️"),
]

if "--demo" in sys.argv[1:]:
    ui.load_demo_once()
database = ui.get_db()
clinic = get_clinic(database)
settings = clinic_settings(clinic)


def sign_out(reason: str) -> None:
    who = ui.actor()
    if who is not None:
        auth.sign_out(database, who, reason)
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if reason == "idle":
        ui.flash(f"Signed out after {settings.idle_sign_out_minutes} minutes without activity.")


# A disabled account is signed out, and a changed role applies, at the next interaction.
if ui.actor() is not None:
    fresh = auth.current_actor(database, ui.actor())
    if fresh is None:
        sign_out("account disabled")
        ui.flash("Your account has been disabled; ask an administrator.")
    else:
        st.session_state["actor"] = fresh

# Idle sign-out: checked on every interaction, and by a timer so an idle screen clears itself.
now = utcnow()
if ui.actor() is not None and auth.idle_expired(
    st.session_state.get("_last_activity"), now, settings.idle_sign_out_minutes
):
    sign_out("idle")
st.session_state["_last_activity"] = now


@st.fragment(run_every=60)
def idle_watch() -> None:
    if auth.idle_expired(st.session_state.get("_last_activity"), utcnow(), settings.idle_sign_out_minutes):
        st.rerun(scope="app")


def header() -> None:
    who = ui.actor()
    assert who is not None
    title, user = st.columns([3, 1], vertical_alignment="center")
    title.markdown(f"**💉 {clinic.name}** · {format_local(now, clinic.timezone, '%a %d %b, %H:%M')}")
    with user.popover(f"👤 {who.name} · {ROLE_LABELS.get(who.role, who.role)}", width="stretch"):
        if st.button("Sign out", key="sign_out", width="stretch"):
            sign_out("signed out")
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


who = ui.actor()
if who is None:
    navigation = st.navigation([st.Page("pages/sign_in.py", title="Sign in", icon="🔐")], position="hidden")
else:
    allowed = [key for key, *_ in PAGES if who.role in PAGE_ROLES[key]]
    pages = [
        st.Page(
            path,
            title=title,
            icon=icon,
            default=(key == allowed[0]) if allowed else False,
            visibility="visible" if key in allowed else "hidden",
        )
        for key, path, title, icon in PAGES
    ]
    navigation = st.navigation(pages, position="top")
    st.markdown(COMPACT_CSS, unsafe_allow_html=True)
    header()
    idle_watch()

try:
    navigation.run()
except Exception:  # noqa: BLE001 - the last line of defence: no traceback on a tablet
    log.exception("unexpected error on page %s", navigation.title)
    st.error(
        "Something went wrong showing this page. Nothing was saved by the step that failed; "
        "reload the page and try again. The error has been logged.",
        icon="🚫",
    )
