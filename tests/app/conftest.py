"""AppTest fixtures for the page tests.

Streamlit's AppTest rebuilds its PagesManager on every run, and because this
project keeps its pages in a folder named `pages/` (the layout the brief fixes),
the manager falls back to the legacy "pages directory" mode from the second run
on and executes the page file without the entrypoint (no sidebar, no
navigation). The real server leaves that mode as soon as `st.navigation` is
called. `app()` restores the server's behaviour for tests by turning the legacy
flag off after each PagesManager is built.
"""

from __future__ import annotations

import pytest
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
