"""Who is acting: the signed-in person every read and write is attributed to."""

from __future__ import annotations

from dataclasses import dataclass

from infusion.accounts.permissions import Role


@dataclass(frozen=True)
class Actor:
    """The person a write is attributed to (a picked nurse now; a signed-in user later)."""

    user_id: int | None
    name: str
    role: str = Role.NURSE


SYSTEM = Actor(None, "system", Role.ADMIN)
