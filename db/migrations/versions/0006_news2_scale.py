"""NEWS2 SpO2 scale per patient: Scale 2 for hypercapnic respiratory failure, set by a clinician.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("patient") as batch:
        batch.add_column(sa.Column("news2_spo2_scale", sa.Integer(), nullable=False, server_default="1"))
        batch.create_check_constraint(op.f("ck_patient_news2_spo2_scale"), "news2_spo2_scale IN (1, 2)")


def downgrade() -> None:
    with op.batch_alter_table("patient") as batch:
        batch.drop_constraint(op.f("ck_patient_news2_spo2_scale"), type_="check")
        batch.drop_column("news2_spo2_scale")
