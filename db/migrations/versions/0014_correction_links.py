"""Partial indexes on the correction link (`replaces_id`) of the four entry tables.

An entry's history follows the link backwards (`WHERE replaces_id = :id`), and PostgreSQL checks the
same link when a row is deleted; without an index both walked the whole table (0.5-2.5 s at a million
sessions). Only corrected rows carry a link, so the indexes are partial and small.

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_vital_replaces", "vital_sign"),
    ("ix_premed_replaces", "premedication"),
    ("ix_rate_replaces", "rate_change"),
    ("ix_reaction_replaces", "reaction"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # a one-off scan of each entry table at upgrade: not a screen's query the timeout guards
        op.execute("SET LOCAL statement_timeout = 0")
    linked = sa.text("replaces_id IS NOT NULL")
    for name, table in INDEXES:
        op.create_index(name, table, ["replaces_id"], sqlite_where=linked, postgresql_where=linked)


def downgrade() -> None:
    for name, table in reversed(INDEXES):
        op.drop_index(name, table_name=table)
