"""AppTest of the form helper alone (`ui.forms`): what a retried save sends as its token.

A tiny app, not a page: one form whose save "commits" but loses its answer every other call (the
database took it, the connection dropped before the reply). The page code may read `form.token`
before `save` or inside its action; both must follow the same rule.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

#: what the app's action received, in order: (token, value)
CALLS: list[tuple[str, float | None]] = []
#: where the app reads the token: "before" save, or "inside" the action
MODE = {"read": "before"}


def _app() -> None:
    import streamlit as st

    from infusion.errors import DatabaseUnavailable
    from tests.app import test_form_helper as probe
    from ui import forms

    with forms.entry_form("probe") as form:
        value = st.number_input("Value", key=form.key("value"), value=None)
        if form.submit("Save"):
            early = form.token if probe.MODE["read"] == "before" else None

            def action() -> float | None:
                probe.CALLS.append((early or form.token, value))
                if len(probe.CALLS) % 2:
                    raise DatabaseUnavailable()
                return value

            form.save(action, lambda v: f"Saved {v:g}")


def _texts(at: AppTest) -> str:
    return "\n".join(str(e.value) for e in (*at.error, *at.success, *at.warning))


def _save(at: AppTest, value: float) -> str:
    at.number_input(key=next(w.key for w in at.number_input)).set_value(value)
    next(b for b in at.button if b.label == "Save").click().run()
    assert not at.exception, at.exception
    return _texts(at)


@pytest.mark.parametrize("read", ["before", "inside"])
def test_a_retry_keeps_its_token_only_while_the_values_are_the_same(read: str) -> None:
    CALLS.clear()
    MODE["read"] = read
    at = AppTest.from_function(_app, default_timeout=30)
    at.run()

    assert "not confirmed" in _save(at, 1)
    shown = _save(at, 1)  # the same values again: the same entry, so the same token
    assert "Saved 1" in shown and "may be in the record too" not in shown
    assert CALLS[1] == CALLS[0]

    assert "not confirmed" in _save(at, 2)  # the next entry: a blank form, a new token
    assert CALLS[2][0] != CALLS[0][0]
    shown = _save(at, 3)  # corrected before trying again: another entry, never answered with 2
    assert "Saved 3" in shown and "may be in the record too" in shown
    assert CALLS[3][1] == 3 and CALLS[3][0] != CALLS[2][0]
