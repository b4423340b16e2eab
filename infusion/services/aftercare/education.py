"""Discharge education: what the patient was told before leaving, recorded as coded items."""

from __future__ import annotations

import logging

from db.engine import Database
from db.models import InfusionSession
from infusion.accounts.actor import Actor
from infusion.clinical.states import SessionStatus
from infusion.errors import (
    StateError,
    ValidationError,
)
from infusion.services.audit import record
from infusion.services.opening import (
    charting,
)

log = logging.getLogger(__name__)


#: code → what the patient was told (paraphrasing docs/clinical-basis.md §11 and §6 where it speaks; see module doc)
EDUCATION: dict[str, str] = {
    "rest": "Rest for the rest of the day.",
    "delayed_reactions": (
        "Reactions can start up to 24 hours after the infusion: fever, chills, rash, itching, "
        "flushing, headache, throat irritation, nausea or shortness of breath."
    ),
    "whom_to_call": (
        "Call the clinic for a fever or any new symptom. Call emergency services for trouble "
        "breathing, swelling of the face or throat, or fainting."
    ),
    "infection_before_next": "Tell the clinic about a fever or an infection before your next infusion: it may be delayed.",
    "next_appointment": "When your next infusion is due, and how to book it.",
}
EDUCATION_STATUSES = (SessionStatus.OBSERVATION, SessionStatus.DISCHARGED)


def record_education(
    db: Database, actor: Actor, session_id: int, items: list[str], *, expected_version: int | None = None
) -> InfusionSession:
    """Record the discharge education given; items already recorded stay (additive)."""
    opening = charting(db, actor, session_id, expected_version)
    unknown = [i for i in items if i not in EDUCATION]
    if unknown:
        raise ValidationError({"education": f"Unknown education item(s): {', '.join(unknown)}."})
    if not items:
        raise ValidationError({"education": "Tick the education given."})
    with opening as w:
        s, row = w.s, w.row
        if row.status not in EDUCATION_STATUSES:
            raise StateError("Discharge education is recorded during observation or after discharge.")
        before = {"education": list(row.education or [])}
        given = set(before["education"]) | set(items)
        row.education = [code for code in EDUCATION if code in given]  # vocabulary order
        if row.education != before["education"]:
            s.flush()
            record(
                s,
                actor,
                "record_education",
                "session",
                row.id,
                session_id=row.id,
                patient_id=row.patient_id,
                before=before,
                after={"education": row.education},
            )
            log.info("record_education session=%s items=%s by user=%s", row.id, ",".join(items), actor.user_id)
        return row
