"""Pair a browser with a named wall screen: an administrator does it at the screen, once."""

from __future__ import annotations

import streamlit as st

from db.engine import Database
from infusion.accounts import tokens
from infusion.accounts.actor import Actor
from infusion.services import setup
from ui import forms, shell


def pair_here(db: Database, admin: Actor, site_id: int) -> None:
    """Turn this browser into a read-only wall display of one site's board (initials only, no idle
    sign-out); the site starts at the one the administrator works in (`site_id`)."""
    with st.expander("🖥 Make this browser a wall display", key="pair_open", on_change="rerun"):
        st.caption(
            "For a screen on the wall: it shows this board only, large and dark, patients by initials, "
            "and is never signed out for inactivity. You are signed out here; stop the screen on "
            f"Administration → Wall displays. It stays paired for {tokens.DISPLAY_MAX_AGE.days} days."
        )
        with forms.entry_form("pair_display") as form:
            screen = st.text_input(
                "Screen name",
                key=form.key("screen"),
                placeholder="e.g. Infusion bay A",
            )
            sites = {s.id: s for s in setup.my_sites(db, admin)}
            ids = list(sites) or [site_id]
            site = st.selectbox(
                "Board of site",
                ids,
                index=ids.index(site_id) if site_id in ids else 0,
                format_func=lambda i: f"{sites[i].name} ({sites[i].code})" if i in sites else str(i),
                key=form.key("site"),
            )
            if form.submit("Pair this browser", type="primary"):
                form.save(lambda: shell.pair_display(db, admin, screen, site), "Paired.", rerun=False)
