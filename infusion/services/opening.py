"""Shared checks for every write to a session: lock, version, and clinical times.

Each write function in `infusion.services.sessions` and `infusion.services.entries` runs in one
transaction: lock the session row (BEGIN IMMEDIATE on SQLite, SELECT … FOR
UPDATE on PostgreSQL), compare the version the nurse saw, validate, write, audit.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import AuditEvent, Clinic, InfusionSession, Therapy
from infusion.clock import format_local, utcnow
from infusion.errors import ConflictError, NotFoundError, ValidationError
from infusion.settings import ClinicSettings, load_settings


def lock_session(s: Session, session_id: int, expected_version: int | None) -> InfusionSession:
    """The session row, locked for this transaction, checked against the version the nurse saw."""
    row = s.scalars(select(InfusionSession).where(InfusionSession.id == session_id).with_for_update()).first()
    if row is None:
        raise NotFoundError(f"Session {session_id} not found.")
    check_version(s, row, expected_version)
    return row


def check_version(s: Session, row: InfusionSession, expected_version: int | None) -> None:
    """Refuse the write if the session changed since the nurse's screen showed `expected_version`."""
    if expected_version is None or row.version == expected_version:
        return
    last = s.scalars(
        select(AuditEvent).where(AuditEvent.session_id == row.id).order_by(AuditEvent.id.desc()).limit(1)
    ).first()
    who = f" by {last.user_name} ({last.action.replace('_', ' ')})" if last else ""
    raise ConflictError(
        f"This session was changed{who} after you opened it. Nothing was saved; review the latest record and try again."
    )


def clinic_context(s: Session) -> tuple[Clinic, ClinicSettings]:
    clinic = s.scalars(select(Clinic).order_by(Clinic.id).limit(1)).first()
    if clinic is None:
        raise NotFoundError("The clinic is not set up yet.")
    return clinic, load_settings(clinic.settings)


def therapy_of(s: Session, row: InfusionSession) -> Therapy:
    therapy = s.get(Therapy, row.therapy_id)
    assert therapy is not None  # foreign key
    return therapy


def clinical_time(
    at: datetime | None,
    *,
    field: str,
    label: str,
    settings: ClinicSettings,
    tz: str,
    not_before: list[tuple[datetime | None, str]] = (),  # type: ignore[assignment]
    now: datetime | None = None,
) -> datetime:
    """A clinical time (defaults to now), refused if in the future or before an earlier event."""
    now = now or utcnow()
    moment = at or now
    if moment.tzinfo is None:
        raise ValidationError({field: f"{label}: time without a time zone."})
    if moment > now + timedelta(minutes=settings.clock_skew_minutes):
        raise ValidationError(
            {field: f"{label} {format_local(moment, tz, '%d %b %H:%M')} is in the future; enter the time it happened."}
        )
    for earlier, earlier_label in not_before:
        if earlier is not None and moment < earlier:
            raise ValidationError(
                {field: f"{label} {format_local(moment, tz)} is before {earlier_label} {format_local(earlier, tz)}."}
            )
    return moment


def required_text(value: str | None, field: str, message: str) -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationError({field: message})
    return text
