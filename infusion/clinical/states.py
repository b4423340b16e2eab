"""The session state machine (docs/architecture.md), as data.

Every service function asks `require_transition` before it writes, so an
out-of-order step (IV stop before IV start, discharge while infusing) gets a
clear message instead of a corrupted record; the status it returns is the one
the service stores.

Statuses are `StrEnum`s: each member equals its string, so database values,
JSON audit snapshots and comparisons with plain strings keep working.
"""

from __future__ import annotations

from enum import StrEnum

from infusion.errors import StateError


class SessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    CHECKED_IN = "checked_in"
    READY = "ready"
    INFUSING = "infusing"
    PAUSED = "paused"
    OBSERVATION = "observation"
    DISCHARGED = "discharged"
    DEFERRED = "deferred"
    CANCELLED = "cancelled"


class EntryStatus(StrEnum):
    """The state of an append-only clinical entry (vitals, premedication, rate change, reaction)."""

    ACTIVE = "active"
    CORRECTED = "corrected"
    ENTERED_IN_ERROR = "entered_in_error"


S = SessionStatus

#: Session states in which a chair (and a patient) is occupied.
ACTIVE_STATUSES: tuple[SessionStatus, ...] = (S.CHECKED_IN, S.READY, S.INFUSING, S.PAUSED, S.OBSERVATION)
SESSION_STATUSES: tuple[SessionStatus, ...] = (S.SCHEDULED, S.CANCELLED, S.DEFERRED, *ACTIVE_STATUSES, S.DISCHARGED)
CLOSED_STATUSES: tuple[SessionStatus, ...] = (S.DISCHARGED, S.DEFERRED, S.CANCELLED)
ENTRY_STATUSES: tuple[EntryStatus, ...] = tuple(EntryStatus)

TRANSITIONS: dict[str, dict[SessionStatus, SessionStatus]] = {
    "check_in": {S.SCHEDULED: S.CHECKED_IN},
    "proceed": {S.CHECKED_IN: S.READY},
    "defer": {S.CHECKED_IN: S.DEFERRED, S.READY: S.DEFERRED, S.SCHEDULED: S.DEFERRED},
    "cancel": {S.SCHEDULED: S.CANCELLED},
    "start_iv": {S.READY: S.INFUSING},
    "pause": {S.INFUSING: S.PAUSED},
    "resume": {S.PAUSED: S.INFUSING},
    "stop_iv": {S.INFUSING: S.OBSERVATION, S.PAUSED: S.OBSERVATION},
    "discharge": {S.OBSERVATION: S.DISCHARGED},
}

STATUS_LABELS: dict[str, str] = {
    S.SCHEDULED: "Waiting",
    S.CHECKED_IN: "Checked in",
    S.READY: "Ready to start",
    S.INFUSING: "Infusing",
    S.PAUSED: "Paused",
    S.OBSERVATION: "Observation",
    S.DISCHARGED: "Discharged",
    S.DEFERRED: "Deferred",
    S.CANCELLED: "Cancelled",
}

#: Statuses in which vitals may be recorded, and in which reactions may be.
VITALS_STATUSES = (S.CHECKED_IN, S.READY, S.INFUSING, S.PAUSED, S.OBSERVATION)
REACTION_STATUSES = (S.READY, S.INFUSING, S.PAUSED, S.OBSERVATION)
PREMED_STATUSES = (S.CHECKED_IN, S.READY, S.INFUSING, S.PAUSED)

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


def next_status(action: str, status: str) -> SessionStatus | None:
    """The status `action` leads to from `status`, or None if the step is not allowed from there."""
    return TRANSITIONS[action].get(status)  # type: ignore[call-overload]


def require_transition(action: str, status: str) -> SessionStatus:
    """The status after `action`, or a StateError saying why it is not allowed now."""
    target = next_status(action, status)
    if target is None:
        raise StateError(f"Cannot {ACTION_LABELS[action]}: the session is {STATUS_LABELS.get(status, status).lower()}.")
    return target


def require_status(status: str, allowed: tuple[str, ...], what: str) -> None:
    if status not in allowed:
        raise StateError(f"Cannot record {what}: the session is {STATUS_LABELS.get(status, status).lower()}.")
