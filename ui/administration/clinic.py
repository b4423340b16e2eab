"""Editing one site: name, code, time zone, display units, phone and open; its alert thresholds and
sign-in timing; its opening hours."""

from __future__ import annotations

from typing import Any
from zoneinfo import available_timezones

import streamlit as st

from db.engine import Database
from db.models import Clinic
from infusion.accounts.actor import Actor
from infusion.services import setup
from infusion.settings import AlertThresholds, ClinicSettings
from ui import forms


def clinic_form(db: Database, admin: Actor, clinic: Clinic) -> None:
    """One site's name, code, zone, units, phone and whether it is open; the keys carry the site and its
    stored version, so another site (or a change saved elsewhere) shows its own values."""
    zones = sorted(available_timezones())
    with forms.entry_form(f"clinic_{clinic.id}") as form:

        def k(field: str) -> str:
            return form.key(f"{field}_v{clinic.version}")

        c0, c1 = st.columns([3, 1])
        name = c0.text_input("Site name", value=clinic.name, key=k("name"))
        code = c1.text_input("Code", value=clinic.code, key=k("code"))
        tz = st.selectbox(
            "Time zone", zones, index=zones.index(clinic.timezone) if clinic.timezone in zones else 0, key=k("tz")
        )
        c1, c2, c3, c4 = st.columns([1, 1, 2, 1])
        tu = c1.radio(
            "Temperature",
            ["C", "F"],
            index=["C", "F"].index(clinic.temperature_unit),
            horizontal=True,
            format_func=lambda u: f"°{u}",
            key=k("temperature_unit"),
        )
        wu = c2.radio(
            "Weight", ["kg", "lb"], index=["kg", "lb"].index(clinic.weight_unit), horizontal=True, key=k("weight_unit")
        )
        phone = c3.text_input("Site phone", value=clinic.phone or "", key=k("phone"))
        active = c4.checkbox(
            "Open", value=clinic.active, key=k("active"), help="A closed site is not offered for work."
        )
        if form.submit("Save site", type="primary"):
            form.save(
                lambda: setup.update_clinic(
                    db,
                    admin,
                    site_id=clinic.id,
                    name=name,
                    code=code,
                    timezone=tz,
                    temperature_unit=tu,
                    weight_unit=wu,
                    phone=phone,
                    active=active,
                    expected_version=clinic.version,
                ),
                lambda site: f"{site.name} saved.",
            )
    st.caption("Values are stored in SI units (°C, kg) and UTC; they are shown in the site's units and time zone.")


def thresholds_form(db: Database, admin: Actor, clinic: Clinic, settings: ClinicSettings) -> None:
    with forms.entry_form(f"thresholds_{clinic.id}") as form:
        k = form.key
        st.markdown(f"**Alert thresholds at {clinic.name}** (defaults: docs/clinical-basis.md §6; temperatures in °C)")
        cols = st.columns(3)
        values: dict[str, Any] = {}
        for i, field in enumerate(AlertThresholds.model_fields):
            current = getattr(settings.thresholds, field)
            col, label = cols[i % 3], field.replace("_", " ")
            if isinstance(current, bool):
                values[field] = col.checkbox(label, value=current, key=k(f"th_{field}"))
            else:
                step = 0.1 if isinstance(current, float) else 1
                values[field] = col.number_input(label, value=current, key=k(f"th_{field}"), step=step)
        st.markdown("**Sign-in and timing**")
        rules = setup.network_security(db)
        st.caption(
            "Idle sign-out, password length and lockout apply to every account across the network, whichever "
            "site they work at (before sign-in no site is known): the strictest value of the open sites "
            f"counts, now {rules.idle_sign_out_minutes} min idle sign-out, passwords of at least "
            f"{rules.min_password_length} characters, a {rules.lockout_minutes} min lockout after "
            f"{rules.lockout_attempts} failed sign-ins. A value set here tightens them for everyone; to loosen "
            "one, loosen it at every site."
        )
        c = st.columns(4)
        idle = c[0].number_input(
            "Idle sign-out (min)", value=settings.idle_sign_out_minutes, step=1, min_value=1, key=k("idle")
        )
        min_pw = c[1].number_input(
            "Minimum password length", value=settings.min_password_length, step=1, min_value=8, key=k("min_password")
        )
        attempts = c[2].number_input(
            "Failed sign-ins before lockout", value=settings.lockout_attempts, step=1, min_value=1, key=k("attempts")
        )
        lock = c[3].number_input("Lockout (min)", value=settings.lockout_minutes, step=1, min_value=1, key=k("lock"))
        if form.submit("Save thresholds and timing"):
            changes = {
                "thresholds": values,
                "idle_sign_out_minutes": int(idle),
                "min_password_length": int(min_pw),
                "lockout_attempts": int(attempts),
                "lockout_minutes": int(lock),
            }
            form.save(
                lambda: setup.update_settings(db, admin, changes, expected_version=clinic.version, site_id=clinic.id),
                f"Settings of {clinic.name} saved.",
            )


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def opening_hours_form(db: Database, admin: Actor, clinic: Clinic, settings: ClinicSettings) -> None:
    """When the site's chairs count as available in Trends' chair utilisation (wall clock, the site's zone)."""
    with forms.entry_form(f"hours_{clinic.id}") as form:
        k = form.key
        st.markdown(f"**Opening hours at {clinic.name}** (chair utilisation in Trends counts these chair-hours)")
        c = st.columns([1, 1, 3])
        opening = c[0].number_input(
            "Opens at (hour)", value=settings.opening_hour, step=1, min_value=0, max_value=23, key=k("open")
        )
        closing = c[1].number_input(
            "Closes at (hour)", value=settings.closing_hour, step=1, min_value=1, max_value=24, key=k("close")
        )
        days = c[2].multiselect(
            "Open days",
            options=list(range(7)),
            default=list(settings.open_weekdays),
            format_func=lambda d: WEEKDAYS[d],
            key=k("days"),
        )
        if form.submit("Save opening hours"):
            changes = {"opening_hour": int(opening), "closing_hour": int(closing), "open_weekdays": sorted(days)}
            form.save(
                lambda: setup.update_settings(db, admin, changes, expected_version=clinic.version, site_id=clinic.id),
                f"Opening hours of {clinic.name} saved.",
            )
