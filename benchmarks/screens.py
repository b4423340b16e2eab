"""The screens a nurse opens all day: they read today's rows, so their time must not grow with history.

Floors are one plain SQL statement fetching the rows each screen is built from:
today's sessions with patient and therapy (Chairside list, Chair board), one
session's vitals (timeline), and the Due list's `due_pair` rows of the first site with the
patients' names (the summary `infusion.reads.due_summary` keeps in every write; before it, the list
folded every session with an IV start in Python: 1.56 s at 100,000 sessions, the path `due._due_list_raw`
keeps for the checks). The patient picker (the walk-in form runs it on every run of the Chairside
page) against the first 500 patients by name: at 1 M sessions it took 14.5 s on SQLite and over 30 s on
PostgreSQL before it asked EXISTS per patient along a name index (migration 0019), and no row measured it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select, text

from db.engine import Database
from db.models import AppUser, InfusionSession, Patient, VitalSign
from infusion.accounts.actor import Actor
from infusion.charts.timeline import session_timeline
from infusion.clinical.states import VITALS_STATUSES
from infusion.reads import board, due
from infusion.reads import sessions as views
from infusion.services import setup
from infusion.services.corrections import entry_history

ACTIVE = ("checked_in", "ready", "infusing", "paused", "observation")
TODAY_SQL = """SELECT s.id, s.status, s.chair_id, s.scheduled_at, s.checked_in_at, p.family_name, p.given_name, t.name
FROM infusion_session s JOIN patient p ON p.id = s.patient_id JOIN therapy t ON t.id = s.therapy_id
WHERE (s.scheduled_at >= :lo AND s.scheduled_at < :hi) OR s.status IN ({active})""".format(
    active=", ".join(f"'{a}'" for a in ACTIVE)
)
DUE_SQL = """SELECT d.patient_id, d.therapy_id, d.last_day, d.next_due, d.course_label, d.expected_dose,
p.family_name, p.given_name, p.mrn FROM due_pair d JOIN patient p ON p.id = d.patient_id
WHERE d.site_id = (SELECT min(id) FROM clinic) AND d.superseded = false AND d.ended = false
AND (d.next_due IS NULL OR d.next_due <= :week_end)"""
TIMELINE_SQL = """SELECT v.* FROM infusion_session s JOIN vital_sign v ON v.session_id = s.id WHERE s.id = :sid"""
ENTRY_SQL = """SELECT v.* FROM vital_sign v WHERE v.id = :vid"""
PICKER_SQL = """SELECT p.* FROM patient p ORDER BY p.family_name, p.given_name LIMIT 500"""


@dataclass(frozen=True)
class Staff:
    nurse: Actor
    manager: Actor
    admin: Actor


def staff(db: Database) -> Staff:
    """The first user of each role the benchmarks act as (the demo clinic has them all)."""
    found: dict[str, Actor] = {}
    with db.reading() as s:
        for user in s.scalars(select(AppUser).where(AppUser.active.is_(True)).order_by(AppUser.id)):
            found.setdefault(user.role, Actor(user.id, user.display_name, user.role))
    missing = {"nurse", "manager", "admin"} - set(found)
    if missing:
        raise RuntimeError(f"no active user with role {', '.join(sorted(missing))}: is this a demo clinic?")
    return Staff(found["nurse"], found["manager"], found["admin"])


def live_session(db: Database) -> int:
    """The most recently checked-in session that is still in a chair (the demo's live board has several),
    not one the save benchmark charts (its patients' MRNs start BENCH-: hundreds of sets, no real chart)."""
    with db.reading() as s:
        sid = s.scalar(
            select(InfusionSession.id)
            .join(Patient, Patient.id == InfusionSession.patient_id)
            .where(InfusionSession.status.in_(VITALS_STATUSES), Patient.mrn.not_like("BENCH-%"))
            .order_by(InfusionSession.checked_in_at.desc(), InfusionSession.id.desc())
            .limit(1)
        )
    if sid is None:
        raise RuntimeError("no session in a chair: the timeline needs a live session")
    return int(sid)


def today_bounds(db: Database) -> dict[str, Any]:
    """Today ± a day in UTC (wide enough for any clinic zone), in the stored format."""
    now = datetime.now(UTC)
    lo, hi = now - timedelta(days=1), now + timedelta(days=1)
    if db.dialect == "sqlite":
        return {k: v.strftime("%Y-%m-%d %H:%M:%S.%f") for k, v in (("lo", lo), ("hi", hi))}
    return {"lo": lo, "hi": hi}


def _query(db: Database, sql: str, params: dict[str, Any]) -> Callable[[], Any]:
    def run() -> Any:
        with db.engine.connect() as conn:
            rows = conn.execute(text(sql), params).all()
            conn.commit()  # as the app's reads end (`Database.reading`)
            return rows

    return run


def cases(db: Database, who: Staff, today: date) -> list[tuple[str, Callable[[], Any], str, Callable[[], Any], str]]:
    """(name, figure, floor name, floor, note) per screen."""
    sid = live_session(db)
    bounds = today_bounds(db)
    end = today + timedelta(days=6)
    week_end: Any = end.isoformat() if db.dialect == "sqlite" else end

    site = setup.get_clinic(db).id
    with db.reading() as s:  # the newest set of vitals: its history is itself (no correction), the common case
        vid = s.scalar(select(VitalSign.id).order_by(VitalSign.id.desc()).limit(1))

    def timeline() -> Any:
        detail = views.session_detail(db, who.nurse, sid)
        assert detail is not None
        return session_timeline(detail)

    return [
        (
            "Due list (due_list + protocol_patients)",
            lambda: (
                due.due_list(db, who.admin, today, sections=(due.SECTION_OVERDUE, due.SECTION_WEEK)),
                due.protocol_patients(db, who.admin),
            ),
            "the site's due_pair rows (overdue, this week, protocol) + names",
            _query(db, DUE_SQL, {"week_end": week_end}),
            "the page's reads: overdue and this week, and the protocol table (its undated rows are the warning)",
        ),
        (
            "Chair board (board_frame)",
            lambda: board.board_frame(db, who.nurse),
            "today's sessions + patient + therapy",
            _query(db, TODAY_SQL, bounds),
            "",
        ),
        (
            "Chairside list (today_sessions)",
            lambda: views.today_sessions(db, who.nurse),
            "today's sessions + patient + therapy",
            _query(db, TODAY_SQL, bounds),
            "",
        ),
        (
            "One timeline (session_detail + session_timeline)",
            timeline,
            "one session's vitals",
            _query(db, TIMELINE_SQL, {"sid": sid}),
            f"session {sid}; session_detail writes one audit 'view' event per call",
        ),
        (
            "Patient picker (search_patients, the site's first 500)",
            lambda: setup.search_patients(db, limit=500, site_id=site),
            "the first 500 patients by name, any site",
            _query(db, PICKER_SQL, {}),
            "the walk-in form (on every run of the Chairside page) and the booking form: the site's patients "
            "and the ones never seen, in name order",
        ),
        (
            "One entry's history (entry_history)",
            lambda: entry_history(db, who.nurse, "vital_sign", int(vid or 0)),
            "the entry's row",
            _query(db, ENTRY_SQL, {"vid": vid}),
            f"vital_sign {vid}; follows the correction links both ways (partial index on replaces_id)",
        ),
    ]
