"""Errors a user can act on. Pages show `str(error)`; nothing else reaches the screen."""

from __future__ import annotations


class ChairsideError(Exception):
    """Base class: a message meant for the nurse, not a traceback."""


class ValidationError(ChairsideError):
    """One or more fields were rejected. `problems` maps field name → message."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__("; ".join(self.problems.values()))


class StateError(ChairsideError):
    """The session is not in a state that allows this step."""


class ConflictError(ChairsideError):
    """Someone else changed the record first, or a uniqueness rule would break."""


class PermissionDenied(ChairsideError):
    """The signed-in role may not do or see this."""


class AuthError(ChairsideError):
    """Sign-in refused (wrong password, locked, disabled); the message never says which account exists."""


class NotFoundError(ChairsideError):
    """The record asked for does not exist."""


class DatabaseBusy(ChairsideError):
    """The database stayed locked (another save, a backup) longer than Chairside waits; nothing was saved."""

    MESSAGE = "The clinic database is busy; nothing was saved — try again."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.MESSAGE)


class ConfirmationRequired(ChairsideError):
    """The values are valid but abnormal: the nurse must confirm before they are saved."""

    def __init__(self, flags: list[str], lead: str = "Abnormal values need confirmation") -> None:
        self.flags = list(flags)
        super().__init__(f"{lead}: " + "; ".join(self.flags))


class DatabaseUnavailable(ChairsideError):
    """The database server cannot be reached (stopped, restarting, network down); the save was not confirmed.

    A retry with the same form stores it at most once (the client token)."""

    MESSAGE = "The clinic database cannot be reached right now; this save was not confirmed — try again in a moment."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.MESSAGE)
