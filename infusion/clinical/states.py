"""The session state machine of ../shared/design.md, as data.

Every service function asks `require_transition` before it writes, so an
out-of-order step (IV stop before IV start, discharge while infusing) gets a
clear message instead of a corrupted record.
"""

from __future__ import annotations

from infusion.errors import StateError

TRANSITIONS: dict[str, dict[str, str]] = {
    "check_in": {"scheduled": "checked_in"},
    "proceed": {"checked_in": "ready"},
    "defer": {"checked_in": "deferred", "ready": "deferred", "scheduled": "deferred"},
    "cancel": {"scheduled": "cancelled"},
    "start_iv": {"ready": "infusing"},
    "pause": {"infusing": "paused"},
    "resume": {"paused": "infusing"},
    "stop_iv": {"infusing": "observation", "paused": "observation"},
    "discharge": {"observation": "discharged"},
}

STATUS_LABELS = {
    "scheduled": "Waiting",
    "checked_in": "Checked in",
    "ready": "Ready to start",
    "infusing": "Infusing",
    "paused": "Paused",
    "observation": "Observation",
    "discharged": "Discharged",
    "deferred": "Deferred",
    "cancelled": "Cancelled",
}

#: Statuses in which vitals may be recorded, and in which reactions may be.
VITALS_STATUSES = ("checked_in", "ready", "infusing", "paused", "observation")
REACTION_STATUSES = ("ready", "infusing", "paused", "observation")
PREMED_STATUSES = ("checked_in", "ready", "infusing", "paused")

ACTION_LABELS = {
    "check_in": "check in",
    "proceed": "proceed",
    "defer": "defer",
    "cancel": "cancel",
    "start_iv": "start the IV",
    "pause": "pause the infusion",
    "resume": "resume the infusion",
    "stop_iv": "stop the IV",
    "discharge": "discharge",
}


def require_transition(action: str, status: str) -> str:
    """The status after `action`, or a StateError saying why it is not allowed now."""
    target = TRANSITIONS[action].get(status)
    if target is None:
        raise StateError(f"Cannot {ACTION_LABELS[action]}: the session is {STATUS_LABELS.get(status, status).lower()}.")
    return target


def require_status(status: str, allowed: tuple[str, ...], what: str) -> None:
    if status not in allowed:
        raise StateError(f"Cannot record {what}: the session is {STATUS_LABELS.get(status, status).lower()}.")
