"""The due list's summary, `due_pair`, kept in the writing transaction (issue 14: the due list in ≤ 100 ms
whatever the history's size).

One row per patient × therapy with an infusion given (IV started): the site of the last given infusion
(its chair's), the first and last given days and the plan `infusion.clinical.regimen.plan_next` makes
from the last `LAST_DOSES` doses and the protocol interval, all in that site's zone (the due list of a
site plans in its own zone, and lists the pairs whose last infusion was there), and whether the patient
has since started another therapy with a rhythm (`superseded`: not listed), and whether a person marked
the course ended (`ended`: a `course_end` row not resumed, `infusion.services.courses`, with no infusion
given after it; not listed either until resumed or treated again, `in_force`). `pair_rows` computes them
from the raw rows — the same reading `infusion.reads.due._due_list_raw` does — for the rebuild, the
check and the writes.

Kept like the trend summaries (`infusion.reads.trends.maintenance`), with listeners of its own:
- after every flush (`after_flush`): a session added, changed or deleted in a way that moves a given
  dose (IV start, chair, status, course position, infusion number, patient, therapy), a protocol
  interval set or a course ended or resumed (`course_end`) recomputes all of that patient's pairs (superseding reads the patient's other pairs);
  a catalog edit of a rhythm field recomputes the patients with that therapy; a site's time-zone change
  or a chair moved to another site rebuilds every row;
- a bulk UPDATE/DELETE run through a Session (`do_orm_execute`) the same way.
Writes that bypass the ORM Session (the demo loader, imports) need `rebuild()`.

`site_rows` is the due list's read: the site's rows by (site_id, next_due), and the pairs booked here
whose last infusion was at another site (replanned from the raw rows when that site's zone differs).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    delete,
    event,
    false,
    insert,
    inspect,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from db.models import Chair, Clinic, CourseEnd, DuePair, InfusionSession, Patient, PatientProtocol, Therapy
from infusion.clinical.regimen import NO_DUE_DATE, PROTOCOL_THERAPIES, CatalogRow, Rhythm, plan_next
from infusion.clinical.regimen import Dose as Dose

log = logging.getLogger(__name__)

S = InfusionSession
DP: Table = DuePair.__table__  # type: ignore[assignment]
COLUMNS = tuple(c.name for c in DP.columns)
Pair = tuple[int, int]

#: the last infusions per patient and therapy the plan needs: every Lemtrada course so far (5 + 3 + 3 …
#: days, for histories without a stored course position) and the infusion before the last (Ocrevus and
#: Briumvi count their first maintenance dose from infusion 1); the stored infusion number carries the rest
LAST_DOSES = 16
#: infusion_session columns a given dose is read from: a change of any other column recomputes nothing
DOSE_COLUMNS = frozenset(
    {
        "iv_started_at",
        "chair_id",
        "status",
        "course_number",
        "course_day",
        "infusion_number",
        "patient_id",
        "therapy_id",
    }
)
#: therapy columns the plan reads (`Rhythm.of`, and the code for superseding)
RHYTHM_COLUMNS = frozenset(
    {"code", "name", "brand", "dosing_interval_days", "min_interval_days", "default_dose", "dose_unit"}
)
_PROTOCOL_COLUMNS = frozenset({"patient_id", "therapy_id", "interval_days"})
#: course_end columns that decide whether a mark is in force
_END_COLUMNS = frozenset({"patient_id", "therapy_id", "ended_at", "resumed_at"})
#: patients per IN list
CHUNK = 500
T = TypeVar("T")
#: the due list's sections (the names `infusion.reads.due` shows)
OVERDUE, WEEK, PROTOCOL, LATER, NONE = "overdue", "due this week", "set protocol", "later", "no due date"


def chunks(ids: list[T]) -> Iterator[list[T]]:
    """`ids` in parts small enough for one IN (…) list on either engine."""
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


def site_zones(conn: Connection) -> dict[int, str]:
    """Each site's time-zone name (the due list plans in the zone of the site it is shown at)."""
    return {site: tz for site, tz in conn.execute(select(Clinic.id, Clinic.timezone))}


def given_in_order() -> Any:
    """Every infusion given (IV started), per patient and therapy in IV-start order, with its site."""
    return (
        select(
            S.patient_id, S.therapy_id, S.iv_started_at, S.course_number, S.course_day, S.infusion_number, Chair.site_id
        )
        .join(Chair, Chair.id == S.chair_id)
        .where(S.iv_started_at.is_not(None))
        .order_by(S.iv_started_at)
    )


def pair_rows(
    conn: Connection, patient_ids: Iterable[int] | None, zone: str | None = None
) -> dict[Pair, dict[str, Any]]:
    """`due_pair` rows from the raw rows for these patients (every patient when None), each planned in the
    zone of its last given infusion's site — or, when `zone` is given, every pair in that zone (a pair
    booked at a site in another zone than the one it was last given at)."""
    ids = None if patient_ids is None else sorted({int(p) for p in patient_ids if p is not None})
    if ids == []:
        return {}
    catalog = conn.execute(
        select(
            Therapy.id,
            Therapy.code,
            Therapy.name,
            Therapy.brand,
            Therapy.dosing_interval_days,
            Therapy.min_interval_days,
            Therapy.default_dose,
            Therapy.dose_unit,
        )
    ).all()
    rhythms = {row.id: Rhythm.of(cast(CatalogRow, row)) for row in catalog}
    codes = {row.id: row.code for row in catalog}
    zones = site_zones(conn)
    history: dict[Pair, list[tuple[datetime, int | None, int | None, int]]] = defaultdict(list)
    first: dict[Pair, datetime] = {}
    last_site: dict[Pair, int] = {}
    protocols: dict[Pair, int] = {}
    ends: dict[Pair, datetime] = {}
    last_given: dict[Pair, datetime] = {}
    for part in chunks(ids) if ids is not None else [None]:
        given = given_in_order()
        protocol = select(PatientProtocol.patient_id, PatientProtocol.therapy_id, PatientProtocol.interval_days)
        marks = ended_pairs()
        if part is not None:
            given = given.where(S.patient_id.in_(part))
            protocol = protocol.where(PatientProtocol.patient_id.in_(part))
            marks = marks.where(CourseEnd.patient_id.in_(part))
        ends.update({(p, t): at for p, t, at in conn.execute(marks)})
        for patient_id, therapy_id, started, course, day, number, site in conn.execute(given):
            pair = (patient_id, therapy_id)
            last_site[pair] = site
            last_given[pair] = started
            first.setdefault(pair, started)
            kept = history[pair]
            kept.append((started, course, day, number))
            if len(kept) > LAST_DOSES:
                del kept[0]
        protocols.update({(p, t): d for p, t, d in conn.execute(protocol)})
    ended = in_force(ends, last_given)
    pairs_of: dict[int, list[int]] = defaultdict(list)
    for patient_id, therapy_id in history:
        pairs_of[patient_id].append(therapy_id)
    zone_objects: dict[str, ZoneInfo] = {}
    out: dict[Pair, dict[str, Any]] = {}
    for pair, kept in history.items():
        patient_id, therapy_id = pair
        site = last_site[pair]
        name = zone or zones[site]
        tz = zone_objects.get(name) or zone_objects.setdefault(name, ZoneInfo(name))
        doses = [
            Dose(started.astimezone(tz).date(), False, course, day, number) for started, course, day, number in kept
        ]
        nxt = plan_next(rhythms[therapy_id], doses, protocols.get(pair))
        last_day = doses[-1].day
        superseded = any(
            other != therapy_id
            and codes.get(other) not in NO_DUE_DATE
            and first[(patient_id, other)].astimezone(tz).date() > last_day
            for other in pairs_of[patient_id]
        )
        out[pair] = {
            "patient_id": patient_id,
            "therapy_id": therapy_id,
            "site_id": site,
            "first_day": first[pair].astimezone(tz).date(),
            "last_day": last_day,
            "next_due": nxt.due,
            "course_label": nxt.label,
            "expected_dose": nxt.expected_dose,
            "dose_unit": nxt.dose_unit,
            "note": nxt.note,
            "course_number": nxt.course_number,
            "course_day": nxt.course_day,
            "superseded": superseded,
            "ended": pair in ended,
        }
    return out


def ended_pairs() -> Any:
    """(patient_id, therapy_id, ended_at) of every course marked ended and not resumed
    (`uq_course_end_in_force`); `in_force` says which of them still hold."""
    return select(CourseEnd.patient_id, CourseEnd.therapy_id, CourseEnd.ended_at).where(CourseEnd.resumed_at.is_(None))


def in_force(ends: dict[Pair, datetime], last_given: dict[Pair, datetime]) -> set[Pair]:
    """The pairs whose end mark holds: no infusion was given (IV started) after the mark was made. A patient
    treated again is back on the due list by itself, so a restarted course never misses its next dose
    because of an old mark (the mark stays on record; ending the course again closes it)."""
    return {pair for pair, at in ends.items() if pair not in last_given or last_given[pair] <= at}


def _stored(conn: Connection, patient_ids: list[int] | None) -> dict[Pair, dict[str, Any]]:
    out: dict[Pair, dict[str, Any]] = {}
    for part in chunks(patient_ids) if patient_ids is not None else [None]:
        q = select(DP)
        if part is not None:
            q = q.where(DP.c.patient_id.in_(part))
        for r in conn.execute(q).mappings():
            out[(r["patient_id"], r["therapy_id"])] = dict(r)
    return out


def refresh_patients(conn: Connection, patient_ids: Iterable[int]) -> bool:
    """Recompute every pair of these patients inside the caller's transaction; True if any row changed."""
    ids = sorted({int(p) for p in patient_ids if p is not None})
    if not ids:
        return False
    new = pair_rows(conn, ids)
    old = _stored(conn, ids)
    changed = False
    for pair in sorted(set(old) | set(new)):
        before, after = old.get(pair), new.get(pair)
        if before == after:
            continue
        changed = True
        where = and_(DP.c.patient_id == pair[0], DP.c.therapy_id == pair[1])
        if after is None:
            conn.execute(delete(DP).where(where))
        elif before is None:
            conn.execute(insert(DP).values(**after))
        else:
            conn.execute(update(DP).where(where).values(**after))
    return changed


def patients_with(conn: Connection, therapy_ids: Iterable[int]) -> set[int]:
    """The patients with a pair of these therapies (a catalog edit replans them)."""
    ids = sorted({int(t) for t in therapy_ids if t is not None})
    if not ids:
        return set()
    return set(conn.execute(select(DP.c.patient_id).where(DP.c.therapy_id.in_(ids)).distinct()).scalars())


def rebuild(conn: Connection) -> int:
    """Every `due_pair` row from the raw rows inside the caller's transaction; returns the pairs stored.
    For after a bulk load, an import or a migration."""
    rows = list(pair_rows(conn, None).values())
    conn.execute(delete(DP))
    for i in range(0, len(rows), 5000):
        conn.execute(insert(DP), rows[i : i + 5000])
    return len(rows)


def compare(conn: Connection) -> list[str]:
    """Differences between the stored rows and a recompute from the raw rows (empty when in step)."""
    fresh = pair_rows(conn, None)
    stored = _stored(conn, None)
    return [
        f"pair {pair}: stored {stored.get(pair)} != raw {fresh.get(pair)}"
        for pair in sorted(set(fresh) | set(stored))
        if fresh.get(pair) != stored.get(pair)
    ]


# --- the due list's read ----------------------------------------------------------------------------------


def _section_filter(today: date, sections: Iterable[str]) -> ColumnElement[bool]:
    """The next_due ranges the asked sections cover (the section itself is decided in `infusion.reads.due`)."""
    due = DP.c.next_due
    week_end = today + timedelta(days=6)
    wanted = set(sections)
    conds: list[ColumnElement[bool]] = []
    if OVERDUE in wanted:
        conds.append(due < today)
    if WEEK in wanted:
        conds.append(and_(due >= today, due <= week_end))
    if LATER in wanted:
        conds.append(due > week_end)
    if wanted >= {PROTOCOL, NONE}:
        conds.append(due.is_(None))
    elif wanted & {PROTOCOL, NONE}:  # only one of the two undated sections: told apart by the therapy
        protocol = DP.c.therapy_id.in_(select(Therapy.id).where(Therapy.code.in_(PROTOCOL_THERAPIES)))
        conds.append(and_(due.is_(None), protocol if PROTOCOL in wanted else not_(protocol)))
    return or_(*conds) if conds else false()


def site_rows(
    conn: Connection, site_id: int, tz: str, today: date, sections: Iterable[str], booked_here: set[Pair]
) -> list[dict[str, Any]]:
    """The pairs the due list of `site_id` (zone `tz`) may show, not superseded nor ended, with the patient's name
    and MRN: those last given here (by `ix_due_pair_site_next_due`, only the asked sections' dates) and
    those whose next booking is here. A pair last given at a site in another zone is replanned in `tz`
    from the raw rows (the list plans every pair in its own site's zone)."""
    name = Patient.family_name, Patient.given_name, Patient.mrn
    here = (
        select(DP, *name)
        .join(Patient, Patient.id == DP.c.patient_id)
        .where(
            DP.c.site_id == site_id,
            DP.c.superseded.is_(False),
            DP.c.ended.is_(False),
            _section_filter(today, sections),
        )
    )
    rows = [dict(r) for r in conn.execute(here).mappings()]
    elsewhere = sorted({p for p, _ in booked_here})
    if not elsewhere:
        return rows
    zones = site_zones(conn)
    found: list[dict[str, Any]] = []
    for part in chunks(elsewhere):
        found += [
            dict(r)
            for r in conn.execute(
                select(DP, *name)
                .join(Patient, Patient.id == DP.c.patient_id)
                .where(DP.c.patient_id.in_(part), DP.c.site_id != site_id)
            ).mappings()
        ]
    found = [r for r in found if (r["patient_id"], r["therapy_id"]) in booked_here]
    replan = sorted({r["patient_id"] for r in found if zones.get(r["site_id"]) != tz})
    fresh = pair_rows(conn, replan, zone=tz) if replan else {}
    for r in found:
        pair = (r["patient_id"], r["therapy_id"])
        if pair in fresh:
            r.update(fresh[pair])
        if not r["superseded"] and not r["ended"]:
            rows.append(r)
    return rows


# --- the session events -----------------------------------------------------------------------------------


def _changed(obj: Any, names: frozenset[str]) -> bool:
    attrs = inspect(obj).attrs
    return any(attrs[n].history.has_changes() for n in names)


def _old(obj: Any, name: str) -> list[Any]:
    return list(inspect(obj).attrs[name].history.deleted or ())


def _given(obj: InfusionSession) -> bool:
    """Was or is this session a given dose (IV started)?"""
    state = inspect(obj)
    now = state.dict.get("iv_started_at")
    return now is not None or any(v is not None for v in _old(obj, "iv_started_at"))


def _touched(session: Session) -> tuple[set[int], set[int], bool]:
    """(patients to replan, therapies whose patients to replan, rebuild everything)."""
    patients: set[int] = set()
    therapies: set[int] = set()
    everything = False
    for obj in session.new:
        if (
            isinstance(obj, InfusionSession)
            and obj.iv_started_at is not None
            or isinstance(obj, PatientProtocol | CourseEnd)
        ):
            patients.add(obj.patient_id)
    for obj in session.dirty:
        if isinstance(obj, InfusionSession):
            if _changed(obj, DOSE_COLUMNS) and _given(obj):
                patients.add(obj.patient_id)
                patients.update(_old(obj, "patient_id"))
        elif isinstance(obj, PatientProtocol):
            if _changed(obj, _PROTOCOL_COLUMNS):
                patients.add(obj.patient_id)
                patients.update(_old(obj, "patient_id"))
        elif isinstance(obj, CourseEnd):
            if _changed(obj, _END_COLUMNS):
                patients.add(obj.patient_id)
                patients.update(_old(obj, "patient_id"))
        elif isinstance(obj, Therapy):
            if _changed(obj, RHYTHM_COLUMNS):
                therapies.add(obj.id)
        elif isinstance(obj, Clinic):
            everything |= _changed(obj, frozenset({"timezone"}))
        elif isinstance(obj, Chair):
            everything |= _changed(obj, frozenset({"site_id"}))
    for obj in session.deleted:
        if isinstance(obj, InfusionSession | PatientProtocol | CourseEnd):
            patient = vars(obj).get("patient_id")  # the loaded value, without a load
            if patient is None:  # not loaded, and the row is gone: replan everyone
                everything = True
            else:
                patients.add(patient)
    return patients, therapies, everything


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: UOWTransaction) -> None:
    patients, therapies, everything = _touched(session)
    if everything:
        rebuild(session.connection())
        return
    if patients or therapies:
        conn = session.connection()
        refresh_patients(conn, patients | patients_with(conn, therapies))


@event.listens_for(Session, "do_orm_execute")
def _bulk_write(state: ORMExecuteState) -> Any:
    """An UPDATE or DELETE run through a Session of sessions, protocol intervals, ended courses, the catalog,
    sites or chairs: replan what it touched."""
    if not (state.is_update or state.is_delete):
        return None
    stmt: Any = state.statement
    table = getattr(stmt, "table", None)
    name = getattr(table, "name", None)
    if table is None or name not in (
        "infusion_session",
        "patient_protocol",
        "course_end",
        "therapy",
        "clinic",
        "chair",
    ):
        return None
    names = {getattr(k, "key", k) for k in (getattr(stmt, "_values", None) or {})}
    relevant = {
        "infusion_session": DOSE_COLUMNS,
        "patient_protocol": _PROTOCOL_COLUMNS,
        "course_end": _END_COLUMNS,
        "therapy": RHYTHM_COLUMNS,
        "clinic": frozenset({"timezone"}),
        "chair": frozenset({"site_id"}),
    }[name]
    if state.is_update and names and not names & relevant:
        return None
    conn = state.session.connection()
    if name in ("clinic", "chair"):
        result = state.invoke_statement()
        rebuild(conn)
        return result
    where = stmt.whereclause
    if name == "therapy":
        probe = select(table.c.id)
        therapies = [r[0] for r in conn.execute(probe.where(where) if where is not None else probe)]
        result = state.invoke_statement()
        refresh_patients(conn, patients_with(conn, therapies))
        return result
    probe = select(table.c.id, table.c.patient_id)
    rows = conn.execute(probe.where(where) if where is not None else probe).all()
    result = state.invoke_statement()
    patients = {p for _, p in rows}
    ids = [i for i, _ in rows]
    if state.is_update and "patient_id" in names:
        for part in chunks(ids):
            patients.update(conn.execute(select(table.c.patient_id).where(table.c.id.in_(part))).scalars())
    refresh_patients(conn, patients)
    return result
