"""The site of each audit event (`audit_event.site_id`), so a person who holds their role at some sites
reads only those sites' events (infusion.reads.audit_log, the audit export).

Set at insert by `infusion.services.audit.record` from then on. Existing rows are filled here, once:

1. an event with a session: the site of the session's chair;
2. an event about a site (`entity = 'clinic'`): that site; about a chair: the chair's site;
3. a wall display paired at a site: the site named in the event's `after`;
4. an event with a patient but no session: the site of the patient's latest session (by scheduled time);
5. anything else (accounts, the catalog, exports, searches, a patient never booked): no site, a network
   event that only network-wide holders read.

The audit table is append-only: 0002 put guard triggers on UPDATE and DELETE (and TRUNCATE on
PostgreSQL), 0008 one on an INSERT that reuses an id (SQLite). The one-time fill is an UPDATE, so in
this migration's transaction, run by the schema owner (docs/deployment-postgresql.md), the UPDATE guard
is switched off (PostgreSQL: `DISABLE TRIGGER audit_event_append_only`; SQLite: the `audit_event_no_update`
trigger dropped) and restored, word for word, before the transaction commits: a failure rolls both back.
The new column is added with ADD COLUMN (no table copy on SQLite, so the 0002 and 0008 triggers stay as
they are). No other column is written.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: 0002's SQLite UPDATE guard, recreated exactly after the fill
SQLITE_NO_UPDATE = (
    "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
    "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: UPDATE refused'); END"
)

FILL = (
    # 1. the session's chair's site
    "UPDATE audit_event SET site_id = (SELECT chair.site_id FROM infusion_session "
    "JOIN chair ON chair.id = infusion_session.chair_id WHERE infusion_session.id = audit_event.session_id) "
    "WHERE session_id IS NOT NULL",
    # 2. a site's own events, a chair's
    "UPDATE audit_event SET site_id = entity_id "
    "WHERE site_id IS NULL AND entity = 'clinic' AND entity_id IN (SELECT id FROM clinic)",
    "UPDATE audit_event SET site_id = (SELECT chair.site_id FROM chair WHERE chair.id = audit_event.entity_id) "
    "WHERE site_id IS NULL AND entity = 'chair'",
    # 3b. a wall display's events (its pairing also by the loop below): the display's site
    "UPDATE audit_event SET site_id = (SELECT sign_in_token.site_id FROM sign_in_token "
    "WHERE sign_in_token.id = audit_event.entity_id) WHERE site_id IS NULL AND entity = 'sign_in_token'",
    # 4. the site of the patient's latest session that was not cancelled or deferred (where they are treated)
    "UPDATE audit_event SET site_id = (SELECT chair.site_id FROM infusion_session "
    "JOIN chair ON chair.id = infusion_session.chair_id WHERE infusion_session.patient_id = audit_event.patient_id "
    "AND infusion_session.status NOT IN ('cancelled', 'deferred') "
    "ORDER BY infusion_session.scheduled_at DESC, infusion_session.id DESC LIMIT 1) "
    "WHERE site_id IS NULL AND patient_id IS NOT NULL",
)


def _paired_site(after: Any) -> int | None:
    if isinstance(after, str):
        try:
            after = json.loads(after)
        except ValueError:
            return None
    site = after.get("site_id") if isinstance(after, dict) else None
    return site if isinstance(site, int) and not isinstance(site, bool) else None


def _fill(conn: sa.Connection) -> None:
    for sql in FILL:
        conn.execute(sa.text(sql))
    sites = set(conn.scalars(sa.text("SELECT id FROM clinic")))
    paired = conn.execute(
        sa.text("SELECT id, after FROM audit_event WHERE site_id IS NULL AND action = 'wall_display_paired'")
    ).all()
    for event_id, after in paired:  # 3. few rows: an administrator's pairings
        site = _paired_site(after)
        if site in sites:
            conn.execute(
                sa.text("UPDATE audit_event SET site_id = :site WHERE id = :id"), {"site": site, "id": event_id}
            )


def upgrade() -> None:
    op.add_column("audit_event", sa.Column("site_id", sa.BigInteger(), nullable=True))
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        # A one-off bulk fill of every audit row: not held to the 120 s a screen's statement is (db/engine.py);
        # SET LOCAL ends with the migration's transaction.
        op.execute("SET LOCAL statement_timeout = 0")
        op.execute("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
        _fill(conn)
        op.execute("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
        _fill(conn)
        op.execute(SQLITE_NO_UPDATE)
    op.create_index("ix_audit_site_at", "audit_event", ["site_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_audit_site_at", table_name="audit_event")
    if op.get_bind().dialect.name == "sqlite":
        # a native DROP COLUMN (SQLite 3.35+): a batch copy of the table would lose its guard triggers
        op.execute("ALTER TABLE audit_event DROP COLUMN site_id")
    else:
        op.drop_column("audit_event", "site_id")
