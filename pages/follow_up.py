"""Next-day follow-up: yesterday's discharges to call, and any delayed reaction they report.

UI only; the rules (what counts as a call, the onset window, the audit) live in
`infusion.services.aftercare`. Each call form carries the follow-up version the nurse
saw on the previous run, so two nurses calling the same patient get a clear
message instead of a silent double entry.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import streamlit as st

from infusion.clinical.reactions import CTCAE_IRR, SYMPTOMS
from infusion.clock import utcnow
from infusion.errors import ChairsideError, ConfirmationRequired
from infusion.services import aftercare, setup
from ui import common as ui

db = ui.get_db()
nurse = ui.page_guard("follow_up")
clinic = setup.get_clinic(db)
TZ = clinic.timezone
seen: dict[int, int] = st.session_state.setdefault("follow_up_seen", {})


def call_form(row: dict) -> None:
    sid = int(row["session_id"])
    key = f"fu_{sid}"
    with st.form(key):
        c = st.columns([1, 3])
        outcome = c[0].radio(
            "Call", ["reached", "not_reached"], format_func=aftercare.OUTCOMES.get, key=f"{key}_outcome", index=None
        )
        note = c[1].text_input("Note (how they are, advice given)", key=f"{key}_note")
        with st.expander("Delayed reaction reported?"):
            delayed = st.checkbox("The patient reports a reaction after going home", key=f"{key}_delayed")
            d = st.columns([2, 1, 1])
            symptoms = d[0].multiselect("Symptoms", list(SYMPTOMS), format_func=SYMPTOMS.get, key=f"{key}_symptoms")
            onset_day = d[1].date_input("Onset date", value=_today(), key=f"{key}_onset_day")
            onset_time = d[2].time_input("Onset time", value=None, key=f"{key}_onset_time", step=60)
            other = st.text_input("Other symptom (describe)", key=f"{key}_other")
            grade = st.radio(
                "CTCAE grade (infusion-related reaction, v5.0)",
                list(CTCAE_IRR),
                horizontal=True,
                index=None,
                key=f"{key}_grade",
                format_func=lambda g: ui.GRADE_CHIPS[g],
            )
            st.caption("  \n".join(f"**G{g}** {text}" for g, text in CTCAE_IRR.items()))
            e = st.columns([2, 2])
            actions = e[0].multiselect(
                "What was done",
                list(aftercare.DELAYED_ACTIONS),
                format_func=aftercare.DELAYED_ACTIONS.get,
                key=f"{key}_actions",
            )
            medication = e[1].text_input("Medication taken (drug, dose, route)", key=f"{key}_med")
            f = st.columns([1, 2])
            notified = f[0].checkbox("Provider notified", key=f"{key}_notified")
            provider = f[1].text_input("Provider name", key=f"{key}_provider")
            confirm = st.checkbox("Onset more than 24 h after discharge: record it anyway", key=f"{key}_confirm")
        if st.form_submit_button("Save call", type="primary"):
            save(
                sid,
                key,
                outcome,
                note,
                delayed=delayed,
                symptoms=symptoms,
                grade=grade,
                actions=actions,
                onset=ui.clinic_time(onset_time, TZ, onset_day) if onset_time else None,
                other=other,
                medication=medication,
                notified=notified,
                provider=provider,
                confirm=confirm,
            )


def save(sid: int, key: str, outcome: str | None, note: str, *, delayed: bool, **reaction) -> None:  # type: ignore[no-untyped-def]
    """The reaction first (so a refused reaction saves nothing), then the call."""
    if outcome is None:
        st.error("Not saved. Choose reached or not reached.", icon="🚫")
        return
    if delayed and outcome != "reached":
        st.error("Not saved. A delayed reaction is recorded when the patient was reached.", icon="🚫")
        return
    try:
        if delayed:
            aftercare.record_delayed_reaction(
                db,
                nurse,
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
                client_token=ui.token(key),
            )
    except ConfirmationRequired as error:
        st.warning("Not saved. " + " ".join(error.flags) + " Tick the box to record it anyway.", icon="⚠️")
        return
    except ChairsideError as error:
        ui.show_error(error)
        return
    try:
        aftercare.record_follow_up(db, nurse, sid, outcome, note, expected_version=seen.get(sid))
    except ChairsideError as error:
        # the reaction is stored (its form token is kept, so saving again cannot record it twice)
        prefix = "The delayed reaction was saved, but the call was not." if delayed else "Not saved."
        ui.show_error(error, prefix=prefix)
        return
    ui.spend_token(key)
    ui.flash("Call recorded" + (" with a delayed reaction." if delayed else "."))
    st.rerun()


def _today() -> date:
    return utcnow().astimezone(ZoneInfo(TZ)).date()


# ---------------------------------------------------------------- layout
ui.show_flash()
st.header("Follow-up calls")
st.caption(
    "Yesterday's discharges. Infusion reactions can occur up to 24 h after an infusion: ask about fever, "
    "chills, rash, itching, headache, throat irritation, nausea and breathing."
)
weekend = st.toggle("Include the last 3 days (after a weekend or holiday)", key="fu_weekend")
frame = aftercare.follow_up_worklist(db, nurse, _today(), days=3 if weekend else 1)
counts = frame["outcome"].value_counts()
m = st.columns(3)
m[0].metric("To call", int(counts.get("pending", 0)))
m[1].metric("Reached", int(counts.get("reached", 0)))
m[2].metric("Not reached", int(counts.get("not_reached", 0)))
if frame.empty:
    st.info("No discharges to call.")
for row in frame.to_dict("records"):
    sid = int(row["session_id"])
    with st.container(border=True):
        grade = row["worst_grade"]
        badge = f" · reaction {ui.GRADE_CHIPS[int(grade)]}" if row["reaction_count"] else ""
        delayed_badge = f" · {row['delayed_reactions']} delayed" if row["delayed_reactions"] else ""
        st.markdown(
            f"**{row['patient']}** · {row['mrn']} · 📞 {row['phone'] or 'no phone on file'}  \n"
            f"{row['therapy']} #{row['infusion_number']} · discharged {row['discharged']}{badge}{delayed_badge}  \n"
            f"**{row['outcome_label']}**" + (f" · {row['attempts']} call(s)" if row["attempts"] else "")
        )
        if row["note"]:
            st.caption(row["note"].replace("\n", "  \n"))
        call_form(row)
    seen[sid] = int(row["follow_up_version"])
