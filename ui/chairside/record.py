"""The record of one session: tables, timeline, corrections, entered-in-error and addenda (nothing overwritten)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from infusion.charts import timeline
from infusion.clinical.reactions import ACTIONS, CTCAE_IRR, SYMPTOMS
from infusion.clock import format_local
from infusion.reads import sessions as views
from infusion.services import corrections
from ui import common as ui
from ui import forms
from ui.chairside.context import Chairside
from ui.chairside.steps import ROUTES
from ui.chairside.vitals import vitals_inputs

HISTORY_VALUES = (
    "systolic",
    "diastolic",
    "pulse",
    "resp_rate",
    "temperature_c",
    "spo2",
    "pain",
    "grade",
    "symptoms",
    "drug",
    "dose",
)


def _entry_label(cx: Chairside, kind: str, entry: Any) -> str:
    if kind == "vital_sign":
        bp = f"BP {entry.systolic}/{entry.diastolic} " if entry.systolic is not None else ""
        pulse = entry.pulse if entry.pulse is not None else "—"
        return f"Vitals {format_local(entry.taken_at, cx.tz)}: {bp}pulse {pulse}"
    if kind == "reaction":
        return f"Reaction {format_local(entry.onset_at, cx.tz)}: G{entry.grade} " + ", ".join(
            SYMPTOMS.get(x, x) for x in entry.symptoms
        )
    if kind == "premedication":
        return f"Premedication {format_local(entry.given_at, cx.tz)}: {entry.drug} {entry.dose}"
    return f"Rate {format_local(entry.at, cx.tz)}: {entry.kind} {entry.rate_ml_h or ''}"


def amend_panel(cx: Chairside, detail: views.SessionDetail) -> None:
    """Correct an entry or a session time, mark an entry in error, or add an addendum."""
    sid, row = detail.session.id, detail.session
    if row.status != "discharged":
        options: dict[str, tuple[str, Any]] = {}
        for kind, items in (
            ("vital_sign", detail.vitals),
            ("reaction", detail.reactions),
            ("premedication", detail.premeds),
            # a rate change only: start and stop are session times (below), and a pause or resume changes the
            # session's state, which the service does not undo by an entry in error
            ("rate_change", [r for r in detail.rates if r.kind == "change"]),
        ):
            for entry in items:
                if entry.status == "active":
                    options[f"{kind}:{entry.id}"] = (kind, entry)
        # starts empty, as every picker naming which record a save changes: after an entry is marked in error
        # it leaves the list, and a picker on the first option would open that entry's correction instead
        choice = (
            st.selectbox(
                "Entry",
                list(options),
                key=f"amend_pick_{sid}",
                format_func=lambda k: _entry_label(cx, *options[k]),
                index=None,
                placeholder="Pick the entry to correct or mark in error",
            )
            if options
            else None
        )
        if choice is not None:
            kind, entry = options[choice]
            mode = st.radio(
                "What to do", ["Correct values", "Entered in error"], horizontal=True, key=f"amend_mode_{sid}"
            )
            if mode == "Entered in error" or kind == "rate_change":
                with forms.entry_form(f"eie_{choice}") as form:
                    reason = st.text_input(
                        "Why is it in error? (e.g. wrong patient, duplicate)", key=form.key("reason")
                    )
                    if form.submit("Mark entered in error"):
                        form.save(
                            lambda: corrections.mark_entered_in_error(cx.db, cx.nurse, kind, entry.id, reason),
                            "Marked entered in error; the original stays in the record.",
                            at_panel=True,
                        )
            else:
                correction_form(cx, kind, entry)
        session_time_form(cx, detail)
    with forms.entry_form(f"addendum_{sid}") as form:
        st.markdown(
            "**Addendum**" + (" (the only way to amend a discharged session)" if row.status == "discharged" else "")
        )
        text = st.text_area("Text", key=form.key("text"), height=80)
        if form.submit("Add addendum"):
            form.save(lambda: corrections.add_addendum(cx.db, cx.nurse, sid, text), "Addendum added.")


def session_time_form(cx: Chairside, detail: views.SessionDetail) -> None:
    sid, row = detail.session.id, detail.session
    with forms.entry_form(f"fix_time_{sid}") as form:
        st.markdown("**Correct a session time**")
        c = st.columns([1, 1, 2])
        fields = {k: v for k, v in corrections.SESSION_TIME_FIELDS.items() if getattr(row, k) is not None}
        field = c[0].selectbox(
            "Time",
            list(fields) or ["checked_in_at"],
            key=form.key("field"),
            format_func=lambda f: corrections.SESSION_TIME_FIELDS[f],
        )
        new_time = c[1].time_input("Correct time", value=None, key=form.key("value"), step=60)
        reason = c[2].text_input("Reason", key=form.key("reason"))
        if form.submit("Correct time"):
            current = getattr(row, field)
            moment = cx.time(new_time, day=current.astimezone(ZoneInfo(cx.tz)).date()) if new_time and current else None
            if moment is None:
                st.error("Not saved. Enter the correct time.", icon="🚫")
            else:
                form.save(
                    lambda: corrections.correct_session_time(
                        cx.db, cx.nurse, sid, field, moment, reason=reason, expected_version=cx.version(detail)
                    ),
                    "Time corrected; the original is kept.",
                )


def correction_form(cx: Chairside, kind: str, entry: Any) -> None:
    with forms.entry_form(f"fix_{kind}_{entry.id}") as form:
        k = form.key
        if kind == "vital_sign":
            fixed, fixed_time = vitals_inputs(
                cx, form, with_weight=entry.weight_kg is not None or entry.phase == "pre", defaults=entry
            )
        elif kind == "reaction":
            c = st.columns([2, 1, 2])
            symptoms = c[0].multiselect(
                "Symptoms", list(SYMPTOMS), default=entry.symptoms, format_func=lambda s: SYMPTOMS[s], key=k("symptoms")
            )
            grade = c[1].selectbox("Grade", list(CTCAE_IRR), index=entry.grade - 1, key=k("grade"))
            actions = c[2].multiselect(
                "Action taken", list(ACTIONS), default=entry.actions, format_func=lambda a: ACTIONS[a], key=k("actions")
            )
            medication = st.text_input("Medication given", value=entry.medication_given or "", key=k("med"))
            other = st.text_input("Other symptom", value=entry.other_text or "", key=k("other"))
        else:
            p = st.columns(3)
            drug = p[0].text_input("Drug", value=entry.drug, key=k("drug"))
            dose = p[1].text_input("Dose", value=entry.dose, key=k("dose"))
            route = p[2].selectbox(
                "Route", ROUTES, index=ROUTES.index(entry.route) if entry.route in ROUTES else 0, key=k("route")
            )
        reason = st.text_input("Reason for the correction", key=k("reason"))
        if form.submit("Save correction", type="primary"):
            action: Any
            if kind == "vital_sign":
                corrected_at = (
                    cx.time(fixed_time, day=entry.taken_at.astimezone(ZoneInfo(cx.tz)).date())
                    if fixed_time
                    else entry.taken_at
                )

                def action() -> Any:
                    # the nurse reviewed the values she is correcting; their flags are stored and shown
                    return corrections.correct_vitals(
                        cx.db, cx.nurse, entry.id, fixed, reason=reason, taken_at=corrected_at, acknowledge_flags=True
                    )

            elif kind == "reaction":

                def action() -> Any:
                    return corrections.correct_reaction(
                        cx.db,
                        cx.nurse,
                        entry.id,
                        reason=reason,
                        symptoms=symptoms,
                        grade=grade,
                        actions=actions,
                        onset_at=entry.onset_at,
                        other_text=other,
                        medication_given=medication,
                        resolved_at=entry.resolved_at,
                        provider_notified=entry.provider_notified,
                        provider_name=entry.provider_name,
                        note=entry.note,
                    )

            else:

                def action() -> Any:
                    return corrections.correct_premedication(
                        cx.db,
                        cx.nurse,
                        entry.id,
                        reason=reason,
                        drug=drug,
                        dose=dose,
                        route=route,
                        given_at=entry.given_at,
                    )

            form.save(action, "Correction saved; the original is kept and marked corrected.", at_panel=True)


def amendments_history(cx: Chairside, detail: views.SessionDetail) -> None:
    """History on demand: every corrected value, session-time correction and addendum."""
    fixes, addenda = corrections.session_amendments(cx.db, cx.nurse, detail.session.id)
    replaced = [
        (k, e)
        for k, items in (
            ("vital_sign", detail.vitals),
            ("reaction", detail.reactions),
            ("premedication", detail.premeds),
            ("rate_change", detail.rates),
        )
        for e in items
        if e.replaces_id is not None
    ]
    if not (fixes or addenda or replaced):
        return
    with st.expander(f"📝 Corrections and addenda ({len(fixes) + len(addenda) + len(replaced)})"):
        for fix in fixes:
            st.markdown(
                f"- **{corrections.SESSION_TIME_FIELDS.get(fix.field, fix.field)}** corrected from "
                f"{format_local(datetime.fromisoformat(fix.old_value or ''), cx.tz)} to "
                f"{format_local(datetime.fromisoformat(fix.new_value or ''), cx.tz)} by "
                f"{detail.who(fix.corrected_by_id)} at {format_local(fix.corrected_at, cx.tz, '%d %b %H:%M')}: "
                f"{fix.reason}"
            )
        for kind, entry in replaced:
            versions = corrections.entry_history(cx.db, cx.nurse, kind, entry.id)
            st.markdown(f"**{_entry_label(cx, kind, entry)}** — versions:")
            st.dataframe(
                [
                    {
                        "Status": v.status.replace("_", " "),
                        "Entered": format_local(v.entered_at, cx.tz, "%d %b %H:%M"),
                        "By": detail.who(v.entered_by_id),
                        "Reason": v.reason or "",
                        "Values": ", ".join(
                            f"{name}={val}"
                            for name, val in v.values.items()
                            if name in HISTORY_VALUES and val not in (None, [])
                        ),
                    }
                    for v in versions
                ],
                hide_index=True,
                width="stretch",
            )
        for note in addenda:
            st.markdown(
                f"- **Addendum** by {detail.who(note.author_id)} at "
                f"{format_local(note.written_at, cx.tz, '%d %b %H:%M')}: {note.text}"
            )


def timeline_panel(cx: Chairside, detail: views.SessionDetail) -> None:
    """One session on one time axis: phases, rate steps, vitals with thresholds, reactions."""
    st.plotly_chart(
        timeline.session_timeline(detail),
        width="stretch",
        key=f"timeline_{detail.session.id}",
        config={"displayModeBar": False},
    )
    ui.csv_download(
        "Timeline data (CSV)",
        timeline.timeline_frame(detail),
        file_name=f"session_{detail.session.id}_timeline.csv",
        key=f"timeline_csv_{detail.session.id}",
    )


def _abnormal_rows(row: Any) -> list[str]:
    if row.get("Status", "active") != "active":  # corrected / entered in error: shown, struck through
        style = "color: #888; text-decoration: line-through"
    elif row.get("Flags"):
        style = "background-color: #fde2e1; color: #7a1010; font-weight: 600"
    else:
        style = ""
    return [style] * len(row)


def _styled(frame: pd.DataFrame) -> Any:
    """Struck-through and flagged rows, values as charted."""
    return ui.as_charted(frame, _abnormal_rows)


def history(cx: Chairside, detail: views.SessionDetail) -> None:
    vitals = views.vitals_table(detail)
    if not vitals.empty:
        st.markdown("**Vitals** (🚩 rows are abnormal by the clinic's thresholds)")
        vitals["Flags"] = vitals["Flags"].map(lambda text: f"🚩 {text}" if text else "")
        st.dataframe(_styled(vitals), hide_index=True, width="stretch")
    for title, frame in (
        ("Reactions", views.reactions_table(detail)),
        ("Rate", views.rates_table(detail)),
        ("Premedication", views.premeds_table(detail)),
    ):
        if not frame.empty:
            st.markdown(f"**{title}**")
            st.dataframe(_styled(frame), hide_index=True, width="stretch")
    amendments_history(cx, detail)
    row = detail.session
    if row.iv_started_at:
        st.caption(
            f"IV: {row.iv_site}, {row.iv_gauge} G, {row.iv_attempts} attempt(s), lot {row.lot_number}, "
            f"started {format_local(row.iv_started_at, cx.tz)}"
            + (f", stopped {format_local(row.iv_stopped_at, cx.tz)}" if row.iv_stopped_at else "")
        )
