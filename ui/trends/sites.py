"""The Trends page's network parts: which zone the figures use, each site's breakdown beside a figure,
and the "Sites compared" section (the funnel plot of reaction rates per site, its table and CSV)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from infusion.charts import trends as trend_charts
from infusion.charts.funnel import funnel_caption, funnel_figure
from infusion.reads.trends import TrendFilters
from infusion.reads.trends.service import Trends
from ui.trends.numbers import download, numbers, table


def zone_note(sites: pd.DataFrame) -> None:
    """Which clock the figures use: the one site's zone, or each site's own local day in a network."""
    if sites.empty:
        return
    if len(sites) == 1:
        site = sites.iloc[0]
        st.caption(f"Days, months and hours are {site['site']}'s local time ({site['timezone']}).")
        return
    zones = ", ".join(f"{r['site']} {r['timezone']}" for r in sites.to_dict("records"))
    st.caption(
        "Days, months and hours are each site's local day and time: a session counts on the day it was "
        f"checked in at its own site ({zones}). Network figures add the sites' sessions together."
    )


def each_site_durations(data: Trends, filters: TrendFilters) -> None:
    if not data.compares_sites:
        return
    st.markdown("**Each site** (IV start → stop, the same label ranges)")
    figure = trend_charts.duration_by_site_figure(data.duration_summary_by_site, "infusion_minutes", "minutes")
    st.plotly_chart(figure, width="stretch", key="chart_durations_sites")
    numbers(data.duration_summary_by_site, "durations_by_site", "dl_durations_sites", filters)


def each_site_utilisation(data: Trends, filters: TrendFilters) -> None:
    if not data.compares_sites:
        return
    st.markdown("**Each site** (its own chairs, in its own opening hours and time zone)")
    st.plotly_chart(
        trend_charts.site_utilisation_figure(data.utilisation_by_site), width="stretch", key="chart_util_sites"
    )
    numbers(data.utilisation_by_site, "utilisation_by_site", "dl_util_sites", filters)


def each_site_table(frame: pd.DataFrame, data: Trends, name: str, filters: TrendFilters) -> None:
    """A per-site table under the network one (time against the label, completeness), with its CSV."""
    if not data.compares_sites:
        return
    st.markdown("**Each site**")
    table(frame, name)
    download(frame, name, f"dl_{name}", filters)


def _default_therapy(funnel: pd.DataFrame, therapies: list[str], filters: TrendFilters) -> int:
    if len(filters.therapy_ids) == 1:
        match = funnel.loc[funnel["therapy_id"] == filters.therapy_ids[0], "therapy"]
        if not match.empty:
            return therapies.index(str(match.iloc[0]))
    busiest = funnel.groupby("therapy")["sessions"].sum().idxmax()
    return therapies.index(str(busiest))


def sites_compared(data: Trends, filters: TrendFilters) -> None:
    """Shown with two sites or more: each site's reaction rate for one therapy against the network's."""
    if not data.compares_sites:
        return
    st.subheader("Sites compared")
    funnel = data.funnel
    if funnel.empty:
        st.info("No completed sessions at these sites in this period: nothing to compare yet.")
        return
    therapies = sorted(str(t) for t in funnel["therapy"].unique())
    therapy = st.selectbox(
        "Therapy", therapies, index=_default_therapy(funnel, therapies, filters), key="funnel_therapy"
    )
    st.plotly_chart(funnel_figure(funnel, therapy), width="stretch", key="chart_funnel")
    st.caption(funnel_caption())
    part = funnel[funnel["therapy"] == therapy].reset_index(drop=True)
    left, right = st.columns([5, 1])
    with left:
        table(part.drop(columns=["therapy"]), "funnel")  # one therapy is picked; ids are hidden by heading
    with right:
        slug = "".join(ch if ch.isalnum() else "_" for ch in therapy.lower())
        download(part, "funnel", "dl_funnel", filters, slug=f"funnel_{slug}")
    st.markdown("**Reaction rate per site and therapy** (95 % Wilson interval)")
    table(data.rates_by_site, "reaction_rates_by_site")
