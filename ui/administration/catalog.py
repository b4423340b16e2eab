"""The Therapy catalog tab: the table, and editing one therapy (JSON rules checked before the save)."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from db.engine import Database
from db.models import Therapy
from infusion.accounts.actor import Actor
from infusion.errors import ValidationError
from infusion.reads import sessions as views
from infusion.services import setup
from ui import forms

PROGRAMS: list[str | None] = [None, "TOUCH", "Lemtrada REMS"]
JSON_FIELDS = {  # field → its label
    "duration_windows": "Duration windows (JSON: from, to, min_minutes, max_minutes)",
    "observation_rules": "Observation rules (JSON: from, to, minutes)",
    "vitals_schedule": "Vitals schedule (JSON)",
    "pretreatment_checks": "Pre-treatment checklist (JSON list of {code, label, required}; [] = the defaults)",
}


def catalog_tab(db: Database, admin: Actor) -> None:
    st.caption(
        "Seeded from infusion/therapy_catalog.toml; every value names its source in docs/clinical-basis.md. "
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
    if picked is not None:
        therapy_form(db, admin, therapies[picked])


def _parsed(texts: dict[str, str]) -> dict[str, Any]:
    try:
        return {field: json.loads(text) for field, text in texts.items()}
    except json.JSONDecodeError as error:
        raise ValidationError({"json": f"the JSON is not valid ({error.msg} at line {error.lineno})."}) from error


def therapy_form(db: Database, admin: Actor, therapy: Therapy) -> None:
    """The field keys carry the stored version: a change saved elsewhere shows its values, not the old ones."""
    with forms.entry_form(f"therapy_{therapy.id}") as form:

        def k(field: str) -> str:
            return form.key(f"{field}_v{therapy.version}")

        c = st.columns(3)
        dose = c[0].number_input("Usual dose", value=therapy.default_dose, key=k("dose"))
        interval = c[1].number_input(
            "Dosing interval (days)", value=therapy.dosing_interval_days, step=1, key=k("interval")
        )
        minimum = c[2].number_input("Minimum interval (days)", value=therapy.min_interval_days, step=1, key=k("min"))
        d = st.columns(3)
        premed = d[0].checkbox("Premedication required", value=therapy.premedication_required, key=k("premed"))
        program = d[1].selectbox(
            "Program checklist",
            PROGRAMS,
            key=k("program"),
            index=PROGRAMS.index(therapy.program) if therapy.program in PROGRAMS else 0,
            format_func=lambda p: p or "none",
        )
        active = d[2].checkbox("In use", value=therapy.active, key=k("active"))
        premed_text = st.text_input("Premedication", value=therapy.premedication_text, key=k("premed_text"))
        stored = {
            "duration_windows": therapy.duration_windows,
            "observation_rules": therapy.observation_rules,
            "vitals_schedule": therapy.vitals_schedule,
            "pretreatment_checks": therapy.pretreatment_checks or [],
        }
        texts = {
            field: st.text_area(label, value=json.dumps(stored[field]), key=k(field))
            for field, label in JSON_FIELDS.items()
        }
        if form.submit("Save therapy", type="primary"):
            plain = {
                "default_dose": dose,
                "dosing_interval_days": int(interval) if interval else None,
                "min_interval_days": int(minimum) if minimum else None,
                "premedication_required": premed,
                "program": program,
                "active": active,
                "premedication_text": premed_text,
            }
            form.save(
                lambda: setup.update_therapy(
                    db, admin, therapy.id, plain | _parsed(texts), expected_version=therapy.version
                ),
                f"{therapy.name} saved.",
            )
