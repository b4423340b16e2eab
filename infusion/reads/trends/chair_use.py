"""Chair utilisation from `trend_chair_use`, so it costs the same at any history size.

Each closed session (discharged, or closed by deferral or cancellation) adds the milliseconds it occupied
its chair to the hour-of-the-week slots (site-local weekday × 24 + hour, wall-clock time as the raw
figure counts it, DST included) of the site-local month each slot falls in. A period then reads whole
months from the rollup (one wide row per chair × month), the days of the months it covers in part from
`trend_session` (the raw figure's own arithmetic, `utilisation._site_cells`), and sessions still open
from the raw rows, counted until now, exactly as the raw figure does. Filtering by therapy, location,
infusion number or nurse (not in the rollup's key) reads `trend_session` for the whole period.

The result equals the raw figure's to a millisecond per chair-hour slot (the rollup keeps whole
milliseconds: check-in and end are rounded to the millisecond first, so the per-write and the rebuild
arithmetic are the same integers).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Integer, Select, Table, bindparam, false, func, literal, select, union_all
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from db.models import (
    ACTIVE_STATUSES,
    CHAIR_USE_SLOTS,
    InfusionSession,
    TrendSession,
    trend_chair_use,
    trend_chair_use_year,
)
from infusion.reads.trends.filters import TrendFilters, _fetch
from infusion.reads.trends.histogram import Piece, month_of
from infusion.reads.trends.utilisation import site_chairs

TC: Table = trend_chair_use
TCY: Table = trend_chair_use_year
KEY = ("site_id", "chair_id", "month")
#: `chair_id` of a site's row for all its treatment chairs together (every session not at home; ids start
#: at 1): utilisation without a chair filter reads it less the inactive chairs' rows, one row per site and
#: piece instead of one per chair (five years of a 300-chair site summed ~2,000 rows of 168 slots: 20-30 ms
#: on PostgreSQL)
EVERY_CHAIR = 0
SLOT_COLUMNS = tuple(f"h{i}" for i in range(CHAIR_USE_SLOTS))
_EPOCH = date(1970, 1, 1)
_EPOCH_WALL = datetime(1970, 1, 1)
_MS_PER_HOUR = 3_600_000


def _to_ms(epoch_seconds: np.ndarray) -> np.ndarray:
    """Whole milliseconds (half to even, as Python's round): both paths below start from the same integers."""
    return np.rint(np.asarray(epoch_seconds, dtype="float64") * 1000).astype("int64")


def _wall_ms(ms: np.ndarray, zone: ZoneInfo) -> np.ndarray:
    """Wall-clock milliseconds since 1970-01-01 00:00 local (utilisation._site_cells's `wall_hours`)."""
    local = pd.to_datetime(ms, unit="ms", utc=True).tz_convert(zone).tz_localize(None)
    return local.to_numpy(dtype="datetime64[ms]").astype("int64")


def _wall_ms_one(ms: int, zone: ZoneInfo) -> int:
    """`_wall_ms` of one instant without pandas (the per-write path), in integer arithmetic."""
    seconds, rest = divmod(ms, 1000)
    wall = datetime.fromtimestamp(seconds, zone).replace(tzinfo=None)
    return (wall - _EPOCH_WALL) // timedelta(milliseconds=1) + rest


def closed(row: dict[str, Any]) -> bool:
    return row["status"] not in ACTIVE_STATUSES and row["start_epoch"] is not None and row["end_epoch"] is not None


def slot_parts(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(interval index, wall-clock hour since 1970, slot of the week, overlap ms) of every hour each
    [a, b) wall-clock-milliseconds interval touches."""
    keep = b > a
    idx = np.nonzero(keep)[0]
    a, b = a[keep], b[keep]
    first = a // _MS_PER_HOUR
    count = -(-b // _MS_PER_HOUR) - first
    owner = np.repeat(np.arange(len(first)), count)
    offset = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    hour = first[owner] + offset
    lo = np.maximum(a[owner], hour * _MS_PER_HOUR)
    hi = np.minimum(b[owner], (hour + 1) * _MS_PER_HOUR)
    slot = ((hour // 24 + 3) % 7) * 24 + hour % 24  # 1970-01-01 was a Thursday
    return idx[owner], hour, slot, hi - lo


def _month_of_hour(hour: int) -> date:
    return month_of(_EPOCH + timedelta(days=int(hour // 24)))


def contributions(row: dict[str, Any], zone: ZoneInfo) -> list[tuple[tuple[Any, ...], dict[str, int]]]:
    """The (site, chair, month) rows and slot milliseconds one closed trend_session row adds."""
    if not closed(row):
        return []
    start, end = _to_ms(np.array([row["start_epoch"], row["end_epoch"]]))
    a = np.array([_wall_ms_one(int(start), zone)])
    b = np.array([_wall_ms_one(int(end), zone)])
    _, hours, slots, ms = slot_parts(a, b)
    out: dict[tuple[Any, ...], dict[str, int]] = {}
    for hour, slot, part in zip(hours, slots, ms):
        if part <= 0:
            continue
        chairs = (row["chair_id"],) if row["at_home"] else (row["chair_id"], EVERY_CHAIR)
        for chair in chairs:
            into = out.setdefault((row["site_id"], chair, _month_of_hour(int(hour))), {})
            into[f"h{slot}"] = into.get(f"h{slot}", 0) + int(part)
    return list(out.items())


def rebuild_rows(conn: Connection, zones: dict[int, ZoneInfo]) -> list[tuple[Any, ...]]:
    """Every rollup row from trend_session's closed sessions (vectorised per site), as tuples in the
    table's column order (`insert_rows`)."""
    t = TrendSession.__table__.c
    out: list[tuple[Any, ...]] = []
    for site, zone in zones.items():
        result = conn.execute(
            select(t.chair_id, t.start_epoch, t.end_epoch, func.coalesce(t.at_home, false())).where(
                t.site_id == site,
                t.status.not_in(ACTIVE_STATUSES),
                t.start_epoch.is_not(None),
                t.end_epoch.is_not(None),
            )
        )
        # the driver's tuples of plain numbers, as they are (a million Row objects cost more than the sums)
        raw_rows = result.cursor.fetchall() if result.cursor is not None else []
        result.close()
        if not raw_rows:
            continue
        data = np.array(raw_rows, dtype="float64")
        a, b = _wall_ms(_to_ms(data[:, 1]), zone), _wall_ms(_to_ms(data[:, 2]), zone)
        owner, hours, slots, ms = slot_parts(a, b)
        kept = ms > 0
        chairs = data[owner[kept], 0].astype("int64")
        in_chair = data[owner[kept], 3] == 0  # not at home: also the site's row for every chair
        # months since 1970-01 as integers (grouping on date objects cost seconds at a million sessions)
        months = (hours[kept] // 24).astype("datetime64[D]").astype("datetime64[M]").astype("int64")
        frame = pd.DataFrame({"chair": chairs, "month": months, "slot": slots[kept], "ms": ms[kept]})
        frame = pd.concat([frame, frame[in_chair].assign(chair=EVERY_CHAIR)], ignore_index=True)
        table = frame.groupby(["chair", "month", "slot"])["ms"].sum().unstack("slot", fill_value=0)
        table = table.reindex(columns=range(CHAIR_USE_SLOTS), fill_value=0)
        keys = table.index.tolist()
        for (chair, month), values in zip(keys, table.to_numpy(dtype="int64").tolist()):
            out.append((site, int(chair), date(1970 + month // 12, month % 12 + 1, 1), *values))
    return out


def insert_rows(conn: Connection, rows: list[tuple[Any, ...]], table: Table = TC) -> None:
    """`rebuild_rows` into the rollup through the DBAPI cursor, in the caller's transaction (the values are
    integers and dates this module computed: the engine's per-parameter checks would cost more than the
    insert): COPY on PostgreSQL, executemany on SQLite."""
    if not rows:
        return
    columns = [c.name for c in table.columns]
    raw: Any = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cursor:
            with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    cursor = raw.cursor()
    try:
        cursor.executemany(sql, ((r[0], r[1], r[2].isoformat(), *r[3:]) for r in rows))
    finally:
        cursor.close()


def stored_rows(conn: Connection, table: Table = TC) -> dict[tuple[Any, ...], dict[str, int]]:
    """The rollup as {(site, chair, month): {h<slot>: ms}} without zero slots (for `compare`)."""
    out = {}
    for r in conn.execute(select(table)).mappings():
        month = r["month"] if isinstance(r["month"], date) else date.fromisoformat(str(r["month"])[:10])
        out[(r["site_id"], r["chair_id"], month)] = {c: int(r[c]) for c in SLOT_COLUMNS if r[c]}
    return {k: v for k, v in out.items() if v}


# --- reading -----------------------------------------------------------------------------------------------


def answers(f: TrendFilters) -> bool:
    """The rollup is keyed by chair only: a therapy, location, infusion or nurse filter reads trend_session."""
    return not (f.therapy_ids or f.location != "all" or f.infusion != "all" or f.nurse_ids)


@cache
def _pieces_statement(yearly: tuple[bool, ...], dialect: str) -> Select[Any]:
    """The rows of every piece of a period (`yearly`: each piece's table) for the chairs asked for
    (`chairs`), as (piece index, chair_id, h0 … h167) in one UNION ALL, built once per shape: one round
    trip, not one per piece (a year's default period is four pieces). Each table goes by a one-letter
    alias and nothing is summed in SQL: a sum over every piece in one statement was 20 kB of SQL that
    PostgreSQL took ~11 ms to plan, every read. On PostgreSQL the 168 slots come as one array column:
    psycopg builds a column description per column of every statement, 169 of them 0.4 ms a read."""
    parts = []
    for i, from_year in enumerate(yearly):
        c = (TCY if from_year else TC).alias(f"y{i}" if from_year else f"m{i}").c
        slots: tuple[Any, ...] = tuple(c[n] for n in SLOT_COLUMNS)
        if dialect == "postgresql":
            slots = (postgresql.array(slots).label("slots"),)
        parts.append(
            select(literal(i, Integer).label("piece"), c.chair_id, *slots).where(
                c.site_id == bindparam("site"),
                c.chair_id.in_(bindparam("chairs", expanding=True)),
                c.month >= bindparam(f"first_{i}"),
                c.month <= bindparam(f"last_{i}"),
            )
        )
    return union_all(*parts) if len(parts) > 1 else parts[0]  # type: ignore[return-value]


def month_slots(s: Session, site: int, chairs: Sequence[int] | None, pieces: list[Piece]) -> np.ndarray:
    """Occupied hours per slot of the week over the whole months of a period, read as
    `histogram.signed_calendar` splits them (years from trend_chair_use_year, less or plus months from
    trend_chair_use). `chairs`: those chairs' rows (a chair filter, as `utilisation.site_chairs` keeps
    it); None: the site's active treatment chairs, read as its row for every treatment chair
    (`EVERY_CHAIR`) less the rows of its inactive ones (usually none): one row or a few per piece,
    whatever the number of chairs."""
    total = np.zeros(CHAIR_USE_SLOTS, dtype=np.int64)
    if not pieces:
        return total / _MS_PER_HOUR
    if chairs is None:
        inactive = list(s.scalars(site_chairs(site, active=False)))
        wanted, taken_away = [EVERY_CHAIR, *inactive], inactive
    else:
        wanted, taken_away = list(chairs), []
    conn = s.connection()
    params: dict[str, Any] = {"site": site, "chairs": wanted}
    for i, piece in enumerate(pieces):
        params[f"first_{i}"], params[f"last_{i}"] = piece.first, piece.last
    statement = _pieces_statement(tuple(p.yearly for p in pieces), conn.dialect.name)
    rows = conn.execute(statement, params).all()
    if rows:
        as_array = conn.dialect.name == "postgresql"  # (piece, chair_id, slots[]) rather than 170 columns
        a = np.array([(r[0], r[1], *r[2]) for r in rows] if as_array else rows, dtype=np.int64)
        signs = np.array([p.sign for p in pieces], dtype=np.int64)[a[:, 0]]
        signs = np.where(np.isin(a[:, 1], taken_away), -signs, signs)
        total += signs @ a[:, 2:]
    return total / _MS_PER_HOUR


def open_rows(s: Session, chairs: Iterable[int], hi: datetime, now: datetime) -> list[tuple[float, float]]:
    """(check-in, now) of sessions still open in these chairs, checked in before `hi` (epoch seconds).

    The chairs are matched here, not in SQL: open sessions are a few per chair, and an IN list of a large
    site's chairs (292 in the million-session demo) made a statement psycopg parsed again on every read
    (its cache keeps statements under 4 kB), 7 of this figure's 9 ms."""
    wanted = set(chairs)
    rows = _fetch(s, _OPEN_SESSIONS, {"hi": hi})
    return [(a.replace(tzinfo=a.tzinfo or UTC).timestamp(), now.timestamp()) for chair, a in rows if chair in wanted]


_OPEN_SESSIONS = select(InfusionSession.chair_id, InfusionSession.checked_in_at).where(
    InfusionSession.status.in_(ACTIVE_STATUSES),
    InfusionSession.checked_in_at < bindparam("hi"),
    InfusionSession.checked_in_at.is_not(None),
)
