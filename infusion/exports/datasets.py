"""Quality exports: the sessions, vitals, reactions and audit datasets as streamed rows, CSV files and previews.

The export page and `python -m infusion.exports` both call `write_csv`, so a
scheduled drop and a download are the same file. Rows are read from a
server-side cursor in chunks (`stream_results` + `yield_per`; engineering.md
§3: PostgreSQL drivers otherwise fetch the whole result first), and each chunk's
premedication, rate and reaction summaries are fetched with one indexed query per
chunk, so memory stays bounded however many millions of vitals there are. The
whole export reads one snapshot (REPEATABLE READ on PostgreSQL, one read
transaction on SQLite) so a nurse saving vitals mid-export cannot make the
datasets disagree.

Corrections are applied the way clinical.md §6b keeps them: each row shows the
current entry (`status = 'active'`), `corrected` says it replaced an earlier
one, superseded entries are never exported, and entries marked entered in error
are left out unless asked for (then flagged). Columns come from
`infusion.exports.schema`; de-identification rules from `infusion.exports.deidentify`.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import IO, Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Connection, Row, Select, case, func, select
from sqlalchemy.orm import aliased

from db.engine import Database
from db.models import (
    Addendum,
    AppUser,
    AuditEvent,
    Chair,
    Clinic,
    InfusionSession,
    Patient,
    Premedication,
    ProgramCheck,
    RateChange,
    Reaction,
    SessionCorrection,
    Therapy,
    VitalSign,
)
from infusion.accounts.permissions import AUDIT
from infusion.errors import ChairsideError, PermissionDenied, ValidationError
from infusion.exports import deidentify as deid
from infusion.exports.schema import DATASETS, SCHEMA_VERSION, Column, Deid, output_columns

#: Rows fetched per round trip and written per chunk: small enough to keep memory flat, large enough that
#: the per-chunk summary queries are few.
CHUNK_ROWS = 2_000
#: Roles allowed to export the audit trail (infusion.accounts.permissions.AUDIT; the page's service check uses the same).
AUDIT_ROLES = AUDIT
#: OWASP CSV injection: a cell starting with one of these is read as a formula by spreadsheets.
#: Line feed is added to the OWASP list: some spreadsheets skip a leading line break before evaluating.
DANGEROUS_LEADING = ("=", "+", "-", "@", "\t", "\r", "\n")
BOM = "\ufeff"

S, P, T, C = InfusionSession, Patient, Therapy, Chair
V, R, A, PM, RC = VitalSign, Reaction, AuditEvent, Premedication, RateChange


@dataclass(frozen=True)
class ExportFilters:
    """Which rows an export holds. Dates are the clinic's local days, both ends included.

    For sessions, vitals and reactions the range applies to the session's scheduled
    day, so the three datasets of one range describe the same sessions; for audit
    it applies to the event time. Therapy and chair filters select sessions (audit:
    events about those sessions); the nurse filter selects the nurse who checked the
    patient in (audit: the member of staff who made the change).
    """

    start: date
    end: date
    therapy_ids: tuple[int, ...] = ()
    chair_ids: tuple[int, ...] = ()
    nurse_ids: tuple[int, ...] = ()
    include_entered_in_error: bool = False

    def __post_init__(self) -> None:
        for name in ("therapy_ids", "chair_ids", "nurse_ids"):
            object.__setattr__(self, name, tuple(int(x) for x in getattr(self, name)))
        if self.start > self.end:
            raise ValidationError(
                {"end": f"The end date {self.end.isoformat()} is before the start date {self.start.isoformat()}."}
            )


@dataclass(frozen=True)
class _Context:
    tz: ZoneInfo
    staff: dict[int, str]
    columns: tuple[Column, ...]
    secret: bytes | None
    shapers: tuple[tuple[str, str, Callable[[Any, Any], Any] | None], ...] = ()


# Public API -------------------------------------------------------------------------------------


def iter_rows(
    db: Database,
    dataset: str,
    filters: ExportFilters,
    deidentify: bool = False,
    secret: bytes | str | None = None,
    *,
    actor_role: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[dict[str, Any]]:
    """Rows of a dataset as dicts keyed by output column, streamed from a server-side cursor.

    Values are Python objects: aware datetimes in the clinic's time zone (identified
    mode), numbers, booleans, text, None. Arguments are checked before the first row
    is asked for. Close the iterator (or exhaust it) to release the connection.
    """
    key = _check_request(dataset, actor_role, deidentify, secret)
    return _rows(db, dataset, filters, key, chunk_rows)


def write_csv(
    db: Database,
    dataset: str,
    filters: ExportFilters,
    out: IO[bytes] | IO[str],
    deidentify: bool = False,
    secret: bytes | str | None = None,
    progress: Callable[[int], None] | None = None,
    *,
    actor_role: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> int:
    """Write a dataset as CSV (UTF-8 with BOM) to a binary or text stream; returns the rows written.

    A text stream must be UTF-8 and opened with newline="" (the CSV uses CRLF line
    ends). `progress` is called with the running row count after each chunk.
    """
    key = _check_request(dataset, actor_role, deidentify, secret)
    columns = output_columns(dataset, deidentify)
    emit = _emitter(out)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow([c.name for c in columns])
    emit(buffer.getvalue())
    written = 0
    cell_writers = [(c.name, _cell_formatter(c)) for c in columns]
    with closing(_chunks(db, dataset, filters, key, chunk_rows)) as chunks:
        for chunk in chunks:
            buffer.seek(0)
            buffer.truncate()
            writer.writerows([fmt(row[name]) for name, fmt in cell_writers] for row in chunk)
            emit(buffer.getvalue())
            written += len(chunk)
            if progress is not None:
                progress(written)
    return written


def preview(
    db: Database,
    dataset: str,
    filters: ExportFilters,
    deidentify: bool = False,
    n: int = 20,
    *,
    secret: bytes | str | None = None,
    actor_role: str | None = None,
) -> tuple[pd.DataFrame, int]:
    """The first `n` rows (typed DataFrame, same columns as the file) and the total row count."""
    key = _check_request(dataset, actor_role, deidentify, secret)
    columns = output_columns(dataset, deidentify)
    with _snapshot(db) as conn:
        ctx = _context(conn, dataset, key)
        total = int(conn.scalar(_count_query(dataset, filters, ctx)) or 0)
        rows: list[dict[str, Any]] = []
        if n > 0:
            with closing(_chunks_on(conn, dataset, filters, ctx, n)) as chunks:
                rows = next(chunks, [])[:n]
    return to_frame(rows, columns, ctx.tz), total


def count_rows(db: Database, dataset: str, filters: ExportFilters, *, actor_role: str | None = None) -> int:
    """How many rows an export of these filters holds (the same in both modes)."""
    _check_request(dataset, actor_role, False, None)
    with _snapshot(db) as conn:
        ctx = _context(conn, dataset, None)
        return int(conn.scalar(_count_query(dataset, filters, ctx)) or 0)


def suggested_filename(dataset: str, filters: ExportFilters, deidentify: bool = False) -> str:
    """A file name that says what is inside: dataset, dates, mode and schema version."""
    mode = "_deidentified" if deidentify else ""
    return (
        f"chairside_{dataset}_{filters.start.isoformat()}_{filters.end.isoformat()}{mode}_schema-v{SCHEMA_VERSION}.csv"
    )


def neutralise(text: str) -> str:
    """OWASP CSV-injection guard: a leading single quote makes a formula-looking cell inert text."""
    return "'" + text if text[:1] in DANGEROUS_LEADING else text


def format_cell(value: Any) -> str | int | float:
    """One value as written to the CSV; numbers pass through untouched so negatives stay numbers."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return neutralise(str(value))


def _cell_formatter(col: Column) -> Callable[[Any], Any]:
    """`format_cell` specialised by column type: the per-cell cost dominates large exports."""
    if col.type in ("integer", "number"):
        return lambda v: v if type(v) in (int, float) else format_cell(v)
    if col.type == "boolean":
        return lambda v: "" if v is None else "true" if v is True else "false" if v is False else format_cell(v)
    if col.type == "datetime":
        return lambda v: v.isoformat(timespec="seconds") if type(v) is datetime else format_cell(v)
    return lambda v: neutralise(v) if type(v) is str else format_cell(v)


def to_frame(rows: list[dict[str, Any]], columns: Sequence[Column], tz: ZoneInfo | None = None) -> pd.DataFrame:
    """Rows as a DataFrame with nullable dtypes matching the schema (pandas 3: str, Int64, Float64, boolean)."""
    data: dict[str, pd.Series] = {}
    for col in columns:
        values = [r.get(col.name) for r in rows]
        if col.type == "integer":
            series = pd.Series(values, dtype="Int64")
        elif col.type == "number":
            series = pd.Series(values, dtype="Float64")
        elif col.type == "boolean":
            series = pd.Series(values, dtype="boolean")
        elif col.type == "datetime":
            series = pd.to_datetime(pd.Series(values, dtype=object), utc=True).astype("datetime64[us, UTC]")
            if tz is not None:
                series = series.dt.tz_convert(tz)
        elif col.type == "date":
            series = pd.Series(values, dtype=object)
        else:
            series = pd.Series(values, dtype="str")
        data[col.name] = series
    return pd.DataFrame(data, index=pd.RangeIndex(len(rows)))


# Request checks and plumbing ------------------------------------------------------------------------


def _check_request(dataset: str, actor_role: str | None, deidentify: bool, secret: bytes | str | None) -> bytes | None:
    if dataset not in DATASETS:
        raise ValidationError({"dataset": f"Unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}."})
    if dataset == "audit" and actor_role not in AUDIT_ROLES:
        raise PermissionDenied("The audit trail export is for quality and admin staff only.")
    return deid.resolve_secret(secret) if deidentify else None


def _emitter(out: IO[bytes] | IO[str]) -> Callable[[str], None]:
    if isinstance(out, io.TextIOBase):
        encoding = getattr(out, "encoding", None)
        name = codecs.lookup(encoding).name if encoding else "utf-8"
        if name not in ("utf-8", "utf-8-sig"):
            raise ChairsideError(
                f"The CSV is UTF-8; open the output in binary mode or with encoding='utf-8' (got {encoding})."
            )
        skip_bom = name == "utf-8-sig"  # that codec writes the BOM itself

        def emit_text(text: str) -> None:
            out.write(text.removeprefix(BOM) if skip_bom else text)  # type: ignore[arg-type]

        return emit_text

    def emit_bytes(text: str) -> None:
        out.write(text.encode("utf-8"))  # type: ignore[arg-type]

    return emit_bytes


@contextmanager
def _snapshot(db: Database) -> Iterator[Connection]:
    """One read-only transaction for the whole export, so every chunk sees the same data."""
    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            yield conn


def _context(conn: Connection, dataset: str, secret: bytes | None) -> _Context:
    tz_name = conn.scalar(select(Clinic.timezone).order_by(Clinic.id).limit(1))
    if tz_name is None:
        raise ChairsideError("The clinic is not set up yet: there is nothing to export.")
    staff = {uid: name for uid, name in conn.execute(select(AppUser.id, AppUser.display_name))}
    tz, columns = ZoneInfo(tz_name), output_columns(dataset, secret is not None)
    return _Context(tz, staff, columns, secret, _shapers(columns, tz, secret))


def _rows(
    db: Database, dataset: str, filters: ExportFilters, secret: bytes | None, chunk_rows: int
) -> Iterator[dict[str, Any]]:
    with closing(_chunks(db, dataset, filters, secret, chunk_rows)) as chunks:
        for chunk in chunks:
            yield from chunk


def _chunks(
    db: Database, dataset: str, filters: ExportFilters, secret: bytes | None, chunk_rows: int
) -> Iterator[list[dict[str, Any]]]:
    with _snapshot(db) as conn:
        ctx = _context(conn, dataset, secret)
        yield from _chunks_on(conn, dataset, filters, ctx, chunk_rows)


def _chunks_on(
    conn: Connection, dataset: str, filters: ExportFilters, ctx: _Context, chunk_rows: int
) -> Iterator[list[dict[str, Any]]]:
    """Stream the dataset's main query; summaries for each chunk come from small IN queries.

    Streaming is set on the statement rather than with `conn.execution_options(...)`:
    in SQLAlchemy 2 that call changes the connection in place, and the per-chunk
    lookups on the same connection (same snapshot) must not open cursors of their own.
    """
    query, build = _DATASETS[dataset]
    lo, hi = _bounds(filters, ctx.tz)
    stmt = query(filters, lo, hi).execution_options(stream_results=True, yield_per=max(1, chunk_rows))
    result = conn.execute(stmt)
    try:
        for part in result.partitions():
            yield [_shape(record, ctx) for record in build(conn, part, ctx)]
    finally:
        result.close()


def _count_query(dataset: str, filters: ExportFilters, ctx: _Context) -> Select:
    query, _ = _DATASETS[dataset]
    lo, hi = _bounds(filters, ctx.tz)
    key = {"sessions": S.id, "vitals": V.id, "reactions": R.id, "audit": A.id}[dataset]
    inner = query(filters, lo, hi).with_only_columns(key).order_by(None).subquery()
    return select(func.count()).select_from(inner)


def _bounds(filters: ExportFilters, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(filters.start, time.min, tzinfo=tz)
    end = datetime.combine(filters.end + timedelta(days=1), time.min, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def _shape(record: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    """An identified record → the output row of the chosen mode."""
    out: dict[str, Any] = {}
    reference = record.get("_reference")
    for name, source, transform in ctx.shapers:
        value = record.get(source)
        # every transform maps None to None, so a blank cell skips the call
        out[name] = value if transform is None or value is None else transform(value, reference)
    return out


def _shapers(
    columns: tuple[Column, ...], tz: ZoneInfo, secret: bytes | None
) -> tuple[tuple[str, str, Callable[[Any, Any], Any] | None], ...]:
    """Per output column: where its value comes from and how it is transformed (None: as is)."""
    shapers = []
    for col in columns:
        transform: Callable[[Any, Any], Any] | None = None
        if secret is not None:
            if col.deid not in (Deid.KEEP, Deid.ONLY):
                transform = _deid_transform(col, secret)
        elif col.type == "datetime":
            transform = lambda value, _ref: value.astimezone(tz)  # noqa: E731
        shapers.append((col.name, col.source or col.name, transform))
    return tuple(shapers)


def _deid_transform(col: Column, secret: bytes) -> Callable[[Any, Any], Any]:
    def checked(value: Any, reference: Any) -> Any:
        result = _deidentified(col, value, reference, secret)
        if isinstance(result, date):  # datetime is a date too: no full date may leave in this mode
            raise AssertionError(f"{col.name}: a date reached a de-identified export")
        return result

    return checked


def _deidentified(col: Column, value: Any, reference: datetime | None, secret: bytes) -> Any:
    if col.deid is Deid.PSEUDONYM:
        return None if value is None else deid.pseudonym(secret, col.pseudonym_kind or "record", value)
    if col.deid is Deid.YEAR:
        return None if value is None else value.year
    if col.deid is Deid.RELATIVE:
        return deid.relative_minutes(value, reference)
    if col.deid is Deid.AGE_CAP:
        return deid.age_label(value)
    if col.deid is Deid.VOCABULARY:
        return deid.within_vocabulary(value, col.vocabulary)
    return value


def _minutes(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() / 60, 1)


def _phase(moment: datetime, iv_start: datetime | None, iv_stop: datetime | None) -> str:
    if iv_start is None or moment < iv_start:
        return "pre"
    if iv_stop is None or moment < iv_stop:
        return "infusion"
    return "observation"


def _nurse() -> Any:
    """Who checked the patient in (the check-in audit event, else the baseline vitals), else who created it."""
    audit, vital = aliased(AuditEvent), aliased(VitalSign)
    by_audit = (
        select(audit.user_id)
        .where(
            audit.entity == "session", audit.entity_id == S.id, audit.action == "check_in", audit.user_id.is_not(None)
        )
        .order_by(audit.id)
        .limit(1)
        .correlate(S)
        .scalar_subquery()
    )
    by_baseline = (
        select(vital.entered_by_id)
        .where(vital.session_id == S.id, vital.taken_at == S.checked_in_at, vital.entered_by_id.is_not(None))
        .order_by(vital.id)
        .limit(1)
        .correlate(S)
        .scalar_subquery()
    )
    return func.coalesce(by_audit, by_baseline, S.created_by_id)


def _session_filters(filters: ExportFilters, lo: datetime, hi: datetime) -> list[Any]:
    conditions: list[Any] = [S.scheduled_at >= lo, S.scheduled_at < hi]
    if filters.therapy_ids:
        conditions.append(S.therapy_id.in_(filters.therapy_ids))
    if filters.chair_ids:
        conditions.append(S.chair_id.in_(filters.chair_ids))
    if filters.nurse_ids:
        conditions.append(_nurse().in_(filters.nurse_ids))
    return conditions


def _entry_statuses(model: Any, filters: ExportFilters) -> Any:
    wanted = ("active", "entered_in_error") if filters.include_entered_in_error else ("active",)
    return model.status.in_(wanted)


def _entry_tail(row: Any, staff: dict[int, str]) -> dict[str, Any]:
    return {
        "entered_at": row.entered_at,
        "entered_by_id": row.entered_by_id,
        "entered_by_name": staff.get(row.entered_by_id) if row.entered_by_id is not None else None,
        "corrected": row.replaces_id is not None,
        "correction_reason": row.correction_reason,
        "entered_in_error": row.status == "entered_in_error",
    }


def _session_reference(row: Any) -> tuple[datetime | None, str | None]:
    return deid.reference_time(row.iv_started_at, row.checked_in_at, row.scheduled_at)


# sessions -------------------------------------------------------------------------------------------


def _sessions_query(filters: ExportFilters, lo: datetime, hi: datetime) -> Select:
    return (
        select(
            S.id.label("session_id"),
            S.patient_id,
            P.mrn,
            P.family_name,
            P.given_name,
            P.birth_date,
            P.diagnosis,
            T.code.label("therapy_code"),
            T.name.label("therapy_name"),
            T.program,
            T.premedication_required,
            S.dose,
            S.dose_unit,
            S.infusion_number,
            C.name.label("chair_name"),
            C.kind.label("chair_kind"),
            _nurse().label("nurse_id"),
            S.status,
            S.walk_in,
            S.scheduled_at,
            S.checked_in_at,
            S.ready_at,
            S.iv_started_at,
            S.iv_stopped_at,
            S.discharged_at,
            S.closed_at,
            S.long_infusion_flag,
            S.deferral_reason,
            S.cancel_reason,
            S.early_discharge_reason,
            S.premed_override_reason,
            S.iv_site,
            S.iv_gauge,
            S.iv_attempts,
            S.lot_number,
        )
        .select_from(S)
        .join(P, P.id == S.patient_id)
        .join(T, T.id == S.therapy_id)
        .join(C, C.id == S.chair_id)
        .where(*_session_filters(filters, lo, hi))
        .order_by(S.scheduled_at, S.id)
    )


def _session_records(conn: Connection, rows: Sequence[Row[Any]], ctx: _Context) -> list[dict[str, Any]]:
    ids = [r.session_id for r in rows]
    premeds: dict[int, list[str]] = defaultdict(list)
    for sid, drug, dose, route in conn.execute(
        select(PM.session_id, PM.drug, PM.dose, PM.route)
        .where(PM.session_id.in_(ids), PM.status == "active")
        .order_by(PM.session_id, PM.given_at, PM.id)
    ):
        premeds[sid].append(" ".join(part for part in (drug, dose, route) if part))
    reactions = {
        sid: (count, worst)
        for sid, count, worst in conn.execute(
            select(R.session_id, func.count(), func.max(R.grade))
            .where(R.session_id.in_(ids), R.status == "active")
            .group_by(R.session_id)
        )
    }
    checks = set(conn.scalars(select(ProgramCheck.session_id).where(ProgramCheck.session_id.in_(ids))))
    corrected = set(conn.scalars(select(SessionCorrection.session_id).where(SessionCorrection.session_id.in_(ids))))
    addenda = dict(
        conn.execute(
            select(Addendum.session_id, func.count()).where(Addendum.session_id.in_(ids)).group_by(Addendum.session_id)
        ).all()
    )
    infusing_kinds = ("start", "change", "resume")
    rates = {
        r.session_id: r
        for r in conn.execute(
            select(
                RC.session_id,
                func.max(case((RC.kind == "start", RC.rate_ml_h))).label("start_rate"),
                func.max(case((RC.kind.in_(infusing_kinds), RC.rate_ml_h))).label("max_rate"),
                func.sum(case((RC.kind == "pause", 1), else_=0)).label("pauses"),
            )
            .where(RC.session_id.in_(ids), RC.status == "active")
            .group_by(RC.session_id)
        )
    }

    records = []
    for r in rows:
        reference, label = _session_reference(r)
        day = r.scheduled_at.astimezone(ctx.tz).date()
        end = r.discharged_at or (r.closed_at if r.status == "deferred" else None)
        count, worst = reactions.get(r.session_id, (0, None))
        rate = rates.get(r.session_id)
        records.append(
            {
                "session_id": r.session_id,
                "patient_id": r.patient_id,
                "mrn": r.mrn,
                "patient_name": f"{r.family_name}, {r.given_name}",
                "birth_date": r.birth_date,
                "age_years": deid.age_on(r.birth_date, day),
                "diagnosis": r.diagnosis or None,
                "session_date": day,
                "time_reference": label,
                "therapy_code": r.therapy_code,
                "therapy_name": r.therapy_name,
                "dose": r.dose,
                "dose_unit": r.dose_unit,
                "infusion_number": r.infusion_number,
                "chair_name": r.chair_name,
                "chair_kind": r.chair_kind,
                "nurse_id": r.nurse_id,
                "nurse_name": ctx.staff.get(r.nurse_id) if r.nurse_id is not None else None,
                "status": r.status,
                "walk_in": r.walk_in,
                "scheduled_at": r.scheduled_at,
                "checked_in_at": r.checked_in_at,
                "ready_at": r.ready_at,
                "iv_started_at": r.iv_started_at,
                "iv_stopped_at": r.iv_stopped_at,
                "discharged_at": r.discharged_at,
                "closed_at": r.closed_at,
                "infusion_min": _minutes(r.iv_started_at, r.iv_stopped_at),
                "observation_min": _minutes(r.iv_stopped_at, r.discharged_at),
                "chair_min": _minutes(r.checked_in_at, end),
                "long_infusion": r.long_infusion_flag,
                "deferral_reason": r.deferral_reason,
                "cancel_reason": r.cancel_reason,
                "early_discharge_reason": r.early_discharge_reason,
                "premedication_required": r.premedication_required,
                "premedication_given": "; ".join(premeds.get(r.session_id, ())) or None,
                "premedication_skip_reason": r.premed_override_reason,
                "program": r.program,
                "program_check_done": (r.session_id in checks) if r.program else None,
                "iv_site": r.iv_site,
                "iv_gauge": r.iv_gauge,
                "iv_attempts": r.iv_attempts,
                "lot_number": r.lot_number,
                "start_rate_ml_h": rate.start_rate if rate else None,
                "max_rate_ml_h": rate.max_rate if rate else None,
                "pause_count": int(rate.pauses or 0) if rate else 0,
                "reaction_count": int(count),
                "worst_grade": worst,
                "corrected": r.session_id in corrected,
                "addendum_count": int(addenda.get(r.session_id, 0)),
                "_reference": reference,
            }
        )
    return records


# vitals ---------------------------------------------------------------------------------------------


def _vitals_query(filters: ExportFilters, lo: datetime, hi: datetime) -> Select:
    return (
        select(
            V.id.label("vital_id"),
            V.session_id,
            S.patient_id,
            T.code.label("therapy_code"),
            S.infusion_number,
            S.iv_started_at,
            S.checked_in_at,
            S.scheduled_at,
            V.taken_at,
            V.phase,
            V.systolic,
            V.diastolic,
            V.pulse,
            V.resp_rate,
            V.temperature_c,
            V.spo2,
            V.pain,
            V.weight_kg,
            V.consciousness,
            V.on_oxygen,
            V.position,
            V.unable_to_obtain,
            V.flags,
            V.flag_count,
            V.news2,
            V.news2_complete,
            V.provider_notified,
            V.provider_name,
            V.provider_notified_at,
            V.note,
            V.entered_at,
            V.entered_by_id,
            V.status,
            V.replaces_id,
            V.correction_reason,
        )
        .select_from(V)
        .join(S, S.id == V.session_id)
        .join(T, T.id == S.therapy_id)
        .where(*_session_filters(filters, lo, hi), _entry_statuses(V, filters))
        .order_by(S.scheduled_at, S.id, V.taken_at, V.id)
    )


def _vital_records(conn: Connection, rows: Sequence[Row[Any]], ctx: _Context) -> list[dict[str, Any]]:
    records = []
    for r in rows:
        reference, label = _session_reference(r)
        unable = r.unable_to_obtain or {}
        records.append(
            {
                "vital_id": r.vital_id,
                "session_id": r.session_id,
                "patient_id": r.patient_id,
                "time_reference": label,
                "therapy_code": r.therapy_code,
                "infusion_number": r.infusion_number,
                "taken_at": r.taken_at,
                "phase": r.phase,
                "systolic_mmhg": r.systolic,
                "diastolic_mmhg": r.diastolic,
                "pulse_per_min": r.pulse,
                "resp_rate_per_min": r.resp_rate,
                "temperature_c": r.temperature_c,
                "spo2_pct": r.spo2,
                "pain_score": r.pain,
                "weight_kg": r.weight_kg,
                "consciousness": r.consciousness,
                "on_oxygen": r.on_oxygen,
                "position": r.position,
                "not_obtained": ";".join(unable) or None,
                "not_obtained_reason": "; ".join(f"{k}: {v}" for k, v in unable.items()) or None,
                "flags": ";".join(f.get("code", "") for f in (r.flags or [])) or None,
                "flag_count": r.flag_count,
                "news2": r.news2,
                "news2_complete": r.news2_complete,
                "provider_notified": r.provider_notified,
                "provider_name": r.provider_name,
                "provider_notified_at": r.provider_notified_at,
                "note": r.note,
                **_entry_tail(r, ctx.staff),
                "_reference": reference,
            }
        )
    return records


# reactions ------------------------------------------------------------------------------------------


def _reactions_query(filters: ExportFilters, lo: datetime, hi: datetime) -> Select:
    return (
        select(
            R.id.label("reaction_id"),
            R.session_id,
            S.patient_id,
            T.code.label("therapy_code"),
            S.infusion_number,
            S.iv_started_at,
            S.iv_stopped_at,
            S.checked_in_at,
            S.scheduled_at,
            R.onset_at,
            R.grade,
            R.symptoms,
            R.other_text,
            R.actions,
            R.medication_given,
            R.resolved_at,
            R.provider_notified,
            R.provider_name,
            R.note,
            R.entered_at,
            R.entered_by_id,
            R.status,
            R.replaces_id,
            R.correction_reason,
        )
        .select_from(R)
        .join(S, S.id == R.session_id)
        .join(T, T.id == S.therapy_id)
        .where(*_session_filters(filters, lo, hi), _entry_statuses(R, filters))
        .order_by(S.scheduled_at, S.id, R.onset_at, R.id)
    )


def _reaction_records(conn: Connection, rows: Sequence[Row[Any]], ctx: _Context) -> list[dict[str, Any]]:
    records = []
    for r in rows:
        reference, label = _session_reference(r)
        records.append(
            {
                "reaction_id": r.reaction_id,
                "session_id": r.session_id,
                "patient_id": r.patient_id,
                "time_reference": label,
                "therapy_code": r.therapy_code,
                "infusion_number": r.infusion_number,
                "onset_at": r.onset_at,
                "phase": _phase(r.onset_at, r.iv_started_at, r.iv_stopped_at),
                "grade": r.grade,
                "symptoms": ";".join(r.symptoms or []) or None,
                "other_symptom": r.other_text,
                "actions": ";".join(r.actions or []) or None,
                "medication_given": r.medication_given,
                "resolved_at": r.resolved_at,
                "duration_min": _minutes(r.onset_at, r.resolved_at),
                "outcome": "resolved" if r.resolved_at is not None else "ongoing",
                "provider_notified": r.provider_notified,
                "provider_name": r.provider_name,
                "note": r.note,
                **_entry_tail(r, ctx.staff),
                "_reference": reference,
            }
        )
    return records


# audit ----------------------------------------------------------------------------------------------


def _audit_query(filters: ExportFilters, lo: datetime, hi: datetime) -> Select:
    conditions: list[Any] = [A.at >= lo, A.at < hi]
    if filters.therapy_ids:
        conditions.append(S.therapy_id.in_(filters.therapy_ids))
    if filters.chair_ids:
        conditions.append(S.chair_id.in_(filters.chair_ids))
    if filters.nurse_ids:
        conditions.append(A.user_id.in_(filters.nurse_ids))
    return (
        select(
            A.id.label("audit_id"),
            A.at,
            A.user_id,
            A.user_name,
            A.action,
            A.entity,
            A.entity_id,
            A.session_id,
            A.patient_id,
            A.before,
            A.after,
            A.reason,
            S.iv_started_at,
            S.checked_in_at,
            S.scheduled_at,
        )
        .select_from(A)
        .outerjoin(S, S.id == A.session_id)
        .where(*conditions)
        .order_by(A.at, A.id)
    )


def _audit_records(conn: Connection, rows: Sequence[Row[Any]], ctx: _Context) -> list[dict[str, Any]]:
    records = []
    for r in rows:
        reference, label = _session_reference(r) if r.scheduled_at is not None else (None, None)
        records.append(
            {
                "audit_id": r.audit_id,
                "event_date": r.at.astimezone(ctx.tz).date(),
                "at": r.at,
                "time_reference": label,
                "user_id": r.user_id,
                "user_name": r.user_name,
                "action": r.action,
                "entity": r.entity,
                "entity_id": r.entity_id,
                "session_id": r.session_id,
                "patient_id": r.patient_id,
                "before": r.before,
                "after": r.after,
                "reason": r.reason,
                "_reference": reference,
            }
        )
    return records


_Builder = Callable[[Connection, Sequence[Row[Any]], _Context], list[dict[str, Any]]]
_DATASETS: dict[str, tuple[Callable[[ExportFilters, datetime, datetime], Select], _Builder]] = {
    "sessions": (_sessions_query, _session_records),
    "vitals": (_vitals_query, _vital_records),
    "reactions": (_reactions_query, _reaction_records),
    "audit": (_audit_query, _audit_records),
}
