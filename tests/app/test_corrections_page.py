"""AppTest: correcting the record from the Chairside page (issue 5, docs/clinical-basis.md §12).

A nurse opens a session, opens "✏️ Correct the record / addendum", corrects a set of
vitals or marks a reaction entered in error; after discharge only the addendum is
offered, and it shows under "Corrections and addenda".
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from db.models import Addendum, Reaction, VitalSign
from infusion.accounts.actor import Actor
from infusion.services import entries, setup
from tests.helpers import ADMIN, ago, form_key, new_session, normal_vitals, walk


def _nurse(db) -> Actor:
    user = setup.add_staff(db, ADMIN, "Nora Nurse", "nurse")
    return Actor(user.id, user.display_name, user.role)


def _texts(at) -> str:
    parts = [e.value for e in (*at.error, *at.warning, *at.success, *at.info)]
    parts += [m.value for m in at.markdown] + [c.value for c in at.caption]
    return "\n".join(str(p) for p in parts)


def _click(at, label: str):
    button = next(b for b in at.button if b.label == label)
    button.click().run()
    assert not at.exception, at.exception
    return at


def _open(make_app, actor: Actor, sid: int):
    at = make_app()
    at.session_state["actor"] = actor
    at.run()
    assert not at.exception, at.exception
    at.button(key=f"open_{sid}").click().run()
    assert not at.exception, at.exception
    return at


def _frames(at) -> list:
    return [d.value for d in at.dataframe]


def _vitals_frame(at):
    return next(f for f in _frames(at) if "Pulse" in f.columns and "Status" in f.columns)


def _amend_expander(at):
    return next(e for e in at.expander if "Correct the record" in e.label)


def _infusing_with_vitals(db, actor: Actor) -> tuple[int, int]:
    t0 = ago(120).replace(second=0, microsecond=0)
    sid = new_session(db, actor, "ocrelizumab_iv")
    walk(db, actor, sid, "infusing", t0=t0)
    vital = entries.record_vitals(db, actor, sid, normal_vitals(pulse=80), taken_at=t0 + timedelta(minutes=40))
    return sid, vital.id


def test_nurse_corrects_a_pulse_and_the_table_keeps_the_original(db, make_app):
    actor = _nurse(db)
    sid, vital_id = _infusing_with_vitals(db, actor)
    at = _open(make_app, actor, sid)
    expander = _amend_expander(at)

    pick = expander.selectbox(key=f"amend_pick_{sid}")
    pick.set_value(f"vital_sign:{vital_id}").run()
    assert not at.exception, at.exception
    assert _amend_expander(at).radio(key=f"amend_mode_{sid}").value == "Correct values"
    form = f"fix_vital_sign_{vital_id}"
    assert at.number_input(key=form_key(at, form, "pulse")).value == 80  # pre-filled with the stored set
    at.number_input(key=form_key(at, form, "pulse")).set_value(88)
    at.text_input(key=form_key(at, form, "reason")).set_value("typo: 88 not 80")
    _click(at, "Save correction")

    assert "Correction saved" in _texts(at)
    frame = _vitals_frame(at)
    assert list(frame.loc[frame["Pulse"] == 80, "Status"]) == ["corrected"]
    assert list(frame.loc[frame["Pulse"] == 88, "Status"]) == ["active"]
    assert any("Corrections and addenda" in e.label for e in at.expander)  # the history is there on demand
    with db.reading() as s:
        old = s.get(VitalSign, vital_id)
        new = s.scalars(select(VitalSign).where(VitalSign.replaces_id == vital_id)).one()
    assert (old.status, old.pulse) == ("corrected", 80)
    assert (new.status, new.pulse, new.correction_reason, new.entered_by_id) == (
        "active",
        88,
        "typo: 88 not 80",
        actor.user_id,
    )


def test_a_correction_without_a_reason_is_not_saved(db, make_app):
    actor = _nurse(db)
    sid, vital_id = _infusing_with_vitals(db, actor)
    at = _open(make_app, actor, sid)
    _amend_expander(at).selectbox(key=f"amend_pick_{sid}").set_value(f"vital_sign:{vital_id}").run()
    at.number_input(key=form_key(at, f"fix_vital_sign_{vital_id}", "pulse")).set_value(88)
    _click(at, "Save correction")
    assert "Not saved" in _texts(at) and "Say why the entry is corrected" in _texts(at)
    with db.reading() as s:
        assert s.get(VitalSign, vital_id).status == "active"
        assert s.scalars(select(VitalSign).where(VitalSign.replaces_id == vital_id)).first() is None


def _mark_reaction_in_error(db, make_app):
    actor = _nurse(db)
    sid, _ = _infusing_with_vitals(db, actor)
    reaction = entries.record_reaction(
        db, actor, sid, symptoms=["fever"], grade=2, actions=["paused"], onset_at=ago(30)
    )
    at = _open(make_app, actor, sid)
    assert "Open reaction" in _texts(at) and "Reaction open (1)" in _texts(at)

    choice = f"reaction:{reaction.id}"
    _amend_expander(at).selectbox(key=f"amend_pick_{sid}").set_value(choice).run()
    _amend_expander(at).radio(key=f"amend_mode_{sid}").set_value("Entered in error").run()
    at.text_input(key=form_key(at, f"eie_{choice}", "reason")).set_value("charted on the wrong patient")
    _click(at, "Mark entered in error")
    return at, reaction


def test_reaction_marked_entered_in_error_leaves_the_open_reactions(db, make_app):
    at, reaction = _mark_reaction_in_error(db, make_app)
    with db.reading() as s:
        stored = s.get(Reaction, reaction.id)
    assert (stored.status, stored.correction_reason) == ("entered_in_error", "charted on the wrong patient")
    at.run()  # the next look at the page
    assert not at.exception, at.exception
    shown = _texts(at)
    assert "Open reaction" not in shown and "Reaction open" not in shown
    frame = next(f for f in _frames(at) if "Grade" in f.columns)
    assert list(frame["Status"]) == ["entered in error"]


def test_reaction_marked_entered_in_error_clears_the_alert_at_once(db, make_app):
    at, _ = _mark_reaction_in_error(db, make_app)
    shown = _texts(at)
    assert "Marked entered in error" in shown
    assert "Open reaction" not in shown and "Reaction open" not in shown
    frame = next(f for f in _frames(at) if "Grade" in f.columns)
    assert list(frame["Status"]) == ["entered in error"]


def test_a_discharged_session_offers_only_the_addendum(db, make_app):
    actor = _nurse(db)
    sid = new_session(db, actor, "ocrelizumab_iv")
    walk(db, actor, sid, "discharged", t0=ago(300))
    at = _open(make_app, actor, sid)

    labels = {b.label for b in at.button}
    assert "Add addendum" in labels
    assert not {"Save correction", "Mark entered in error", "Correct time"} & labels
    keys = {w.key for w in (*at.selectbox, *at.radio)}
    assert f"amend_pick_{sid}" not in keys and f"fix_field_{sid}" not in keys and f"amend_mode_{sid}" not in keys
    assert "only way to amend a discharged session" in _texts(at)

    at.text_area(key=form_key(at, f"addendum_{sid}", "text")).set_value("Patient phoned: mild headache in the evening.")
    _click(at, "Add addendum")
    assert "Addendum added" in _texts(at)
    history = next(e for e in at.expander if "Corrections and addenda" in e.label)
    assert "Patient phoned: mild headache in the evening." in "\n".join(m.value for m in history.markdown)
    assert "Nora Nurse" in "\n".join(m.value for m in history.markdown)
    with db.reading() as s:
        (note,) = s.scalars(select(Addendum).where(Addendum.session_id == sid))
    assert note.author_id == actor.user_id


def test_after_an_entry_is_marked_in_error_nothing_is_picked_and_no_correction_opens(db, make_app):
    """The picker starts empty and goes back to empty: the entry marked in error leaves the list, and a picker
    on its first option opened the check-in vitals' correction, filled in, for nobody's asking."""
    at, _ = _mark_reaction_in_error(db, make_app)
    sid = int(next(k for k in (s.key for s in at.selectbox) if k and k.startswith("amend_pick_")).split("_")[-1])
    pick = _amend_expander(at).selectbox(key=f"amend_pick_{sid}")
    assert pick.value is None
    assert not [f for f in (n.key for n in at.number_input) if f and "fix_vital_sign_" in f], "no correction form"


def test_only_rate_changes_are_offered_among_rate_entries(db, make_app):
    """A pause or resume changes the session's state and the service refuses to mark it in error, so the
    picker does not offer it."""
    actor = _nurse(db)
    sid, _ = _infusing_with_vitals(db, actor)
    change = entries.change_rate(db, actor, sid, 60, at=ago(30))
    pause = entries.pause(db, actor, sid, at=ago(20))
    resume = entries.resume(db, actor, sid, 60, at=ago(10))
    at = _open(make_app, actor, sid)
    options = _amend_expander(at).selectbox(key=f"amend_pick_{sid}").options
    labels = " | ".join(options)
    assert len([o for o in options if o.startswith("Rate")]) == 1, labels
    assert ": change 60" in labels and ": pause" not in labels and ": resume" not in labels
    assert pause.id != resume.id != change.id
