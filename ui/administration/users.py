"""The Users tab: who may sign in, adding a user, and changing a user's role, password or access."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from db.engine import Database
from db.models import AppUser
from infusion.accounts import auth
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import ROLE_LABELS, ROLES
from infusion.settings import ClinicSettings
from ui import common as ui
from ui import forms

ACTIONS = ["Change role", "Reset password", "Disable", "Enable"]


def users_tab(db: Database, admin: Actor, settings: ClinicSettings) -> None:
    users = auth.list_users(db, admin)
    st.dataframe(
        [
            {
                "User name": u.username,
                "Name": u.display_name,
                "Role": ROLE_LABELS.get(u.role, u.role),
                "Active": u.active,
                "SSO e-mail": u.email or "",
                "Password set": bool(u.password_hash),
                "Locked until": u.locked_until,
            }
            for u in users
        ],
        hide_index=True,
        width="stretch",
    )
    add_user_form(db, admin, settings)
    edit_user_form(db, admin, {u.id: u for u in users})


def add_user_form(db: Database, admin: Actor, settings: ClinicSettings) -> None:
    """A refused user (name taken, short password) keeps everything typed, the reason beside the button."""
    with forms.entry_form("add_user") as form:
        k = form.key
        st.markdown("**Add a user**")
        c = st.columns(4)
        username = c[0].text_input("User name", key=k("username"), max_chars=ui.limit(AppUser, "username"))
        display = c[1].text_input("Name", key=k("name"), max_chars=ui.limit(AppUser, "display_name"))
        role = c[2].selectbox("Role", ROLES, format_func=lambda r: ROLE_LABELS[r], key=k("role"))
        email = c[3].text_input("SSO e-mail (optional)", key=k("email"), max_chars=ui.limit(AppUser, "email"))
        password = st.text_input(
            f"Initial password (≥ {settings.min_password_length} characters; empty for single sign-on only)",
            type="password",
            key=k("password"),
        )
        if form.submit("Add user", type="primary"):
            form.save(
                lambda: auth.add_user(
                    db,
                    admin,
                    username=username,
                    display_name=display,
                    role=role,
                    password=password or None,
                    email=email or None,
                ),
                lambda user: f"User {user.username} added.",
            )


def edit_user_form(db: Database, admin: Actor, by_id: dict[int, AppUser]) -> None:
    with forms.entry_form("edit_user") as form:
        k = form.key
        st.markdown("**Change a user**")
        c = st.columns(3)
        chosen = c[0].selectbox(
            "User", list(by_id), format_func=lambda i: f"{by_id[i].display_name} ({by_id[i].username})", key=k("user")
        )
        new_role = c[1].selectbox(
            "Role",
            ROLES,
            format_func=lambda r: ROLE_LABELS[r],
            key=k("role"),
            index=ROLES.index(by_id[chosen].role) if chosen is not None else 0,
        )
        action = c[2].radio("Action", ACTIONS, key=k("action"))
        new_password = st.text_input("New password (for a reset)", type="password", key=k("password"))
        if form.submit("Apply"):
            if chosen is None:
                st.error("Not saved. Choose a user.", icon="🚫")
                return
            user_id: int = chosen
            steps: dict[str, Callable[[], object]] = {
                "Change role": lambda: auth.change_role(db, admin, user_id, new_role),
                "Reset password": lambda: auth.set_password(db, admin, user_id, new_password),
                "Disable": lambda: auth.set_active(db, admin, user_id, False),
                "Enable": lambda: auth.set_active(db, admin, user_id, True),
            }
            form.save(steps[action], f"{action}: done.")
