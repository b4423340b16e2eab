"""Search the audit trail (quality and administrators): who did what, to which record, when.

Who reads which events (minimum necessary): a network-wide holder (administrators, network quality)
reads every event. A person who holds the quality role at named sites reads only the events about
those sites (`audit_event.site_id`: a session's site, a site's or chair's settings, a patient's site;
`infusion.services.audit.event_site`). Events about no site (sign-ins and accounts, the therapy
catalog, exports, audit searches) name staff across the network, so they are network-wide only; a
site-scoped reader never sees another site's patients, MRNs or staff actions, nor any action name
that only occurs elsewhere. The same rule narrows the audit export (infusion.exports.queries).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from db.engine import Database
from db.models import AuditEvent, Clinic, Patient
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import AUDIT, require_role
from infusion.accounts.sites import held_sites, working_context
from infusion.clock import local_day_bounds
from infusion.errors import ValidationError
from infusion.services.audit import record

MAX_ROWS = 2000  # a screen and a download; larger pulls use the audit export dataset


@dataclass(frozen=True)
class AuditFilters:
    start: date
    end: date
    user_name: str | None = None
    patient_mrn: str | None = None
    session_id: int | None = None
    action: str | None = None


def _bounds(filters: AuditFilters, tz: str) -> tuple[datetime, datetime]:
    if filters.end < filters.start:
        raise ValidationError({"end": "The end date is before the start date."})
    return local_day_bounds(filters.start, tz, filters.end)


def readable(s: Session, actor: Actor) -> list[ColumnElement[bool]]:
    """The condition on audit events the actor may read ([] for a network-wide holder)."""
    held = held_sites(s, actor)
    if held is None:
        return []
    return [AuditEvent.site_id.in_(sorted(held))]


def reader_sites(db: Database, actor: Actor) -> list[str] | None:
    """The names of the sites whose events the actor reads (None: every site and the network's)."""
    with db.reading() as s:
        held = held_sites(s, actor)
        if held is None:
            return None
        return list(s.scalars(select(Clinic.name).where(Clinic.id.in_(sorted(held))).order_by(Clinic.name)))


def search(db: Database, actor: Actor, filters: AuditFilters, limit: int = MAX_ROWS) -> tuple[pd.DataFrame, int]:
    """Matching audit events, newest first (at most `limit`), and how many match in all.

    Looking at the audit trail is itself audited. Only the events the actor may read (`readable`).
    """
    require_role(actor, AUDIT, "read the audit trail")
    with db.reading() as s:
        clinic, _ = working_context(s, actor)  # the filter's days are the working site's
        lo, hi = _bounds(filters, clinic.timezone)
        conditions = [*readable(s, actor), AuditEvent.at >= lo, AuditEvent.at < hi]
        if filters.user_name:
            conditions.append(func.lower(AuditEvent.user_name).like(f"%{filters.user_name.strip().lower()}%"))
        if filters.session_id is not None:
            conditions.append(AuditEvent.session_id == filters.session_id)
        if filters.action:
            conditions.append(AuditEvent.action == filters.action)
        if filters.patient_mrn:
            patient_id = s.scalar(select(Patient.id).where(Patient.mrn == filters.patient_mrn.strip()))
            conditions.append(AuditEvent.patient_id == (patient_id if patient_id is not None else -1))
        total = s.scalar(select(func.count()).select_from(AuditEvent).where(*conditions)) or 0
        rows = s.execute(
            select(AuditEvent, Patient.mrn)
            .outerjoin(Patient, Patient.id == AuditEvent.patient_id)
            .where(*conditions)
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(limit)
        ).all()
        tz = ZoneInfo(clinic.timezone)
    with db.writing() as s:
        record(
            s,
            actor,
            "search_audit",
            "audit_event",
            None,
            after={
                "start": filters.start,
                "end": filters.end,
                "user": filters.user_name,
                "patient_mrn": filters.patient_mrn,
                "session_id": filters.session_id,
                "action": filters.action,
                "matches": total,
            },
        )
    frame = pd.DataFrame.from_records(
        [
            {
                "time": event.at.astimezone(tz).isoformat(timespec="seconds"),
                "user": event.user_name,
                "action": event.action,
                "entity": event.entity,
                "entity_id": event.entity_id,
                "session_id": event.session_id,
                "patient_mrn": mrn,
                "reason": event.reason or "",
                "before": event.before,
                "after": event.after,
            }
            for event, mrn in rows
        ],
        columns=[
            "time",
            "user",
            "action",
            "entity",
            "entity_id",
            "session_id",
            "patient_mrn",
            "reason",
            "before",
            "after",
        ],
    )
    return frame, int(total)


def actions(db: Database, actor: Actor) -> list[str]:
    """The action names among the events the actor may read (the Action filter's choices)."""
    require_role(actor, AUDIT, "read the audit trail")
    with db.reading() as s:
        return sorted(s.scalars(select(AuditEvent.action).where(*readable(s, actor)).distinct()))


def to_csv(frame: pd.DataFrame) -> bytes:
    """The search result as a spreadsheet-safe CSV (UTF-8 with BOM, formula injection neutralised)."""
    from infusion.exports.datasets import BOM, format_cell

    buffer = io.StringIO()
    buffer.write(BOM)
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(list(frame.columns))
    for row in frame.itertuples(index=False):
        writer.writerow([format_cell(None if (isinstance(v, float) and pd.isna(v)) else v) for v in row])
    return buffer.getvalue().encode("utf-8")
