"""Trend summaries (issue 14): trend_session, trend_daily and trend_version, filled from the raw rows.

The tables are kept in the writing transaction by infusion.reads.trends.maintenance
(a SQLAlchemy session event); this revision creates them; 0010 recreates them with the site and
runs the rebuild `python -m infusion.reads.trends.rebuild` runs, so an existing database
starts in step.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trend_session",
        sa.Column("session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("local_day", sa.Date(), nullable=False),
        sa.Column("therapy_id", sa.Integer(), nullable=False),
        sa.Column("chair_id", sa.Integer(), nullable=False),
        sa.Column("at_home", sa.Boolean(), nullable=False),
        sa.Column("infusion_number", sa.Integer(), nullable=False),
        sa.Column("nurse_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.Column("reacted", sa.Boolean(), nullable=False),
        sa.Column("worst_grade", sa.Integer(), nullable=True),
        sa.Column("reacted_during", sa.Boolean(), nullable=False),
        sa.Column("reacted_after", sa.Boolean(), nullable=False),
        sa.Column("infusion_minutes", sa.Float(), nullable=True),
        sa.Column("chair_minutes", sa.Float(), nullable=True),
        sa.Column("start_epoch", sa.Float(), nullable=True),
        sa.Column("end_epoch", sa.Float(), nullable=True),
        sa.Column("iv_stop_applies", sa.Boolean(), nullable=False),
        sa.Column("iv_stop_missing", sa.Boolean(), nullable=False),
        sa.Column("pre_vitals_missing", sa.Boolean(), nullable=False),
        sa.Column("gap_minutes", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"], ["infusion_session.id"], name="fk_trend_session_session_id_infusion_session"
        ),
        sa.PrimaryKeyConstraint("session_id", name="pk_trend_session"),
    )
    op.create_index("ix_trend_session_day", "trend_session", ["local_day", "therapy_id"])
    op.create_index("ix_trend_session_gap", "trend_session", ["gap_minutes", "local_day"])
    counts = (
        "checked_in completed reacted grade_1 grade_2 grade_3 grade_4 grade_5 reacted_during reacted_after "
        "iv_stop_applies iv_stop_missing pre_vitals_missing gap_checked"
    ).split()
    op.create_table(
        "trend_daily",
        sa.Column("local_day", sa.Date(), nullable=False),
        sa.Column("therapy_id", sa.Integer(), nullable=False),
        sa.Column("at_home", sa.Boolean(), nullable=False),
        sa.Column("band", sa.Integer(), nullable=False),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in counts),
        sa.PrimaryKeyConstraint("local_day", "therapy_id", "at_home", "band", name="pk_trend_daily"),
    )
    op.create_table(
        "trend_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_trend_version"),
    )
    # filled by 0010, which recreates these tables with the site and rebuilds them with today's code
    # (the rebuild here ran this revision's code against a later schema)


def downgrade() -> None:
    op.drop_table("trend_version")
    op.drop_table("trend_daily")
    op.drop_index("ix_trend_session_gap", table_name="trend_session")
    op.drop_index("ix_trend_session_day", table_name="trend_session")
    op.drop_table("trend_session")
