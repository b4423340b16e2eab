"""From an identified record to the output row of the chosen mode (identified or de-identified).

Builders in `records` always produce identified records keyed by source name;
here each output column of `infusion.exports.schema` picks its source and, in
de-identified mode, applies its `Deid` rule (values from
`infusion.exports.deidentify`). The transforms are resolved once per export,
not per cell, because this runs for every row of a large export.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from db.models import AppUser, Clinic
from infusion.errors import ChairsideError
from infusion.exports import deidentify as deid
from infusion.exports.schema import Column, Deid, output_columns

#: A value transform: (value, the session's reference time) → output value; never called with None.
Transform = Callable[[Any, Any], Any]
#: Per output column: its name, the record key it reads, and its transform (None: as is).
Shaper = tuple[str, str, Transform | None]


@dataclass(frozen=True)
class ExportContext:
    """What one export needs besides the rows: clinic time zone, staff names, columns and mode."""

    tz: ZoneInfo
    staff: dict[int, str]
    columns: tuple[Column, ...]
    secret: bytes | None
    shapers: tuple[Shaper, ...] = ()


def load_context(conn: Connection, dataset: str, secret: bytes | None) -> ExportContext:
    """The clinic's time zone and staff names, read in the export's snapshot."""
    tz_name = conn.scalar(select(Clinic.timezone).order_by(Clinic.id).limit(1))
    if tz_name is None:
        raise ChairsideError("The clinic is not set up yet: there is nothing to export.")
    staff = {uid: name for uid, name in conn.execute(select(AppUser.id, AppUser.display_name))}
    tz, columns = ZoneInfo(tz_name), output_columns(dataset, secret is not None)
    return ExportContext(tz, staff, columns, secret, _shapers(columns, tz, secret))


def shape(record: dict[str, Any], ctx: ExportContext) -> dict[str, Any]:
    """An identified record → the output row of the chosen mode."""
    out: dict[str, Any] = {}
    reference = record.get("_reference")
    for name, source, transform in ctx.shapers:
        value = record.get(source)
        # every transform maps None to None, so a blank cell skips the call
        out[name] = value if transform is None or value is None else transform(value, reference)
    return out


def _shapers(columns: tuple[Column, ...], tz: ZoneInfo, secret: bytes | None) -> tuple[Shaper, ...]:
    """Per output column: where its value comes from and how it is transformed (None: as is)."""
    shapers = []
    for col in columns:
        transform: Transform | None = None
        if secret is not None:
            if col.deid in (Deid.REMOVE, Deid.UNDECLARED):  # output_columns leaves these out: never reached
                raise AssertionError(f"{col.name}: a removed column reached a de-identified export")
            if col.deid not in (Deid.KEEP, Deid.ONLY) and not (col.deid is Deid.CODED and not col.vocabulary):
                transform = _deid_transform(col, secret)
        elif col.type == "datetime":
            transform = lambda value, _ref: value.astimezone(tz)  # noqa: E731
        shapers.append((col.name, col.source or col.name, transform))
    return tuple(shapers)


def _deid_transform(col: Column, secret: bytes) -> Transform:
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
    if col.deid is Deid.CODED:
        if col.separator:
            codes = (deid.within_vocabulary(part, col.vocabulary) for part in str(value).split(col.separator))
            return col.separator.join(code for code in codes if code) or None
        return deid.within_vocabulary(value, col.vocabulary)
    return value
