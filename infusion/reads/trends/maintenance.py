"""Trend summaries kept in the writing transaction: `trend_session`, `trend_daily`, `trend_version`.

One mechanism, no write service edited: a SQLAlchemy session event. After every
flush (`after_flush`) the sessions touched by it — any InfusionSession,
VitalSign, Reaction or RateChange added, changed or deleted, which covers
corrections, entered-in-error and late entries — get their `trend_session`
row recomputed from their raw rows (`summary_rows`, the same SQL the full
rebuild runs), and the difference between the old and the new row is added
to `trend_daily` (INSERT … ON CONFLICT DO UPDATE col = col + delta). A bulk
UPDATE/DELETE run through a Session (`do_orm_execute`) is caught too: the rows
it will touch are selected first. When any summary changes, the one
`trend_version` row is bumped: the Trends cache key, stored in the database so
a write from another server process moves it too, and a view or a save that
changes no figure (an audit row, a vitals check during an infusion) does not.
One module (over 400 lines): the event hooks and the summary SQL must change together.

Premedication, follow-ups and the audit are not read by any figure, so they
do not trigger a recompute. Writes that bypass the ORM Session (the demo
loader, imports, a clinic time-zone change) need `rebuild()`
(`python -m infusion.reads.trends.rebuild`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Connection,
    Date,
    Table,
    and_,
    bindparam,
    case,
    cast,
    delete,
    event,
    exists,
    false,
    func,
    insert,
    inspect,
    literal,
    not_,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from db.models import (
    Chair,
    Clinic,
    InfusionSession,
    RateChange,
    Reaction,
    TrendDaily,
    TrendDuration,
    TrendSession,
    TrendVersion,
    VitalSign,
    trend_monthly,
)
from infusion.reads.trends import chair_use, histogram
from infusion.reads.trends.catalog import _chair_minutes, _infusion_minutes
from infusion.reads.trends.sql import epoch_seconds, minutes_between

log = logging.getLogger(__name__)

S = InfusionSession
TS: Table = TrendSession.__table__  # type: ignore[assignment]
TD: Table = TrendDaily.__table__  # type: ignore[assignment]
TV: Table = TrendVersion.__table__  # type: ignore[assignment]
TH: Table = TrendDuration.__table__  # type: ignore[assignment]
TM: Table = trend_monthly
MONTHLY_KEY = ("site_id", "month", "therapy_id", "at_home", "band")

#: reactions reported up to this long after discharge count as "within 24 h after" (docs/clinical-basis.md §11;
#: the same number as infusion.services.aftercare.LABEL_WINDOW_HOURS)
AFTER_WINDOW_MINUTES = 24 * 60.0

SESSION_COLUMNS = tuple(c.name for c in TS.columns)
DAILY_KEY = ("site_id", "local_day", "therapy_id", "at_home", "band")
DAILY_COUNTS = tuple(c.name for c in TD.columns if c.name not in DAILY_KEY)
#: infusion_session columns no figure reads: an UPDATE of only these recomputes nothing
_UNREAD_SESSION_COLUMNS = frozenset(
    {"last_vitals_at", "baseline_systolic", "reaction_count", "worst_grade", "current_rate_ml_h", "version"}
)
_ENTRY_TABLES = frozenset({"vital_sign", "reaction", "rate_change"})


def band(infusion_number: int) -> int:
    """0 = 1st infusion, 1 = 2nd, 2 = 3rd onwards (reactions.INFUSION_BUCKETS)."""
    return 0 if infusion_number <= 1 else 1 if infusion_number == 2 else 2


def band_sql(infusion_number: Any) -> Any:
    """`band` in SQL, for grouping trend_session rows as the rollup keys them."""
    return case((infusion_number <= 1, 0), (infusion_number == 2, 1), else_=2)


def site_zones(conn: Connection) -> dict[int, ZoneInfo]:
    """Each site's time zone: a session's local day is its site's (a network spans several zones)."""
    return {site: ZoneInfo(tz or "UTC") for site, tz in conn.execute(select(Clinic.id, Clinic.timezone))}


def summary_rows(
    conn: Connection, cond: ColumnElement[bool], zones: dict[int, ZoneInfo], params: dict[str, Any] | None = None
) -> dict[int, dict[str, Any]]:
    """trend_session rows computed from the raw rows for the checked-in sessions matching `cond`."""
    return _parse(conn.execute(_summary_query(cond), params or {}), zones)


#: the per-write statement, built once: its construction cost more than running it (≈ 3 ms a save)
_BY_IDS: Any = None


def _summary_by_ids(conn: Connection, ids: list[int], zones: dict[int, ZoneInfo]) -> dict[int, dict[str, Any]]:
    global _BY_IDS
    if _BY_IDS is None:
        _BY_IDS = _summary_query(S.id.in_(bindparam("summary_ids", expanding=True)))
    return _parse(conn.execute(_BY_IDS, {"summary_ids": ids}), zones)


def _summary_query(cond: ColumnElement[bool]) -> Any:
    within = and_(
        Reaction.delayed.is_(True),
        minutes_between(S.discharged_at, Reaction.onset_at) <= literal(AFTER_WINDOW_MINUTES),
    )
    reacted = (
        select(
            Reaction.session_id.label("sid"),
            func.max(Reaction.grade).label("worst"),
            func.max(case((Reaction.delayed.is_(False), 1), else_=0)).label("during"),
            func.max(case((within, 1), else_=0)).label("after"),
        )
        .join(S, S.id == Reaction.session_id)
        .where(Reaction.status == "active", cond)
        .group_by(Reaction.session_id)
        .subquery("reacted")
    )
    base = (
        select(S.id.label("sid"), S.iv_started_at.label("t0"), S.iv_stopped_at.label("t1"))
        .where(cond, S.status == "discharged", S.iv_started_at.is_not(None), S.iv_stopped_at.is_not(None))
        .cte("infused")
    )
    events = union_all(
        select(base.c.sid, epoch_seconds(base.c.t0).label("e")),
        select(base.c.sid, epoch_seconds(VitalSign.taken_at))
        .join(VitalSign, VitalSign.session_id == base.c.sid)
        .where(VitalSign.status == "active", VitalSign.taken_at >= base.c.t0, VitalSign.taken_at <= base.c.t1),
        select(base.c.sid, epoch_seconds(base.c.t1)),
    ).subquery("events")
    previous = func.lag(events.c.e).over(partition_by=events.c.sid, order_by=events.c.e)
    steps = select(events.c.sid, ((events.c.e - previous) / 60.0).label("gap")).subquery("steps")
    gaps = (
        select(steps.c.sid, func.max(steps.c.gap).label("gap"))
        .where(steps.c.gap.is_not(None))
        .group_by(steps.c.sid)
        .subquery("gaps")
    )
    nurse = (
        select(func.min(RateChange.entered_by_id))
        .where(RateChange.session_id == S.id, RateChange.kind == "start", RateChange.status == "active")
        .scalar_subquery()
    )
    pre = exists().where(VitalSign.session_id == S.id, VitalSign.status == "active", VitalSign.phase == "pre")
    q = (
        select(
            S.id,
            S.checked_in_at,
            Chair.site_id,
            S.therapy_id,
            S.chair_id,
            S.at_home,
            S.infusion_number,
            S.status,
            S.discharged_at,
            S.closed_at,
            S.iv_stopped_at,
            _infusion_minutes(),
            _chair_minutes(),
            nurse,
            pre,
            reacted.c.worst,
            reacted.c.during,
            reacted.c.after,
            gaps.c.gap,
        )
        .select_from(S)
        .join(Chair, Chair.id == S.chair_id)
        .outerjoin(reacted, reacted.c.sid == S.id)
        .outerjoin(gaps, gaps.c.sid == S.id)
        .where(cond, S.checked_in_at.is_not(None))
    )
    return q


def _parse(result: Any, zones: dict[int, ZoneInfo]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for (
        sid,
        checked_in,
        site,
        therapy,
        chair,
        at_home,
        number,
        status,
        discharged,
        closed,
        iv_stop,
        inf,
        chair_min,
        nurse_id,
        has_pre,
        worst,
        during,
        after,
        gap,
    ) in result:
        assert checked_in is not None  # the query selects checked-in sessions only
        completed = status == "discharged"
        end = discharged or closed
        out[sid] = {
            "session_id": sid,
            "site_id": site,
            "local_day": checked_in.astimezone(zones.get(site, UTC)).date(),
            "therapy_id": therapy,
            "chair_id": chair,
            "at_home": bool(at_home),
            "infusion_number": number,
            "nurse_id": nurse_id,
            "status": status,
            "completed": completed,
            "reacted": worst is not None,
            "worst_grade": worst,
            "reacted_during": bool(during),
            "reacted_after": bool(after),
            "infusion_minutes": None if inf is None else float(inf),
            "chair_minutes": None if chair_min is None else float(chair_min),
            "start_epoch": checked_in.timestamp(),
            "end_epoch": end.timestamp() if end is not None else None,
            "iv_stop_applies": status in ("observation", "discharged") or discharged is not None,
            "iv_stop_missing": iv_stop is None,
            "pre_vitals_missing": not has_pre,
            "gap_minutes": None if gap is None else float(gap),
        }
    return out


def _contribution(row: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, int]]:
    done = row["completed"]
    counts = {
        "checked_in": 1,
        "completed": int(done),
        "reacted": int(done and row["reacted"]),
        **{f"grade_{g}": int(done and row["worst_grade"] == g) for g in range(1, 6)},
        "reacted_during": int(done and row["reacted_during"]),
        "reacted_after": int(done and row["reacted_after"]),
        "iv_stop_applies": int(row["iv_stop_applies"]),
        "iv_stop_missing": int(row["iv_stop_applies"] and row["iv_stop_missing"]),
        "pre_vitals_missing": int(row["pre_vitals_missing"]),
        "gap_checked": int(row["gap_minutes"] is not None),
        **_time_lost_counts(row),
    }
    key = (row["site_id"], row["local_day"], row["therapy_id"], row["at_home"], band(row["infusion_number"]))
    return key, counts


#: the rollup's time-lost sums: (count column, seconds column, trend_session minutes column)
TIME_LOST_SUMS = (("infusion_n", "infusion_seconds", "infusion_minutes"), ("chair_n", "chair_seconds", "chair_minutes"))


def _time_lost_counts(row: dict[str, Any]) -> dict[str, int]:
    """A completed session's infusion and chair minutes as counts and whole seconds (floor(minutes × 60), the
    duration histogram's `seconds`), in all and again under `reacted_…` when it had a reaction."""
    out: dict[str, int] = {}
    for n, seconds, minutes in TIME_LOST_SUMS:
        value = row[minutes] if row["completed"] else None
        have = value is not None
        whole = histogram.bin_of(float(value))[2] if value is not None else 0
        reacted = have and bool(row["reacted"])
        out |= {n: int(have), seconds: whole, f"reacted_{n}": int(reacted), f"reacted_{seconds}": whole * reacted}
    return out


def rollup_sums(t: Any, dialect: str) -> list[Any]:
    """Σ of every DAILY_COUNTS column over trend_session rows `t`, labelled by name, in DAILY_COUNTS order:
    the SQL twin of `_contribution` (the rebuild's rollup, and a nurse or chair filter's read)."""
    done = t.completed

    def n(cond: Any) -> Any:
        return func.sum(case((cond, 1), else_=0))

    def whole_seconds(cond: Any, minutes: Any) -> Any:
        return func.sum(case((cond, histogram.floor_int(minutes * 60.0, dialect)), else_=0))

    sums = {
        "checked_in": func.count(),
        "completed": n(done),
        "reacted": n(and_(done, t.reacted)),
        **{f"grade_{g}": n(and_(done, t.worst_grade == g)) for g in range(1, 6)},
        "reacted_during": n(and_(done, t.reacted_during)),
        "reacted_after": n(and_(done, t.reacted_after)),
        "iv_stop_applies": n(t.iv_stop_applies),
        "iv_stop_missing": n(and_(t.iv_stop_applies, t.iv_stop_missing)),
        "pre_vitals_missing": n(t.pre_vitals_missing),
        "gap_checked": n(t.gap_minutes.is_not(None)),
    }
    for count, seconds, minutes in TIME_LOST_SUMS:
        have = and_(done, t[minutes].is_not(None))
        reacted = and_(have, t.reacted)
        sums |= {
            count: n(have),
            seconds: whole_seconds(have, t[minutes]),
            f"reacted_{count}": n(reacted),
            f"reacted_{seconds}": whole_seconds(reacted, t[minutes]),
        }
    return [sums[c].label(c) for c in DAILY_COUNTS]


def _apply(
    conn: Connection, table: Table, key_columns: tuple[str, ...], deltas: dict[tuple[Any, ...], dict[str, int]]
) -> None:
    """Add each key's deltas to its rollup row (INSERT … ON CONFLICT DO UPDATE col = col + delta)."""
    dialect = conn.dialect.name
    ins: Callable[..., Any] = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for key, counts in deltas.items():
        if not any(counts.values()):
            continue
        values = dict(zip(key_columns, key)) | counts
        stmt = ins(table).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(key_columns), set_={c: table.c[c] + stmt.excluded[c] for c in counts}
        )
        conn.execute(stmt)


def refresh_sessions(conn: Connection, session_ids: Iterable[int]) -> bool:
    """Recompute these sessions' summaries inside the caller's transaction; True if any changed."""
    ids = sorted({int(i) for i in session_ids if i is not None})
    if not ids:
        return False
    zones = site_zones(conn)
    new = _summary_by_ids(conn, ids, zones)
    old = {r["session_id"]: dict(r) for r in conn.execute(select(TS).where(TS.c.session_id.in_(ids))).mappings()}
    deltas: dict[tuple[Any, ...], dict[str, int]] = {}
    durations: dict[tuple[Any, ...], dict[str, int]] = {}
    use: dict[tuple[Any, ...], dict[str, int]] = {}

    def add(row: dict[str, Any], sign: int) -> None:
        key, counts = _contribution(row)
        into = deltas.setdefault(key, dict.fromkeys(DAILY_COUNTS, 0))
        for c, v in counts.items():
            into[c] += sign * v
        for key, counts in histogram.contributions(row):
            into = durations.setdefault(key, dict.fromkeys(histogram.COUNTS, 0))
            for c, v in counts.items():
                into[c] += sign * v
        for key, slots in chair_use.contributions(row, zones.get(row["site_id"], ZoneInfo("UTC"))):
            into = use.setdefault(key, {})
            for c, v in slots.items():
                into[c] = into.get(c, 0) + sign * v

    changed = False
    for sid in ids:
        before, after = old.get(sid), new.get(sid)
        if before == after:
            continue
        changed = True
        if before is not None:
            add(before, -1)
        if after is None:
            conn.execute(delete(TS).where(TS.c.session_id == sid))
        elif before is None:
            conn.execute(insert(TS).values(**after))
        else:
            conn.execute(update(TS).where(TS.c.session_id == sid).values(**after))
        if after is not None:
            add(after, +1)
    if changed:
        _apply(conn, TD, DAILY_KEY, deltas)
        _apply(conn, TM, MONTHLY_KEY, _monthly(deltas))
        histogram.apply_deltas(conn, TH, durations)
        histogram.apply_deltas(conn, histogram.THY, _yearly(durations, 1))
        _apply(conn, chair_use.TC, chair_use.KEY, use)
        _apply(conn, chair_use.TCY, chair_use.KEY, _yearly(use, 2))
        bump_version(conn)
    return changed


def _years_from_months(conn: Connection, months: Table, years: Table, keys: tuple[str, ...]) -> None:
    """Fill a per-year rollup from its per-month one (INSERT … SELECT … GROUP BY the year)."""
    year = histogram.year_expr(months.c.month, conn.dialect.name).label("month")
    counts = [c.name for c in months.columns if not c.primary_key]
    q = select(*(months.c[k] for k in keys), year, *(func.sum(months.c[c]) for c in counts)).group_by(
        *(months.c[k] for k in keys), year
    )
    conn.execute(insert(years).from_select([*keys, "month", *counts], q))


Rollup = dict[tuple[Any, ...], dict[str, int]]


def _summed(rows: Rollup, rekey: Callable[[tuple[Any, ...]], tuple[Any, ...]]) -> Rollup:
    """Rollup rows (or deltas) summed under a coarser key."""
    out: Rollup = {}
    for key, counts in rows.items():
        into = out.setdefault(rekey(key), {})
        for c, v in counts.items():
            into[c] = into.get(c, 0) + v
    return out


def _monthly(daily: Rollup) -> Rollup:
    """Daily rollup rows (or deltas) summed per site-local month (trend_monthly's key)."""
    return _summed(daily, lambda k: (k[0], histogram.month_of(_day(k[1])), *k[2:]))


def _yearly(deltas: Rollup, position: int) -> Rollup:
    """Month-keyed rollup rows (or deltas) summed per year (the month at `position` → 1 January)."""
    return _summed(deltas, lambda k: histogram.year_key(k, position))


def bump_version(conn: Connection) -> None:
    if conn.execute(update(TV).where(TV.c.id == 1).values(version=TV.c.version + 1)).rowcount == 0:
        conn.execute(insert(TV).values(id=1, version=1))


def data_version(conn: Connection) -> int:
    return int(conn.execute(select(TV.c.version).where(TV.c.id == 1)).scalar() or 0)


# --- the session events -----------------------------------------------------------------------------------


def _touched(session: Session) -> set[int]:
    """The sessions whose summary this flush may move."""
    ids: set[int] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, InfusionSession):
            ids.add(obj.id)
        elif isinstance(obj, VitalSign):
            if obj in session.deleted or _vital_may_move(session, obj):
                ids.add(obj.session_id)
        elif isinstance(obj, Reaction | RateChange):
            ids.add(obj.session_id)
    return ids


def _vital_may_move(session: Session, vital: VitalSign) -> bool:
    """A set of vitals reaches its session's summary in two ways only (`_summary_query`): a `pre` set
    decides `pre_vitals_missing`, and once the session is discharged its sets decide the longest gap.
    So a set that is not `pre` (before or after this flush), on a session this Session holds as not
    discharged and unchanged, moves nothing: the nurse's checks during an infusion or observation, the
    commonest save, skip the recompute. Anything not known without SQL counts as a move."""
    state = inspect(vital)
    if any(state.attrs[name].history.has_changes() for name in ("session_id", "phase")) and not state.pending:
        return True
    if vital.phase == "pre":
        return True
    parent = session.identity_map.get(session.identity_key(InfusionSession, vital.session_id))
    if parent is None:
        return True
    parent_state = inspect(parent)
    status = parent_state.dict.get("status")
    return status is None or status == "discharged" or parent_state.attrs.status.history.has_changes()


def _zone_changed(session: Session) -> bool:
    """A site's time zone changed, or a chair moved to another site: local days and sites may move."""
    return any(
        (isinstance(obj, Clinic) and inspect(obj).attrs.timezone.history.has_changes())
        or (isinstance(obj, Chair) and inspect(obj).attrs.site_id.history.has_changes())
        for obj in session.dirty
    )


def _settings_changed(session: Session) -> bool:
    """A site's settings changed: its opening hours decide chair utilisation's available chair-hours."""
    return any(isinstance(obj, Clinic) and inspect(obj).attrs.settings.history.has_changes() for obj in session.dirty)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: UOWTransaction) -> None:
    if _zone_changed(session):  # every local day may move: rare (set-up), so rebuild them all
        rebuild(session.connection())
        return
    if _settings_changed(session):  # nothing stored moves, but a cached figure must be drawn again
        bump_version(session.connection())
    ids = _touched(session)
    if ids:
        refresh_sessions(session.connection(), ids)


@event.listens_for(Session, "do_orm_execute")
def _bulk_write(state: ORMExecuteState) -> Any:
    """An UPDATE or DELETE of sessions or entries run through a Session: recompute what it touched."""
    if not (state.is_update or state.is_delete):
        return None
    stmt: Any = state.statement
    table = getattr(stmt, "table", None)
    name = getattr(table, "name", None)
    if table is None or name is None:
        return None
    if name == "infusion_session":
        names = {getattr(k, "key", k) for k in (getattr(stmt, "_values", None) or {})}
        if state.is_update and names and names <= _UNREAD_SESSION_COLUMNS:
            return None
        column = table.c.id
    elif name in _ENTRY_TABLES:
        column = table.c.session_id
    else:
        return None
    where = stmt.whereclause
    probe = select(column).distinct()
    if where is not None:
        probe = probe.where(where)
    conn = state.session.connection()
    ids = [r[0] for r in conn.execute(probe)]
    result = state.invoke_statement()
    refresh_sessions(conn, ids)
    return result


# --- the full rebuild -------------------------------------------------------------------------------------


def summarise_sessions(conn: Connection, cond: ColumnElement[bool]) -> None:
    """trend_session rows for the sessions `cond` selects, none of them summarised yet, from their raw rows.

    For a bulk load that summarises each batch of finished sessions while it writes the next (the demo on
    SQLite: its writing process waits for the generator about half the time); `rebuild(conn,
    sessions=False)` then adds the rollups from them."""
    zones = site_zones(conn)
    with _rebuild_functions(conn, zones):
        conn.execute(_insert_summaries(conn, cond, zones))


def rebuild(
    conn: Connection,
    *,
    chunk: int = 20_000,
    progress: Callable[[int, int], None] | None = None,
    sessions: bool = True,
) -> int:
    """Recompute every summary from the raw rows inside the caller's transaction; returns sessions summarised.

    For after a bulk load, an import, a migration or a clinic time-zone change. Sessions go in id
    chunks (`progress(done, total)` after each); the daily rollup is one INSERT … SELECT GROUP BY.
    `sessions` False: trend_session is already complete (`summarise_sessions`), only the rollups are built.
    """
    zones = site_zones(conn)
    conn.execute(delete(TD))
    conn.execute(delete(TM))
    if sessions:
        conn.execute(delete(TS))
    lo_hi = conn.execute(select(func.min(S.id), func.max(S.id), func.count())).one()
    first, last, total = lo_hi[0], lo_hi[1], int(lo_hi[2] or 0)
    done = 0 if sessions else total
    with _rebuild_functions(conn, zones):
        if first is None or not sessions:
            pass
        elif conn.dialect.name == "postgresql":
            # one statement: per id chunk the planner hashes every vital sign again (the LAG window's join)
            conn.execute(_insert_summaries(conn, S.id.is_not(None), zones))
            done = total
        else:
            start = int(first)
            while start <= int(last):
                within = and_(S.id >= start, S.id < start + chunk)
                conn.execute(_insert_summaries(conn, within, zones))
                done += conn.execute(select(func.count()).where(within).select_from(S)).scalar_one()
                start += chunk
                if progress:
                    progress(done, total)
    if progress and conn.dialect.name == "postgresql":
        progress(done, total)
    _rollup_from_sessions(conn)
    d = TD.c
    month = histogram.month_expr(d.local_day, conn.dialect.name)
    keys = (d.site_id, month, d.therapy_id, d.at_home, d.band)
    conn.execute(
        insert(TM).from_select(
            [*MONTHLY_KEY, *DAILY_COUNTS],
            select(*keys, *(func.sum(d[c]) for c in DAILY_COUNTS)).group_by(*keys),
        )
    )
    histogram.rebuild(conn)
    rebuild_chair_use(conn, zones)
    return done


def rebuild_chair_use(conn: Connection, zones: dict[int, ZoneInfo] | None = None) -> None:
    """Recompute the chair-use rollups (per month and per year) from trend_session, in the caller's
    transaction: part of `rebuild`, and alone after a revision that changes only what they hold."""
    zones = site_zones(conn) if zones is None else zones
    for table in (chair_use.TC, chair_use.TCY):
        conn.execute(delete(table))
    chair_use.insert_rows(conn, chair_use.rebuild_rows(conn, zones))
    _years_from_months(conn, chair_use.TC, chair_use.TCY, ("site_id", "chair_id"))
    bump_version(conn)


def _insert_summaries(conn: Connection, cond: ColumnElement[bool], zones: dict[int, ZoneInfo]) -> Any:
    """INSERT INTO trend_session … SELECT: the rows `_parse` makes of `_summary_query`, computed in the
    database (no row goes through Python). The local day and the epoch seconds are the per-write path's
    own: PostgreSQL's AT TIME ZONE with each site's zone, or on SQLite the Python functions
    `_rebuild_functions` registers (zoneinfo and datetime.timestamp, as `_parse` calls them)."""
    q = _summary_query(cond).subquery("summary")
    (sid, checked_in, site, therapy, chair, at_home, number, status, discharged, closed, iv_stop) = list(q.c)[:11]
    (inf, chair_min, nurse_id, has_pre, worst, during, after, gap) = list(q.c)[11:]
    end = func.coalesce(discharged, closed)
    if conn.dialect.name == "postgresql":
        zone = case({s: z.key for s, z in zones.items()}, value=site, else_="UTC") if zones else literal("UTC")
        local_day: Any = cast(checked_in.op("AT TIME ZONE")(zone), Date)
        start_epoch: Any = epoch_seconds(checked_in)
        end_epoch: Any = epoch_seconds(end)
    else:
        local_day = func.chairside_local_day(site, checked_in)
        start_epoch = func.chairside_epoch(checked_in)
        end_epoch = func.chairside_epoch(end)
    values = {
        "session_id": sid,
        "site_id": site,
        "local_day": local_day,
        "therapy_id": therapy,
        "chair_id": chair,
        "at_home": func.coalesce(at_home, false()),
        "infusion_number": number,
        "nurse_id": nurse_id,
        "status": status,
        "completed": status == "discharged",
        "reacted": worst.is_not(None),
        "worst_grade": worst,
        "reacted_during": func.coalesce(during, 0) != 0,
        "reacted_after": func.coalesce(after, 0) != 0,
        "infusion_minutes": inf,
        "chair_minutes": chair_min,
        "start_epoch": start_epoch,
        "end_epoch": end_epoch,
        "iv_stop_applies": or_(status.in_(("observation", "discharged")), discharged.is_not(None)),
        "iv_stop_missing": iv_stop.is_(None),
        "pre_vitals_missing": not_(has_pre),
        "gap_minutes": gap,
    }
    assert tuple(values) == SESSION_COLUMNS
    return insert(TS).from_select(list(values), select(*values.values()))


@contextmanager
def _rebuild_functions(conn: Connection, zones: dict[int, ZoneInfo]) -> Iterator[None]:
    """On SQLite (no time-zone database), the site-local day and the epoch seconds of a stored time as
    SQL functions for `_insert_summaries`, removed from the pooled connection afterwards; on PostgreSQL,
    no JIT for the statement (compiling it costs about a second per statement, more than running it)."""
    raw: Any = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        # and no statement timeout: the one INSERT … SELECT of a million-session network is a deliberate bulk
        # job (a migration, a demo load, the rebuild command), not a screen's query the timeout guards
        saved = conn.exec_driver_sql("SELECT current_setting('jit'), current_setting('statement_timeout')").one()
        conn.exec_driver_sql("SET LOCAL jit = off")
        conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
        try:
            yield
        finally:
            conn.execute(
                select(func.set_config("jit", saved[0], True), func.set_config("statement_timeout", saved[1], True))
            )
        return
    parse = datetime.fromisoformat

    def local_day(site: int | None, stamp: str | None) -> str | None:
        if stamp is None:
            return None
        return parse(stamp).replace(tzinfo=UTC).astimezone(zones.get(site, UTC)).date().isoformat()  # type: ignore[arg-type]

    def epoch(stamp: str | None) -> float | None:
        return None if stamp is None else parse(stamp).replace(tzinfo=UTC).timestamp()

    raw.create_function("chairside_local_day", 2, local_day, deterministic=True)
    raw.create_function("chairside_epoch", 1, epoch, deterministic=True)
    try:
        yield
    finally:
        raw.create_function("chairside_local_day", 2, None)
        raw.create_function("chairside_epoch", 1, None)


def _rollup_from_sessions(conn: Connection) -> None:
    t = TS.c
    keys = (t.site_id, t.local_day, t.therapy_id, t.at_home, band_sql(t.infusion_number))
    q = select(*keys, *rollup_sums(t, conn.dialect.name)).group_by(*keys)
    conn.execute(insert(TD).from_select([*DAILY_KEY, *DAILY_COUNTS], q))


def compare(conn: Connection) -> list[str]:
    """Differences between the stored summaries and a recompute from the raw rows (empty when in step)."""
    problems: list[str] = []
    fresh = summary_rows(conn, S.id.is_not(None), site_zones(conn))
    stored = {r["session_id"]: dict(r) for r in conn.execute(select(TS)).mappings()}
    for sid in sorted(set(fresh) | set(stored)):
        if fresh.get(sid) != stored.get(sid):
            problems.append(f"session {sid}: stored {stored.get(sid)} != raw {fresh.get(sid)}")
    expected: dict[tuple[Any, ...], dict[str, int]] = {}
    for row in fresh.values():
        key, counts = _contribution(row)
        into = expected.setdefault(key, dict.fromkeys(DAILY_COUNTS, 0))
        for c, v in counts.items():
            into[c] += v
    daily = {
        tuple(r[k] for k in DAILY_KEY): {c: int(r[c]) for c in DAILY_COUNTS}
        for r in conn.execute(select(TD)).mappings()
    }
    zero = dict.fromkeys(DAILY_COUNTS, 0)
    for key in sorted(set(expected) | set(daily), key=repr):
        if expected.get(key, zero) != daily.get(key, zero):
            problems.append(f"daily {key}: stored {daily.get(key)} != raw {expected.get(key)}")
    monthly = {
        tuple(_day(r[k]) if k == "month" else r[k] for k in MONTHLY_KEY): {c: int(r[c]) for c in DAILY_COUNTS}
        for r in conn.execute(select(TM)).mappings()
    }
    expected_monthly = _monthly(expected)
    for key in sorted(set(expected_monthly) | set(monthly), key=repr):
        if expected_monthly.get(key, zero) != monthly.get(key, zero):
            problems.append(f"monthly {key}: stored {monthly.get(key)} != raw {expected_monthly.get(key)}")
    bins: dict[tuple[Any, ...], dict[str, int]] = {}
    for row in fresh.values():
        for key, counts in histogram.contributions(row):
            into = bins.setdefault(key, dict.fromkeys(histogram.COUNTS, 0))
            for c, v in counts.items():
                into[c] += v
    for table, expected_bins in ((TH, bins), (histogram.THY, _yearly(bins, 1))):
        stored_bins = histogram.stored_bins(conn, table)
        nothing = dict.fromkeys(histogram.COUNTS, 0)
        for key in sorted(set(expected_bins) | set(stored_bins), key=repr):
            if expected_bins.get(key, nothing) != stored_bins.get(key, nothing):
                problems.append(f"{table.name} {key}: stored {stored_bins.get(key)} != raw {expected_bins.get(key)}")
    zones = site_zones(conn)
    use: dict[tuple[Any, ...], dict[str, int]] = {}
    for row in fresh.values():
        for key, slots in chair_use.contributions(row, zones.get(row["site_id"], ZoneInfo("UTC"))):
            into = use.setdefault(key, {})
            for c, v in slots.items():
                into[c] = into.get(c, 0) + v
    use = {k: {c: v for c, v in slots.items() if v} for k, slots in use.items()}
    use = {k: v for k, v in use.items() if v}
    for table, expected_use in ((chair_use.TC, use), (chair_use.TCY, _nonzero(_yearly(use, 2)))):
        stored_use = chair_use.stored_rows(conn, table)
        for key in sorted(set(expected_use) | set(stored_use), key=repr):
            if expected_use.get(key) != stored_use.get(key):
                problems.append(f"{table.name} {key}: stored {stored_use.get(key)} != raw {expected_use.get(key)}")
    return problems


def _nonzero(rows: dict[tuple[Any, ...], dict[str, int]]) -> dict[tuple[Any, ...], dict[str, int]]:
    kept = {k: {c: v for c, v in counts.items() if v} for k, counts in rows.items()}
    return {k: v for k, v in kept.items() if v}


def _day(value: Any) -> Any:
    """A DATE as stored (SQLite may hand back text from an INSERT … SELECT) as a date."""
    return date.fromisoformat(str(value)[:10]) if value is not None and not isinstance(value, date) else value
