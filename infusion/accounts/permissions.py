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

#: page key → roles that see it in navigation (and may open it by URL)
PAGE_ROLES: dict[str, tuple[Role, ...]] = {
    "chairside": CHARTING,
    "session": CHARTING,
    "due": (NURSE, CHARGE, MANAGER, ADMIN),
    "follow_up": CHARTING,  # issue 5: session pages are for nurses (and charge nurses, administrators)
    "board": BOARD,
    "trends": TRENDS,
    "export": EXPORTS,
    "audit": AUDIT,
    "administration": ADMINISTRATION,
}


def pages_for(role: str) -> list[str]:
    return [page for page, roles in PAGE_ROLES.items() if role in roles]


def require_role(actor: Actor | None, allowed: tuple[str, ...], what: str) -> Actor:
    """The actor, if signed in with one of `allowed` roles; otherwise PermissionDenied."""
    if actor is None:
        raise PermissionDenied(f"Sign in to {what}.")
    if actor.role not in allowed:
        raise PermissionDenied(f"Your role ({ROLE_LABELS.get(actor.role, actor.role)}) may not {what}.")
    return actor
