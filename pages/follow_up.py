"""Next-day follow-up: yesterday's discharges to call, and any delayed reaction they report.

UI only; the rules (what counts as a call, the onset window, the audit) live in
`infusion.services.aftercare`. Each call form carries the follow-up version the nurse
saw on the previous run, so two nurses calling the same patient get a clear
message instead of a silent double entry. The call form is in `ui/follow_up/`.

Call forms are drawn for the patients the nurse opened (the first still to call opens by itself) and
close when their call is saved or the nurse closes them (with something typed, only if she ticks
"Discard what is typed"): a form per row made a big clinic's page quadratic in Streamlit (each
widget walks the session state), and 537 discharges took 49 s to draw.
"""

from __future__ import annotations

import streamlit as st

from infusion.services import aftercare
from ui import common as ui
from ui.follow_up.call import FollowUp, call_button, call_form, opened_calls, saved_flash

db = ui.get_db()
nurse = ui.page_guard("follow_up")
clinic = ui.working_site(db, nurse)  # the site picked in the header: its day and zone
cx = FollowUp(db=db, nurse=nurse, tz=clinic.timezone, seen=st.session_state.setdefault("follow_up_seen", {}))

ui.show_flash()
st.header("Follow-up calls")
st.caption(
    "Yesterday's discharges. Infusion reactions can occur up to 24 h after an infusion: ask about fever, "
    "chills, rash, itching, headache, throat irritation, nausea and breathing."
)
weekend = st.toggle("Include the last 3 days (after a weekend or holiday)", key="fu_weekend")
frame = aftercare.follow_up_worklist(db, nurse, cx.today(), days=3 if weekend else 1)
counts = frame["outcome"].value_counts()
m = st.columns(3)
m[0].metric("To call", int(counts.get("pending", 0)))
m[1].metric("Reached", int(counts.get("reached", 0)))
m[2].metric("Not reached", int(counts.get("not_reached", 0)))
if frame.empty:
    st.info("No discharges to call.")
rows = frame.to_dict("records")
opened = opened_calls(
    [int(r["session_id"]) for r in rows], [int(r["session_id"]) for r in rows if r["outcome"] == "pending"]
)
for row in rows:
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
        ui.show_flash(saved_flash(sid))
        if sid in opened:
            call_form(cx, sid)
        else:
            call_button(sid)
    cx.seen[sid] = int(row["follow_up_version"])
