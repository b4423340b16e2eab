"""The patient's printable one-page summary of the visit (HTML, printed or saved as PDF at the chair)."""

from __future__ import annotations

import html
import importlib
import logging
from datetime import date
from typing import Any

from sqlalchemy import select

from db.engine import Database
from db.models import InfusionSession, Patient, Reaction
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import CHARTING, require_role
from infusion.accounts.sites import site_of_session
from infusion.clinical.reactions import ACTIONS, CTCAE_IRR, SYMPTOMS
from infusion.clinical.states import EntryStatus, SessionStatus
from infusion.clock import format_local, format_minutes, utcnow
from infusion.errors import (
    ChairsideError,
    NotFoundError,
    StateError,
)
from infusion.services.aftercare.education import EDUCATION
from infusion.services.opening import (
    clinic_context,
    therapy_of,
)

log = logging.getLogger(__name__)


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
        clinic, _ = clinic_context(s, site_of_session(s, row))
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
