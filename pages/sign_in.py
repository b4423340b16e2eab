"""Sign in: local accounts, single sign-on when configured, and the first administrator."""

from __future__ import annotations

import streamlit as st

from infusion.accounts import auth
from infusion.accounts.actor import Actor
from infusion.errors import ChairsideError
from infusion.services.setup import clinic_settings, get_clinic, network_security
from ui import common as ui
from ui import shell

db = ui.get_db()
# Before sign-in no site is known: the page shows the first site's name; the account rules (password
# length, idle sign-out, lockout) are the network's, the strictest across the open sites, as the frame
# (dashboard.py) and the sign-in service (infusion.accounts.auth) apply them.
clinic = get_clinic(db)
settings = clinic_settings(clinic)
security = network_security(db)


def signed_in(who: Actor) -> None:
    shell.signed_in(db, who)


_, middle, _ = st.columns([1, 2, 1])
with middle:
    st.title(f"💉 {clinic.name}")
    ui.show_flash()
    if auth.needs_first_admin(db):
        st.subheader("Create the administrator")
        st.write(
            "This clinic database is new. Create the first administrator account; "
            "the administrator then adds nurses and other staff."
        )
        with st.form("first_admin"):
            username = st.text_input("User name", key="fa_username")
            name = st.text_input("Your name", key="fa_name")
            password = st.text_input(
                f"Password (at least {security.min_password_length} characters)", type="password", key="fa_password"
            )
            again = st.text_input("Repeat the password", type="password", key="fa_again")
            if st.form_submit_button("Create administrator", type="primary"):
                if password != again:
                    st.error("The two passwords differ.")
                else:
                    try:
                        who = auth.create_first_admin(db, username=username, display_name=name, password=password)
                    except ChairsideError as error:
                        ui.show_error(error)
                    else:
                        signed_in(who)
    else:
        sso_configured = "auth" in st.secrets if st.secrets.load_if_toml_exists() else False
        if sso_configured and st.user.is_logged_in:
            try:
                email = st.user.get("email")
                signed_in(auth.sso_actor(db, email if isinstance(email, str) else None))
            except ChairsideError as error:
                st.error(str(error))
                st.button("Sign out of single sign-on", on_click=st.logout)
        with st.form("sign_in"):
            username = st.text_input("User name", key="si_username", autocomplete="username")
            password = st.text_input("Password", type="password", key="si_password", autocomplete="current-password")
            if st.form_submit_button("Sign in", type="primary", width="stretch"):
                try:
                    who = auth.authenticate(db, username, password)
                except ChairsideError as error:
                    st.error(str(error), icon="🔒")
                else:
                    signed_in(who)
        if sso_configured:
            st.button("Sign in with single sign-on", on_click=st.login, width="stretch")
        st.caption(
            f"You are signed out after {security.idle_sign_out_minutes} minutes without activity: tablets are shared."
        )
        if settings.demo_mode:
            from infusion.demo import DEMO_PASSWORD, STAFF

            accounts = ", ".join(
                f"`{user}` ({role.replace('_', ' ')})"
                for user, _, role in STAFF
                if user in ("maria.lopez", "karen.miller", "paul.richards", "linda.cho", "it.admin")
            )
            st.info(
                f"**Demo clinic.** Demo accounts, password `{DEMO_PASSWORD}`: {accounts}. "
                "Never use demo data for real patients."
            )
