"""Shared helpers for the AppTest page tests (the fixtures live in tests/app/conftest.py)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def run_app(at: AppTest, *, no_errors: bool = False) -> AppTest:
    """Run `at` once and assert the script raised no exception; return `at` for chaining.

    With `no_errors=True` also assert the page drew no `st.error` message. That is off by default
    because many pages show an error on purpose (a refused role, a rejected form) and their tests
    read it; the Trends and Export tests turn it on, as their pages must never show one.
    """
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if no_errors:
        assert not at.error, [str(e.value) for e in at.error]
    return at
