"""Summary rebuilds a revision asks for, run once the database is at the newest revision.

A revision that changes what a summary holds must not rebuild it with today's code against its own,
older schema (a later revision may add columns today's code writes). It calls `request_rebuild`; the
migration environment (`env.py`) runs the requested rebuilds after the last revision, in the same
transaction, with the code that matches the head schema.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

#: what may be asked for, in the order they run
SUMMARIES = ("trends", "chair_use", "durations", "due")


def request_rebuild(summary: str) -> None:
    """Ask for `summary` ("trends": every trend summary; "chair_use" or "durations": those rollups alone; "due")
    to be rebuilt once the upgrade reaches head."""
    if summary not in SUMMARIES:
        raise ValueError(f"unknown summary {summary!r}")
    context.config.attributes.setdefault("rebuild_summaries", set()).add(summary)


def run_requested(connection: Connection) -> None:
    """Rebuild the summaries the applied revisions asked for (a no-op when none did)."""
    wanted = context.config.attributes.pop("rebuild_summaries", set())
    if "trends" in wanted:
        from infusion.reads.trends.maintenance import rebuild

        rebuild(connection)
    else:  # a full trends rebuild already rebuilt these
        if "chair_use" in wanted:
            from infusion.reads.trends.maintenance import rebuild_chair_use

            rebuild_chair_use(connection)
        if "durations" in wanted:
            from infusion.reads.trends.histogram import rebuild as rebuild_durations
            from infusion.reads.trends.maintenance import bump_version

            rebuild_durations(connection)
            bump_version(connection)
    if "due" in wanted:
        from infusion.reads.due_summary import rebuild as rebuild_due

        rebuild_due(connection)
