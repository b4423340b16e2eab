"""Indexes for trend queries, which bucket sessions by their check-in time.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_session_checked_in", "infusion_session", ["checked_in_at"])
    op.create_index("ix_session_therapy_checked_in", "infusion_session", ["therapy_id", "checked_in_at"])


def downgrade() -> None:
    op.drop_index("ix_session_therapy_checked_in", table_name="infusion_session")
    op.drop_index("ix_session_checked_in", table_name="infusion_session")
