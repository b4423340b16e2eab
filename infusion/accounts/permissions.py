"""Who may see and do what. Pages are listed per role here, and every service
function checks the role too, so a page mistake cannot leak data."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from infusion.errors import PermissionDenied

if TYPE_CHECKING:
    from infusion.accounts.actor import Actor


class Role(StrEnum):
    """A staff role; each member equals the string stored in `app_user.role`."""

    NURSE = "nurse"
    CHARGE = "charge_nurse"
    MANAGER = "manager"
    QUALITY = "quality"
    ADMIN = "admin"


NURSE, CHARGE, MANAGER, QUALITY, ADMIN = Role.NURSE, Role.CHARGE, Role.MANAGER, Role.QUALITY, Role.ADMIN
#: every role, in the order forms list them (the one definition; db.models imports it)
ROLES: tuple[Role, ...] = tuple(Role)
ROLE_LABELS: dict[str, str] = {
    NURSE: "Nurse",
    CHARGE: "Charge nurse",
    MANAGER: "Clinic manager",
    QUALITY: "Quality",
    ADMIN: "Administrator",
}

#: roles that chart at the chair (admin covers small clinics where the administrator also nurses)
CHARTING = (NURSE, CHARGE, ADMIN)
#: roles that may open a patient's session record
CLINICAL_READ = (NURSE, CHARGE, MANAGER, QUALITY, ADMIN)
#: roles that may correct someone else's entry
CORRECT_OTHERS = (CHARGE, ADMIN)
BOARD = (CHARGE, MANAGER, ADMIN)
TRENDS = (MANAGER, QUALITY, ADMIN)
EXPORTS = (QUALITY, ADMIN)
AUDIT = (QUALITY, ADMIN)
ADMINISTRATION = (ADMIN,)

#: a wall screen showing the chair board: not a staff role, never stored in `app_user.role`;
#: an administrator pairs a browser with a named screen and it may only read the board
WALL_DISPLAY = "wall_display"
ROLE_LABELS[WALL_DISPLAY] = "Wall display"
#: who may read the chair board (the charting roles see it through the Chairside list as well)
BOARD_VIEW = (*BOARD, NURSE, WALL_DISPLAY)

# Which pages each role sees is the page registry (ui/registry.py), built from these tuples.


def require_role(actor: Actor | None, allowed: tuple[str, ...], what: str) -> Actor:
    """The actor, if signed in with one of `allowed` roles; otherwise PermissionDenied."""
    if actor is None:
        raise PermissionDenied(f"Sign in to {what}.")
    if actor.role not in allowed:
        raise PermissionDenied(f"Your role ({ROLE_LABELS.get(actor.role, actor.role)}) may not {what}.")
    return actor
