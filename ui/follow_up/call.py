"""One follow-up call: reached or not, a note, and any delayed reaction the patient reports.

The form goes through `ui.forms`: a refused save keeps every field, and the form's token
goes with the reaction, so saving again after a refused call cannot record it twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import streamlit as st

from db.engine import Database
from infusion.accounts.actor import Actor
from infusion.clinical.reactions import CTCAE_IRR, SYMPTOMS
from infusion.clock import utcnow
from infusion.errors import ChairsideError, ConfirmationRequired
from infusion.services import aftercare
from ui import common as ui
from ui import forms
from ui.forms import EntryForm, entry_form


@dataclass
class FollowUp:
    db: Database
    nurse: Actor
    tz: str
    seen: dict[int, int]  # follow-up version each call form showed (two nurses calling get a clear message)

    def today(self) -> date:
        return utcnow().astimezone(ZoneInfo(self.tz)).date()


OPENED = "fu_opened"  # the sessions whose call form is drawn, in the order opened
CLOSED = "fu_closed"  # the forms the nurse closed (the first still to call does not open itself again)


def opened_calls(listed: list[int], pending: list[int]) -> set[int]:
    """The call forms to draw: the ones the nurse opened and has not saved or closed, else the first patient
    still to call she has not closed. A form leaves only through its Save or its Close button: inside an
    `st.form` what is typed reaches the server only with a submit, so a form taken off the page otherwise
    would lose it."""
    opened = [sid for sid in st.session_state.get(OPENED, []) if sid in listed]
    if not opened:
        closed = set(st.session_state.get(CLOSED, []))
        opened = [sid for sid in pending if sid not in closed][:1]
    st.session_state[OPENED] = opened
    return set(opened)


def _open(sid: int) -> None:
    st.session_state[OPENED] = [*st.session_state.get(OPENED, []), sid]
    st.session_state[CLOSED] = [s for s in st.session_state.get(CLOSED, []) if s != sid]


def _close(sid: int, *, by_nurse: bool = False) -> None:
    st.session_state[OPENED] = [s for s in st.session_state.get(OPENED, []) if s != sid]
    if by_nurse:
        st.session_state[CLOSED] = [*st.session_state.get(CLOSED, []), sid]


def saved_flash(sid: int) -> str:
    """Where a row shows that its call was recorded (its form has closed)."""
    return f"fu_saved_{sid}"


def call_button(sid: int) -> None:
    st.button("📞 Call", key=f"fu_call_{sid}", on_click=_open, args=(sid,))


def call_form(cx: FollowUp, sid: int) -> None:
    with entry_form(f"fu_{sid}") as form:
        k = form.key
        c = st.columns([1, 3])
        outcome = c[0].radio(
            "Call",
            ["reached", "not_reached"],
            format_func=lambda o: aftercare.OUTCOMES[o],
            key=k("outcome"),
            index=None,
        )
        note = c[1].text_input("Note (how they are, advice given)", key=k("note"))
        with st.expander("Delayed reaction reported?"):
            delayed = st.checkbox("The patient reports a reaction after going home", key=k("delayed"))
            reaction = _reaction_fields(cx, form)
        discard = st.checkbox("Discard what is typed", key=k("discard"))
        b = st.columns([1, 1, 3])
        with b[0]:
            saving = form.submit("Save call", type="primary")
        with b[1]:
            closing = form.submit("Close", name="close")
        if saving:
            save_call(cx, form, sid, outcome, note or "", delayed=delayed, reaction=reaction)
        elif closing:
            # the 24 h confirmation tick alone is not an entry
            typed = outcome is not None or bool((note or "").strip()) or delayed
            typed = typed or any(value for field, value in reaction.items() if field != "confirm")
            if typed and not discard:
                st.warning("Not closed: something is typed. Save the call, or tick “Discard what is typed”.", icon="✋")
            else:
                forms.done(f"fu_{sid}")  # a blank form if it is opened again
                _close(sid, by_nurse=True)
                st.rerun()


def _reaction_fields(cx: FollowUp, form: EntryForm) -> dict[str, Any]:
    k = form.key
    d = st.columns([2, 1, 1])
    symptoms = d[0].multiselect("Symptoms", list(SYMPTOMS), format_func=lambda s: SYMPTOMS[s], key=k("symptoms"))
    onset_day = d[1].date_input("Onset date", value=cx.today(), key=k("onset_day"))
    onset_time = d[2].time_input("Onset time", value=None, key=k("onset_time"), step=60)
    other = st.text_input("Other symptom (describe)", key=k("other"))
    grade = st.radio(
        "CTCAE grade (infusion-related reaction, v5.0)",
        list(CTCAE_IRR),
        horizontal=True,
        index=None,
        key=k("grade"),
        format_func=lambda g: ui.GRADE_CHIPS[g],
    )
    st.caption("  \n".join(f"**G{g}** {text}" for g, text in CTCAE_IRR.items()))
    e = st.columns([2, 2])
    actions = e[0].multiselect(
        "What was done",
        list(aftercare.DELAYED_ACTIONS),
        format_func=lambda a: aftercare.DELAYED_ACTIONS[a],
        key=k("actions"),
    )
    medication = e[1].text_input("Medication taken (drug, dose, route)", key=k("med"))
    f = st.columns([1, 2])
    notified = f[0].checkbox("Provider notified", key=k("notified"))
    provider = f[1].text_input("Provider name", key=k("provider"))
    confirm = st.checkbox("Onset more than 24 h after discharge: record it anyway", key=k("confirm"))
    return {
        "symptoms": symptoms,
        "grade": grade,
        "actions": actions,
        "onset": ui.clinic_time(onset_time, cx.tz, onset_day) if onset_time and isinstance(onset_day, date) else None,
        "other": other,
        "medication": medication,
        "notified": notified,
        "provider": provider,
        "confirm": confirm,
    }


def save_call(
    cx: FollowUp, form: EntryForm, sid: int, outcome: str | None, note: str, *, delayed: bool, reaction: dict[str, Any]
) -> None:
    """The reaction first (so a refused reaction saves nothing), then the call."""
    if outcome is None:
        st.error("Not saved. Choose reached or not reached.", icon="🚫")
        return
    if delayed and outcome != "reached":
        st.error("Not saved. A delayed reaction is recorded when the patient was reached.", icon="🚫")
        return
    if delayed:
        try:
            aftercare.record_delayed_reaction(
                cx.db,
                cx.nurse,
                sid,
                reaction["symptoms"],
                reaction["grade"] or 0,
                reaction["actions"],
                reaction["onset"],
                note,
                other_text=reaction["other"],
                medication_given=reaction["medication"],
                provider_notified=reaction["notified"],
                provider_name=reaction["provider"],
                confirm_beyond_24h=reaction["confirm"],
                client_token=form.token,
            )
        except ConfirmationRequired as error:
            st.warning("Not saved. " + " ".join(error.flags) + " Tick the box to record it anyway.", icon="⚠️")
            return
        except ChairsideError as error:
            ui.show_error(error)
            return
    try:
        aftercare.record_follow_up(cx.db, cx.nurse, sid, outcome, note, expected_version=cx.seen.get(sid))
    except ChairsideError as error:
        # the reaction is stored; the form's token is kept, so saving again cannot record it twice
        ui.show_error(
            error, prefix="The delayed reaction was saved, but the call was not." if delayed else "Not saved."
        )
        return
    # both stored: a blank form, the message beside it
    form.save(
        lambda: _close(sid), "Call recorded" + (" with a delayed reaction." if delayed else "."), where=saved_flash(sid)
    )
