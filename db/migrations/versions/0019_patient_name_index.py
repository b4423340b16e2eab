"""An index on the patient's name (family, given, then id for namesakes): the patient pickers (walk-in,
booking) list a site's first 500 patients by name, and with it the database walks the names in order and
stops at 500 instead of testing every patient of the network and sorting them all (1 M sessions, 21,500
patients: 300 ms → 17 ms on both engines). The id makes the cut at 500 the same on every run and engine.

Revision ID: 0019
Revises: 0018
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_patient_name", "patient", ["family_name", "given_name", "id"])


def downgrade() -> None:
    op.drop_index("ix_patient_name", table_name="patient")
