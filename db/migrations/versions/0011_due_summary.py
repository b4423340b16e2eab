"""Due list summary (issue 14): `due_pair`, one row per patient × therapy with an infusion given,
filled from the raw rows.

Kept in the writing transaction by infusion.reads.due_summary (SQLAlchemy session events); this
revision creates the table and asks for the same rebuild the app uses (run at head), so an existing database starts in step.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.migrations.rebuild import request_rebuild

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "due_pair",
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("therapy_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("next_due", sa.Date(), nullable=True),
        sa.Column("course_label", sa.Text(), nullable=False),
        sa.Column("expected_dose", sa.Float(), nullable=True),
        sa.Column("dose_unit", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("course_number", sa.Integer(), nullable=True),
        sa.Column("course_day", sa.Integer(), nullable=True),
        sa.Column("superseded", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("patient_id", "therapy_id", name="pk_due_pair"),
    )
    op.create_index("ix_due_pair_site_next_due", "due_pair", ["site_id", "next_due"])
    request_rebuild("due")  # at head, with the code that matches the head schema


def downgrade() -> None:
    op.drop_index("ix_due_pair_site_next_due", table_name="due_pair")
    op.drop_table("due_pair")
