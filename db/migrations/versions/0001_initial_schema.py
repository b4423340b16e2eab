"""Initial schema: clinic, chairs, therapy catalog, patients, staff, sessions and their entries, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 16:28:31.241702

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""

    op.create_table(
        "app_user",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("username", sa.String(length=80), nullable=False),
        sa.Column("display_name", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('nurse', 'charge_nurse', 'manager', 'quality', 'admin')", name=op.f("ck_app_user_role")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
        sa.UniqueConstraint("username", name=op.f("uq_app_user_username")),
    )
    op.create_table(
        "chair",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.CheckConstraint("kind IN ('chair', 'home')", name=op.f("ck_chair_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chair")),
        sa.UniqueConstraint("name", name=op.f("uq_chair_name")),
    )
    op.create_table(
        "clinic",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("temperature_unit", sa.String(length=1), nullable=False),
        sa.Column("weight_unit", sa.String(length=2), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column(
            "settings", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("temperature_unit IN ('C', 'F')", name=op.f("ck_clinic_temperature_unit")),
        sa.CheckConstraint("weight_unit IN ('kg', 'lb')", name=op.f("ck_clinic_weight_unit")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clinic")),
    )
    op.create_table(
        "patient",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("mrn", sa.String(length=40), nullable=False),
        sa.Column("family_name", sa.String(length=100), nullable=False),
        sa.Column("given_name", sa.String(length=100), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("diagnosis", sa.String(length=80), nullable=False),
        sa.Column("allergies", sa.Text(), nullable=False),
        sa.Column("weight_kg", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient")),
        sa.UniqueConstraint("mrn", name=op.f("uq_patient_mrn")),
    )
    op.create_table(
        "therapy",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("brand", sa.String(length=80), nullable=True),
        sa.Column("route", sa.String(length=10), nullable=False),
        sa.Column("default_dose", sa.Float(), nullable=True),
        sa.Column("dose_unit", sa.String(length=20), nullable=False),
        sa.Column("dosing_text", sa.Text(), nullable=False),
        sa.Column("dosing_interval_days", sa.Integer(), nullable=True),
        sa.Column("min_interval_days", sa.Integer(), nullable=True),
        sa.Column(
            "duration_windows",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "observation_rules",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("premedication_required", sa.Boolean(), nullable=False),
        sa.Column("premedication_text", sa.Text(), nullable=False),
        sa.Column("program", sa.String(length=40), nullable=True),
        sa.Column(
            "vitals_schedule",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "rate_plan", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_therapy")),
        sa.UniqueConstraint("code", name=op.f("uq_therapy_code")),
    )
    op.create_table(
        "audit_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("user_name", sa.String(length=120), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("entity_id", sa.BigInteger(), nullable=True),
        sa.Column("session_id", sa.BigInteger(), nullable=True),
        sa.Column("patient_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "before", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.Column(
            "after", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_audit_event_user_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index("ix_audit_at", ["at"], unique=False)
        batch_op.create_index("ix_audit_entity", ["entity", "entity_id"], unique=False)
        batch_op.create_index("ix_audit_session_at", ["session_id", "at"], unique=False)

    op.create_table(
        "infusion_session",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("patient_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("therapy_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("chair_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("dose", sa.Float(), nullable=True),
        sa.Column("dose_unit", sa.String(length=20), nullable=False),
        sa.Column("infusion_number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("walk_in", sa.Boolean(), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("iv_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("iv_stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("discharged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deferral_reason", sa.Text(), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("early_discharge_reason", sa.Text(), nullable=True),
        sa.Column("premed_override_reason", sa.Text(), nullable=True),
        sa.Column("long_infusion_flag", sa.Boolean(), nullable=False),
        sa.Column("iv_site", sa.String(length=80), nullable=True),
        sa.Column("iv_gauge", sa.Integer(), nullable=True),
        sa.Column("iv_attempts", sa.Integer(), nullable=True),
        sa.Column("lot_number", sa.String(length=60), nullable=True),
        sa.Column("current_rate_ml_h", sa.Float(), nullable=True),
        sa.Column("baseline_systolic", sa.Integer(), nullable=True),
        sa.Column("reaction_count", sa.Integer(), nullable=False),
        sa.Column("worst_grade", sa.Integer(), nullable=True),
        sa.Column("infusion_minutes", sa.Float(), nullable=True),
        sa.Column("chair_minutes", sa.Float(), nullable=True),
        sa.Column("last_vitals_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('scheduled', 'cancelled', 'deferred', 'checked_in', 'ready', 'infusing', 'paused', 'observation', 'discharged')",
            name=op.f("ck_infusion_session_status"),
        ),
        sa.CheckConstraint(
            "worst_grade IS NULL OR worst_grade BETWEEN 1 AND 5", name=op.f("ck_infusion_session_worst_grade")
        ),
        sa.ForeignKeyConstraint(["chair_id"], ["chair.id"], name=op.f("fk_infusion_session_chair_id_chair")),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["app_user.id"], name=op.f("fk_infusion_session_created_by_id_app_user")
        ),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], name=op.f("fk_infusion_session_patient_id_patient")),
        sa.ForeignKeyConstraint(["therapy_id"], ["therapy.id"], name=op.f("fk_infusion_session_therapy_id_therapy")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_infusion_session")),
    )
    with op.batch_alter_table("infusion_session", schema=None) as batch_op:
        batch_op.create_index("ix_session_chair_scheduled", ["chair_id", "scheduled_at"], unique=False)
        batch_op.create_index("ix_session_patient_therapy", ["patient_id", "therapy_id", "scheduled_at"], unique=False)
        batch_op.create_index("ix_session_scheduled_at", ["scheduled_at"], unique=False)
        batch_op.create_index("ix_session_status", ["status"], unique=False)
        batch_op.create_index("ix_session_therapy_scheduled", ["therapy_id", "scheduled_at"], unique=False)
        batch_op.create_index(
            "uq_session_active_chair",
            ["chair_id"],
            unique=True,
            sqlite_where=sa.text("status IN ('checked_in', 'ready', 'infusing', 'paused', 'observation')"),
            postgresql_where=sa.text("status IN ('checked_in', 'ready', 'infusing', 'paused', 'observation')"),
        )
        batch_op.create_index(
            "uq_session_active_patient",
            ["patient_id"],
            unique=True,
            sqlite_where=sa.text("status IN ('checked_in', 'ready', 'infusing', 'paused', 'observation')"),
            postgresql_where=sa.text("status IN ('checked_in', 'ready', 'infusing', 'paused', 'observation')"),
        )

    op.create_table(
        "premedication",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("drug", sa.String(length=120), nullable=False),
        sa.Column("dose", sa.String(length=60), nullable=False),
        sa.Column("route", sa.String(length=20), nullable=False),
        sa.Column("given_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entered_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("replaces_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("correction_reason", sa.Text(), nullable=True),
        sa.Column("client_token", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'corrected', 'entered_in_error')", name=op.f("ck_premedication_status")
        ),
        sa.ForeignKeyConstraint(
            ["entered_by_id"], ["app_user.id"], name=op.f("fk_premedication_entered_by_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["replaces_id"], ["premedication.id"], name=op.f("fk_premedication_replaces_id_premedication")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["infusion_session.id"], name=op.f("fk_premedication_session_id_infusion_session")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_premedication")),
        sa.UniqueConstraint("client_token", name=op.f("uq_premedication_client_token")),
    )
    with op.batch_alter_table("premedication", schema=None) as batch_op:
        batch_op.create_index("ix_premed_session", ["session_id", "given_at"], unique=False)

    op.create_table(
        "program_check",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("program", sa.String(length=40), nullable=False),
        sa.Column("authorization_ref", sa.String(length=80), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.ForeignKeyConstraint(
            ["confirmed_by_id"], ["app_user.id"], name=op.f("fk_program_check_confirmed_by_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["infusion_session.id"], name=op.f("fk_program_check_session_id_infusion_session")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_program_check")),
        sa.UniqueConstraint("session_id", "program", name="uq_program_check_session_program"),
    )
    op.create_table(
        "rate_change",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("rate_ml_h", sa.Float(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("entered_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("replaces_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("correction_reason", sa.Text(), nullable=True),
        sa.Column("client_token", sa.String(length=64), nullable=True),
        sa.CheckConstraint("kind IN ('start', 'change', 'pause', 'resume', 'stop')", name=op.f("ck_rate_change_kind")),
        sa.CheckConstraint("status IN ('active', 'corrected', 'entered_in_error')", name=op.f("ck_rate_change_status")),
        sa.ForeignKeyConstraint(["entered_by_id"], ["app_user.id"], name=op.f("fk_rate_change_entered_by_id_app_user")),
        sa.ForeignKeyConstraint(
            ["replaces_id"], ["rate_change.id"], name=op.f("fk_rate_change_replaces_id_rate_change")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["infusion_session.id"], name=op.f("fk_rate_change_session_id_infusion_session")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_change")),
        sa.UniqueConstraint("client_token", name=op.f("uq_rate_change_client_token")),
    )
    with op.batch_alter_table("rate_change", schema=None) as batch_op:
        batch_op.create_index("ix_rate_session_at", ["session_id", "at"], unique=False)

    op.create_table(
        "reaction",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("onset_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "symptoms", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("other_text", sa.Text(), nullable=True),
        sa.Column("grade", sa.Integer(), nullable=False),
        sa.Column(
            "actions", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("medication_given", sa.Text(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider_notified", sa.Boolean(), nullable=False),
        sa.Column("provider_name", sa.String(length=120), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("entered_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("replaces_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("correction_reason", sa.Text(), nullable=True),
        sa.Column("client_token", sa.String(length=64), nullable=True),
        sa.CheckConstraint("status IN ('active', 'corrected', 'entered_in_error')", name=op.f("ck_reaction_status")),
        sa.CheckConstraint("grade BETWEEN 1 AND 5", name=op.f("ck_reaction_grade")),
        sa.ForeignKeyConstraint(["entered_by_id"], ["app_user.id"], name=op.f("fk_reaction_entered_by_id_app_user")),
        sa.ForeignKeyConstraint(["replaces_id"], ["reaction.id"], name=op.f("fk_reaction_replaces_id_reaction")),
        sa.ForeignKeyConstraint(
            ["session_id"], ["infusion_session.id"], name=op.f("fk_reaction_session_id_infusion_session")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reaction")),
        sa.UniqueConstraint("client_token", name=op.f("uq_reaction_client_token")),
    )
    with op.batch_alter_table("reaction", schema=None) as batch_op:
        batch_op.create_index("ix_reaction_session_onset", ["session_id", "onset_at"], unique=False)

    op.create_table(
        "vital_sign",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("phase", sa.String(length=12), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entered_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("systolic", sa.Integer(), nullable=True),
        sa.Column("diastolic", sa.Integer(), nullable=True),
        sa.Column("pulse", sa.Integer(), nullable=True),
        sa.Column("resp_rate", sa.Integer(), nullable=True),
        sa.Column("temperature_c", sa.Float(), nullable=True),
        sa.Column("spo2", sa.Integer(), nullable=True),
        sa.Column("pain", sa.Integer(), nullable=True),
        sa.Column("weight_kg", sa.Float(), nullable=True),
        sa.Column("consciousness", sa.String(length=1), nullable=False),
        sa.Column("on_oxygen", sa.Boolean(), nullable=False),
        sa.Column("position", sa.String(length=20), nullable=True),
        sa.Column(
            "unable_to_obtain",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("provider_notified", sa.Boolean(), nullable=False),
        sa.Column("provider_name", sa.String(length=120), nullable=True),
        sa.Column("provider_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "flags", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("flag_count", sa.Integer(), nullable=False),
        sa.Column("news2", sa.Integer(), nullable=True),
        sa.Column("news2_complete", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("replaces_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("correction_reason", sa.Text(), nullable=True),
        sa.Column("client_token", sa.String(length=64), nullable=True),
        sa.CheckConstraint("phase IN ('pre', 'infusion', 'observation')", name=op.f("ck_vital_sign_phase")),
        sa.CheckConstraint("status IN ('active', 'corrected', 'entered_in_error')", name=op.f("ck_vital_sign_status")),
        sa.ForeignKeyConstraint(["entered_by_id"], ["app_user.id"], name=op.f("fk_vital_sign_entered_by_id_app_user")),
        sa.ForeignKeyConstraint(["replaces_id"], ["vital_sign.id"], name=op.f("fk_vital_sign_replaces_id_vital_sign")),
        sa.ForeignKeyConstraint(
            ["session_id"], ["infusion_session.id"], name=op.f("fk_vital_sign_session_id_infusion_session")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vital_sign")),
        sa.UniqueConstraint("client_token", name=op.f("uq_vital_sign_client_token")),
    )
    with op.batch_alter_table("vital_sign", schema=None) as batch_op:
        batch_op.create_index("ix_vital_session_taken", ["session_id", "taken_at"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""

    with op.batch_alter_table("vital_sign", schema=None) as batch_op:
        batch_op.drop_index("ix_vital_session_taken")

    op.drop_table("vital_sign")
    with op.batch_alter_table("reaction", schema=None) as batch_op:
        batch_op.drop_index("ix_reaction_session_onset")

    op.drop_table("reaction")
    with op.batch_alter_table("rate_change", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_session_at")

    op.drop_table("rate_change")
    op.drop_table("program_check")
    with op.batch_alter_table("premedication", schema=None) as batch_op:
        batch_op.drop_index("ix_premed_session")

    op.drop_table("premedication")
    with op.batch_alter_table("infusion_session", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_session_active_patient",
            sqlite_where=sa.text("status IN ('checked_in', 'ready', 'infusing', 'paused', 'observation')"),
            postgresql_where=sa.text("status IN ('checked_in', 'ready', 'infusing', 'paused', 'observation')"),
        )
        batch_op.drop_index(
            "uq_session_active_chair",
            sqlite_where=sa.text("status IN ('checked_in', 'ready', 'infusing', 'paused', 'observation')"),
            postgresql_where=sa.text("status IN ('checked_in', 'ready', 'infusing', 'paused', 'observation')"),
        )
        batch_op.drop_index("ix_session_therapy_scheduled")
        batch_op.drop_index("ix_session_status")
        batch_op.drop_index("ix_session_scheduled_at")
        batch_op.drop_index("ix_session_patient_therapy")
        batch_op.drop_index("ix_session_chair_scheduled")

    op.drop_table("infusion_session")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_session_at")
        batch_op.drop_index("ix_audit_entity")
        batch_op.drop_index("ix_audit_at")

    op.drop_table("audit_event")
    op.drop_table("therapy")
    op.drop_table("patient")
    op.drop_table("clinic")
    op.drop_table("chair")
    op.drop_table("app_user")
