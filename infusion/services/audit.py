"""The audit events every write records in its own transaction (append-only)."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import insert, inspect, select
from sqlalchemy.orm import Session

from db.models import AppUser, AuditEvent, Chair, Clinic, InfusionSession
from infusion.accounts.actor import Actor
from infusion.accounts.sites import working_site
from infusion.clinical.states import SessionStatus
from infusion.clock import utcnow
from infusion.errors import PermissionDenied
from infusion.services import integrity  # also registers the row checks every write goes through

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


def _chair_site(s: Session, chair_id: int | None) -> int | None:
    chair = s.get(Chair, chair_id) if chair_id is not None else None
    return None if chair is None else int(chair.site_id)


def event_site(
    s: Session,
    actor: Actor,
    entity: str,
    entity_id: int | None,
    session_id: int | None,
    patient_id: int | None,
    after: dict[str, Any] | None,
) -> int | None:
    """The site an audit event is about, which decides who may read it (infusion.reads.audit_log).

    A session's event: the session's site (its chair's). A site's own event (`clinic`): that site; a
    chair's: the chair's site; a wall display paired at a site: that site. A patient's event without
    a session (registration, a protocol interval, the NEWS2 scale): the site the person works in when
    they act, so that site's quality staff can audit it (the command line and the system: the site they
    name, else the site of the patient's latest session not cancelled or deferred). Anything else
    (accounts, the catalog, exports, searches): None, a network event that only network-wide holders
    read. Migration 0013 filled older patient events from the patient's latest session not cancelled
    or deferred at the time of the migration (who acted where was not recorded)."""
    if session_id is not None:
        row = s.get(InfusionSession, session_id)
        return _chair_site(s, row.chair_id) if row is not None else None
    if entity == "clinic" and entity_id is not None:
        return entity_id if s.get(Clinic, entity_id) is not None else None
    if entity == "chair":
        return _chair_site(s, entity_id)
    if entity == "sign_in_token" and after is not None:
        site = after.get("site_id")
        return site if isinstance(site, int) and not isinstance(site, bool) else None
    if patient_id is not None:
        # where the action is taken: the site the person works in now (it holds them to account there)
        here = working_site(s, actor) if actor.user_id is not None else actor.site_id
        if here is not None:
            return here
        latest = s.scalar(  # the command line and the system, naming no site: where the patient is treated
            select(Chair.site_id)
            .join(InfusionSession, InfusionSession.chair_id == Chair.id)
            .where(
                InfusionSession.patient_id == patient_id,
                InfusionSession.status.not_in((SessionStatus.CANCELLED, SessionStatus.DEFERRED)),
            )
            .order_by(InfusionSession.scheduled_at.desc(), InfusionSession.id.desc())
            .limit(1)
        )
        return int(latest) if latest is not None else None
    return None


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
    """Write the audit event of a write in its transaction.

    Every write records one, so this is also the last check that the account behind a
    signed-in actor still exists and is active: a disabled account's open browser cannot
    write anything (PermissionDenied, the transaction rolls back). The event's site is
    `event_site`'s."""
    if actor.user_id is not None and action not in ALLOWED_WHEN_DISABLED:
        user = s.get(AppUser, actor.user_id)
        if user is None or not user.active:
            raise PermissionDenied("Your account is disabled; nothing was saved. Ask an administrator.")
    event = AuditEvent(
        at=at or utcnow(),
        user_id=actor.user_id,
        user_name=actor.name,
        action=action,
        entity=entity,
        entity_id=entity_id,
        session_id=session_id,
        patient_id=patient_id,
        site_id=event_site(s, actor, entity, entity_id, session_id, patient_id, after),
        before=_jsonable(before) if before is not None else None,
        after=_jsonable(after) if after is not None else None,
        reason=reason,
    )
    # the same checks as every flushed row, then one plain INSERT now: nothing reads the event back in the
    # transaction, and the unit of work's bookkeeping for it was ~10 % of a nurse's save on PostgreSQL
    integrity.check_new(event)
    s.execute(_INSERT, {name: getattr(event, name) for name in _COLUMNS})


_TABLE: Any = AuditEvent.__table__
_INSERT = insert(_TABLE)
_COLUMNS = tuple(c.key for c in inspect(AuditEvent).column_attrs if c.key != "id")
