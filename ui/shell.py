"""The frame around every page: who is signed in, idle sign-out and the header.

The idle sign-out is the network's (`AccountSecurity`, the strictest across the open sites,
`infusion.services.setup.network_security`): before sign-in no site is known, and an account is the
network's, so no site's settings decide it alone.

The router (`dashboard.py`) calls these in order; pages never do.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import streamlit as st

from db.engine import Database
from db.models import Clinic
from infusion.accounts import auth, tokens
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import ROLE_LABELS, WALL_DISPLAY
from infusion.clock import format_local, utcnow
from infusion.errors import ChairsideError
from infusion.services import setup
from infusion.settings import AccountSecurity
from ui import common as ui

# Tablet first: less padding around the page so two columns fit at 1024 px.
COMPACT_CSS = """<style>
[data-testid="stMainBlockContainer"] {padding: 3.5rem 1rem 2rem 1rem; max-width: 100%;}
.st-key-session_panel {scroll-margin-top: 4.5rem;}  /* the patient's name clears the sticky top bar */
</style>"""


TOKEN_KEY = "_signin_token"
COOKIE_SCRIPT_KEY = "_cookie_script"


def _cookie_script(value: str | None, *, max_age: timedelta = tokens.MAX_AGE) -> str:
    """Set (or, with None, clear) the sign-in cookie in this browser; Secure when served over https."""
    if value is None:
        body = f"{tokens.COOKIE}=; path=/; max-age=0; SameSite=Strict"
    else:
        body = f"{tokens.COOKIE}={value}; path=/; max-age={int(max_age.total_seconds())}; SameSite=Strict"
    return (
        "<script>(function(){"
        f"var c = '{body}'; if (location.protocol === 'https:') {{ c += '; Secure'; }}"
        "document.cookie = c;})();</script>"
    )


def signed_in(database: Database, who: Actor) -> None:
    """Remember the sign-in on the server and in this browser, so a reload keeps it; then open the app."""
    st.session_state["actor"] = who
    st.session_state["_last_activity"] = utcnow()
    if who.user_id is not None:
        issued = tokens.issue(database, who)
        st.session_state[TOKEN_KEY] = issued.token
        st.session_state[COOKIE_SCRIPT_KEY] = _cookie_script(issued.token)
    st.rerun()


def pair_display(database: Database, admin: Actor, screen: str, site_id: int | None = None) -> None:
    """This browser becomes the named wall display of a site's board: the administrator is signed out here."""
    issued = tokens.issue_display(database, admin, screen, site_id=site_id)
    auth.sign_out(database, admin, "paired this browser as a wall display")
    old = st.session_state.get(TOKEN_KEY)
    if old:
        tokens.revoke(database, old, "paired as wall display")
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    paired = tokens.resume(database, issued.token, 1)
    st.session_state["actor"] = paired or tokens.display_actor(screen.strip(), site_id)
    st.session_state[TOKEN_KEY] = issued.token
    st.session_state[COOKIE_SCRIPT_KEY] = _cookie_script(issued.token, max_age=tokens.DISPLAY_MAX_AGE)
    st.rerun()


def is_wall(who: Actor | None) -> bool:
    return who is not None and who.role == WALL_DISPLAY


def wall_still_paired(database: Database, security: AccountSecurity, now: datetime) -> bool:
    """A wall display runs only while its pairing stands (an administrator can stop it at once)."""
    token = st.session_state.get(TOKEN_KEY)
    return tokens.resume(database, token, security.idle_sign_out_minutes, now=now) is not None


def leave_stopped_wall(database: Database, security: AccountSecurity) -> None:
    """A wall display an administrator stopped: forget it here and load the sign-in page afresh
    (a screen nobody touches must not sit on a blank or stale board)."""
    sign_out(database, security, "wall display stopped")
    st.html(
        "<script>window.location.assign(window.location.pathname.replace(/[^/]*$/, ''));</script>",
        unsafe_allow_javascript=True,
    )
    st.stop()


def write_cookie() -> None:
    """Run the pending cookie change once (after sign-in or sign-out)."""
    script = st.session_state.pop(COOKIE_SCRIPT_KEY, None)
    if script:
        st.html(script, unsafe_allow_javascript=True)


def sign_out(database: Database, security: AccountSecurity, reason: str) -> None:
    """End the sign-in: audit it, revoke this browser's token, forget everything this tab held."""
    who = ui.actor()
    if who is not None:
        auth.sign_out(database, who, reason)
    tokens.revoke(database, st.session_state.get(TOKEN_KEY) or _browser_token(), reason)
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    st.query_params.clear()  # the address names no patient's session for whoever signs in next
    st.session_state[COOKIE_SCRIPT_KEY] = _cookie_script(None)
    if reason == "idle":
        ui.flash(f"Signed out after {security.idle_sign_out_minutes} minutes without activity.")


def _browser_token() -> str | None:
    try:
        value = st.context.cookies.get(tokens.COOKIE)
    except Exception:  # noqa: BLE001 - no browser context (bare runs, tests)
        return None
    return value if isinstance(value, str) else None


def resume_from_browser(database: Database, security: AccountSecurity, now: datetime) -> None:
    """After a reload or a tablet waking up: the browser's token signs the user back in."""
    if ui.actor() is not None:
        return
    token = _browser_token()
    who = tokens.resume(database, token, security.idle_sign_out_minutes, now=now)
    if who is not None:
        st.session_state["actor"] = who
        st.session_state[TOKEN_KEY] = token
        st.session_state["_last_activity"] = now


def refresh_actor(database: Database, security: AccountSecurity, now: datetime) -> None:
    """A disabled account is signed out, a changed role applies, and an idle tab signs out, at the next run.
    The site picked in this tab stays (`auth.current_actor` keeps `site_id`; a site the person no longer
    holds is passed over by the services, which fall back to one they hold)."""
    resume_from_browser(database, security, now)
    who = ui.actor()
    if is_wall(who) and not wall_still_paired(database, security, now):
        sign_out(database, security, "wall display stopped")
        who = None
    if who is not None:
        fresh = auth.current_actor(database, who)
        if fresh is None:
            sign_out(database, security, "account disabled")
            ui.flash("Your account has been disabled; ask an administrator.")
        else:
            st.session_state["actor"] = fresh
    if (
        ui.actor() is not None
        and not is_wall(ui.actor())
        and auth.idle_expired(st.session_state.get("_last_activity"), now, security.idle_sign_out_minutes)
    ):
        sign_out(database, security, "idle")
    elif ui.actor() is not None:
        tokens.touch(database, st.session_state.get(TOKEN_KEY), now=now)
    st.session_state["_last_activity"] = now


def idle_watch(database: Database, security: AccountSecurity) -> None:
    """A timer so an idle screen clears itself, and a disabled account leaves, without waiting for a tap."""

    @st.fragment(run_every=60)
    def watch() -> None:
        who = ui.actor()
        idle = not is_wall(who) and auth.idle_expired(
            st.session_state.get("_last_activity"), utcnow(), security.idle_sign_out_minutes
        )
        gone = who is not None and (
            not wall_still_paired(database, security, utcnow())
            if is_wall(who)
            else auth.current_actor(database, who) is None
        )
        if idle or gone:
            st.rerun(scope="app")

    watch()


SITE_PICKER = "site_picker"


def _pick_site(database: Database) -> None:
    """The header picker's choice: this tab works there now, and the next sign-in starts there."""
    who, site_id = ui.actor(), st.session_state.get(SITE_PICKER)
    if who is None or site_id is None:
        return
    try:
        setup.choose_site(database, who, site_id)
    except ChairsideError as error:
        st.session_state["_site_refused"] = str(error)
        return
    st.session_state["actor"] = replace(who, site_id=site_id)


def site_picker(database: Database, who: Actor, site: Clinic | None) -> None:
    """People who hold more than one site pick where they work; everyone else sees their site's name."""
    refused = st.session_state.pop("_site_refused", None)
    if refused:
        st.error(refused, icon="🏥")
    sites = setup.my_sites(database, who)
    if site is None:
        st.markdown("🏥 _no site_")
        return
    if len(sites) <= 1 or is_wall(who):
        st.markdown(f"🏥 **{site.name}**")
        return
    by_id = {s.id: s for s in sites} | {site.id: site}
    if st.session_state.get(SITE_PICKER) != site.id:
        st.session_state[SITE_PICKER] = site.id  # the site the services use now (picked, or remembered)
    st.selectbox(
        "Site",
        list(by_id),
        format_func=lambda i: f"🏥 {by_id[i].name} ({by_id[i].code})",
        key=SITE_PICKER,
        on_change=_pick_site,
        args=(database,),
        label_visibility="collapsed",
        help="The site you work in: Chairside, the board, the due list and follow-up show this site.",
    )


def header(database: Database, security: AccountSecurity, now: datetime) -> None:
    """The working site and its local time, the site picker, and the person's menu."""
    who = ui.actor()
    assert who is not None
    st.markdown(COMPACT_CSS, unsafe_allow_html=True)
    try:
        site: Clinic | None = setup.working_clinic(database, who)
    except ChairsideError:
        site = None  # holds no site yet: the page says so
    title, where, user = st.columns([2.2, 1.4, 1], vertical_alignment="center")
    if site is not None:
        title.markdown(f"**💉 Chairside** · {format_local(now, site.timezone, '%a %d %b, %H:%M')}")
    else:
        title.markdown("**💉 Chairside**")
    with where:
        site_picker(database, who, site)
    if is_wall(who):
        user.markdown(f"🖥 {who.name}")
        return
    with user.popover(f"👤 {who.name} · {ROLE_LABELS.get(who.role, who.role)}", width="stretch"):
        if st.button("Sign out", key="sign_out", width="stretch"):
            sign_out(database, security, "signed out")
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
