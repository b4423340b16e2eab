"""The Due page's "Ended courses": the courses marked ended (`infusion.services.courses`) at the site the
person works in, in force (not resumed, and no infusion given since: a patient treated again is back on
the due list), with who ended them, when and why, and the pair's last infusion."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import or_, select

from db.engine import Database
from db.models import CourseEnd, DuePair, Patient, Therapy
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import require_role
from infusion.accounts.sites import working_context
from infusion.clinical.course_end import REASONS
from infusion.reads.due import DUE_READ

ENDED_COLUMNS = [
    "course_end_id",
    "patient_id",
    "therapy_id",
    "patient",
    "mrn",
    "therapy",
    "reason",
    "note",
    "ended_at",
    "ended_by",
    "last_infusion",
]


def ended_courses(db: Database, actor: Actor) -> pd.DataFrame:
    """The courses ended and not resumed that were filed under the actor's working site or whose pair is
    listed there (its last infusion was given there), most recently ended first; `reason` is the label."""
    require_role(actor, DUE_READ, "see the due list")
    with db.reading() as s:
        site = working_context(s, actor)[0]
        rows = s.execute(
            select(
                CourseEnd.id,
                CourseEnd.patient_id,
                CourseEnd.therapy_id,
                Patient.family_name,
                Patient.given_name,
                Patient.mrn,
                Therapy.name,
                Therapy.brand,
                CourseEnd.reason,
                CourseEnd.note,
                CourseEnd.ended_at,
                CourseEnd.ended_by_name,
                DuePair.last_day,
            )
            .join(Patient, Patient.id == CourseEnd.patient_id)
            .join(Therapy, Therapy.id == CourseEnd.therapy_id)
            .outerjoin(
                DuePair,
                (DuePair.patient_id == CourseEnd.patient_id) & (DuePair.therapy_id == CourseEnd.therapy_id),
            )
            .where(
                CourseEnd.resumed_at.is_(None),
                or_(CourseEnd.site_id == site.id, DuePair.site_id == site.id),
                # in force: booked only, or no infusion given since (`due_summary.in_force`)
                or_(DuePair.patient_id.is_(None), DuePair.ended.is_(True)),
            )
            .order_by(CourseEnd.ended_at.desc(), CourseEnd.id.desc())
        ).all()
    return pd.DataFrame.from_records(
        [
            {
                "course_end_id": cid,
                "patient_id": pid,
                "therapy_id": tid,
                "patient": f"{family}, {given}",
                "mrn": mrn,
                "therapy": brand or name,
                "reason": REASONS.get(reason, reason),
                "note": note or "",
                "ended_at": ended_at,
                "ended_by": ended_by,
                "last_infusion": last_day,
            }
            for cid, pid, tid, family, given, mrn, name, brand, reason, note, ended_at, ended_by, last_day in rows
        ],
        columns=ENDED_COLUMNS,
    )
