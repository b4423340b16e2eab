"""What a demo load is asked for and what it reports: options, result, and the refusal.

Kept apart from the loader so the command line, the dashboard's `--demo` start
and the tests can name these without reading the generator.
"""

from __future__ import annotations

from dataclasses import dataclass


class DemoRefused(Exception):
    """The database already has sessions and --force was not given."""


@dataclass(frozen=True)
class DemoOptions:
    """What to load: `sessions` in all (today's included) over the last `days` days."""

    sessions: int = 3000
    seed: int = 42
    days: int = 365
    force: bool = False


@dataclass
class DemoResult:
    """Rows written per kind, today's sessions by status, and the wall time including the commit."""

    counts: dict[str, int]
    today: dict[str, int]
    seconds: float
