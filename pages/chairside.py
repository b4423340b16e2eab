"""Chairside: today's sessions by urgency, and the chosen session's next step.

UI only. Every save goes through a service function in `infusion/`, which
validates, writes and audits in one transaction. Writes that change the
session's state carry the version the nurse saw (`seen_version`), so a stale
screen cannot overwrite a newer record.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import streamlit as st

from infusion.charts import timeline
from infusion.clinical.catalog import rate_plan_for
from infusion.clinical.reactions import ACTIONS, CTCAE_IRR, SYMPTOMS
from infusion.clinical.units import temperature_for_display, weight_for_display
from infusion.clinical.vitals import CONSCIOUSNESS, LABELS, MEASURES, POSITIONS, VitalsEntry
from infusion.clock import format_local, format_minutes, utcnow
from infusion.errors import ChairsideError, ValidationError
from infusion.reads import due
from infusion.reads import sessions as views
from infusion.services import aftercare, corrections, entries, pretreatment, sessions, setup
from infusion.services.sessions import IV_GAUGES, IV_SITES
from ui import common as ui

db = ui.get_db()
nurse = ui.page_guard("chairside")
clinic = setup.get_clinic(db)
TZ = clinic.timezone
TU, WU = clinic.temperature_unit, clinic.weight_unit
seen_versions: dict[int, int] = st.session_state.setdefault("seen_versions", {})

DEFER_REASONS = (
    "Fever",
    "Active infection",
    "Abnormal vital signs",
    "Labs not available",
    "Program authorization not verified",
    "Patient declined",
    "Other",
)


def select_session(session_id: int) -> None:
    st.session_state["selected_session"] = session_id


# ---------------------------------------------------------------- the list
def session_list(cards: list[views.SessionCard]) -> None:
    st.markdown(f"#### Today ({len(cards)})")
    if not cards:
        st.info("No sessions today yet. Add a walk-in below.")
    selected = st.session_state.get("selected_session")
    for card in cards:
        with st.container(border=True):
            st.markdown(
                f"**{card.patient}** · {card.chair}  \n"
                f"{card.therapy} #{card.infusion_number} · {ui.STATUS_CHIPS[card.status]}"
                + (
                    f" · {format_minutes(card.minutes_in_chair)}"
                    if card.minutes_in_chair
                    else f" · booked {format_local(card.scheduled_at, TZ)}"
                )
            )
            lines = [f":red[**{a}**]" if a.startswith(("⚠", "⏰", "⌛")) else a for a in card.alerts]
            if (
                card.status in ("infusing", "paused", "observation", "checked_in", "ready")
                and card.vitals_due.due_at
                and not card.overdue_minutes
            ):
                lines.append(f"Vitals due {format_local(card.vitals_due.due_at, TZ)} ({card.vitals_due.reason})")
            if lines:
                st.markdown("  \n".join(lines))
            st.button(
                "Open session" if card.id != selected else "▸ Open session",
                key=f"open_{card.id}",
                on_click=select_session,
                args=(card.id,),
                width="stretch",
                type="primary" if card.id == selected else "secondary",
            )


def walk_in_form() -> None:
    with st.expander("➕ Add a walk-in session"):
        patients = setup.search_patients(db, limit=500)
        therapies = setup.list_therapies(db)
        chairs = setup.list_chairs(db)
        if not chairs:
            st.warning("No chairs yet: an administrator adds them on the Administration page.")
            return
        with st.form("walk_in", clear_on_submit=True):
            options: list[int | None] = [None, *[p.id for p in patients]]
            by_id = {p.id: p for p in patients}
            patient_id = st.selectbox(
                "Patient",
                options,
                key="wi_patient",
                format_func=lambda i: (
                    "➕ New patient (fill in below)"
                    if i is None
                    else f"{by_id[i].family_name}, {by_id[i].given_name} · {by_id[i].mrn}"
                ),
            )
            c1, c2, c3 = st.columns(3)
            mrn = c1.text_input("New patient MRN", key="wi_mrn")
            given = c2.text_input("Given name", key="wi_given")
            family = c3.text_input("Family name", key="wi_family")
            c4, c5 = st.columns(2)
            birth = c4.date_input("Date of birth", value=None, min_value=date(1900, 1, 1), key="wi_birth")
            diagnosis = c5.selectbox("Diagnosis", setup.DIAGNOSES, key="wi_dx")
            t_by_id = {t.id: t for t in therapies}
            therapy_id = st.selectbox(
                "Therapy",
                list(t_by_id),
                key="wi_therapy",
                format_func=lambda i: t_by_id[i].name + (f" ({t_by_id[i].brand})" if t_by_id[i].brand else ""),
            )
            c6, c7 = st.columns(2)
            dose = c6.number_input("Dose (empty = the therapy's usual dose)", value=None, key="wi_dose")
            ch_by_id = {c.id: c for c in chairs}
            chair_id = c7.selectbox("Chair", list(ch_by_id), format_func=lambda i: ch_by_id[i].name, key="wi_chair")
            if st.form_submit_button("Add session", type="primary"):
                new_patient = (
                    None
                    if patient_id is not None
                    else {
                        "mrn": mrn,
                        "given_name": given,
                        "family_name": family,
                        "birth_date": birth,
                        "diagnosis": diagnosis,
                    }
                )
                try:
                    created = sessions.create_walk_in(
                        db,
                        nurse,
                        patient_id=patient_id,
                        new_patient=new_patient,
                        therapy_id=therapy_id,
                        chair_id=chair_id,
                        dose=dose,
                    )
                except ChairsideError as error:
                    ui.show_error(error)
                else:
                    select_session(created.id)
                    ui.flash("Walk-in session added.")
                    st.rerun()


# ---------------------------------------------------------------- vitals
def vitals_inputs(prefix: str, *, with_weight: bool, defaults: Any = None) -> tuple[VitalsEntry, Any]:
    """The vitals fields in the order nurses say them; values in the clinic's units.

    `defaults` (a stored VitalSign) pre-fills the fields for a correction.
    """

    def start(name: str) -> Any:
        if defaults is None:
            return None
        if name == "temperature_c":
            return temperature_for_display(defaults.temperature_c, TU)
        if name == "weight_kg":
            return weight_for_display(defaults.weight_kg, WU)
        return getattr(defaults, name)

    c = st.columns(4)
    sbp = c[0].number_input("Systolic BP", value=start("systolic"), step=1, key=f"{prefix}_sbp", placeholder="mmHg")
    dbp = c[1].number_input("Diastolic BP", value=start("diastolic"), step=1, key=f"{prefix}_dbp", placeholder="mmHg")
    pulse = c[2].number_input("Pulse", value=start("pulse"), step=1, key=f"{prefix}_pulse", placeholder="/min")
    temp = c[3].number_input(
        f"Temperature °{TU}", value=start("temperature_c"), step=0.1, format="%.1f", key=f"{prefix}_temp"
    )
    c = st.columns(4)
    rr = c[0].number_input("Respiration", value=start("resp_rate"), step=1, key=f"{prefix}_rr", placeholder="/min")
    spo2 = c[1].number_input("SpO2 %", value=start("spo2"), step=1, key=f"{prefix}_spo2")
    pain = c[2].number_input("Pain 0–10", value=start("pain"), step=1, key=f"{prefix}_pain")
    weight = (
        c[3].number_input(f"Weight {WU}", value=start("weight_kg"), step=0.1, format="%.1f", key=f"{prefix}_weight")
        if with_weight
        else None
    )
    c = st.columns(4)
    positions = [None, *POSITIONS]
    position = c[0].selectbox(
        "Position",
        positions,
        key=f"{prefix}_pos",
        index=positions.index(defaults.position) if defaults is not None and defaults.position in positions else 0,
        format_func=lambda p: "—" if p is None else p,
    )
    acvpu = c[1].selectbox(
        "Consciousness",
        list(CONSCIOUSNESS),
        key=f"{prefix}_acvpu",
        index=list(CONSCIOUSNESS).index(defaults.consciousness) if defaults is not None else 0,
        format_func=lambda k: f"{k} · {CONSCIOUSNESS[k]}",
    )
    taken = c[2].time_input(
        "Time taken",
        value=None,
        key=f"{prefix}_time",
        step=60,
        help="Leave empty for now; type an earlier time for a late entry.",
    )
    on_o2 = c[3].checkbox("On oxygen", key=f"{prefix}_o2", value=bool(defaults is not None and defaults.on_oxygen))
    with st.expander("Unable to obtain · provider notified · note"):
        u1, u2 = st.columns([1, 2])
        had_unable = dict(defaults.unable_to_obtain or {}) if defaults is not None else {}
        unable = u1.multiselect(
            "Unable to obtain",
            [m for m in MEASURES if with_weight or m != "weight"],
            default=[m for m in had_unable if with_weight or m != "weight"],
            format_func=lambda m: LABELS[m],
            key=f"{prefix}_unable",
        )
        why = u2.text_input(
            "Why (e.g. cold fingers, patient asleep)", value=next(iter(had_unable.values()), ""), key=f"{prefix}_why"
        )
        p1, p2 = st.columns([1, 2])
        notified = p1.checkbox(
            "Provider notified",
            key=f"{prefix}_notified",
            value=bool(defaults is not None and defaults.provider_notified),
        )
        provider = p2.text_input(
            "Provider name",
            key=f"{prefix}_provider",
            value=(defaults.provider_name or "") if defaults is not None else "",
        )
        note = st.text_input("Note", key=f"{prefix}_note", value=(defaults.note or "") if defaults is not None else "")
    entry = VitalsEntry(
        systolic=sbp,
        diastolic=dbp,
        pulse=pulse,
        resp_rate=rr,
        temperature=temp,
        spo2=spo2,
        pain=pain,
        weight=weight,
        consciousness=acvpu,
        on_oxygen=on_o2,
        position=position,
        unable_to_obtain={m: why for m in unable},
        provider_notified=notified,
        provider_name=provider,
        note=note,
    )
    return entry, taken


def vitals_form(detail: views.SessionDetail, *, kind: str) -> None:
    """Vitals entry with flags shown before the save; `kind` is 'check_in' or 'vitals'."""
    sid = detail.session.id
    key = f"{kind}_{sid}"
    pending_key = f"_pending_{key}"
    check_in = kind == "check_in"
    with st.form(key):
        st.markdown("**Check-in vitals (baseline)**" if check_in else "**Record vitals**")
        entry, taken = vitals_inputs(key, with_weight=check_in)
        submitted = st.form_submit_button("Check in" if check_in else "Save vitals", type="primary")
    if submitted:
        try:
            assessment = entries.preview_vitals(db, sid, entry, require_core=check_in)
        except ValidationError as error:
            ui.show_error(error)
            return
        taken_at = ui.clinic_time(taken, TZ)
        if assessment.flags:
            st.session_state[pending_key] = {"entry": entry, "taken_at": taken_at}
        else:
            save_vitals(detail, kind, entry, taken_at, acknowledge=False, news=assessment.news2.describe())
    pending = st.session_state.get(pending_key)
    if pending:
        confirm_flagged(detail, kind, pending, pending_key)


def save_vitals(
    detail: views.SessionDetail, kind: str, entry: VitalsEntry, taken_at: Any, *, acknowledge: bool, news: str
) -> None:
    sid = detail.session.id
    key = f"{kind}_{sid}"
    tok = ui.token(key)
    if kind == "check_in":
        done = ui.attempt(
            lambda: sessions.check_in(
                db,
                nurse,
                sid,
                entry,
                expected_version=seen_versions.get(sid),
                at=taken_at,
                acknowledge_flags=acknowledge,
                client_token=tok,
            ),
            f"Checked in · {news}",
        )
    else:
        done = ui.attempt(
            lambda: entries.record_vitals(
                db, nurse, sid, entry, taken_at=taken_at, acknowledge_flags=acknowledge, client_token=tok
            ),
            f"Vitals saved · {news}",
        )
    if done is not None:
        ui.spend_token(key)
        st.session_state.pop(f"_pending_{key}", None)
        st.rerun()


def confirm_flagged(detail: views.SessionDetail, kind: str, pending: dict[str, Any], pending_key: str) -> None:
    entry: VitalsEntry = pending["entry"]
    assessment = entries.preview_vitals(db, detail.session.id, entry, require_core=kind == "check_in")
    with st.container(border=True):
        st.error(
            "**Abnormal values — confirm before saving**\n\n"
            + "\n".join(f"- 🚩 {f.message}" for f in assessment.flags)
            + f"\n\n{assessment.news2.describe()} ({assessment.news2.band} risk; a trend indicator in clinic)",
            icon="🚩",
        )
        c1, c2 = st.columns([1, 2])
        notified = c1.checkbox("Provider notified", value=entry.provider_notified, key=f"{pending_key}_notified")
        provider = c2.text_input("Provider name", value=entry.provider_name or "", key=f"{pending_key}_provider")
        b1, b2 = st.columns(2)
        if b1.button("Confirm and save", type="primary", key=f"{pending_key}_confirm", width="stretch"):
            entry.provider_notified, entry.provider_name = notified, provider
            save_vitals(detail, kind, entry, pending["taken_at"], acknowledge=True, news=assessment.news2.describe())
        if b2.button("Back to edit", key=f"{pending_key}_back", width="stretch"):
            st.session_state.pop(pending_key, None)
            st.rerun()


# ---------------------------------------------------------------- steps
def versioned(detail: views.SessionDetail) -> int | None:
    return seen_versions.get(detail.session.id)


def step_scheduled(detail: views.SessionDetail) -> None:
    early = due.too_early_for_session(db, detail.session.id)
    if early is not None:
        st.warning(f"📅 {early.message}", icon="⚠️")
    position = due.course_position(db, detail.session.patient_id, detail.session.therapy_id)
    if position:
        st.caption(f"Course: {position}")
    vitals_form(detail, kind="check_in")
    with st.expander("Cancel this session"):
        with st.form(f"cancel_{detail.session.id}"):
            reason = st.text_input("Reason", key=f"cancel_reason_{detail.session.id}")
            if st.form_submit_button("Cancel session"):
                if ui.attempt(
                    lambda: sessions.cancel(db, nurse, detail.session.id, reason, expected_version=versioned(detail)),
                    "Session cancelled.",
                ):
                    st.rerun()


def step_checked_in(detail: views.SessionDetail) -> None:
    sid = detail.session.id
    st.markdown("**Check-in assessment:** proceed to infusion, or defer (the session is kept with the reason).")
    pretreatment_form(detail)
    c1, c2 = st.columns(2)
    if c1.button("✅ Proceed", type="primary", key=f"proceed_{sid}", width="stretch"):
        if ui.attempt(
            lambda: pretreatment.proceed_with_checks(db, nurse, sid, versioned(detail)), "Cleared to proceed."
        ):
            st.rerun()
    with c2.popover("⏸ Defer", width="stretch"):
        defer_form(detail)
    pre_infusion_checks(detail)


def pretreatment_form(detail: views.SessionDetail) -> None:
    """The clinic's pre-treatment checklist: a required item left unchecked blocks Proceed (defer instead)."""
    sid = detail.session.id
    checks = pretreatment.checklist_for(detail.therapy)
    answered = pretreatment.latest_answers(db, nurse, sid)
    with st.form(f"pretreatment_{sid}"):
        st.markdown("**Pre-treatment checks**")
        answers, notes = {}, {}
        for check in checks:
            c = st.columns([3, 2])
            previous = answered.get(check.code)
            answers[check.code] = c[0].checkbox(
                check.label + (" (required)" if check.required else ""),
                value=bool(previous and previous.answer),
                key=f"pt_{sid}_{check.code}",
            )
            notes[check.code] = c[1].text_input(
                "Note",
                value=(previous.note or "") if previous else "",
                key=f"pt_note_{sid}_{check.code}",
                label_visibility="collapsed",
                placeholder="note (optional)",
            )
        if st.form_submit_button("Save checks"):
            if ui.attempt(lambda: pretreatment.record_pretreatment(db, nurse, sid, answers, notes), "Checks saved."):
                st.rerun()


def defer_form(detail: views.SessionDetail) -> None:
    sid = detail.session.id
    with st.form(f"defer_{sid}"):
        why = st.selectbox("Reason", DEFER_REASONS, key=f"defer_why_{sid}")
        details = st.text_input("Details", key=f"defer_details_{sid}")
        if st.form_submit_button("Defer session"):
            reason = why if not details.strip() else f"{why}: {details.strip()}"
            if why == "Other" and not details.strip():
                reason = ""
            if ui.attempt(
                lambda: sessions.defer(db, nurse, sid, reason, expected_version=versioned(detail)), "Session deferred."
            ):
                st.rerun()


def pre_infusion_checks(detail: views.SessionDetail) -> None:
    """Program checklist and premedication, before the IV starts."""
    sid, therapy = detail.session.id, detail.therapy
    if therapy.program:
        if detail.program_check is None and detail.session.status == "checked_in":
            st.caption(f"{therapy.program}: confirm the authorisation in the pre-treatment checks above.")
        elif detail.program_check is None:
            with st.form(f"program_{sid}"):
                st.markdown(
                    f"**{therapy.program} checklist** — required before every {therapy.brand or therapy.name} "
                    "infusion: confirm the patient is authorized and the pre-infusion checklist is complete."
                )
                ref = st.text_input("Authorization / checklist reference (optional)", key=f"program_ref_{sid}")
                if st.form_submit_button(f"Confirm {therapy.program} checklist done"):
                    if ui.attempt(
                        lambda: sessions.confirm_program(
                            db, nurse, sid, authorization_ref=ref, expected_version=versioned(detail)
                        ),
                        f"{therapy.program} checklist confirmed.",
                    ):
                        st.rerun()
        else:
            st.success(
                f"{therapy.program} checklist confirmed by {detail.who(detail.program_check.confirmed_by_id)} "
                f"at {format_local(detail.program_check.confirmed_at, TZ)}.",
                icon="☑️",
            )
    if therapy.premedication_required or detail.premeds:
        premed_form(detail)


def premed_form(detail: views.SessionDetail) -> None:
    sid = detail.session.id
    key = f"premed_{sid}"
    label = "**Premedication**" + (
        f" — {detail.therapy.premedication_text}" if detail.therapy.premedication_text else ""
    )
    with st.form(key, clear_on_submit=True):
        st.markdown(label)
        c = st.columns([2, 1, 1, 1])
        drug = c[0].text_input("Drug", key=f"{key}_drug", placeholder="e.g. Methylprednisolone")
        dose = c[1].text_input("Dose", key=f"{key}_dose", placeholder="e.g. 100 mg")
        route = c[2].selectbox("Route", ["IV", "PO", "IM", "SC"], key=f"{key}_route")
        given = c[3].time_input("Time given", value=None, key=f"{key}_time", step=60, help="Empty = now")
        if st.form_submit_button("Record premedication"):
            tok = ui.token(key)
            if ui.attempt(
                lambda: entries.record_premedication(
                    db,
                    nurse,
                    sid,
                    drug=drug,
                    dose=dose,
                    route=route,
                    given_at=ui.clinic_time(given, TZ),
                    client_token=tok,
                ),
                "Premedication recorded.",
            ):
                ui.spend_token(key)
                st.rerun()


def step_ready(detail: views.SessionDetail) -> None:
    pre_infusion_checks(detail)
    sid = detail.session.id
    plan = rate_plan_for(detail.therapy.rate_plan, detail.session.infusion_number) or {}
    first_rate = plan.get("start_ml_h") or ((plan.get("steps") or [{}])[0].get("rate_ml_h"))
    with st.form(f"start_{sid}"):
        st.markdown("**Start IV**" + (f" — label start rate {first_rate:g} mL/h" if first_rate else ""))
        c = st.columns(3)
        site = c[0].selectbox("Site", IV_SITES, index=None, key=f"start_site_{sid}", placeholder="Pick the site")
        gauge = c[1].selectbox("Catheter gauge", IV_GAUGES, index=IV_GAUGES.index(22), key=f"start_gauge_{sid}")
        attempts = c[2].number_input("Attempts", value=1, step=1, key=f"start_attempts_{sid}")
        c = st.columns(3)
        lot = c[0].text_input("Product lot number", key=f"start_lot_{sid}")
        rate = c[1].number_input(
            "Rate mL/h", value=float(first_rate) if first_rate else None, step=1.0, key=f"start_rate_{sid}"
        )
        at = c[2].time_input("Start time", value=None, key=f"start_time_{sid}", step=60, help="Empty = now")
        skip = ""
        if detail.needs_premedication:
            skip = st.text_input("Premedication not given? Say why", key=f"start_skip_{sid}")
        if st.form_submit_button("▶ Start IV", type="primary"):
            if ui.attempt(
                lambda: sessions.start_iv(
                    db,
                    nurse,
                    sid,
                    expected_version=versioned(detail),
                    site=site or "",
                    gauge=gauge,
                    attempts=int(attempts) if attempts is not None else 0,
                    lot_number=lot,
                    rate_ml_h=rate,
                    at=ui.clinic_time(at, TZ),
                    premed_skip_reason=skip,
                ),
                "IV started.",
            ):
                st.rerun()
    with st.popover("⏸ Defer instead"):
        defer_form(detail)


def rate_controls(detail: views.SessionDetail) -> None:
    sid, status = detail.session.id, detail.session.status
    if status == "infusing":
        with st.form(f"rate_{sid}", clear_on_submit=True):
            c = st.columns([1, 1, 2])
            rate = c[0].number_input("New rate mL/h", value=None, step=1.0, key=f"rate_value_{sid}")
            at = c[1].time_input("Time", value=None, key=f"rate_time_{sid}", step=60, help="Empty = now")
            note = c[2].text_input("Note", key=f"rate_note_{sid}", placeholder="e.g. titration step")
            if st.form_submit_button("Change rate"):
                tok = ui.token(f"rate_{sid}")
                if ui.attempt(
                    lambda: entries.change_rate(
                        db,
                        nurse,
                        sid,
                        rate,
                        at=ui.clinic_time(at, TZ),
                        note=note,
                        client_token=tok,
                        expected_version=versioned(detail),
                    ),
                    "Rate changed.",
                ):
                    ui.spend_token(f"rate_{sid}")
                    st.rerun()
        with st.form(f"pause_{sid}", clear_on_submit=True):
            c = st.columns([1, 2])
            at = c[0].time_input("Pause time", value=None, key=f"pause_time_{sid}", step=60, help="Empty = now")
            note = c[1].text_input("Why", key=f"pause_note_{sid}", placeholder="e.g. reaction, patient to bathroom")
            if st.form_submit_button("⏸ Pause infusion"):
                if ui.attempt(
                    lambda: entries.pause(
                        db, nurse, sid, at=ui.clinic_time(at, TZ), note=note, expected_version=versioned(detail)
                    ),
                    "Infusion paused.",
                ):
                    st.rerun()
    elif status == "paused":
        last = next((r.rate_ml_h for r in reversed(detail.rates) if r.rate_ml_h), None)
        with st.form(f"resume_{sid}"):
            c = st.columns([1, 1, 2])
            rate = c[0].number_input("Resume at mL/h", value=last, step=1.0, key=f"resume_rate_{sid}")
            at = c[1].time_input("Time", value=None, key=f"resume_time_{sid}", step=60, help="Empty = now")
            note = c[2].text_input("Note", key=f"resume_note_{sid}", placeholder="e.g. half rate after reaction")
            if st.form_submit_button("▶ Resume infusion", type="primary"):
                if ui.attempt(
                    lambda: entries.resume(
                        db, nurse, sid, rate, at=ui.clinic_time(at, TZ), note=note, expected_version=versioned(detail)
                    ),
                    "Infusion resumed.",
                ):
                    st.rerun()


def stop_form(detail: views.SessionDetail) -> None:
    sid = detail.session.id
    with st.form(f"stop_{sid}"):
        c = st.columns([1, 2])
        at = c[0].time_input("Stop time", value=None, key=f"stop_time_{sid}", step=60, help="Empty = now")
        obs = detail.observation_minutes
        c[1].caption(
            f"Observation after stop: {obs} min"
            if obs
            else "Observation after stop: not defined for this therapy (clinic policy applies)"
        )
        if st.form_submit_button("⏹ Stop IV", type="primary"):
            if ui.attempt(
                lambda: sessions.stop_iv(db, nurse, sid, expected_version=versioned(detail), at=ui.clinic_time(at, TZ)),
                "IV stopped; observation started.",
            ):
                st.rerun()


def education_form(detail: views.SessionDetail) -> None:
    """Discharge education given, and the printable one-page summary for the patient."""
    sid = detail.session.id
    with st.form(f"education_{sid}"):
        items = st.multiselect(
            "Education given",
            list(aftercare.EDUCATION),
            default=detail.session.education or [],
            format_func=lambda k: aftercare.EDUCATION[k],
            key=f"education_{sid}_items",
        )
        if st.form_submit_button("Save education"):
            if ui.attempt(
                lambda: aftercare.record_education(db, nurse, sid, items, expected_version=versioned(detail)),
                "Education recorded.",
            ):
                st.rerun()
    summary = ui.attempt(lambda: aftercare.summary_html(aftercare.patient_summary(db, nurse, sid)))
    if summary:
        st.download_button(
            "🖨 Patient summary (print or save as PDF)",
            summary,
            file_name=f"visit-summary-{sid}.html",
            mime="text/html",
            on_click="ignore",
            key=f"summary_{sid}",
        )


def discharge_form(detail: views.SessionDetail) -> None:
    sid = detail.session.id
    education_form(detail)
    ends = detail.observation_ends_at
    early = ends is not None and utcnow() < ends
    with st.form(f"discharge_{sid}"):
        if early:
            st.warning(f"Observation runs until {format_local(ends, TZ)}. Discharging earlier needs a reason.")
        c = st.columns([1, 2])
        at = c[0].time_input("Discharge time", value=None, key=f"discharge_time_{sid}", step=60, help="Empty = now")
        reason = c[1].text_input("Reason for early discharge", key=f"discharge_reason_{sid}") if early else None
        if st.form_submit_button("🏠 Discharge", type="primary"):
            if ui.attempt(
                lambda: sessions.discharge(
                    db, nurse, sid, expected_version=versioned(detail), at=ui.clinic_time(at, TZ), early_reason=reason
                ),
                "Patient discharged.",
            ):
                st.rerun()


def reaction_form(detail: views.SessionDetail) -> None:
    sid = detail.session.id
    key = f"reaction_{sid}"
    with st.form(key, clear_on_submit=True):
        st.markdown("**Record a reaction**")
        c = st.columns([2, 1])
        symptoms = c[0].multiselect("Symptoms", list(SYMPTOMS), format_func=SYMPTOMS.get, key=f"{key}_symptoms")
        onset = c[1].time_input("Onset", value=None, key=f"{key}_onset", step=60, help="Empty = now")
        other = st.text_input("Other symptom (describe)", key=f"{key}_other")
        grade = st.radio(
            "CTCAE grade (infusion-related reaction, v5.0)",
            list(CTCAE_IRR),
            horizontal=True,
            index=None,
            key=f"{key}_grade",
            format_func=lambda g: ui.GRADE_CHIPS[g],
        )
        st.caption(
            "  \n".join(f"**G{g}** {text}" for g, text in CTCAE_IRR.items())
            + "  \nAnaphylaxis is defined from grade 3."
        )
        c = st.columns([2, 2])
        actions = c[0].multiselect("Action taken", list(ACTIONS), format_func=ACTIONS.get, key=f"{key}_actions")
        medication = c[1].text_input("Medication given (drug, dose, route)", key=f"{key}_med")
        c = st.columns([1, 1, 2])
        resolved = c[0].time_input(
            "Resolved at", value=None, key=f"{key}_resolved", step=60, help="Empty = still ongoing; record it later"
        )
        notified = c[1].checkbox("Provider notified", key=f"{key}_notified")
        provider = c[2].text_input("Provider name", key=f"{key}_provider")
        note = st.text_input("Note", key=f"{key}_note")
        if st.form_submit_button("Save reaction", type="primary"):
            tok = ui.token(key)
            if ui.attempt(
                lambda: entries.record_reaction(
                    db,
                    nurse,
                    sid,
                    symptoms=symptoms,
                    grade=grade or 0,
                    actions=actions,
                    onset_at=ui.clinic_time(onset, TZ),
                    other_text=other,
                    medication_given=medication,
                    resolved_at=ui.clinic_time(resolved, TZ),
                    provider_notified=notified,
                    provider_name=provider,
                    note=note,
                    client_token=tok,
                ),
                "Reaction recorded.",
            ):
                ui.spend_token(key)
                st.rerun()


def open_reactions(detail: views.SessionDetail) -> None:
    for reaction in detail.open_reactions:
        with st.container(border=True):
            st.markdown(
                f":red[**⚠️ Open reaction {ui.GRADE_CHIPS[reaction.grade]}**] since "
                f"{format_local(reaction.onset_at, TZ)}: " + ", ".join(SYMPTOMS.get(x, x) for x in reaction.symptoms)
            )
            c = st.columns([1, 1])
            at = c[0].time_input(
                "Resolved at", value=None, key=f"resolve_time_{reaction.id}", step=60, help="Empty = now"
            )
            if c[1].button("Mark resolved", key=f"resolve_{reaction.id}", width="stretch"):
                if ui.attempt(
                    lambda rid=reaction.id, at=at: entries.resolve_reaction(
                        db, nurse, rid, resolved_at=ui.clinic_time(at, TZ)
                    ),
                    "Reaction resolved.",
                ):
                    st.rerun()


# ---------------------------------------------------------------- corrections
def _entry_label(kind: str, entry: Any) -> str:
    if kind == "vital_sign":
        bp = f"BP {entry.systolic}/{entry.diastolic} " if entry.systolic is not None else ""
        return f"Vitals {format_local(entry.taken_at, TZ)}: {bp}pulse {entry.pulse if entry.pulse is not None else '—'}"
    if kind == "reaction":
        return f"Reaction {format_local(entry.onset_at, TZ)}: G{entry.grade} " + ", ".join(
            SYMPTOMS.get(x, x) for x in entry.symptoms
        )
    if kind == "premedication":
        return f"Premedication {format_local(entry.given_at, TZ)}: {entry.drug} {entry.dose}"
    return f"Rate {format_local(entry.at, TZ)}: {entry.kind} {entry.rate_ml_h or ''}"


def amend_panel(detail: views.SessionDetail) -> None:
    """Correct an entry or a session time, mark an entry in error, or add an addendum (§6b)."""
    sid, row = detail.session.id, detail.session
    if row.status != "discharged":
        options: dict[str, tuple[str, Any]] = {}
        for kind, items in (
            ("vital_sign", detail.vitals),
            ("reaction", detail.reactions),
            ("premedication", detail.premeds),
            ("rate_change", [r for r in detail.rates if r.kind not in ("start", "stop")]),
        ):
            for entry in items:
                if entry.status == "active":
                    options[f"{kind}:{entry.id}"] = (kind, entry)
        if options:
            choice = st.selectbox(
                "Entry", list(options), key=f"amend_pick_{sid}", format_func=lambda k: _entry_label(*options[k])
            )
            kind, entry = options[choice]
            mode = st.radio(
                "What to do", ["Correct values", "Entered in error"], horizontal=True, key=f"amend_mode_{sid}"
            )
            if mode == "Entered in error" or kind == "rate_change":
                with st.form(f"eie_{sid}_{choice}"):
                    reason = st.text_input(
                        "Why is it in error? (e.g. wrong patient, duplicate)", key=f"eie_reason_{choice}"
                    )
                    if st.form_submit_button("Mark entered in error"):
                        if ui.attempt(
                            lambda: corrections.mark_entered_in_error(db, nurse, kind, entry.id, reason),
                            "Marked entered in error; the original stays in the record.",
                        ):
                            st.rerun()
            else:
                correction_form(kind, entry)
        with st.form(f"fix_time_{sid}"):
            st.markdown("**Correct a session time**")
            c = st.columns([1, 1, 2])
            fields = {k: v for k, v in corrections.SESSION_TIME_FIELDS.items() if getattr(row, k) is not None}
            field = c[0].selectbox(
                "Time",
                list(fields) or ["checked_in_at"],
                key=f"fix_field_{sid}",
                format_func=lambda f: corrections.SESSION_TIME_FIELDS[f],
            )
            new_time = c[1].time_input("Correct time", value=None, key=f"fix_time_value_{sid}", step=60)
            reason = c[2].text_input("Reason", key=f"fix_reason_{sid}")
            if st.form_submit_button("Correct time"):
                moment = (
                    ui.clinic_time(new_time, TZ, getattr(row, field).astimezone(ZoneInfo(TZ)).date())
                    if new_time and getattr(row, field)
                    else None
                )
                if moment is None:
                    st.error("Not saved. Enter the correct time.")
                elif ui.attempt(
                    lambda: corrections.correct_session_time(
                        db, nurse, sid, field, moment, reason=reason, expected_version=versioned(detail)
                    ),
                    "Time corrected; the original is kept.",
                ):
                    st.rerun()
    with st.form(f"addendum_{sid}", clear_on_submit=True):
        st.markdown(
            "**Addendum**" + (" (the only way to amend a discharged session)" if row.status == "discharged" else "")
        )
        text = st.text_area("Text", key=f"addendum_text_{sid}", height=80)
        if st.form_submit_button("Add addendum"):
            if ui.attempt(lambda: corrections.add_addendum(db, nurse, sid, text), "Addendum added."):
                st.rerun()


def correction_form(kind: str, entry: Any) -> None:
    key = f"fix_{kind}_{entry.id}"
    with st.form(key):
        if kind == "vital_sign":
            fixed, fixed_time = vitals_inputs(
                key, with_weight=entry.weight_kg is not None or entry.phase == "pre", defaults=entry
            )
        elif kind == "reaction":
            c = st.columns([2, 1, 2])
            symptoms = c[0].multiselect(
                "Symptoms", list(SYMPTOMS), default=entry.symptoms, format_func=SYMPTOMS.get, key=f"{key}_symptoms"
            )
            grade = c[1].selectbox("Grade", list(CTCAE_IRR), index=entry.grade - 1, key=f"{key}_grade")
            actions = c[2].multiselect(
                "Action taken", list(ACTIONS), default=entry.actions, format_func=ACTIONS.get, key=f"{key}_actions"
            )
            medication = st.text_input("Medication given", value=entry.medication_given or "", key=f"{key}_med")
            other = st.text_input("Other symptom", value=entry.other_text or "", key=f"{key}_other")
        else:
            c = st.columns(3)
            drug = c[0].text_input("Drug", value=entry.drug, key=f"{key}_drug")
            dose = c[1].text_input("Dose", value=entry.dose, key=f"{key}_dose")
            route = c[2].selectbox(
                "Route", ["IV", "PO", "IM", "SC"], index=["IV", "PO", "IM", "SC"].index(entry.route), key=f"{key}_route"
            )
        reason = st.text_input("Reason for the correction", key=f"{key}_reason")
        if st.form_submit_button("Save correction", type="primary"):
            if kind == "vital_sign":
                corrected_at = (
                    ui.clinic_time(fixed_time, TZ, entry.taken_at.astimezone(ZoneInfo(TZ)).date())
                    if fixed_time
                    else entry.taken_at
                )
                action = lambda: corrections.correct_vitals(  # noqa: E731
                    db,
                    nurse,
                    entry.id,
                    fixed,
                    reason=reason,
                    taken_at=corrected_at,
                    # the nurse reviewed the values she is correcting; their flags are stored and shown
                    acknowledge_flags=True,
                )
            elif kind == "reaction":
                action = lambda: corrections.correct_reaction(  # noqa: E731
                    db,
                    nurse,
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
                action = lambda: corrections.correct_premedication(  # noqa: E731
                    db, nurse, entry.id, reason=reason, drug=drug, dose=dose, route=route, given_at=entry.given_at
                )
            if ui.attempt(action, "Correction saved; the original is kept and marked corrected."):
                st.rerun()


def amendments_history(detail: views.SessionDetail) -> None:
    """History on demand: every corrected value, session-time correction and addendum."""
    fixes, addenda = corrections.session_amendments(db, nurse, detail.session.id)
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
                f"{format_local(datetime.fromisoformat(fix.old_value), TZ)} to "
                f"{format_local(datetime.fromisoformat(fix.new_value), TZ)} by {detail.who(fix.corrected_by_id)} "
                f"at {format_local(fix.corrected_at, TZ, '%d %b %H:%M')}: {fix.reason}"
            )
        for kind, entry in replaced:
            versions = corrections.entry_history(db, nurse, kind, entry.id)
            st.markdown(f"**{_entry_label(kind, entry)}** — versions:")
            st.dataframe(
                [
                    {
                        "Status": v.status.replace("_", " "),
                        "Entered": format_local(v.entered_at, TZ, "%d %b %H:%M"),
                        "By": detail.who(v.entered_by_id),
                        "Reason": v.reason or "",
                        "Values": ", ".join(
                            f"{k}={val}"
                            for k, val in v.values.items()
                            if k
                            in (
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
                            and val not in (None, [])
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
                f"{format_local(note.written_at, TZ, '%d %b %H:%M')}: {note.text}"
            )


def timeline_panel(detail: views.SessionDetail) -> None:
    """One session on one time axis: phases, rate steps, vitals with thresholds, reactions."""
    st.plotly_chart(
        timeline.session_timeline(detail),
        width="stretch",
        key=f"timeline_{detail.session.id}",
        config={"displayModeBar": False},
    )
    points = timeline.timeline_frame(detail)
    st.download_button(
        "Timeline data (CSV)",
        points.to_csv(index=False).encode("utf-8-sig"),
        file_name=f"session_{detail.session.id}_timeline.csv",
        mime="text/csv",
        key=f"timeline_csv_{detail.session.id}",
    )


# ---------------------------------------------------------------- the session
def header(detail: views.SessionDetail) -> None:
    row, patient, therapy = detail.session, detail.patient, detail.therapy
    age = ""
    if patient.birth_date:
        today = utcnow().astimezone(ZoneInfo(TZ)).date()
        years = (
            today.year
            - patient.birth_date.year
            - ((today.month, today.day) < (patient.birth_date.month, patient.birth_date.day))
        )
        age = f" · {years} y"
    st.markdown(f"### {patient.given_name} {patient.family_name}{age} · {detail.chair.name}")
    st.markdown(
        f"**{therapy.brand or therapy.name}** ({therapy.name}) · infusion #{row.infusion_number} · "
        f"{row.dose:g} {row.dose_unit} · {ui.STATUS_CHIPS[row.status]}"
    )
    st.caption(f"MRN {patient.mrn} · {patient.diagnosis or 'diagnosis not recorded'}")
    if patient.allergies:
        st.warning(f"Allergies: {patient.allergies}", icon="⚠️")

    now = utcnow()
    m = st.columns(4)
    clock = detail.clock
    if clock.elapsed_minutes is not None:
        m[0].metric(
            "Infusion time",
            format_minutes(clock.elapsed_minutes),
            f"expected {detail.window.describe()}",
            delta_color="off",
            delta_arrow="off",
        )
    else:
        m[0].metric(
            "Infusion time", "not started", f"expected {detail.window.describe()}", delta_color="off", delta_arrow="off"
        )
    if detail.observation_ends_at is not None and row.status == "observation":
        left = (detail.observation_ends_at - now).total_seconds() / 60
        m[1].metric(
            "Observation left",
            format_minutes(max(left, 0)),
            f"until {format_local(detail.observation_ends_at, TZ)}",
            delta_color="off",
            delta_arrow="off",
        )
    else:
        obs = detail.observation_minutes
        m[1].metric(
            "Observation",
            f"{obs} min" if obs else "—",
            "after IV stop" if obs else "not defined by the label",
            delta_color="off",
            delta_arrow="off",
        )
    due = detail.vitals_due
    if due.due_at is not None and row.status not in ("discharged", "deferred", "cancelled", "scheduled"):
        overdue = due.overdue_minutes(now)
        m[2].metric(
            "Next vitals",
            format_local(due.due_at, TZ),
            f"overdue {format_minutes(overdue)}" if overdue else due.reason,
            delta_color="inverse" if overdue else "off",
            delta_arrow="off",
        )
    else:
        m[2].metric("Next vitals", "—", due.reason, delta_color="off", delta_arrow="off")
    rate = row.current_rate_ml_h
    m[3].metric(
        "Rate",
        f"{rate:g} mL/h" if rate and row.status == "infusing" else ("paused" if row.status == "paused" else "—"),
        delta_color="off",
        delta_arrow="off",
    )

    if row.status in ("infusing", "paused") and detail.therapy.rate_plan:
        plan = timeline.session_forecast(detail, now)
        if plan.note:
            st.info(f"💧 Titration: {plan.note}", icon="📋")
    if due.due_at is not None and due.overdue_minutes(now) > 0 and row.status in ("infusing", "paused", "observation"):
        st.error(f"⏰ Vitals overdue since {format_local(due.due_at, TZ)} ({due.reason}).")
    if clock.past_window and row.status in ("infusing", "paused"):
        st.warning(f"⌛ Infusion is past its expected window ({detail.window.describe()}).")
    if row.long_infusion_flag:
        st.warning(
            f"⌛ Infusion lasted {format_minutes(row.infusion_minutes)}, longer than the expected "
            f"{detail.window.describe()}."
        )
    if clock.under_minimum:
        st.warning(
            f"⚡ Infusion took {format_minutes(clock.elapsed_minutes)}: shorter than the label minimum "
            f"({detail.window.describe()})."
        )
    if row.deferral_reason:
        st.info(f"Deferred: {row.deferral_reason}")
    if row.early_discharge_reason:
        st.info(f"Discharged before the end of observation: {row.early_discharge_reason}")


def _abnormal_rows(row: Any) -> list[str]:
    if row.get("Status", "active") != "active":  # corrected / entered in error: shown, struck through
        style = "color: #888; text-decoration: line-through"
    elif row.get("Flags"):
        style = "background-color: #fde2e1; color: #7a1010; font-weight: 600"
    else:
        style = ""
    return [style] * len(row)


def history(detail: views.SessionDetail) -> None:
    vitals = views.vitals_table(detail)
    if not vitals.empty:
        st.markdown("**Vitals** (🚩 rows are abnormal by the clinic's thresholds)")
        vitals["Flags"] = vitals["Flags"].map(lambda text: f"🚩 {text}" if text else "")
        st.dataframe(vitals.style.apply(_abnormal_rows, axis=1), hide_index=True, width="stretch")
    for title, frame in (
        ("Reactions", views.reactions_table(detail)),
        ("Rate", views.rates_table(detail)),
        ("Premedication", views.premeds_table(detail)),
    ):
        if not frame.empty:
            st.markdown(f"**{title}**")
            st.dataframe(frame.style.apply(_abnormal_rows, axis=1), hide_index=True, width="stretch")
    amendments_history(detail)
    row = detail.session
    if row.iv_started_at:
        st.caption(
            f"IV: {row.iv_site}, {row.iv_gauge} G, {row.iv_attempts} attempt(s), lot {row.lot_number}, "
            f"started {format_local(row.iv_started_at, TZ)}"
            + (f", stopped {format_local(row.iv_stopped_at, TZ)}" if row.iv_stopped_at else "")
        )


def session_panel(session_id: int) -> None:
    detail = views.session_detail(db, nurse, session_id)
    if detail is None:
        st.info("That session no longer exists.")
        return
    header(detail)
    status = detail.session.status
    if status in ("infusing", "paused", "observation"):
        open_reactions(detail)
        tabs = st.tabs(
            [
                "🩺 Vitals",
                "⚠️ Reaction",
                "💧 Rate" if status != "observation" else "🏠 Discharge",
                "📋 Record",
                "📈 Timeline",
            ]
        )
        with tabs[0]:
            vitals_form(detail, kind="vitals")
        with tabs[1]:
            reaction_form(detail)
        with tabs[2]:
            if status == "observation":
                discharge_form(detail)
            else:
                rate_controls(detail)
                stop_form(detail)
        with tabs[3]:
            history(detail)
        with tabs[4]:
            timeline_panel(detail)
    else:
        if status == "scheduled":
            step_scheduled(detail)
        elif status == "checked_in":
            step_checked_in(detail)
        elif status == "ready":
            step_ready(detail)
        if status in ("checked_in", "ready"):
            with st.expander("🩺 Record another set of vitals"):
                vitals_form(detail, kind="vitals")
        history(detail)
        if status in ("discharged", "deferred"):
            with st.expander("📈 Timeline"):
                timeline_panel(detail)
        if status == "discharged":
            with st.expander("🖨 Education and patient summary"):
                education_form(detail)
    if status not in ("scheduled", "cancelled"):
        with st.expander("✏️ Correct the record / addendum"):
            amend_panel(detail)
    # The version on screen now is the one the nurse's next save is checked against.
    seen_versions[session_id] = detail.session.version


# ---------------------------------------------------------------- layout
ui.show_flash()
cards = views.today_sessions(db, nurse)
left, right = st.columns([1, 2.6], gap="small")
with left:
    session_list(cards)
    walk_in_form()
with right:
    chosen = st.session_state.get("selected_session")
    if chosen is None:
        st.info("Pick a session on the left, or add a walk-in.")
    else:
        session_panel(chosen)
