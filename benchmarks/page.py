"""The whole Trends page through Streamlit's AppTest, as tests/app drives it.

Signed in as a manager (the actor in session state, as tests/app does), dashboard.py
runs once (opening the database), then the timed run is `switch_page("pages/trends.py")`:
the filter form with its defaults (the last 365 days), trends.load through the page's
st.cache_data, and every figure and numbers table drawn.

- cold: st.cache_data and st.cache_resource cleared, a new AppTest (a new browser
  session and a newly opened database handle), OS page cache dropped before the timed run;
- warm: the same page run again in the same session (the cached frames are reused;
  what is left is the script, the figures and the widgets).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module

from benchmarks.database import ROOT, drop_os_cache
from benchmarks.timing import clock
from infusion.accounts.actor import Actor

PAGE = "pages/trends.py"


class _NavigationPagesManager(PagesManager):
    """tests/app/conftest.py's fix: AppTest otherwise falls back to the legacy pages-folder mode."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        PagesManager.uses_pages_directory = False


@contextmanager
def _app_environment(url: str) -> Iterator[None]:
    saved_url, saved_manager = os.environ.get("CHAIRSIDE_DATABASE_URL"), app_test_module.PagesManager
    os.environ["CHAIRSIDE_DATABASE_URL"] = url
    app_test_module.PagesManager = _NavigationPagesManager  # type: ignore[misc]
    try:
        yield
    finally:
        app_test_module.PagesManager = saved_manager  # type: ignore[misc]
        if saved_url is None:
            os.environ.pop("CHAIRSIDE_DATABASE_URL", None)
        else:
            os.environ["CHAIRSIDE_DATABASE_URL"] = saved_url


def _checked(at: AppTest) -> AppTest:
    if at.exception:
        raise RuntimeError("; ".join(str(e.value) for e in at.exception))
    return at


def _signed_in(manager: Actor) -> AppTest:
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=600)
    at.session_state["actor"] = manager
    return _checked(at.run())


def _page_run(at: AppTest, *, switch: bool) -> None:
    _checked((at.switch_page(PAGE) if switch else at).run())
    headings = [h.value for h in at.subheader]
    if "Reaction rate per therapy" not in headings:  # the page really drew its figures
        raise RuntimeError(f"the Trends page did not draw its figures (subheaders: {headings})")


def measure(url: str, manager: Actor, rounds: int) -> tuple[list[float], list[float]]:
    """Seconds per cold and per warm Trends page run, alternating (one warm-up of each first)."""
    cold: list[float] = []
    warm: list[float] = []
    with _app_environment(url):
        for r in range(rounds + 1):
            st.cache_data.clear()
            st.cache_resource.clear()
            at = _signed_in(manager)
            drop_os_cache(url)
            first = clock(partial(_page_run, at, switch=True))
            second = clock(partial(_page_run, at, switch=False))
            if r:  # round 0 is the warm-up (imports, first compilation)
                cold.append(first)
                warm.append(second)
        st.cache_data.clear()
        st.cache_resource.clear()
    return cold, warm
