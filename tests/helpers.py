"""Shared builders for the database tests: patients, chairs, sessions walked to a state,
and whole-database snapshots to prove that a rejected write changed nothing."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from db.engine import Database
from db.models import AuditEvent, Base, InfusionSession, Therapy
from infusion.accounts.actor import Actor
from infusion.clinical.vitals import VitalsEntry
from infusion.clock import utcnow
from infusion.services import entries, sessions
from infusion.services.setup import add_chair, add_patient, add_staff

ROOT = Path(__file__).resolve().parent.parent
_counter = itertools.count(1)


def normal_vitals(**overrides: Any) -> VitalsEntry:
    """A normal full set in the default clinic's units (°C, kg)."""
    values = dict(systolic=124, diastolic=78, pulse=72, resp_rate=16, temperature=36.8, spo2=98, pain=0)
    values.update(overrides)
    return VitalsEntry(**values)


def therapy_id(db: Database, code: str) -> int:
    with db.reading() as s:
        return s.scalars(select(Therapy.id).where(Therapy.code == code)).one()


#: chairs are set up by an administrator, whoever then charts in them
ADMIN = Actor(None, "Test Admin", "admin")


def staff_actor(db: Database, name: str, role: str = "nurse") -> Actor:
    """A real user account with `role`, as the actor that signed in."""
    user = add_staff(db, ADMIN, name, role)
    return Actor(user.id, user.display_name, role)


def new_chair(db: Database, actor: Actor) -> int:
    return add_chair(db, ADMIN, f"Chair {next(_counter)}").id


def new_patient(db: Database, actor: Actor) -> int:
    n = next(_counter)
    return add_patient(
        db, actor, mrn=f"MRN{n:05d}", given_name="Pat", family_name=f"Tester{n}", diagnosis="Multiple sclerosis"
    ).id


def new_session(
    db: Database,
    actor: Actor,
    therapy: str = "natalizumab",
    *,
    chair_id: int | None = None,
    patient_id: int | None = None,
) -> int:
    return sessions.create_session(
        db,
        actor,
        patient_id=patient_id or new_patient(db, actor),
        therapy_id=therapy_id(db, therapy),
        chair_id=chair_id or new_chair(db, actor),
    ).id


def row(db: Database, session_id: int) -> InfusionSession:
    return sessions.get_session(db, session_id)


def version(db: Database, session_id: int) -> int:
    return row(db, session_id).version


def ago(minutes: float) -> datetime:
    return utcnow() - timedelta(minutes=minutes)


def walk(
    db: Database, actor: Actor, session_id: int, to: str, *, t0: datetime | None = None, infusion_minutes: float = 60
) -> datetime:
    """Take a session through the normal steps up to status `to`; returns the check-in time.

    Check-in at t0 (default 5 h ago), proceed +5 min, program and premedication +10 min,
    IV start +20 min, IV stop `infusion_minutes` later.
    """
    t0 = t0 or ago(300)
    order = ["checked_in", "ready", "infusing", "observation", "discharged"]
    target = order.index(to)
    sessions.check_in(db, actor, session_id, normal_vitals(), expected_version=None, at=t0)
    if target >= 1:
        sessions.proceed(db, actor, session_id, expected_version=None, at=t0 + timedelta(minutes=5))
    if target >= 2:
        therapy = _therapy_of(db, session_id)
        if therapy.program:
            sessions.confirm_program(db, actor, session_id, authorization_ref="AUTH-1")
        if therapy.premedication_required:
            entries.record_premedication(
                db, actor, session_id, drug="Methylprednisolone", dose="100 mg", given_at=t0 + timedelta(minutes=10)
            )
        sessions.start_iv(
            db,
            actor,
            session_id,
            expected_version=None,
            site="Left forearm",
            gauge=22,
            attempts=1,
            lot_number="LOT-1",
            rate_ml_h=100,
            at=t0 + timedelta(minutes=20),
        )
    if target >= 3:
        sessions.stop_iv(db, actor, session_id, expected_version=None, at=t0 + timedelta(minutes=20 + infusion_minutes))
    if target >= 4:
        sessions.discharge(db, actor, session_id, expected_version=None, early_reason="test walk")
    return t0


def _therapy_of(db: Database, session_id: int) -> Therapy:
    with db.reading() as s:
        session_row = s.get(InfusionSession, session_id)
        return s.get(Therapy, session_row.therapy_id)


def snapshot(db: Database) -> dict[str, list[tuple]]:
    """Every row of every table, in primary-key order."""
    out: dict[str, list[tuple]] = {}
    with db.reading() as s:
        for table in Base.metadata.sorted_tables:
            out[table.name] = [tuple(r) for r in s.execute(select(table).order_by(*table.primary_key.columns))]
    return out


def audit_count(db: Database) -> int:
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent))


def audits_since(db: Database, count_before: int) -> list[AuditEvent]:
    with db.reading() as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id).offset(count_before)))


def form_key(at: Any, form: str, field: str) -> str:
    """The widget key of `field` in the current instance of the form `form` (see `ui.forms`)."""
    name = f"_form_gen_{form}"
    generation = at.session_state[name] if name in at.session_state else 0
    return f"{form}__{generation}__{field}"
