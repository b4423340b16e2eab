"""Chair use of a site's treatment chairs together: `trend_chair_use` and `trend_chair_use_year` gain one
row per site × month (× year) with `chair_id` 0, the slots of every session not at home, beside the
per-chair rows. Utilisation without a chair filter reads that row less the site's inactive chairs'
rows, one or a few rows per period piece instead of one per chair (about 2,000 rows of 168 slots for five
years of a 300-chair site: 20-30 ms on PostgreSQL).

No column changes; the rows come from the chair-use rebuild that runs once the database is at the
newest revision (`request_rebuild("chair_use")`). Downgrade deletes them.

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.migrations.rebuild import request_rebuild

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: infusion.reads.trends.chair_use.EVERY_CHAIR at this revision (a migration keeps its own copy)
EVERY_CHAIR = 0


def upgrade() -> None:
    request_rebuild("chair_use")


def downgrade() -> None:
    for table in ("trend_chair_use", "trend_chair_use_year"):
        op.execute(sa.text(f"DELETE FROM {table} WHERE chair_id = {EVERY_CHAIR}"))
