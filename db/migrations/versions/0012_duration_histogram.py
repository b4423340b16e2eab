"""Duration histogram and chair use per hour of the week (issue 14): `trend_duration`, completed sessions' infusion and chair minutes in
5-minute bins per site × local month × therapy × location × reaction or not × infusion number, so the Trends durations read a
few thousand rows instead of every session of the period; `trend_chair_use`, the milliseconds each chair
was occupied in each hour of the week per local month (one wide row per chair × month), for utilisation;
`trend_monthly`, trend_daily per local month; `trend_duration_year` and `trend_chair_use_year`, the same
per local year; and trend_session indexes for the completeness listings (partial: flagged sessions only) and vitals overdue
(per therapy by longest gap).

Kept in the writing transaction by infusion.reads.trends.maintenance; filled by the summary rebuild that
runs once the database is at the newest revision (db/migrations/env.py, `request_rebuild`).

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.migrations.rebuild import request_rebuild

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


#: trend_daily's counts as of this revision
_MONTHLY_COUNTS = (
    "checked_in",
    "completed",
    "reacted",
    "grade_1",
    "grade_2",
    "grade_3",
    "grade_4",
    "grade_5",
    "reacted_during",
    "reacted_after",
    "iv_stop_applies",
    "iv_stop_missing",
    "pre_vitals_missing",
    "gap_checked",
)


def upgrade() -> None:
    for name in ("trend_duration", "trend_duration_year"):
        op.create_table(
            name,
            sa.Column("site_id", sa.Integer(), nullable=False),
            sa.Column("month", sa.Date(), nullable=False),
            sa.Column("therapy_id", sa.Integer(), nullable=False),
            sa.Column("at_home", sa.Boolean(), nullable=False),
            sa.Column("reacted", sa.Boolean(), nullable=False),
            sa.Column("number", sa.Integer(), nullable=False),
            sa.Column("kind", sa.Integer(), nullable=False),
            sa.Column("bin", sa.Integer(), nullable=False),
            sa.Column("n", sa.Integer(), nullable=False),
            sa.Column("edge", sa.Integer(), nullable=False),
            sa.Column("seconds", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint(
                "site_id", "month", "therapy_id", "at_home", "reacted", "number", "kind", "bin", name=f"pk_{name}"
            ),
        )
    for name in ("trend_chair_use", "trend_chair_use_year"):
        op.create_table(
            name,
            sa.Column("site_id", sa.Integer(), nullable=False),
            sa.Column("chair_id", sa.Integer(), nullable=False),
            sa.Column("month", sa.Date(), nullable=False),
            *(sa.Column(f"h{i}", sa.BigInteger(), nullable=False, server_default=sa.text("0")) for i in range(7 * 24)),
            sa.PrimaryKeyConstraint("site_id", "chair_id", "month", name=f"pk_{name}"),
        )
    op.create_table(
        "trend_monthly",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("therapy_id", sa.Integer(), nullable=False),
        sa.Column("at_home", sa.Boolean(), nullable=False),
        sa.Column("band", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False, server_default=sa.text("0")) for name in _MONTHLY_COUNTS),
        sa.PrimaryKeyConstraint("site_id", "month", "therapy_id", "at_home", "band", name="pk_trend_monthly"),
    )
    op.drop_index("ix_trend_session_gap", table_name="trend_session")
    op.create_index("ix_trend_session_therapy_gap", "trend_session", ["therapy_id", "gap_minutes"])
    op.create_index(
        "ix_trend_session_no_iv_stop",
        "trend_session",
        ["local_day"],
        sqlite_where=sa.text("iv_stop_applies = 1 AND iv_stop_missing = 1"),
        postgresql_where=sa.text("iv_stop_applies AND iv_stop_missing"),
    )
    op.create_index(
        "ix_trend_session_no_pre_vitals",
        "trend_session",
        ["local_day"],
        sqlite_where=sa.text("pre_vitals_missing = 1"),
        postgresql_where=sa.text("pre_vitals_missing"),
    )
    request_rebuild("trends")


def downgrade() -> None:
    op.drop_table("trend_monthly")
    op.drop_index("ix_trend_session_no_pre_vitals", table_name="trend_session")
    op.drop_index("ix_trend_session_no_iv_stop", table_name="trend_session")
    op.drop_index("ix_trend_session_therapy_gap", table_name="trend_session")
    op.create_index("ix_trend_session_gap", "trend_session", ["gap_minutes", "local_day"])
    for name in ("trend_chair_use_year", "trend_chair_use", "trend_duration_year", "trend_duration"):
        op.drop_table(name)
