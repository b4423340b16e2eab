"""Administration: clinic settings and alert thresholds, chairs, users, patients, the therapy catalog.

UI only; every change goes through an audited service in `infusion/`.
"""

from __future__ import annotations

import json
from datetime import date
from zoneinfo import available_timezones

import streamlit as st

from infusion.accounts import auth
from infusion.accounts.permissions import ROLE_LABELS, ROLES
from infusion.reads import sessions as views
from infusion.services import setup
from infusion.settings import AlertThresholds
from ui import common as ui

db = ui.get_db()
admin = ui.page_guard("administration")
clinic = setup.get_clinic(db)
settings = setup.clinic_settings(clinic)
st.header("Administration")
ui.show_flash()

tab_clinic, tab_users, tab_chairs, tab_patients, tab_catalog = st.tabs(
    ["Clinic", "Users", "Chairs", "Patients", "Therapy catalog"]
)

with tab_clinic:
    zones = sorted(available_timezones())
    with st.form("clinic"):
        name = st.text_input("Clinic name", value=clinic.name)
        tz = st.selectbox("Time zone", zones, index=zones.index(clinic.timezone) if clinic.timezone in zones else 0)
        c1, c2, c3 = st.columns(3)
        tu = c1.radio(
            "Temperature",
            ["C", "F"],
            index=["C", "F"].index(clinic.temperature_unit),
            horizontal=True,
            format_func=lambda u: f"°{u}",
        )
        wu = c2.radio("Weight", ["kg", "lb"], index=["kg", "lb"].index(clinic.weight_unit), horizontal=True)
        phone = c3.text_input("Clinic phone", value=clinic.phone or "")
        if st.form_submit_button("Save clinic", type="primary"):
            if ui.attempt(
                lambda: setup.update_clinic(
                    db,
                    admin,
                    name=name,
                    timezone=tz,
                    temperature_unit=tu,
                    weight_unit=wu,
                    phone=phone,
                    expected_version=clinic.version,
                ),
                "Clinic saved.",
            ):
                st.rerun()
    st.caption("Values are stored in SI units (°C, kg) and UTC; they are shown in the units and time zone above.")

    with st.form("thresholds"):
        st.markdown("**Alert thresholds** (defaults: clinical.md §4b; temperatures in °C)")
        t = settings.thresholds
        fields = list(AlertThresholds.model_fields)
        cols = st.columns(3)
        values = {}
        for i, field in enumerate(fields):
            current = getattr(t, field)
            col = cols[i % 3]
            if isinstance(current, bool):
                values[field] = col.checkbox(field.replace("_", " "), value=current, key=f"th_{field}")
            else:
                values[field] = col.number_input(
                    field.replace("_", " "),
                    value=current,
                    key=f"th_{field}",
                    step=0.1 if isinstance(current, float) else 1,
                )
        st.markdown("**Sign-in and timing**")
        c = st.columns(4)
        idle = c[0].number_input("Idle sign-out (min)", value=settings.idle_sign_out_minutes, step=1, min_value=1)
        min_pw = c[1].number_input("Minimum password length", value=settings.min_password_length, step=1, min_value=8)
        attempts = c[2].number_input(
            "Failed sign-ins before lockout", value=settings.lockout_attempts, step=1, min_value=1
        )
        lock = c[3].number_input("Lockout (min)", value=settings.lockout_minutes, step=1, min_value=1)
        if st.form_submit_button("Save thresholds and timing"):
            changes = {
                "thresholds": values,
                "idle_sign_out_minutes": int(idle),
                "min_password_length": int(min_pw),
                "lockout_attempts": int(attempts),
                "lockout_minutes": int(lock),
            }
            if ui.attempt(
                lambda: setup.update_settings(db, admin, changes, expected_version=clinic.version), "Settings saved."
            ):
                st.rerun()

with tab_users:
    users = auth.list_users(db, admin)
    st.dataframe(
        [
            {
                "User name": u.username,
                "Name": u.display_name,
                "Role": ROLE_LABELS.get(u.role, u.role),
                "Active": u.active,
                "SSO e-mail": u.email or "",
                "Password set": bool(u.password_hash),
                "Locked until": u.locked_until,
            }
            for u in users
        ],
        hide_index=True,
        width="stretch",
    )
    with st.form("add_user", clear_on_submit=True):
        st.markdown("**Add a user**")
        c = st.columns(4)
        username = c[0].text_input("User name", key="nu_username")
        display = c[1].text_input("Name", key="nu_name")
        role = c[2].selectbox("Role", ROLES, format_func=lambda r: ROLE_LABELS[r], key="nu_role")
        email = c[3].text_input("SSO e-mail (optional)", key="nu_email")
        password = st.text_input(
            f"Initial password (≥ {settings.min_password_length} characters; empty for single sign-on only)",
            type="password",
            key="nu_password",
        )
        if st.form_submit_button("Add user", type="primary"):
            if ui.attempt(
                lambda: auth.add_user(
                    db,
                    admin,
                    username=username,
                    display_name=display,
                    role=role,
                    password=password or None,
                    email=email or None,
                ),
                "User added.",
            ):
                st.rerun()
    by_id = {u.id: u for u in users}
    with st.form("edit_user"):
        st.markdown("**Change a user**")
        c = st.columns([2, 2, 2])
        chosen = c[0].selectbox(
            "User", list(by_id), format_func=lambda i: f"{by_id[i].display_name} ({by_id[i].username})", key="eu_user"
        )
        new_role = c[1].selectbox(
            "Role",
            ROLES,
            format_func=lambda r: ROLE_LABELS[r],
            key="eu_role",
            index=ROLES.index(by_id[chosen].role) if chosen else 0,
        )
        action = c[2].radio("Action", ["Change role", "Reset password", "Disable", "Enable"], key="eu_action")
        new_password = st.text_input("New password (for a reset)", type="password", key="eu_password")
        if st.form_submit_button("Apply"):
            steps = {
                "Change role": lambda: auth.change_role(db, admin, chosen, new_role),
                "Reset password": lambda: auth.set_password(db, admin, chosen, new_password),
                "Disable": lambda: auth.set_active(db, admin, chosen, False),
                "Enable": lambda: auth.set_active(db, admin, chosen, True),
            }
            if ui.attempt(lambda: steps[action]() or True, f"{action}: done."):
                st.rerun()

with tab_chairs:
    chairs = setup.list_chairs(db)
    st.dataframe(
        [{"Chair": c.name, "Kind": "Home visit" if c.kind == "home" else "Clinic chair"} for c in chairs],
        hide_index=True,
    )
    with st.form("chair", clear_on_submit=True):
        c1, c2 = st.columns([2, 1])
        chair_name = c1.text_input("New chair name", placeholder=f"Chair {len(chairs) + 1}")
        kind = c2.selectbox(
            "Kind", ["chair", "home"], format_func=lambda k: "Clinic chair" if k == "chair" else "Home visit"
        )
        if st.form_submit_button("Add chair"):
            if ui.attempt(lambda: setup.add_chair(db, admin, chair_name, kind), "Chair added."):
                st.rerun()

with tab_patients:
    query = st.text_input("Search by name or MRN")
    found = setup.search_patients(db, query)
    st.dataframe(
        [
            {
                "MRN": p.mrn,
                "Name": f"{p.family_name}, {p.given_name}",
                "Born": p.birth_date,
                "Diagnosis": p.diagnosis,
                "Phone": p.phone or "",
                "Address": p.address or "",
            }
            for p in found
        ],
        hide_index=True,
    )
    with st.form("patient", clear_on_submit=True):
        c1, c2, c3 = st.columns(3)
        mrn = c1.text_input("MRN")
        given = c2.text_input("Given name")
        family = c3.text_input("Family name")
        c4, c5 = st.columns(2)
        born = c4.date_input("Date of birth", value=None, min_value=date(1900, 1, 1))
        dx = c5.selectbox("Diagnosis", setup.DIAGNOSES)
        allergies = st.text_input("Allergies")
        c6, c7 = st.columns([2, 1])
        address = c6.text_input("Home address (home infusion)")
        phone = c7.text_input("Phone (follow-up call)")
        if st.form_submit_button("Add patient"):
            if ui.attempt(
                lambda: setup.add_patient(
                    db,
                    admin,
                    mrn=mrn,
                    given_name=given,
                    family_name=family,
                    birth_date=born,
                    diagnosis=dx,
                    allergies=allergies,
                    address=address,
                    phone=phone,
                ),
                "Patient added.",
            ):
                st.rerun()

with tab_catalog:
    st.caption(
        "Seeded from infusion/therapy_catalog.toml; every value names its source row in clinical.md. "
        "Changes apply to sessions from now on and are audited."
    )
    st.dataframe(views.catalog_table(db), hide_index=True, width="stretch")
    therapies = {t.id: t for t in setup.list_therapies(db, active_only=False)}
    picked = st.selectbox(
        "Edit therapy",
        list(therapies),
        key="cat_pick",
        format_func=lambda i: therapies[i].name + (f" ({therapies[i].brand})" if therapies[i].brand else ""),
    )
    therapy = therapies[picked]
    with st.form(f"therapy_{therapy.id}_{therapy.version}"):
        c = st.columns(3)
        dose = c[0].number_input("Usual dose", value=therapy.default_dose, key="cat_dose")
        interval = c[1].number_input(
            "Dosing interval (days)", value=therapy.dosing_interval_days, step=1, key="cat_interval"
        )
        minimum = c[2].number_input("Minimum interval (days)", value=therapy.min_interval_days, step=1, key="cat_min")
        c = st.columns(3)
        premed = c[0].checkbox("Premedication required", value=therapy.premedication_required, key="cat_premed")
        program = c[1].selectbox(
            "Program checklist",
            [None, "TOUCH", "Lemtrada REMS"],
            key="cat_program",
            index=[None, "TOUCH", "Lemtrada REMS"].index(therapy.program)
            if therapy.program in (None, "TOUCH", "Lemtrada REMS")
            else 0,
            format_func=lambda p: p or "none",
        )
        active = c[2].checkbox("In use", value=therapy.active, key="cat_active")
        premed_text = st.text_input("Premedication", value=therapy.premedication_text, key="cat_premed_text")
        windows = st.text_area(
            "Duration windows (JSON: from, to, min_minutes, max_minutes)",
            value=json.dumps(therapy.duration_windows),
            key="cat_windows",
        )
        observation = st.text_area(
            "Observation rules (JSON: from, to, minutes)", value=json.dumps(therapy.observation_rules), key="cat_obs"
        )
        schedule = st.text_area("Vitals schedule (JSON)", value=json.dumps(therapy.vitals_schedule), key="cat_sched")
        checklist = st.text_area(
            "Pre-treatment checklist (JSON list of {code, label, required}; [] = the defaults)",
            value=json.dumps(therapy.pretreatment_checks or []),
            key="cat_checks",
        )
        if st.form_submit_button("Save therapy", type="primary"):
            try:
                changes = {
                    "default_dose": dose,
                    "dosing_interval_days": int(interval) if interval else None,
                    "min_interval_days": int(minimum) if minimum else None,
                    "premedication_required": premed,
                    "program": program,
                    "active": active,
                    "premedication_text": premed_text,
                    "duration_windows": json.loads(windows),
                    "observation_rules": json.loads(observation),
                    "vitals_schedule": json.loads(schedule),
                    "pretreatment_checks": json.loads(checklist),
                }
            except json.JSONDecodeError as error:
                st.error(f"Not saved: the JSON is not valid ({error.msg} at line {error.lineno}).")
            else:
                if ui.attempt(
                    lambda: setup.update_therapy(db, admin, therapy.id, changes, expected_version=therapy.version),
                    "Therapy saved.",
                ):
                    st.rerun()
