"""Session flags for the Chairside header: one small read per clinical rule.

`shorter_infusion_flag(db, actor, session_id)` returns the message to show when a shortened Ocrevus
infusion is given to a patient with a prior grade ≥ 3 reaction (OCREVUS USPI §2.3;
docs/clinical-basis.md §3; the rule is `infusion.clinical.ocrevus`), or None.
"""

from __future__ import annotations

from sqlalchemy import func, select

from db.engine import Database
from db.models import InfusionSession, RateChange, Reaction, Therapy
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import CLINICAL_READ, require_role
from infusion.clinical.catalog import rate_plan_for
from infusion.clinical.ocrevus import OCREVUS_IV, is_shortened
from infusion.clinical.ocrevus import shorter_infusion_flag as ocrevus_rule
from infusion.clinical.states import EntryStatus

S = InfusionSession


def shorter_infusion_flag(db: Database, actor: Actor, session_id: int) -> str | None:
    """The header message when this Ocrevus session is shortened and the patient had a grade ≥ 3
    reaction on an earlier Ocrevus infusion; None otherwise (other therapies, infusions 1–2, the
    standard infusion, no prior serious reaction, an unknown session).

    Shortened: an active rate above the standard plan's maximum (catalog rate plan for this infusion
    number), or IV start→stop under 3.5 h less 15 min without a reaction that stopped the infusion.
    Earlier infusions: the patient's other Ocrevus sessions scheduled before this one; active
    reaction entries only (a corrected or mistaken entry does not count)."""
    require_role(actor, CLINICAL_READ, "see the session's flags")
    with db.reading() as s:
        row = s.get(S, session_id)
        if row is None:
            return None
        therapy = s.get(Therapy, row.therapy_id)
        if therapy is None or therapy.code != OCREVUS_IV:
            return None
        prior = s.scalar(
            select(func.max(Reaction.grade))
            .join(S, S.id == Reaction.session_id)
            .where(
                S.patient_id == row.patient_id,
                S.therapy_id == row.therapy_id,
                S.id != row.id,
                S.scheduled_at < row.scheduled_at,
                Reaction.status == EntryStatus.ACTIVE,
            )
        )
        highest = s.scalar(
            select(func.max(RateChange.rate_ml_h)).where(
                RateChange.session_id == row.id, RateChange.status == EntryStatus.ACTIVE
            )
        )
        actions = s.scalars(
            select(Reaction.actions).where(Reaction.session_id == row.id, Reaction.status == EntryStatus.ACTIVE)
        ).all()
    plan = rate_plan_for(therapy.rate_plan or [], row.infusion_number) or {}
    minutes = None
    if row.iv_started_at is not None and row.iv_stopped_at is not None:
        minutes = (row.iv_stopped_at - row.iv_started_at).total_seconds() / 60
    shortened = is_shortened(
        highest_rate_ml_h=highest,
        standard_max_rate_ml_h=plan.get("max_ml_h"),
        infusion_minutes=minutes,
        stopped_early=any("stopped" in (a or []) for a in actions),
    )
    flag = ocrevus_rule(
        therapy_code=therapy.code, infusion_number=row.infusion_number, shortened=shortened, prior_worst_grade=prior
    )
    return flag.message if flag else None
