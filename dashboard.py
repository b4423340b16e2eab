"""Chairside router: open the database, sign in, and show the pages the role may use.

Run with `streamlit run dashboard.py` (add `-- --demo` to load the demo clinic
into an empty database). The database comes from CHAIRSIDE_DATABASE_URL
(default: chairside.sqlite here); migrations run on start. Pages are listed in
`ui/registry.py`; the frame around them (header, idle sign-out) is `ui/shell.py`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import streamlit as st

from db.engine import Database
from db.models import Clinic
from infusion.clock import utcnow
from infusion.services.setup import get_clinic, network_security
from ui import common as ui
from ui import shell
from ui.registry import PAGES

st.set_page_config(page_title="Chairside", page_icon="💉", layout="wide")
log = logging.getLogger("chairside")


def open_clinic() -> tuple[Database, Clinic]:
    """The clinic database, migrated and seeded once per server process (demo data with `--demo`), and
    its first site (created on first use). The frame applies the network's account rules (idle sign-out,
    lockout: the strictest across the open sites, `setup.network_security`) before and after sign-in;
    the pages show the site the person works in (`ui.working_site`)."""
    if "--demo" in sys.argv[1:]:
        ui.load_demo_once()
    database = ui.get_db()
    return database, get_clinic(database)


def navigation(database: Database, clinic: Clinic) -> Any:
    """Pick the pages for whoever is signed in, inside the frame (header, idle sign-out)."""
    security = network_security(database)
    now = utcnow()
    shell.refresh_actor(database, security, now)
    shell.write_cookie()
    who = ui.actor()
    if who is None:
        return st.navigation([st.Page("pages/sign_in.py", title="Sign in", icon="🔐")], position="hidden")
    allowed = [page.key for page in PAGES if who.role in page.roles]
    pages = [
        st.Page(
            page.file,
            title=page.title,
            icon=page.icon,
            default=(page.key == allowed[0]) if allowed else False,
            visibility="visible" if page.key in allowed else "hidden",
        )
        for page in PAGES
    ]
    chosen = st.navigation(pages, position="top")
    shell.header(database, security, now)
    shell.idle_watch(database, security)
    return chosen


try:
    try:
        database, clinic = open_clinic()
    except Exception:  # noqa: BLE001 - the database could not be opened: a plain page, no traceback
        log.exception("the clinic database could not be opened")
        shell.database_unreachable()
        st.stop()
    st.session_state.pop("_db_retry_armed", None)
    navigation(database, clinic).run()
except Exception:  # noqa: BLE001 - the last line of defence: no traceback on a tablet
    log.exception("unexpected error on a page")
    st.error(
        "Something went wrong showing this page. Nothing was saved by the step that failed; "
        "reload the page and try again. The error has been logged.",
        icon="🚫",
    )
