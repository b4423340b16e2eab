"""The numbers behind each Trends figure, as people read them: one set of headings with units for every
table the page shows and every CSV it offers (`HEADINGS`, `shown`), instead of the reads' column names.

Every Trends table goes through `table` (on screen) and `download` (the spreadsheet-safe CSV of
`ui.common.csv_download`); `numbers` is the usual pair under a figure, in an expander. A column is named by
what it holds and its unit ("mean chair time (min)", "chair-hours occupied (h)", "per 100 completed");
shares stay fractions in the CSV and show as percentages on screen. The reads' ids (therapy, site) are hidden on
screen and kept in the CSV, named. A column that means something else in one table ("sessions" in the
grade table counts the sessions of that worst grade) is named for that table in `_IN_TABLE`, keyed by the
table's name without its "_by_site". Trends tables carry no temperature or weight, so no site unit appears.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from infusion.exports.csv_writer import neutralise
from infusion.reads.trends import TrendFilters
from infusion.reads.trends.completeness import CHECK_LABELS
from ui import common as ui


@dataclass(frozen=True)
class Heading:
    """A column as shown: its heading, how its numbers are shown on screen (a `st.column_config` number
    format; "percent" for a share kept as a fraction, "month" for a month), and whether it is hidden there."""

    text: str
    format: str | None = None
    hidden: bool = False


_STAT_WORDS = {
    "mean": "mean",
    "min": "shortest",
    "q1": "lower quartile",
    "median": "median",
    "q3": "upper quartile",
    "max": "longest",
}

#: the one mapping from a read's column to its heading, for every Trends table
HEADINGS: dict[str, Heading] = {
    # who and what
    "site_id": Heading("site id", hidden=True),
    "site": Heading("site"),
    "code": Heading("site code"),
    "timezone": Heading("time zone"),
    "therapy_id": Heading("therapy id", hidden=True),
    "therapy": Heading("therapy"),
    "grade": Heading("worst CTCAE grade"),
    "infusion_bucket": Heading("infusion number"),
    # reaction rates (per 100 completed sessions, 95 % Wilson interval)
    "completed": Heading("completed sessions"),
    "sessions": Heading("completed sessions"),
    "with_reaction": Heading("sessions with a reaction"),
    "rate_per_100": Heading("per 100 completed", "%.1f"),
    "ci_low_per_100": Heading("95 % CI low (per 100)", "%.1f"),
    "ci_high_per_100": Heading("95 % CI high (per 100)", "%.1f"),
    "during_session": Heading("sessions with a reaction during the session"),
    "within_24h_after": Heading("sessions with a reaction within 24 h after"),
    "rate_during_per_100": Heading("during the session, per 100 completed", "%.1f"),
    "rate_after_per_100": Heading("within 24 h after, per 100 completed", "%.1f"),
    # p-chart
    "month": Heading("month", "month"),
    "n": Heading("completed sessions"),
    "x": Heading("sessions with a reaction"),
    "p": Heading("share with a reaction", "percent"),
    "p_bar": Heading("centre p̄ (this period)", "percent"),
    "ucl": Heading("upper limit (3σ)", "percent"),
    "lcl": Heading("lower limit (3σ)", "percent"),
    "out_of_control": Heading("outside the limits"),
    # durations
    **{
        f"infusion_minutes_{stat}": Heading(f"IV start → stop, {word} (min)", "%.0f")
        for stat, word in _STAT_WORDS.items()
    },
    **{
        f"chair_minutes_{stat}": Heading(f"chair time (check-in → discharge), {word} (min)", "%.0f")
        for stat, word in _STAT_WORDS.items()
    },
    "over_window": Heading("sessions longer than the label"),
    "under_window": Heading("sessions shorter than the label"),
    # chair utilisation
    "weekday": Heading("weekday number", hidden=True),
    "weekday_name": Heading("weekday"),
    "hour": Heading("hour (local, from)"),
    "chair_hours_available": Heading("chair-hours open (h)", "%.1f"),
    "chair_hours_occupied": Heading("chair-hours occupied (h)", "%.1f"),
    "share": Heading("share of chair-hours occupied", "percent"),
    # infusion and chair time with vs without a reaction, against the label's time
    "mean_infusion_minutes": Heading("mean IV start → stop (min)", "%.0f"),
    "mean_planned_minutes": Heading("label time used, mean (min)", "%.0f"),
    "mean_extra_minutes": Heading("difference from label time, mean (min; negative = shorter)", "%.0f"),
    "mean_chair_minutes": Heading("mean chair time, check-in → discharge (min)", "%.0f"),
    # data completeness
    "check": Heading("check code"),
    "label": Heading("check"),
    "checked": Heading("sessions checked"),
    "flagged": Heading("sessions flagged"),
    "session_id": Heading("session"),
    "date": Heading("date (local)"),
    "patient": Heading("patient"),
    "mrn": Heading("MRN"),
    "chair": Heading("chair"),
    "status": Heading("status"),
    "detail": Heading("detail"),
    "gap_minutes": Heading("longest gap between vitals (min)", "%.0f"),
    # sites compared (funnel plot): shares of completed sessions, kept as fractions
    "reacted": Heading("sessions with a reaction"),
    "rate": Heading("share with a reaction", "percent"),
    "network_rate": Heading("network share", "percent"),
    "lower95": Heading("95 % limit low", "percent"),
    "upper95": Heading("95 % limit high", "percent"),
    "lower998": Heading("99.8 % limit low", "percent"),
    "upper998": Heading("99.8 % limit high", "percent"),
    "signal": Heading("signal"),
}

#: the few columns that mean something else in one table (keyed by the table's name without "_by_site")
_IN_TABLE: dict[str, dict[str, Heading]] = {
    "reaction_rates_by_grade": {
        "sessions": Heading("sessions with this worst grade"),
        "rate_per_100": Heading("with this worst grade, per 100 completed", "%.1f"),
    },
    "time_lost": {"with_reaction": Heading("with a reaction")},
    "completeness": {"check": Heading("check code", hidden=True), "share": Heading("share flagged", "percent")},
    "incomplete_sessions": {"check": Heading("check")},
}

#: columns whose values are codes, shown (and downloaded) as words, per table
_VALUES: dict[str, dict[str, dict[str, str]]] = {"incomplete_sessions": {"check": CHECK_LABELS}}


def heading(column: str, table: str = "") -> Heading:
    """The heading of `column` in `table`; a column no one has named yet reads as words, never as a formula."""
    family = table.removesuffix("_by_site")
    found = _IN_TABLE.get(family, {}).get(column) or HEADINGS.get(column)
    return found or Heading(neutralise(str(column).replace("_", " ")))


def shown(frame: pd.DataFrame, table: str = "") -> pd.DataFrame:
    """`frame` with its columns under their headings (every column; code columns in words): what the CSV
    carries."""
    codes = _VALUES.get(table.removesuffix("_by_site"), {})
    if any(column in frame.columns for column in codes):
        frame = frame.assign(**{c: frame[c].map(lambda v, m=m: m.get(v, v)) for c, m in codes.items() if c in frame})
    return frame.rename(columns={c: heading(str(c), table).text for c in frame.columns})


def _column_config(frame: pd.DataFrame, table: str) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for column in frame.columns:
        h = heading(str(column), table)
        if h.hidden:
            config[h.text] = None
        elif h.format == "month":
            config[h.text] = st.column_config.DateColumn(h.text, format="MMM YYYY")
        elif h.format:
            config[h.text] = st.column_config.NumberColumn(h.text, format=h.format)
    return config


def table(frame: pd.DataFrame, name: str) -> None:
    """A Trends table on screen under its headings (ids hidden, shares as percentages)."""
    st.dataframe(shown(frame, name), hide_index=True, width="stretch", column_config=_column_config(frame, name))


def download(frame: pd.DataFrame, name: str, key: str, filters: TrendFilters, *, slug: str | None = None) -> None:
    """The table as a spreadsheet-safe CSV under the same headings (the shared writer, via `ui.csv_download`)."""
    file_name = f"chairside_{slug or name}_{filters.start}_{filters.end}.csv"
    ui.csv_download("Download CSV", shown(frame, name), file_name=file_name, key=key)


def numbers(frame: pd.DataFrame, name: str, key: str, filters: TrendFilters) -> None:
    """The numbers under a figure: the table and its CSV, in an expander."""
    with st.expander("Numbers"):
        table(frame, name)
        download(frame, name, key, filters)
