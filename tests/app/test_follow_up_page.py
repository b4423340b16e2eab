"""AppTest: the Follow-up page lists yesterday's discharges, and recording "reached" with a
delayed reaction stores both the call and the reaction.

The page is run on its own (not through dashboard.py) until "follow_up" is in
dashboard.PAGES; the page key is added to PAGE_ROLES/PAGE_TITLES here if the
integration has not done it yet.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from db.models import FollowUp, Reaction
from infusion.accounts.actor import SYSTEM, Actor
from infusion.clock import from_local, utcnow
from infusion.services import aftercare, sessions
from infusion.services.setup import add_patient, add_staff, update_clinic
from tests.helpers import ROOT, form_key, new_session, walk

TZ = "America/New_York"


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch, db_url: str):
    monkeypatch.setenv("CHAIRSIDE_DATABASE_URL", db_url)

    def build(actor: Actor) -> AppTest:
        at = AppTest.from_file(str(ROOT / "pages" / "follow_up.py"), default_timeout=60)
        at.session_state["actor"] = actor
        at.run()
        assert not at.exception, at.exception
        return at

    return build


def _local_day(offset: int):
    return utcnow().astimezone(ZoneInfo(TZ)).date() + timedelta(days=offset)


def _discharged(db, nurse: Actor, family: str, day_offset: int, hhmm: str = "14:00") -> int:
    pid = add_patient(db, nurse, mrn=f"MRN-{family}", given_name="Pat", family_name=family).id
    sid = new_session(db, nurse, "natalizumab", patient_id=pid)
    at = from_local(datetime.combine(_local_day(day_offset), time.fromisoformat(hhmm)), TZ)
    walk(db, nurse, sid, "observation", t0=at - timedelta(hours=3))
    sessions.discharge(db, nurse, sid, expected_version=None, at=at)
    return sid


def _seed(db) -> tuple[Actor, dict[str, int]]:
    update_clinic(db, SYSTEM, name="Test clinic", timezone=TZ, temperature_unit="C", weight_unit="kg", phone="555-0100")
    user = add_staff(db, SYSTEM, "Nora Nurse")
    nurse = Actor(user.id, user.display_name, "nurse")
    sids = {
        "early": _discharged(db, nurse, "Yester", -1, "00:30"),
        "late": _discharged(db, nurse, "Evening", -1, "21:00"),
        "older": _discharged(db, nurse, "Older", -2, "14:00"),
    }
    return nurse, sids


def _texts(at) -> str:
    parts = [e.value for e in (*at.error, *at.warning, *at.success, *at.info)]
    parts += [m.value for m in at.markdown] + [c.value for c in at.caption]
    return "\n".join(str(p) for p in parts)


def test_the_list_shows_yesterdays_discharges(db, page):
    nurse, sids = _seed(db)
    at = page(nurse)
    text = _texts(at)
    assert "Yester, Pat" in text and "Evening, Pat" in text
    assert "Older, Pat" not in text
    assert [m.value for m in at.metric][:1] == ["2"]
    at.toggle(key="fu_weekend").set_value(True).run()
    assert "Older, Pat" in _texts(at)


def test_recording_reached_with_a_delayed_reaction_stores_both(db, page):
    nurse, sids = _seed(db)
    sid = sids["late"]
    at = page(nurse)
    at.button(key=f"fu_call_{sid}").click().run()  # the first to call (early) opened by itself: open this one too
    key = f"fu_{sid}"
    at.radio(key=form_key(at, key, "outcome")).set_value("reached")
    at.text_input(key=form_key(at, key, "note")).set_value("Fever overnight, settled with paracetamol")
    at.checkbox(key=form_key(at, key, "delayed")).check()
    at.multiselect(key=form_key(at, key, "symptoms")).set_value(["fever", "chills"])
    at.date_input(key=form_key(at, key, "onset_day")).set_value(_local_day(-1))
    at.time_input(key=form_key(at, key, "onset_time")).set_value(time(23, 15))
    at.radio(key=form_key(at, key, "grade")).set_value(1)
    at.multiselect(key=form_key(at, key, "actions")).set_value(["medication_given"])
    at.text_input(key=form_key(at, key, "med")).set_value("Paracetamol 1 g PO")
    [b for b in at.button if b.label == "Save call"][1].click().run()  # rows in discharge order: early, late
    assert not at.exception, at.exception
    assert "Call recorded with a delayed reaction." in _texts(at)
    with db.reading() as s:
        follow = s.scalars(select(FollowUp)).one()
        reaction = s.scalars(select(Reaction).where(Reaction.session_id == sid)).one()
    assert (follow.session_id, follow.outcome, follow.attempts, follow.called_by_id) == (
        sid,
        "reached",
        1,
        nurse.user_id,
    )
    assert reaction.delayed and reaction.symptoms == ["fever", "chills"] and reaction.grade == 1
    assert reaction.medication_given == "Paracetamol 1 g PO"
    assert reaction.onset_at == from_local(datetime.combine(_local_day(-1), time(23, 15)), TZ)
    assert "Reached" in _texts(at) and "1 delayed" in _texts(at)


def test_a_refused_reaction_saves_no_call(db, page):
    nurse, sids = _seed(db)
    sid = sids["early"]
    at = page(nurse)
    key = f"fu_{sid}"
    at.radio(key=form_key(at, key, "outcome")).set_value("reached")
    at.checkbox(key=form_key(at, key, "delayed")).check()  # but no symptoms, grade or onset
    [b for b in at.button if b.label == "Save call"][0].click().run()
    assert not at.exception
    assert "Not saved" in _texts(at)
    # what was typed is still there to complete
    assert at.radio(key=form_key(at, key, "outcome")).value == "reached"
    assert at.checkbox(key=form_key(at, key, "delayed")).value is True
    with db.reading() as s:
        assert s.scalars(select(FollowUp)).first() is None
        assert s.scalars(select(Reaction)).first() is None


def test_not_reached_is_recorded(db, page):
    nurse, sids = _seed(db)
    sid = sids["early"]
    at = page(nurse)
    at.radio(key=form_key(at, f"fu_{sid}", "outcome")).set_value("not_reached")
    [b for b in at.button if b.label == "Save call"][0].click().run()
    assert "Call recorded." in _texts(at)
    with db.reading() as s:
        assert s.scalars(select(FollowUp.outcome)).one() == "not_reached"


def test_managers_are_refused(db, page):
    _seed(db)
    at = page(Actor(None, "Mia Manager", "manager"))
    assert any("may not open" in e.value for e in at.error)


def test_one_call_form_is_open_the_first_still_to_call(db, page):
    """A form per row made a big clinic's page take 49 s (537 discharges: Streamlit walks the session state
    for every widget): one form is drawn, the first patient still to call; the others have a Call button."""
    nurse, sids = _seed(db)
    at = page(nurse)
    assert [b.label for b in at.button if b.label == "Save call"] == ["Save call"]
    assert f"fu_{sids['early']}__0__outcome" in [r.key for r in at.radio]
    assert [b.key for b in at.button if b.label == "📞 Call"] == [f"fu_call_{sids['late']}"]
    at.radio(key=form_key(at, f"fu_{sids['early']}", "outcome")).set_value("not_reached")
    [b for b in at.button if b.label == "Save call"][0].click().run()
    assert "Call recorded." in _texts(at)
    # its form closed; the next one still to call opened by itself
    assert [r.key for r in at.radio if r.key.endswith("outcome")] == [f"fu_{sids['late']}__0__outcome"]
    assert [b.key for b in at.button if b.label == "📞 Call"] == [f"fu_call_{sids['early']}"]


def test_opening_another_call_adds_a_form_and_a_saved_call_closes_its_own(db, page):
    """What is typed in a call form reaches the server only with its save, so a form stays on the page until
    its call is saved: opening another patient's call adds a form, it never replaces one (that the typed
    values stay is seen in the browser: tests/browser/test_follow_up_calls.py)."""
    nurse, sids = _seed(db)
    early, late = sids["early"], sids["late"]
    at = page(nurse)
    at.button(key=f"fu_call_{late}").click().run()
    assert [r.key for r in at.radio if r.key.endswith("outcome")] == [
        f"fu_{early}__0__outcome",
        f"fu_{late}__0__outcome",
    ]
    at.radio(key=form_key(at, f"fu_{late}", "outcome")).set_value("not_reached")
    [b for b in at.button if b.label == "Save call"][1].click().run()
    assert "Call recorded." in _texts(at)
    assert [b.key for b in at.button if b.label == "📞 Call"] == [f"fu_call_{late}"]
    assert [r.key for r in at.radio if r.key.endswith("outcome")] == [f"fu_{early}__0__outcome"]


def test_close_takes_a_form_off_only_when_nothing_is_typed_or_the_nurse_discards_it(db, page):
    """A form opened by mistake, or for a patient another nurse has called, is closed with its Close button:
    at once when blank; with something typed only with "Discard what is typed" ticked. A closed form does
    not open itself again; the next patient still to call does."""
    nurse, sids = _seed(db)
    early, late = f"fu_{sids['early']}", f"fu_{sids['late']}"
    at = page(nurse)
    at.radio(key=form_key(at, early, "outcome")).set_value("reached")
    at.button(key=form_key(at, early, "close")).click().run()
    assert any("Not closed: something is typed" in w.value for w in at.warning)
    assert at.radio(key=form_key(at, early, "outcome")).value == "reached"  # kept as typed
    at.checkbox(key=form_key(at, early, "discard")).check()
    at.button(key=form_key(at, early, "close")).click().run()
    assert not at.exception
    assert [r.key for r in at.radio if r.key.endswith("outcome")] == [f"{late}__0__outcome"]
    at.button(key=form_key(at, late, "close")).click().run()  # blank: closes at once
    assert [r.key for r in at.radio if r.key.endswith("outcome")] == []
    assert {b.key for b in at.button if b.label == "📞 Call"} == {f"fu_call_{sids['early']}", f"fu_call_{sids['late']}"}
    at.button(key=f"fu_call_{sids['early']}").click().run()  # opened again: blank, nothing was saved
    assert at.radio(key=form_key(at, early, "outcome")).value is None
    with db.reading() as s:
        assert s.scalars(select(FollowUp)).first() is None


def test_a_call_refused_after_its_reaction_was_stored_stays_open_and_saves_once_more(db, page):
    """Another nurse records a call while this one types: the delayed reaction is stored, the call is refused
    (the follow-up changed), the form stays open with what was typed, and the next Save stores the call and
    not a second reaction (the form's token)."""
    nurse, sids = _seed(db)
    sid = sids["early"]
    key = f"fu_{sid}"
    at = page(nurse)
    other = Actor(add_staff(db, SYSTEM, "Olga Other").id, "Olga Other", "nurse")
    aftercare.record_follow_up(db, other, sid, "not_reached", "No answer")
    at.radio(key=form_key(at, key, "outcome")).set_value("reached")
    at.checkbox(key=form_key(at, key, "delayed")).check()
    at.multiselect(key=form_key(at, key, "symptoms")).set_value(["rash"])
    at.date_input(key=form_key(at, key, "onset_day")).set_value(_local_day(-1))  # discharged at 00:30
    at.time_input(key=form_key(at, key, "onset_time")).set_value(time(12, 0))
    at.radio(key=form_key(at, key, "grade")).set_value(1)
    at.multiselect(key=form_key(at, key, "actions")).set_value(["observed"])
    at.button(key=form_key(at, key, "submit")).click().run()
    assert "The delayed reaction was saved, but the call was not." in _texts(at)
    assert at.radio(key=form_key(at, key, "outcome")).value == "reached"  # still open, as typed
    at.button(key=form_key(at, key, "submit")).click().run()
    assert "Call recorded with a delayed reaction." in _texts(at)
    with db.reading() as s:
        assert len(s.scalars(select(Reaction).where(Reaction.session_id == sid)).all()) == 1
        assert s.scalars(select(FollowUp.attempts)).one() == 2
