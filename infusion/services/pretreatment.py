"""Pre-treatment checks at check-in (issue 6): a per-therapy checklist answered before *proceed*.

Why a checklist and not free text: an unchecked required item must block
*proceed* with a message naming it (issue 6), and every answer must stay with
the session. Answers are append-only rows (`pretreatment_answer`): answering an
item again adds a row and the latest one counts, so the record shows what was
answered first and who changed it.

Where the items come from (docs/clinical-basis.md §7):
- "No signs of active infection" for every therapy: active infection → delay
  the dose (Ocrevus USPI §2.2, Briumvi USPI §2.2); fever ≥ 38.0 °C is the
  clinic's threshold (`AlertThresholds.temperature_c_high`).
- "Allergies reviewed" for every therapy: issue 6 (a product choice).
- Labs: issue 6 names a JC virus antibody test for Tysabri and CBC and kidney
  function for Lemtrada. The labels give no window here, so the window is the
  clinic's and the label says so.
- Program authorisation: TOUCH (confirm "Authorized" before every infusion) and
  the Lemtrada REMS (verify authorization before infusing). Any
  therapy with a `program` gets this item, so a clinic-added program therapy
  is covered too. Answering it "yes" also records the session's ProgramCheck
  (the confirmation `start_iv` already requires), so the nurse confirms once.

A clinic that sets `therapy.pretreatment_checks` replaces these defaults for
that therapy entirely.

What was measured outranks what was ticked: a temperature at or above the
clinic's fever threshold recorded in the session (active vitals, from check-in
on) blocks proceed even when "no active infection" is answered yes. Passing
anyway needs `override_reason`, recorded as its own audit event
(`pretreatment_override`) in proceed's transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.engine import Database
from db.models import InfusionSession, PretreatmentAnswer, ProgramCheck, Therapy, VitalSign
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import CLINICAL_READ, require_role
from infusion.accounts.sites import site_of_session
from infusion.clinical.states import EntryStatus, SessionStatus
from infusion.clock import utcnow
from infusion.errors import NotFoundError, StateError, ValidationError
from infusion.services.audit import record, snapshot
from infusion.services.opening import charting, clinic_context, clinical_time, therapy_of
from infusion.services.sessions import proceed

log = logging.getLogger(__name__)

MAX_NOTE = 500  # product choice: a note is a short remark, not a narrative


@dataclass(frozen=True)
class Check:
    """One checklist item. `required` items must be answered yes before proceed."""

    code: str
    label: str
    required: bool = True

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "label": self.label, "required": self.required}


PROGRAM_CODE = "program_authorised"

COMMON_CHECKS = (
    Check("no_active_infection", "No signs of active infection (no fever ≥ 38.0 °C / 100.4 °F, not on antibiotics)"),
    Check("allergies_reviewed", "Allergies reviewed"),
)
#: therapy code → extra items (issue 6 names these labs; the window is the clinic's)
THERAPY_CHECKS: dict[str, tuple[Check, ...]] = {
    "natalizumab": (Check("jcv_test", "JC virus antibody test result within the clinic's window"),),
    "alemtuzumab": (
        Check("cbc", "Complete blood count (CBC) within the clinic's window"),
        Check("kidney_function", "Kidney function (serum creatinine, urinalysis) within the clinic's window"),
    ),
}


def _program_check(program: str) -> Check:
    return Check(PROGRAM_CODE, f"{program}: patient authorized and the program's pre-infusion checklist complete")


def default_checklist(therapy: Therapy) -> list[Check]:
    """The seed checklist for a therapy: common items, its labs, then its program."""
    checks = [*COMMON_CHECKS, *THERAPY_CHECKS.get(therapy.code, ())]
    if therapy.program:
        checks.append(_program_check(therapy.program))
    return checks


def checklist_for(therapy: Therapy) -> list[Check]:
    """The clinic's checklist for this therapy if it set one, else the defaults."""
    configured = therapy.pretreatment_checks or []
    if not configured:
        return default_checklist(therapy)
    return [Check(str(c["code"]), str(c["label"]), bool(c.get("required", True))) for c in configured]


def validate_checklist(raw: object) -> list[dict[str, object]]:
    """A clinic-edited checklist as stored JSON, or ValidationError (for the catalog editor).

    An empty list means "use the defaults"; codes must be unique so answers can be matched.
    """
    if not isinstance(raw, list):
        raise ValidationError({"pretreatment_checks": "The checklist must be a list of items."})
    out: list[dict[str, object]] = []
    seen: set[str] = set()
    for item in raw:
        code = str(item.get("code", "")).strip() if isinstance(item, dict) else ""
        label = str(item.get("label", "")).strip() if isinstance(item, dict) else ""
        if not code or not label or len(code) > 40:
            raise ValidationError({"pretreatment_checks": "Each item needs a code (≤ 40 characters) and a label."})
        if code in seen:
            raise ValidationError({"pretreatment_checks": f"The code {code!r} is used twice."})
        seen.add(code)
        assert isinstance(item, dict)  # a non-dict item has no code and was refused above
        out.append(Check(code, label, bool(item.get("required", True))).as_dict())
    return out


def _latest(s: Session, session_id: int) -> dict[str, PretreatmentAnswer]:
    # The last answer *entered* wins (id order), whatever time it was backdated to.
    rows = s.scalars(
        select(PretreatmentAnswer).where(PretreatmentAnswer.session_id == session_id).order_by(PretreatmentAnswer.id)
    )
    return {r.code: r for r in rows}


def latest_answers(db: Database, actor: Actor, session_id: int) -> dict[str, PretreatmentAnswer]:
    """The answer that counts for each item (for pre-filling the form)."""
    require_role(actor, CLINICAL_READ, "open a patient's session")
    with db.reading() as s:
        return _latest(s, session_id)


def answer_history(db: Database, actor: Actor, session_id: int) -> list[PretreatmentAnswer]:
    """Every answer ever given for the session, in the order entered."""
    require_role(actor, CLINICAL_READ, "open a patient's session")
    with db.reading() as s:
        return list(
            s.scalars(
                select(PretreatmentAnswer)
                .where(PretreatmentAnswer.session_id == session_id)
                .order_by(PretreatmentAnswer.id)
            )
        )


def record_pretreatment(
    db: Database,
    actor: Actor,
    session_id: int,
    answers: dict[str, bool],
    notes: dict[str, str] | None = None,
    *,
    at: datetime | None = None,
) -> list[PretreatmentAnswer]:
    """Store the nurse's answers (checked-in sessions only); each becomes a new row, audited.

    Items left out of `answers` keep their earlier answer (a nurse may save part
    of the list). A note needs an answer to belong to.
    """
    opening = charting(db, actor, session_id)
    notes = {k: (v or "").strip() for k, v in (notes or {}).items() if (v or "").strip()}
    if not answers:
        raise ValidationError({"answers": "Answer at least one pre-treatment check."})
    with opening as w:
        s, row = w.s, w.row
        if row.status != SessionStatus.CHECKED_IN:
            raise StateError("Pre-treatment checks are answered after check-in and before proceed.")
        therapy = therapy_of(s, row)
        by_code = {c.code: c for c in checklist_for(therapy)}
        problems: dict[str, str] = {}
        unknown = [c for c in answers if c not in by_code]
        if unknown:
            problems["answers"] = f"Not on the {therapy.brand or therapy.name} checklist: {', '.join(unknown)}."
        stray = [c for c in notes if c not in answers]
        if stray:
            problems["notes"] = (
                "A note was written for an item without an answer: "
                + ", ".join(by_code[c].label if c in by_code else c for c in stray)
                + "."
            )
        for code, value in answers.items():
            if not isinstance(value, bool):
                problems[f"answer.{code}"] = f"Answer yes or no for: {by_code.get(code, Check(code, code)).label}."
        long = [c for c, n in notes.items() if len(n) > MAX_NOTE]
        if long:
            problems["notes"] = f"Keep each note under {MAX_NOTE} characters."
        if problems:
            raise ValidationError(problems)
        now = utcnow()
        moment = clinical_time(
            at,
            field="answered_at",
            label="Check time",
            settings=w.settings,
            tz=w.tz,
            not_before=[(row.checked_in_at, "check-in")],
            now=now,
        )
        stored: list[PretreatmentAnswer] = []
        for code, value in answers.items():
            check = by_code[code]
            answer = PretreatmentAnswer(
                session_id=row.id,
                code=code,
                label=check.label,
                required=check.required,
                answer=value,
                note=notes.get(code),
                answered_at=moment,
                answered_by_id=actor.user_id,
            )
            s.add(answer)
            stored.append(answer)
        s.flush()
        for answer in stored:
            record(
                s,
                actor,
                "record_pretreatment",
                "pretreatment_answer",
                answer.id,
                session_id=row.id,
                patient_id=row.patient_id,
                after=snapshot(answer),
            )
        program_yes = answers.get(PROGRAM_CODE) is True and therapy.program
        if (
            program_yes
            and s.scalars(
                select(ProgramCheck).where(ProgramCheck.session_id == row.id, ProgramCheck.program == therapy.program)
            ).first()
            is None
        ):
            check_row = ProgramCheck(
                session_id=row.id,
                program=therapy.program,
                authorization_ref=notes.get(PROGRAM_CODE),
                confirmed_at=now,
                confirmed_by_id=actor.user_id,
            )
            s.add(check_row)
            s.flush()
            record(
                s,
                actor,
                "confirm_program",
                "program_check",
                check_row.id,
                session_id=row.id,
                patient_id=row.patient_id,
                after=snapshot(check_row),
                reason="pre-treatment checklist",
            )
        log.info("record_pretreatment session=%s items=%s by user=%s", row.id, ",".join(sorted(answers)), actor.user_id)
        return stored


def _blockers(s: Session, row: InfusionSession) -> list[Check]:
    latest = _latest(s, row.id)
    return [
        c for c in checklist_for(therapy_of(s, row)) if c.required and not (c.code in latest and latest[c.code].answer)
    ]


INFECTION_CODE = "no_active_infection"


def measured_fever(s: Session, row: InfusionSession) -> float | None:
    """The highest temperature (°C) at or above the clinic's fever threshold recorded in this session
    (active entries only), or None."""
    _, settings = clinic_context(s, site_of_session(s, row))
    threshold = settings.thresholds.temperature_c_high
    highest = s.scalar(
        select(VitalSign.temperature_c)
        .where(
            VitalSign.session_id == row.id,
            VitalSign.status == EntryStatus.ACTIVE,
            VitalSign.temperature_c >= threshold,
        )
        .order_by(VitalSign.temperature_c.desc())
        .limit(1)
    )
    return float(highest) if highest is not None else None


def _fever_message(fever: float, s: Session, row: InfusionSession) -> str:
    _, settings = clinic_context(s, site_of_session(s, row))
    return (
        f"Temperature {fever:.1f} °C was measured in this session (fever threshold "
        f"{settings.thresholds.temperature_c_high:.1f} °C): signs of active infection. Defer the session, "
        "or give the reason to proceed anyway."
    )


def pretreatment_blockers(db: Database, session_id: int) -> list[str]:
    """Labels of required items whose latest answer is not yes (never answered counts as not yes), then
    a measured fever, which no tick can clear (an override reason can)."""
    with db.reading() as s:
        row = s.get(InfusionSession, session_id)
        if row is None:
            raise NotFoundError(f"Session {session_id} not found.")
        blockers = [c.label for c in _blockers(s, row)]
        fever = measured_fever(s, row)
        if fever is not None:
            blockers.append(_fever_message(fever, s, row))
        return blockers


def proceed_with_checks(
    db: Database,
    actor: Actor,
    session_id: int,
    expected_version: int | None,
    *,
    at: datetime | None = None,
    override_reason: str | None = None,
) -> InfusionSession:
    """`sessions.proceed`, refused while a required check is unanswered or answered no, or while a
    temperature at or above the fever threshold was measured in the session.

    The checks run inside proceed's transaction, on the locked session row, so an
    answer or a set of vitals saved by another tablet cannot slip in between check
    and proceed. A measured fever is passed only with `override_reason` (the
    clinician's reason to infuse anyway), audited as `pretreatment_override`.
    (`proceed` checks the role.)
    """
    reason = (override_reason or "").strip() or None

    def checks_done(s: Session, row: InfusionSession) -> None:
        missing = _blockers(s, row)
        if missing:
            raise ValidationError(
                {f"pretreatment.{c.code}": f"Not checked: {c.label}." for c in missing}
                | {"pretreatment": "Answer yes to every required check, or defer the session."}
            )
        fever = measured_fever(s, row)
        if fever is None:
            return
        if reason is None:
            raise ValidationError({f"pretreatment.{INFECTION_CODE}": _fever_message(fever, s, row)})
        record(
            s,
            actor,
            "pretreatment_override",
            "session",
            row.id,
            session_id=row.id,
            patient_id=row.patient_id,
            after={"measured_temperature_c": fever, "check": INFECTION_CODE},
            reason=reason,
        )

    return proceed(db, actor, session_id, expected_version=expected_version, at=at, precondition=checks_done)
