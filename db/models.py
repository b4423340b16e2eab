"""SQLAlchemy 2.x typed models for Chairside.

Design notes that later work relies on:
- Clinical rows (vitals, premedication, rate changes, reactions) are append-only:
  a correction adds a row that points at the one it replaces (`replaces_id`) and
  marks the old one `corrected`; a mistake becomes `entered_in_error`. Nothing
  is deleted or overwritten.
- `infusion_session.version` is an optimistic-lock counter (SQLAlchemy
  `version_id_col`): every change to a session row bumps it, and writers pass the
  version the nurse saw so a stale screen cannot overwrite a newer state.
- `client_token` (unique) makes each append idempotent: a double tap or a retried
  request with the same token cannot record the same vitals twice.
- At most one active session per chair and per patient is enforced by partial
  unique indexes, which both SQLite and PostgreSQL support.
- Per-session summary columns (reaction_count, worst_grade, durations,
  last_vitals_at) are kept on write so dashboards never scan all vitals.

Long on purpose: every table in one module, so the constraints, partial indexes and relationships
that tie them together read in one place and Alembic compares against one metadata.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from db.types import BigIntPK, JSONDoc, UTCDateTime
from infusion.accounts.permissions import ROLES, Role
from infusion.clinical.course_end import REASON_CODES
from infusion.clinical.states import (
    ACTIVE_STATUSES,
    ENTRY_STATUSES,
    SESSION_STATUSES,
    EntryStatus,
    SessionStatus,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The vocabularies live with the rules that use them; imported here for the CHECK constraints
# (and so `from db.models import ACTIVE_STATUSES, ROLES, …` keeps working).

_ACTIVE_SQL = "status IN (" + ", ".join(f"'{s}'" for s in ACTIVE_STATUSES) + ")"
# A clinic chair holds one active session; the shared "home visit" location holds many.
_ACTIVE_IN_CHAIR_SQLITE = _ACTIVE_SQL + " AND at_home = 0"
_ACTIVE_IN_CHAIR_PG = _ACTIVE_SQL + " AND NOT at_home"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Clinic(Base):
    """A site of the clinic network (a centre, or a home-infusion team): its time zone, display units,
    alert thresholds and hours. A single-clinic database has one row; the table keeps the name
    `clinic` so that database upgrades in place (migration 0010)."""

    __tablename__ = "clinic"
    __table_args__ = (
        CheckConstraint("temperature_unit IN ('C', 'F')", name="temperature_unit"),
        CheckConstraint("weight_unit IN ('kg', 'lb')", name="weight_unit"),
        UniqueConstraint("code", name="uq_clinic_code"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    #: a short code staff know the site by ("BOS", "S01"); unique across the network
    code: Mapped[str] = mapped_column(String(12))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    timezone: Mapped[str] = mapped_column(String(64))
    temperature_unit: Mapped[str] = mapped_column(String(1), default="C")
    weight_unit: Mapped[str] = mapped_column(String(2), default="kg")
    phone: Mapped[str | None] = mapped_column(String(40))
    #: Alert thresholds (docs/clinical-basis.md §6) and other tunables; see infusion.settings.
    settings: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class Chair(Base):
    """A place a session happens: a chair in the clinic, or a home visit."""

    __tablename__ = "chair"
    __table_args__ = (
        CheckConstraint("kind IN ('chair', 'home')", name="kind"),
        UniqueConstraint("site_id", "name", name="uq_chair_site_name"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the site the chair (or home-visit team) belongs to; a session's site is its chair's
    site_id: Mapped[int] = mapped_column(ForeignKey("clinic.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(10), default="chair")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Therapy(Base):
    """A catalog row; seeded from infusion/therapy_catalog.toml, editable by the clinic."""

    __tablename__ = "therapy"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    brand: Mapped[str | None] = mapped_column(String(80))
    route: Mapped[str] = mapped_column(String(10), default="IV")
    default_dose: Mapped[float | None] = mapped_column(Float)
    dose_unit: Mapped[str] = mapped_column(String(20), default="mg")
    dosing_text: Mapped[str] = mapped_column(Text, default="")
    dosing_interval_days: Mapped[int | None] = mapped_column(Integer)
    min_interval_days: Mapped[int | None] = mapped_column(Integer)
    #: [{"from": 1, "to": 2 | null, "min_minutes": int, "max_minutes": int | null}]
    duration_windows: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc, default=list)
    #: [{"from": 1, "to": 1 | null, "minutes": int | null}]; null minutes = not defined
    observation_rules: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc, default=list)
    premedication_required: Mapped[bool] = mapped_column(Boolean, default=False)
    premedication_text: Mapped[str] = mapped_column(Text, default="")
    program: Mapped[str | None] = mapped_column(String(40))
    #: see infusion.clinical.schedule.VitalsSchedule
    vitals_schedule: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    #: titration steps (docs/clinical-basis.md §3); used by the timeline/titration work
    rate_plan: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc, default=list)
    #: pre-treatment checklist shown before "proceed": [{"code", "label", "required"}]
    pretreatment_checks: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc, default=list, server_default="[]")
    source: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class Patient(Base):
    __tablename__ = "patient"
    __table_args__ = (
        CheckConstraint("news2_spo2_scale IN (1, 2)", name="news2_spo2_scale"),
        Index("ix_patient_name", "family_name", "given_name", "id"),  # the pickers' first 500 by name
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    mrn: Mapped[str] = mapped_column(String(40), unique=True)
    family_name: Mapped[str] = mapped_column(String(100))
    given_name: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[date | None] = mapped_column(Date)
    diagnosis: Mapped[str] = mapped_column(String(80), default="")
    allergies: Mapped[str] = mapped_column(Text, default="")
    weight_kg: Mapped[float | None] = mapped_column(Float)
    #: for home infusion; never in a de-identified export
    address: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(40))
    #: NEWS2 SpO2 scale (RCP Chart 1): 2 for hypercapnic respiratory failure, set by a clinician (audited)
    news2_spo2_scale: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AppUser(Base):
    """A member of staff. Until sign-in exists the nurse picks herself on the page."""

    __tablename__ = "app_user"
    __table_args__ = (
        CheckConstraint(_in("role", ROLES), name="role"),
        Index("uq_app_user_email", "email", unique=True),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(20), default=Role.NURSE)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    #: identity from single sign-on (st.login / OIDC), matched on sign-in
    email: Mapped[str | None] = mapped_column(String(200))
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: the role applies at every site (network manager, network quality, administrator); otherwise
    #: only at the sites in `user_site`
    network_wide: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    #: the site the person last chose to work in (the site picker remembers it)
    last_site_id: Mapped[int | None] = mapped_column(ForeignKey("clinic.id"))


class UserSite(Base):
    """A site where a (not network-wide) user holds their role."""

    __tablename__ = "user_site"

    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("clinic.id"), primary_key=True, index=True)


class InfusionSession(Base):
    __tablename__ = "infusion_session"
    __table_args__ = (
        CheckConstraint(_in("status", SESSION_STATUSES), name="status"),
        CheckConstraint("worst_grade IS NULL OR worst_grade BETWEEN 1 AND 5", name="worst_grade"),
        Index(
            "uq_session_active_chair",
            "chair_id",
            unique=True,
            sqlite_where=text(_ACTIVE_IN_CHAIR_SQLITE),
            postgresql_where=text(_ACTIVE_IN_CHAIR_PG),
        ),
        Index(
            "uq_session_active_patient",
            "patient_id",
            unique=True,
            sqlite_where=text(_ACTIVE_SQL),
            postgresql_where=text(_ACTIVE_SQL),
        ),
        Index("ix_session_scheduled_at", "scheduled_at"),
        Index("ix_session_therapy_scheduled", "therapy_id", "scheduled_at"),
        Index("ix_session_chair_scheduled", "chair_id", "scheduled_at"),
        Index("ix_session_patient_therapy", "patient_id", "therapy_id", "scheduled_at"),
        Index("ix_session_status", "status"),
        Index("ix_session_checked_in", "checked_in_at"),
        Index("ix_session_therapy_checked_in", "therapy_id", "checked_in_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    therapy_id: Mapped[int] = mapped_column(ForeignKey("therapy.id"))
    chair_id: Mapped[int] = mapped_column(ForeignKey("chair.id"))
    dose: Mapped[float | None] = mapped_column(Float)
    dose_unit: Mapped[str] = mapped_column(String(20), default="mg")
    infusion_number: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(20), default=SessionStatus.SCHEDULED)
    walk_in: Mapped[bool] = mapped_column(Boolean, default=False)
    #: a home infusion (the location is a home-visit "chair"); follows the same lifecycle
    at_home: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    iv_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    iv_stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    discharged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # cancelled / deferred

    deferral_reason: Mapped[str | None] = mapped_column(Text)
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    early_discharge_reason: Mapped[str | None] = mapped_column(Text)
    premed_override_reason: Mapped[str | None] = mapped_column(Text)
    long_infusion_flag: Mapped[bool] = mapped_column(Boolean, default=False)
    #: course position where the therapy runs in courses (Lemtrada "course 1, day 3 of 5")
    course_number: Mapped[int | None] = mapped_column(Integer)
    course_day: Mapped[int | None] = mapped_column(Integer)
    #: why the dose differs from the one the schedule expects
    dose_reason: Mapped[str | None] = mapped_column(Text)
    #: discharge education given: ["rest", "delayed_reactions", "whom_to_call", ...]
    education: Mapped[list[str]] = mapped_column(JSONDoc, default=list, server_default="[]")

    iv_site: Mapped[str | None] = mapped_column(String(80))
    iv_gauge: Mapped[int | None] = mapped_column(Integer)
    iv_attempts: Mapped[int | None] = mapped_column(Integer)
    lot_number: Mapped[str | None] = mapped_column(String(60))
    current_rate_ml_h: Mapped[float | None] = mapped_column(Float)

    # summaries kept on write
    baseline_systolic: Mapped[int | None] = mapped_column(Integer)
    reaction_count: Mapped[int] = mapped_column(Integer, default=0)
    worst_grade: Mapped[int | None] = mapped_column(Integer)
    infusion_minutes: Mapped[float | None] = mapped_column(Float)
    chair_minutes: Mapped[float | None] = mapped_column(Float)
    last_vitals_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class _EntryMixin:
    """Columns every clinical entry shares: who/when entered, status, correction link."""

    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default=EntryStatus.ACTIVE)
    correction_reason: Mapped[str | None] = mapped_column(Text)
    client_token: Mapped[str | None] = mapped_column(String(64), unique=True)


def _replaces_index(name: str) -> Index:
    """The correction link read backwards ("which entry replaced this one": an entry's history, and the
    foreign key's check when a row is deleted): only the few corrected rows, partial (migration 0014).
    Without it both walk the whole table (0.5-2.5 s at a million sessions)."""
    return Index(
        name,
        "replaces_id",
        sqlite_where=text("replaces_id IS NOT NULL"),
        postgresql_where=text("replaces_id IS NOT NULL"),
    )


class VitalSign(_EntryMixin, Base):
    __tablename__ = "vital_sign"
    __table_args__ = (
        CheckConstraint(_in("status", ENTRY_STATUSES), name="status"),
        CheckConstraint("phase IN ('pre', 'infusion', 'observation')", name="phase"),
        Index("ix_vital_session_taken", "session_id", "taken_at"),
        _replaces_index("ix_vital_replaces"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"))
    phase: Mapped[str] = mapped_column(String(12))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    systolic: Mapped[int | None] = mapped_column(Integer)
    diastolic: Mapped[int | None] = mapped_column(Integer)
    pulse: Mapped[int | None] = mapped_column(Integer)
    resp_rate: Mapped[int | None] = mapped_column(Integer)
    temperature_c: Mapped[float | None] = mapped_column(Float)
    spo2: Mapped[int | None] = mapped_column(Integer)
    pain: Mapped[int | None] = mapped_column(Integer)
    weight_kg: Mapped[float | None] = mapped_column(Float)
    consciousness: Mapped[str] = mapped_column(String(1), default="A")
    on_oxygen: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[str | None] = mapped_column(String(20))
    #: {"spo2": "cold fingers"}: which value could not be obtained, and why
    unable_to_obtain: Mapped[dict[str, str]] = mapped_column(JSONDoc, default=dict)
    provider_notified: Mapped[bool] = mapped_column(Boolean, default=False)
    provider_name: Mapped[str | None] = mapped_column(String(120))
    provider_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: [{"field": "temperature_c", "code": "temp_high", "message": "..."}]
    flags: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc, default=list)
    flag_count: Mapped[int] = mapped_column(Integer, default=0)
    news2: Mapped[int | None] = mapped_column(Integer)
    news2_complete: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("vital_sign.id"))


class Premedication(_EntryMixin, Base):
    __tablename__ = "premedication"
    __table_args__ = (
        CheckConstraint(_in("status", ENTRY_STATUSES), name="status"),
        Index("ix_premed_session", "session_id", "given_at"),
        _replaces_index("ix_premed_replaces"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"))
    drug: Mapped[str] = mapped_column(String(120))  # as typed, or the picked drug's name; identified files only
    dose: Mapped[str] = mapped_column(String(60))  # as typed, or "25 mg" from the coded dose
    route: Mapped[str] = mapped_column(String(20), default="IV")  # a code of premedication.ROUTES
    # coded (migration 0007; infusion.clinical.premedication): what de-identified exports show
    drug_code: Mapped[str | None] = mapped_column(String(40))
    dose_value: Mapped[float | None] = mapped_column(Float)
    dose_unit: Mapped[str | None] = mapped_column(String(20))
    given_at: Mapped[datetime] = mapped_column(UTCDateTime)
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("premedication.id"))


class ProgramCheck(Base):
    """Confirmation that a program checklist (TOUCH, Lemtrada REMS) was completed."""

    __tablename__ = "program_check"
    __table_args__ = (UniqueConstraint("session_id", "program", name="uq_program_check_session_program"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"))
    program: Mapped[str] = mapped_column(String(40))
    authorization_ref: Mapped[str | None] = mapped_column(String(80))
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))


class RateChange(_EntryMixin, Base):
    __tablename__ = "rate_change"
    __table_args__ = (
        CheckConstraint(_in("status", ENTRY_STATUSES), name="status"),
        CheckConstraint("kind IN ('start', 'change', 'pause', 'resume', 'stop')", name="kind"),
        Index("ix_rate_session_at", "session_id", "at"),
        _replaces_index("ix_rate_replaces"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(10))
    rate_ml_h: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("rate_change.id"))


class Reaction(_EntryMixin, Base):
    __tablename__ = "reaction"
    __table_args__ = (
        CheckConstraint(_in("status", ENTRY_STATUSES), name="status"),
        CheckConstraint("grade BETWEEN 1 AND 5", name="grade"),
        Index("ix_reaction_session_onset", "session_id", "onset_at"),
        _replaces_index("ix_reaction_replaces"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"))
    onset_at: Mapped[datetime] = mapped_column(UTCDateTime)
    symptoms: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    other_text: Mapped[str | None] = mapped_column(Text)
    grade: Mapped[int] = mapped_column(Integer)
    actions: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    medication_given: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider_notified: Mapped[bool] = mapped_column(Boolean, default=False)
    provider_name: Mapped[str | None] = mapped_column(String(120))
    note: Mapped[str | None] = mapped_column(Text)
    #: reported after discharge (next-day follow-up): reactions occur up to 24 h after an infusion
    delayed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("reaction.id"))


class AuditEvent(Base):
    """Append-only: the application inserts audit rows and never updates or deletes them."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_at", "at"),
        Index("ix_audit_session_at", "session_id", "at"),
        Index("ix_audit_entity", "entity", "entity_id"),
        Index("ix_audit_site_at", "site_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    user_name: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(60))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int | None] = mapped_column(BigInteger)
    session_id: Mapped[int | None] = mapped_column(BigInteger)
    patient_id: Mapped[int | None] = mapped_column(BigInteger)
    #: the site the event is about (its session's chair's, the clinic or chair changed, a patient's
    #: site); None for network events (accounts, catalog, exports, searches). Who may read an event:
    #: infusion.reads.audit_log. Set once at insert (services.audit.record), like every column here.
    site_id: Mapped[int | None] = mapped_column(BigInteger)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    reason: Mapped[str | None] = mapped_column(Text)


class SessionCorrection(Base):
    """A corrected session time or IV detail: the original value stays here, with who, when and why."""

    __tablename__ = "session_correction"
    __table_args__ = (Index("ix_session_correction_session", "session_id", "corrected_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"))
    field: Mapped[str] = mapped_column(String(40))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    corrected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    corrected_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))


class Addendum(Base):
    """After discharge the record is amended only by addendum (docs/clinical-basis.md §12, AHIMA)."""

    __tablename__ = "addendum"
    __table_args__ = (Index("ix_addendum_session", "session_id", "written_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"))
    text: Mapped[str] = mapped_column(Text)
    written_at: Mapped[datetime] = mapped_column(UTCDateTime)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))


class PatientProtocol(Base):
    """A clinic-set dosing interval for one patient and therapy (IVIG, cyclophosphamide: by protocol)."""

    __tablename__ = "patient_protocol"
    __table_args__ = (UniqueConstraint("patient_id", "therapy_id", name="uq_patient_protocol_patient_therapy"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    therapy_id: Mapped[int] = mapped_column(ForeignKey("therapy.id"))
    interval_days: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class PretreatmentAnswer(Base):
    """One answer of the pre-treatment checklist at check-in, kept with the session."""

    __tablename__ = "pretreatment_answer"
    __table_args__ = (Index("ix_pretreatment_session", "session_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"))
    code: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(Text)
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    answer: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))


class FollowUp(Base):
    """The next-day call after a discharge: reached or not, and any delayed reaction."""

    __tablename__ = "follow_up"
    __table_args__ = (
        CheckConstraint("outcome IN ('pending', 'reached', 'not_reached')", name="outcome"),
        UniqueConstraint("session_id", name="uq_follow_up_session"),
        Index("ix_follow_up_outcome", "outcome"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"))
    outcome: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    called_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    note: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class SignInToken(Base):
    """A signed-in browser: survives a reload and a tablet waking up, until sign-out, idle limit or expiry.

    Only the SHA-256 of the token is stored; the browser holds the token itself in
    a cookie (never in the URL). Revoking sets `revoked_at`; rows are kept for audit.
    """

    __tablename__ = "sign_in_token"
    __table_args__ = (
        UniqueConstraint("token_hash", name="uq_sign_in_token_hash"),
        Index("ix_sign_in_token_user", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoke_reason: Mapped[str | None] = mapped_column(String(40))
    #: set for a wall display: the screen's name; the token then reads the chair board only
    display_name: Mapped[str | None] = mapped_column(String(80))
    #: a wall display's site: the board it shows (NULL: the first site, as before the network)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("clinic.id"))


# --- Trend summaries (migration 0009; maintained by infusion.reads.trends.maintenance) --------------------


class TrendSession(Base):
    """One checked-in session as the Trends figures read it, recomputed from its raw rows in the same
    transaction as every write that touches the session (infusion.reads.trends.maintenance)."""

    __tablename__ = "trend_session"
    __table_args__ = (
        Index("ix_trend_session_day", "local_day", "therapy_id"),
        Index("ix_trend_session_site_day", "site_id", "local_day"),
        # vitals overdue: per therapy, the sessions whose longest gap is over its interval (migration 0012)
        Index("ix_trend_session_therapy_gap", "therapy_id", "gap_minutes"),
        # the completeness listings: the few flagged sessions of a period, not every session of it
        Index(
            "ix_trend_session_no_iv_stop",
            "local_day",
            sqlite_where=text("iv_stop_applies = 1 AND iv_stop_missing = 1"),
            postgresql_where=text("iv_stop_applies AND iv_stop_missing"),
        ),
        Index(
            "ix_trend_session_no_pre_vitals",
            "local_day",
            sqlite_where=text("pre_vitals_missing = 1"),
            postgresql_where=text("pre_vitals_missing"),
        ),
    )

    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_session.id"), primary_key=True)
    site_id: Mapped[int] = mapped_column(Integer)  # the chair's site
    local_day: Mapped[date] = mapped_column(Date)  # site-local day of check-in
    therapy_id: Mapped[int] = mapped_column(Integer)
    chair_id: Mapped[int] = mapped_column(Integer)
    at_home: Mapped[bool] = mapped_column(Boolean, default=False)
    infusion_number: Mapped[int] = mapped_column(Integer)
    nurse_id: Mapped[int | None] = mapped_column(Integer)  # the IV start's nurse (active 'start' entry)
    status: Mapped[str] = mapped_column(String(20))
    completed: Mapped[bool] = mapped_column(Boolean)  # discharged
    reacted: Mapped[bool] = mapped_column(Boolean)  # ≥ 1 active reaction
    worst_grade: Mapped[int | None] = mapped_column(Integer)
    reacted_during: Mapped[bool] = mapped_column(Boolean)  # an active reaction not marked delayed
    reacted_after: Mapped[bool] = mapped_column(Boolean)  # an active delayed one ≤ 24 h after discharge
    infusion_minutes: Mapped[float | None] = mapped_column(Float)
    chair_minutes: Mapped[float | None] = mapped_column(Float)
    start_epoch: Mapped[float | None] = mapped_column(Float)  # check-in, epoch seconds
    end_epoch: Mapped[float | None] = mapped_column(Float)  # discharge or close; NULL while open
    iv_stop_applies: Mapped[bool] = mapped_column(Boolean)
    iv_stop_missing: Mapped[bool] = mapped_column(Boolean)
    pre_vitals_missing: Mapped[bool] = mapped_column(Boolean)
    #: longest gap (minutes) between IV start, the active vitals during the infusion and IV stop;
    #: NULL unless discharged with both IV times
    gap_minutes: Mapped[float | None] = mapped_column(Float)


class TrendDaily(Base):
    """Sums of trend_session per site × site-local day × therapy × location × infusion band (0 = 1st,
    1 = 2nd, 2 = later), kept by deltas in the writing transaction. Not per chair: measured, day × therapy
    × chair made nearly one row per session (174,590 rows for 194,892 sessions); a chair or nurse filter
    reads trend_session."""

    __tablename__ = "trend_daily"

    site_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    local_day: Mapped[date] = mapped_column(Date, primary_key=True)
    therapy_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at_home: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    band: Mapped[int] = mapped_column(Integer, primary_key=True)
    checked_in: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    reacted: Mapped[int] = mapped_column(Integer, default=0)
    grade_1: Mapped[int] = mapped_column(Integer, default=0)
    grade_2: Mapped[int] = mapped_column(Integer, default=0)
    grade_3: Mapped[int] = mapped_column(Integer, default=0)
    grade_4: Mapped[int] = mapped_column(Integer, default=0)
    grade_5: Mapped[int] = mapped_column(Integer, default=0)
    reacted_during: Mapped[int] = mapped_column(Integer, default=0)
    reacted_after: Mapped[int] = mapped_column(Integer, default=0)
    iv_stop_applies: Mapped[int] = mapped_column(Integer, default=0)
    iv_stop_missing: Mapped[int] = mapped_column(Integer, default=0)
    pre_vitals_missing: Mapped[int] = mapped_column(Integer, default=0)
    gap_checked: Mapped[int] = mapped_column(Integer, default=0)  # completed sessions with a gap
    # time lost to reactions (migration 0017): completed sessions with infusion (chair) minutes and their
    # whole seconds, floor(minutes × 60) as the duration histogram sums them, in all and with a reaction
    infusion_n: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    infusion_seconds: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    chair_n: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    chair_seconds: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    reacted_infusion_n: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    reacted_infusion_seconds: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    reacted_chair_n: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    reacted_chair_seconds: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))


class TrendDuration(Base):
    """Histogram of completed sessions' durations per site × site-local month × therapy × location ×
    infusion number (4 = 4th onwards) × kind (0 = infusion minutes, 1 = chair minutes): one row per key,
    its 5-minute bins (`bin` = floor(minutes / 5)) packed in `bins` from bin `lo` upwards
    (infusion.reads.trends.histogram.pack), kept by deltas in the writing transaction like trend_daily.
    Per bin: `n` sessions, `edge` of them exactly on the bin's lower edge (so "longer than T" and "shorter
    than T" are exact for any T on a 5-minute mark) and `seconds`, the sum of floor(minutes × 60) (the
    mean exact to a second). Quartiles, minimum and maximum read from it are within one bin (5 minutes)
    of the exact values.

    Why packed (migration 0018): a row per bin made a year ~2,900 rows to read (4.5 ms of PostgreSQL
    execution at a million sessions); a row per key makes it ~350."""

    __tablename__ = "trend_duration_bins"

    site_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)  # first day of the site-local month
    therapy_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at_home: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)  # infusion number, capped at 4
    kind: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0 infusion, 1 chair
    lo: Mapped[int] = mapped_column(Integer)  # the first bin in `bins`
    #: little-endian int64 (n, edge, seconds) per bin from `lo` up
    bins: Mapped[bytes] = mapped_column(LargeBinary)


#: trend_duration_bins summed per site-local year (`month` = 1 January): a long period reads its whole
#: years here, the whole months around them from trend_duration_bins
trend_duration_year = Table(
    "trend_duration_bins_year", Base.metadata, *(c._copy() for c in TrendDuration.__table__.columns)
)


#: trend_daily summed per site-local month (migration 0012), kept by the same deltas: a period reads its
#: whole months here and only the days of the months it covers in part from trend_daily, so five years of
#: rates read ~60 rows per therapy and band, not ~1,800.
trend_monthly = Table(
    "trend_monthly",
    Base.metadata,
    Column("site_id", Integer, primary_key=True),
    Column("month", Date, primary_key=True),  # first day of the site-local month
    Column("therapy_id", Integer, primary_key=True),
    Column("at_home", Boolean, primary_key=True),
    Column("band", Integer, primary_key=True),
    *(
        Column(c.name, c.type, nullable=False, server_default=text("0"))
        for c in TrendDaily.__table__.columns
        if not c.primary_key
    ),
)


#: chair use per hour of the week: slot = site-local weekday (0 = Monday) × 24 + hour
CHAIR_USE_SLOTS = 7 * 24

#: Milliseconds each chair was occupied in each hour of the week (`h0` … `h167`) per site-local month,
#: by closed sessions (check-in to discharge or close), kept by deltas in the writing transaction
#: (infusion.reads.trends.chair_use). One wide row per chair × month: a year of a 20-chair clinic is
#: 240 rows, whatever the number of sessions. Sessions still open are added at read time. `chair_id` 0
#: (migration 0016, chair_use.EVERY_CHAIR): the site's treatment chairs together (sessions not at home).
trend_chair_use = Table(
    "trend_chair_use",
    Base.metadata,
    Column("site_id", Integer, primary_key=True),
    Column("chair_id", Integer, primary_key=True),
    Column("month", Date, primary_key=True),  # first day of the slot's site-local month
    *(Column(f"h{i}", BigInteger, nullable=False, server_default=text("0")) for i in range(CHAIR_USE_SLOTS)),
)
#: trend_chair_use summed per site-local year (`month` = 1 January)
trend_chair_use_year = Table("trend_chair_use_year", Base.metadata, *(c._copy() for c in trend_chair_use.columns))


class TrendVersion(Base):
    """One row: bumped in the same transaction as any change of a trend summary. The Trends cache key,
    so a write from any server process refreshes every cached figure and nothing else does."""

    __tablename__ = "trend_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


# --- Due list summary (migration 0011; maintained by infusion.reads.due_summary) --------------------------


class DuePair(Base):
    """One patient × therapy with an infusion given, planned as the due list shows it: recomputed from the
    raw rows (all of the patient's pairs, since a later rhythm therapy supersedes an earlier one) in the same
    transaction as every write that moves a given dose, a protocol interval, the catalog or a site's zone
    (infusion.reads.due_summary). Days and the plan are in the zone of `site_id`, the site of the last
    given infusion."""

    __tablename__ = "due_pair"
    __table_args__ = (Index("ix_due_pair_site_next_due", "site_id", "next_due"),)

    patient_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    therapy_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(Integer)  # the chair's site of the last given infusion
    first_day: Mapped[date] = mapped_column(Date)  # site-local day of the first IV start
    last_day: Mapped[date] = mapped_column(Date)  # site-local day of the last IV start
    next_due: Mapped[date | None] = mapped_column(Date)
    course_label: Mapped[str] = mapped_column(Text)
    expected_dose: Mapped[float | None] = mapped_column(Float)
    dose_unit: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text)
    course_number: Mapped[int | None] = mapped_column(Integer)
    course_day: Mapped[int | None] = mapped_column(Integer)
    #: the patient has since started another therapy with a rhythm: not listed
    superseded: Mapped[bool] = mapped_column(Boolean)
    #: a person marked the course ended (a `course_end` row in force, migration 0015): not listed
    ended: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


# --- Ended courses (migration 0015; written by infusion.services.courses) ---------------------------------


class CourseEnd(Base):
    """A patient × therapy course marked ended by a person (who, when, why): the due list and the protocol
    table leave the pair out while the mark is in force (`resumed_at` is NULL). Resuming fills the resume
    columns of the same row (who, when, why); nothing is overwritten or deleted, and a pair ended again
    gets a new row. At most one mark in force per pair (a partial unique index)."""

    __tablename__ = "course_end"
    __table_args__ = (
        CheckConstraint(_in("reason", REASON_CODES), name="reason"),
        Index("ix_course_end_pair", "patient_id", "therapy_id"),
        Index(
            "uq_course_end_in_force",
            "patient_id",
            "therapy_id",
            unique=True,
            sqlite_where=text("resumed_at IS NULL"),
            postgresql_where=text("resumed_at IS NULL"),
        ),
        Index("ix_course_end_site", "site_id", "ended_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    therapy_id: Mapped[int] = mapped_column(ForeignKey("therapy.id"))
    #: the site the pair was listed at when it was ended (its "Ended courses" list)
    site_id: Mapped[int] = mapped_column(ForeignKey("clinic.id"))
    reason: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    ended_by_name: Mapped[str] = mapped_column(String(120))
    client_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    resumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resumed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    resumed_by_name: Mapped[str | None] = mapped_column(String(120))
    resume_reason: Mapped[str | None] = mapped_column(Text)
