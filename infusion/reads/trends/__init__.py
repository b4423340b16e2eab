"""Metrics for the managers' Trends page and the data-completeness checks (issue 3).

Every figure function takes the database and a `TrendFilters` and returns a
small DataFrame whose columns are listed in the matching `*_COLUMNS` constant,
so a page can draw (and offer as CSV) without knowing any SQL. Aggregation
happens in SQL (SQLAlchemy Core, GROUP BY) on SQLite and PostgreSQL alike; the
only per-session rows that ever leave the database are the few columns a box
plot or the chair-hour expansion needs, bounded by the filters. One module per
figure; `filters`, `catalog` and `sql` hold what they share, `service` is the
role-checked call a page makes.

Definitions, chosen here because no clinical source sets them (docs/clinical-basis.md §10):

- A session belongs to the site of its chair, and to that site's local day it was
  **checked in** (`checked_in_at`): in a network spanning zones each site keeps its own
  days, months and opening hours (`TrendFilters.site_ids`; the service narrows the
  selection to the sites the person holds). Sessions never checked in (scheduled, cancelled, deferred
  before arrival) take part in no metric.
- A **completed** session is one with status `discharged`. Sessions still in
  observation are left out of every rate: a reaction can still start during
  observation, so counting them would bias the rate down.
- A session **has a reaction** when it has at least one reaction row with
  status `active`. Rates are computed from the reaction rows (a LEFT JOIN of
  active reactions grouped per session, giving the worst grade too), not from
  the `reaction_count`/`worst_grade` summaries, so an entry marked
  entered-in-error or corrected stops counting at once, whatever the correction
  code does to the summaries. The same rule (status = 'active') applies to
  vitals and rate entries everywhere in this package.
- The **nurse** of a session is the one who documented the IV start (the active
  'start' rate entry); a session without one matches no nurse filter.
- **First / later** infusions use `infusion_session.infusion_number` (1 vs ≥ 2).
- **Durations** and label windows: see `catalog`; clinic-local **months**: see `sql`.

The public functions read the trend summaries (`summarised`, kept in the writing
transaction by `maintenance`, rebuilt by `python -m infusion.reads.trends.rebuild`);
the raw-row queries of the figure modules (`raw`) are the reference they are tested
against.
"""

from infusion.reads.trends.completeness import (
    CHECK_LABELS,
    COMPLETENESS_COUNT_COLUMNS,
    COMPLETENESS_SESSION_COLUMNS,
    CompletenessReport,
)
from infusion.reads.trends.durations import (
    DURATION_COLUMNS,
    DURATION_SUMMARY_COLUMNS,
    DURATION_WINDOW_COLUMNS,
    duration_windows,
)
from infusion.reads.trends.filters import TrendFilters, utc_bounds
from infusion.reads.trends.pchart import PCHART_COLUMNS
from infusion.reads.trends.reactions import (
    GRADE_RATE_COLUMNS,
    INFUSION_BUCKETS,
    INFUSION_NUMBER_RATE_COLUMNS,
    REACTION_RATE_COLUMNS,
)
from infusion.reads.trends.sites import SITE_COLUMNS, funnel_counts, reaction_funnel, selected_sites
from infusion.reads.trends.sql import epoch_seconds, minutes_between, month_bucket
from infusion.reads.trends.summarised import (
    chair_utilisation,
    completeness,
    completeness_by_site,
    delayed_reaction_rates,
    duration_summary,
    monthly_reaction_pchart,
    reaction_rates,
    reaction_rates_by_grade,
    reaction_rates_by_infusion_number,
    reaction_time_lost,
    session_durations,
)
from infusion.reads.trends.time_lost import TIME_LOST_COLUMNS
from infusion.reads.trends.utilisation import UTILISATION_COLUMNS, WEEKDAY_NAMES

__all__ = [
    "CHECK_LABELS",
    "COMPLETENESS_COUNT_COLUMNS",
    "COMPLETENESS_SESSION_COLUMNS",
    "DURATION_COLUMNS",
    "DURATION_SUMMARY_COLUMNS",
    "DURATION_WINDOW_COLUMNS",
    "GRADE_RATE_COLUMNS",
    "INFUSION_BUCKETS",
    "INFUSION_NUMBER_RATE_COLUMNS",
    "PCHART_COLUMNS",
    "REACTION_RATE_COLUMNS",
    "SITE_COLUMNS",
    "TIME_LOST_COLUMNS",
    "UTILISATION_COLUMNS",
    "WEEKDAY_NAMES",
    "CompletenessReport",
    "TrendFilters",
    "chair_utilisation",
    "completeness",
    "completeness_by_site",
    "delayed_reaction_rates",
    "duration_summary",
    "duration_windows",
    "epoch_seconds",
    "funnel_counts",
    "minutes_between",
    "month_bucket",
    "monthly_reaction_pchart",
    "reaction_rates",
    "reaction_rates_by_grade",
    "reaction_funnel",
    "reaction_rates_by_infusion_number",
    "reaction_time_lost",
    "selected_sites",
    "session_durations",
    "utc_bounds",
]
