"""After the chair (issue 6): discharge education, the patient's printable summary,
the next-day follow-up call, delayed reactions and their rates.

Choices, with the facts they rest on:

- **Education** items are a fixed vocabulary (so the record is countable, not
  free text). Their patient-facing wording paraphrases docs/clinical-basis.md §11 (symptoms;
  "IRRs can occur up to 24 h after an infusion") and §4b (active infection →
  the next dose is delayed). What to tell a patient about rest, whom to call and
  emergencies has no clinical source: that wording is a product choice for the
  clinic to review. Education is additive: an item once given stays given (a
  mistake is amended by addendum, as for any discharged record).
- **Follow-up rows are computed, not pre-created.** The work list is a read:
  a discharged session without a `follow_up` row is "pending, 0 attempts". The
  row is created by the first call recorded. Creating rows when a page is
  opened would turn every rerun into a write, make two nurses opening the list
  race on the unique index, and write audit rows for nothing.
- **Delayed reactions** are Reaction rows with `delayed = True` on a discharged
  session, onset after discharge. docs/clinical-basis.md §11 says up to 24 h (Ocrevus and
  Briumvi labels); a call after a weekend can hear of an older one, so onsets
  up to 72 h are accepted, and one past 24 h must be confirmed by the nurse
  (`ConfirmationRequired`, like abnormal vitals) and is counted in the overall
  reaction rate but not in "within 24 h after". Past 72 h it is refused: that
  is an adverse event for the prescriber, not an infusion reaction (product
  choice; no clinical source gives it; docs/clinical-basis.md §10). Actions use the chart's vocabulary
  (`entries.ACTIONS`) so corrections keep working, limited to those that make
  sense at home ("observed", "medication_given"); what was advised goes in
  the note.
- **Rates** count sessions, like `metrics.reaction_rates`: a session with a
  reaction in the chair counts in "during session", one with a delayed reaction
  within 24 h of discharge in "within 24 h after"; a session can count in both.
"""

from __future__ import annotations

import html
import importlib
import logging
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import and_, case, func, literal, select
from sqlalchemy.orm import Session

from db.engine import Database
from db.models import AppUser, FollowUp, InfusionSession, Patient, Reaction, Therapy
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import CHARTING, CORRECT_OTHERS, require_role
from infusion.clinical.reactions import ACTIONS, CTCAE_IRR, SYMPTOMS
from infusion.clinical.states import EntryStatus, SessionStatus
from infusion.clock import format_local, format_minutes, local_day_bounds, utcnow
from infusion.errors import (
    ChairsideError,
    ConfirmationRequired,
    ConflictError,
    NotFoundError,
    PermissionDenied,
    StateError,
    ValidationError,
)
from infusion.reads.trends.catalog import _catalog, _label
from infusion.reads.trends.filters import TrendFilters, _fetch, _frame, _where
from infusion.reads.trends.sql import minutes_between
from infusion.services.audit import changed, record, snapshot
from infusion.services.entries import _existing, _validate_reaction, new_reaction
from infusion.services.opening import (
    charting,
    clinic_context,
    clinic_timezone,
    clinical_time,
    set_summaries,
    therapy_of,
)

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------
# Discharge education
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# Patient summary
# ---------------------------------------------------------------------------

ASK_THE_CLINIC = "Ask the clinic"
SUMMARY_STATUSES = (SessionStatus.OBSERVATION, SessionStatus.DISCHARGED)


def _next_due_from_module(db: Database, row: InfusionSession) -> str | None:
    """`infusion.reads.due.next_for(...)`'s due date and label, if that module is present; else None ("ask the clinic").

    Looked up at call time so this module works with or without the due-list work.
    """
    try:
        due = importlib.import_module("infusion.reads.due")
    except ImportError:
        return None
    next_for = getattr(due, "next_for", None)
    if next_for is None:
        return None
    try:
        nxt = next_for(db, row.patient_id, row.therapy_id)
    except ChairsideError:
        return None
    when = getattr(nxt, "due", None)
    if not isinstance(when, date):
        return None  # on demand, by protocol without an interval, or after the last course
    label = getattr(nxt, "label", "")
    return when.strftime("%d %b %Y") + (f" ({label})" if label else "")


def patient_summary(db: Database, actor: Actor, session_id: int, *, next_due: date | None = None) -> dict[str, Any]:
    """The facts of one session for the patient's copy, as display strings in the clinic's time zone.

    Only this session's rows are read. `next_due` overrides the due-date lookup.
    """
    require_role(actor, CHARTING, "print a patient summary")
    with db.reading() as s:
        row = s.get(InfusionSession, session_id)
        if row is None:
            raise NotFoundError(f"Session {session_id} not found.")
        if row.status not in SUMMARY_STATUSES:
            raise StateError("The patient summary is printed during observation or after discharge.")
        clinic, _ = clinic_context(s)
        patient = s.get(Patient, row.patient_id)
        therapy = therapy_of(s, row)
        assert patient is not None
        reactions = list(
            s.scalars(
                select(Reaction)
                .where(Reaction.session_id == row.id, Reaction.status == EntryStatus.ACTIVE)
                .order_by(Reaction.onset_at, Reaction.id)
            )
        )
    tz = clinic.timezone
    due = next_due.strftime("%d %b %Y") if next_due else _next_due_from_module(db, row)
    local = "%d %b %Y %H:%M"
    return {
        "clinic": {"name": clinic.name, "phone": clinic.phone or "", "timezone": tz},
        "patient": {
            "name": f"{patient.given_name} {patient.family_name}",
            "mrn": patient.mrn,
            "birth_date": patient.birth_date.strftime("%d %b %Y") if patient.birth_date else "",
        },
        "therapy": {
            "name": therapy.name,
            "brand": therapy.brand or "",
            "route": therapy.route,
            "dose": f"{row.dose:g} {row.dose_unit}" if row.dose is not None else "",
            "infusion_number": row.infusion_number,
            "course": (
                f"course {row.course_number}, day {row.course_day}" if row.course_number and row.course_day else ""
            ),
        },
        "date": format_local(row.checked_in_at or row.scheduled_at, tz, "%A %d %B %Y"),
        "times": {
            "checked_in": format_local(row.checked_in_at, tz),
            "iv_started": format_local(row.iv_started_at, tz),
            "iv_stopped": format_local(row.iv_stopped_at, tz),
            "discharged": format_local(row.discharged_at, tz),
            "infusion_duration": format_minutes(row.infusion_minutes),
        },
        "reactions": [
            {
                "onset": format_local(r.onset_at, tz, local),
                "delayed": bool(r.delayed),
                "symptoms": [SYMPTOMS.get(x, x) for x in r.symptoms] + ([r.other_text] if r.other_text else []),
                "grade": r.grade,
                "grade_text": CTCAE_IRR.get(r.grade, ""),
                "actions": [ACTIONS.get(x, x) for x in r.actions],
                "medication_given": r.medication_given or "",
                "resolved": format_local(r.resolved_at, tz, local) if r.resolved_at else "",
            }
            for r in reactions
        ],
        "next_due": due or ASK_THE_CLINIC,
        "education": [EDUCATION[c] for c in (row.education or []) if c in EDUCATION],
        "generated_at": format_local(utcnow(), tz, local),
    }


_PRINT_CSS = """
@page { size: auto; margin: 14mm; }
* { box-sizing: border-box; }
body { font: 11pt/1.4 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #000;
       background: #fff; margin: 0 auto; max-width: 180mm; padding: 8mm; }
h1 { font-size: 16pt; margin: 0 0 2mm; }
h2 { font-size: 12pt; margin: 5mm 0 1.5mm; border-bottom: 1px solid #000; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 1mm 2mm 1mm 0; }
th { width: 38%; font-weight: 600; }
ul { margin: 1mm 0; padding-left: 6mm; }
.muted { color: #444; font-size: 9pt; }
.call { border: 2px solid #000; padding: 2mm 3mm; margin-top: 4mm; font-size: 12pt; }
section, .call { page-break-inside: avoid; break-inside: avoid; }
@media print { body { padding: 0; } .noprint { display: none; } }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def summary_html(summary: dict[str, Any]) -> str:
    """A self-contained one-page HTML document (inline CSS, no scripts, no external assets)."""
    c, p, t, times = summary["clinic"], summary["patient"], summary["therapy"], summary["times"]
    therapy = t["name"] + (f" ({t['brand']})" if t["brand"] else "")
    rows = [("Therapy", therapy), ("Dose", t["dose"]), ("Infusion number", t["infusion_number"])]
    if t["course"]:
        rows.append(("Course", t["course"]))
    rows += [
        ("Date", summary["date"]),
        ("Checked in", times["checked_in"]),
        ("Infusion started", times["iv_started"]),
        ("Infusion finished", times["iv_stopped"]),
        ("Infusion time", times["infusion_duration"]),
        ("Went home", times["discharged"]),
    ]
    table = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    if summary["reactions"]:
        items = []
        for r in summary["reactions"]:
            when = "after you went home" if r["delayed"] else "during your visit"
            parts = [
                f"<strong>{_e(', '.join(r['symptoms']))}</strong> ({_e(when)}, started {_e(r['onset'])}; "
                f"grade {_e(r['grade'])}: {_e(r['grade_text'])})"
            ]
            if r["actions"]:
                parts.append(
                    f"What was done: {_e(', '.join(r['actions']))}"
                    + (f" — {_e(r['medication_given'])}" if r["medication_given"] else "")
                )
            if r["resolved"]:
                parts.append(f"Settled at {_e(r['resolved'])}")
            items.append("<li>" + "<br>".join(parts) + "</li>")
        reactions = "<ul>" + "".join(items) + "</ul>"
    else:
        reactions = "<p>No reaction was recorded.</p>"
    education = (
        "<ul>" + "".join(f"<li>{_e(x)}</li>" for x in summary["education"]) + "</ul>"
        if summary["education"]
        else "<p>Ask your nurse about care after the infusion.</p>"
    )
    phone = c["phone"] or "the number on your appointment letter"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Infusion visit summary</title>
<style>{_PRINT_CSS}</style></head>
<body>
<h1>Your infusion visit</h1>
<p>{_e(c["name"])} · {_e(p["name"])}{" · born " + _e(p["birth_date"]) if p["birth_date"] else ""} · MRN {_e(p["mrn"])}</p>
<section><h2>Today's treatment</h2><table>{table}</table></section>
<section><h2>Reactions</h2>{reactions}</section>
<section><h2>Next infusion due</h2><p>{_e(summary["next_due"])}</p></section>
<section><h2>Care at home</h2>{education}</section>
<div class="call">Questions or new symptoms? Call the clinic: <strong>{_e(phone)}</strong></div>
<p class="muted">Times are clinic time ({_e(c["timezone"])}). Printed {_e(summary["generated_at"])}.
<span class="noprint">Use your browser's Print (or "Save as PDF") to keep a copy.</span></p>
</body></html>
"""


# ---------------------------------------------------------------------------
# Next-day follow-up
# ---------------------------------------------------------------------------

OUTCOMES = {"pending": "Not called yet", "reached": "Reached", "not_reached": "Not reached"}
FOLLOW_UP_COLUMNS = (
    "session_id",
    "session_version",
    "follow_up_version",
    "patient",
    "mrn",
    "phone",
    "therapy",
    "infusion_number",
    "discharged_at",
    "discharged",
    "reaction_count",
    "worst_grade",
    "delayed_reactions",
    "outcome",
    "outcome_label",
    "attempts",
    "called_at",
    "called_by",
    "note",
)


def follow_up_worklist(db: Database, actor: Actor, day: date, *, days: int = 1) -> pd.DataFrame:
    """Sessions discharged on the `days` clinic-local days before `day` (default: yesterday), with their call status.

    `follow_up_version` is 0 while nobody has called (no row yet); pass it back
    to `record_follow_up` as `expected_version`.
    """
    require_role(actor, CHARTING, "see the follow-up calls")
    if days < 1:
        raise ValidationError({"days": "Look back at least one day."})
    with db.reading() as s:
        tz = clinic_timezone(s, missing="UTC")
        lo, hi = local_day_bounds(day - timedelta(days=days), tz, day - timedelta(days=1))
        delayed = (
            select(Reaction.session_id.label("sid"), func.count().label("n"))
            .where(Reaction.status == EntryStatus.ACTIVE, Reaction.delayed.is_(True))
            .group_by(Reaction.session_id)
            .subquery("delayed")
        )
        S, F = InfusionSession, FollowUp
        q = (
            select(
                S.id,
                S.version,
                F.version,
                Patient.given_name,
                Patient.family_name,
                Patient.mrn,
                Patient.phone,
                Therapy.name,
                Therapy.brand,
                S.infusion_number,
                S.discharged_at,
                S.reaction_count,
                S.worst_grade,
                func.coalesce(delayed.c.n, 0),
                F.outcome,
                F.attempts,
                F.called_at,
                AppUser.display_name,
                F.note,
            )
            .select_from(S)
            .join(Patient, Patient.id == S.patient_id)
            .join(Therapy, Therapy.id == S.therapy_id)
            .outerjoin(F, F.session_id == S.id)
            .outerjoin(AppUser, AppUser.id == F.called_by_id)
            .outerjoin(delayed, delayed.c.sid == S.id)
            .where(S.status == SessionStatus.DISCHARGED, S.discharged_at >= lo, S.discharged_at < hi)
            .order_by(S.discharged_at, S.id)
        )
        rows = _fetch(s, q)
    records = []
    for (
        sid,
        sver,
        fver,
        given,
        family,
        mrn,
        phone,
        tname,
        brand,
        number,
        discharged_at,
        count,
        worst,
        n_delayed,
        outcome,
        attempts,
        called_at,
        called_by,
        note,
    ) in rows:
        outcome = outcome or "pending"
        records.append(
            (
                sid,
                sver,
                fver or 0,
                f"{family}, {given}",
                mrn,
                phone or "",
                brand or tname,
                number,
                discharged_at,
                format_local(discharged_at, tz, "%a %d %b %H:%M"),
                count or 0,
                worst,
                int(n_delayed),
                outcome,
                OUTCOMES[outcome],
                attempts or 0,
                called_at,
                called_by or "",
                note or "",
            )
        )
    frame = pd.DataFrame(records, columns=list(FOLLOW_UP_COLUMNS))
    return frame.astype(
        {
            "session_id": "int64",
            "session_version": "int64",
            "follow_up_version": "int64",
            "infusion_number": "int64",
            "reaction_count": "int64",
            "delayed_reactions": "int64",
            "attempts": "int64",
            "worst_grade": "Int64",
        }
    )


def record_follow_up(
    db: Database,
    actor: Actor,
    session_id: int,
    outcome: str,
    note: str | None = None,
    expected_version: int | None = None,
) -> FollowUp:
    """One call attempt: reached or not reached. Attempts add up; each call's note is appended, never replaced.

    `expected_version` is the follow-up version the nurse saw (0 = none yet);
    a call recorded meanwhile by someone else is a ConflictError.
    """
    opening = charting(db, actor, session_id, what="record a follow-up call")
    if outcome not in ("reached", "not_reached"):
        raise ValidationError({"outcome": "Record the call as reached or not reached."})
    note = (note or "").strip()
    with opening as w:  # the session row lock serialises the first call's insert
        s, row = w.s, w.row
        if row.status != SessionStatus.DISCHARGED:
            raise StateError("Follow-up calls are for discharged sessions.")
        clinic = w.clinic
        follow = s.scalars(select(FollowUp).where(FollowUp.session_id == row.id)).first()
        seen = 0 if follow is None else follow.version
        if expected_version is not None and expected_version != seen:
            raise ConflictError(
                "Someone recorded a call for this patient after you opened the list. "
                "Nothing was saved; review the latest status and try again."
            )
        now = utcnow()
        before = snapshot(follow) if follow is not None else {}
        if follow is None:
            follow = FollowUp(session_id=row.id, outcome="pending", attempts=0)
            s.add(follow)
        line = f"{format_local(now, clinic.timezone, '%d %b %H:%M')} {OUTCOMES[outcome].lower()} ({actor.name})"
        line += f": {note}" if note else ""
        follow.outcome, follow.attempts = outcome, (follow.attempts or 0) + 1
        follow.called_at, follow.called_by_id = now, actor.user_id
        follow.note = f"{follow.note}\n{line}" if follow.note else line
        s.flush()
        old, new = changed(before, snapshot(follow))
        record(
            s,
            actor,
            "record_follow_up",
            "follow_up",
            follow.id,
            session_id=row.id,
            patient_id=row.patient_id,
            before=old or None,
            after=new,
        )
        log.info("record_follow_up session=%s outcome=%s by user=%s", row.id, outcome, actor.user_id)
        return follow


# ---------------------------------------------------------------------------
# Delayed reactions
# ---------------------------------------------------------------------------

LABEL_WINDOW_HOURS = 24  # docs/clinical-basis.md §11: IRRs can occur up to 24 h after an infusion
ACCEPT_WINDOW_HOURS = (
    72  # product choice: a call after a weekend; no source gives a window beyond 24 h (docs/clinical-basis.md §10)
)
DELAYED_ACTIONS = {k: ACTIONS[k] for k in ("observed", "medication_given")}


def record_delayed_reaction(
    db: Database,
    actor: Actor,
    session_id: int,
    symptoms: list[str],
    grade: int,
    actions: list[str],
    onset_at: datetime,
    note: str | None = None,
    *,
    other_text: str | None = None,
    medication_given: str | None = None,
    resolved_at: datetime | None = None,
    provider_notified: bool = False,
    provider_name: str | None = None,
    confirm_beyond_24h: bool = False,
    client_token: str | None = None,
) -> Reaction:
    """A reaction the patient reports after discharge (usually at the next-day call), stored with `delayed=True`."""
    opening = charting(db, actor, session_id)
    problems = _validate_reaction(symptoms, other_text, grade, actions, medication_given)
    in_chair = [a for a in actions if a in ACTIONS and a not in DELAYED_ACTIONS]
    if in_chair and "actions" not in problems:
        problems["actions"] = (
            f"{', '.join(ACTIONS[a] for a in in_chair)}: the infusion was already over. "
            "Choose 'Observed only' or 'Medication given', and write the advice in the note."
        )
    if provider_notified and not (provider_name or "").strip():
        problems["provider_name"] = "Name the provider who was notified."
    if onset_at is None:
        problems["onset_at"] = "Enter when the symptoms started."
    if problems:
        raise ValidationError(problems)
    with opening as w:
        s, row = w.s, w.row
        existing = _existing(s, Reaction, client_token, row.id)
        if existing is not None:
            return existing
        if row.status != SessionStatus.DISCHARGED or row.discharged_at is None:
            raise StateError("A delayed reaction is recorded after discharge; during the visit use Reaction.")
        settings, tz = w.settings, w.tz
        onset = clinical_time(
            onset_at,
            field="onset_at",
            label="Reaction onset",
            settings=settings,
            tz=tz,
            not_before=[(row.discharged_at, "discharge")],
        )
        hours = (onset - row.discharged_at).total_seconds() / 3600
        if hours > ACCEPT_WINDOW_HOURS:
            raise ValidationError(
                {
                    "onset_at": (
                        f"Onset {hours:.0f} h after discharge is past the {ACCEPT_WINDOW_HOURS} h this record accepts; "
                        "report it to the prescriber as an adverse event and add an addendum."
                    )
                }
            )
        if hours > LABEL_WINDOW_HOURS and not confirm_beyond_24h:
            raise ConfirmationRequired(
                [
                    f"Onset {hours:.0f} h after discharge: later than the 24 h in which infusion reactions are "
                    "described. It will count in the reaction rate, not in 'within 24 h after'."
                ]
            )
        if resolved_at is not None:
            clinical_time(
                resolved_at,
                field="resolved_at",
                label="Resolution",
                settings=settings,
                tz=tz,
                not_before=[(onset, "the onset")],
            )
        reaction = new_reaction(
            row.id,
            actor,
            onset=onset,
            symptoms=symptoms,
            grade=grade,
            actions=actions,
            other_text=other_text,
            medication_given=medication_given,
            resolved_at=resolved_at,
            provider_notified=provider_notified,
            provider_name=provider_name,
            note=note,
            delayed=True,
            client_token=client_token,
        )
        s.add(reaction)
        s.flush()
        set_summaries(  # an appended entry does not bump the session's version
            s, row, reaction_count=(row.reaction_count or 0) + 1, worst_grade=max(row.worst_grade or 0, grade)
        )
        reason = f"onset {hours:.1f} h after discharge" + (
            " (beyond 24 h, confirmed)" if hours > LABEL_WINDOW_HOURS else ""
        )
        record(
            s,
            actor,
            "record_delayed_reaction",
            "reaction",
            reaction.id,
            session_id=row.id,
            patient_id=row.patient_id,
            after=snapshot(reaction),
            reason=reason,
        )
        log.info("record_delayed_reaction session=%s reaction=%s by user=%s", row.id, reaction.id, actor.user_id)
        return reaction


def withdraw_delayed_reaction(db: Database, actor: Actor, reaction_id: int, reason: str) -> Reaction:
    """Mark a delayed reaction entered in error (wrong patient, duplicate call).

    `corrections.mark_entered_in_error` refuses every entry of a discharged
    session (addendum only), and a delayed reaction only exists on discharged
    sessions; without this a mistaken report would count in the rates for
    ever. The row stays, marked, with who, when and why.
    """
    opening = charting(db, actor, lambda s: _delayed_reaction(s, reaction_id).session_id, what="correct the record")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the reaction is withdrawn (e.g. 'wrong patient')."})
    with opening as w:
        s, row = w.s, w.row
        reaction = _delayed_reaction(s, reaction_id)  # read before the lock; the same object
        if reaction.status != EntryStatus.ACTIVE:
            raise StateError(f"This reaction is already {reaction.status.replace('_', ' ')}.")
        if actor.role not in CORRECT_OTHERS and (
            reaction.entered_by_id is None or reaction.entered_by_id != actor.user_id
        ):
            raise PermissionDenied("Only the person who recorded it, or a charge nurse, may withdraw it.")
        reaction.status, reaction.correction_reason = EntryStatus.ENTERED_IN_ERROR, reason
        s.flush()
        grades = list(
            s.scalars(
                select(Reaction.grade).where(Reaction.session_id == row.id, Reaction.status == EntryStatus.ACTIVE)
            )
        )
        set_summaries(s, row, reaction_count=len(grades), worst_grade=max(grades) if grades else None)
        record(
            s,
            actor,
            "entered_in_error",
            "reaction",
            reaction.id,
            session_id=row.id,
            patient_id=row.patient_id,
            before={"status": EntryStatus.ACTIVE},
            after={"status": EntryStatus.ENTERED_IN_ERROR},
            reason=reason,
        )
        log.info("withdraw_delayed_reaction session=%s reaction=%s by user=%s", row.id, reaction.id, actor.user_id)
        return reaction


def _delayed_reaction(s: Session, reaction_id: int) -> Reaction:
    reaction = s.get(Reaction, reaction_id)
    if reaction is None or not reaction.delayed:
        raise NotFoundError(f"Delayed reaction {reaction_id} not found.")
    return reaction


# ---------------------------------------------------------------------------
# Rates: during the session vs within 24 h after
# ---------------------------------------------------------------------------

DELAYED_RATE_COLUMNS = (
    "therapy_id",
    "therapy",
    "completed",
    "during_session",
    "within_24h_after",
    "rate_during_per_100",
    "rate_after_per_100",
)


def delayed_reaction_rates(db: Database, filters: TrendFilters) -> pd.DataFrame:
    """Per therapy: completed sessions, sessions with an in-chair reaction, sessions with a delayed one ≤ 24 h
    after discharge, and both per 100 completed. Same session selection as `metrics.reaction_rates`."""
    S = InfusionSession
    with db.reading() as s:
        tz = clinic_timezone(s, missing="UTC")
        lo, hi = local_day_bounds(filters.start, tz, filters.end)
        catalog = _catalog(s)
        within = and_(
            Reaction.delayed.is_(True),
            minutes_between(S.discharged_at, Reaction.onset_at) <= literal(LABEL_WINDOW_HOURS * 60.0),
        )
        per_session = (
            select(
                Reaction.session_id.label("sid"),
                func.max(case((Reaction.delayed.is_(False), 1), else_=0)).label("during"),
                func.max(case((within, 1), else_=0)).label("after"),
            )
            .select_from(Reaction)
            .join(S, S.id == Reaction.session_id)
            .where(Reaction.status == EntryStatus.ACTIVE)
            .group_by(Reaction.session_id)
            .subquery("split")
        )
        q = (
            select(
                S.therapy_id,
                func.count().label("completed"),
                func.coalesce(func.sum(per_session.c.during), 0),
                func.coalesce(func.sum(per_session.c.after), 0),
            )
            .select_from(S)
            .outerjoin(per_session, per_session.c.sid == S.id)
            .where(S.status == SessionStatus.DISCHARGED, *_where(filters, lo, hi))
            .group_by(S.therapy_id)
        )
        rows = _fetch(s, q)
    frame = _frame(
        rows,
        ("therapy_id", "completed", "during_session", "within_24h_after"),
        {"therapy_id": "int64", "completed": "int64", "during_session": "int64", "within_24h_after": "int64"},
    )
    frame = _label(frame, catalog)
    n = frame["completed"].astype(float)
    frame["rate_during_per_100"] = (100 * frame["during_session"] / n).where(n > 0)
    frame["rate_after_per_100"] = (100 * frame["within_24h_after"] / n).where(n > 0)
    return frame[list(DELAYED_RATE_COLUMNS)].sort_values("therapy", ignore_index=True)
