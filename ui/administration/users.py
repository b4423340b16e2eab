"""The Users tab: who may sign in and where, adding a user, and changing a user's role, password, access
or sites."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from db.engine import Database
from db.models import AppUser, Clinic
from infusion.accounts import auth
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import ROLE_LABELS, ROLES
from infusion.services import setup
from infusion.settings import AccountSecurity
from ui import forms

ACTIONS = ["Change role", "Reset password", "Disable", "Enable"]


NETWORK = "Every site (network-wide)"


def users_tab(db: Database, admin: Actor, settings: AccountSecurity, sites: list[Clinic], working_id: int) -> None:
    users = auth.list_users(db, admin)
    held = setup.user_sites(db, admin)
    codes = {s.id: s.code for s in sites}
    st.dataframe(
        [
            {
                "User name": u.username,
                "Name": u.display_name,
                "Role": ROLE_LABELS.get(u.role, u.role),
                "Works at": NETWORK if u.network_wide else ", ".join(codes.get(i, str(i)) for i in held.get(u.id, [])),
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
    add_user_form(db, admin, settings, sites, working_id)
    edit_user_form(db, admin, {u.id: u for u in users})
    scope_form(db, admin, {u.id: u for u in users}, held, sites)


def _scope_fields(
    form: forms.EntryForm, sites: list[Clinic], *, wide: bool, chosen: list[int], field: str = ""
) -> tuple[bool, list[int]]:
    """Network-wide, or the sites the person works at (only open sites are offered, plus any held)."""
    labels = {s.id: f"{s.name} ({s.code})" for s in sites}
    options = [s.id for s in sites if s.active or s.id in chosen]
    c = st.columns([1, 2], vertical_alignment="bottom")
    network = c[0].checkbox(NETWORK, value=wide, key=form.key(f"network{field}"))
    picked = c[1].multiselect(
        "Sites (when not network-wide)",
        options,
        default=[i for i in chosen if i in options],
        format_func=lambda i: labels.get(i, str(i)),
        key=form.key(f"sites{field}"),
    )
    return network, list(picked)


def add_user_form(db: Database, admin: Actor, settings: AccountSecurity, sites: list[Clinic], working_id: int) -> None:
    """A refused user (name taken, short password) keeps everything typed, the reason beside the button."""
    with forms.entry_form("add_user") as form:
        k = form.key
        st.markdown("**Add a user**")
        c = st.columns(4)
        username = c[0].text_input("User name", key=k("username"))
        display = c[1].text_input("Name", key=k("name"))
        role = c[2].selectbox("Role", ROLES, format_func=lambda r: ROLE_LABELS[r], key=k("role"))
        email = c[3].text_input("SSO e-mail (optional)", key=k("email"))
        password = st.text_input(
            f"Initial password (≥ {settings.min_password_length} characters; empty for single sign-on only)",
            type="password",
            key=k("password"),
        )
        network, at_sites = _scope_fields(form, sites, wide=False, chosen=[working_id])
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
                    network_wide=network,
                    sites=at_sites,
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


def scope_form(
    db: Database, admin: Actor, by_id: dict[int, AppUser], held: dict[int, list[int]], sites: list[Clinic]
) -> None:
    """Where a person's role applies; the person is picked outside the form so the fields show their sites."""
    st.markdown("**Where a user works**")
    chosen = st.selectbox(
        "User",
        list(by_id),
        format_func=lambda i: f"{by_id[i].display_name} ({by_id[i].username})",
        key="scope_user",
    )
    if chosen is None:
        return
    user = by_id[chosen]
    with forms.entry_form(f"scope_{user.id}") as form:
        network, at_sites = _scope_fields(form, sites, wide=user.network_wide, chosen=held.get(user.id, []))
        if form.submit("Save sites"):
            form.save(
                lambda: setup.set_user_scope(db, admin, user.id, network_wide=network, sites=at_sites),
                f"{user.display_name}: sites saved.",
            )
