"""The one page registry: key, file, title, icon and the roles that may open each page.

The router (`dashboard.py`) builds the navigation from it, `page_guard` refuses a
page reached by URL with it, and the role × page tests read it. The roles come
from `infusion.accounts.permissions`, where the services check them again.
"""

from __future__ import annotations

from dataclasses import dataclass

from infusion.accounts import permissions as p


@dataclass(frozen=True)
class PageSpec:
    key: str
    file: str
    title: str
    icon: str
    roles: tuple[str, ...]


PAGES: tuple[PageSpec, ...] = (
    PageSpec("chairside", "pages/chairside.py", "Chairside", "🩺", p.CHARTING),
    PageSpec("session", "pages/session.py", "Session record", "📋", p.CHARTING),
    PageSpec("board", "pages/board.py", "Chair board", "🪑", (*p.BOARD, p.WALL_DISPLAY)),
    PageSpec("due", "pages/due.py", "Due list", "📅", (p.NURSE, p.CHARGE, p.MANAGER, p.ADMIN)),
    # session pages are for the charting roles (nurses, charge nurses, administrators)
    PageSpec("follow_up", "pages/follow_up.py", "Follow-up calls", "📞", p.CHARTING),
    PageSpec("trends", "pages/trends.py", "Trends", "📈", p.TRENDS),
    PageSpec("export", "pages/export.py", "Exports", "⬇️", p.EXPORTS),
    PageSpec("audit", "pages/audit.py", "Audit log", "🔎", p.AUDIT),
    PageSpec("administration", "pages/administration.py", "Administration", "⚙️", p.ADMINISTRATION),
)
BY_KEY: dict[str, PageSpec] = {page.key: page for page in PAGES}


def pages_for(role: str) -> list[PageSpec]:
    """The pages `role` sees, in menu order; the first is where they land after sign-in."""
    return [page for page in PAGES if role in page.roles]


def may_open(role: str, key: str) -> bool:
    return key in BY_KEY and role in BY_KEY[key].roles
