"""Time lost to reactions from the count rollups: `trend_daily` and `trend_monthly` gain, per site × day
(month) × therapy × location × infusion band, the completed sessions with infusion minutes and with chair
minutes and their whole seconds (floor(minutes × 60), as `trend_duration` sums them), in all and with a
reaction. The Trends "time lost" figure then reads the rollup the reaction rates read (a few hundred rows)
instead of the duration histogram's bins (a few thousand).

Filled by the summary rebuild that runs once the database is at the newest revision (`request_rebuild`).

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.migrations.rebuild import request_rebuild

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the columns this revision adds, with their types (a migration keeps its own copy)
COLUMNS = (
    ("infusion_n", sa.Integer()),
    ("infusion_seconds", sa.BigInteger()),
    ("chair_n", sa.Integer()),
    ("chair_seconds", sa.BigInteger()),
    ("reacted_infusion_n", sa.Integer()),
    ("reacted_infusion_seconds", sa.BigInteger()),
    ("reacted_chair_n", sa.Integer()),
    ("reacted_chair_seconds", sa.BigInteger()),
)
TABLES = ("trend_daily", "trend_monthly")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            for name, kind in COLUMNS:
                batch.add_column(sa.Column(name, kind, nullable=False, server_default=sa.text("0")))
    request_rebuild("trends")


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            for name, _ in reversed(COLUMNS):
                batch.drop_column(name)
