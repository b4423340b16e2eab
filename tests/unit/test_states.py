"""The session state machine (docs/architecture.md): every allowed step and every refusal."""

from __future__ import annotations

import pytest

from infusion.clinical.states import (
    PREMED_STATUSES,
    REACTION_STATUSES,
    STATUS_LABELS,
    TRANSITIONS,
    VITALS_STATUSES,
    require_status,
    require_transition,
)
from infusion.errors import StateError

STATUSES = (
    "scheduled",
    "checked_in",
    "ready",
    "infusing",
    "paused",
    "observation",
    "discharged",
    "deferred",
    "cancelled",
)
ACTIONS = ("check_in", "proceed", "defer", "cancel", "start_iv", "pause", "resume", "stop_iv", "discharge")

# The arrows of the state machine, plus two documented widenings: defer is also allowed
# before check-in and after proceed (a problem found late), and a paused
# infusion can be stopped.
ALLOWED = {
    ("check_in", "scheduled"): "checked_in",
    ("proceed", "checked_in"): "ready",
    ("defer", "checked_in"): "deferred",
    ("defer", "ready"): "deferred",
    ("defer", "scheduled"): "deferred",
    ("cancel", "scheduled"): "cancelled",
    ("start_iv", "ready"): "infusing",
    ("pause", "infusing"): "paused",
    ("resume", "paused"): "infusing",
    ("stop_iv", "infusing"): "observation",
    ("stop_iv", "paused"): "observation",
    ("discharge", "observation"): "discharged",
}

WORDS = {
    "check_in": "check in",
    "proceed": "proceed",
    "defer": "defer",
    "cancel": "cancel",
    "start_iv": "start the IV",
    "pause": "pause",
    "resume": "resume",
    "stop_iv": "stop the IV",
    "discharge": "discharge",
}


@pytest.mark.parametrize("action,status", sorted(ALLOWED))
def test_allowed_transition(action, status):
    assert require_transition(action, status) == ALLOWED[(action, status)]


@pytest.mark.parametrize("action,status", [(a, s) for a in ACTIONS for s in STATUSES if (a, s) not in ALLOWED])
def test_refused_transition_says_what_and_why(action, status):
    with pytest.raises(StateError) as exc:
        require_transition(action, status)
    message = str(exc.value)
    assert message.startswith("Cannot ")
    assert WORDS[action] in message
    assert STATUS_LABELS[status].lower() in message


def test_no_transitions_beyond_the_design():
    table = {(a, s): t for a, by_status in TRANSITIONS.items() for s, t in by_status.items()}
    assert table == ALLOWED


@pytest.mark.parametrize("status", ["discharged", "deferred", "cancelled"])
def test_closed_sessions_are_final(status):
    for action in ACTIONS:
        with pytest.raises(StateError):
            require_transition(action, status)


def test_happy_path_walk():
    status = "scheduled"
    for action in ("check_in", "proceed", "start_iv", "pause", "resume", "pause", "stop_iv", "discharge"):
        status = require_transition(action, status)
    assert status == "discharged"


def test_refusal_examples_read_well():
    with pytest.raises(StateError, match="Cannot stop the IV: the session is ready to start"):
        require_transition("stop_iv", "ready")
    with pytest.raises(StateError, match="Cannot discharge: the session is infusing"):
        require_transition("discharge", "infusing")
    with pytest.raises(StateError, match="Cannot start the IV: the session is checked in"):
        require_transition("start_iv", "checked_in")


def test_entry_statuses():
    # vitals from check-in to the end of observation; reactions once cleared to start (premedication can
    # cause one) until discharge; premedication before the IV stops
    assert set(VITALS_STATUSES) == {"checked_in", "ready", "infusing", "paused", "observation"}
    assert set(REACTION_STATUSES) == {"ready", "infusing", "paused", "observation"}
    assert set(PREMED_STATUSES) == {"checked_in", "ready", "infusing", "paused"}
    require_status("infusing", VITALS_STATUSES, "vitals")
    with pytest.raises(StateError, match="Cannot record vitals: the session is discharged"):
        require_status("discharged", VITALS_STATUSES, "vitals")
    with pytest.raises(StateError, match="Cannot record a reaction: the session is waiting"):
        require_status("scheduled", REACTION_STATUSES, "a reaction")
