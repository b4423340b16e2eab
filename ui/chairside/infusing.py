"""While the IV runs and after it stops: rate, pause and resume, stop, reactions, education, discharge."""

from __future__ import annotations

from datetime import datetime, time

import streamlit as st

from infusion.clinical.reactions import ACTIONS, CTCAE_IRR, SYMPTOMS
from infusion.clock import format_local, format_minutes, utcnow
from infusion.reads import sessions as views
from infusion.services import aftercare, entries, sessions
from ui import common as ui
from ui import forms
from ui.chairside.context import Chairside


def rate_controls(cx: Chairside, detail: views.SessionDetail) -> None:
    sid, status = detail.session.id, detail.session.status
    since = detail.session.iv_started_at
    if status == "infusing":
        with forms.entry_form(f"rate_{sid}") as form:
            c = st.columns([1, 1, 2])
            rate = c[0].number_input("New rate mL/h", value=None, step=1.0, key=form.key("rate"))
            at = c[1].time_input("Time", value=None, key=form.key("time"), step=60, help="Empty = now")
            note = c[2].text_input("Note", key=form.key("note"), placeholder="e.g. titration step")
            confirmed = form.confirmation("Give this rate: I have checked it against the order")
            if form.submit("Change rate"):
                token = form.token
                form.save(
                    lambda: entries.change_rate(
                        cx.db,
                        cx.nurse,
                        sid,
                        rate,  # type: ignore[arg-type]  # empty is refused by the service with a message
                        at=cx.time(at, not_before=since),
                        note=note,
                        client_token=token,
                        expected_version=cx.version(detail),
                        confirm_above_label=confirmed,
                    ),
                    lambda change: f"Rate changed to {change.rate_ml_h:g} mL/h.",
                    at_panel=True,
                    confirmable=True,
                )
        with forms.entry_form(f"pause_{sid}") as form:
            c = st.columns([1, 2])
            at = c[0].time_input("Pause time", value=None, key=form.key("time"), step=60, help="Empty = now")
            note = c[1].text_input("Why", key=form.key("note"), placeholder="e.g. reaction, patient to bathroom")
            if form.submit("⏸ Pause infusion"):
                form.save(
                    lambda: entries.pause(
                        cx.db,
                        cx.nurse,
                        sid,
                        at=cx.time(at, not_before=since),
                        note=note,
                        expected_version=cx.version(detail),
                    ),
                    "Infusion paused.",
                    at_panel=True,
                )
    elif status == "paused":
        last = next((r.rate_ml_h for r in reversed(detail.rates) if r.rate_ml_h), None)
        with forms.entry_form(f"resume_{sid}") as form:
            c = st.columns([1, 1, 2])
            rate = c[0].number_input("Resume at mL/h", value=last, step=1.0, key=form.key("rate"))
            at = c[1].time_input("Time", value=None, key=form.key("time"), step=60, help="Empty = now")
            note = c[2].text_input("Note", key=form.key("note"), placeholder="e.g. half rate after reaction")
            confirmed = form.confirmation("Give this rate: I have checked it against the order")
            if form.submit("▶ Resume infusion", type="primary"):
                form.save(
                    lambda: entries.resume(
                        cx.db,
                        cx.nurse,
                        sid,
                        rate,  # type: ignore[arg-type]  # empty is refused by the service with a message
                        at=cx.time(at, not_before=since),
                        note=note,
                        expected_version=cx.version(detail),
                        confirm_above_label=confirmed,
                    ),
                    "Infusion resumed.",
                    at_panel=True,
                    confirmable=True,
                )


def stop_form(cx: Chairside, detail: views.SessionDetail) -> None:
    """Stop the IV; stopping before the label's shortest infusion asks for a second, deliberate tap."""
    sid = detail.session.id
    clock = detail.clock
    minimum = detail.window.min_minutes if detail.window else None
    elapsed = clock.elapsed_minutes
    early = minimum is not None and elapsed is not None and elapsed < minimum
    with forms.entry_form(f"stop_{sid}") as form:
        c = st.columns([1, 2])
        at = c[0].time_input("Stop time", value=None, key=form.key("time"), step=60, help="Empty = now")
        obs = detail.observation_minutes
        c[1].caption(
            f"Observation after stop: {obs} min"
            if obs
            else "Observation after stop: not defined for this therapy (clinic policy applies)"
        )
        confirmed = True
        if early:
            st.warning(
                f"⚡ The infusion has run {format_minutes(elapsed)}; the label's shortest is "
                f"{detail.window.describe()}. Stop only if the infusion is really finished or stopped for a reason."
            )
            confirmed = st.checkbox("Yes, stop the IV now", key=form.key("confirm_early"))
        if form.submit("⏹ Stop IV", type="primary"):
            if not confirmed:
                st.error("Not saved. Tick “Yes, stop the IV now” to stop before the label's shortest time.", icon="🚫")
            else:
                form.save(
                    lambda: sessions.stop_iv(
                        cx.db,
                        cx.nurse,
                        sid,
                        expected_version=cx.version(detail),
                        at=cx.time(at, not_before=detail.session.iv_started_at),
                    ),
                    "IV stopped; observation started.",
                    at_panel=True,
                )


def education_form(cx: Chairside, detail: views.SessionDetail) -> None:
    """Discharge education given, and the printable one-page summary for the patient."""
    sid = detail.session.id
    with forms.entry_form(f"education_{sid}") as form:
        items = st.multiselect(
            "Education given",
            list(aftercare.EDUCATION),
            default=detail.session.education or [],
            format_func=lambda k: aftercare.EDUCATION[k],
            key=form.key("items"),
        )
        if form.submit("Save education"):
            form.save(
                lambda: aftercare.record_education(cx.db, cx.nurse, sid, items, expected_version=cx.version(detail)),
                "Education recorded.",
            )
    summary = ui.attempt(lambda: aftercare.summary_html(aftercare.patient_summary(cx.db, cx.nurse, sid)))
    if summary:
        st.download_button(
            "🖨 Patient summary (print or save as PDF)",
            summary,
            file_name=f"visit-summary-{sid}.html",
            mime="text/html",
            on_click="ignore",
            key=f"summary_{sid}",
        )


def discharge_form(cx: Chairside, detail: views.SessionDetail) -> None:
    sid = detail.session.id
    education_form(cx, detail)
    ends = detail.observation_ends_at
    early = ends is not None and utcnow() < ends
    with forms.entry_form(f"discharge_{sid}") as form:
        if early:
            st.warning(f"Observation runs until {format_local(ends, cx.tz)}. Discharging earlier needs a reason.")
        c = st.columns([1, 2])
        at = c[0].time_input("Discharge time", value=None, key=form.key("time"), step=60, help="Empty = now")
        reason = c[1].text_input("Reason for early discharge", key=form.key("reason")) if early else None
        if form.submit("🏠 Discharge", type="primary"):
            form.save(
                lambda: sessions.discharge(
                    cx.db,
                    cx.nurse,
                    sid,
                    expected_version=cx.version(detail),
                    at=cx.time(at, not_before=detail.session.iv_stopped_at),
                    early_reason=reason,
                ),
                "Patient discharged.",
                at_panel=True,
            )


def reaction_form(cx: Chairside, detail: views.SessionDetail) -> None:
    sid = detail.session.id
    since = detail.session.iv_started_at or detail.session.checked_in_at
    with forms.entry_form(f"reaction_{sid}") as form:
        st.markdown("**Record a reaction**")
        c = st.columns([2, 1])
        symptoms = c[0].multiselect(
            "Symptoms", list(SYMPTOMS), format_func=lambda k: SYMPTOMS[k], key=form.key("symptoms")
        )
        onset = c[1].time_input("Onset", value=None, key=form.key("onset"), step=60, help="Empty = now")
        other = st.text_input("Other symptom (describe)", key=form.key("other"))
        grade = st.radio(
            "CTCAE grade (infusion-related reaction, v5.0)",
            list(CTCAE_IRR),
            horizontal=True,
            index=None,
            key=form.key("grade"),
            format_func=lambda g: ui.GRADE_CHIPS[g],
        )
        st.caption(
            "  \n".join(f"**G{g}** {text}" for g, text in CTCAE_IRR.items())
            + "  \nAnaphylaxis is defined from grade 3."
        )
        c = st.columns([2, 2])
        actions = c[0].multiselect(
            "Action taken", list(ACTIONS), format_func=lambda k: ACTIONS[k], key=form.key("actions")
        )
        medication = c[1].text_input("Medication given (drug, dose, route)", key=form.key("med"))
        c = st.columns([1, 1, 2])
        resolved = c[0].time_input(
            "Resolved at", value=None, key=form.key("resolved"), step=60, help="Empty = still ongoing; record it later"
        )
        notified = c[1].checkbox("Provider notified", key=form.key("notified"))
        provider = c[2].text_input("Provider name", key=form.key("provider"))
        note = st.text_input("Note", key=form.key("note"))
        if form.submit("Save reaction", type="primary"):
            token = form.token
            form.save(
                lambda: entries.record_reaction(
                    cx.db,
                    cx.nurse,
                    sid,
                    symptoms=symptoms,
                    grade=grade or 0,
                    actions=actions,
                    onset_at=cx.time(onset, not_before=since),
                    other_text=other,
                    medication_given=medication,
                    resolved_at=cx.time(resolved, not_before=since),
                    provider_notified=notified,
                    provider_name=provider,
                    note=note,
                    client_token=token,
                ),
                lambda _: reaction_outcome(cx, detail, actions),
            )


def reaction_outcome(cx: Chairside, detail: views.SessionDetail, actions: list[str] | None) -> str:
    """The saved reaction's message: whether its "paused" or "stopped" paused the running infusion (not when
    the rate log already moved on past the onset: charted after a pause and resume)."""
    if detail.session.status != "infusing" or not set(actions or ()) & entries.PAUSING_ACTIONS:
        return "Reaction recorded."
    if sessions.get_session(cx.db, detail.session.id).status == "paused":
        return "Reaction recorded; the infusion is paused: resume or stop the IV on the Rate tab."
    return (
        "Reaction recorded. The rate log has entries after its onset, so the infusion was not paused again: "
        "pause it on the Rate tab if it should be."
    )


def open_reactions(cx: Chairside, detail: views.SessionDetail) -> None:
    for reaction in detail.open_reactions:
        with st.container(border=True):
            st.markdown(
                f":red[**⚠️ Open reaction {ui.GRADE_CHIPS[reaction.grade]}**] since "
                f"{format_local(reaction.onset_at, cx.tz)}: " + ", ".join(SYMPTOMS.get(x, x) for x in reaction.symptoms)
            )
            with forms.entry_form(f"resolve_{reaction.id}", border=False) as form:
                c = st.columns([1, 1])
                at = c[0].time_input("Resolved at", value=None, key=form.key("time"), step=60, help="Empty = now")
                with c[1]:
                    pressed = form.submit("Mark resolved", width="stretch")
                if pressed:

                    def resolve(
                        rid: int = reaction.id, at: time | None = at, onset: datetime = reaction.onset_at
                    ) -> object:
                        return entries.resolve_reaction(cx.db, cx.nurse, rid, resolved_at=cx.time(at, not_before=onset))

                    form.save(resolve, "Reaction resolved.", at_panel=True)
