"""Dosing intervals as the labels state them: calendar months where a label says months, days or
weeks where it says those (docs/clinical-basis.md §2).

"At least 5 months" is not 140 or 150 days: 5 calendar months after 31 January is 30 June (150
days), after 1 March is 1 August (153 days). `add_months` keeps the day of the month, or the
month's last day when the month is shorter (31 Aug + 6 months = 28/29 Feb), as
`dateutil.relativedelta` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from dateutil.relativedelta import relativedelta


def add_months(day: date, months: int) -> date:
    """The same day `months` calendar months later (clamped to the month's last day)."""
    return day + relativedelta(months=months)


@dataclass(frozen=True)
class LabelInterval:
    """A therapy's label intervals in the label's own unit. None = the label gives none in months."""

    interval_months: int | None = None
    min_months: int | None = None


#: therapy code → the label's month-based intervals (docs/clinical-basis.md §2 names each label and revision)
LABEL_MONTHS: dict[str, LabelInterval] = {
    # Ocrevus USPI §2.3: 600 mg every 6 months; "a minimum of 5 months should separate each dose"
    "ocrelizumab_iv": LabelInterval(interval_months=6, min_months=5),
    # Ocrevus Zunovo USPI: 920 mg every 6 months (no minimum stated in months: the catalog's days apply)
    "ocrelizumab_sc": LabelInterval(interval_months=6),
    # Briumvi USPI §2.3 / EU SmPC 4.2: every 24 weeks (days), "a minimum of 5 months" between doses
    "ublituximab": LabelInterval(min_months=5),
    # Lemtrada USPI §2.2: course 2 "12 months after" course 1; later courses "at least 12 months after
    # the last dose of any prior treatment course"
    "alemtuzumab": LabelInterval(interval_months=12, min_months=12),
}


def after_interval(code: str, start: date, interval_days: int | None) -> date | None:
    """`start` plus the therapy's dosing interval: the label's months if it gives months, else the days."""
    rule = LABEL_MONTHS.get(code)
    if rule is not None and rule.interval_months:
        return add_months(start, rule.interval_months)
    return start + timedelta(days=interval_days) if interval_days else None


def minimum_after(code: str, start: date, min_interval_days: int | None) -> date | None:
    """The first day the next dose is allowed: the later of the label's months and the catalog's days
    (a clinic may set a longer minimum in days; it can never shorten the label's months)."""
    candidates = []
    rule = LABEL_MONTHS.get(code)
    if rule is not None and rule.min_months:
        candidates.append(add_months(start, rule.min_months))
    if min_interval_days:
        candidates.append(start + timedelta(days=min_interval_days))
    return max(candidates) if candidates else None
