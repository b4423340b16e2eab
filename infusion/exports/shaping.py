"""From an identified record to the output row of the chosen mode (identified or de-identified).

Builders in `records` always produce identified records keyed by source name;
here each output column of `infusion.exports.schema` picks its source and, in
de-identified mode, applies its `Deid` rule (values from
`infusion.exports.deidentify`). The transforms are resolved once per export,
not per cell, because this runs for every row of a large export.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from db.models import AppUser, Clinic
from infusion.errors import ChairsideError, PermissionDenied, ValidationError
from infusion.exports import deidentify as deid
from infusion.exports.queries import ExportFilters, Scope, scope_for
from infusion.exports.schema import Column, Deid, output_columns

#: A value transform: (value, the session's reference time, the row's site zone) → output value; never
#: called with None.
Transform = Callable[[Any, Any, ZoneInfo], Any]
#: Per output column: its name, the record key it reads, and its transform (None: as is).
Shaper = tuple[str, str, Transform | None]


@dataclass(frozen=True)
class Site:
    """A site as an export writes it: its code and the zone its rows' days and times are in."""

    id: int
    code: str
    name: str
    zone: ZoneInfo


@dataclass(frozen=True)
class ExportContext:
    """What one export needs besides the rows: the sites (codes, zones), staff names, columns and mode.

    `tz` is the first site's zone (audit events without a session); every other row is in its site's zone.
    """

    tz: ZoneInfo
    staff: dict[int, str]
    columns: tuple[Column, ...]
    secret: bytes | None
    shapers: tuple[Shaper, ...] = ()
    sites: dict[int, Site] = field(default_factory=dict)
    scope: Scope | None = None


def read_sites(conn: Connection) -> dict[int, Site]:
    """Every site of the network (closed ones too: their history is exported), by id."""
    rows = conn.execute(select(Clinic.id, Clinic.code, Clinic.name, Clinic.timezone).order_by(Clinic.id))
    return {r.id: Site(r.id, r.code, r.name, ZoneInfo(r.timezone)) for r in rows}


def chosen_sites(
    sites: dict[int, Site], wanted: tuple[int, ...] | None, held: frozenset[int] | None
) -> frozenset[int] | None:
    """The sites an export covers: those asked for (None: all), within those the person holds (None: all).

    PermissionDenied for a site asked for that the person does not hold; ValidationError for an unknown one.
    """
    if wanted is None:
        if held is None:
            return None
        if not held:
            raise PermissionDenied("You hold your role at no site, so there is nothing you may export.")
        return frozenset(held)
    unknown = [s for s in wanted if s not in sites]
    if unknown:
        raise ValidationError({"site_ids": f"Unknown site {', '.join(map(str, unknown))}."})
    refused = [sites[s] for s in wanted if held is not None and s not in held]
    if refused:
        names = ", ".join(f"{site.name} ({site.code})" for site in refused)
        raise PermissionDenied(f"You do not hold your role at {names}: you may not export its data.")
    return frozenset(wanted)


def load_context(
    conn: Connection,
    dataset: str,
    secret: bytes | None,
    filters: ExportFilters | None = None,
    held: frozenset[int] | None = None,
) -> ExportContext:
    """The sites, their zones and staff names, read in the export's snapshot; with `filters`, the sites and
    days the export covers (`held`: the sites the person exporting holds, None for all)."""
    sites = read_sites(conn)
    if not sites:
        raise ChairsideError("The clinic is not set up yet: there is nothing to export.")
    tz = next(iter(sites.values())).zone
    scope = None
    if filters is not None:
        chosen = chosen_sites(sites, filters.site_ids, held)
        scope = scope_for(filters, {i: site.zone for i, site in sites.items()}, chosen, tz)
    staff = {uid: name for uid, name in conn.execute(select(AppUser.id, AppUser.display_name))}
    pseudonymise = filters is not None and filters.pseudonymise_site and secret is not None
    columns = output_columns(dataset, secret is not None, pseudonymise)
    return ExportContext(tz, staff, columns, secret, _shapers(columns, secret, sites), sites, scope)


def shape(record: dict[str, Any], ctx: ExportContext) -> dict[str, Any]:
    """An identified record → the output row of the chosen mode."""
    out: dict[str, Any] = {}
    reference = record.get("_reference")
    zone = record.get("_tz") or ctx.tz
    for name, source, transform in ctx.shapers:
        value = record.get(source)
        # every transform maps None to None, so a blank cell skips the call
        out[name] = value if transform is None or value is None else transform(value, reference, zone)
    return out


def cell_rows(ctx: ExportContext, formatters: list[Callable[[Any], Any]]) -> Callable[[dict[str, Any]], list[Any]]:
    """`shape` and the CSV cell formatting fused: an identified record → the formatted cells of its output row.

    The CSV writer's hot path (issue 14): no output dict per row, and each column's source, transform and
    formatter are looked up once per export, not per cell.
    """
    plan = tuple((source, transform, fmt) for (_, source, transform), fmt in zip(ctx.shapers, formatters, strict=True))
    default_zone = ctx.tz

    def cells(record: dict[str, Any]) -> list[Any]:
        reference = record.get("_reference")
        zone = record.get("_tz") or default_zone
        get = record.get
        return [
            fmt(value)
            if (value := get(source)) is None or transform is None
            else fmt(transform(value, reference, zone))
            for source, transform, fmt in plan
        ]

    return cells


def _in_zone(value: Any, _reference: Any, zone: ZoneInfo) -> Any:
    return value.astimezone(zone)


def _shapers(columns: tuple[Column, ...], secret: bytes | None, sites: dict[int, Site]) -> tuple[Shaper, ...]:
    """Per output column: where its value comes from and how it is transformed (None: as is)."""
    shapers = []
    for col in columns:
        transform: Transform | None = None
        if secret is not None:
            if col.deid in (Deid.REMOVE, Deid.UNDECLARED):  # output_columns leaves these out: never reached
                raise AssertionError(f"{col.name}: a removed column reached a de-identified export")
            if col.deid is Deid.SITE:
                if col.name != col.source:  # site_key: the keyed pseudonym of the site's number
                    transform = _site_key_transform(secret, sites)
            elif col.deid not in (Deid.KEEP, Deid.ONLY) and not (col.deid is Deid.CODED and not col.vocabulary):
                transform = _deid_transform(col, secret)
        elif col.type == "datetime":
            transform = _in_zone
        shapers.append((col.name, col.source or col.name, transform))
    return tuple(shapers)


def _site_key_transform(secret: bytes, sites: dict[int, Site]) -> Transform:
    keys = {site.code: deid.site_key(secret, site.id) for site in sites.values()}

    def keyed(code: Any, _reference: Any, _zone: ZoneInfo) -> Any:
        return keys[code]

    return keyed


def _deid_transform(col: Column, secret: bytes) -> Transform:
    def checked(value: Any, reference: Any, _zone: ZoneInfo) -> Any:
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
