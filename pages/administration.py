"""Administration: the network's sites (settings and alert thresholds per site), users and where they work,
chairs per site, patients, the therapy catalog, wall displays.

UI only; every change goes through an audited service in `infusion/`, every form through
`ui.forms` (a refused save keeps what was typed). The tabs keep their place across saves,
so a refusal shows where the administrator is working. The parts live in `ui/administration/`.
"""

from __future__ import annotations

import streamlit as st

from infusion.services import setup
from ui import common as ui
from ui.administration.catalog import catalog_tab
from ui.administration.displays import displays_tab
from ui.administration.records import chairs_tab, patients_tab
from ui.administration.sites import sites_tab
from ui.administration.users import users_tab

TABS = ["Sites", "Users", "Chairs", "Patients", "Therapy catalog", "Wall displays"]

db = ui.get_db()
admin = ui.page_guard("administration")
site = ui.working_site(db, admin)  # the site picked in the header: where the forms start
security = setup.network_security(db)  # password length: the network's rule (strictest across sites)
sites = setup.list_sites(db, admin)
st.header("Administration")
ui.show_flash()

tab_sites, tab_users, tab_chairs, tab_patients, tab_catalog, tab_displays = st.tabs(
    TABS, key="admin_tab", on_change="rerun"
)
with tab_sites:
    sites_tab(db, admin, sites, site)
with tab_users:
    users_tab(db, admin, security, sites, site.id)
with tab_chairs:
    chairs_tab(db, admin, sites, site.id)
with tab_patients:
    patients_tab(db, admin)
with tab_catalog:
    catalog_tab(db, admin)
with tab_displays:
    displays_tab(db, admin, site.timezone, {s.id: s.name for s in sites})
