"""Streamlit helpers shared by the pages: the database handle, who is charting,
messages, and small formatting widgets. UI only; every rule lives in `infusion/`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from db.models import Clinic
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import ROLE_LABELS
from infusion.clock import from_local, utcnow
from infusion.errors import ChairsideError, ValidationError
from infusion.exports.csv_writer import csv_bytes
from infusion.services.setup import database_url, open_clinic, working_clinic
from ui.registry import BY_KEY

T = TypeVar("T")

STATUS_CHIPS = {
    "scheduled": "⚪ Waiting",
    "checked_in": "🔵 Checked in",
    "ready": "🔵 Ready to start",
    "infusing": "🟢 Infusing",
    "paused": "🟠 Paused",
    "observation": "🟣 Observation",
    "discharged": "⚫ Discharged",
    "deferred": "▫️ Deferred",
    "cancelled": "▫️ Cancelled",
}
GRADE_CHIPS = {1: "🟡 G1", 2: "🟠 G2", 3: "🔴 G3", 4: "🟥 G4", 5: "⬛ G5"}


@st.cache_resource(show_spinner="Opening the clinic database…")
def _open(url: str) -> Any:
    return open_clinic(url)


def load_demo_once() -> None:
    """`streamlit run dashboard.py -- --demo`: fill an empty database with the demo clinic, once."""
    _load_demo(database_url())


@st.cache_resource(show_spinner="Loading the demo clinic…")
def _load_demo(url: str) -> bool:
    from infusion.demo import load_demo_if_empty

    return load_demo_if_empty(_open(url))


def get_db() -> Any:
    """The database for the configured URL, migrated and seeded once per server process."""
    return _open(database_url())


def actor() -> Actor | None:
    return st.session_state.get("actor")


def page_guard(page: str) -> Actor:
    """The signed-in actor if their role may open `page`; otherwise a clear refusal and stop.

    Navigation already hides pages a role may not use; this also refuses a page
    reached by its URL. The service functions check the role a third time.
    """
    who = actor()
    if who is None:
        st.info("Please sign in.")
        st.stop()
    if who.role not in BY_KEY[page].roles:
        st.error(
            f"Your role ({ROLE_LABELS.get(who.role, who.role)}) may not open {BY_KEY[page].title}. "
            "Ask an administrator if you need it.",
            icon="🔒",
        )
        st.stop()
    return who


def working_site(db: Any, who: Actor) -> Clinic:
    """The site `who` works in now (the header's picker): its zone, units and thresholds are the page's.
    Someone who holds no site yet is told so, and the page stops (no traceback)."""
    try:
        return working_clinic(db, who)
    except ChairsideError as error:
        st.error(str(error), icon="🏥")
        st.stop()
        raise  # st.stop() does not return; this keeps the type checker content


#: how long an outcome message stays on screen after its save (seconds)
MESSAGE_SECONDS = 8


def flash(message: str, key: str = "_flash") -> None:
    """An outcome message shown after the rerun that follows a save.

    Kept for a few seconds rather than shown once: a second tap can interrupt the
    run that was showing it, and the nurse must still see that the save happened.
    It also pops up as a toast, which stays in view wherever the page is scrolled.
    """
    st.session_state[key] = (message, utcnow(), False)


def show_flash(key: str = "_flash") -> None:
    """Show the outcome message of the last save here, while it is fresh."""
    held = st.session_state.get(key)
    if not held:
        return
    message, at, toasted = held
    if (utcnow() - at).total_seconds() > MESSAGE_SECONDS:
        del st.session_state[key]
        return
    st.success(message, icon="✅")
    if not toasted:
        st.toast(message, icon="✅")
        st.session_state[key] = (message, at, True)


def token(key: str) -> str:
    """A per-form idempotency token: the same until the save succeeds."""
    name = f"_token_{key}"
    if name not in st.session_state:
        st.session_state[name] = uuid.uuid4().hex
    return st.session_state[name]


def spend_token(key: str) -> None:
    st.session_state.pop(f"_token_{key}", None)


def show_error(error: ChairsideError, prefix: str = "Not saved.") -> None:
    lead = f"{prefix} " if prefix else ""
    if isinstance(error, ValidationError) and len(error.problems) > 1:
        st.error(f"{lead}Please fix:\n" + "\n".join(f"- {m}" for m in error.problems.values()), icon="🚫")
    else:
        st.error(f"{lead}{error}", icon="🚫")


def attempt(action: Callable[[], T], success: str | None = None) -> T | None:
    """Run a service call; show its message on a rule violation instead of a traceback."""
    try:
        result = action()
    except ChairsideError as error:
        show_error(error)
        return None
    if success:
        flash(success)
    return result


def clinic_time(
    value: time | None, tz: str, day: date | None = None, *, not_before: datetime | None = None
) -> datetime | None:
    """A wall-clock time typed at the clinic, as UTC; empty means 'now' (None).

    A time is read as today. Only when today's reading lies ahead of now and the
    session was already running before midnight (`not_before` is yesterday) is it
    read as yesterday — 23:55 typed at 00:10 during a session that started at
    22:00. Anything else ahead of now stays today, so the service refuses it as
    in the future rather than silently moving it a day back.
    """
    if value is None:
        return None
    if day is not None:
        return from_local(datetime.combine(day, value), tz)
    now = utcnow()
    moment = from_local(datetime.combine(now.astimezone(ZoneInfo(tz)).date(), value), tz)
    if moment > now and not_before is not None:
        yesterday = moment - timedelta(days=1)
        if yesterday >= not_before:
            return yesterday
    return moment


def _missing(value: object) -> bool:
    """NaN, NaT and pd.NA are written as empty cells, not 'nan' or '<NA>'."""
    try:
        return value is not None and bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and other containers
        return False


def as_charted(frame: pd.DataFrame, row_style: Callable[[Any], list[str]] | None = None) -> Any:
    """A table as the record reads: numbers as charted (98.6, 150), blanks as '—' — not the
    Styler's '98.600000' and 'None'; `row_style` colours rows (flagged, struck through)."""
    styler = frame.style.apply(row_style, axis=1) if row_style is not None else frame.style
    return styler.format(_cell, na_rep="—")


def _cell(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def csv_download(label: str, frame: pd.DataFrame, *, file_name: str, key: str | None = None) -> None:
    """Every CSV a page offers goes through the one spreadsheet-safe writer (formula cells neutralised)."""
    rows = ([None if _missing(v) else v for v in row] for row in frame.itertuples(index=False, name=None))
    data = csv_bytes([str(c) for c in frame.columns], rows)
    st.download_button(label, data, file_name=file_name, mime="text/csv", key=key, on_click="ignore")
