"""Move a session to another chair: the way out when a booked chair is still occupied."""

from __future__ import annotations

import streamlit as st

from infusion.reads import sessions as views
from infusion.services import chairs, setup
from ui import forms
from ui.chairside.context import Chairside

#: the tick box a move into a chair another session is booked in asks for (`chairs.move_session`)
SHARED_CHAIR = "Move it anyway: I have checked the chair is free"


def move_chair_form(cx: Chairside, detail: views.SessionDetail, *, expanded: bool = False) -> None:
    """Offer the free chairs; the move is audited and carries the version the nurse saw."""
    row = detail.session
    free = chairs.free_chairs(cx.db, cx.nurse, exclude_session=row.id)
    occupied = not any(c.id == row.chair_id for c in free)
    label = "🪑 Move to another chair" + (" — this chair is still occupied" if occupied else "")
    with st.expander(label, expanded=expanded or occupied, key=f"move_open_{row.id}", on_change="rerun"):
        others = [c for c in free if c.id != row.chair_id]
        if not others:
            st.caption("No other chair is free right now.")
            return
        names = {c.id: c.name for c in setup.list_chairs(cx.db, cx.site_id)}
        with forms.entry_form(f"move_{row.id}") as form:
            target = st.selectbox(
                "Free chair", [c.id for c in others], format_func=lambda i: names.get(i, str(i)), key=form.key("chair")
            )
            reason = st.text_input("Why (optional)", key=form.key("reason"), placeholder="e.g. booked chair occupied")
            shared = form.confirmation(SHARED_CHAIR)
            if form.submit("Move session"):
                form.save(
                    lambda: chairs.move_session(
                        cx.db,
                        cx.nurse,
                        row.id,
                        target,
                        reason=reason,
                        expected_version=cx.version(detail),
                        confirm_shared_chair=shared,
                    ),
                    lambda moved: f"Moved to {names.get(moved.chair_id, 'the new chair')}.",
                    at_panel=True,
                    confirmable=True,
                )
