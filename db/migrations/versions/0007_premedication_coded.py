"""Premedication as coded choices: drug code, dose number and unit (route already a column).

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("premedication") as batch:
        batch.add_column(sa.Column("drug_code", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("dose_value", sa.Float(), nullable=True))
        batch.add_column(sa.Column("dose_unit", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("premedication") as batch:
        batch.drop_column("dose_unit")
        batch.drop_column("dose_value")
        batch.drop_column("drug_code")
