"""Setup: the clinic's name, time zone and units; chairs; staff; patients; the therapy catalog."""
from __future__ import annotations

from datetime import date
from zoneinfo import available_timezones

import streamlit as st

from db.models import ROLES
from infusion import setup, views
from pages import _ui as ui

db = ui.get_db()
who = ui.actor() or setup.SYSTEM
clinic = setup.get_clinic(db)
st.title("Setup")
ui.show_flash()

tab_clinic, tab_chairs, tab_staff, tab_patients, tab_catalog = st.tabs(
    ["Clinic", "Chairs", "Staff", "Patients", "Therapy catalog"])

with tab_clinic:
    zones = sorted(available_timezones())
    with st.form("clinic"):
        name = st.text_input("Clinic name", value=clinic.name)
        tz = st.selectbox("Time zone", zones, index=zones.index(clinic.timezone) if clinic.timezone in zones else 0)
        c1, c2 = st.columns(2)
        tu = c1.radio("Temperature", ["C", "F"], index=["C", "F"].index(clinic.temperature_unit), horizontal=True,
                      format_func=lambda u: f"°{u}")
        wu = c2.radio("Weight", ["kg", "lb"], index=["kg", "lb"].index(clinic.weight_unit), horizontal=True)
        phone = st.text_input("Clinic phone", value=clinic.phone or "")
        if st.form_submit_button("Save clinic settings", type="primary"):
            if ui.attempt(lambda: setup.update_clinic(db, who, name=name, timezone=tz, temperature_unit=tu,
                                                      weight_unit=wu, phone=phone), "Clinic settings saved."):
                st.rerun()
    st.caption("Values are stored in SI units (°C, kg) and UTC, and shown in the units and time zone above. "
               "Alert thresholds follow clinical.md §4b defaults.")
    st.json(setup.clinic_settings(clinic).thresholds.model_dump(), expanded=False)

with tab_chairs:
    chairs = setup.list_chairs(db)
    st.dataframe([{"Chair": c.name, "Kind": "Home visit" if c.kind == "home" else "Clinic chair"} for c in chairs],
                 hide_index=True)
    with st.form("chair", clear_on_submit=True):
        c1, c2 = st.columns([2, 1])
        chair_name = c1.text_input("New chair name", placeholder=f"Chair {len(chairs) + 1}")
        kind = c2.selectbox("Kind", ["chair", "home"], format_func=lambda k: "Clinic chair" if k == "chair" else "Home visit")
        if st.form_submit_button("Add chair"):
            if ui.attempt(lambda: setup.add_chair(db, who, chair_name, kind), "Chair added."):
                st.rerun()

with tab_staff:
    staff = setup.list_staff(db)
    st.dataframe([{"Name": u.display_name, "Role": u.role.replace("_", " ")} for u in staff], hide_index=True)
    with st.form("staff", clear_on_submit=True):
        c1, c2 = st.columns([2, 1])
        person = c1.text_input("Name")
        role = c2.selectbox("Role", ROLES, format_func=lambda r: r.replace("_", " "))
        if st.form_submit_button("Add staff member"):
            if ui.attempt(lambda: setup.add_staff(db, who, person, role), "Staff member added."):
                st.rerun()

with tab_patients:
    query = st.text_input("Search by name or MRN")
    found = setup.search_patients(db, query)
    st.dataframe([{"MRN": p.mrn, "Name": f"{p.family_name}, {p.given_name}",
                   "Born": p.birth_date, "Diagnosis": p.diagnosis} for p in found], hide_index=True)
    with st.form("patient", clear_on_submit=True):
        c1, c2, c3 = st.columns(3)
        mrn = c1.text_input("MRN")
        given = c2.text_input("Given name")
        family = c3.text_input("Family name")
        c4, c5 = st.columns(2)
        born = c4.date_input("Date of birth", value=None, min_value=date(1900, 1, 1))
        dx = c5.selectbox("Diagnosis", setup.DIAGNOSES)
        allergies = st.text_input("Allergies")
        if st.form_submit_button("Add patient"):
            if ui.attempt(lambda: setup.add_patient(db, who, mrn=mrn, given_name=given, family_name=family,
                                                    birth_date=born, diagnosis=dx, allergies=allergies),
                          "Patient added."):
                st.rerun()

with tab_catalog:
    st.caption("Seeded from infusion/therapy_catalog.toml; every value names its source row in clinical.md. "
               "Editing the catalog arrives with the Administration page.")
    st.dataframe(views.catalog_table(db), hide_index=True, width="stretch")
