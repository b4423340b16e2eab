"""The Trends filter form: dates, sites, therapies, chairs, nurses, first or later infusions, clinic or home."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

import streamlit as st

from infusion.reads.trends import TrendFilters
from ui.forms import entry_form

Infusion = Literal["all", "first", "later"]
Location = Literal["all", "clinic", "home"]
INFUSIONS: dict[Infusion, str] = {"all": "all", "first": "first only", "later": "2nd and later"}
LOCATIONS: dict[Location, str] = {"all": "clinic + home", "clinic": "clinic chairs", "home": "home visits"}


def _day(value: object, default: date) -> date:
    return value if isinstance(value, date) else default


def trend_filters(
    therapies: dict[int, str],
    chairs: dict[int, str],
    nurses: dict[int, str],
    today: date,
    sites: dict[int, str] | None = None,
) -> TrendFilters | None:
    """The filters as applied (None, with the reason shown, when they cannot be).

    `sites`: the sites the person holds (id → name). With two or more, a site picker, all of them
    picked at first; every site picked (or none) leaves `site_ids` None, which the service reads as
    every site the person holds."""
    sites = sites or {}
    with entry_form("trend_filters") as form:
        k = form.key
        picked: list[int] = []
        if len(sites) > 1:
            picked = st.multiselect(
                "Sites", list(sites), default=list(sites), format_func=lambda i: sites[i], key=k("site")
            )
        c = st.columns([1, 1, 2])
        start = c[0].date_input("From", value=today - timedelta(days=365), key=k("from"))
        end = c[1].date_input("To", value=today, key=k("to"))
        therapy_ids = c[2].multiselect("Therapy", list(therapies), format_func=lambda i: therapies[i], key=k("therapy"))
        d = st.columns([2, 2, 1, 1])
        chair_ids = d[0].multiselect("Chair", list(chairs), format_func=lambda i: chairs[i], key=k("chair"))
        nurse_ids = d[1].multiselect(
            "Nurse (who started the IV)", list(nurses), format_func=lambda i: nurses[i], key=k("nurse")
        )
        infusion = d[2].selectbox("Infusions", list(INFUSIONS), key=k("infusion"), format_func=lambda v: INFUSIONS[v])
        location = d[3].selectbox("Where", list(LOCATIONS), key=k("location"), format_func=lambda v: LOCATIONS[v])
        form.submit("Apply filters", type="primary")
    try:
        return TrendFilters(
            start=_day(start, today - timedelta(days=365)),
            end=_day(end, today),
            therapy_ids=tuple(therapy_ids),
            chair_ids=tuple(chair_ids),
            nurse_ids=tuple(nurse_ids),
            infusion=infusion or "all",
            location=location or "all",
            site_ids=None if not picked or set(picked) == set(sites) else tuple(picked),
        )
    except ValueError as error:
        st.error(f"Filters not applied: {error}")
        return None
