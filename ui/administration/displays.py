"""Wall displays: the screens paired to show a site's chair board, and stopping one at once."""

from __future__ import annotations

import streamlit as st

from db.engine import Database
from infusion.accounts import tokens
from infusion.accounts.actor import Actor
from infusion.clock import format_local
from ui import forms


def _site(site_id: int | None, site_names: dict[int, str]) -> str:
    """The site a screen shows (paired before the network: the first site)."""
    if site_id is None:
        site_id = min(site_names, default=0)
    return site_names.get(site_id, "")


def displays_tab(db: Database, admin: Actor, tz: str, site_names: dict[int, str]) -> None:
    st.caption(
        "To pair a screen, sign in on it as an administrator, open the Chair board and choose "
        "“Make this browser a wall display”. A paired screen shows one site's board only, patients by initials."
    )
    paired = tokens.displays(db, admin)
    if not paired:
        st.info("No wall displays are paired.")
        return
    for display in paired:
        with forms.entry_form(f"unpair_{display.id}") as form:
            c = st.columns([3, 1], vertical_alignment="center")
            c[0].markdown(
                f"**🖥 {display.display_name}** · {_site(display.site_id, site_names)}"
                f" · paired {format_local(display.created_at, tz, '%d %b %Y %H:%M')}"
                f" · last seen {format_local(display.last_seen_at, tz, '%d %b %H:%M')}"
                f" · until {format_local(display.expires_at, tz, '%d %b %Y')}"
            )
            with c[1]:
                stop = form.submit("Stop this display", width="stretch")
            if stop:

                def unpair(token_id: int = display.id) -> None:
                    tokens.unpair_display(db, admin, token_id)

                form.save(
                    unpair,
                    f"{display.display_name} stopped; it shows the sign-in page at its next refresh.",
                    at_panel=True,
                )
