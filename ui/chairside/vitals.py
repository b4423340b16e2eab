"""Vitals at the chair: the fields in the order nurses say them, flags shown and confirmed before saving."""

from __future__ import annotations

from typing import Any

import streamlit as st

from infusion.clinical.units import temperature_for_display, weight_for_display
from infusion.clinical.vitals import CONSCIOUSNESS, LABELS, MEASURES, POSITIONS, VitalsEntry
from infusion.errors import ChairsideError
from infusion.reads import sessions as views
from infusion.services import entries, sessions
from ui import common as ui
from ui import forms
from ui.chairside.context import Chairside
from ui.forms import EntryForm


def vitals_inputs(
    cx: Chairside, form: EntryForm, *, with_weight: bool, defaults: Any = None
) -> tuple[VitalsEntry, Any]:
    """The vitals fields in the clinic's units; `defaults` (a stored VitalSign) pre-fills a correction."""

    def start(name: str) -> Any:
        if defaults is None:
            return None
        if name == "temperature_c":
            return temperature_for_display(defaults.temperature_c, cx.temperature_unit)
        if name == "weight_kg":
            return weight_for_display(defaults.weight_kg, cx.weight_unit)
        return getattr(defaults, name)

    k = form.key
    c = st.columns(4)
    sbp = c[0].number_input("Systolic BP", value=start("systolic"), step=1, key=k("sbp"), placeholder="mmHg")
    dbp = c[1].number_input("Diastolic BP", value=start("diastolic"), step=1, key=k("dbp"), placeholder="mmHg")
    pulse = c[2].number_input("Pulse", value=start("pulse"), step=1, key=k("pulse"), placeholder="/min")
    temp = c[3].number_input(
        f"Temperature °{cx.temperature_unit}", value=start("temperature_c"), step=0.1, format="%.1f", key=k("temp")
    )
    c = st.columns(4)
    rr = c[0].number_input("Respiration", value=start("resp_rate"), step=1, key=k("rr"), placeholder="/min")
    spo2 = c[1].number_input("SpO2 %", value=start("spo2"), step=1, key=k("spo2"))
    pain = c[2].number_input("Pain 0–10", value=start("pain"), step=1, key=k("pain"))
    weight = (
        c[3].number_input(
            f"Weight {cx.weight_unit}", value=start("weight_kg"), step=0.1, format="%.1f", key=k("weight")
        )
        if with_weight
        else None
    )
    c = st.columns(4)
    positions = [None, *POSITIONS]
    position = c[0].selectbox(
        "Position",
        positions,
        key=k("pos"),
        index=positions.index(defaults.position) if defaults is not None and defaults.position in positions else 0,
        format_func=lambda p: "—" if p is None else str(p),
    )
    acvpu = c[1].selectbox(
        "Consciousness",
        list(CONSCIOUSNESS),
        key=k("acvpu"),
        index=list(CONSCIOUSNESS).index(defaults.consciousness) if defaults is not None else 0,
        format_func=lambda key: f"{key} · {CONSCIOUSNESS[key]}",
    )
    taken = c[2].time_input(
        "Time taken",
        value=None,
        key=k("time"),
        step=60,
        help="Leave empty for now; type an earlier time for a late entry.",
    )
    on_o2 = c[3].checkbox("On oxygen", key=k("o2"), value=bool(defaults is not None and defaults.on_oxygen))
    with st.expander("Unable to obtain · provider notified · note"):
        u1, u2 = st.columns([1, 2])
        had_unable = dict(defaults.unable_to_obtain or {}) if defaults is not None else {}
        unable = u1.multiselect(
            "Unable to obtain",
            [m for m in MEASURES if with_weight or m != "weight"],
            default=[m for m in had_unable if with_weight or m != "weight"],
            format_func=lambda m: LABELS[m],
            key=k("unable"),
        )
        why = u2.text_input(
            "Why (e.g. cold fingers, patient asleep)", value=next(iter(had_unable.values()), ""), key=k("why")
        )
        p1, p2 = st.columns([1, 2])
        notified = p1.checkbox(
            "Provider notified", key=k("notified"), value=bool(defaults is not None and defaults.provider_notified)
        )
        provider = p2.text_input(
            "Provider name",
            key=k("provider"),
            value=(defaults.provider_name or "") if defaults is not None else "",
        )
        note = st.text_input("Note", key=k("note"), value=(defaults.note or "") if defaults is not None else "")
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


def vitals_form(cx: Chairside, detail: views.SessionDetail, *, kind: str) -> None:
    """Vitals entry with flags shown before the save; `kind` is 'check_in' or 'vitals'."""
    sid = detail.session.id
    name = f"{kind}_{sid}"
    pending_key = f"_pending_{name}"
    check_in = kind == "check_in"
    with forms.entry_form(name) as form:
        st.markdown("**Check-in vitals (baseline)**" if check_in else "**Record vitals**")
        entry, taken = vitals_inputs(cx, form, with_weight=check_in)
        if form.submit("Check in" if check_in else "Save vitals", type="primary"):
            st.session_state.pop(pending_key, None)
            taken_at = cx.time(taken, not_before=detail.session.checked_in_at)
            try:
                # what refuses the save whatever the values (a time ahead, a busy chair) shows at this tap,
                # not after the nurse has confirmed abnormal values
                assessment = (
                    sessions.preview_check_in(cx.db, cx.nurse, sid, entry, taken_at)
                    if check_in
                    else entries.preview_vitals(cx.db, cx.nurse, sid, entry, taken_at=taken_at)
                )
            except ChairsideError as error:
                ui.show_error(error)
            else:
                if assessment.flags:
                    st.session_state[pending_key] = {
                        "entry": entry,
                        "taken_at": taken_at,
                        "generation": form.generation,
                    }
                else:
                    save_vitals(
                        cx, detail, form, kind, entry, taken_at, acknowledge=False, news=assessment.news2.describe()
                    )
    pending = st.session_state.get(pending_key)
    if pending and pending.get("generation") == form.generation:
        confirm_flagged(cx, detail, form, kind, pending, pending_key)


def save_vitals(
    cx: Chairside,
    detail: views.SessionDetail,
    form: EntryForm,
    kind: str,
    entry: VitalsEntry,
    taken_at: Any,
    *,
    acknowledge: bool,
    news: str,
) -> None:
    sid = detail.session.id
    token = form.token
    st.session_state.pop(f"_pending_{form.name}", None)
    if kind == "check_in":
        form.save(
            lambda: sessions.check_in(
                cx.db,
                cx.nurse,
                sid,
                entry,
                expected_version=cx.version(detail),
                at=taken_at,
                acknowledge_flags=acknowledge,
                client_token=token,
            ),
            f"Checked in · {news}",
            at_panel=True,
        )
    else:
        form.save(
            lambda: entries.record_vitals(
                cx.db, cx.nurse, sid, entry, taken_at=taken_at, acknowledge_flags=acknowledge, client_token=token
            ),
            f"Vitals saved · {news}",
        )


def _values(entry: VitalsEntry, cx: Chairside) -> str:
    units = {
        "systolic": "mmHg",
        "diastolic": "mmHg",
        "pulse": "/min",
        "resp_rate": "/min",
        "temperature": f"°{cx.temperature_unit}",
        "spo2": "%",
        "weight": cx.weight_unit,
    }
    shown = [
        f"{LABELS.get(name, name)} {value:g} {units.get(name, '')}".rstrip()
        for name, value in (
            ("systolic", entry.systolic),
            ("diastolic", entry.diastolic),
            ("pulse", entry.pulse),
            ("resp_rate", entry.resp_rate),
            ("temperature", entry.temperature),
            ("spo2", entry.spo2),
            ("pain", entry.pain),
            ("weight", entry.weight),
        )
        if isinstance(value, int | float)
    ]
    return " · ".join(shown)


def confirm_flagged(
    cx: Chairside, detail: views.SessionDetail, form: EntryForm, kind: str, pending: dict[str, Any], pending_key: str
) -> None:
    """The abnormal values, with what will be saved, confirmed before the save."""
    entry: VitalsEntry = pending["entry"]
    assessment = entries.preview_vitals(cx.db, cx.nurse, detail.session.id, entry, require_core=kind == "check_in")
    with st.container(border=True):
        st.error(
            "**Abnormal values — confirm before saving**\n\n"
            + "\n".join(f"- 🚩 {f.message}" for f in assessment.flags)
            + f"\n\n{assessment.news2.describe()} ({assessment.news2.band} risk; a trend indicator in clinic)",
            icon="🚩",
        )
        st.caption(f"Will save: {_values(entry, cx)}")
        c1, c2 = st.columns([1, 2])
        notified = c1.checkbox("Provider notified", value=entry.provider_notified, key=form.key("confirm_notified"))
        provider = c2.text_input(
            "Provider name",
            value=entry.provider_name or "",
            key=form.key("confirm_provider"),
        )
        b1, b2 = st.columns(2)
        if b1.button("Confirm and save", type="primary", key=form.button_key("confirm"), width="stretch"):
            entry.provider_notified, entry.provider_name = notified, provider
            save_vitals(
                cx, detail, form, kind, entry, pending["taken_at"], acknowledge=True, news=assessment.news2.describe()
            )
        if b2.button("Back to edit", key=form.button_key("back"), width="stretch"):
            st.session_state.pop(pending_key, None)
            st.rerun()
