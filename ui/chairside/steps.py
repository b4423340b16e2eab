"""Before the IV starts: check-in, the pre-treatment checks, proceed or defer, premedication, IV start."""

from __future__ import annotations

import streamlit as st

from infusion.clinical import premedication
from infusion.clinical.catalog import rate_plan_for
from infusion.clinical.units import temperature_for_display
from infusion.clock import format_local
from infusion.reads import due
from infusion.reads import sessions as views
from infusion.services import entries, pretreatment, sessions
from infusion.services.sessions import IV_GAUGES, IV_SITES
from ui import forms
from ui.chairside.chairs import move_chair_form
from ui.chairside.context import Chairside
from ui.chairside.vitals import vitals_form

DEFER_REASONS = (
    "Fever",
    "Active infection",
    "Abnormal vital signs",
    "Labs not available",
    "Program authorization not verified",
    "Patient declined",
    "Other",
)
ROUTES = list(premedication.ROUTES)


def step_scheduled(cx: Chairside, detail: views.SessionDetail) -> None:
    early = due.too_early_for_session(cx.db, detail.session.id)
    if early is not None:
        st.warning(f"📅 {early.message}", icon="⚠️")
    position = due.course_position(cx.db, detail.session.patient_id, detail.session.therapy_id)
    if position:
        st.caption(f"Course: {position}")
    move_chair_form(cx, detail)
    vitals_form(cx, detail, kind="check_in")
    with st.expander("Cancel this session"):
        with forms.entry_form(f"cancel_{detail.session.id}") as form:
            reason = st.text_input("Reason", key=form.key("reason"))
            if form.submit("Cancel session"):
                form.save(
                    lambda: sessions.cancel(
                        cx.db, cx.nurse, detail.session.id, reason, expected_version=cx.version(detail)
                    ),
                    "Session cancelled.",
                    at_panel=True,
                )


def step_checked_in(cx: Chairside, detail: views.SessionDetail) -> None:
    st.markdown("**Check-in assessment:** proceed to infusion, or defer (the session is kept with the reason).")
    pretreatment_form(cx, detail)
    with st.popover("⏸ Defer", width="stretch"):
        defer_form(cx, detail)
    pre_infusion_checks(cx, detail)


def pretreatment_form(cx: Chairside, detail: views.SessionDetail) -> None:
    """The pre-treatment checklist and Proceed in one action: what is ticked counts when Proceed is pressed.

    A required item left unticked blocks Proceed (defer instead); the service also
    re-checks each item against what was measured at check-in.
    """
    sid = detail.session.id
    checks = pretreatment.checklist_for(detail.therapy)
    answered = pretreatment.latest_answers(cx.db, cx.nurse, sid)
    with forms.entry_form(f"pretreatment_{sid}") as form:
        st.markdown("**Pre-treatment checks**")
        answers: dict[str, bool] = {}
        notes: dict[str, str] = {}
        for check in checks:
            c = st.columns([3, 2])
            previous = answered.get(check.code)
            answers[check.code] = c[0].checkbox(
                check.label + (" (required)" if check.required else ""),
                value=bool(previous and previous.answer),
                key=form.key(f"check_{check.code}"),
            )
            notes[check.code] = c[1].text_input(
                "Note",
                value=(previous.note or "") if previous else "",
                key=form.key(f"note_{check.code}"),
                label_visibility="collapsed",
                placeholder="note (optional)",
            )
        fever = _measured_fever(detail)
        override = ""
        if fever is not None:
            st.warning(
                f"🌡 Temperature {_in_unit(fever, cx.temperature_unit)} was measured in this session: "
                "“no active infection” cannot be "
                "ticked away. Defer, or give the clinical reason to proceed anyway (recorded in the audit trail).",
                icon="⚠️",
            )
            override = st.text_input("Reason to proceed despite the fever", key=form.key("override"))
        b1, b2 = st.columns(2)
        with b1:
            proceed = form.submit("✅ Proceed", type="primary", width="stretch")
        with b2:
            save_only = form.submit("Save checks only", name="save_only", width="stretch")

        def save_answers() -> None:
            pretreatment.record_pretreatment(cx.db, cx.nurse, sid, answers, notes)

        if proceed:

            def save_and_proceed() -> object:
                save_answers()
                return pretreatment.proceed_with_checks(
                    cx.db, cx.nurse, sid, cx.version(detail), override_reason=override or None
                )

            form.save(save_and_proceed, "Checks saved. Cleared to proceed.", at_panel=True)
        elif save_only:
            form.save(save_answers, "Checks saved.")


def _in_unit(celsius: float, unit: str) -> str:
    shown = temperature_for_display(celsius, unit)
    return f"{shown:.1f} °{unit}" if shown is not None else f"{celsius:.1f} °C"


def _measured_fever(detail: views.SessionDetail) -> float | None:
    """The highest temperature at or above the clinic's fever threshold charted in this session (°C)."""
    threshold = detail.settings.thresholds.temperature_c_high
    temps = [
        v.temperature_c
        for v in detail.vitals
        if v.status == "active" and v.temperature_c is not None and v.temperature_c >= threshold
    ]
    return max(temps) if temps else None


def defer_form(cx: Chairside, detail: views.SessionDetail) -> None:
    sid = detail.session.id
    with forms.entry_form(f"defer_{sid}") as form:
        why = st.selectbox("Reason", DEFER_REASONS, key=form.key("why"))
        details = st.text_input("Details", key=form.key("details"))
        if form.submit("Defer session"):
            reason = why if not details.strip() else f"{why}: {details.strip()}"
            if why == "Other" and not details.strip():
                reason = ""
            form.save(
                lambda: sessions.defer(cx.db, cx.nurse, sid, reason, expected_version=cx.version(detail)),
                "Session deferred.",
                at_panel=True,
            )


def pre_infusion_checks(cx: Chairside, detail: views.SessionDetail) -> None:
    """Program checklist and premedication, before the IV starts."""
    sid, therapy = detail.session.id, detail.therapy
    if therapy.program:
        if detail.program_check is None and detail.session.status == "checked_in":
            st.caption(f"{therapy.program}: confirm the authorisation in the pre-treatment checks above.")
        elif detail.program_check is None:
            with forms.entry_form(f"program_{sid}") as form:
                st.markdown(
                    f"**{therapy.program} checklist** — required before every {therapy.brand or therapy.name} "
                    "infusion: confirm the patient is authorized and the pre-infusion checklist is complete."
                )
                ref = st.text_input("Authorization / checklist reference (optional)", key=form.key("ref"))
                if form.submit(f"Confirm {therapy.program} checklist done"):
                    form.save(
                        lambda: sessions.confirm_program(
                            cx.db, cx.nurse, sid, authorization_ref=ref, expected_version=cx.version(detail)
                        ),
                        f"{therapy.program} checklist confirmed.",
                        at_panel=True,
                    )
        else:
            st.success(
                f"{therapy.program} checklist confirmed by {detail.who(detail.program_check.confirmed_by_id)} "
                f"at {format_local(detail.program_check.confirmed_at, cx.tz)}.",
                icon="☑️",
            )
    if therapy.premedication_required or detail.premeds:
        premed_form(cx, detail)


def premed_form(cx: Chairside, detail: views.SessionDetail) -> None:
    """Premedication as coded choices (drug from the list, dose, unit, route): what de-identified
    exports may carry. A drug not on the list is named in text, kept in identified records only."""
    sid = detail.session.id
    label = "**Premedication**" + (
        f" — {detail.therapy.premedication_text}" if detail.therapy.premedication_text else ""
    )
    with forms.entry_form(f"premed_{sid}") as form:
        st.markdown(label)
        c = st.columns([2, 2, 1, 1])
        drug_code = c[0].selectbox(
            "Drug",
            premedication.DRUG_CODES,
            index=None,
            placeholder="Pick the drug",
            format_func=lambda code: premedication.DRUG_NAMES[code],
            key=form.key("drug_code"),
        )
        other = c[1].text_input(
            "Other drug (name it)",
            key=form.key("drug"),
            placeholder="only for “Other”",
        )
        dose_value = c[2].number_input("Dose", value=None, min_value=0.0, step=1.0, key=form.key("dose_value"))
        unit = c[3].selectbox("Unit", premedication.UNITS, key=form.key("dose_unit"))
        c = st.columns([2, 1, 1])
        route = c[0].selectbox(
            "Route",
            list(premedication.ROUTES),
            format_func=lambda r: f"{r} · {premedication.ROUTES[r]}",
            key=form.key("route"),
        )
        given = c[1].time_input("Time given", value=None, key=form.key("time"), step=60, help="Empty = now")
        if form.submit("Record premedication"):
            token = form.token
            form.save(
                lambda: entries.record_premedication(
                    cx.db,
                    cx.nurse,
                    sid,
                    drug_code=drug_code,
                    drug=other,
                    dose_value=dose_value,
                    dose_unit=unit if dose_value is not None else None,
                    route=route,
                    given_at=cx.time(given, not_before=detail.session.checked_in_at),
                    client_token=token,
                ),
                "Premedication recorded.",
            )


def step_ready(cx: Chairside, detail: views.SessionDetail) -> None:
    pre_infusion_checks(cx, detail)
    sid = detail.session.id
    plan = rate_plan_for(detail.therapy.rate_plan, detail.session.infusion_number) or {}
    first_rate = plan.get("start_ml_h") or ((plan.get("steps") or [{}])[0].get("rate_ml_h"))
    with forms.entry_form(f"start_{sid}") as form:
        st.markdown("**Start IV**" + (f" — label start rate {first_rate:g} mL/h" if first_rate else ""))
        c = st.columns(3)
        site = c[0].selectbox("Site", IV_SITES, index=None, key=form.key("site"), placeholder="Pick the site")
        gauge = c[1].selectbox("Catheter gauge", IV_GAUGES, index=IV_GAUGES.index(22), key=form.key("gauge"))
        attempts = c[2].number_input("Attempts", value=1, step=1, key=form.key("attempts"))
        c = st.columns(3)
        lot = c[0].text_input("Product lot number", key=form.key("lot"))
        rate = c[1].number_input(
            "Rate mL/h", value=float(first_rate) if first_rate else None, step=1.0, key=form.key("rate")
        )
        at = c[2].time_input("Start time", value=None, key=form.key("time"), step=60, help="Empty = now")
        skip = ""
        if detail.needs_premedication:
            skip = st.text_input("Premedication not given? Say why", key=form.key("skip"))
        confirmed = form.confirmation("Give this rate: I have checked it against the order")
        if form.submit("▶ Start IV", type="primary"):
            form.save(
                lambda: sessions.start_iv(
                    cx.db,
                    cx.nurse,
                    sid,
                    expected_version=cx.version(detail),
                    site=site or "",
                    gauge=gauge,
                    attempts=int(attempts) if attempts is not None else 0,
                    lot_number=lot,
                    rate_ml_h=rate,  # type: ignore[arg-type]  # empty is refused by the service with a message
                    at=cx.time(at, not_before=detail.session.checked_in_at),
                    premed_skip_reason=skip,
                    confirm_above_label=confirmed,
                ),
                "IV started.",
                at_panel=True,
                confirmable=True,
            )
    with st.popover("⏸ Defer instead"):
        defer_form(cx, detail)
