"""What every Due part needs: the database, who is looking, the clinic's zone and day, the chairs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from db.engine import Database
from infusion.accounts.actor import Actor
from infusion.clock import from_local, utcnow

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
    #: the site the list is for (the header's picker): its patients are offered for booking
    site_id: int | None = None

    def first_slot(self, day: date) -> time:
        """The time a booking form starts at: the usual first slot, or on today the next quarter hour
        still ahead (a booking is never offered in the past)."""
        if day != self.today:
            return DEFAULT_TIME
        local = utcnow().astimezone(ZoneInfo(self.tz))
        minutes = (local.hour * 60 + local.minute) // 15 * 15 + 15
        if minutes >= 24 * 60:
            return time(23, 45)
        return max(DEFAULT_TIME, time(minutes // 60, minutes % 60))

    def when(self, day: date, at: time | None) -> datetime:
        """A booking's date and time at the clinic, as UTC (no time: the usual first slot)."""
        return from_local(datetime.combine(day, at or DEFAULT_TIME), self.tz)
