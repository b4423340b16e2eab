"""What a demo load is asked for and what it reports: options, result, and the refusal.

Kept apart from the loader so the command line, the dashboard's `--demo` start
and the tests can name these without reading the generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from infusion.demo.people import SITES


class DemoRefused(Exception):
    """The database already has sessions and --force was not given."""


#: How many visits one chair holds on an average clinic day: a visit (check-in to discharge, with
#: observation) averages about 3 h of a 9.5-h day, so a chair could turn over about 3 times; with bookings
#: piling up at midday (long infusions start early) 2 a day keeps midday below 100 %. No public source gives this: a **product choice** for the demo only.
SESSIONS_PER_CHAIR_DAY = 2.0
#: The demo clinic's chairs: at least 8, at most 30 (a large infusion centre) before the history
#: lengthens instead. **Product choice** (no public source gives a clinic size).
MIN_CHAIRS, MAX_CHAIRS = 8, 30
#: The shortest default history: one year; the longest: ten (the command line's --days limit).
MIN_DAYS, MAX_DAYS = 365, 3650
#: Clinic days per calendar day (Monday to Friday).
WEEKDAY_SHARE = 5 / 7


def history_days(sessions: int) -> int:
    """The default history length for `sessions`: one year while 30 chairs can hold them, longer
    above that (so sessions per clinic day stay what 30 chairs hold), at most ten years."""
    per_day = MAX_CHAIRS * SESSIONS_PER_CHAIR_DAY * WEEKDAY_SHARE
    return max(MIN_DAYS, min(MAX_DAYS, -(-sessions // int(per_day))))


#: The largest network the demo builds (one row of `infusion.demo.people.SITES` each).
MAX_SITES = len(SITES)
#: Sessions the smallest site gets at least: its live board (about 19 sessions today) and a little history.
MIN_SITE_SESSIONS = 20


def split_sessions(sessions: int, sites: int) -> list[int]:
    """`sessions` shared among the first `sites` sites by their share (largest remainders first)."""
    if not 1 <= sites <= MAX_SITES:
        raise ValueError(f"sites must be between 1 and {MAX_SITES}")
    shares = [row[4] for row in SITES[:sites]]
    exact = [sessions * s / sum(shares) for s in shares]
    split = [int(x) for x in exact]
    for i in sorted(range(sites), key=lambda i: split[i] - exact[i])[: sessions - sum(split)]:
        split[i] += 1
    return split


def network_minimum(sites: int) -> int:
    """The fewest sessions that give each of `sites` sites at least MIN_SITE_SESSIONS."""
    shares = [row[4] for row in SITES[:sites]]
    return math.ceil(MIN_SITE_SESSIONS * sum(shares) / min(shares))


@dataclass(frozen=True)
class DemoOptions:
    """What to load: `sessions` in all (today's included) over the last `days` days, at `sites` sites.

    `days` None follows the size (`history_days`): a million sessions in one year is not a clinic.
    """

    sessions: int = 3000
    seed: int = 42
    days: int | None = None
    force: bool = False
    #: 1: the single clinic; more: a network of that many sites sharing the sessions (`split_sessions`)
    sites: int = 1

    @property
    def span(self) -> int:
        """The history length in days: `days`, or the default for the busiest site's sessions."""
        if self.days is not None:
            return self.days
        return history_days(max(split_sessions(self.sessions, self.sites)))


@dataclass
class DemoResult:
    """Rows written per kind, today's sessions by status, and the wall time including the commit."""

    counts: dict[str, int]
    today: dict[str, int]
    seconds: float
    sites: int = 1
