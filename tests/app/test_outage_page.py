"""The clinic database unreachable at start: a plain page that retries, no traceback, no host or port."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.helpers import ROOT


def test_unreachable_database_shows_a_plain_page(monkeypatch):
    monkeypatch.setenv("CHAIRSIDE_DATABASE_URL", "postgresql+psycopg://chairside@127.0.0.1:1/nowhere?connect_timeout=2")
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)
    at.run()
    assert not at.exception
    shown = " ".join(e.value for e in at.error)
    assert "clinic database is not reachable" in shown
    assert "Nothing you typed on this screen was saved" in shown
    text = shown + " ".join(str(m.value) for m in at.markdown) + " ".join(str(c.value) for c in at.caption)
    assert "127.0.0.1" not in text and "Traceback" not in text and "psycopg" not in text
