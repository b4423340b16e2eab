"""The SELECT statement behind each export dataset, and the filters they share.

Each dataset is one streamed main query (ordered, so a file is reproducible);
the summaries a sessions row needs are fetched per chunk in `records`. The date
range is turned into UTC bounds on each site's local days here (`Scope`: the
sites of one time zone share a window; the windows are OR'd under one envelope
the time index can use), so every dataset of one range describes the same
sessions, and 1 March means midnight to midnight wherever the session took place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, aliased

from db.models import AuditEvent, Chair, CourseEnd, InfusionSession, Patient, Reaction, Therapy, VitalSign
from infusion.errors import ValidationError

S, P, T, C = InfusionSession, Patient, Therapy, Chair
V, R, A, CE = VitalSign, Reaction, AuditEvent, CourseEnd


@dataclass(frozen=True)
class ExportFilters:
    """Which rows an export holds. Dates are the clinic's local days, both ends included.

    For sessions, vitals and reactions the range applies to the session's scheduled
    day, so the three datasets of one range describe the same sessions; for audit
    it applies to the event time; for course ends to the time the course was marked ended.
    Therapy and chair filters select sessions (audit: events about those sessions; course
    ends: the course's therapy, and a course end has no chair, see `UNANSWERED`); the nurse
    filter selects the nurse who checked the patient in (audit: the member of staff who made
    the change; course ends: who marked the course ended).

    `site_ids`: the sites (None: every site the person exporting holds; the export
    refuses a site they do not hold). The days are each site's local days. With
    sites named (or a person holding some sites), audit holds the events about those sites only.
    `pseudonymise_site` (de-identified exports only): `site_key`, a keyed pseudonym,
    instead of the site's code.
    """

    start: date
    end: date
    therapy_ids: tuple[int, ...] = ()
    chair_ids: tuple[int, ...] = ()
    nurse_ids: tuple[int, ...] = ()
    include_entered_in_error: bool = False
    site_ids: tuple[int, ...] | None = None
    pseudonymise_site: bool = False

    def __post_init__(self) -> None:
        for name in ("therapy_ids", "chair_ids", "nurse_ids"):
            object.__setattr__(self, name, tuple(int(x) for x in getattr(self, name)))
        if self.site_ids is not None:
            object.__setattr__(self, "site_ids", tuple(sorted({int(x) for x in self.site_ids})))
            if not self.site_ids:
                raise ValidationError({"site_ids": "Choose at least one site (or none named: every site you hold)."})
        if self.start > self.end:
            raise ValidationError(
                {"end": f"The end date {self.end.isoformat()} is before the start date {self.start.isoformat()}."}
            )


def bounds(filters: ExportFilters, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The filters' local days as a half-open UTC range [first midnight, midnight after the last day)."""
    start = datetime.combine(filters.start, time.min, tzinfo=tz)
    end = datetime.combine(filters.end + timedelta(days=1), time.min, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True)
class Window:
    """Sites of one time zone (None: every site) and the filters' local days there, as UTC [lo, hi)."""

    site_ids: tuple[int, ...] | None
    lo: datetime
    hi: datetime


@dataclass(frozen=True)
class Scope:
    """Which sites an export covers, each with its own local days.

    `sessionless`: the window for audit events about no site (the first site's days), or None
    when the export names sites (such events belong to no site, so they are left out).
    """

    windows: tuple[Window, ...]
    sessionless: tuple[datetime, datetime] | None = None

    @property
    def envelope(self) -> tuple[datetime, datetime]:
        """The smallest UTC range holding every window (an index range; the windows then pick the rows)."""
        spans = [(w.lo, w.hi) for w in self.windows] + ([self.sessionless] if self.sessionless else [])
        if not spans:
            epoch = datetime(1970, 1, 1, tzinfo=UTC)
            return epoch, epoch
        return min(lo for lo, _ in spans), max(hi for _, hi in spans)


def scope_for(
    filters: ExportFilters, zones: dict[int, ZoneInfo], chosen: frozenset[int] | None, default: ZoneInfo
) -> Scope:
    """Per-site UTC windows of the filters' days. `zones`: every site's zone; `chosen`: the sites (None: all)."""
    groups: dict[str, list[int]] = {}
    by_key: dict[str, ZoneInfo] = {}
    for site_id, zone in sorted(zones.items()):
        if chosen is None or site_id in chosen:
            groups.setdefault(zone.key, []).append(site_id)
            by_key[zone.key] = zone
    if chosen is None:
        if len(groups) <= 1:  # one zone (a single clinic): a plain range, no site condition
            zone = next(iter(by_key.values()), default)
            return Scope((Window(None, *bounds(filters, zone)),), sessionless=bounds(filters, default))
        sessionless: tuple[datetime, datetime] | None = bounds(filters, default)
    else:
        sessionless = None
    windows = tuple(Window(tuple(ids), *bounds(filters, by_key[key])) for key, ids in sorted(groups.items()))
    return Scope(windows, sessionless)


def _within(moment: Any, site: Any, lo: datetime, hi: datetime, scope: Scope | None) -> list[Any]:
    """`moment` within the scope's windows, by the row's site (plain [lo, hi) when there is no scope)."""
    if scope is None:
        return [moment >= lo, moment < hi]
    env_lo, env_hi = scope.envelope
    conditions: list[Any] = [moment >= env_lo, moment < env_hi]
    if len(scope.windows) == 1 and scope.windows[0].site_ids is None and scope.sessionless in (None, scope.envelope):
        window = scope.windows[0]
        return [moment >= window.lo, moment < window.hi]
    parts: list[ColumnElement[bool]] = []
    for w in scope.windows:
        where = [moment >= w.lo, moment < w.hi]
        parts.append(and_(*where) if w.site_ids is None else and_(site.in_(w.site_ids), *where))
    if scope.sessionless is not None:
        parts.append(and_(site.is_(None), moment >= scope.sessionless[0], moment < scope.sessionless[1]))
    conditions.append(or_(*parts) if parts else false())
    return conditions


def nurse() -> Any:
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


def _session_filters(filters: ExportFilters, lo: datetime, hi: datetime, scope: Scope | None = None) -> list[Any]:
    conditions: list[Any] = _within(S.scheduled_at, C.site_id, lo, hi, scope)
    if filters.therapy_ids:
        conditions.append(S.therapy_id.in_(filters.therapy_ids))
    if filters.chair_ids:
        conditions.append(S.chair_id.in_(filters.chair_ids))
    if filters.nurse_ids:
        conditions.append(nurse().in_(filters.nurse_ids))
    return conditions


def _entry_statuses(status: InstrumentedAttribute[str], filters: ExportFilters) -> Any:
    """Current entries only; entered-in-error ones too when asked for (docs/clinical-basis.md §12)."""
    wanted = ("active", "entered_in_error") if filters.include_entered_in_error else ("active",)
    return status.in_(wanted)


def sessions_query(filters: ExportFilters, lo: datetime, hi: datetime, scope: Scope | None = None) -> Select:
    return (
        select(
            S.id.label("session_id"),
            S.patient_id,
            C.site_id,
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
            nurse().label("nurse_id"),
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
        .where(*_session_filters(filters, lo, hi, scope))
        .order_by(S.scheduled_at, S.id)
    )


def vitals_query(filters: ExportFilters, lo: datetime, hi: datetime, scope: Scope | None = None) -> Select:
    return (
        select(
            V.id.label("vital_id"),
            V.session_id,
            S.patient_id,
            C.site_id,
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
        .join(C, C.id == S.chair_id)
        .where(*_session_filters(filters, lo, hi, scope), _entry_statuses(V.status, filters))
        .order_by(S.scheduled_at, S.id, V.taken_at, V.id)
    )


def reactions_query(filters: ExportFilters, lo: datetime, hi: datetime, scope: Scope | None = None) -> Select:
    return (
        select(
            R.id.label("reaction_id"),
            R.session_id,
            S.patient_id,
            C.site_id,
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
        .join(C, C.id == S.chair_id)
        .where(*_session_filters(filters, lo, hi, scope), _entry_statuses(R.status, filters))
        .order_by(S.scheduled_at, S.id, R.onset_at, R.id)
    )


def audit_query(filters: ExportFilters, lo: datetime, hi: datetime, scope: Scope | None = None) -> Select:
    """Audit events by the event's own site (`audit_event.site_id`: its session's, a site's or chair's
    settings, a patient's; infusion.services.audit.event_site), so a person holding some sites exports
    only the events about them, as the audit search shows them (infusion.reads.audit_log); events
    about no site (accounts, catalog, exports) only when no site is named and every site is held."""
    conditions: list[Any] = _within(A.at, A.site_id, lo, hi, scope)
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
            A.site_id,
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


def course_ends_query(filters: ExportFilters, lo: datetime, hi: datetime, scope: Scope | None = None) -> Select:
    """Course-end marks (`infusion.services.courses`) by the day they were made, in the zone of the site they
    were filed under (`course_end.site_id`, the site the person ending the course held), resumed or not."""
    conditions: list[Any] = _within(CE.ended_at, CE.site_id, lo, hi, scope)
    if filters.therapy_ids:
        conditions.append(CE.therapy_id.in_(filters.therapy_ids))
    if filters.nurse_ids:
        conditions.append(CE.ended_by_id.in_(filters.nurse_ids))
    return (
        select(
            CE.id.label("course_end_id"),
            CE.patient_id,
            CE.therapy_id,
            CE.site_id,
            P.mrn,
            P.family_name,
            P.given_name,
            T.code.label("therapy_code"),
            T.name.label("therapy_name"),
            CE.reason,
            CE.note,
            CE.ended_at,
            CE.ended_by_id,
            CE.ended_by_name,
            CE.resumed_at,
            CE.resumed_by_id,
            CE.resumed_by_name,
            CE.resume_reason,
        )
        .select_from(CE)
        .join(P, P.id == CE.patient_id)
        .join(T, T.id == CE.therapy_id)
        .where(*conditions)
        .order_by(CE.ended_at, CE.id)
    )


Query = Callable[[ExportFilters, datetime, datetime, Scope | None], Select]
QUERIES: dict[str, Query] = {
    "sessions": sessions_query,
    "vitals": vitals_query,
    "reactions": reactions_query,
    "audit": audit_query,
    "course_ends": course_ends_query,
}
#: The column that identifies one output row of each dataset (what a count counts).
_ROW_KEYS: dict[str, Any] = {"sessions": S.id, "vitals": V.id, "reactions": R.id, "audit": A.id, "course_ends": CE.id}
#: Per dataset, the filters it has nothing to match against and what to tell the person asking: such an export
#: is refused (`check_filters`) rather than written with the filter ignored or as an empty file.
UNANSWERED: dict[str, dict[str, str]] = {
    "course_ends": {"chair_ids": "A course end has no chair: clear the chair filter to export course ends."},
}


def check_filters(dataset: str, filters: ExportFilters) -> None:
    """Refuse filters the dataset cannot answer (`UNANSWERED`), before any row or byte."""
    refused = {name: why for name, why in UNANSWERED.get(dataset, {}).items() if getattr(filters, name)}
    if refused:
        raise ValidationError(refused)


def count_query(dataset: str, filters: ExportFilters, lo: datetime, hi: datetime, scope: Scope | None = None) -> Select:
    """How many rows the dataset's main query returns, without fetching them."""
    inner = QUERIES[dataset](filters, lo, hi, scope).with_only_columns(_ROW_KEYS[dataset]).order_by(None).subquery()
    return select(func.count()).select_from(inner)
