"""The audit events every write records in its own transaction (append-only)."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from db.models import AppUser, AuditEvent
from infusion.accounts.actor import Actor
from infusion.clock import utcnow
from infusion.errors import PermissionDenied
from infusion.services import integrity  # noqa: F401 - registers the row checks every write goes through

#: what a disabled account may still leave in the trail (its own sign-out)
ALLOWED_WHEN_DISABLED = frozenset({"sign_out"})


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value  # a StrEnum status or role is stored as its plain string
    return value


def snapshot(obj: Any, fields: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The mapped column values of a row, JSON-safe, for an audit before/after."""
    mapper = inspect(obj).mapper
    names = fields or tuple(c.key for c in mapper.column_attrs)
    return {name: _jsonable(getattr(obj, name)) for name in names}


def changed(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the keys whose value differs, so audit rows stay small and readable."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def record(
    s: Session,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: int | None,
    *,
    session_id: int | None = None,
    patient_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
    at: datetime | None = None,
) -> None:
    """Add the audit event of a write to its transaction.

    Every write records one, so this is also the last check that the account behind a
    signed-in actor still exists and is active: a disabled account's open browser cannot
    write anything (PermissionDenied, the transaction rolls back)."""
    if actor.user_id is not None and action not in ALLOWED_WHEN_DISABLED:
        user = s.get(AppUser, actor.user_id)
        if user is None or not user.active:
            raise PermissionDenied("Your account is disabled; nothing was saved. Ask an administrator.")
    s.add(
        AuditEvent(
            at=at or utcnow(),
            user_id=actor.user_id,
            user_name=actor.name,
            action=action,
            entity=entity,
            entity_id=entity_id,
            session_id=session_id,
            patient_id=patient_id,
            before=_jsonable(before) if before is not None else None,
            after=_jsonable(after) if after is not None else None,
            reason=reason,
        )
    )
