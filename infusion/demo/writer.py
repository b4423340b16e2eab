"""Bulk writing: rows as plain tuples, encoded once, written per table in batches, parents first.

Why not the service functions: they take one transaction, a lock and an audit
row per step, which is right for a nurse's tap and far too slow for 100,000
sessions. Rows are encoded with the model columns' own bind processors (so
stored timestamps, JSON and booleans are exactly what the ORM would write) and
primary keys come from max(id) + 1 (`Ids`), so children can point at parents
without RETURNING. `COLUMNS` fixes each table's column order; the loader checks
it against the models before it starts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, func, select

from db.models import (
    AppUser,
    AuditEvent,
    Base,
    Chair,
    Clinic,
    InfusionSession,
    Patient,
    Premedication,
    ProgramCheck,
    RateChange,
    Reaction,
    VitalSign,
)


def table_of(model: type[Base]) -> Table:
    """A model's table typed as a `Table` (the ORM declares `__table__` as any FromClause)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


PATIENT_TABLE = table_of(Patient)
SESSION_TABLE = table_of(InfusionSession)
VITALS_TABLE = table_of(VitalSign)
PREMED_TABLE = table_of(Premedication)
RATE_TABLE = table_of(RateChange)
REACTION_TABLE = table_of(Reaction)
PROGRAM_TABLE = table_of(ProgramCheck)
CHAIR_TABLE = table_of(Chair)
USER_TABLE = table_of(AppUser)
CLINIC_TABLE = table_of(Clinic)
AUDIT_TABLE = table_of(AuditEvent)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Encoder:
    """Turns Python values into what the driver receives, using the model columns' bind processors.

    Clinical times are whole UTC minutes since the epoch (ints are cheap to add);
    each distinct minute is encoded once and cached.
    """

    def __init__(self, dialect: Any) -> None:
        self._ts = _processor(VITALS_TABLE.c.taken_at, dialect)
        self._json = _processor(VITALS_TABLE.c.flags, dialect)
        self._date = _processor(PATIENT_TABLE.c.birth_date, dialect)
        to_bool = _processor(VITALS_TABLE.c.on_oxygen, dialect)
        self.true, self.false = to_bool(True), to_bool(False)
        self.empty_list, self.empty_dict = self._json([]), self._json({})
        self._minutes: dict[int, Any] = {}

    def ts(self, minute: int | None) -> Any:
        if minute is None:
            return None
        value = self._minutes.get(minute)
        if value is None:
            value = self._minutes[minute] = self._ts(EPOCH + timedelta(minutes=minute))
        return value

    def json(self, value: Any) -> Any:
        return self._json(value)

    def day(self, value: date | None) -> Any:
        return self._date(value)

    def flag(self, value: bool) -> Any:
        return self.true if value else self.false


def _processor(column: Any, dialect: Any) -> Callable[[Any], Any]:
    proc = column.type.dialect_impl(dialect).bind_processor(dialect)
    return proc or (lambda value: value)


# Column order of each table as the loader writes it (checked against the models at start).
COLUMNS: dict[Table, tuple[str, ...]] = {
    PATIENT_TABLE: (
        "id",
        "mrn",
        "family_name",
        "given_name",
        "birth_date",
        "diagnosis",
        "allergies",
        "weight_kg",
        "created_at",
    ),
    SESSION_TABLE: (
        "id",
        "patient_id",
        "therapy_id",
        "chair_id",
        "dose",
        "dose_unit",
        "infusion_number",
        "status",
        "walk_in",
        "scheduled_at",
        "checked_in_at",
        "ready_at",
        "iv_started_at",
        "iv_stopped_at",
        "discharged_at",
        "closed_at",
        "deferral_reason",
        "cancel_reason",
        "early_discharge_reason",
        "premed_override_reason",
        "long_infusion_flag",
        "iv_site",
        "iv_gauge",
        "iv_attempts",
        "lot_number",
        "current_rate_ml_h",
        "baseline_systolic",
        "reaction_count",
        "worst_grade",
        "infusion_minutes",
        "chair_minutes",
        "last_vitals_at",
        "created_at",
        "created_by_id",
        "version",
        "course_number",
        "course_day",
    ),
    VITALS_TABLE: (
        "id",
        "session_id",
        "phase",
        "taken_at",
        "entered_at",
        "entered_by_id",
        "systolic",
        "diastolic",
        "pulse",
        "resp_rate",
        "temperature_c",
        "spo2",
        "pain",
        "weight_kg",
        "consciousness",
        "on_oxygen",
        "position",
        "unable_to_obtain",
        "provider_notified",
        "provider_name",
        "provider_notified_at",
        "flags",
        "flag_count",
        "news2",
        "news2_complete",
        "note",
        "status",
    ),
    PREMED_TABLE: (
        "id",
        "session_id",
        "drug",
        "dose",
        "route",
        "given_at",
        "entered_at",
        "entered_by_id",
        "status",
    ),
    RATE_TABLE: (
        "id",
        "session_id",
        "at",
        "kind",
        "rate_ml_h",
        "note",
        "entered_at",
        "entered_by_id",
        "status",
    ),
    REACTION_TABLE: (
        "id",
        "session_id",
        "onset_at",
        "symptoms",
        "other_text",
        "grade",
        "actions",
        "medication_given",
        "resolved_at",
        "provider_notified",
        "provider_name",
        "note",
        "entered_at",
        "entered_by_id",
        "status",
    ),
    PROGRAM_TABLE: ("id", "session_id", "program", "authorization_ref", "confirmed_at", "confirmed_by_id"),
}
COUNT_LABELS = {
    "patients": "patient",
    "sessions": "infusion_session",
    "vital_signs": "vital_sign",
    "rate_changes": "rate_change",
    "premedications": "premedication",
    "reactions": "reaction",
    "program_checks": "program_check",
}
#: Parents before children, so foreign keys hold at every statement.
INSERT_ORDER = tuple(COLUMNS)


#: Tables whose ids the loader hands out itself.
ID_TABLES = (*INSERT_ORDER, CHAIR_TABLE, USER_TABLE)


class Ids:
    """The next primary key per table, from max(id) + 1 when the load starts (the tables are locked)."""

    def __init__(self, conn: Connection, tables: Iterable[Table] = ID_TABLES) -> None:
        self.next = {t: int(conn.execute(select(func.coalesce(func.max(t.c.id), 0))).scalar_one()) + 1 for t in tables}

    def take(self, table: Table) -> int:
        value = self.next[table]
        self.next[table] = value + 1
        return value


class Writer:
    """Buffers rows per table and writes them in batches, parents first.

    SQLite (and any other DB-API driver) gets one executemany per table and
    batch; PostgreSQL through psycopg gets COPY, several times faster there.
    (A background writer thread was tried and was slower: sqlite3 re-takes the
    GIL after every row and waits out the interpreter's switch interval.)
    """

    def __init__(
        self, conn: Connection, batch_rows: int = 50_000, on_flush: Callable[[Writer], None] | None = None
    ) -> None:
        self.conn = conn
        self.batch_rows = batch_rows
        #: called after each batch (the command line's progress line reads `written` and `counts`)
        self.on_flush = on_flush
        self.written = 0
        self.buffers: dict[Table, list[tuple[Any, ...]]] = {t: [] for t in INSERT_ORDER}
        self.counts: dict[str, int] = defaultdict(int)
        self._pending = 0
        dialect = conn.dialect
        self._copy = dialect.name == "postgresql" and dialect.driver == "psycopg"
        self._sql = {t: _insert_sql(dialect, t, COLUMNS[t]) for t in INSERT_ORDER}

    def add(self, table: Table, row: tuple[Any, ...]) -> None:
        self.buffers[table].append(row)
        self._pending += 1

    def maybe_flush(self) -> None:
        if self._pending >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        for table in INSERT_ORDER:
            rows = self.buffers[table]
            if not rows:
                continue
            if self._copy:
                self._copy_rows(table, rows)
            else:
                self.conn.exec_driver_sql(self._sql[table], rows)
            self.counts[table.name] += len(rows)
            self.written += len(rows)
            self.buffers[table] = []
        self._pending = 0
        if self.on_flush is not None:
            self.on_flush(self)

    def _copy_rows(self, table: Table, rows: list[tuple[Any, ...]]) -> None:
        driver = self.conn.connection.driver_connection
        assert driver is not None  # a live connection inside the load's transaction
        cursor = driver.cursor()
        columns = ", ".join(f'"{c}"' for c in COLUMNS[table])
        with cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)


def _insert_sql(dialect: Any, table: Table, names: Sequence[str]) -> str:
    prep = dialect.identifier_preparer
    marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
    if marker is None:
        raise RuntimeError(f"Unsupported driver parameter style {dialect.paramstyle!r}")
    return (
        f"INSERT INTO {prep.format_table(table)} ({', '.join(prep.quote(n) for n in names)}) "
        f"VALUES ({', '.join([marker] * len(names))})"
    )


# ---------------------------------------------------------------------------
# Therapies, patients and dosing calendars
