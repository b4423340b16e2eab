"""Trends for managers: reaction rates with uncertainty, p-chart, durations, chair use, completeness,
and with two sites or more each site's figures and the sites compared (funnel plot).

The filter form, the numbers beside each figure (with a spreadsheet-safe CSV) and the network parts
live in `ui/trends/`.
"""

from __future__ import annotations

import streamlit as st

from infusion.charts import trends as trend_charts
from infusion.clock import local_date, utcnow
from infusion.errors import ChairsideError
from infusion.reads.trends import TrendFilters
from infusion.reads.trends import service as trends
from infusion.services.setup import get_clinic
from ui import common as ui
from ui.trends.chair_time import chair_utilisation, time_against_label
from ui.trends.filters import trend_filters
from ui.trends.numbers import numbers, table
from ui.trends.sites import each_site_durations, each_site_table, sites_compared, zone_note

db = ui.get_db()
viewer = ui.page_guard("trends")
clinic = get_clinic(db)
st.header("Trends")


@st.cache_data(ttl=300, max_entries=64, show_spinner="Computing…")
def cached_trends(
    url: str, data_version: int, filters: TrendFilters, site_ids: tuple[int, ...] | None, pchart_therapy: int | None
) -> trends.Trends:
    """Small frames only, keyed by the filters, the sites they cover and the trend summaries' version
    (stored in the database: any write that changes a figure moves it, in any server process; views and
    audit rows do not). The filters were narrowed to the viewer's sites (`trends.scope`) before this is
    called, so two people holding different sites never share an entry."""
    return trends.load(db, viewer, filters, pchart_therapy)


therapies, chairs, nurses = trends.filter_options(db, viewer)
# the default period ends on the working site's today, not UTC's (an evening in New York is tomorrow in UTC)
today = local_date(utcnow(), ui.working_site(db, viewer).timezone)
filters = trend_filters(therapies, chairs, nurses, today, trends.site_options(db, viewer))
if filters is None:
    st.stop()
pchart_therapy = filters.therapy_ids[0] if len(filters.therapy_ids) == 1 else None
try:
    filters = trends.scope(db, viewer, filters)
    data = cached_trends(ui.database_url(), trends.data_version(db), filters, filters.site_ids, pchart_therapy)
except ChairsideError as error:
    ui.show_error(error, prefix="Not shown.")
    st.stop()

zone_note(data.sites)

if data.rates.empty:
    st.info("No completed sessions match these filters yet. Trends appear once sessions are discharged.")


st.subheader("Reaction rate per therapy")
st.caption(
    "Sessions with at least one reaction ÷ completed (discharged) sessions, per 100 infusions, with a 95 % "
    "Wilson interval. Entered-in-error reactions are excluded. Reactions can occur up to 24 h after an "
    "infusion (Ocrevus and Briumvi labels): those reported at the next-day follow-up call count too, and are split out below."
)
st.plotly_chart(trend_charts.reaction_rate_figure(data.rates), width="stretch", key="chart_1")
numbers(data.rates, "reaction_rates", "dl_rates", filters)

st.markdown("**During the session vs within 24 h after** (delayed reactions from the next-day follow-up call)")
table(data.delayed, "delayed_reactions")

c1, c2 = st.columns(2)
with c1:
    st.markdown("**By worst CTCAE grade**")
    st.plotly_chart(trend_charts.grade_figure(data.by_grade), width="stretch", key="chart_2")
    numbers(data.by_grade, "reaction_rates_by_grade", "dl_grade", filters)
with c2:
    st.markdown("**By infusion number**")
    st.plotly_chart(trend_charts.infusion_number_figure(data.by_number), width="stretch", key="chart_3")
    numbers(data.by_number, "reaction_rates_by_infusion", "dl_number", filters)

st.subheader("Monthly reaction rate (p-chart)")
title = therapies.get(pchart_therapy, "") if pchart_therapy else "All therapies (pick one therapy for its own chart)"
st.caption(
    "Share of completed sessions with a reaction each month; dashed lines: 3σ limits around this period's rate. "
    "A month outside its limits is a red cross (⚠); a month with no completed session is a gap."
)
st.plotly_chart(
    trend_charts.pchart_figure(data.pchart, title, filters.start, filters.end), width="stretch", key="chart_4"
)
numbers(data.pchart, "pchart", "dl_pchart", filters)

st.subheader("Session durations against the label")
st.caption(
    "Boxes: middle half and median; whiskers: shortest and longest; dashed line: mean. Green: the label's time "
    "(a band for a range, a dotted arrow for 'at least'). Read from 5-minute bins, so quartiles, shortest and "
    "longest are within 5 minutes; counts over and under the window are exact."
)
c1, c2 = st.columns(2)
with c1:
    st.markdown("**IV start → stop** (green band: label range)")
    st.plotly_chart(
        trend_charts.duration_figure(
            data.duration_summary, data.duration_windows, "infusion_minutes", "minutes", filters.infusion
        ),
        width="stretch",
        key="chart_5",
    )
with c2:
    st.markdown("**Chair time: check-in → discharge**")
    st.plotly_chart(
        trend_charts.duration_figure(data.duration_summary, data.duration_windows, "chair_minutes", "minutes"),
        width="stretch",
        key="chart_6",
    )
numbers(data.duration_summary, "durations", "dl_durations", filters)
each_site_durations(data, filters)

chair_utilisation(data, filters)
time_against_label(data, filters)

st.subheader("Data completeness")
table(data.completeness, "completeness")
each_site_table(data.completeness_by_site, data, "completeness_by_site", filters)
if not data.incomplete_sessions.empty:
    numbers(data.incomplete_sessions, "incomplete_sessions", "dl_incomplete", filters)

sites_compared(data, filters)
