"""A clinic network (issue 13): the clinic row becomes the first site; chairs, staff and the trend
summaries carry the site.

- `clinic` gains `code` (unique, "S<id>" for existing rows) and `active`; each row is a site.
- `chair.site_id` (every existing chair → the first site); chair names are unique per site.
- `sign_in_token.site_id`: a wall display shows one site's board.
- `app_user.network_wide` and `last_site_id`, and `user_site`: administrators, managers and quality
  staff of the existing clinic become network-wide (with one site that is what they had); nurses and
  charge nurses hold their role at the first site. Every role stays as it was.
- `trend_session` / `trend_daily` are derived data: recreated with the site and rebuilt from the raw rows.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.migrations.rebuild import request_rebuild

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
COUNTS = (
    "checked_in completed reacted grade_1 grade_2 grade_3 grade_4 grade_5 reacted_during reacted_after "
    "iv_stop_applies iv_stop_missing pre_vitals_missing gap_checked"
).split()


def upgrade() -> None:
    conn = op.get_bind()
    with op.batch_alter_table("clinic") as batch_op:
        batch_op.add_column(sa.Column("code", sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.text("true")))
    conn.execute(sa.text("UPDATE clinic SET code = 'S' || CAST(id AS VARCHAR(11))"))
    if conn.execute(sa.text("SELECT count(*) FROM clinic")).scalar() == 0 and (
        conn.execute(sa.text("SELECT count(*) FROM chair")).scalar() or 0
    ):
        # chairs were added before the clinic row existed: give them a site to belong to
        conn.execute(
            sa.text(
                "INSERT INTO clinic (name, code, timezone, temperature_unit, weight_unit, settings, version, active)"
                " VALUES ('Infusion clinic', 'S1', 'UTC', 'C', 'kg', '{}', 1, true)"
            )
        )
    with op.batch_alter_table("clinic") as batch_op:
        batch_op.alter_column("code", existing_type=sa.String(length=12), nullable=False)
        batch_op.create_unique_constraint("uq_clinic_code", ["code"])

    first = conn.execute(sa.text("SELECT min(id) FROM clinic")).scalar()
    with op.batch_alter_table("chair") as batch_op:
        batch_op.add_column(sa.Column("site_id", BIGINT, nullable=True))
    if first is not None:
        conn.execute(sa.text("UPDATE chair SET site_id = :site"), {"site": first})
    with op.batch_alter_table("chair") as batch_op:
        batch_op.alter_column("site_id", existing_type=BIGINT, nullable=False)
        batch_op.create_foreign_key("fk_chair_site_id_clinic", "clinic", ["site_id"], ["id"])
        batch_op.drop_constraint("uq_chair_name", type_="unique")
        batch_op.create_unique_constraint("uq_chair_site_name", ["site_id", "name"])
        batch_op.create_index("ix_chair_site_id", ["site_id"])

    with op.batch_alter_table("app_user") as batch_op:
        batch_op.add_column(sa.Column("network_wide", sa.Boolean(), nullable=False, server_default=sa.text("false")))
        batch_op.add_column(sa.Column("last_site_id", BIGINT, nullable=True))
        batch_op.create_foreign_key("fk_app_user_last_site_id_clinic", "clinic", ["last_site_id"], ["id"])
    op.create_table(
        "user_site",
        sa.Column("user_id", BIGINT, nullable=False),
        sa.Column("site_id", BIGINT, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name="fk_user_site_user_id_app_user"),
        sa.ForeignKeyConstraint(["site_id"], ["clinic.id"], name="fk_user_site_site_id_clinic"),
        sa.PrimaryKeyConstraint("user_id", "site_id", name="pk_user_site"),
    )
    op.create_index("ix_user_site_site_id", "user_site", ["site_id"])
    with op.batch_alter_table("sign_in_token") as batch_op:
        batch_op.add_column(sa.Column("site_id", BIGINT, nullable=True))
        batch_op.create_foreign_key("fk_sign_in_token_site_id_clinic", "clinic", ["site_id"], ["id"])
    conn.execute(sa.text("UPDATE app_user SET network_wide = true WHERE role IN ('admin', 'manager', 'quality')"))
    if first is not None:
        conn.execute(
            sa.text("INSERT INTO user_site (user_id, site_id) SELECT id, :site FROM app_user WHERE NOT network_wide"),
            {"site": first},
        )

    op.drop_table("trend_daily")
    op.drop_index("ix_trend_session_gap", table_name="trend_session")
    op.drop_index("ix_trend_session_day", table_name="trend_session")
    op.drop_table("trend_session")
    _create_trend_tables(with_site=True)
    request_rebuild("trends")  # at head, with the code that matches the head schema


def _create_trend_tables(*, with_site: bool) -> None:
    site = [sa.Column("site_id", sa.Integer(), nullable=False)] if with_site else []
    op.create_table(
        "trend_session",
        sa.Column("session_id", BIGINT, nullable=False),
        *site,
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
    if with_site:
        op.create_index("ix_trend_session_site_day", "trend_session", ["site_id", "local_day"])
    key = ["site_id"] * with_site + ["local_day", "therapy_id", "at_home", "band"]
    op.create_table(
        "trend_daily",
        *site,
        sa.Column("local_day", sa.Date(), nullable=False),
        sa.Column("therapy_id", sa.Integer(), nullable=False),
        sa.Column("at_home", sa.Boolean(), nullable=False),
        sa.Column("band", sa.Integer(), nullable=False),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in COUNTS),
        sa.PrimaryKeyConstraint(*key, name="pk_trend_daily"),
    )


def downgrade() -> None:
    op.drop_table("trend_daily")
    op.drop_index("ix_trend_session_site_day", table_name="trend_session")
    op.drop_index("ix_trend_session_gap", table_name="trend_session")
    op.drop_index("ix_trend_session_day", table_name="trend_session")
    op.drop_table("trend_session")
    _create_trend_tables(with_site=False)  # empty: 0009's code is gone; rebuild after a downgrade
    with op.batch_alter_table("sign_in_token") as batch_op:
        batch_op.drop_constraint("fk_sign_in_token_site_id_clinic", type_="foreignkey")
        batch_op.drop_column("site_id")
    op.drop_index("ix_user_site_site_id", table_name="user_site")
    op.drop_table("user_site")
    with op.batch_alter_table("app_user") as batch_op:
        batch_op.drop_constraint("fk_app_user_last_site_id_clinic", type_="foreignkey")
        batch_op.drop_column("last_site_id")
        batch_op.drop_column("network_wide")
    with op.batch_alter_table("chair") as batch_op:
        batch_op.drop_index("ix_chair_site_id")
        batch_op.drop_constraint("uq_chair_site_name", type_="unique")
        batch_op.create_unique_constraint("uq_chair_name", ["name"])
        batch_op.drop_constraint("fk_chair_site_id_clinic", type_="foreignkey")
        batch_op.drop_column("site_id")
    with op.batch_alter_table("clinic") as batch_op:
        batch_op.drop_constraint("uq_clinic_code", type_="unique")
        batch_op.drop_column("active")
        batch_op.drop_column("code")
