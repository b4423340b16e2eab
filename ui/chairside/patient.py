"""What belongs to the patient rather than the session: the NEWS2 SpO2 scale a clinician chose."""

from __future__ import annotations

import streamlit as st

from infusion.reads import sessions as views
from infusion.services import news2_scale
from ui import forms
from ui.chairside.context import Chairside

SCALES = {
    1: "Scale 1 (target SpO2 ≥ 96 %)",
    2: "Scale 2 (hypercapnic respiratory failure, target 88–92 %)",
}


def news2_scale_panel(cx: Chairside, detail: views.SessionDetail) -> None:
    """Show the scale the scores use; a charge nurse or administrator may change it, with a reason."""
    patient = detail.patient
    current = int(patient.news2_spo2_scale or 1)
    with st.expander(
        f"🫁 NEWS2 SpO2 {SCALES[current].split(' (')[0]}", key=f"scale_open_{patient.id}", on_change="rerun"
    ):
        st.caption(
            "Scale 2 is for a patient with hypercapnic respiratory failure (e.g. ALS with respiratory "
            "weakness) whose prescribed SpO2 target is 88–92 %. Scores recorded from now on use the new scale."
        )
        if cx.nurse.role not in news2_scale.SCALE_EDIT:
            st.caption("A charge nurse or an administrator sets the scale.")
            return
        with forms.entry_form(f"news2_scale_{patient.id}") as form:
            scale = st.radio(
                "Scale",
                list(SCALES),
                index=current - 1,
                format_func=lambda s: SCALES[s],
                key=form.key("scale"),
            )
            reason = st.text_input("Clinical reason", key=form.key("reason"))
            if form.submit("Set scale"):
                form.save(
                    lambda: news2_scale.set_news2_scale(
                        cx.db, cx.nurse, patient.id, int(scale), reason, expected_scale=current
                    ),
                    f"NEWS2 SpO2 scale set to {scale}.",
                    at_panel=True,
                )
