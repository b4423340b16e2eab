"""The Chairs and Patients tabs: the lists, and adding a chair (at a site) or a patient."""

from __future__ import annotations

from datetime import date

import streamlit as st

from db.engine import Database
from db.models import Clinic
from infusion.accounts.actor import Actor
from infusion.services import setup
from ui import forms

KINDS = {"chair": "Clinic chair", "home": "Home visit"}


def chairs_tab(db: Database, admin: Actor, sites: list[Clinic], working_id: int) -> None:
    """Every site's chairs, and adding one at a site (the one the administrator works in, to start)."""
    labels = {s.id: f"{s.name} ({s.code})" for s in sites}
    chairs = sorted(setup.list_chairs(db), key=lambda c: (labels.get(c.site_id, ""), c.kind, c.id))
    st.dataframe(
        [
            {"Site": labels.get(c.site_id, str(c.site_id)), "Chair": c.name, "Kind": KINDS.get(c.kind, c.kind)}
            for c in chairs
        ],
        hide_index=True,
    )
    open_ids = [s.id for s in sites if s.active] or [working_id]
    with forms.entry_form("chair") as form:
        c0, c1, c2 = st.columns([2, 2, 1])
        site = c0.selectbox(
            "Site",
            open_ids,
            index=open_ids.index(working_id) if working_id in open_ids else 0,
            format_func=lambda i: labels.get(i, str(i)),
            key=form.key("site"),
        )
        at_site = [c for c in chairs if c.site_id == site]
        name = c1.text_input(
            "New chair name",
            placeholder=f"Chair {len(at_site) + 1}",
            key=form.key("name"),
        )
        kind = c2.selectbox("Kind", list(KINDS), format_func=lambda k: KINDS[k], key=form.key("kind"))
        if form.submit("Add chair"):
            form.save(
                lambda: setup.add_chair(db, admin, name, kind, site_id=site),
                lambda chair: f"{chair.name} added at {labels.get(chair.site_id, 'the site')}.",
            )


def patients_tab(db: Database, admin: Actor) -> None:
    query = st.text_input("Search by name or MRN", key="adm_patient_search")
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
    with forms.entry_form("patient") as form:
        k = form.key
        c1, c2, c3 = st.columns(3)
        mrn = c1.text_input("MRN", key=k("mrn"))
        given = c2.text_input("Given name", key=k("given"))
        family = c3.text_input("Family name", key=k("family"))
        c4, c5 = st.columns(2)
        born = c4.date_input("Date of birth", value=None, min_value=date(1900, 1, 1), key=k("born"))
        dx = c5.selectbox("Diagnosis", setup.DIAGNOSES, key=k("diagnosis"))
        allergies = st.text_input("Allergies", key=k("allergies"))
        c6, c7 = st.columns([2, 1])
        address = c6.text_input("Home address (home infusion)", key=k("address"))
        phone = c7.text_input("Phone (follow-up call)", key=k("phone"))
        if form.submit("Add patient"):
            form.save(
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
                lambda p: f"Patient {p.family_name}, {p.given_name} ({p.mrn}) added.",
            )
