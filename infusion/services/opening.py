"""Shared opening for every write to a session: role, lock, version, clinic and clinical times.

Each charting write runs in one transaction: check the role, open the write
transaction (BEGIN IMMEDIATE on SQLite), lock the session row (SELECT … FOR
UPDATE on PostgreSQL), compare the version the nurse saw, validate, write,
audit. `charting` does the first four steps:

    opening = charting(db, actor, session_id, expected_version, what="chart infusion sessions")
    reason = required_text(...)          # runs after the role check, before the lock
    with opening as w:                   # transaction open, row locked, version checked
        w.row.status = w.transition("defer")
        ... clinical_time(at, settings=w.settings, tz=w.tz, ...)

The role is checked when `charting(...)` is called, the transaction opens on
`with`: validation written in between keeps its place (after the role check,
before any database work). The clinic and its settings are read on first use.
The clinic lookup (`find_clinic`, `clinic_context`, `clinic_timezone`) is here
too, once, for the services and the reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, cached_property
from typing import Any

from sqlalchemy import Update, bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from db.engine import Database
from db.models import AuditEvent, Chair, Clinic, InfusionSession, Therapy
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import CHARTING, ROLE_LABELS, require_role
from infusion.accounts.sites import account_and_replay, keep, require_site, site_of_session, stored_id
from infusion.clinical.states import SessionStatus, require_transition
from infusion.clock import format_local, utcnow
from infusion.errors import ConflictError, NotFoundError, PermissionDenied, ValidationError
from infusion.services import integrity
from infusion.settings import ClinicSettings, load_settings

log = logging.getLogger(__name__)

#: how a charting write finds its session: an id, or a lookup run inside the transaction before the lock
#: (for writes addressed by an entry: the entry's session)
SessionRef = int | Callable[[Session], int]

#: what a retried save finds: the entry stored under its client token ("This form was already used...")
ANOTHER_SESSION = "This form was already used for another session; reload the page."


@dataclass(frozen=True)
class TokenReplay:
    """A retried entry save is the row of `model` (an entry table with a unique `client_token` and a
    `session_id`) stored under `token`. `charting` looks for it in the statement that reads the account
    after the session's lock, so every save of an entry costs one round trip less than a separate lookup."""

    model: Any
    token: str | None


class Writing:
    """What a charting write works on: the transaction, the locked session row and its site."""

    def __init__(self, s: Session, row: InfusionSession, replay: Any = None, site_id: int | None = None) -> None:
        self.s = s
        self.row = row
        #: what an idempotent retry already stored (then nothing else is checked or written)
        self.replay = replay
        #: the session's site (its chair's): the clinic settings, zone and units are this site's
        self.site_id = site_id if site_id is not None else site_of_session(s, row)

    @cached_property
    def _context(self) -> tuple[Clinic, ClinicSettings]:
        return clinic_context(self.s, self.site_id)

    @property
    def clinic(self) -> Clinic:
        return self._context[0]

    @property
    def settings(self) -> ClinicSettings:
        return self._context[1]

    @property
    def tz(self) -> str:
        return self.clinic.timezone

    def transition(self, action: str) -> SessionStatus:
        """The status `action` leads to from the row's status (StateError if not allowed now)."""
        return require_transition(action, self.row.status)

    def check_version(self, expected_version: int | None) -> None:
        check_version(self.s, self.row, expected_version)


class charting(AbstractContextManager[Writing]):  # noqa: N801 - used like a function: `with charting(...) as w`
    """Role check now; on `with`: one write transaction, the session row locked and its version checked.

    `replayed(s, row)` looks for what a retried request (same client token) already
    stored; if it finds something, the version check is skipped and `w.replay` holds
    it, so the caller returns it unchanged. The transaction commits when the block
    ends and rolls back on any exception (`Database.writing`).
    """

    def __init__(
        self,
        db: Database,
        actor: Actor,
        session: SessionRef,
        expected_version: int | None = None,
        *,
        what: str = "chart infusion sessions",
        replayed: Callable[[Session, InfusionSession], Any] | TokenReplay | None = None,
    ) -> None:
        require_role(actor, CHARTING, what)
        if not callable(session):
            session = record_id(session, "session")
        self._db, self._session, self._expected = db, session, expected_version
        self._actor, self._what = actor, what
        if expected_version is not None:
            record_id(expected_version, "expected_version")
        self._replayed = replayed
        self._cm: AbstractContextManager[Writing] | None = None

    @contextmanager
    def _open(self) -> Iterator[Writing]:
        with self._db.writing() as s:
            session_id = self._session if isinstance(self._session, int) else self._session(s)
            row = lock_session(s, session_id, None)
            # the account after the lock: on PostgreSQL a statement sees what committed before it began, so
            # the retry lookup that shares its statement sees a save that held the lock while this one waited
            replayed = self._replayed
            probe = replayed if isinstance(replayed, TokenReplay) else None
            replay_id = require_account(s, self._actor, CHARTING, self._what, replay=probe)
            site = site_of_session(s, row)
            require_site(s, self._actor, site, self._what)
            if isinstance(replayed, TokenReplay):
                replay = stored_entry(s, replayed.model, replay_id, row.id)
            else:
                replay = replayed(s, row) if replayed is not None else None
            if replay is None:
                check_version(s, row, self._expected)
            yield Writing(s, row, replay, site)

    def __enter__(self) -> Writing:
        self._cm = self._open()
        return self._cm.__enter__()

    def __exit__(self, *exc: Any) -> bool | None:
        assert self._cm is not None
        return self._cm.__exit__(*exc)


@contextmanager
def administering(
    db: Database, actor: Actor, allowed: tuple[str, ...], what: str, *, quick: bool = False
) -> Iterator[Session]:
    """The opening of a write that is not about one session (set-up, accounts, exports' audit rows):
    the role now, then one write transaction with the account checked in it."""
    require_role(actor, allowed, what)
    with db.writing(quick=quick) as s:
        require_account(s, actor, allowed, what)
        yield s


def require_account(
    s: Session, actor: Actor, allowed: tuple[str, ...] | None, what: str, *, replay: TokenReplay | None = None
) -> int | None:
    """The account behind a signed-in actor, as the database has it now: active, and (if `allowed`)
    with one of those roles. A browser signed in before the account was disabled or its role
    changed is refused here, whatever the actor object says. Actors without an account (the
    command line, the system, tests) pass.

    `replay`: also the id of the entry stored under its token (None: none), read in the account's
    statement when there is one."""
    token = client_token(replay.token) if replay is not None else None
    model = replay.model if replay is not None and token else None
    if actor.user_id is None:
        return stored_id(s, model, token) if model is not None and token is not None else None
    # the site check and the audit row read the account again in this transaction
    user, replay_id = account_and_replay(s, actor.user_id, model, token)
    if user is None or not user.active:
        raise PermissionDenied(f"Your account is disabled; you may not {what}. Ask an administrator.")
    if allowed is not None and user.role not in allowed:
        raise PermissionDenied(f"Your role ({ROLE_LABELS.get(user.role, user.role)}) may not {what}.")
    return replay_id


def record_id(value: object, field: str) -> int:
    """A record number given to a service: a whole number a row could have, else ValidationError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError({field: f"{integrity.label(field)}: pick a record (got {type(value).__name__})."})
    if not 0 < value <= integrity.INT64[1]:
        raise ValidationError({field: f"{integrity.label(field)}: no record has the number {value}."})
    return value


#: built once: a statement object keeps its compiled cache key, so a save does not rebuild it
_LOCK = (
    select(InfusionSession, Chair, Clinic)
    .join(Chair, Chair.id == InfusionSession.chair_id)
    .join(Clinic, Clinic.id == Chair.site_id)
    .where(InfusionSession.id == bindparam("session_id"))
    .with_for_update(of=InfusionSession)  # PostgreSQL: the session row only, not its chair or site
)


def lock_session(s: Session, session_id: int, expected_version: int | None) -> InfusionSession:
    """The session row, locked for this transaction, checked against the version the nurse saw.

    Its chair and site are read in the same statement and held for the transaction: every charting
    write asks for the session's site, its settings and zone next (one statement instead of three)."""
    found = s.execute(_LOCK, {"session_id": session_id}).first()
    if found is None:
        raise NotFoundError(f"Session {session_id} not found.")
    row, chair, clinic = found
    keep(s, chair)
    keep(s, clinic)
    check_version(s, row, expected_version)
    return row


def stored_entry(s: Session, model: Any, entry_id: int | None, session_id: int) -> Any:
    """The entry a retried save stored (by id, found under its token), refused if it belongs to
    another session: the same form cannot chart two patients."""
    found = s.get(model, entry_id) if entry_id is not None else None
    refuse_other_session(found, session_id)
    return found


def refuse_other_session(entry: Any, session_id: int) -> None:
    """A retried save's stored entry (or None) is refused if it charts another session."""
    if entry is not None and entry.session_id != session_id:
        raise ValidationError({"client_token": ANOTHER_SESSION})


def check_version(s: Session, row: InfusionSession, expected_version: int | None) -> None:
    """Refuse the write if the session changed since the nurse's screen showed `expected_version`."""
    if expected_version is None or row.version == expected_version:
        return
    # who changed the state: a session event or a rate entry (appended vitals, reactions and views
    # do not bump the version, so naming them would blame the wrong nurse)
    last = s.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.session_id == row.id,
            (AuditEvent.entity == "session") | AuditEvent.action.like("rate_%"),
            AuditEvent.action != "view",
        )
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).first()
    who = f" by {last.user_name} ({last.action.replace('_', ' ')})" if last else ""
    raise ConflictError(
        f"This session was changed{who} after you opened it. Nothing was saved; review the latest record and try again."
    )


#: per-session summaries kept on write (never state a nurse decides on): changing them does not bump
#: `infusion_session.version`, so one nurse's vitals or reaction never makes another nurse's rate
#: change, pause or discharge a "changed since you opened it" conflict
SUMMARY_COLUMNS = frozenset({"last_vitals_at", "baseline_systolic", "reaction_count", "worst_grade"})


@cache
def _summary_update(columns: frozenset[str]) -> Update:
    """UPDATE of these summary columns of one session, built once per set of columns (every save runs one)."""
    table: Any = InfusionSession.__table__
    return update(table).where(table.c.id == bindparam("row_id")).values({c: bindparam(f"new_{c}") for c in columns})


def set_summaries(s: Session, row: InfusionSession, **values: Any) -> None:
    """Write summary columns of a locked session row without touching its version.

    The ORM would bump `version` (its `version_id_col`) on any change to the row; an entry
    appended to a session is not a change of the session's state, so the summaries go out
    as one plain UPDATE and the loaded row is brought in line without a pending change."""
    unknown = set(values) - SUMMARY_COLUMNS
    if unknown:
        raise ValueError(f"not summary columns: {sorted(unknown)}")
    current = {k: getattr(row, k) for k in values}
    if current == values:
        return
    s.execute(_summary_update(frozenset(values)), {"row_id": row.id, **{f"new_{k}": v for k, v in values.items()}})
    for key, value in values.items():
        set_committed_value(row, key, value)


def find_clinic(s: Session, site_id: int | None = None) -> Clinic | None:
    """The site `site_id` (a `clinic` row), or the first site when none is named (a single-clinic
    database has one); None before set-up."""
    if site_id is not None:
        return s.get(Clinic, site_id)
    return s.scalars(select(Clinic).order_by(Clinic.id).limit(1)).first()


def clinic_context(s: Session, site_id: int | None = None) -> tuple[Clinic, ClinicSettings]:
    """The site (first site if not named) and its settings; NotFoundError before set-up."""
    clinic = find_clinic(s, site_id)
    if clinic is None:
        raise NotFoundError("The clinic is not set up yet.")
    return clinic, load_settings(clinic.settings)


def clinic_timezone(s: Session, missing: str | None = None, site_id: int | None = None) -> str:
    """The site's time zone (an IANA name; the first site if not named). Before set-up: `missing` if
    given (reads that show an empty screen pass "UTC"), else NotFoundError."""
    clinic = find_clinic(s, site_id)
    if clinic is None:
        if missing is not None:
            return missing
        raise NotFoundError("The clinic is not set up yet.")
    return clinic.timezone


def therapy_of(s: Session, row: InfusionSession) -> Therapy:
    therapy = s.get(Therapy, row.therapy_id)
    assert therapy is not None  # foreign key
    return therapy


def clinical_time(
    at: datetime | None,
    *,
    field: str,
    label: str,
    settings: ClinicSettings,
    tz: str,
    not_before: list[tuple[datetime | None, str]] = (),  # type: ignore[assignment]
    now: datetime | None = None,
) -> datetime:
    """A clinical time (defaults to now), refused if in the future or before an earlier event."""
    now = now or utcnow()
    moment = at or now
    problem = integrity.time_problem(moment)
    if problem:
        raise ValidationError({field: f"{label}: {problem}."})
    if moment > now + timedelta(minutes=settings.clock_skew_minutes):
        raise ValidationError(
            {field: f"{label} {format_local(moment, tz, '%d %b %H:%M')} is in the future; enter the time it happened."}
        )
    for earlier, earlier_label in not_before:
        if earlier is not None and moment < earlier:
            raise ValidationError(
                {field: f"{label} {format_local(moment, tz)} is before {earlier_label} {format_local(earlier, tz)}."}
            )
    return moment


def required_text(value: object, field: str, message: str, *, max_len: int | None = None) -> str:
    """A required text argument, stripped: missing or blank → `message`; not text, NUL, an unpaired
    surrogate or longer than `max_len` → ValidationError naming the field."""
    text = optional_text(value, field, max_len=max_len)
    if not text:
        raise ValidationError({field: message})
    return text


def texts(**values: object) -> tuple[dict[str, str], dict[str, str]]:
    """Several optional text arguments at once: (cleaned texts, problems by field), so a form with
    several unusable fields hears about all of them in one refusal."""
    cleaned: dict[str, str] = {}
    problems: dict[str, str] = {}
    for field, value in values.items():
        try:
            cleaned[field] = optional_text(value, field)
        except ValidationError as error:
            problems.update(error.problems)
    return cleaned, problems


def optional_text(value: object, field: str, *, max_len: int | None = None) -> str:
    """An optional text argument, stripped ("" when missing), refused like `required_text` when unstorable."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError({field: f"{integrity.label(field)} must be text."})
    text = value.strip()
    problem = integrity.text_problem(text, max_len)
    if problem:
        raise ValidationError({field: f"{integrity.label(field)}: {problem}."})
    return text


def client_token(value: object) -> str | None:
    """An idempotency token: blank means none; not text or longer than 64 characters is refused."""
    token = optional_text(value, "client_token", max_len=64)
    return token or None


def confirmed(asked: list[str], given: bool | str | None) -> bool:
    """Whether the person confirmed these very reasons: `given` is the reasons they were shown, as one text
    (a form's tick box), or True from a caller that confirms whatever is found. Reasons that changed since
    they were shown (a weight recorded, another booking made meanwhile) are asked about again."""
    return given is True or (isinstance(given, str) and given == " ".join(asked))
