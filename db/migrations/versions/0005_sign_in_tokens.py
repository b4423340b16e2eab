"""Sign-in tokens: a signed-in browser survives a reload until sign-out, the idle limit or expiry;
a wall-display token pairs a browser with a named screen that may only read the chair board.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sign_in_token",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", BIGINT, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoke_reason", sa.String(length=40), nullable=True),
        sa.Column("display_name", sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_sign_in_token_user_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_token")),
        sa.UniqueConstraint("token_hash", name="uq_sign_in_token_hash"),
    )
    op.create_index("ix_sign_in_token_user", "sign_in_token", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_sign_in_token_user", table_name="sign_in_token")
    op.drop_table("sign_in_token")
