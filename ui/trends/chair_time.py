"""The Trends page's chair-time parts: chair utilisation (the heatmap, or a plain message for home visits,
which use no clinic chair) and infusion and chair time with vs without a reaction, against the label's time."""

from __future__ import annotations

import streamlit as st

from infusion.charts import trends as trend_charts
from infusion.reads.trends import TrendFilters
from infusion.reads.trends.service import Trends
from ui.trends.filters import LOCATIONS
from ui.trends.numbers import numbers, table
from ui.trends.sites import each_site_table, each_site_utilisation

#: shown instead of the heatmap when the filter picks home visits only
HOME_VISITS_NO_CHAIRS = (
    "Chair utilisation counts clinic chairs only, and home visits use none: there is nothing to show for "
    f"{LOCATIONS['home']}. Pick “{LOCATIONS['clinic']}” or “{LOCATIONS['all']}” under Where to see it."
)

#: under the table of infusion and chair time with vs without a reaction
LABEL_TIME_CAPTION = (
    "Label time used: the label's maximum infusion time for the therapy and infusion number (its minimum where "
    "the label gives only “at least”, e.g. Ocrevus ≥ 2.5 h, IVIG ≥ 2 h); a difference below zero means the "
    "infusions ended before it, not time lost. What a reaction costs is how much longer the rows with a reaction "
    "are than those without."
)


def chair_utilisation(data: Trends, filters: TrendFilters) -> None:
    st.subheader("Chair utilisation")
    if filters.location == "home":
        st.info(HOME_VISITS_NO_CHAIRS, icon="🏠")
        return
    st.caption(
        "Share of chair-hours occupied (check-in to discharge), by weekday and hour in each site's time zone, "
        "within each site's opening hours (set per site in Administration → Sites; 07:00–19:00 Monday to "
        "Friday until a site sets its own). An hour a site is closed adds none of its chairs. Home visits use "
        "no clinic chair and are not counted."
    )
    st.plotly_chart(trend_charts.utilisation_figure(data.utilisation), width="stretch", key="chart_7")
    numbers(data.utilisation, "utilisation", "dl_util", filters)
    each_site_utilisation(data, filters)


def time_against_label(data: Trends, filters: TrendFilters) -> None:
    """The time-lost read (`reaction_time_lost`) as what it is: mean infusion and chair minutes per therapy,
    with and without a reaction, and the mean difference from the label's time (negative: ended before it)."""
    st.markdown("**Infusion and chair time, with and without a reaction** (against the label's time)")
    table(data.time_lost, "time_lost")
    st.caption(LABEL_TIME_CAPTION)
    each_site_table(data.time_lost_by_site, data, "time_lost_by_site", filters)
