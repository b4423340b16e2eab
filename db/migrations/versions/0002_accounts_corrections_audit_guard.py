"""Accounts (SSO e-mail, lockout), session corrections, addenda, append-only audit.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

PG_AUDIT_GUARD = """
CREATE OR REPLACE FUNCTION chairside_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION chairside_audit_append_only();
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION chairside_audit_append_only();
"""


def upgrade() -> None:
    # add_column and a unique index keep SQLite from copying app_user (which other tables reference)
    op.add_column("app_user", sa.Column("email", sa.String(length=200), nullable=True))
    op.add_column("app_user", sa.Column("failed_attempts", sa.Integer(), server_default="0", nullable=False))
    op.add_column("app_user", sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("app_user", sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("uq_app_user_email", "app_user", ["email"], unique=True)

    op.create_table(
        "session_correction",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("session_id", BIGINT, nullable=False),
        sa.Column("field", sa.String(length=40), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("corrected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("corrected_by_id", BIGINT, nullable=True),
        sa.ForeignKeyConstraint(
            ["corrected_by_id"], ["app_user.id"], name=op.f("fk_session_correction_corrected_by_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["infusion_session.id"], name=op.f("fk_session_correction_session_id_infusion_session")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_correction")),
    )
    op.create_index("ix_session_correction_session", "session_correction", ["session_id", "corrected_at"])
    op.create_table(
        "addendum",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("session_id", BIGINT, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author_id", BIGINT, nullable=True),
        sa.ForeignKeyConstraint(["author_id"], ["app_user.id"], name=op.f("fk_addendum_author_id_app_user")),
        sa.ForeignKeyConstraint(
            ["session_id"], ["infusion_session.id"], name=op.f("fk_addendum_session_id_infusion_session")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_addendum")),
    )
    op.create_index("ix_addendum_session", "addendum", ["session_id", "written_at"])

    # The audit trail is append-only, enforced by the database itself.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_AUDIT_GUARD)
    else:
        op.execute(
            "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
            "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: UPDATE refused'); END"
        )
        op.execute(
            "CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event "
            "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: DELETE refused'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event")
        op.execute("DROP FUNCTION IF EXISTS chairside_audit_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
    op.drop_index("ix_addendum_session", table_name="addendum")
    op.drop_table("addendum")
    op.drop_index("ix_session_correction_session", table_name="session_correction")
    op.drop_table("session_correction")
    op.drop_index("uq_app_user_email", table_name="app_user")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_column("last_sign_in_at")
        batch_op.drop_column("locked_until")
        batch_op.drop_column("failed_attempts")
        batch_op.drop_column("email")
