"""Audit hardening: on SQLite an INSERT that reuses an existing audit id is refused.

`INSERT OR REPLACE` (and `REPLACE INTO`) would otherwise delete the old audit row
without firing the DELETE trigger of 0002 (SQLite runs delete triggers for REPLACE
only with recursive_triggers on) and put a different row in its place. A BEFORE
INSERT trigger runs before the conflict is resolved, so it refuses the statement
while the old row is untouched.

On PostgreSQL `INSERT … ON CONFLICT DO UPDATE` already fires the UPDATE trigger of
0002; the rest of the PostgreSQL hardening is the application role, which owns
nothing and may only INSERT into audit_event (docs/deployment-postgresql.md).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_NO_REPLACE = (
    "CREATE TRIGGER audit_event_no_replace BEFORE INSERT ON audit_event "
    "WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM audit_event WHERE id = NEW.id) "
    "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: an existing audit id refused'); END"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_replace")
        op.execute(SQLITE_NO_REPLACE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_replace")
