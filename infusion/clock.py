"""The current time, in UTC, in one place so tests can reason about it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_local(moment: datetime | None, tz: str) -> datetime | None:
    """A stored UTC time as the clinic's wall-clock time."""
    if moment is None:
        return None
    return moment.astimezone(ZoneInfo(tz))


def from_local(moment: datetime, tz: str) -> datetime:
    """A wall-clock time typed at the clinic (naive or aware) as aware UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return moment.astimezone(UTC)


def local_date(moment: datetime, tz: str) -> date:
    """The clinic's calendar day at `moment`."""
    return moment.astimezone(ZoneInfo(tz)).date()


def local_day_bounds(day: date, tz: str, last: date | None = None) -> tuple[datetime, datetime]:
    """Half-open UTC interval [local midnight of `day`, local midnight after `last` (default: `day`)).

    The one place clinic-day boundaries are computed: around a daylight-saving change a
    local day is 23 or 25 hours long, so never add 24 h to a midnight.
    """
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine((last or day) + timedelta(days=1), time.min, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def local_day_start(day: date, tz: str) -> datetime:
    """Local midnight starting `day`, in UTC."""
    return local_day_bounds(day, tz)[0]


def format_local(moment: datetime | None, tz: str, fmt: str = "%H:%M") -> str:
    local = to_local(moment, tz)
    return local.strftime(fmt) if local else "—"


def format_minutes(minutes: float | None) -> str:
    """90 → '1 h 30 min'; negative values keep their sign."""
    if minutes is None:
        return "—"
    sign = "-" if minutes < 0 else ""
    total = int(round(abs(minutes)))
    hours, mins = divmod(total, 60)
    if hours:
        return f"{sign}{hours} h {mins:02d} min"
    return f"{sign}{mins} min"
