"""The duration histogram packed: one row per site × month (year) × therapy × location × infusion number ×
kind, its 5-minute bins in one binary column, instead of one row per bin. A year of Trends durations then
reads ~350 rows, not ~2,900 (4.5 ms of PostgreSQL execution alone at a million sessions). The reaction is
no longer part of the key: no figure reads durations by it (time lost reads the count rollups, 0017).

`trend_duration` and `trend_duration_year` are replaced by `trend_duration_bins` and
`trend_duration_bins_year`, filled by the durations rebuild that runs once the database is at the newest
revision (`request_rebuild`). A downgrade fills the old tables again from `trend_session` in SQL.

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.migrations.rebuild import request_rebuild

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW = ("trend_duration_bins", "trend_duration_bins_year")
OLD = ("trend_duration", "trend_duration_year")
KINDS = ("infusion_minutes", "chair_minutes")


def _key(*, reacted: bool) -> list[sa.Column[object]]:
    """The key columns both layouts share; the old one also keys on the reaction."""
    return [
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("therapy_id", sa.Integer(), nullable=False),
        sa.Column("at_home", sa.Boolean(), nullable=False),
        *([sa.Column("reacted", sa.Boolean(), nullable=False)] if reacted else []),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    for name in OLD:
        op.drop_table(name)
    for name in NEW:
        op.create_table(
            name,
            *_key(reacted=False),
            sa.Column("lo", sa.Integer(), nullable=False),
            sa.Column("bins", sa.LargeBinary(), nullable=False),
            sa.PrimaryKeyConstraint("site_id", "month", "therapy_id", "at_home", "number", "kind", name=f"pk_{name}"),
        )
    request_rebuild("durations")


def downgrade() -> None:
    for name in NEW:
        op.drop_table(name)
    for name in OLD:  # as revision 0012 made them
        op.create_table(
            name,
            *_key(reacted=True),
            sa.Column("bin", sa.Integer(), nullable=False),
            sa.Column("n", sa.Integer(), nullable=False),
            sa.Column("edge", sa.Integer(), nullable=False),
            sa.Column("seconds", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint(
                "site_id", "month", "therapy_id", "at_home", "reacted", "number", "kind", "bin", name=f"pk_{name}"
            ),
        )
    postgres = op.get_bind().dialect.name == "postgresql"

    def floor(x: str) -> str:
        return f"CAST(floor({x}) AS INTEGER)" if postgres else f"(CAST({x} AS INTEGER) - ({x} < CAST({x} AS INTEGER)))"

    def truncated(unit: str, day: str) -> str:
        return f"CAST(date_trunc('{unit}', {day}) AS DATE)" if postgres else f"date({day}, 'start of {unit}')"

    true = "TRUE" if postgres else "1"
    parts = [
        f"""SELECT site_id, local_day, therapy_id, at_home, reacted,
               CASE WHEN infusion_number >= 4 THEN 4 ELSE infusion_number END AS number, {kind} AS kind,
               {floor(f"{x} / 5.0")} AS bin,
               CASE WHEN {x} = {floor(f"{x} / 5.0")} * 5 THEN 1 ELSE 0 END AS edge,
               {floor(f"{x} * 60.0")} AS seconds
        FROM trend_session WHERE completed = {true} AND {x} IS NOT NULL"""
        for kind, x in enumerate(KINDS)
    ]
    keys = "site_id, month, therapy_id, at_home, reacted, number, kind, bin"
    op.execute(
        f"""INSERT INTO trend_duration ({keys}, n, edge, seconds)
        SELECT site_id, {truncated("month", "local_day")} AS month, therapy_id, at_home, reacted, number, kind, bin,
               count(*), sum(edge), sum(seconds)
        FROM ({" UNION ALL ".join(parts)}) AS bins
        GROUP BY site_id, {truncated("month", "local_day")}, therapy_id, at_home, reacted, number, kind, bin"""
    )
    op.execute(
        f"""INSERT INTO trend_duration_year ({keys}, n, edge, seconds)
        SELECT site_id, {truncated("year", "month")}, therapy_id, at_home, reacted, number, kind, bin,
               sum(n), sum(edge), sum(seconds)
        FROM trend_duration
        GROUP BY site_id, {truncated("year", "month")}, therapy_id, at_home, reacted, number, kind, bin"""
    )
