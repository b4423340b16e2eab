"""Past clinic days: each session booked between 08:00 and 17:30 and seated in the first free chair.

Times are local wall-clock minutes turned into UTC epoch minutes with the
clinic's time zone, so a year of history crosses DST changes correctly. Only a
day with more sessions than chairs can hold ends up with overlaps.
"""

from __future__ import annotations

from datetime import date, datetime
from random import Random

from infusion.demo.events import Sim
from infusion.demo.people import CLOSE, OPEN
from infusion.demo.premises import Premises
from infusion.demo.rows import SessionRows
from infusion.demo.simulate import Generator, fast_randint
from infusion.demo.therapies import Plan


class PastDays:
    """Simulates and writes the sessions of one past day at a time."""

    def __init__(self, rng: Random, gen: Generator, rows: SessionRows, premises: Premises) -> None:
        self.rng, self.ri, self.gen, self.rows, self.premises = rng, fast_randint(rng), gen, rows, premises
        self._day_base: dict[date, int] = {}

    def _local_minute(self, day: date, minute_of_day: int) -> int:
        """UTC epoch minute of a local wall-clock time (minute of day) on `day`."""
        base = self._day_base.get(day)
        if base is None:  # the offset at noon: right for clinic hours even on DST change days
            noon = datetime(day.year, day.month, day.day, 12, tzinfo=self.premises.tz)
            base = self._day_base[day] = int(noon.timestamp() // 60) - 720
        return base + minute_of_day

    def write(self, day: date, plans: list[Plan]) -> None:
        """Simulate a past clinic day: each session is booked for a time between 08:00 and 17:30 and
        seated in the first free chair; only a day with more sessions than chairs can hold overlaps."""
        booked = []
        for plan in plans:
            sim = self.gen.simulate(plan)
            latest = max(OPEN, CLOSE - sim.length)
            booked.append((OPEN + 15 * self.ri(0, (latest - OPEN) // 15), plan, sim))
        booked.sort(key=lambda b: b[0])
        free = [OPEN] * len(self.premises.chair_ids)
        roster = day.toordinal()
        for wanted, plan, sim in booked:
            chair, local = self._seat(free, wanted, plan, sim)
            scheduled = self._local_minute(day, local)
            checkin = scheduled + self.ri(-10, 15)
            nurse = self.premises.nurse_ids[(chair + roster) % len(self.premises.nurse_ids)]
            self.rows.emit(plan, sim, self.premises.chair_id(chair), scheduled, checkin, nurse, cut=None)

    def _seat(self, free: list[int], wanted: int, plan: Plan, sim: Sim) -> tuple[int, int]:
        """(chair index or -1 for home, local minute of day) for one booked session."""
        rng = self.rng
        if plan.home:
            return -1, wanted
        if not sim.length:  # cancelled: booked, never sat in the chair
            return rng.randrange(len(free)), wanted
        chair = min(range(len(free)), key=free.__getitem__)
        local = max(wanted, -(-free[chair] // 15) * 15)
        if local + sim.length > CLOSE:  # every chair is taken: overbook one (only huge loads)
            return rng.randrange(len(free)), wanted
        free[chair] = local + sim.length + self.ri(10, 20)
        return chair, local
