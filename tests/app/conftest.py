"""AppTest fixtures for the page tests.

Streamlit's AppTest rebuilds its PagesManager on every run, and because this
project keeps its pages in a folder named `pages/` (the layout the brief fixes),
the manager falls back to the legacy "pages directory" mode from the second run
on and executes the page file without the entrypoint (no sidebar, no
navigation). The real server leaves that mode as soon as `st.navigation` is
called. `app()` restores the server's behaviour for tests by turning the legacy
flag off after each PagesManager is built.

`fresh_page_caches` is opt-in: a module that needs it says
`pytestmark = pytest.mark.usefixtures("fresh_page_caches")`.
"""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module

from tests.helpers import ROOT


class _NavigationPagesManager(PagesManager):
    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        PagesManager.uses_pages_directory = False


@pytest.fixture
def make_app(monkeypatch: pytest.MonkeyPatch, db_url: str):
    """Build an AppTest of dashboard.py against the test database."""
    monkeypatch.setattr(app_test_module, "PagesManager", _NavigationPagesManager)
    monkeypatch.setenv("CHAIRSIDE_DATABASE_URL", db_url)

    def build() -> AppTest:
        return AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)

    return build


@pytest.fixture
def fresh_page_caches() -> None:
    """Clear `st.cache_data` before the test.

    Trends caches its frames by database URL and filters; the PostgreSQL test schema keeps one URL for
    every test, so a test must start without the previous test's cached frames.
    """
    st.cache_data.clear()
