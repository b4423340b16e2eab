"""What every Chairside part needs: the database, the nurse, the working site's zone, units and id,
and the session versions the nurse has seen (the next state change is checked against them)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time

import streamlit as st

from db.engine import Database
from infusion.accounts.actor import Actor
from infusion.reads import sessions as views
from ui import common as ui

PANEL_KEY = "session_panel"


@dataclass
class Chairside:
    db: Database
    nurse: Actor
    tz: str
    temperature_unit: str
    weight_unit: str
    seen_versions: dict[int, int] = field(default_factory=dict)
    #: the site the nurse works in now (the header's picker): its chairs are offered
    site_id: int | None = None

    def version(self, detail: views.SessionDetail) -> int | None:
        """The version of the session the nurse's screen showed."""
        return self.seen_versions.get(detail.session.id)

    def time(
        self, value: time | None, *, day: date | None = None, not_before: datetime | None = None
    ) -> datetime | None:
        """A wall-clock time typed at the chair, as UTC (empty means now)."""
        return ui.clinic_time(value, self.tz, day, not_before=not_before)


def select_session(session_id: int) -> None:
    """Open a session: it scrolls into view, and confirmations left on another session are dropped."""
    if st.session_state.get("selected_session") != session_id:
        for key in [k for k in st.session_state if str(k).startswith("_pending_")]:
            del st.session_state[key]
    st.session_state["selected_session"] = session_id
    st.session_state["_scroll_to_panel"] = True
    st.query_params[SESSION_PARAM] = str(session_id)  # a reload opens it again (`reopen_after_reload`)


#: the address's parameter naming the open session: a record number, nothing about the patient
SESSION_PARAM = "session"


def reopen_after_reload() -> None:
    """A reload (or a tablet that dropped its connection) starts a new browser session with nothing open:
    the session named in the address opens again, so the nurse is back where she was, not at the list."""
    wanted = st.query_params.get(SESSION_PARAM)
    if "selected_session" not in st.session_state and wanted is not None and re.fullmatch(r"[0-9]{1,18}", wanted):
        st.session_state["selected_session"] = int(wanted)  # ASCII digits a record number can be, nothing else


def close_session() -> None:
    """Nothing open: the address no longer names a session."""
    st.session_state.pop("selected_session", None)
    st.query_params.pop(SESSION_PARAM, None)


def scroll_panel_into_view() -> None:
    """Bring the session panel to the top of the screen once, after it was opened from low in the list."""
    if st.session_state.pop("_scroll_to_panel", False):
        # In a block of its own: a top-level `const` would be declared again by the next
        # scroll in the same page (SyntaxError), and only the first opening would scroll.
        st.html(
            "<script>{"
            f"const el = window.parent.document.querySelector('.st-key-{PANEL_KEY}') "
            f"|| document.querySelector('.st-key-{PANEL_KEY}');"
            "if (el) { el.scrollIntoView({block: 'start'}); }"
            "}</script>",
            unsafe_allow_javascript=True,
        )
