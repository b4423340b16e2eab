"""Ended courses: `course_end`, a person's mark that a patient × therapy course has ended (who, when,
why; resumed in the same row, never overwritten), and `due_pair.ended`, kept in the writing transaction
like the rest of the summary (infusion.reads.due_summary): the due list leaves an ended pair out.

No course is ended at upgrade, so every `due_pair` row starts with `ended` false and no rebuild is needed.

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
#: the reason codes of infusion.clinical.course_end at this revision (a migration keeps its own copy)
REASONS = ("completed", "switched", "transferred", "declined", "died", "other")


def upgrade() -> None:
    op.create_table(
        "course_end",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("patient_id", BIGINT, nullable=False),
        sa.Column("therapy_id", BIGINT, nullable=False),
        sa.Column("site_id", BIGINT, nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_by_id", BIGINT, nullable=True),
        sa.Column("ended_by_name", sa.String(length=120), nullable=False),
        sa.Column("client_token", sa.String(length=64), nullable=True),
        sa.Column("resumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resumed_by_id", BIGINT, nullable=True),
        sa.Column("resumed_by_name", sa.String(length=120), nullable=True),
        sa.Column("resume_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "reason IN (" + ", ".join(f"'{r}'" for r in REASONS) + ")", name=op.f("ck_course_end_reason")
        ),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], name=op.f("fk_course_end_patient_id_patient")),
        sa.ForeignKeyConstraint(["therapy_id"], ["therapy.id"], name=op.f("fk_course_end_therapy_id_therapy")),
        sa.ForeignKeyConstraint(["site_id"], ["clinic.id"], name=op.f("fk_course_end_site_id_clinic")),
        sa.ForeignKeyConstraint(["ended_by_id"], ["app_user.id"], name=op.f("fk_course_end_ended_by_id_app_user")),
        sa.ForeignKeyConstraint(["resumed_by_id"], ["app_user.id"], name=op.f("fk_course_end_resumed_by_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_course_end")),
        sa.UniqueConstraint("client_token", name=op.f("uq_course_end_client_token")),
    )
    op.create_index("ix_course_end_pair", "course_end", ["patient_id", "therapy_id"])
    op.create_index("ix_course_end_site", "course_end", ["site_id", "ended_at"])
    in_force = sa.text("resumed_at IS NULL")
    op.create_index(
        "uq_course_end_in_force",
        "course_end",
        ["patient_id", "therapy_id"],
        unique=True,
        sqlite_where=in_force,
        postgresql_where=in_force,
    )
    op.add_column("due_pair", sa.Column("ended", sa.Boolean(), nullable=False, server_default=sa.text("false")))


def downgrade() -> None:
    with op.batch_alter_table("due_pair") as batch:
        batch.drop_column("ended")
    op.drop_index("uq_course_end_in_force", table_name="course_end")
    op.drop_index("ix_course_end_site", table_name="course_end")
    op.drop_index("ix_course_end_pair", table_name="course_end")
    op.drop_table("course_end")
