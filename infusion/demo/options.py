"""What a demo load is asked for and what it reports: options, result, and the refusal.

Kept apart from the loader so the command line, the dashboard's `--demo` start
and the tests can name these without reading the generator.
"""

from __future__ import annotations

from dataclasses import dataclass


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


@dataclass(frozen=True)
class DemoOptions:
    """What to load: `sessions` in all (today's included) over the last `days` days.

    `days` None follows the size (`history_days`): a million sessions in one year is not a clinic.
    """

    sessions: int = 3000
    seed: int = 42
    days: int | None = None
    force: bool = False

    @property
    def span(self) -> int:
        """The history length in days: `days`, or the default for the number of sessions."""
        return self.days if self.days is not None else history_days(self.sessions)


@dataclass
class DemoResult:
    """Rows written per kind, today's sessions by status, and the wall time including the commit."""

    counts: dict[str, int]
    today: dict[str, int]
    seconds: float
