"""Who is acting: the signed-in person every read and write is attributed to."""

from __future__ import annotations

from dataclasses import dataclass

from infusion.accounts.permissions import Role


@dataclass(frozen=True)
class Actor:
    """The person a read or write is attributed to, and where they work.

    `sites` are the sites the role applies at (None: every site — the network-wide roles, the
    command line, the system). `site_id` is the site picked to work in now (the Chairside list,
    the board and the due list show that site); None lets the services choose the first site the
    person holds. For a signed-in account the services read both from the database, not from here."""

    user_id: int | None
    name: str
    role: str = Role.NURSE
    sites: frozenset[int] | None = None
    site_id: int | None = None


SYSTEM = Actor(None, "system", Role.ADMIN)
