"""The Sites tab: the network's sites, adding one, and editing one with its alert thresholds."""

from __future__ import annotations

from zoneinfo import available_timezones

import streamlit as st

from db.engine import Database
from db.models import Clinic
from infusion.accounts.actor import Actor
from infusion.services import setup
from ui import forms
from ui.administration.clinic import clinic_form, opening_hours_form, thresholds_form


def site_label(site: Clinic) -> str:
    return f"{site.name} ({site.code})" + ("" if site.active else " · closed")


def sites_tab(db: Database, admin: Actor, sites: list[Clinic], working: Clinic) -> None:
    st.dataframe(
        [
            {
                "Code": s.code,
                "Site": s.name,
                "Time zone": s.timezone,
                "Temperature": f"°{s.temperature_unit}",
                "Weight": s.weight_unit,
                "Phone": s.phone or "",
                "Open": s.active,
            }
            for s in sites
        ],
        hide_index=True,
        width="stretch",
    )
    by_id = {s.id: s for s in sites}
    ids = list(by_id)
    picked = st.selectbox(
        "Edit site",
        ids,
        index=ids.index(working.id) if working.id in ids else 0,
        format_func=lambda i: site_label(by_id[i]),
        key="site_edit_pick",
    )
    if picked is not None:
        site = by_id[picked]
        clinic_form(db, admin, site)
        thresholds_form(db, admin, site, setup.clinic_settings(site))
        opening_hours_form(db, admin, site, setup.clinic_settings(site))
    with st.expander("➕ Add a site", key="add_site_open", on_change="rerun"):
        add_site_form(db, admin, working)


def add_site_form(db: Database, admin: Actor, working: Clinic) -> None:
    """A refused site (code taken, unknown zone) keeps everything typed, the reason beside the button.
    Its thresholds start at the documented defaults; edit them above once it is added."""
    zones = sorted(available_timezones())
    with forms.entry_form("add_site") as form:
        k = form.key
        c = st.columns([3, 1])
        name = c[0].text_input("Site name", key=k("name"))
        code = c[1].text_input("Code", key=k("code"), placeholder="e.g. BOS")
        tz = st.selectbox(
            "Time zone",
            zones,
            index=zones.index(working.timezone) if working.timezone in zones else 0,
            key=k("tz"),
        )
        d = st.columns([1, 1, 2])
        tu = d[0].radio("Temperature", ["C", "F"], horizontal=True, format_func=lambda u: f"°{u}", key=k("tu"))
        wu = d[1].radio("Weight", ["kg", "lb"], horizontal=True, key=k("wu"))
        phone = d[2].text_input("Site phone", key=k("phone"))
        if form.submit("Add site", type="primary"):
            form.save(
                lambda: setup.add_site(db, admin, name, code, tz, tu, wu, phone or None),
                lambda site: f"Site {site.name} ({site.code}) added.",
            )
