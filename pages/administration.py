"""Administration: clinic settings and alert thresholds, chairs, users, patients, the therapy catalog.

UI only; every change goes through an audited service in `infusion/`, every form through
`ui.forms` (a refused save keeps what was typed). The tabs keep their place across saves,
so a refusal shows where the administrator is working. The parts live in `ui/administration/`.
"""

from __future__ import annotations

import streamlit as st

from infusion.services import setup
from ui import common as ui
from ui.administration.catalog import catalog_tab
from ui.administration.clinic import clinic_form, thresholds_form
from ui.administration.displays import displays_tab
from ui.administration.records import chairs_tab, patients_tab
from ui.administration.users import users_tab

TABS = ["Clinic", "Users", "Chairs", "Patients", "Therapy catalog", "Wall displays"]

db = ui.get_db()
admin = ui.page_guard("administration")
clinic = setup.get_clinic(db)
settings = setup.clinic_settings(clinic)
st.header("Administration")
ui.show_flash()

tab_clinic, tab_users, tab_chairs, tab_patients, tab_catalog, tab_displays = st.tabs(
    TABS, key="admin_tab", on_change="rerun"
)
with tab_clinic:
    clinic_form(db, admin, clinic)
    thresholds_form(db, admin, clinic, settings)
with tab_users:
    users_tab(db, admin, settings)
with tab_chairs:
    chairs_tab(db, admin)
with tab_patients:
    patients_tab(db, admin)
with tab_catalog:
    catalog_tab(db, admin)
with tab_displays:
    displays_tab(db, admin, clinic.timezone)
