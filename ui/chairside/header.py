"""The session header: who and what, the four numbers a nurse glances at, and what needs attention."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import streamlit as st

from infusion.charts import timeline
from infusion.clinical.ocrevus import OCREVUS_IV
from infusion.clock import format_local, format_minutes
from infusion.reads import flags
from infusion.reads import sessions as views
from ui import common as ui
from ui.chairside.context import Chairside

CLOSED = ("discharged", "deferred", "cancelled", "scheduled")


def _age(cx: Chairside, detail: views.SessionDetail, now: datetime) -> str:
    born = detail.patient.birth_date
    if not born:
        return ""
    today = now.astimezone(ZoneInfo(cx.tz)).date()
    return f" · {today.year - born.year - ((today.month, today.day) < (born.month, born.day))} y"


def header(cx: Chairside, detail: views.SessionDetail, now: datetime) -> None:
    row, patient, therapy = detail.session, detail.patient, detail.therapy
    st.markdown(f"### {patient.given_name} {patient.family_name}{_age(cx, detail, now)} · {detail.chair.name}")
    dose = f"{row.dose:g} {row.dose_unit}" if row.dose is not None else "dose not set"
    st.markdown(
        f"**{therapy.brand or therapy.name}**{f' ({therapy.name})' if therapy.brand else ''} · "
        f"infusion #{row.infusion_number} · "
        f"{dose} · {ui.STATUS_CHIPS[row.status]}"
    )
    st.caption(f"MRN {patient.mrn} · {patient.diagnosis or 'diagnosis not recorded'}")
    if patient.allergies:
        st.warning(f"Allergies: {patient.allergies}", icon="⚠️")
    metrics(cx, detail, now)
    attention(cx, detail, now)


def metrics(cx: Chairside, detail: views.SessionDetail, now: datetime) -> None:
    """Two rows of two, so a portrait tablet shows whole numbers rather than '120 …'."""
    row, clock, due = detail.session, detail.clock, detail.vitals_due
    quiet = {"delta_color": "off", "delta_arrow": "off"}
    top, bottom = st.columns(2), st.columns(2)
    elapsed = format_minutes(clock.elapsed_minutes) if clock.elapsed_minutes is not None else "not started"
    top[0].metric("Infusion time", elapsed, f"expected {detail.window.describe()}", **quiet)  # type: ignore[arg-type]
    if detail.observation_ends_at is not None and row.status == "observation":
        left = (detail.observation_ends_at - now).total_seconds() / 60
        top[1].metric(
            "Observation left",
            format_minutes(max(left, 0)),
            f"until {format_local(detail.observation_ends_at, cx.tz)}",
            **quiet,  # type: ignore[arg-type]
        )
    else:
        obs = detail.observation_minutes
        top[1].metric(
            "Observation",
            f"{obs} min" if obs else "—",
            "after IV stop" if obs else "not defined by the label",
            **quiet,  # type: ignore[arg-type]
        )
    overdue = due.overdue_minutes(now) if due.due_at is not None else 0
    late = overdue >= 1  # under a minute is not overdue yet ("overdue 0 min" helps no one)
    if due.due_at is not None and row.status not in CLOSED:
        bottom[0].metric(
            "Next vitals",
            format_local(due.due_at, cx.tz),
            f"overdue {format_minutes(overdue)}" if late else due.reason,
            delta_color="inverse" if late else "off",
            delta_arrow="off",
        )
    else:
        bottom[0].metric("Next vitals", "—", due.reason, **quiet)  # type: ignore[arg-type]
    rate = row.current_rate_ml_h
    shown = f"{rate:g} mL/h" if rate and row.status == "infusing" else ("paused" if row.status == "paused" else "—")
    bottom[1].metric("Rate", shown, **quiet)  # type: ignore[arg-type]


def attention(cx: Chairside, detail: views.SessionDetail, now: datetime) -> None:
    row, clock, due = detail.session, detail.clock, detail.vitals_due
    if row.status in ("infusing", "paused") and detail.therapy.rate_plan:
        if detail.open_reactions:  # never advise raising the rate while a reaction is open
            st.warning("💧 Titration on hold: resolve the open reaction before any rate increase.", icon="⚠️")
        else:
            plan = timeline.session_forecast(detail, now)
            if plan.note:
                st.info(f"💧 Titration: {plan.note}", icon="📋")
    if due.due_at is not None and due.overdue_minutes(now) >= 1 and row.status in ("infusing", "paused", "observation"):
        st.error(f"⏰ Vitals overdue since {format_local(due.due_at, cx.tz)} ({due.reason}).")
    if clock.past_window and row.status in ("infusing", "paused"):
        st.warning(f"⌛ Infusion is past its expected window ({detail.window.describe()}).")
    if row.long_infusion_flag:
        st.warning(
            f"⌛ Infusion lasted {format_minutes(row.infusion_minutes)}, longer than the expected "
            f"{detail.window.describe()}."
        )
    if detail.therapy.code == OCREVUS_IV and row.status in ("infusing", "paused", "observation", "discharged"):
        shortened = flags.shorter_infusion_flag(cx.db, cx.nurse, row.id)
        if shortened:
            st.warning(f"⚡ {shortened}")
    if clock.under_minimum:
        st.warning(
            f"⚡ Infusion took {format_minutes(clock.elapsed_minutes)}: shorter than the label minimum "
            f"({detail.window.describe()})."
        )
    if row.deferral_reason:
        st.info(f"Deferred: {row.deferral_reason}")
    if row.early_discharge_reason:
        st.info(f"Discharged before the end of observation: {row.early_discharge_reason}")
