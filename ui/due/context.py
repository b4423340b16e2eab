"""What every Due part needs: the database, who is looking, the clinic's zone and day, the chairs, and the
other sites the person books at (a patient due at another site is booked in that site's chairs and zone)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from db.engine import Database
from infusion.accounts.actor import Actor
from infusion.clock import from_local, utcnow
from infusion.services import setup

DEFAULT_TIME = time(9, 0)  # product choice: a new booking starts at the clinic's usual first slot


@dataclass
class Due:
    db: Database
    viewer: Actor
    tz: str
    today: date
    can_book: bool
    can_set_protocol: bool
    #: may mark a course ended and resume it (infusion.services.courses.COURSE_EDIT)
    can_end_course: bool = False
    chair_names: dict[int, str] = field(default_factory=dict)
    #: the site the list is for (the header's picker): its patients are offered for booking
    site_id: int | None = None
    #: the open sites the person may book at (they hold them), by id: (name, time zone)
    sites: dict[int, tuple[str, str]] = field(default_factory=dict)
    _chairs: dict[int, dict[int, str]] = field(default_factory=dict)

    def chairs_at(self, site_id: int | None) -> dict[int, str]:
        """The active chairs (and home-visit locations) of a site, by id: the working site's are `chair_names`."""
        if site_id is None or site_id == self.site_id:
            return self.chair_names
        if site_id not in self._chairs:
            self._chairs[site_id] = {c.id: c.name for c in setup.list_chairs(self.db, site_id)}
        return self._chairs[site_id]

    def zone_of(self, site_id: int | None) -> str:
        return self.sites[site_id][1] if site_id in self.sites else self.tz

    def site_name(self, site_id: int | None) -> str:
        return self.sites[site_id][0] if site_id in self.sites else ""

    def today_at(self, site_id: int | None) -> date:
        """Today at a site (its own zone)."""
        return (
            self.today
            if site_id in (None, self.site_id)
            else utcnow().astimezone(ZoneInfo(self.zone_of(site_id))).date()
        )

    def first_slot(self, day: date, site_id: int | None = None) -> time:
        """The time a booking form starts at: the usual first slot, or on today the next quarter hour
        still ahead (a booking is never offered in the past), at the booking's site."""
        if day != self.today_at(site_id):
            return DEFAULT_TIME
        local = utcnow().astimezone(ZoneInfo(self.zone_of(site_id)))
        minutes = (local.hour * 60 + local.minute) // 15 * 15 + 15
        if minutes >= 24 * 60:
            return time(23, 45)
        return max(DEFAULT_TIME, time(minutes // 60, minutes % 60))

    def when(self, day: date, at: time | None, site_id: int | None = None) -> datetime:
        """A booking's date and time at its site (the working site if not named), as UTC (no time: the
        usual first slot)."""
        return from_local(datetime.combine(day, at or DEFAULT_TIME), self.zone_of(site_id))


def pair_label(r: Any) -> str:
    """A patient × therapy as a person picks it: the name, the MRN (names repeat) and the therapy."""
    return f"{r.patient} · {r.mrn} · {r.therapy}"
