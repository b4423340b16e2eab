"""Around the session: per-patient protocol intervals, pre-treatment checklist answers,
next-day follow-up, delayed reactions, course position, discharge education, home address.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACTIVE = "status IN ('checked_in', 'ready', 'infusing', 'paused', 'observation')"
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.add_column("patient", sa.Column("address", sa.Text(), nullable=True))
    op.add_column("patient", sa.Column("phone", sa.String(length=40), nullable=True))
    op.add_column("therapy", sa.Column("pretreatment_checks", JSON, nullable=False, server_default="[]"))
    op.add_column("infusion_session", sa.Column("course_number", sa.Integer(), nullable=True))
    op.add_column("infusion_session", sa.Column("course_day", sa.Integer(), nullable=True))
    op.add_column("infusion_session", sa.Column("dose_reason", sa.Text(), nullable=True))
    op.add_column("infusion_session", sa.Column("education", JSON, nullable=False, server_default="[]"))
    op.add_column("reaction", sa.Column("delayed", sa.Boolean(), nullable=False, server_default=sa.text("false")))
    op.add_column(
        "infusion_session", sa.Column("at_home", sa.Boolean(), nullable=False, server_default=sa.text("false"))
    )
    # home visits share one location: only clinic chairs are limited to one active session
    op.drop_index("uq_session_active_chair", table_name="infusion_session")
    op.create_index(
        "uq_session_active_chair",
        "infusion_session",
        ["chair_id"],
        unique=True,
        sqlite_where=sa.text(ACTIVE + " AND at_home = 0"),
        postgresql_where=sa.text(ACTIVE + " AND NOT at_home"),
    )

    op.create_table(
        "patient_protocol",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("patient_id", BIGINT, nullable=False),
        sa.Column("therapy_id", BIGINT, nullable=False),
        sa.Column("interval_days", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("set_by_id", BIGINT, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], name=op.f("fk_patient_protocol_patient_id_patient")),
        sa.ForeignKeyConstraint(["therapy_id"], ["therapy.id"], name=op.f("fk_patient_protocol_therapy_id_therapy")),
        sa.ForeignKeyConstraint(["set_by_id"], ["app_user.id"], name=op.f("fk_patient_protocol_set_by_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_protocol")),
        sa.UniqueConstraint("patient_id", "therapy_id", name="uq_patient_protocol_patient_therapy"),
    )
    op.create_table(
        "pretreatment_answer",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("session_id", BIGINT, nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("answer", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_by_id", BIGINT, nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"], ["infusion_session.id"], name=op.f("fk_pretreatment_answer_session_id_infusion_session")
        ),
        sa.ForeignKeyConstraint(
            ["answered_by_id"], ["app_user.id"], name=op.f("fk_pretreatment_answer_answered_by_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pretreatment_answer")),
    )
    op.create_index("ix_pretreatment_session", "pretreatment_answer", ["session_id"])
    op.create_table(
        "follow_up",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("session_id", BIGINT, nullable=False),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("called_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("called_by_id", BIGINT, nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("outcome IN ('pending', 'reached', 'not_reached')", name=op.f("ck_follow_up_outcome")),
        sa.ForeignKeyConstraint(
            ["session_id"], ["infusion_session.id"], name=op.f("fk_follow_up_session_id_infusion_session")
        ),
        sa.ForeignKeyConstraint(["called_by_id"], ["app_user.id"], name=op.f("fk_follow_up_called_by_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_up")),
        sa.UniqueConstraint("session_id", name="uq_follow_up_session"),
    )
    op.create_index("ix_follow_up_outcome", "follow_up", ["outcome"])


def downgrade() -> None:
    op.drop_index("uq_session_active_chair", table_name="infusion_session")
    op.create_index(
        "uq_session_active_chair",
        "infusion_session",
        ["chair_id"],
        unique=True,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )
    with op.batch_alter_table("infusion_session") as batch_op:
        batch_op.drop_column("at_home")
    op.drop_index("ix_follow_up_outcome", table_name="follow_up")
    op.drop_table("follow_up")
    op.drop_index("ix_pretreatment_session", table_name="pretreatment_answer")
    op.drop_table("pretreatment_answer")
    op.drop_table("patient_protocol")
    for table, column in (
        ("reaction", "delayed"),
        ("infusion_session", "education"),
        ("infusion_session", "dose_reason"),
        ("infusion_session", "course_day"),
        ("infusion_session", "course_number"),
        ("therapy", "pretreatment_checks"),
        ("patient", "phone"),
        ("patient", "address"),
    ):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column(column)
