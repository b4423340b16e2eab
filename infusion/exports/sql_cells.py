"""Export cells formatted by the database: each output column as one SQL expression giving its CSV text (issue 14).

The per-row path (`records` builds a dict, `shaping` transforms it, `csv_writer` formats every cell) costs
Python time per cell; here every output column of a dataset is one SQL expression that yields the cell
exactly as `shaping.cell_rows` + `csv_writer.cell_formatter` write it, so the file is produced by the
database: on SQLite each row comes back as its finished CSV line (`printf` of the cells, quoted like
`csv.writer`), on PostgreSQL `COPY (…) TO STDOUT WITH (FORMAT csv)` streams the rows and quotes them.
The bytes are the per-row path's (tests/db/test_export_sql_cells.py compares the two).

How each cell is made, by the output column's type and mode:

* text: the OWASP neutralising of `csv_writer.neutralise` (a leading `= + - @` tab CR LF gets `'`); on
  PostgreSQL an empty text is written as NULL (COPY quotes an empty string, `csv.writer` does not).
* datetime (identified): the UTC time in the row's site's zone with its offset, to the second (truncated,
  like `isoformat(timespec="seconds")`). The zone's UTC-offset transitions around the export (computed from
  `zoneinfo`, so the same tz data as the Python path) become a nested CASE (a binary search on the UTC
  time), one per zone, chosen by the row's site; a time outside those years is converted by Python
  (SQLite) or `AT TIME ZONE` (PostgreSQL).
* number: Python's `repr` of the float (the shortest text that reads back the same): SQLite's text of a
  REAL when it is that, else a Python function; PostgreSQL's float8 text (shortest, like `repr`) with
  `.0` on whole numbers.
* boolean: true / false; integer: as stored.
* small tables known when the SQL is written (site codes, site keys, staff names, time reference labels):
  formatted once in Python, looked up by a nested CASE on the id.
* de-identified: pseudonymous keys made in Python (a cached function on SQLite; on PostgreSQL, whose
  read-only snapshot cannot hold a temporary table, the export's ids and their keys as an `unnest` table
  joined to the rows); minutes relative to the time reference: SQLite calls `deidentify.relative_minutes`
  on the two stored texts, PostgreSQL works in exact integer microseconds and rounds the way
  `round(float, 1)` rounds (`_relative`; exact while the two times are less than 19 years apart); coded
  columns checked against their vocabulary.
* the vitals JSON lists (not obtained, flags): SQLite hands the stored document to the same Python
  functions as `records` (only for rows that have one); PostgreSQL reads the jsonb.

SQLite's Python functions are registered on the export's own DB-API connection. A dataset has a plan only
when every output column has an expression (`SOURCES`); sessions, audit and course_ends keep the per-row
path for now. Times on SQLite are read in SQLAlchemy's storage format (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC).
Known differences from the per-row path, none reachable from Chairside's own writes: PostgreSQL writes
NaN and infinities, and non-integral floats of 10^15 or more, in its own notation, and a "not obtained"
reason stored as anything but text, an integer, a boolean or null as jsonb writes it.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Select, Text, literal_column, text

from db.models import Chair, InfusionSession, Reaction, VitalSign
from infusion.exports import deidentify as deid
from infusion.exports.csv_writer import DANGEROUS_LEADING, LINE_END, cell_formatter, neutralise
from infusion.exports.schema import Column, Deid
from infusion.exports.shaping import ExportContext

S, C, V, R = InfusionSession, Chair, VitalSign, Reaction
#: Stored JSON texts that mean "nothing" (records reads them as empty), so no function is called for them.
_NO_OBJECT, _NO_LIST = ("{}", "null"), ("[]", "null")

#: The code points of csv_writer.DANGEROUS_LEADING, for SQL's unicode() / ascii() of a cell's first character.
_LEADING_CODES = ", ".join(str(ord(c)) for c in DANGEROUS_LEADING)
#: Up to this many entries a lookup (staff names, site codes) is a CASE search in the SQL; more are a function
#: (SQLite: preparing thousands of branches costs more than the calls) or a joined table (PostgreSQL).
LOOKUP_CASE_LIMIT = 256
#: Years of zone transitions written into the SQL on each side of the exported period (and of today).
ZONE_MARGIN_YEARS = 1


# Sources: each identified column of a dataset as SQL -------------------------------------------


@dataclass(frozen=True)
class Source:
    """An identified column as SQL (`sql`, over the dataset's main query) and the kind of value it holds."""

    kind: str  # int | float | text | bool | datetime | minutes | site | staff | reference_label | json
    sql: str = ""
    python: Callable[..., Any] | None = None  # json: the Python value from the decoded document
    empty: tuple[str, ...] = ()  # json: document texts whose value is None (skip the call)
    jsonb: str = ""  # json: the recipe PostgreSQL reads the jsonb with (`_jsonb_cell`)
    earlier: str = ""  # minutes: from `earlier` to `sql`, as records._minutes


def _name(attr: Any) -> str:
    return f"{attr.table.name}.{attr.name}"


def _not_obtained(unable: Any) -> str | None:
    return ";".join(unable or {}) or None


def _not_obtained_reason(unable: Any) -> str | None:
    return "; ".join(f"{k}: {v}" for k, v in (unable or {}).items()) or None


def _flag_codes(flags: Any) -> str | None:
    return ";".join(f.get("code", "") for f in (flags or [])) or None


def _vital_sources() -> dict[str, Source]:
    int_, text, bool_, dt = "int", "text", "bool", "datetime"
    return {
        "vital_id": Source(int_, _name(V.id)),
        "session_id": Source(int_, _name(V.session_id)),
        "patient_id": Source(int_, _name(S.patient_id)),
        "site": Source("site", _name(C.site_id)),
        "time_reference": Source("reference_label"),
        "therapy_code": Source(text, "therapy.code"),
        "infusion_number": Source(int_, _name(S.infusion_number)),
        "taken_at": Source(dt, _name(V.taken_at)),
        "phase": Source(text, _name(V.phase)),
        "systolic_mmhg": Source(int_, _name(V.systolic)),
        "diastolic_mmhg": Source(int_, _name(V.diastolic)),
        "pulse_per_min": Source(int_, _name(V.pulse)),
        "resp_rate_per_min": Source(int_, _name(V.resp_rate)),
        "temperature_c": Source("float", _name(V.temperature_c)),
        "spo2_pct": Source(int_, _name(V.spo2)),
        "pain_score": Source(int_, _name(V.pain)),
        "weight_kg": Source("float", _name(V.weight_kg)),
        "consciousness": Source(text, _name(V.consciousness)),
        "on_oxygen": Source(bool_, _name(V.on_oxygen)),
        "position": Source(text, _name(V.position)),
        "not_obtained": Source("json", _name(V.unable_to_obtain), _not_obtained, _NO_OBJECT, "keys"),
        "not_obtained_reason": Source(
            "json", _name(V.unable_to_obtain), _not_obtained_reason, _NO_OBJECT, "key_reasons"
        ),
        "flags": Source("json", _name(V.flags), _flag_codes, _NO_LIST, "codes"),
        "flag_count": Source(int_, _name(V.flag_count)),
        "news2": Source(int_, _name(V.news2)),
        "news2_complete": Source(bool_, _name(V.news2_complete)),
        "provider_notified": Source(bool_, _name(V.provider_notified)),
        "provider_name": Source(text, _name(V.provider_name)),
        "provider_notified_at": Source(dt, _name(V.provider_notified_at)),
        "note": Source(text, _name(V.note)),
        **_entry_tail(V),
    }


def _entry_tail(entry: Any) -> dict[str, Source]:
    """records._entry_tail: who entered a clinical entry and when, and its correction status."""
    return {
        "entered_at": Source("datetime", _name(entry.entered_at)),
        "entered_by_id": Source("int", _name(entry.entered_by_id)),
        "entered_by_name": Source("staff", _name(entry.entered_by_id)),
        "corrected": Source("bool", f"({_name(entry.replaces_id)} IS NOT NULL)"),
        "correction_reason": Source("text", _name(entry.correction_reason)),
        "entered_in_error": Source("bool", f"({_name(entry.status)} = 'entered_in_error')"),
    }


def _joined(values: Any) -> str | None:
    return ";".join(values or []) or None


def _reaction_sources() -> dict[str, Source]:
    onset, start, stop, resolved = (
        _name(R.onset_at),
        _name(S.iv_started_at),
        _name(S.iv_stopped_at),
        _name(R.resolved_at),
    )
    phase = (  # records._phase
        f"(CASE WHEN {start} IS NULL OR {onset} < {start} THEN 'pre' "
        f"WHEN {stop} IS NULL OR {onset} < {stop} THEN 'infusion' ELSE 'observation' END)"
    )
    return {
        "reaction_id": Source("int", _name(R.id)),
        "session_id": Source("int", _name(R.session_id)),
        "patient_id": Source("int", _name(S.patient_id)),
        "site": Source("site", _name(C.site_id)),
        "time_reference": Source("reference_label"),
        "therapy_code": Source("text", "therapy.code"),
        "infusion_number": Source("int", _name(S.infusion_number)),
        "onset_at": Source("datetime", onset),
        "phase": Source("text", phase),
        "grade": Source("int", _name(R.grade)),
        "symptoms": Source("json", _name(R.symptoms), _joined, _NO_LIST, "strings"),
        "other_symptom": Source("text", _name(R.other_text)),
        "actions": Source("json", _name(R.actions), _joined, _NO_LIST, "strings"),
        "medication_given": Source("text", _name(R.medication_given)),
        "resolved_at": Source("datetime", resolved),
        "duration_min": Source("minutes", resolved, earlier=onset),
        "outcome": Source("text", f"(CASE WHEN {resolved} IS NOT NULL THEN 'resolved' ELSE 'ongoing' END)"),
        "provider_notified": Source("bool", _name(R.provider_notified)),
        "provider_name": Source("text", _name(R.provider_name)),
        "note": Source("text", _name(R.note)),
        **_entry_tail(R),
    }


#: Per dataset: its sources. Datasets not here keep the per-row path: sessions (per-chunk summaries of
#: premedication, rates, reactions, checks; not yet expressed), audit (not yet) and course_ends (a few rows per
#: patient ever, and `in_force` is the due list's rule applied in Python, `records.course_end_records`).
SOURCES: dict[str, Callable[[], dict[str, Source]]] = {
    "vitals": _vital_sources,
    "reactions": _reaction_sources,
}

#: Where the session's time reference comes from (deidentify.reference_time), for every dataset with sessions.
_REFERENCE = (_name(S.iv_started_at), _name(S.checked_in_at), _name(S.scheduled_at))
_REFERENCE_LABELS = ("iv_start", "check_in", "scheduled")


# Zones --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def transitions(key: str, first_year: int, last_year: int) -> tuple[tuple[datetime, int, str], ...]:
    """The zone's offsets from 1 January `first_year` to 1 January `last_year + 1` (UTC): (from, seconds, suffix).

    `suffix` is what `isoformat` appends for that offset. Found by stepping six hours and bisecting to the
    second, so two changes less than six hours apart would be missed (no zone has had that since 1970).
    """
    zone = ZoneInfo(key)
    start = datetime(first_year, 1, 1, tzinfo=UTC)
    end = datetime(last_year + 1, 1, 1, tzinfo=UTC)

    def offset(moment: datetime) -> timedelta:
        value = moment.astimezone(zone).utcoffset()
        assert value is not None
        return value

    def suffix(moment: datetime) -> str:
        return moment.astimezone(zone).isoformat(timespec="seconds")[19:]

    spans = [(start, int(offset(start).total_seconds()), suffix(start))]
    step = timedelta(hours=6)
    moment = start
    while moment < end:
        later = min(moment + step, end)
        if offset(later) != offset(moment):
            lo, hi = moment, later  # offset(lo) differs from offset(hi): find the first second of the new one
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) // 2
                mid = mid.replace(microsecond=0)
                if offset(mid) == offset(lo):
                    lo = mid
                else:
                    hi = mid
            spans.append((hi, int(offset(hi).total_seconds()), suffix(hi)))
        moment = later
    return tuple(spans)


# Dialects -------------------------------------------------------------------------------------------


class _Dialect:
    """SQL of the cell formats for one database."""

    name = ""

    def __init__(self) -> None:
        self.functions: dict[str, Callable[..., Any]] = {}
        self.joins: list[Callable[[Select], Select]] = []

    def lookup(self, x: str, cells: dict[int, str]) -> str:
        """The cell of integer `x` from a small table known when the SQL is written (staff names, site codes):
        a binary search in nested CASEs over the constant cells (NULL when absent)."""
        keys = sorted(cells)
        if not keys:
            return "NULL"

        def tree(lo: int, hi: int) -> str:
            if hi - lo < 4:
                return "CASE " + " ".join(f"WHEN {x} = {k} THEN {cells[k]}" for k in keys[lo : hi + 1]) + " END"
            mid = (lo + hi + 1) // 2
            return f"CASE WHEN {x} < {keys[mid]} THEN {tree(lo, mid - 1)} ELSE {tree(mid, hi)} END"

        return tree(0, len(keys) - 1)

    def constant_cell(self, text: str | None) -> str:
        """A cell whose text is known when the SQL is written: formatted here, once."""
        raise NotImplementedError

    def table(self, x: str, texts: dict[int, str | None]) -> str:
        """The text cell of integer `x` from a table known when the SQL is written (site codes and keys, staff
        names, pseudonyms): each text formatted once; a CASE search when small, else `large_table`."""
        if len(texts) <= LOOKUP_CASE_LIMIT:
            return self.lookup(x, {i: self.constant_cell(t) for i, t in texts.items()})
        return self.large_table(x, texts)

    def large_table(self, x: str, texts: dict[int, str | None]) -> str:
        raise NotImplementedError

    def literal(self, text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    def neutralised(self, x: str) -> str:
        raise NotImplementedError

    def text_cell(self, x: str) -> str:
        raise NotImplementedError

    def bool_cell(self, x: str) -> str:
        raise NotImplementedError

    def int_cell(self, x: str) -> str:
        raise NotImplementedError

    def float_cell(self, x: str) -> str:
        raise NotImplementedError

    def raw_cell(self, x: str) -> str:
        """Text already formatted that needs no quoting (numbers, times)."""
        return x

    def moment_before(self, x: str, moment: datetime) -> str:
        raise NotImplementedError

    def local_time(self, x: str, seconds: int, suffix: str) -> str:
        raise NotImplementedError

    def zone_fallback(self, x: str, zone: ZoneInfo) -> str:
        raise NotImplementedError

    def json_cell(self, x: str, source: Source, after: Callable[[Any], Any], col: Column) -> str:
        raise NotImplementedError

    def pseudonym(self, x: str, kind: str, secret: bytes, ids: Sequence[int] | None) -> str:
        """The text cell of a pseudonymous key of `x` (`ids`: the export's values of `x`, when read first)."""
        raise NotImplementedError


class _Sqlite(_Dialect):
    name = "sqlite"

    def neutralised(self, x: str) -> str:
        return f"CASE WHEN unicode({x}) IN ({_LEADING_CODES}) THEN '''' || {x} ELSE {x} END"

    def text_cell(self, x: str) -> str:
        # neutralised, then quoted when it holds , " CR or LF (the quote does not change whether it needs quoting)
        return (
            f"CASE WHEN {x} GLOB '*[,\"\r\n]*' "
            f"THEN '\"' || replace({self.neutralised(x)}, '\"', '\"\"') || '\"' "
            f"WHEN unicode({x}) IN ({_LEADING_CODES}) THEN '''' || {x} ELSE {x} END"
        )

    def constant_cell(self, text: str | None) -> str:
        return "NULL" if text is None else self.literal(_csv_text(neutralise(text)))

    def large_table(self, x: str, texts: dict[int, str | None]) -> str:
        cells = {i: _csv_text(neutralise(t)) for i, t in texts.items() if t is not None}
        return f"{self._function(f'chairside_table_{len(self.functions)}', cells.get)}({x})"

    def bool_cell(self, x: str) -> str:
        return f"CASE {x} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END"

    def int_cell(self, x: str) -> str:
        return x

    def float_cell(self, x: str) -> str:
        fn = self._function("chairside_number", _number_text)
        return (
            f"CASE WHEN {x} IS NULL THEN NULL WHEN typeof({x}) = 'real' AND abs({x}) >= 0.0001 "
            f"AND abs({x}) < 1e15 AND CAST(CAST({x} AS TEXT) AS REAL) = {x} THEN CAST({x} AS TEXT) ELSE {fn}({x}) END"
        )

    def moment_before(self, x: str, moment: datetime) -> str:
        return f"{x} < '{moment.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S')}'"

    def local_time(self, x: str, seconds: int, suffix: str) -> str:
        if seconds == 0:
            return f"replace(substr({x}, 1, 19), ' ', 'T') || '{suffix}'"
        # whole seconds first: SQLite's date functions round to the millisecond, isoformat truncates
        return f"replace(datetime(substr({x}, 1, 19), '{seconds:+d} seconds'), ' ', 'T') || '{suffix}'"

    def zone_fallback(self, x: str, zone: ZoneInfo) -> str:
        def convert(value: str | None) -> str | None:
            if value is None:
                return None
            moment = datetime.fromisoformat(value).replace(tzinfo=UTC)
            return moment.astimezone(zone).isoformat(timespec="seconds")

        return f"{self._function(f'chairside_in_zone_{len(self.functions)}', convert)}({x})"

    def json_cell(self, x: str, source: Source, after: Callable[[Any], Any], col: Column) -> str:
        python = source.python
        assert python is not None
        fmt = cell_formatter(col.type)

        def cell(document: str | None) -> str | None:
            value = python(None if document is None else json.loads(document))
            return _csv_text(fmt(None if value is None else after(value)))

        fn = self._function(f"chairside_json_{len(self.functions)}", cell)
        empty = ", ".join(self.literal(e) for e in source.empty)
        return f"CASE WHEN {x} IS NULL OR {x} IN ({empty}) THEN {self.literal(_csv_text(fmt(None)) or '')} ELSE {fn}({x}) END"

    def pseudonym(self, x: str, kind: str, secret: bytes, ids: Sequence[int] | None) -> str:
        # a function call per row, cached: a CASE over thousands of keys costs SQLite far more to prepare
        @functools.lru_cache(maxsize=65_536)
        def key(value: int | None) -> str | None:
            return None if value is None else _csv_text(neutralise(deid.pseudonym(secret, kind, value)))

        return f"{self._function(f'chairside_key_{len(self.functions)}', key)}({x})"

    def _function(self, name: str, fn: Callable[..., Any]) -> str:
        self.functions[name] = fn
        return name


class _Postgres(_Dialect):
    name = "postgresql"

    def neutralised(self, x: str) -> str:
        return f"CASE WHEN ascii({x}) IN ({_LEADING_CODES}) THEN '''' || {x} ELSE {x} END"

    def text_cell(self, x: str) -> str:
        # the first character's code point, not left(x, 1): no text made per cell
        return f"CASE WHEN {x} = '' THEN NULL WHEN ascii({x}) IN ({_LEADING_CODES}) THEN '''' || {x} ELSE {x} END"

    def constant_cell(self, text: str | None) -> str:
        return "NULL" if not text else self.literal(neutralise(text))

    def large_table(self, x: str, texts: dict[int, str | None]) -> str:
        """The ids and their cells as an unnest table joined to the rows (a hash join; per-row lookups cost more)."""
        alias = f"cells_{len(self.joins)}"
        ids = ", ".join(str(int(i)) for i in texts)
        cells = ", ".join(self.constant_cell(t) for t in texts.values())
        sql = f"SELECT * FROM unnest(ARRAY[{ids}]::bigint[], ARRAY[{cells}]::text[]) AS k(id, cell)"
        table = (
            text(sql.replace(":", "\\:"))  # no bind parameters in names: every colon is literal
            .columns(id=BigInteger(), cell=Text())
            .subquery(alias)
        )
        self.joins.append(lambda stmt: stmt.outerjoin(table, table.c.id == literal_column(x)))
        return f"{alias}.cell"

    def bool_cell(self, x: str) -> str:
        return f"({x})::text"  # boolean to text is true / false (COPY's own output would be t / f)

    def int_cell(self, x: str) -> str:
        return x

    def float_cell(self, x: str) -> str:
        # float8 text is the shortest that reads back (extra_float_digits >= 1, the default), as repr;
        # repr writes whole numbers with .0 and switches to exponents later (1e16, PostgreSQL: 1e15)
        return (
            f"CASE WHEN {x} IS NULL THEN NULL WHEN {x} <> trunc({x}) AND abs({x}) < 1e15 THEN {x}::text "
            f"WHEN {x} = 0 THEN CASE WHEN {x}::text LIKE '-%' THEN '-0.0' ELSE '0.0' END "
            f"WHEN {x} = trunc({x}) AND abs({x}) < 1e16 THEN ({x})::bigint::text || '.0' "
            f"ELSE {x}::text END"
        )

    def moment_before(self, x: str, moment: datetime) -> str:
        return f"{x} < TIMESTAMPTZ '{moment.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S+00')}'"

    def local_time(self, x: str, seconds: int, suffix: str) -> str:
        return (
            f"to_char(({x} AT TIME ZONE 'UTC') + interval '{seconds} seconds', 'YYYY-MM-DD\"T\"HH24:MI:SS') "
            f"|| '{suffix}'"
        )

    def zone_fallback(self, x: str, zone: ZoneInfo) -> str:
        local = f"({x} AT TIME ZONE {self.literal(zone.key)})"
        off = f"extract(epoch FROM {local} - ({x} AT TIME ZONE 'UTC'))::int"
        return (
            f"to_char({local}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN {off} < 0 THEN '-' ELSE '+' END "
            f"|| lpad((abs({off}) / 3600)::text, 2, '0') || ':' || lpad((abs({off}) % 3600 / 60)::text, 2, '0') "
            f"|| CASE WHEN abs({off}) % 60 <> 0 THEN ':' || lpad((abs({off}) % 60)::text, 2, '0') ELSE '' END"
        )

    def micros_between(self, later: str, earlier: str) -> str:
        """Whole microseconds from `earlier` to `later` (exact: extract from an interval is numeric)."""
        return f"(extract(epoch FROM {later} - {earlier}) * 1000000)::bigint"

    def json_cell(self, x: str, source: Source, after: Callable[[Any], Any], col: Column) -> str:
        raise NotImplementedError  # replaced per source below (jsonb functions)

    def pseudonym(self, x: str, kind: str, secret: bytes, ids: Sequence[int] | None) -> str:
        assert ids is not None, "PostgreSQL pseudonyms need the export's ids"
        return self.large_table(x, {i: deid.pseudonym(secret, kind, i) for i in ids})

    def relative_tie(self, micros: str) -> str:
        """Tenths of a minute of |D| when |D| is an odd multiple of 3 s (a tie of round(…, 1) on exact minutes).

        Derivation (checked against Python for every tie up to 10^6 and random ones):"""
        # |D| = 3 000 000 m, m odd: the exact minutes are q = m / 20, halfway between two tenths. Python
        # rounds the double nearest q (q * 2^n rounded to an integer, n = 52 - floor(log2 q)): up when
        # the fraction (m * 2^(n-2) mod 5) / 5 is over one half, exactly q when 5 divides m (then to even).
        m = f"(abs({micros}) / 3000000)"
        log2 = f"(64 - position('1' IN ({m})::bit(64)::text))"  # floor(log2 m)
        e = f"({log2} - 4 - CASE WHEN 4 * {m} < 5 * (1::bigint << {log2}) THEN 1 ELSE 0 END)"
        residue = f"(({m} % 5) * (ARRAY[1, 2, 4, 3])[((52 - {e} - 2) % 4) + 1] % 5)"
        k = f"(({m} - 1) / 2)"
        return f"CASE WHEN {residue} = 0 THEN {k} + ({k} % 2) WHEN {residue} >= 3 THEN {k} + 1 ELSE {k} END"


def _jsonb_cell(d: _Postgres, recipe: str, x: str) -> tuple[str, str]:
    """The JSON columns in jsonb (whose key order, not the typed one, is what psycopg decodes too):
    (when the document is not empty, its text). The text is a correlated subquery, so the cell runs it only
    behind that test (most rows have none)."""
    if recipe == "strings":  # a list of codes joined by ";"
        body = (
            f"(SELECT string_agg(j.e, ';' ORDER BY j.o) FROM jsonb_array_elements_text({x}) WITH ORDINALITY AS j(e, o))"
        )
        guard = f"jsonb_typeof({x}) = 'array' AND {x} <> '[]'::jsonb"
    elif recipe == "keys":
        body = f"(SELECT string_agg(j.key, ';' ORDER BY j.o) FROM jsonb_each({x}) WITH ORDINALITY AS j(key, value, o))"
        guard = f"jsonb_typeof({x}) = 'object' AND {x} <> '{{}}'::jsonb"
    elif recipe == "key_reasons":
        value = (
            "CASE jsonb_typeof(j.value) WHEN 'string' THEN j.value #>> '{}' WHEN 'null' THEN 'None' "
            "WHEN 'boolean' THEN CASE WHEN j.value = 'true'::jsonb THEN 'True' ELSE 'False' END "
            "ELSE j.value::text END"
        )
        body = (
            f"(SELECT string_agg(j.key || ': ' || {value}, '; ' ORDER BY j.o) "
            f"FROM jsonb_each({x}) WITH ORDINALITY AS j(key, value, o))"
        )
        guard = f"jsonb_typeof({x}) = 'object' AND {x} <> '{{}}'::jsonb"
    elif recipe == "codes":
        body = (
            f"(SELECT string_agg(COALESCE(j.e ->> 'code', ''), ';' ORDER BY j.o) "
            f"FROM jsonb_array_elements({x}) WITH ORDINALITY AS j(e, o))"
        )
        guard = f"jsonb_typeof({x}) = 'array' AND {x} <> '[]'::jsonb"
    else:
        raise KeyError(recipe)
    return guard, body


def _number_text(value: Any) -> str | None:
    return None if value is None else str(_csv_text(value))


def _csv_text(value: Any) -> str:
    """One formatted cell as csv.writer writes it (quoted when needed)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([value, ""])
    return buffer.getvalue()[:-1]


# Plans ----------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """One export's cells as SQL (in output column order) and the Python functions SQLite needs for them."""

    dialect: str
    cells: list[str]
    functions: dict[str, Callable[..., Any]] = field(default_factory=dict)
    joins: tuple[Callable[[Select], Select], ...] = ()

    def line(self) -> str:
        """SQLite: the whole CSV line of a row as one text."""
        return "printf('" + ",".join(["%s"] * len(self.cells)) + "', " + ", ".join(self.cells) + ")"

    def statement(self, stmt: Select) -> Select:
        """The dataset's main query (`stmt`, with this plan's joins) selecting the cells instead of its columns."""
        for join in self.joins:
            stmt = join(stmt)
        if self.dialect == "sqlite":
            return stmt.with_only_columns(literal_column(self.line()))
        return stmt.with_only_columns(*(literal_column(cell) for cell in self.cells))


def pseudonym_sources(dataset: str, ctx: ExportContext) -> dict[str, str]:
    """Source SQL of each pseudonymised column (PostgreSQL reads their ids first to key them in Python)."""
    if dataset not in SOURCES or ctx.secret is None:
        return {}
    sources = SOURCES[dataset]()
    return {
        col.source or col.name: sources[col.source or col.name].sql
        for col in ctx.columns
        if col.deid is Deid.PSEUDONYM and (col.source or col.name) in sources
    }


def plan(dataset: str, ctx: ExportContext, dialect: str, ids: dict[str, Sequence[int]] | None = None) -> Plan | None:
    """The cells of this export as SQL, or None when a column has no SQL form (the per-row path writes it).

    `ids`: on PostgreSQL, the values of each pseudonymised source in the export (`pseudonym_sources`).
    """
    if dataset not in SOURCES or dialect not in ("sqlite", "postgresql"):
        return None
    sources = SOURCES[dataset]()
    d: _Dialect = _Sqlite() if dialect == "sqlite" else _Postgres()
    zones = _ZoneCells(d, ctx)
    cells: list[str] = []
    for col in ctx.columns:
        name = col.source or col.name
        source = sources.get(name)
        if source is None:
            return None
        cell = _cell(d, col, name, source, ctx, zones, (ids or {}).get(name))
        if cell is None:
            return None
        cells.append(cell)
    return Plan(dialect, cells, d.functions, tuple(d.joins))


def _identity(value: Any) -> Any:
    return value


def _cell(
    d: _Dialect,
    col: Column,
    name: str,
    source: Source,
    ctx: ExportContext,
    zones: _ZoneCells,
    ids: Sequence[int] | None,
) -> str | None:
    secret = ctx.secret
    if source.kind == "reference_label":
        whens = " ".join(
            f"WHEN {x} IS NOT NULL THEN {d.constant_cell(label)}" for x, label in zip(_REFERENCE, _REFERENCE_LABELS)
        )
        return f"CASE {whens} END"
    if source.kind == "site":
        if secret is not None and col.deid is Deid.SITE and col.name != name:
            codes = {i: deid.site_key(secret, i) for i in ctx.sites}
        else:
            codes = {i: site.code for i, site in ctx.sites.items()}
        return d.table(source.sql, dict(codes))
    if source.kind == "staff":
        return d.table(source.sql, dict(ctx.staff))
    if (
        secret is None
        or col.deid in (Deid.KEEP, Deid.ONLY, Deid.SITE)
        or (col.deid is Deid.CODED and not col.vocabulary)
    ):
        return _plain(d, col, name, source, zones)
    if col.deid is Deid.PSEUDONYM:
        return d.pseudonym(source.sql, col.pseudonym_kind or "record", secret, ids)
    if col.deid is Deid.RELATIVE and source.kind == "datetime":
        return _relative(d, source.sql, f"COALESCE({', '.join(_REFERENCE)})")
    if col.deid is Deid.CODED:
        vocabulary = col.vocabulary
        if source.kind == "json":
            return _json(d, name, source, col, lambda v: _coded(col, v))
        if source.kind == "text" and not col.separator:
            allowed = ", ".join(d.literal(v) for v in vocabulary) or "NULL"
            x = source.sql
            return d.text_cell(
                f"(CASE WHEN {x} IS NULL OR {x} = '' THEN NULL WHEN {x} IN ({allowed}) THEN {x} ELSE 'Other' END)"
            )
    return None


def _coded(col: Column, value: Any) -> Any:
    """deidentify's CODED rule (shaping._deidentified), for values SQLite hands to Python."""
    if col.separator:
        codes = (deid.within_vocabulary(part, col.vocabulary) for part in str(value).split(col.separator))
        return col.separator.join(code for code in codes if code) or None
    return deid.within_vocabulary(value, col.vocabulary)


def _plain(d: _Dialect, col: Column, name: str, source: Source, zones: _ZoneCells) -> str | None:
    kind, x = source.kind, source.sql
    if kind == "json":
        return _json(d, name, source, col, _identity)
    if col.type == "datetime" and kind == "datetime":
        return d.raw_cell(zones.cell(x))
    if col.type == "text" and kind == "text":
        return d.text_cell(x)
    if col.type == "boolean" and kind == "bool":
        return d.bool_cell(x)
    if col.type == "integer" and kind == "int":
        return d.int_cell(x)
    if col.type == "number" and kind == "float":
        return d.float_cell(x)
    if col.type == "number" and kind == "minutes":
        return _relative(d, x, source.earlier)
    return None


def _json(d: _Dialect, name: str, source: Source, col: Column, after: Callable[[Any], Any]) -> str | None:
    if isinstance(d, _Postgres):
        guard, value = _jsonb_cell(d, source.jsonb, source.sql)
        if after is _identity:
            return f"CASE WHEN {guard} THEN {d.text_cell(value)} END"
        if col.separator and col.vocabulary:
            allowed = ", ".join(d.literal(v) for v in col.vocabulary)
            mapped = (
                f"(SELECT string_agg(CASE WHEN u.p IN ({allowed}) THEN u.p ELSE 'Other' END, "
                f"{d.literal(col.separator)} ORDER BY u.o) FROM unnest(string_to_array({value}, "
                f"{d.literal(col.separator)})) WITH ORDINALITY AS u(p, o) WHERE u.p <> '')"
            )
            return f"CASE WHEN {guard} THEN {d.text_cell(mapped)} END"
        return None
    return d.json_cell(source.sql, source, after, col)


def _relative(d: _Dialect, moment: str, reference: str) -> str:
    """Minutes from `reference` to `moment` as `deid.relative_minutes` (and records._minutes) write them:
    repr of round(…, 1).

    With D the whole microseconds between them, Python computes round(D / 10^6 / 60, 1) in floats: that is
    the tenth nearest D / 6·10^6 except when D is exactly halfway (an odd multiple of 3 s), where the float
    error decides (`relative_tie`); within 19 years the float error cannot reach any other halfway point.
    """
    if isinstance(d, _Sqlite):
        # one Python call on the two stored texts costs less than SQLite's date arithmetic repeated in the
        # expression (SQLite has no common subexpressions); it is deidentify's own function
        def relative(later: str | None, earlier: str | None) -> str | None:
            if later is None or earlier is None:
                return None
            moment, start = datetime.fromisoformat(later), datetime.fromisoformat(earlier)
            return repr(deid.relative_minutes(moment, start))

        d.functions["chairside_relative"] = relative
        return f"CASE WHEN {moment} IS NULL THEN NULL ELSE chairside_relative({moment}, {reference}) END"
    assert isinstance(d, _Postgres)
    micros = d.micros_between(moment, reference)
    a = f"abs({micros})"
    tenths = f"CASE WHEN ({a} + 3000000) % 6000000 = 0 THEN {d.relative_tie(micros)} ELSE ({a} + 3000000) / 6000000 END"
    sign = f"CASE WHEN {moment} < {reference} THEN '-' ELSE '' END"
    text = f"{sign} || round(({tenths})::numeric / 10, 1)::text"
    return f"CASE WHEN {moment} IS NULL OR {reference} IS NULL THEN NULL ELSE {text} END"


class _ZoneCells:
    """Identified times: the row's site's zone, as a binary search over that zone's offset transitions."""

    def __init__(self, d: _Dialect, ctx: ExportContext) -> None:
        self.d = d
        self.ctx = ctx
        lo, hi = ctx.scope.envelope if ctx.scope is not None else (datetime.now(UTC), datetime.now(UTC))
        now = datetime.now(UTC)
        self.years = (min(lo, now).year - ZONE_MARGIN_YEARS, max(hi, now).year + ZONE_MARGIN_YEARS)

    def cell(self, x: str) -> str:
        default = self.ctx.tz
        groups: dict[str, list[int]] = {}
        for site_id, site in self.ctx.sites.items():
            if site.zone.key != default.key:
                groups.setdefault(site.zone.key, []).append(site_id)
        if not groups:
            return self._zone(x, default)
        whens = " ".join(
            f"WHEN {_name(C.site_id)} IN ({', '.join(map(str, ids))}) THEN {self._zone(x, ZoneInfo(key))}"
            for key, ids in sorted(groups.items())
        )
        return f"CASE {whens} ELSE {self._zone(x, default)} END"

    def _zone(self, x: str, zone: ZoneInfo) -> str:
        spans = transitions(zone.key, *self.years)
        d = self.d
        fallback = f"CASE WHEN {x} IS NULL THEN NULL ELSE {d.zone_fallback(x, zone)} END"
        # leaves: before the first year (Python / AT TIME ZONE), each offset span, from after the last year (same);
        # bounds[i] is where leaf i + 1 begins. A NULL time fails every test and ends in the last leaf.
        leaves = [fallback, *(d.local_time(x, seconds, suffix) for _, seconds, suffix in spans), fallback]
        bounds = [start for start, _, _ in spans] + [datetime(self.years[1] + 1, 1, 1, tzinfo=UTC)]

        def tree(lo: int, hi: int) -> str:
            if lo == hi:
                return leaves[lo]
            mid = (lo + hi + 1) // 2
            return f"CASE WHEN {d.moment_before(x, bounds[mid - 1])} THEN {tree(lo, mid - 1)} ELSE {tree(mid, hi)} END"

        return tree(0, len(leaves) - 1)


__all__ = ["LINE_END", "Plan", "plan", "pseudonym_sources", "transitions"]
