"""Read side for the Chairside screens: today's sessions by urgency, and one session in full.

Each function runs a handful of indexed queries for the sessions on screen and
returns plain dataclasses or small DataFrames in the clinic's display units;
pages only draw them. Over 400 lines because the list, the detail and its tables share one
loading path (the same queries feed the card, the header and the record).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from db.engine import Database
from db.models import (
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
    Therapy,
    VitalSign,
)
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import BOARD_VIEW, CLINICAL_READ, require_role
from infusion.accounts.sites import held_sites, require_site, site_of_session, working_context
from infusion.clinical.catalog import DurationWindow, duration_window, observation_minutes
from infusion.clinical.reactions import ACTIONS, SYMPTOMS
from infusion.clinical.schedule import InfusionClock, VitalsDue, infusion_clock, next_vitals_due
from infusion.clinical.states import (
    ACTIVE_STATUSES,
    CLOSED_STATUSES,  # noqa: F401  (importable from here, as before)
    STATUS_LABELS,
    EntryStatus,
    SessionStatus,
)
from infusion.clinical.units import temperature_for_display, weight_for_display
from infusion.clock import format_local, format_minutes, local_date, local_day_bounds, utcnow
from infusion.errors import DatabaseBusy
from infusion.services.audit import record
from infusion.services.opening import clinic_context
from infusion.settings import ClinicSettings


@dataclass(frozen=True)
class SessionCard:
    id: int
    version: int
    patient: str
    mrn: str
    therapy: str
    infusion_number: int
    chair: str
    status: str
    status_label: str
    scheduled_at: datetime
    minutes_in_chair: float | None
    vitals_due: VitalsDue
    overdue_minutes: float
    open_reactions: int
    observation_ends_at: datetime | None
    past_window: bool
    urgency: int
    alerts: tuple[str, ...]
    checked_in_at: datetime | None = None
    ended_at: datetime | None = None
    planned_minutes: float = 0.0
    missing_iv_stop: bool = False
    chair_id: int = 0


def _times_by_session(
    s: Session, model: Any, column: Any, ids: list[int], extra: tuple[Any, ...] = ()
) -> dict[int, list[datetime]]:
    out: dict[int, list[datetime]] = defaultdict(list)
    if not ids:
        return out
    q = select(model.session_id, column).where(model.session_id.in_(ids), model.status == EntryStatus.ACTIVE, *extra)
    for sid, moment in s.execute(q):
        out[sid].append(moment)
    return out


def today_sessions(db: Database, actor: Actor, now: datetime | None = None) -> list[SessionCard]:
    """Today's sessions (clinic time zone) plus any still active from earlier, most urgent first."""
    require_role(actor, BOARD_VIEW, "see today's sessions")
    now = now or utcnow()
    with db.reading() as s:
        clinic, settings = working_context(s, actor)
        start, end = local_day_bounds(local_date(now, clinic.timezone), clinic.timezone)
        q = (
            select(InfusionSession, Patient, Therapy, Chair)
            .join(Patient, Patient.id == InfusionSession.patient_id)
            .join(Therapy, Therapy.id == InfusionSession.therapy_id)
            .join(Chair, Chair.id == InfusionSession.chair_id)
            .where(
                or_(
                    # the local day is half-open: a booking at midnight is tomorrow's
                    and_(InfusionSession.scheduled_at >= start, InfusionSession.scheduled_at < end),
                    InfusionSession.status.in_(ACTIVE_STATUSES),
                )
            )
        )
        # the site is picked here, not in SQL: with `chair.site_id = ?` in the query SQLite's planner
        # starts from the site's chairs and walks their whole history (measured 277 ms against 5 ms at
        # 100k sessions); today's rows of a whole network are few
        rows = [r for r in s.execute(q).all() if r[3].site_id == clinic.id]
        ids = [r[0].id for r in rows]
        vitals = _times_by_session(s, VitalSign, VitalSign.taken_at, ids)
        rates = _times_by_session(s, RateChange, RateChange.at, ids, (RateChange.kind.in_(("change", "resume")),))
        open_reactions: dict[int, int] = defaultdict(int)
        if ids:
            for sid, n in s.execute(
                select(Reaction.session_id, func.count())
                .where(
                    Reaction.session_id.in_(ids), Reaction.status == EntryStatus.ACTIVE, Reaction.resolved_at.is_(None)
                )
                .group_by(Reaction.session_id)
            ):
                open_reactions[sid] = n
    cards = [
        _card(r[0], r[1], r[2], r[3], vitals[r[0].id], rates[r[0].id], open_reactions[r[0].id], now, settings)
        for r in rows
    ]
    return sorted(cards, key=lambda c: (c.urgency, c.vitals_due.due_at or c.scheduled_at, c.scheduled_at))


#: Check-in, assessment and premedication before the IV starts. A product choice for the board's
#: planned bars; no clinical source gives it (docs/clinical-basis.md §10).
PRE_INFUSION_MINUTES = 30


def planned_chair_minutes(window: DurationWindow, observation: int | None) -> float:
    """Planned chair time: pre-infusion allowance + the label window (its upper bound if any) + observation."""
    infusion = window.max_minutes or window.min_minutes or 60  # 60 only when the catalog gives no duration
    return PRE_INFUSION_MINUTES + infusion + (observation or 0)


def planned_minutes_of(therapy: Therapy, infusion_number: int) -> float:
    """The chair time a booking of this therapy and infusion number is planned to take."""
    return planned_chair_minutes(
        duration_window(therapy.duration_windows, infusion_number),
        observation_minutes(therapy.observation_rules, infusion_number),
    )


def chair_clashes(
    s: Session,
    chair_id: int,
    start: datetime,
    minutes: float,
    tz: str,
    *,
    now: datetime | None = None,
    exclude: int | None = None,
) -> list[str]:
    """The open sessions (booked, or in the chair now) holding `chair_id` at some time in the `minutes` from
    `start`, in words (`exclude`: the session being moved). A booking holds the chair for its planned chair
    time from its booked time, a session in the chair for its planned chair time from check-in (half-open:
    one that ends as another starts does not clash); a session still in the chair after that holds it
    through now. A window of no minutes (a patient past their planned time moved now) is the instant
    `start`. A home-visit location holds any number of visits: none clash. The words do not depend on now:
    they are what the nurse confirms, maybe minutes later."""
    chair = s.get(Chair, chair_id)
    if chair is None or chair.kind == "home":
        return []
    now = now or utcnow()
    end = start + timedelta(minutes=minutes)
    open_statuses = (SessionStatus.SCHEDULED, *ACTIVE_STATUSES)
    held_from = func.coalesce(InfusionSession.checked_in_at, InfusionSession.scheduled_at)
    rows = s.execute(
        select(InfusionSession, Patient, Therapy)
        .join(Patient, Patient.id == InfusionSession.patient_id)
        .join(Therapy, Therapy.id == InfusionSession.therapy_id)
        .where(
            InfusionSession.chair_id == chair_id,
            InfusionSession.status.in_(open_statuses),
            # held from check-in, which may be long before or after the booked time
            held_from <= end,
            held_from > start - timedelta(days=1),  # no session holds a chair a day
            InfusionSession.id != (exclude or 0),
        )
        .order_by(held_from, InfusionSession.id)
    ).all()
    clashes = []
    for row, patient, therapy in rows:
        since = row.checked_in_at or row.scheduled_at
        planned_to = since + timedelta(minutes=planned_minutes_of(therapy, row.infusion_number))
        in_chair = row.status in ACTIVE_STATUSES
        overrunning = in_chair and now >= planned_to
        begins_in_time = since < end if end > start else since <= start
        ends_after_start = start <= now if overrunning else start < planned_to
        if begins_in_time and ends_after_start:
            who = f"{patient.family_name}, {patient.given_name[:1]}. ({therapy.brand or therapy.name})"
            when = (
                f"since {format_local(since, tz)}, planned until {format_local(planned_to, tz)}"
                if in_chair
                else f"{format_local(since, tz)}–{format_local(planned_to, tz)}"
            )
            clashes.append(f"The chair is {'in use by' if in_chair else 'booked for'} {who} {when}.")
    return clashes


def _card(
    row: InfusionSession,
    patient: Patient,
    therapy: Therapy,
    chair: Chair,
    vitals_times: list[datetime],
    rate_times: list[datetime],
    open_reactions: int,
    now: datetime,
    settings: ClinicSettings,
) -> SessionCard:
    obs = observation_minutes(therapy.observation_rules, row.infusion_number)
    due = next_vitals_due(
        status=row.status,
        schedule=therapy.vitals_schedule,
        checked_in_at=row.checked_in_at,
        iv_started_at=row.iv_started_at,
        iv_stopped_at=row.iv_stopped_at,
        observation_minutes=obs,
        vitals_times=vitals_times,
        rate_change_times=rate_times,
        early_minutes=settings.vitals_satisfied_early_minutes,
    )
    window = duration_window(therapy.duration_windows, row.infusion_number)
    clock = infusion_clock(
        iv_started_at=row.iv_started_at,
        iv_stopped_at=row.iv_stopped_at,
        now=now,
        window_min=window.min_minutes,
        window_max=window.max_minutes,
        tolerance_minutes=settings.window_tolerance_minutes,
    )
    obs_end = row.iv_stopped_at + timedelta(minutes=obs or 0) if row.iv_stopped_at else None
    overdue = due.overdue_minutes(now) if row.status in ACTIVE_STATUSES else 0.0
    end = row.discharged_at or row.closed_at or now
    in_chair = (end - row.checked_in_at).total_seconds() / 60 if row.checked_in_at else None

    alerts: list[str] = []
    if row.status not in ACTIVE_STATUSES:
        open_reactions = 0  # a closed session is not waiting on the nurse
    if open_reactions:
        alerts.append(f"⚠️ Reaction open ({open_reactions})")
    if overdue > 0:
        alerts.append(f"⏰ Vitals overdue {format_minutes(overdue)}")
    if row.status == SessionStatus.INFUSING and clock.past_window:
        alerts.append(f"⌛ Past expected window ({window.describe()})")
    if row.status == SessionStatus.OBSERVATION and obs_end is not None:
        if now >= obs_end:
            alerts.append("✅ Observation complete: ready to discharge")
        elif (obs_end - now) <= timedelta(minutes=15):
            alerts.append(f"⏳ Observation ends {format_minutes((obs_end - now).total_seconds() / 60)}")

    if open_reactions:
        urgency = 0
    elif overdue > 0:
        urgency = 1
    elif row.status == SessionStatus.OBSERVATION and obs_end is not None and now >= obs_end - timedelta(minutes=15):
        urgency = 2
    elif row.status in (SessionStatus.INFUSING, SessionStatus.PAUSED, SessionStatus.OBSERVATION):
        urgency = 3
    elif row.status in (SessionStatus.CHECKED_IN, SessionStatus.READY):
        urgency = 4
    elif row.status == SessionStatus.SCHEDULED:
        urgency = 5
    else:
        urgency = 6
    missing_stop = row.iv_stopped_at is None and (
        row.status == SessionStatus.OBSERVATION
        or (row.status == SessionStatus.DISCHARGED and row.iv_started_at is not None)
    )
    if missing_stop:
        alerts.append("❓ No IV stop time recorded")
    return SessionCard(
        checked_in_at=row.checked_in_at,
        ended_at=row.discharged_at or row.closed_at,
        planned_minutes=planned_chair_minutes(window, obs),
        missing_iv_stop=missing_stop,
        chair_id=chair.id,
        id=row.id,
        version=row.version,
        patient=f"{patient.family_name}, {patient.given_name}",
        mrn=patient.mrn,
        therapy=therapy.brand or therapy.name,
        infusion_number=row.infusion_number,
        chair=chair.name,
        status=row.status,
        status_label=STATUS_LABELS[row.status],
        scheduled_at=row.scheduled_at,
        minutes_in_chair=in_chair,
        vitals_due=due,
        overdue_minutes=overdue,
        open_reactions=open_reactions,
        observation_ends_at=obs_end,
        past_window=clock.past_window,
        urgency=urgency,
        alerts=tuple(alerts),
    )


@dataclass
class SessionDetail:
    session: InfusionSession
    patient: Patient
    therapy: Therapy
    chair: Chair
    clinic: Clinic
    settings: ClinicSettings
    window: DurationWindow
    clock: InfusionClock
    observation_minutes: int | None
    observation_ends_at: datetime | None
    vitals_due: VitalsDue
    vitals: list[VitalSign] = field(default_factory=list)
    premeds: list[Premedication] = field(default_factory=list)
    rates: list[RateChange] = field(default_factory=list)
    reactions: list[Reaction] = field(default_factory=list)
    program_check: ProgramCheck | None = None
    staff: dict[int, str] = field(default_factory=dict)

    @property
    def needs_program(self) -> bool:
        return bool(self.therapy.program) and self.program_check is None

    @property
    def needs_premedication(self) -> bool:
        return self.therapy.premedication_required and not any(p.status == EntryStatus.ACTIVE for p in self.premeds)

    @property
    def open_reactions(self) -> list[Reaction]:
        return [r for r in self.reactions if r.status == EntryStatus.ACTIVE and r.resolved_at is None]

    def who(self, user_id: int | None) -> str:
        return self.staff.get(user_id or -1, "—")


VIEW_AUDIT_MINUTES = 10  # one "view" audit event per user and session per this many minutes


log = logging.getLogger(__name__)
#: how often a deferred view audit row is retried in the background
VIEW_AUDIT_RETRIES = 8


def _audit_view(db: Database, actor: Actor, session_id: int, now: datetime) -> None:
    """Record that `actor` opened the session, at most once per VIEW_AUDIT_MINUTES (reruns are not reads)."""
    who = AuditEvent.user_id == actor.user_id if actor.user_id is not None else AuditEvent.user_name == actor.name
    since = now - timedelta(minutes=VIEW_AUDIT_MINUTES)
    recent = (
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.session_id == session_id, AuditEvent.action == "view", who, AuditEvent.at >= since)
    )
    try:
        with db.reading() as s:
            if s.scalar(recent):
                return
        _write_view(db, actor, session_id, now, recent, quick=True)
    except DatabaseBusy:
        # Another writer holds the lock: the record opens now and the view row follows as soon as the
        # lock is free (it keeps the time the record was opened). Reading never waits for a writer.
        log.warning("view audit of session=%s deferred: database busy", session_id)
        threading.Thread(
            target=_write_view_later, args=(db, actor, session_id, now, recent), daemon=True, name="view-audit"
        ).start()


def _write_view(db: Database, actor: Actor, session_id: int, now: datetime, recent: Any, *, quick: bool) -> None:
    with db.writing(quick=quick) as s:
        patient_id = s.scalar(select(InfusionSession.patient_id).where(InfusionSession.id == session_id))
        if patient_id is not None and not s.scalar(recent):
            record(s, actor, "view", "session", session_id, session_id=session_id, patient_id=patient_id, at=now)


def _write_view_later(db: Database, actor: Actor, session_id: int, now: datetime, recent: Any) -> None:
    """Retry a deferred view audit row (each attempt waits the normal lock timeout) until it is stored."""
    for attempt in range(VIEW_AUDIT_RETRIES):
        try:
            _write_view(db, actor, session_id, now, recent, quick=False)
            return
        except DatabaseBusy:
            time.sleep(min(30, 2**attempt))
        except Exception:  # noqa: BLE001 - a background thread: log, never crash the app
            log.exception("view audit of session=%s failed", session_id)
            return
    log.error("view audit of session=%s could not be written after %d attempts", session_id, VIEW_AUDIT_RETRIES)


def session_detail(db: Database, actor: Actor, session_id: int, now: datetime | None = None) -> SessionDetail | None:
    """One session in full. Opening a patient's record is itself an audit event (HIPAA §164.312(b))."""
    require_role(actor, CLINICAL_READ, "open a patient's session")
    now = now or utcnow()
    with db.reading() as s:  # another site's session is refused before its view is recorded
        row = s.get(InfusionSession, session_id)
        if row is not None:
            require_site(s, actor, site_of_session(s, row), "open a patient's session")
    _audit_view(db, actor, session_id, now)
    with db.reading() as s:
        row = s.get(InfusionSession, session_id)
        if row is None:
            return None
        clinic, settings = clinic_context(s, site_of_session(s, row))
        patient, therapy, chair = (
            s.get(Patient, row.patient_id),
            s.get(Therapy, row.therapy_id),
            s.get(Chair, row.chair_id),
        )
        assert patient and therapy and chair
        vitals = list(s.scalars(select(VitalSign).where(VitalSign.session_id == row.id).order_by(VitalSign.taken_at)))
        premeds = list(
            s.scalars(select(Premedication).where(Premedication.session_id == row.id).order_by(Premedication.given_at))
        )
        rates = list(
            s.scalars(select(RateChange).where(RateChange.session_id == row.id).order_by(RateChange.at, RateChange.id))
        )
        reactions = list(s.scalars(select(Reaction).where(Reaction.session_id == row.id).order_by(Reaction.onset_at)))
        check = s.scalars(select(ProgramCheck).where(ProgramCheck.session_id == row.id)).first()
        staff = {uid: name for uid, name in s.execute(select(AppUser.id, AppUser.display_name))}
    window = duration_window(therapy.duration_windows, row.infusion_number)
    obs = observation_minutes(therapy.observation_rules, row.infusion_number)
    active_vitals = [v.taken_at for v in vitals if v.status == EntryStatus.ACTIVE]
    rate_times = [r.at for r in rates if r.status == EntryStatus.ACTIVE and r.kind in ("change", "resume")]
    due = next_vitals_due(
        status=row.status,
        schedule=therapy.vitals_schedule,
        checked_in_at=row.checked_in_at,
        iv_started_at=row.iv_started_at,
        iv_stopped_at=row.iv_stopped_at,
        observation_minutes=obs,
        vitals_times=active_vitals,
        rate_change_times=rate_times,
        early_minutes=settings.vitals_satisfied_early_minutes,
    )
    clock = infusion_clock(
        iv_started_at=row.iv_started_at,
        iv_stopped_at=row.iv_stopped_at,
        now=now,
        window_min=window.min_minutes,
        window_max=window.max_minutes,
        tolerance_minutes=settings.window_tolerance_minutes,
    )
    obs_end = row.iv_stopped_at + timedelta(minutes=obs or 0) if row.iv_stopped_at else None
    return SessionDetail(
        row,
        patient,
        therapy,
        chair,
        clinic,
        settings,
        window,
        clock,
        obs,
        obs_end,
        due,
        vitals,
        premeds,
        rates,
        reactions,
        check,
        staff,
    )


def vitals_table(detail: SessionDetail) -> pd.DataFrame:
    """Vitals for display: clinic time and units, flags spelled out, who entered them."""
    tz, tu, wu = detail.clinic.timezone, detail.clinic.temperature_unit, detail.clinic.weight_unit
    records = []
    for v in detail.vitals:
        records.append(
            {
                "Time": format_local(v.taken_at, tz) + _late(detail, v.taken_at, v.entered_at, v.replaces_id),
                "Phase": {"pre": "Check-in", "infusion": "Infusion", "observation": "Observation"}[v.phase],
                "BP": f"{v.systolic}/{v.diastolic}" if v.systolic is not None else "—",
                "Pulse": v.pulse,
                f"Temp °{tu}": temperature_for_display(v.temperature_c, tu),
                "RR": v.resp_rate,
                "SpO2 %": v.spo2,
                "Pain": v.pain,
                f"Weight {wu}": weight_for_display(v.weight_kg, wu),
                "NEWS2": (f"{v.news2}" + ("" if v.news2_complete else " (partial)")) if v.news2 is not None else "—",
                "Flags": "; ".join(f["message"] for f in v.flags) or "",
                "Not obtained": "; ".join(f"{k}: {r}" for k, r in v.unable_to_obtain.items()),
                "Notified": v.provider_name or "",
                "Context": ", ".join(
                    x
                    for x in (
                        v.position or "",
                        "on O₂" if v.on_oxygen else "",
                        "" if v.consciousness == "A" else f"ACVPU {v.consciousness}",
                    )
                    if x
                ),
                "Entered by": detail.who(v.entered_by_id),
                "Status": v.status.replace("_", " "),
            }
        )
    frame = pd.DataFrame.from_records(records)
    for column in ("Pulse", "RR", "SpO2 %", "Pain"):
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    return frame


def _late(detail: SessionDetail, clinical_at: datetime, entered_at: datetime, replaces_id: int | None = None) -> str:
    """' (correction)' for a corrected value; ' (late entry)' when entered more than the clinic's
    late-entry minutes after the time it records."""
    if replaces_id is not None:
        return " (correction)"
    return " (late entry)" if entered_at - clinical_at > timedelta(minutes=detail.settings.late_entry_minutes) else ""


def rates_table(detail: SessionDetail) -> pd.DataFrame:
    tz = detail.clinic.timezone
    labels = {"start": "Start", "change": "Rate change", "pause": "Pause", "resume": "Resume", "stop": "Stop"}
    return pd.DataFrame.from_records(
        [
            {
                "Time": format_local(r.at, tz) + _late(detail, r.at, r.entered_at, r.replaces_id),
                "Event": labels[r.kind],
                "Rate mL/h": r.rate_ml_h if r.kind not in ("pause", "stop") else None,
                "Note": r.note or "",
                "Entered by": detail.who(r.entered_by_id),
                "Status": r.status.replace("_", " "),
            }
            for r in detail.rates
        ]
    )


def reactions_table(detail: SessionDetail) -> pd.DataFrame:
    tz = detail.clinic.timezone
    return pd.DataFrame.from_records(
        [
            {
                "Onset": format_local(r.onset_at, tz) + _late(detail, r.onset_at, r.entered_at, r.replaces_id),
                "Grade": r.grade,
                "Symptoms": ", ".join(SYMPTOMS.get(x, x) for x in r.symptoms)
                + (f" ({r.other_text})" if r.other_text else ""),
                "Actions": ", ".join(ACTIONS.get(x, x) for x in r.actions)
                + (f": {r.medication_given}" if r.medication_given else ""),
                "Resolved": format_local(r.resolved_at, tz) if r.resolved_at else "open",
                "Notified": r.provider_name or "",
                "Entered by": detail.who(r.entered_by_id),
                "Status": r.status.replace("_", " "),
            }
            for r in detail.reactions
        ]
    )


def premeds_table(detail: SessionDetail) -> pd.DataFrame:
    tz = detail.clinic.timezone
    return pd.DataFrame.from_records(
        [
            {
                "Time": format_local(p.given_at, tz) + _late(detail, p.given_at, p.entered_at, p.replaces_id),
                "Drug": p.drug,
                "Dose": p.dose,
                "Route": p.route,
                "Given by": detail.who(p.entered_by_id),
                "Status": p.status.replace("_", " "),
            }
            for p in detail.premeds
        ]
    )


def catalog_table(db: Database) -> pd.DataFrame:
    """The therapy catalog as the clinic has it, in words."""
    with db.reading() as s:
        therapies = list(s.scalars(select(Therapy).order_by(Therapy.name)))
    rows = []
    for t in therapies:
        windows = "; ".join(
            f"infusion {w.get('from', 1)}{'–' + str(w['to']) if w.get('to') else '+'}: "
            f"{DurationWindow(w.get('min_minutes'), w.get('max_minutes')).describe()}"
            for w in t.duration_windows
        )
        obs = "; ".join(
            f"infusion {o.get('from', 1)}{'–' + str(o['to']) if o.get('to') else '+'}: "
            + (f"{o['minutes']} min" if o.get("minutes") is not None else "not defined")
            for o in t.observation_rules
        )
        vs = t.vitals_schedule
        rows.append(
            {
                "Therapy": t.name + (f" ({t.brand})" if t.brand else ""),
                "Route": t.route,
                "Dose": f"{t.default_dose:g} {t.dose_unit}" if t.default_dose else t.dose_unit,
                "Dosing": t.dosing_text,
                "Duration": windows,
                "Observation": obs,
                "Premedication": ("Required: " if t.premedication_required else "") + t.premedication_text,
                "Program": t.program or "—",
                "Vitals": f"at check-in; {', '.join(str(m) for m in vs.get('after_start_minutes', []))} min after start; "
                f"every {vs.get('every_minutes')} min" + ("; at rate changes" if vs.get("at_rate_change") else ""),
                "Source": t.source,
                "Notes": t.notes,
            }
        )
    return pd.DataFrame.from_records(rows)


def find_sessions(
    db: Database, actor: Actor, *, mrn: str | None = None, day: date | None = None, limit: int = 100
) -> pd.DataFrame:
    """Sessions by patient MRN and/or clinic-local day, newest first (for the Session page's picker)."""
    require_role(actor, CLINICAL_READ, "look up sessions")
    with db.reading() as s:
        clinic, _ = working_context(s, actor)
        held = held_sites(s, actor)
        q = (
            select(
                InfusionSession.id,
                InfusionSession.scheduled_at,
                InfusionSession.status,
                InfusionSession.infusion_number,
                Patient.family_name,
                Patient.given_name,
                Patient.mrn,
                Therapy.name,
                Therapy.brand,
                Chair.name,
            )
            .join(Patient, Patient.id == InfusionSession.patient_id)
            .join(Therapy, Therapy.id == InfusionSession.therapy_id)
            .join(Chair, Chair.id == InfusionSession.chair_id)
            .order_by(InfusionSession.scheduled_at.desc())
            .limit(limit)
        )
        if held is not None:
            q = q.where(Chair.site_id.in_(held))
        if mrn and mrn.strip():
            q = q.where(Patient.mrn == mrn.strip())
        if day is not None:
            lo, hi = local_day_bounds(day, clinic.timezone)
            q = q.where(InfusionSession.scheduled_at >= lo, InfusionSession.scheduled_at < hi)
        rows = s.execute(q).all()
    return pd.DataFrame.from_records(
        [
            {
                "id": r[0],
                "date": format_local(r[1], clinic.timezone, "%Y-%m-%d %H:%M"),
                "patient": f"{r[4]}, {r[5]}",
                "mrn": r[6],
                "therapy": f"{r[8] or r[7]} #{r[3]}",
                "chair": r[9],
                "status": STATUS_LABELS.get(r[2], r[2]),
            }
            for r in rows
        ],
        columns=["id", "date", "patient", "mrn", "therapy", "chair", "status"],
    )
