"""What every Due part needs: the database, who is looking, the clinic's zone and day, the chairs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time

from db.engine import Database
from infusion.accounts.actor import Actor
from infusion.clock import from_local

DEFAULT_TIME = time(9, 0)  # product choice: a new booking starts at the clinic's usual first slot


@dataclass
class Due:
    db: Database
    viewer: Actor
    tz: str
    today: date
    can_book: bool
    can_set_protocol: bool
    chair_names: dict[int, str] = field(default_factory=dict)

    def when(self, day: date, at: time | None) -> datetime:
        """A booking's date and time at the clinic, as UTC (no time: the usual first slot)."""
        return from_local(datetime.combine(day, at or DEFAULT_TIME), self.tz)
