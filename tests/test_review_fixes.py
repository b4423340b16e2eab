"""Regressions for defects found in review: each test is what a nurse or an auditor would notice."""
from __future__ import annotations

import pytest

from infusion import corrections, entries, setup, views
from infusion.audit import Actor
from infusion.errors import PermissionDenied, StateError, ValidationError
from tests.helpers import ADMIN, ago, new_session, row, walk


def _staff(db, name: str, role: str = "nurse") -> Actor:
    user = setup.add_staff(db, ADMIN, name, role)
    return Actor(user.id, user.display_name, role)


def test_opening_a_session_does_not_make_a_nurse_its_author(db):
    author, other = _staff(db, "Ann Author"), _staff(db, "Bea Other")
    sid = new_session(db, author, "methylprednisolone")
    walk(db, author, sid, "infusing", t0=ago(90))
    views.session_detail(db, other, sid)  # only looked at it
    with pytest.raises(PermissionDenied):
        corrections.correct_session_time(db, other, sid, "iv_started_at", ago(80), reason="typo",
                                         expected_version=row(db, sid).version)


def test_resolving_a_superseded_reaction_is_refused_and_the_current_one_stays_open(db):
    nurse, charge = _staff(db, "Ann Author"), _staff(db, "Cat Charge", "charge_nurse")
    sid = new_session(db, nurse, "methylprednisolone")
    walk(db, nurse, sid, "infusing", t0=ago(90))
    old = entries.record_reaction(db, nurse, sid, symptoms=["rash"], grade=1, actions=["observed"], onset_at=ago(30))
    corrections.correct_reaction(db, charge, old.id, reason="grade 2", symptoms=["rash"], grade=2,
                                 actions=["observed"], onset_at=ago(30))
    with pytest.raises(StateError):
        entries.resolve_reaction(db, nurse, old.id)
    detail = views.session_detail(db, nurse, sid)
    assert [r.grade for r in detail.open_reactions] == [2]


def test_a_rate_change_marked_in_error_restores_the_current_rate(db):
    nurse = _staff(db, "Ann Author")
    sid = new_session(db, nurse, "methylprednisolone")
    walk(db, nurse, sid, "infusing", t0=ago(90))
    start_rate = row(db, sid).current_rate_ml_h
    change = entries.change_rate(db, nurse, sid, start_rate + 50, at=ago(10))
    assert row(db, sid).current_rate_ml_h == start_rate + 50
    corrections.mark_entered_in_error(db, nurse, "rate_change", change.id, "wrong pump")
    assert row(db, sid).current_rate_ml_h == start_rate


def test_a_pause_cannot_be_marked_in_error_behind_the_session_state(db):
    nurse = _staff(db, "Ann Author")
    sid = new_session(db, nurse, "methylprednisolone")
    walk(db, nurse, sid, "infusing", t0=ago(90))
    paused = entries.pause(db, nurse, sid, at=ago(5))
    with pytest.raises(StateError):
        corrections.mark_entered_in_error(db, nurse, "rate_change", paused.id, "oops")
    assert row(db, sid).status == "paused"


@pytest.mark.parametrize("changes", [
    {"duration_windows": [{"from": 1, "to": "3", "min_minutes": 60}]},
    {"vitals_schedule": []},
    {"vitals_schedule": {"after_start_minutes": "15", "every_minutes": 60}},
])
def test_malformed_catalog_edits_are_refused_and_chairside_keeps_working(db, changes):
    nurse = _staff(db, "Ann Author")
    therapy = next(t for t in setup.list_therapies(db) if t.code == "methylprednisolone")
    with pytest.raises(ValidationError):
        setup.update_therapy(db, ADMIN, therapy.id, changes, expected_version=therapy.version)
    sid = new_session(db, nurse, "methylprednisolone")
    assert any(card.id == sid for card in views.today_sessions(db, nurse))


def test_a_refused_walk_in_stores_no_new_patient(db):
    from sqlalchemy import func, select

    from db.models import Patient
    from infusion import sessions

    nurse = _staff(db, "Ann Author")
    chair = setup.add_chair(db, ADMIN, "Chair W")
    therapy = next(t for t in setup.list_therapies(db) if t.code == "natalizumab")
    new = {"mrn": "MRN-W1", "given_name": "Wendy", "family_name": "Walk"}
    with pytest.raises(ValidationError):
        sessions.create_walk_in(db, nurse, therapy_id=therapy.id, chair_id=chair.id, dose=-1, new_patient=new)
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Patient).where(Patient.mrn == "MRN-W1")) == 0
    made = sessions.create_walk_in(db, nurse, therapy_id=therapy.id, chair_id=chair.id, new_patient=new)
    assert made.status == "scheduled" and made.dose == 300
