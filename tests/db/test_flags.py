"""The Chairside header's Ocrevus shorter-infusion flag (OCREVUS USPI §2.3; docs/clinical-basis.md §3)."""

from __future__ import annotations

from datetime import timedelta

from db.engine import Database
from db.models import InfusionSession, RateChange, Reaction
from infusion.accounts.actor import Actor
from infusion.reads.flags import shorter_infusion_flag
from tests.helpers import ADMIN, ago, new_chair, new_patient, therapy_id

NURSE = Actor(None, "Test Nurse", "nurse")


def _ocrevus_history(db: Database, prior_grade: int | None, top_rate: float) -> int:
    """A patient's Ocrevus infusion 3 (with a reaction of `prior_grade`) and infusion 4 running at `top_rate`."""
    patient, chair = new_patient(db, ADMIN), new_chair(db, ADMIN)
    tid = therapy_id(db, "ocrelizumab_iv")
    earlier, now = ago(60 * 24 * 180), ago(90)
    with db.writing() as s:
        first = InfusionSession(
            patient_id=patient,
            therapy_id=tid,
            chair_id=chair,
            infusion_number=3,
            dose=600,
            scheduled_at=earlier,
            created_at=earlier,
        )
        current = InfusionSession(
            patient_id=patient,
            therapy_id=tid,
            chair_id=chair,
            infusion_number=4,
            dose=600,
            scheduled_at=now,
            created_at=now,
        )
        s.add_all([first, current])
        s.flush()
        if prior_grade is not None:
            s.add(
                Reaction(
                    session_id=first.id,
                    onset_at=earlier + timedelta(minutes=40),
                    entered_at=earlier,
                    grade=prior_grade,
                    symptoms=["hypotension"],
                    actions=["stopped"],
                )
            )
        s.add_all(
            [
                RateChange(session_id=current.id, at=now, entered_at=now, kind="start", rate_ml_h=100),
                RateChange(
                    session_id=current.id,
                    at=now + timedelta(minutes=30),
                    entered_at=now,
                    kind="change",
                    rate_ml_h=top_rate,
                ),
            ]
        )
        return current.id


def test_a_shortened_ocrevus_infusion_after_a_grade_3_reaction_is_flagged(db: Database) -> None:
    session_id = _ocrevus_history(db, prior_grade=3, top_rate=300)
    message = shorter_infusion_flag(db, NURSE, session_id)
    assert message is not None and "prior grade 3" in message and "about 3.5 h" in message


def test_no_flag_without_a_prior_serious_reaction_or_on_the_standard_infusion(db: Database) -> None:
    assert shorter_infusion_flag(db, NURSE, _ocrevus_history(db, prior_grade=None, top_rate=300)) is None
    assert shorter_infusion_flag(db, NURSE, _ocrevus_history(db, prior_grade=2, top_rate=300)) is None
    assert shorter_infusion_flag(db, NURSE, _ocrevus_history(db, prior_grade=3, top_rate=200)) is None
