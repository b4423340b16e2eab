"""Fill a database with a realistic demo clinic: `python -m infusion.demo --sessions 3000`.

A US MS infusion center (America/New_York, °F, lb) with chairs, staff and
patients, a year of past sessions on each therapy's dosing calendar, and a
"live" day laid out around the real now (patients checked in, infusing,
paused with a reaction, in observation, scheduled later), so every page has
something to show.

Why it does not use the service functions: they take one transaction, a lock
and an audit row per step, which is right for a nurse's tap and far too slow
for 100,000 sessions. Instead rows are generated as plain tuples and written
with one executemany per table and batch, inside one transaction, with primary
keys assigned from max(id) + 1 so children can point at parents without
RETURNING. Values are encoded once with the model columns' own bind processors,
so stored timestamps, JSON and booleans are exactly what the ORM would write.
The clinical rules still come from the project: durations, observation and
rate plans from `infusion.clinical.catalog`, NEWS2 and alert flags from
`infusion.clinical.vitals`, the symptom/action vocabulary from `infusion.services.entries`.

Rates, symptoms and schedules follow ../shared/clinical.md (§1a therapies,
§1b titration, §1c vitals, §2 reaction rates, §3 CTCAE). Demo data only.

Staff accounts are created without passwords: nobody can sign in with them
until an administrator sets one (the first-administrator sign-in still works).
"""

from __future__ import annotations

import argparse
import heapq
import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

from alembic.util import CommandError
from sqlalchemy import Connection, Table, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from db.engine import WRITE_OPTION, Database, database_url, open_database
from db.models import (
    ACTIVE_STATUSES,
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
from infusion.accounts.auth import hash_password
from infusion.clinical.catalog import duration_window, observation_minutes, rate_plan_for
from infusion.clinical.reactions import ACTIONS, SYMPTOMS
from infusion.clinical.units import f_to_c, lb_to_kg
from infusion.clinical.vitals import Vitals, alert_flags, score
from infusion.services.entries import MAX_RATE_ML_H
from infusion.services.sessions import IV_SITES
from infusion.services.setup import bootstrap
from infusion.settings import ClinicSettings, load_settings

# ---------------------------------------------------------------------------
# The demo clinic
# ---------------------------------------------------------------------------

CLINIC = {
    "name": "Lakeside MS Infusion Center",
    "timezone": "America/New_York",
    "temperature_unit": "F",
    "weight_unit": "lb",
    "phone": "(716) 555-0142",
}
CHAIR_COUNT = 8
MIN_PATIENTS = 30
OPEN, CLOSE = 8 * 60, 17 * 60 + 30  # clinic hours, local minutes of the day
HOME_CHAIR = "Home visit"
#: Every demo account signs in with this password; the sign-in page says so only in demo mode.
DEMO_PASSWORD = "chairside-demo"
STAFF = (  # (username, display name, role)
    ("maria.lopez", "Maria Lopez, RN", "nurse"),
    ("james.obrien", "James O'Brien, RN", "nurse"),
    ("aisha.khan", "Aisha Khan, RN", "nurse"),
    ("tom.nguyen", "Tom Nguyen, RN", "nurse"),
    ("rachel.stein", "Rachel Stein, RN", "nurse"),
    ("denise.washington", "Denise Washington, RN", "nurse"),
    ("karen.miller", "Karen Miller, RN (charge)", "charge_nurse"),
    ("paul.richards", "Paul Richards (manager)", "manager"),
    ("linda.cho", "Linda Cho (quality)", "quality"),
    ("it.admin", "Clinic IT admin", "admin"),
)
PROVIDERS = ("Dr. Priya Raman", "Dr. Michael Chen", "Dr. Sarah Goldberg", "Dr. Olumide Adeyemi", "Dr. Laura Fitzgerald")

GIVEN_F = (
    "Mary",
    "Patricia",
    "Jennifer",
    "Linda",
    "Elizabeth",
    "Barbara",
    "Susan",
    "Jessica",
    "Sarah",
    "Karen",
    "Lisa",
    "Nancy",
    "Sandra",
    "Ashley",
    "Emily",
    "Michelle",
    "Amanda",
    "Melissa",
    "Stephanie",
    "Rebecca",
    "Laura",
    "Rachel",
    "Megan",
    "Hannah",
    "Olivia",
    "Sofia",
    "Maria",
    "Guadalupe",
    "Keisha",
    "Tamika",
    "Mei",
    "Priya",
    "Aaliyah",
    "Fatima",
    "Ana",
    "Chloe",
    "Grace",
    "Danielle",
    "Heather",
    "Nicole",
)
GIVEN_M = (
    "James",
    "Robert",
    "John",
    "Michael",
    "David",
    "William",
    "Richard",
    "Joseph",
    "Thomas",
    "Christopher",
    "Daniel",
    "Matthew",
    "Anthony",
    "Mark",
    "Steven",
    "Paul",
    "Andrew",
    "Joshua",
    "Kevin",
    "Brian",
    "Jose",
    "Luis",
    "Carlos",
    "Darnell",
    "Andre",
    "Wei",
    "Raj",
    "Omar",
    "Tyrone",
    "Ethan",
)
FAMILY = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "O'Connor",
    "Kowalski",
    "Nowak",
    "Schmidt",
    "Murphy",
    "Sullivan",
    "Patel",
    "Shah",
    "Kim",
    "Park",
    "Chen",
    "Wang",
    "Cohen",
    "Rosen",
    "Okafor",
    "Mensah",
    "Haddad",
    "Russo",
    "Ferrari",
    "Duval",
)
ALLERGIES = (
    ("", 62),
    ("NKDA", 20),
    ("Penicillin (rash)", 6),
    ("Sulfa drugs", 4),
    ("Latex", 2),
    ("Iodinated contrast", 2),
    ("Codeine (nausea)", 2),
    ("Shellfish", 2),
)

# diagnosis -> (share of patients, ((therapy code, share), ...), age range)
DIAGNOSES: dict[str, tuple[float, tuple[tuple[str, float], ...], tuple[int, int]]] = {
    "Multiple sclerosis": (
        0.82,
        (
            ("ocrelizumab_iv", 0.34),
            ("natalizumab", 0.22),
            ("ublituximab", 0.10),
            ("methylprednisolone", 0.12),
            ("rituximab", 0.08),
            ("ocrelizumab_sc", 0.06),
            ("alemtuzumab", 0.04),
            ("plasma_exchange", 0.04),
        ),
        (20, 70),
    ),
    "Systemic sclerosis": (0.07, (("cyclophosphamide", 0.5), ("rituximab", 0.3), ("ivig", 0.2)), (30, 78)),
    "ALS": (0.03, (("edaravone", 1.0),), (40, 82)),
    "CIDP": (0.08, (("ivig", 0.85), ("plasma_exchange", 0.15)), (35, 85)),
}
#: Therapies a patient keeps taking (new starters or years into treatment) vs. finite courses.
CONTINUING = {"ocrelizumab_iv", "ocrelizumab_sc", "natalizumab", "ublituximab", "rituximab", "ivig"}
#: Courses of consecutive days start on a Monday so they fit a Monday–Friday clinic.
MONDAY_START = {"alemtuzumab", "methylprednisolone", "plasma_exchange", "edaravone"}
LOT_PREFIX = {
    "ocrelizumab_iv": "OC",
    "ocrelizumab_sc": "OZ",
    "natalizumab": "NT",
    "alemtuzumab": "LM",
    "ublituximab": "UB",
    "rituximab": "RX",
    "cyclophosphamide": "CY",
    "ivig": "GG",
    "methylprednisolone": "MP",
    "plasma_exchange": "AL",
    "edaravone": "ED",
}

# ---------------------------------------------------------------------------
# Reactions (clinical.md §2, §3)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReactionProfile:
    """How often and how a therapy's infusion reactions show up in the demo."""

    by_infusion: tuple[float, ...]  # chance for infusion 1, 2, ...; the last value holds after
    severe: float  # share of reactions that are CTCAE grade 3+ (a tenth of those grade 4)
    symptoms: tuple[tuple[str, float], ...]  # symptom key (or "other:<text>") and weight
    anaphylaxis: bool = False  # can a grade 3+ reaction be anaphylaxis?
    in_observation: float = 0.12  # share starting after the IV stop


REACTIONS: dict[str, ReactionProfile] = {
    # Ocrevus: 34% first infusion (OPERA), falling afterwards; ~23% first 600 mg; serious 0.3%.
    "ocrelizumab_iv": ReactionProfile(
        (0.34, 0.20, 0.15, 0.12, 0.10),
        0.02,
        (
            ("pruritus", 5),
            ("rash", 4),
            ("throat_irritation", 5),
            ("flushing", 4),
            ("urticaria", 2),
            ("headache", 2),
            ("fever", 1),
            ("nausea", 1),
            ("tachycardia", 1),
            ("dyspnea", 1),
            ("hypotension", 1),
            ("other:Fatigue", 1),
            ("other:Dizziness", 1),
        ),
        anaphylaxis=True,
    ),
    # Zunovo SC: injection reactions common, exact rate [UNCONFIRMED] in clinical.md §2.
    "ocrelizumab_sc": ReactionProfile(
        (0.25, 0.10),
        0.01,
        (
            ("other:Injection-site erythema", 5),
            ("other:Injection-site pain", 4),
            ("other:Injection-site swelling", 3),
            ("headache", 1),
            ("rash", 1),
            ("pruritus", 1),
            ("flushing", 1),
        ),
        in_observation=0.4,
    ),
    # Tysabri: hypersensitivity mostly by the 2nd infusion; any infusion event 24% vs 18% placebo.
    "natalizumab": ReactionProfile(
        (0.08, 0.08, 0.03),
        0.05,
        (
            ("headache", 5),
            ("other:Dizziness", 3),
            ("other:Fatigue", 2),
            ("urticaria", 2),
            ("pruritus", 2),
            ("chills", 2),
            ("flushing", 2),
            ("nausea", 2),
            ("rash", 1),
            ("hypotension", 1),
            ("chest_discomfort", 1),
        ),
        anaphylaxis=True,
    ),
    # Lemtrada: ~90% of patients, on every day of a course; severe ~9%, serious 3%. Per course day below.
    "alemtuzumab": ReactionProfile(
        (0.90, 0.85, 0.80, 0.75, 0.75, 0.80, 0.75, 0.70),
        0.06,
        (
            ("headache", 5),
            ("rash", 5),
            ("fever", 4),
            ("nausea", 3),
            ("flushing", 3),
            ("urticaria", 3),
            ("chest_discomfort", 1),
            ("tachycardia", 2),
            ("hypotension", 1),
            ("other:Bradycardia", 1),
        ),
    ),
    # Briumvi: 45% (EU SmPC), highest with the first infusion.
    "ublituximab": ReactionProfile(
        (0.45, 0.15, 0.08),
        0.03,
        (
            ("fever", 4),
            ("chills", 4),
            ("headache", 4),
            ("other:Influenza-like illness", 2),
            ("tachycardia", 2),
            ("nausea", 2),
            ("other:Abdominal pain", 1),
            ("throat_irritation", 2),
            ("other:Erythema", 1),
        ),
        anaphylaxis=True,
    ),
    # Rituximab: high at the first infusion, falling sharply after (RA 18% -> 10% -> 7–10%; T1D 93% -> 27%).
    "rituximab": ReactionProfile(
        (0.45, 0.15, 0.08),
        0.05,
        (
            ("fever", 4),
            ("chills", 5),
            ("rash", 3),
            ("pruritus", 3),
            ("hypotension", 2),
            ("tachycardia", 2),
            ("nausea", 2),
            ("dyspnea", 1),
            ("throat_irritation", 1),
        ),
        anaphylaxis=True,
    ),
    # Cyclophosphamide: acute infusion reactions uncommon [UNCONFIRMED]; nausea/vomiting acute.
    "cyclophosphamide": ReactionProfile(
        (0.04, 0.03), 0.02, (("nausea", 6), ("other:Vomiting", 3), ("headache", 2), ("flushing", 1))
    ),
    # IVIG: 5–15% of infusions, higher at the first and with fast rates.
    "ivig": ReactionProfile(
        (0.15, 0.10, 0.07),
        0.02,
        (
            ("headache", 6),
            ("flushing", 3),
            ("chills", 3),
            ("other:Myalgia", 2),
            ("fever", 2),
            ("nausea", 2),
            ("other:Back pain", 2),
            ("hypotension", 1),
        ),
        anaphylaxis=True,
    ),
    # IV methylprednisolone: acute reactions mostly mild [UNCONFIRMED rate].
    "methylprednisolone": ReactionProfile(
        (0.03,), 0.02, (("flushing", 4), ("other:Metallic taste", 3), ("tachycardia", 2), ("headache", 2))
    ),
    # Plasma exchange: ~4.75% of procedures, mostly reversible.
    "plasma_exchange": ReactionProfile(
        (0.05,),
        0.03,
        (
            ("other:Perioral tingling (citrate)", 5),
            ("other:Muscle cramps", 3),
            ("urticaria", 2),
            ("hypotension", 2),
            ("nausea", 1),
        ),
        in_observation=0.05,
    ),
    # Edaravone: low; headache, hypersensitivity (sulfite) rare.
    "edaravone": ReactionProfile(
        (0.02,),
        0.03,
        (("headache", 4), ("rash", 2), ("urticaria", 1), ("pruritus", 1), ("dyspnea", 1)),
        anaphylaxis=True,
    ),
}

MEDS_BY_GRADE = {
    1: ("Diphenhydramine 25 mg PO", "Acetaminophen 650 mg PO", "Cetirizine 10 mg PO"),
    2: (
        "Diphenhydramine 50 mg IV; acetaminophen 650 mg PO",
        "Famotidine 20 mg IV; diphenhydramine 25 mg IV",
        "Hydrocortisone 100 mg IV; diphenhydramine 50 mg IV",
        "Ondansetron 4 mg IV",
        "Sodium chloride 0.9% 500 mL IV bolus",
    ),
    3: (
        "Epinephrine 0.3 mg IM; diphenhydramine 50 mg IV; methylprednisolone 125 mg IV; "
        "sodium chloride 0.9% 1,000 mL bolus; oxygen 2 L/min",
    ),
}
DEFERRALS = (  # (reason, weight, what the baseline vitals show)
    ("Fever at check-in; infusion deferred until afebrile", 3, "fever"),
    ("Active infection (urinary tract infection on antibiotics)", 3, None),
    ("Upper respiratory infection with cough; deferred per neurologist", 2, None),
    ("Blood pressure above hold parameter at check-in", 1, "hypertension"),
    ("Pre-infusion labs not resulted; rescheduled", 1, None),
)
PROGRAM_DEFERRAL = {
    "TOUCH": "TOUCH authorization could not be verified; not infused",
    "Lemtrada REMS": "Lemtrada REMS monthly labs missing; course day postponed",
}
CANCELLATIONS = (
    "Patient called to reschedule",
    "Transportation unavailable",
    "Insurance authorization pending",
    "Drug not delivered by the specialty pharmacy",
    "Weather: clinic closed early",
    "Patient admitted to another hospital",
    "No-show; left a voicemail",
)
EARLY_DISCHARGE = "Patient declined the rest of the observation period; risks explained, neurologist informed"

#: Premedication as given (drug, dose, route). clinical.md §1a "Required premedication".
PREMEDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "ocrelizumab_iv": (
        ("Methylprednisolone", "100 mg", "IV"),
        ("Diphenhydramine", "50 mg", "PO"),
        ("Acetaminophen", "650 mg", "PO"),
    ),
    "ocrelizumab_sc": (("Dexamethasone", "20 mg", "PO"), ("Desloratadine", "5 mg", "PO")),
    "ublituximab": (("Methylprednisolone", "100 mg", "IV"), ("Diphenhydramine", "50 mg", "PO")),
    "rituximab": (
        ("Acetaminophen", "650 mg", "PO"),
        ("Diphenhydramine", "50 mg", "PO"),
        ("Methylprednisolone", "100 mg", "IV"),
    ),
    "cyclophosphamide": (("Ondansetron", "8 mg", "IV"), ("Sodium chloride 0.9% (hydration)", "1,000 mL", "IV")),
    "ivig": (("Acetaminophen", "650 mg", "PO"), ("Diphenhydramine", "25 mg", "PO")),
}
LEMTRADA_STEROID = ("Methylprednisolone", "1,000 mg", "IV")  # course days 1–3 only
LEMTRADA_OTHER = (("Cetirizine", "10 mg", "PO"), ("Acetaminophen", "1,000 mg", "PO"))

IV_SITE_WEIGHTS = {
    "Left antecubital": 22,
    "Right antecubital": 20,
    "Left forearm": 18,
    "Right forearm": 16,
    "Left hand": 8,
    "Right hand": 8,
    "Port": 4,
    "PICC": 2,
    "Other": 2,
}

# ---------------------------------------------------------------------------
# Options and results
# ---------------------------------------------------------------------------


class DemoRefused(Exception):
    """The database already has sessions and --force was not given."""


@dataclass(frozen=True)
class DemoOptions:
    """What to load: `sessions` in all (today's included) over the last `days` days."""

    sessions: int = 3000
    seed: int = 42
    days: int = 365
    force: bool = False


@dataclass
class DemoResult:
    """Rows written per kind, today's sessions by status, and the wall time including the commit."""

    counts: dict[str, int]
    today: dict[str, int]
    seconds: float


# ---------------------------------------------------------------------------
# Encoding and writing
# ---------------------------------------------------------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
INF = float("inf")


class Encoder:
    """Turns Python values into what the driver receives, using the model columns' bind processors.

    Clinical times are whole UTC minutes since the epoch (ints are cheap to add);
    each distinct minute is encoded once and cached.
    """

    def __init__(self, dialect: Any) -> None:
        self._ts = _processor(VitalSign.__table__.c.taken_at, dialect)
        self._json = _processor(VitalSign.__table__.c.flags, dialect)
        self._date = _processor(Patient.__table__.c.birth_date, dialect)
        to_bool = _processor(VitalSign.__table__.c.on_oxygen, dialect)
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
    Patient.__table__: (
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
    InfusionSession.__table__: (
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
    ),
    VitalSign.__table__: (
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
    Premedication.__table__: (
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
    RateChange.__table__: (
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
    Reaction.__table__: (
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
    ProgramCheck.__table__: ("id", "session_id", "program", "authorization_ref", "confirmed_at", "confirmed_by_id"),
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


def check_assumptions() -> None:
    """Fail clearly if the models or the entry vocabulary changed under this loader."""
    symptoms = {s for p in REACTIONS.values() for s, _ in p.symptoms if not s.startswith("other:")}
    actions = {"observed", "rate_slowed", "paused", "stopped", "medication_given"}
    problems = [f"unknown symptoms {sorted(symptoms - set(SYMPTOMS))}"] if symptoms - set(SYMPTOMS) else []
    problems += [f"unknown actions {sorted(actions - set(ACTIONS))}"] if actions - set(ACTIONS) else []
    problems += (
        ["IV sites differ from infusion.services.sessions.IV_SITES"] if set(IV_SITE_WEIGHTS) != set(IV_SITES) else []
    )
    for table, names in COLUMNS.items():
        missing = [c.name for c in table.columns if c.name not in names and not c.nullable and c.server_default is None]
        unknown = [n for n in names if n not in table.columns]
        if missing or unknown:
            problems.append(f"table {table.name}: not filled {missing}, unknown {unknown}")
    if problems:
        raise RuntimeError("infusion.demo.clinic is out of date: " + "; ".join(problems))


class Writer:
    """Buffers rows per table and writes them in batches, parents first.

    SQLite (and any other DB-API driver) gets one executemany per table and
    batch; PostgreSQL through psycopg gets COPY, several times faster there.
    (A background writer thread was tried and was slower: sqlite3 re-takes the
    GIL after every row and waits out the interpreter's switch interval.)
    """

    def __init__(self, conn: Connection, batch_rows: int = 50_000) -> None:
        self.conn = conn
        self.batch_rows = batch_rows
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
            self.buffers[table] = []
        self._pending = 0

    def _copy_rows(self, table: Table, rows: list[tuple[Any, ...]]) -> None:
        cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
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
# ---------------------------------------------------------------------------


@dataclass
class TherapyInfo:
    """A catalog row plus per-infusion-number lookups, cached (they are asked for every session)."""

    id: int
    code: str
    dose_unit: str
    default_dose: float | None
    route: str
    program: str | None
    premedication_required: bool
    schedule: dict[str, Any]
    duration_windows: list[dict[str, Any]]
    observation_rules: list[dict[str, Any]]
    rate_plan: list[dict[str, Any]]
    dosing_interval_days: int | None
    profile: ReactionProfile
    _cache: dict[int, tuple[Any, Any, Any]] = field(default_factory=dict)

    def rules(self, number: int) -> tuple[Any, int | None, dict[str, Any] | None]:
        """(duration window, observation minutes, rate-plan rule) for infusion `number`."""
        found = self._cache.get(number)
        if found is None:
            found = self._cache[number] = (
                duration_window(self.duration_windows, number),
                observation_minutes(self.observation_rules, number),
                rate_plan_for(self.rate_plan, number),
            )
        return found


@dataclass
class PatientInfo:
    id: int
    diagnosis: str
    therapy: TherapyInfo
    weight_kg: float
    height_cm: float
    sbp: int  # usual vital signs, so one patient's sessions look alike
    dbp: int
    pulse: int
    rr: int
    temp_f: float
    spo2: int
    pain: int
    auth_ref: str | None
    female: bool


@dataclass
class Plan:
    """One session to generate: who, what, which day, and how it ends."""

    patient: PatientInfo
    day: date
    number: int
    dose: float | None
    kind: str = "dose"  # dose | deferred | cancelled
    course_day: int = 0
    home: bool = False


def regimen(
    code: str, rng: Random, ri: Callable[[int, int], int], horizon: int, interval: int | None
) -> list[tuple[int, int]]:
    """Dose days counted from the start of treatment, with the course day where courses exist.

    Intervals come from the catalog (dosing_interval_days) or, where it has none,
    the protocols of clinical.md §1a (IVMP 3–5 days, cyclophosphamide every 4
    weeks × 6, TPE 5 exchanges over 10 days, edaravone 14 days then 10 of 14).
    """
    days: list[tuple[int, int]] = []
    if code in ("ocrelizumab_iv", "ublituximab", "rituximab"):
        days = [(0, 0), (14, 0)]
        step = interval or 182
        while days[-1][0] < horizon:
            days.append((days[-1][0] + step + ri(-5, 14), 0))
    elif code in ("ocrelizumab_sc", "natalizumab"):
        step = interval or 182
        jitter = (-2, 4) if step < 60 else (-5, 14)
        days = [(0, 0)]
        while days[-1][0] < horizon:
            days.append((days[-1][0] + step + ri(*jitter), 0))
    elif code == "ivig":
        days = [(0, 1), (1, 2)]  # 2 g/kg loading over two days
        while days[-1][0] < horizon:
            days.append((days[-1][0] + (interval or 21) + ri(-2, 3), 0))
    elif code == "alemtuzumab":
        second = _next_monday(365 + ri(0, 45))
        days = [(d, d + 1) for d in range(5)] + [(second + d, d + 1) for d in range(3)]
    elif code == "methylprednisolone":
        start = 0
        for course in range(rng.choice((1, 1, 2, 2, 3))):
            if course:
                start = _next_monday(start + ri(60, 240))
            days += [(start + d, d + 1) for d in range(rng.choice((3, 3, 5, 5, 4)))]
    elif code == "plasma_exchange":
        days = [(d, i + 1) for i, d in enumerate((0, 2, 4, 7, 9))]
    elif code == "cyclophosphamide":
        day = 0
        for _ in range(6):
            days.append((day, 0))
            day += 28 + ri(-2, 2)
    elif code == "edaravone":
        days = [(d, d + 1) for d in range(14)]
        for cycle in range(1, rng.choice((1, 2, 3, 3, 4, 6))):
            base = 28 * cycle
            days += [(base + d, i + 1) for i, d in enumerate((0, 1, 2, 3, 4, 7, 8, 9, 10, 11))]
    else:
        step = interval or 28
        days = [(0, 0)]
        while days[-1][0] < horizon:
            days.append((days[-1][0] + step, 0))
    return days


def _next_monday(day: int) -> int:
    return day + (-day) % 7


def dose_for(therapy: TherapyInfo, number: int, patient: PatientInfo) -> float | None:
    """Therapy default, with the label's first-dose exceptions and protocol doses where none is seeded."""
    code = therapy.code
    if code == "ocrelizumab_iv":
        return 300.0 if number <= 2 else 600.0
    if code == "ublituximab":
        return 150.0 if number == 1 else 450.0
    if code == "cyclophosphamide":  # 1 g/m² (Mosteller BSA), rounded to 10 mg
        bsa = math.sqrt(patient.height_cm * patient.weight_kg / 3600)
        return float(round(bsa * 1000, -1))
    if code == "plasma_exchange":
        return 1.0
    return therapy.default_dose


# ---------------------------------------------------------------------------
# Simulating one session (minutes relative to check-in)
# ---------------------------------------------------------------------------

BASELINE, ROUTINE, REACTION, FEVER, HYPERTENSION = range(5)  # kinds of vitals set
RATE_NOTES = {"pause": "Paused for an infusion reaction", "resume": "Resumed at half rate; symptoms settled"}


@dataclass
class ReactionSim:
    onset: int
    grade: int
    symptoms: list[str]
    other_text: str | None
    actions: list[str]
    medication: str | None
    resolved: int
    provider: str | None
    note: str | None


@dataclass
class Sim:
    """A session's events in minutes after check-in; turned into rows later."""

    length: int = 0  # check-in to discharge/closure
    program_at: int | None = None
    ready: int | None = None
    start: int | None = None
    stop: int | None = None
    obs_end: int | None = None
    discharge: int | None = None
    closed: int | None = None
    premeds: list[tuple[int, tuple[str, str, str]]] = field(default_factory=list)
    rates: list[tuple[int, str, float | None, str | None]] = field(default_factory=list)
    vitals: list[tuple[int, int, ReactionSim | None]] = field(default_factory=list)
    reactions: list[ReactionSim] = field(default_factory=list)
    deferral_reason: str | None = None
    early_reason: str | None = None
    premed_override: str | None = None
    observation: int | None = None
    window_max: int | None = None


@dataclass(frozen=True)
class ForcedReaction:
    """A reaction the live day needs at a fixed point (the paused chair)."""

    after_start: int
    grade: int
    kind: str  # "pause" | "slow" | "stop" | "observe"


def pump(
    ladder: list[tuple[float, float]],
    volume: float,
    reaction: tuple[float, str, float] | None,
) -> tuple[list[tuple[float, str, float | None]], float]:
    """Rate events and the stop time (minutes after IV start) for a titration ladder.

    `ladder` is [(rate mL/h, minutes at that rate)], the last step open-ended.
    A reaction at minute m either slows the rate to half, pauses for `hold`
    minutes and resumes at half rate, or stops the infusion (clinical.md §1b
    reaction rules); after a slow or resume the rate goes back up after 30 min.
    """
    t, given, i = 0.0, 0.0, 0
    rate = ladder[0][0]
    events: list[tuple[float, str, float | None]] = [(0.0, "start", rate)]
    step_end = ladder[0][1]
    react_at, kind, hold = reaction if reaction else (INF, "", 0.0)
    recovering = False
    while True:
        done_at = t + (volume - given) / rate * 60
        nxt = min(done_at, step_end, react_at)
        given += rate * (nxt - t) / 60
        t = nxt
        if nxt == done_at:
            return events, t
        if nxt == react_at:
            react_at = INF
            if kind == "stop":
                return events, t + 2
            if kind == "pause":
                events.append((t + 1, "pause", None))
                t += hold
                rate = round(rate / 2, 1)
                events.append((t, "resume", rate))
            elif kind == "slow":
                rate = round(rate / 2, 1)
                events.append((t + 1, "change", rate))
            if kind in ("pause", "slow"):
                step_end, recovering = t + 30, True
            continue
        if recovering:  # tolerated half rate for 30 min: back to the ladder's rate
            recovering = False
            rate = ladder[i][0]
            events.append((t, "change", rate))
            step_end = t + (ladder[i][1] if i + 1 < len(ladder) else INF)
            continue
        if i + 1 < len(ladder):
            i += 1
            rate = ladder[i][0]
            events.append((t, "change", rate))
            step_end = t + ladder[i][1]
        else:
            step_end = INF


class Generator:
    """All random choices of one load, from one `random.Random(seed)` so a seed repeats."""

    def __init__(self, rng: Random, settings: ClinicSettings) -> None:
        self.rng = rng
        self.ri = fast_randint(rng)
        self.thresholds = settings.thresholds
        self.tolerance = settings.window_tolerance_minutes
        self.noise = [self._noise_vector() for _ in range(4096)]
        self._sites = _table(IV_SITE_WEIGHTS)
        self._gauges = _table({22: 45, 20: 35, 24: 10, 18: 10})
        self._attempts = _table({1: 85, 2: 12, 3: 3})

    def _noise_vector(self) -> tuple[int, int, int, int, float, int]:
        g = self.rng.gauss
        return (
            round(g(0, 6)),
            round(g(0, 4)),
            round(g(0, 4)),
            self.rng.choice((-2, 0, 0, 0, 2)),
            round(g(0, 0.25), 1),
            self.rng.choice((-1, 0, 0, 0, 1)),
        )

    # -- session timeline ----------------------------------------------------

    def simulate(self, plan: Plan, forced: ForcedReaction | None = None) -> Sim:
        """The whole session from check-in to discharge, as the nurses would have documented it."""
        therapy = plan.patient.therapy
        sim = Sim()
        if plan.kind == "cancelled":
            return sim
        sim.vitals.append((0, BASELINE, None))
        if therapy.program:
            sim.program_at = self.ri(2, 8)
        ready = self.ri(8, 22)
        if plan.kind == "deferred":
            return self._deferred(sim, plan, ready)
        sim.ready = ready
        at = ready + self.ri(0, 4)
        for premed in self.premeds(plan):
            sim.premeds.append((at, premed))
            at += self.ri(0, 2)
        if therapy.premedication_required and not sim.premeds:
            sim.premed_override = "Premedication taken at home before arrival (patient confirmed drug and time)"
        start = (at + self.ri(28, 40)) if sim.premeds else ready + self.ri(3, 15)
        window, observation, rule = therapy.rules(plan.number)
        ladder, volume = self.ladder(therapy, rule, plan, window)
        events, stop = pump(ladder, volume, None)
        reactions = self.reactions(plan, stop, observation, forced)
        during = next((r for r in reactions if r[0] < stop and r[2] != "observe"), None)
        if during is not None:
            events, stop = pump(ladder, volume, (float(during[0]), during[2], float(self.ri(30, 60))))
        sim.start = start
        last = start
        for minute, kind, rate in events:
            at = start if kind == "start" else max(last + 1, start + round(minute))
            sim.rates.append((at, kind, rate, RATE_NOTES.get(kind)))
            last = at
        sim.stop = max(last + 1, start + round(stop) + self.ri(0, 4))
        sim.rates.append((sim.stop, "stop", 0.0, None))
        sim.observation, sim.window_max = observation, window.max_minutes
        self._reaction_rows(sim, reactions, start, therapy.profile)
        self._observe_and_discharge(sim, plan, observation)
        self._vitals_times(sim, therapy.schedule)
        return sim

    def _deferred(self, sim: Sim, plan: Plan, ready: int) -> Sim:
        """Checked in, assessed, not infused: the reason (and, for fever or high BP, the baseline shows it)."""
        program = plan.patient.therapy.program
        look = None
        if program and self.rng.random() < 0.25:
            sim.deferral_reason = PROGRAM_DEFERRAL[program]
        else:
            sim.deferral_reason, _, look = self.rng.choices(DEFERRALS, weights=[d[1] for d in DEFERRALS])[0]
        if look is not None:
            sim.vitals[0] = (0, FEVER if look == "fever" else HYPERTENSION, None)
        sim.closed = sim.length = ready + self.ri(0, 15)
        return sim

    def premeds(self, plan: Plan) -> list[tuple[str, str, str]]:
        therapy, rng = plan.patient.therapy, self.rng
        if therapy.code == "alemtuzumab":
            return ([LEMTRADA_STEROID] if plan.course_day <= 3 else []) + list(LEMTRADA_OTHER)
        given = PREMEDS.get(therapy.code, ())
        if not given:
            return []
        if not therapy.premedication_required and rng.random() < 0.4:
            return []  # "often", not required (IVIG)
        if therapy.premedication_required and rng.random() < 0.01:
            return []  # documented override instead
        if given[-1][0] == "Acetaminophen" and rng.random() < 0.3:
            return list(given[:-1])  # antipyretic optional
        return list(given)

    def ladder(
        self, therapy: TherapyInfo, rule: dict[str, Any] | None, plan: Plan, window: Any
    ) -> tuple[list[tuple[float, float]], float]:
        """Titration steps (rate mL/h, minutes) and bag volume, from the catalog's rate plan (§1b)."""
        rng = self.rng
        late = self.ri  # nurses step the pump up a little after the minute
        if rule and rule.get("steps"):
            steps = [(float(s["rate_ml_h"]), s["minutes"] + late(0, 2)) for s in rule["steps"]]
            return _open_last(steps), sum(r * m / 60 for r, m in steps)
        if rule and rule.get("fixed"):
            minutes = rule["minutes"]
            return [(round(rule["bag_ml"] * 60 / minutes, 1), INF)], float(rule["bag_ml"])
        if rule and "start_ml_h" in rule:
            rates = range(rule["start_ml_h"], rule["max_ml_h"] + 1, rule["increment_ml_h"])
            return _open_last([(float(r), rule["every_minutes"] + late(0, 4)) for r in rates]), float(rule["bag_ml"])
        if rule and rule.get("unit") == "mg/h":  # rituximab: 1,000 mg in 500 mL NS (2 mg/mL) assumed
            dose = plan.dose or 1000.0
            rates = range(int(rule["start"]), int(rule["max"]) + 1, int(rule["increment"]))
            return _open_last([(r / 2.0, rule["every_minutes"] + late(0, 4)) for r in rates]), dose / 2.0
        if rule and rule.get("unit") == "mL/kg/h":  # IVIG 10%: 10 mL per g; tolerated top rate varies
            kg = plan.patient.weight_kg
            top = min(float(rule["max"]), rng.choice((3.0, 4.0, 4.0, 5.0)))
            per_kg = [r for r in (0.5, 1.0, 2.0, 3.0, 4.0, 5.0) if r <= top]
            steps = [(min(round(r * kg), MAX_RATE_ML_H), rule["every_minutes"] + late(0, 4)) for r in per_kg]
            return _open_last(steps), (plan.dose or 1.0) * kg * 10
        low = window.min_minutes or 60
        high = window.max_minutes or low + 45
        minutes = self.ri(low, high) if high > low else low
        volume = {
            "ocrelizumab_sc": 23.0,
            "edaravone": 100.0,
            "methylprednisolone": 250.0,
            "cyclophosphamide": 500.0,
        }.get(therapy.code)
        if volume is None:  # plasma exchange: ~1 plasma volume (40 mL/kg) of replacement fluid
            volume = min(40 * plan.patient.weight_kg, MAX_RATE_ML_H * minutes / 60)
        return [(round(volume * 60 / minutes, 1), INF)], volume

    # -- reactions -------------------------------------------------------------

    def reactions(
        self, plan: Plan, natural: float, observation: int | None, forced: ForcedReaction | None
    ) -> list[tuple[int, int, str]]:
        """(onset minutes after IV start, grade, pump action) for each reaction of this session."""
        rng, profile = self.rng, plan.patient.therapy.profile
        if forced is not None:
            return [(forced.after_start, forced.grade, forced.kind)]
        key = plan.course_day if plan.patient.therapy.code == "alemtuzumab" else plan.number
        if plan.patient.therapy.code == "alemtuzumab" and plan.number > 5:
            key += 5  # second course: a little lower
        rates = profile.by_infusion
        chance = rates[min(key, len(rates)) - 1]
        found = []
        for extra in range(2):
            if rng.random() >= (chance if extra == 0 else chance * 0.15):
                break
            grade = self._grade(profile.severe) if extra == 0 else rng.choice((1, 1, 2))
            if extra:  # a second, milder reaction: treated without touching the pump
                found.append((5 + round(natural * rng.random()), grade, "observe"))
                continue
            if rng.random() < profile.in_observation and observation != 0:
                onset = round(natural) + self.ri(5, max(6, observation or 30))
                found.append((onset, grade, "observe"))
                continue
            onset = 5 + round((natural * 0.75) * rng.random() ** 1.6)
            found.append((onset, grade, self._pump_action(grade)))
        return sorted(found)

    def _grade(self, severe: float) -> int:
        u = self.rng.random()
        if u < severe * 0.1:
            return 4
        if u < severe:
            return 3
        return 2 if u < severe + 0.42 else 1

    def _pump_action(self, grade: int) -> str:
        if grade >= 3:
            return "stop"
        if grade == 2:
            return "pause" if self.rng.random() < 0.8 else "slow"
        return "slow" if self.rng.random() < 0.45 else "observe"

    def _reaction_rows(
        self, sim: Sim, reactions: list[tuple[int, int, str]], start: int, profile: ReactionProfile
    ) -> None:
        """Reaction entries, consistent with the pump: a paused reaction settles before the resume."""
        rng = self.rng
        assert sim.stop is not None
        resume = next((at for at, kind, _, _ in sim.rates if kind == "resume"), None)
        for onset_rel, grade, action in reactions:
            onset = start + onset_rel
            if onset >= sim.stop and action != "observe":
                onset = sim.stop + self.ri(5, 20)
                action = "observe"
            symptoms, other = self._symptoms(profile, grade)
            actions = {"stop": ["stopped"], "pause": ["paused"], "slow": ["rate_slowed"], "observe": ["observed"]}[
                action
            ]
            medication = None
            if grade >= 2 or rng.random() < 0.35:
                medication = rng.choice(MEDS_BY_GRADE[min(grade, 3)])
                actions = [a for a in actions if a != "observed"] + ["medication_given"]
            heal = {1: (15, 40), 2: (30, 90), 3: (60, 180), 4: (90, 240)}[grade]
            notified = grade >= 3 or rng.random() < (0.7 if grade == 2 else 0.2)
            note = None
            if grade == 4:
                note = "Rapid response called; transferred to the emergency department after stabilization."
            elif grade == 3:
                note = "Infusion stopped permanently for today; neurologist to review before the next dose."
            resolved = onset + self.ri(*heal)
            if action == "pause" and resume is not None and resume > onset + 3:
                resolved = onset + self.ri(min(15, resume - onset - 2), resume - onset - 2)
            sim.reactions.append(
                ReactionSim(
                    onset=onset,
                    grade=grade,
                    symptoms=symptoms,
                    other_text=other,
                    actions=actions,
                    medication=medication,
                    resolved=resolved,
                    provider=rng.choice(PROVIDERS) if notified else None,
                    note=note,
                )
            )
            sim.vitals.append((onset + self.ri(1, 3), REACTION, sim.reactions[-1]))

    def _symptoms(self, profile: ReactionProfile, grade: int) -> tuple[list[str], str | None]:
        rng = self.rng
        pool = list(profile.symptoms)
        count = rng.choices((1, 2, 3), weights=(45, 35, 20))[0]
        chosen: list[str] = []
        while pool and len(chosen) < count:
            pick = rng.choices(pool, weights=[w for _, w in pool])[0]
            pool.remove(pick)
            chosen.append(pick[0])
        if grade >= 3 and profile.anaphylaxis and rng.random() < 0.5:
            chosen = ["anaphylaxis", "hypotension", "dyspnea"] + [
                s for s in chosen if s not in ("hypotension", "dyspnea")
            ][:1]
        others = [s.split(":", 1)[1] for s in chosen if s.startswith("other:")]
        keys = [s for s in chosen if not s.startswith("other:")] + (["other"] if others else [])
        return keys, ("; ".join(others) if others else None)

    # -- observation, discharge, vitals schedule --------------------------------

    def _observe_and_discharge(self, sim: Sim, plan: Plan, observation: int | None) -> None:
        rng = self.rng
        assert sim.stop is not None
        obs = observation if observation is not None else self.ri(10, 25)  # "not defined": clinic practice
        sim.obs_end = sim.stop + obs
        leave = sim.obs_end + self.ri(1, 8)
        for r in sim.reactions:
            leave = max(leave, r.resolved + (15 if r.grade == 1 else 30 if r.grade == 2 else 60))
        if observation and not sim.reactions and rng.random() < 0.01:
            leave = sim.stop + self.ri(max(1, observation // 3), max(2, observation - 5))
            sim.early_reason = EARLY_DISCHARGE
        sim.discharge = leave

    def _vitals_times(self, sim: Sim, schedule: dict[str, Any]) -> None:
        """Check-in baseline, N min after start, at rate changes, every M min, end of infusion and observation."""
        rng = self.rng
        start, stop = sim.start, sim.stop
        assert start is not None and stop is not None and sim.discharge is not None
        due = {start + int(m) for m in schedule.get("after_start_minutes") or []}
        if schedule.get("at_rate_change", True):
            due |= {at for at, kind, _, _ in sim.rates if kind in ("change", "resume")}
        due = {d for d in due if d < stop - 3}
        every = schedule.get("every_minutes")
        times: list[int] = []
        anchor = start
        for mark in sorted(due) + [stop]:
            while every and anchor + every < mark - 5:
                anchor += every
                times.append(anchor)
            if mark < stop:
                times.append(mark)
                anchor = mark
        out = sim.vitals
        for t in times:
            delay = self.ri(0, 5) if rng.random() < 0.95 else self.ri(6, 15)
            out.append((min(t + delay, stop - 1), ROUTINE, None))
        if schedule.get("at_end_of_infusion", True):
            out.append((stop + self.ri(0, 3), ROUTINE, None))
        if sim.observation and schedule.get("at_end_of_observation", True) and not sim.early_reason:
            out.append((sim.obs_end + self.ri(0, 4), ROUTINE, None))  # type: ignore[operator]
        for r in sim.reactions:
            if r.resolved < sim.discharge:
                out.append((r.resolved + self.ri(0, 3), ROUTINE, None))
        out.sort(key=lambda v: v[0])
        kept = [out[0]]
        for entry in out[1:]:  # two due times a minute apart are one set at the chair
            if entry[1] != ROUTINE or entry[0] - kept[-1][0] >= 3:
                kept.append(entry)
        sim.vitals = kept
        last = kept[-1][0]
        sim.discharge = max(sim.discharge, last + self.ri(1, 5))
        sim.length = sim.discharge

    # -- vitals values ---------------------------------------------------------

    def vitals_values(
        self,
        patient: PatientInfo,
        kind: int,
        reaction: ReactionSim | None,
        lemtrada_day1: bool,
    ) -> tuple[int, int, int, int, float, int]:
        """(SBP, DBP, pulse, RR, temperature °F, SpO2) for one set, mostly normal around the patient's own."""
        ds, dd, dp, dr, dt, do = self.noise[self.rng.getrandbits(12)]
        sbp, dbp, pulse = patient.sbp + ds, patient.dbp + dd, patient.pulse + dp
        rr, temp, spo2 = patient.rr + dr, patient.temp_f + dt, min(100, patient.spo2 + do)
        if lemtrada_day1:
            pulse += 15  # day-1 mean heart rate up ~20 bpm (clinical.md §2)
        if kind == ROUTINE or kind == BASELINE:  # values stay near the patient's own: no range clamps needed
            return sbp, min(dbp, sbp - 15), pulse, rr, round(temp, 1), spo2
        if kind == FEVER:
            temp = 100.4 + self.ri(1, 18) / 10
            pulse += 12
        elif kind == HYPERTENSION:
            sbp, dbp = 182 + self.ri(0, 14), 104 + self.ri(0, 12)
        elif reaction is not None:
            sbp, dbp, pulse, rr, temp, spo2 = self._reacting(reaction, sbp, dbp, pulse, rr, temp, spo2)
        sbp = int(min(230, max(65, sbp)))
        dbp = int(min(sbp - 15, max(40, dbp)))
        return sbp, dbp, int(min(170, max(38, pulse))), int(min(32, max(8, rr))), round(temp, 1), int(spo2)

    def _reacting(
        self, r: ReactionSim, sbp: float, dbp: float, pulse: float, rr: float, temp: float, spo2: float
    ) -> tuple[float, float, float, float, float, float]:
        rnd = self.ri
        s = r.symptoms
        if "fever" in s:
            temp = 100.5 + rnd(0, 19) / 10
        if "chills" in s:
            temp, pulse = max(temp, 99.8 + rnd(0, 12) / 10), pulse + 10
        if "flushing" in s or "chest_discomfort" in s:
            pulse += 10
        if "tachycardia" in s:
            pulse = 112 + rnd(0, 24)
        if "hypotension" in s:
            sbp, dbp = sbp - rnd(32, 50), dbp - rnd(12, 20)
        if "dyspnea" in s:
            spo2, rr = 90 + rnd(0, 3), 22 + rnd(0, 5)
        if "headache" in s:
            sbp += 8
        if "anaphylaxis" in s:
            sbp, dbp, pulse = 76 + rnd(0, 10), 42 + rnd(0, 8), 122 + rnd(0, 18)
            spo2, rr = 87 + rnd(0, 4), 26 + rnd(0, 4)
        return sbp, dbp, pulse, rr, temp, spo2

    # -- small pickers -----------------------------------------------------------

    def iv_access(self, therapy: TherapyInfo) -> tuple[str | None, int | None, int | None]:
        if therapy.route != "IV":
            return None, None, None  # SC injection: no IV line
        pick = self.pick
        site = pick(self._sites)
        if therapy.code == "plasma_exchange":  # large bore for apheresis
            return site, pick((16, 16, 18)), 1 if site in ("Port", "PICC") else pick((1, 1, 1, 2))
        return site, pick(self._gauges), 1 if site in ("Port", "PICC") else pick(self._attempts)

    def pick(self, table: Sequence[Any]) -> Any:
        """A uniform pick from a (weight-expanded) table; cheaper than `random.choices`."""
        return table[int(self.rng.random() * len(table))]


def _table(weights: dict[Any, int]) -> list[Any]:
    """Values repeated by their weight, for `Generator.pick`."""
    return [value for value, weight in weights.items() for _ in range(weight)]


def _trim(histories: list[list[Plan]], excess: int) -> list[list[Plan]]:
    """Drop `excess` sessions, each time the oldest of the patient with the most left."""
    cut = [0] * len(histories)
    heap = [(-len(h), i) for i, h in enumerate(histories) if h]
    heapq.heapify(heap)
    while excess > 0 and heap:
        size, i = heapq.heappop(heap)
        cut[i] += 1
        excess -= 1
        if size + 1 < 0:
            heapq.heappush(heap, (size + 1, i))
    return [h[c:] for h, c in zip(histories, cut)]


def fast_randint(rng: Random) -> Callable[[int, int], int]:
    """`rng.randint` without its argument checks: it was a tenth of the load's time."""
    draw = rng.random

    def randint(low: int, high: int) -> int:
        return low + int(draw() * (high - low + 1))

    return randint


def _open_last(steps: list[tuple[float, float]]) -> list[tuple[float, float]]:
    steps = [(min(r, MAX_RATE_ML_H), m) for r, m in steps]
    steps[-1] = (steps[-1][0], INF)
    return steps


# ---------------------------------------------------------------------------
# The loader
# ---------------------------------------------------------------------------


@dataclass
class Placed:
    """Where a simulated session landed: its id, absolute check-in, and the cut-off (now, for live ones)."""

    id: int
    checkin: int | None
    limit: int
    nurse: int
    start: int | None = None
    stop: int | None = None

    def at(self, rel: int | None) -> int | None:
        """Absolute minute of an event `rel` minutes after check-in, or None if it has not happened."""
        if rel is None or self.checkin is None:
            return None
        moment = self.checkin + rel
        return moment if moment <= self.limit else None


@dataclass(frozen=True)
class LiveSlot:
    """One session of today's live board: its chair, the state at `now`, and where `now` falls."""

    state: str
    chair: int  # index into the clinic chairs; -1 = home visit
    prefer: tuple[str, ...]
    anchor: str = "start"  # checkin | ready | start | pause | stop | obs_end
    minutes: int = 0  # now = anchor + minutes
    overdue: bool = False  # leave the last due set of vitals untaken


ANY_SHORT = ("natalizumab", "methylprednisolone", "edaravone", "ocrelizumab_sc", "cyclophosphamide")
LIVE_ACTIVE = (
    LiveSlot("infusing", 0, ("ocrelizumab_iv", "rituximab", "ivig"), "start", 110, overdue=True),
    LiveSlot("infusing", 1, ("natalizumab", "alemtuzumab", "ivig"), "start", 35),
    LiveSlot("paused", 2, ("ocrelizumab_iv", "ublituximab", "rituximab", "ivig"), "pause", 8),
    LiveSlot("observation", 3, ("natalizumab", "ocrelizumab_iv", "ublituximab"), "stop", 25),
    LiveSlot("observation", 4, ("alemtuzumab", "natalizumab", "ocrelizumab_iv"), "obs_end", 10, overdue=True),
    LiveSlot("ready", 5, ("natalizumab", "ocrelizumab_iv", "ublituximab"), "ready", 12),
    LiveSlot("checked_in", 6, ("ocrelizumab_iv", "natalizumab", "ivig", "rituximab"), "checkin", 6),
    LiveSlot("infusing", 7, ("methylprednisolone", "cyclophosphamide", "edaravone"), "start", 12),
    LiveSlot("infusing", -1, ("ivig",), "start", 50),
)
LIVE_LATER = tuple(
    LiveSlot("scheduled", c, ("natalizumab", "ocrelizumab_iv", "ivig", "ublituximab")) for c in (1, 2, 4, 5, 7)
) + (LiveSlot("cancelled", 6, ("natalizumab", "ivig")),)
#: On chairs whose active session checked in recently, so the earlier one fits into the morning.
LIVE_EARLIER = tuple(LiveSlot("discharged", c, ANY_SHORT) for c in (1, 5, 6, 7)) + (
    LiveSlot("deferred", 2, ("natalizumab", "ocrelizumab_iv", "ivig")),
)


class DemoLoader:
    """Generates the demo clinic and writes it through a `Writer`, inside the caller's transaction."""

    def __init__(self, conn: Connection, options: DemoOptions, now: datetime, fresh: bool) -> None:
        self.conn, self.options, self.fresh = conn, options, fresh
        self.rng = Random(options.seed)
        self.ri = fast_randint(self.rng)
        self.now_min = int(now.timestamp() // 60)
        self.enc = Encoder(conn.dialect)
        self.ids = {t: self._next_id(t) for t in (*INSERT_ORDER, Chair.__table__, AppUser.__table__)}
        self.today_counts: dict[str, int] = defaultdict(int)
        self._day_base: dict[date, int] = {}
        self._celsius: dict[float, float] = {}

    # -- setup rows ------------------------------------------------------------

    def _next_id(self, table: Table) -> int:
        return int(self.conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()) + 1

    def _take_id(self, table: Table) -> int:
        value = self.ids[table]
        self.ids[table] = value + 1
        return value

    def prepare_clinic(self) -> None:
        """Set the clinic identity on a fresh database; with --force an existing clinic is left alone."""
        clinic = self.conn.execute(select(Clinic.__table__).order_by(Clinic.id).limit(1)).mappings().one()
        self.clinic_before = {k: clinic[k] for k in CLINIC}
        if self.fresh:
            # demo_mode makes the sign-in page list the demo accounts (DEMO_PASSWORD)
            demo_settings = {**(clinic["settings"] or {}), "demo_mode": True}
            self.conn.execute(
                update(Clinic.__table__)
                .where(Clinic.id == clinic["id"])
                .values(**CLINIC, settings=demo_settings, version=Clinic.__table__.c.version + 1)
            )
            clinic = self.conn.execute(select(Clinic.__table__).where(Clinic.id == clinic["id"])).mappings().one()
        self.clinic_id = clinic["id"]
        self.tz = ZoneInfo(clinic["timezone"])
        self.temperature_unit = clinic["temperature_unit"]
        self.settings = load_settings(clinic["settings"])
        self.today = datetime.fromtimestamp(self.now_min * 60, self.tz).date()

    def ensure_chairs_and_staff(self) -> None:
        """Chairs 1–8, a home-visit location and the staff; existing ones (same name) are reused."""
        chair_t, user_t = Chair.__table__, AppUser.__table__
        names = [f"Chair {i}" for i in range(1, CHAIR_COUNT + 1)] + [HOME_CHAIR]
        existing = dict(self.conn.execute(select(chair_t.c.name, chair_t.c.id).where(chair_t.c.name.in_(names))).all())
        new_chairs = [
            {"id": self._take_id(chair_t), "name": n, "kind": "home" if n == HOME_CHAIR else "chair", "active": True}
            for n in names
            if n not in existing
        ]
        if new_chairs:
            self.conn.execute(chair_t.insert(), new_chairs)
            existing.update({c["name"]: c["id"] for c in new_chairs})
        self.chair_ids = [existing[n] for n in names[:-1]]
        self.home_id = existing[HOME_CHAIR]
        users = dict(
            self.conn.execute(
                select(user_t.c.username, user_t.c.id).where(user_t.c.username.in_([s[0] for s in STAFF]))
            ).all()
        )
        joined = datetime.fromtimestamp((self.now_min - 400 * 1440) * 60, UTC)
        demo_hash = hash_password(DEMO_PASSWORD)  # one hash for all: Argon2 is slow on purpose
        new_users = [
            {
                "id": self._take_id(user_t),
                "username": u,
                "display_name": d,
                "role": r,
                "active": True,
                "password_hash": demo_hash,
                "created_at": joined,
                "failed_attempts": 0,
            }
            for u, d, r in STAFF
            if u not in users
        ]
        if new_users:
            self.conn.execute(user_t.insert(), new_users)
            users.update({u["username"]: u["id"] for u in new_users})
        self.nurse_ids = [users[u] for u, _, r in STAFF if r == "nurse"]
        self.charge_id = users["karen.miller"]
        busy = select(InfusionSession.chair_id).where(InfusionSession.status.in_(ACTIVE_STATUSES))
        self.busy_chairs = set(self.conn.execute(busy).scalars())

    def load_therapies(self) -> dict[str, TherapyInfo]:
        rows = self.conn.execute(select(Therapy.__table__).where(Therapy.active.is_(True))).mappings().all()
        found = {}
        for r in rows:
            if r["code"] in REACTIONS:
                found[r["code"]] = TherapyInfo(
                    id=r["id"],
                    code=r["code"],
                    dose_unit=r["dose_unit"],
                    default_dose=r["default_dose"],
                    route=r["route"],
                    program=r["program"],
                    premedication_required=r["premedication_required"],
                    schedule=r["vitals_schedule"] or {},
                    duration_windows=r["duration_windows"] or [],
                    observation_rules=r["observation_rules"] or [],
                    rate_plan=r["rate_plan"] or [],
                    dosing_interval_days=r["dosing_interval_days"],
                    profile=REACTIONS[r["code"]],
                )
        if not found:
            raise RuntimeError("No demo therapies are active in the catalog; nothing to load.")
        return found

    # -- main ---------------------------------------------------------------------

    def run(self) -> DemoResult:
        check_assumptions()
        self.prepare_clinic()
        self.ensure_chairs_and_staff()
        self.therapies = self.load_therapies()
        self.gen = Generator(self.rng, self.settings)
        self.window_start = self.today - timedelta(days=max(1, self.options.days) - 1)
        self._mrn = self._first_mrn()
        live = self._live_slots()
        patients, plans, live_plans = self._plan(live)
        by_day: dict[date, list[Plan]] = defaultdict(list)
        for plan in plans:
            by_day[plan.day].append(plan)
        self.writer = Writer(self.conn)
        self._write_patients(patients)
        for day in sorted(by_day):
            self._write_day(day, by_day[day])
            self.writer.maybe_flush()
        self._write_live_day(live_plans)
        self.writer.flush()
        # home-visit sessions are marked as such (they are not held to one active session per location)
        self.conn.execute(
            update(InfusionSession.__table__).where(InfusionSession.chair_id == self.home_id).values(at_home=True)
        )
        self._fix_sequences()
        written = self.writer.counts
        counts = {label: written.get(table, 0) for label, table in COUNT_LABELS.items()}
        self._audit(counts)
        return DemoResult(counts, dict(self.today_counts), 0.0)

    def _first_mrn(self) -> int:
        mrns = self.conn.execute(select(Patient.mrn).where(Patient.mrn.like("MRN-%"))).scalars()
        numbers = [int(m[4:]) for m in mrns if m[4:].isdigit()]
        return (max(numbers) + 1) if numbers else 1000 + self.ri(0, 8000)

    # -- planning -------------------------------------------------------------------

    def _live_slots(self) -> list[LiveSlot]:
        """Today's board, most important first; active slots on chairs already in use are skipped."""
        active = [s for s in LIVE_ACTIVE if self._chair_id(s.chair) not in self.busy_chairs]
        return (active + list(LIVE_LATER) + list(LIVE_EARLIER))[: self.options.sessions]

    def _chair_id(self, index: int) -> int:
        return self.home_id if index < 0 else self.chair_ids[index % len(self.chair_ids)]

    def _plan(self, live: list[LiveSlot]) -> tuple[list[PatientInfo], list[Plan], list[tuple[LiveSlot, Plan]]]:
        """Patients and their sessions, `sessions` in all.

        Live-day patients come first, then one patient for each therapy not yet
        seen (so even a small demo shows every therapy), then random patients
        until there are enough sessions. The surplus is trimmed from the longest
        histories, oldest sessions first.
        """
        patients: list[PatientInfo] = []
        histories: list[list[Plan]] = []
        live_plans: list[tuple[LiveSlot, Plan]] = []
        for slot in live:
            patient = self._new_patient(self._pick_available(slot.prefer))
            history, today_plan = self._series(patient, live=True)
            today_plan.kind = slot.state if slot.state in ("deferred", "cancelled") else "dose"
            patients.append(patient)
            histories.append(history)
            live_plans.append((slot, today_plan))
        budget = self.options.sessions - len(live_plans)
        seen = {p.therapy.code for p, h in zip(patients, histories) if h}
        uncovered = [c for c in self.therapies if c not in seen]
        total = sum(map(len, histories))
        while total < budget or len(patients) < MIN_PATIENTS or uncovered:
            patient = self._new_patient(uncovered.pop(0) if uncovered else None)
            patients.append(patient)
            histories.append(self._series(patient, live=False)[0])
            total += len(histories[-1])
        return patients, [p for h in _trim(histories, total - budget) for p in h], live_plans

    def _pick_available(self, prefer: tuple[str, ...]) -> str | None:
        options = [c for c in prefer if c in self.therapies]
        return self.rng.choice(options) if options else None

    def _new_patient(self, code: str | None) -> PatientInfo:
        rng = self.rng
        if code is None:
            diagnosis = self._weighted_diagnosis()
            code = self._therapy_for(diagnosis)
        else:  # e.g. IVIG: CIDP more often than systemic sclerosis, as in the clinic's mix
            offering = [(d, share * w) for d, (share, mix, _) in DIAGNOSES.items() for c, w in mix if c == code]
            diagnosis = rng.choices([d for d, _ in offering], weights=[w for _, w in offering])[0]
        female = rng.random() < (0.72 if diagnosis in ("Multiple sclerosis", "Systemic sclerosis") else 0.45)
        weight = max(45.0, min(160.0, rng.gauss(72 if female else 86, 15)))
        height = rng.gauss(163 if female else 177, 7)
        hypertensive = rng.random() < 0.12
        therapy = self.therapies[code]
        auth = None
        if therapy.program == "TOUCH":
            auth = f"TOUCH-{self.ri(10_000_000, 99_999_999)}"
        elif therapy.program:
            auth = f"LRP-{self.ri(100_000, 999_999)}"
        info = PatientInfo(
            id=self._take_id(Patient.__table__),
            diagnosis=diagnosis,
            therapy=therapy,
            weight_kg=round(weight, 1),
            height_cm=height,
            sbp=round(min(165, max(100, rng.gauss(122, 11))) + (26 if hypertensive else 0)),
            dbp=round(min(92, max(60, rng.gauss(76, 7))) + (12 if hypertensive else 0)),
            pulse=round(min(95, max(55, rng.gauss(74, 8)))),
            rr=rng.choice((14, 16, 16, 18, 18)),
            temp_f=round(min(98.8, max(97.0, rng.gauss(97.8, 0.3))), 1),
            spo2=rng.choice((96, 97, 98, 98, 99, 99, 100)),
            pain=rng.choice((0, 0, 0, 0, 0, 1, 2, 3, 4)),
            auth_ref=auth,
            female=female,
        )
        return info

    def _weighted_diagnosis(self) -> str:
        names = [d for d in DIAGNOSES if any(c in self.therapies for c, _ in DIAGNOSES[d][1])]
        return self.rng.choices(names, weights=[DIAGNOSES[d][0] for d in names])[0]

    def _therapy_for(self, diagnosis: str) -> str:
        mix = [(c, w) for c, w in DIAGNOSES[diagnosis][1] if c in self.therapies]
        return self.rng.choices([c for c, _ in mix], weights=[w for _, w in mix])[0]

    def _series(self, patient: PatientInfo, *, live: bool) -> tuple[list[Plan], Plan]:
        """This patient's sessions inside the window (oldest first) and, if live, today's session."""
        rng, therapy, today = self.rng, patient.therapy, self.today
        code = therapy.code
        horizon = (today - self.window_start).days + 6 * 365
        doses = regimen(code, rng, self.ri, horizon, therapy.dosing_interval_days)
        if live:
            start = self._live_start(code, doses)
        elif code in CONTINUING and rng.random() < 0.75:  # established: started up to 6 years ago
            start = self.window_start - timedelta(days=self.ri(30, 6 * 365))
        else:
            span = doses[-1][0] if code not in CONTINUING else 0
            start = self.window_start + timedelta(days=self.ri(-span, (today - self.window_start).days - 1))
        if code in MONDAY_START and not live:
            start -= timedelta(days=start.weekday())
        plans: list[Plan] = []
        last_day: date | None = None
        today_plan: Plan | None = None
        number = 0
        early = self.window_start - timedelta(days=3)
        for offset, course_day in doses:
            day = start + timedelta(days=offset)
            if day < early:  # before the window: only counts towards the infusion number
                number += 1
                continue
            day, home = self._clinic_day(day, code, course_day)
            if last_day is not None and day <= last_day:
                continue  # a weekend move landed on the previous dose
            last_day = day
            number += 1
            if day >= today:
                if live and day == today:
                    today_plan = Plan(patient, today, number, dose_for(therapy, number, patient), course_day=course_day)
                break
            if day < self.window_start:
                continue
            plan = Plan(patient, day, number, dose_for(therapy, number, patient), course_day=course_day, home=home)
            self._maybe_failed_attempt(plans, plan)
            plans.append(plan)
        if live and today_plan is None:  # rounding pushed the live dose off today: give it the next number
            number = (plans[-1].number + 1) if plans else 1
            today_plan = Plan(patient, today, number, dose_for(therapy, number, patient))
        return plans, today_plan  # type: ignore[return-value]

    def _live_start(self, code: str, doses: list[tuple[int, int]]) -> date:
        """A treatment start that puts one of the doses exactly on today."""
        rng, today = self.rng, self.today
        limit = (today - self.window_start).days + 6 * 365
        candidates = [i for i, (day, _) in enumerate(doses) if day <= limit]
        if code in MONDAY_START and today.weekday() < 5:
            fitting = [i for i in candidates if doses[i][0] % 7 == today.weekday()]
            candidates = fitting or candidates
        index = rng.choice(candidates)
        return today - timedelta(days=doses[index][0])

    def _clinic_day(self, day: date, code: str, course_day: int) -> tuple[date, bool]:
        """Move weekend doses to Friday/Monday, except edaravone's daily first cycle (given at home)."""
        weekday = day.weekday()
        if weekday < 5:
            home = (code == "ivig" and self.rng.random() < 0.08) or (code == "edaravone" and self.rng.random() < 0.1)
            return day, home
        if code == "edaravone" and course_day and course_day <= 14:
            return day, True
        return day + timedelta(days=-1 if weekday == 5 else 1), False

    def _maybe_failed_attempt(self, plans: list[Plan], plan: Plan) -> None:
        """~3% deferred and ~2% cancelled visits, a week before the dose that then went ahead.

        (Drawn a little more often than that, because some cannot be placed.)
        """
        u = self.rng.random()
        if u >= 0.07 or plan.course_day > 1:
            return
        day = plan.day - timedelta(days=7)
        if day.weekday() >= 5 or day < self.window_start or (plans and day <= plans[-1].day):
            return
        plans.append(
            Plan(
                plan.patient,
                day,
                plan.number,
                plan.dose,
                kind="deferred" if u < 0.042 else "cancelled",
                course_day=plan.course_day,
            )
        )

    # -- writing rows ------------------------------------------------------------------

    def _write_patients(self, patients: list[PatientInfo]) -> None:
        rng, enc, table = self.rng, self.enc, Patient.__table__
        allergies, weights = [a for a, _ in ALLERGIES], [w for _, w in ALLERGIES]
        for index, p in enumerate(patients):
            age_low, age_high = DIAGNOSES[p.diagnosis][2]
            oldest = index == 7 or rng.random() < 0.004  # a few over 89 (HIPAA groups them as 90+)
            age = self.ri(90, 96) if oldest else self.ri(age_low, age_high)
            born = self.today - timedelta(days=int((age + rng.random()) * 365.25))
            given = rng.choice(GIVEN_F if p.female else GIVEN_M)
            created = self.now_min - (self.options.days + 31 + self.ri(0, 900)) * 1440  # before any booking
            self.writer.add(
                table,
                (
                    p.id,
                    f"MRN-{self._mrn:06d}",
                    rng.choice(FAMILY),
                    given,
                    enc.day(born),
                    p.diagnosis,
                    rng.choices(allergies, weights=weights)[0],
                    p.weight_kg,
                    enc.ts(created),
                ),
            )
            self._mrn += 1

    def _local_minute(self, day: date, minute_of_day: int) -> int:
        """UTC epoch minute of a local wall-clock time (minute of day) on `day`."""
        base = self._day_base.get(day)
        if base is None:  # the offset at noon: right for clinic hours even on DST change days
            noon = datetime(day.year, day.month, day.day, 12, tzinfo=self.tz)
            base = self._day_base[day] = int(noon.timestamp() // 60) - 720
        return base + minute_of_day

    def _write_day(self, day: date, plans: list[Plan]) -> None:
        """Simulate a past clinic day: each session is booked for a time between 08:00 and 17:30 and
        seated in the first free chair; only a day with more sessions than chairs can hold overlaps."""
        booked = []
        for plan in plans:
            sim = self.gen.simulate(plan)
            latest = max(OPEN, CLOSE - sim.length)
            booked.append((OPEN + 15 * self.ri(0, (latest - OPEN) // 15), plan, sim))
        booked.sort(key=lambda b: b[0])
        free = [OPEN] * len(self.chair_ids)
        roster = day.toordinal()
        for wanted, plan, sim in booked:
            chair, local = self._seat(free, wanted, plan, sim)
            scheduled = self._local_minute(day, local)
            checkin = scheduled + self.ri(-10, 15)
            nurse = self.nurse_ids[(chair + roster) % len(self.nurse_ids)]
            self._emit(plan, sim, self._chair_id(chair), scheduled, checkin, nurse, cut=None)

    def _seat(self, free: list[int], wanted: int, plan: Plan, sim: Sim) -> tuple[int, int]:
        """(chair index or -1 for home, local minute of day) for one booked session."""
        rng = self.rng
        if plan.home:
            return -1, wanted
        if not sim.length:  # cancelled: booked, never sat in the chair
            return rng.randrange(len(free)), wanted
        chair = min(range(len(free)), key=free.__getitem__)
        local = max(wanted, -(-free[chair] // 15) * 15)
        if local + sim.length > CLOSE:  # every chair is taken: overbook one (only huge loads)
            return rng.randrange(len(free)), wanted
        free[chair] = local + sim.length + self.ri(10, 20)
        return chair, local

    # -- the live day ----------------------------------------------------------------------

    def _write_live_day(self, live_plans: list[tuple[LiveSlot, Plan]]) -> None:
        """Today's board around the real now. Active sessions fix each chair's timeline, so they go
        first; earlier sessions on a chair end before its active one checked in, later ones start after."""
        now = self.now_min
        checkins: dict[int, int] = {}
        frees: dict[int, int] = {}
        for slot, plan in live_plans:
            if slot in LIVE_ACTIVE:
                forced = ForcedReaction(45, 2, "pause") if slot.state == "paused" else None
                sim = self.gen.simulate(plan, forced)
                cut = self._cut_point(slot, sim)
                if sim.discharge is not None and sim.discharge <= cut:  # still in the chair at now
                    sim.discharge = sim.length = cut + self.ri(10, 30)
                checkin = now - cut
                checkins[slot.chair], frees[slot.chair] = checkin, checkin + sim.length
                drop = None
                if slot.overdue:  # the nurse is behind: the last due set is not taken yet
                    every = plan.patient.therapy.schedule.get("every_minutes") or 60
                    drop = now - (every + 12 if slot.anchor == "start" else 10)
                self._emit_live(slot, plan, sim, checkin, drop)
        for slot, plan in live_plans:
            if slot in LIVE_EARLIER:
                sim = self.gen.simulate(plan)
                end = checkins.get(slot.chair, now - 60) - self.ri(10, 20)
                self._emit_live(slot, plan, sim, min(end, now - 5) - sim.length, None)
        for slot, plan in live_plans:
            if slot in LIVE_LATER:
                start = max(frees.get(slot.chair, now), now) + self.ri(15, 40)
                plan.kind = "cancelled" if slot.state == "cancelled" else "scheduled"
                self._emit(
                    plan,
                    Sim(),
                    self._chair_id(slot.chair),
                    -(-start // 15) * 15,
                    None,
                    self._live_nurse(slot),
                    cut=now,
                    closed=now - self.ri(60, 150) if slot.state == "cancelled" else None,
                )

    def _emit_live(self, slot: LiveSlot, plan: Plan, sim: Sim, checkin: int, drop_after: int | None) -> None:
        self._emit(
            plan,
            sim,
            self._chair_id(slot.chair),
            checkin - checkin % 15,
            checkin,
            self._live_nurse(slot),
            cut=self.now_min,
            drop_vitals_after=drop_after,
        )

    def _live_nurse(self, slot: LiveSlot) -> int:
        return self.nurse_ids[(slot.chair + self.today.toordinal()) % len(self.nurse_ids)]

    def _cut_point(self, slot: LiveSlot, sim: Sim) -> int:
        """Minutes after check-in that `now` corresponds to, for the slot's state."""
        if slot.anchor == "checkin":
            return slot.minutes
        if slot.anchor == "ready":
            first_premed = sim.premeds[0][0] if sim.premeds else (sim.start or 30) - 1
            return min((sim.ready or 0) + slot.minutes, first_premed + 8 if sim.premeds else (sim.start or 30) - 1)
        assert sim.start is not None and sim.stop is not None and sim.obs_end is not None
        if slot.anchor == "pause":
            pause = next(at for at, kind, _, _ in sim.rates if kind == "pause")
            return pause + slot.minutes
        if slot.anchor == "stop":
            return sim.stop + slot.minutes
        if slot.anchor == "obs_end":
            return sim.obs_end + slot.minutes
        return sim.start + min(slot.minutes, max(3, sim.stop - sim.start - 10))

    # -- one session to rows ---------------------------------------------------------------

    def _emit(
        self,
        plan: Plan,
        sim: Sim,
        chair_id: int,
        scheduled: int,
        checkin: int | None,
        nurse: int,
        *,
        cut: int | None,
        drop_vitals_after: int | None = None,
        closed: int | None = None,
    ) -> None:
        """Write one session and its entries at absolute times (check-in + the simulation's minutes).

        For live sessions `cut` is now: what has not happened yet is left out and
        the status is where the timeline stands at now. The session's summary
        columns are computed from the rows actually written.
        """
        ri, enc = self.ri, self.enc
        therapy = plan.patient.therapy
        placed = Placed(self._take_id(InfusionSession.__table__), checkin, cut if cut is not None else 1 << 40, nurse)
        at = placed.at
        status = self._status(plan, sim, at)
        if cut is not None:
            self.today_counts[status] += 1
        ready, start, stop = at(sim.ready), at(sim.start), at(sim.stop)
        placed.start, placed.stop = start, stop
        discharge = at(sim.discharge) if status == "discharged" else None
        closed_at = at(sim.closed)
        if plan.kind == "cancelled":
            closed_at = closed if closed is not None else scheduled - ri(60, 2880)
        end = discharge or (closed_at if status == "deferred" else None)
        created = scheduled - ri(2, 30) * 1440 - ri(0, 480)
        if cut is not None:
            created = min(created, cut - 60)

        baseline_sbp, last_vitals = self._write_vitals(placed, plan, sim, drop_vitals_after)
        rate_now = self._write_entries(placed, plan, sim)
        count, worst = self._write_reactions(placed, sim)

        site, gauge, attempts = self.gen.iv_access(therapy) if start is not None else (None, None, None)
        infusion_minutes = float(stop - start) if start is not None and stop is not None else None
        long_flag = bool(
            infusion_minutes is not None
            and sim.window_max is not None
            and infusion_minutes > sim.window_max + self.gen.tolerance
        )
        ts = enc.ts
        self.writer.add(
            InfusionSession.__table__,
            (
                placed.id,
                plan.patient.id,
                therapy.id,
                chair_id,
                plan.dose,
                therapy.dose_unit,
                plan.number,
                status,
                enc.flag(therapy.code == "methylprednisolone" and plan.course_day == 1 and self.rng.random() < 0.3),
                ts(scheduled),
                ts(checkin if status not in ("scheduled", "cancelled") else None),
                ts(ready),
                ts(start),
                ts(stop),
                ts(discharge),
                ts(closed_at if status in ("deferred", "cancelled") else None),
                sim.deferral_reason if status == "deferred" else None,
                self.rng.choice(CANCELLATIONS) if status == "cancelled" else None,
                sim.early_reason if discharge is not None else None,
                sim.premed_override if start is not None else None,
                enc.flag(long_flag),
                site,
                gauge,
                attempts,
                self._lot(therapy.code, plan.day) if start is not None else None,
                0.0 if stop is not None else rate_now,
                baseline_sbp,
                count,
                worst,
                infusion_minutes,
                float(end - checkin) if end is not None and checkin is not None else None,
                ts(last_vitals),
                ts(created),
                self.charge_id,
                1,
            ),
        )

    def _write_vitals(
        self,
        placed: Placed,
        plan: Plan,
        sim: Sim,
        drop_after: int | None,
    ) -> tuple[int | None, int | None]:
        """Vital-sign rows with NEWS2 and flags from infusion.clinical.vitals; returns (baseline SBP, last taken)."""
        ri, rnd, enc, gen = self.ri, self.rng.random, self.enc, self.gen
        ts, yes, no, add = enc.ts, enc.true, enc.false, self.writer.add
        table, thresholds, unit = VitalSign.__table__, gen.thresholds, self.temperature_unit
        celsius = self._celsius
        patient, therapy = plan.patient, plan.patient.therapy
        start, stop, limit = placed.start, placed.stop, placed.limit
        lemtrada_day1 = therapy.code == "alemtuzumab" and plan.course_day == 1
        baseline_sbp: int | None = None
        last: int | None = None
        next_id = self.ids[table]
        for rel, kind, reaction in sim.vitals:
            taken = placed.checkin + rel  # type: ignore[operator]
            if taken > limit or (drop_after is not None and taken > drop_after and kind != BASELINE):
                continue
            phase = (
                "pre"
                if start is None or taken < start
                else "infusion"
                if stop is None or taken < stop
                else "observation"
            )
            sbp, dbp, pulse, rr, temp_f, spo2 = gen.vitals_values(
                patient, kind, reaction, lemtrada_day1 and phase == "infusion"
            )
            temp_c = celsius.get(temp_f)
            if temp_c is None:
                temp_c = celsius[temp_f] = round(f_to_c(temp_f), 2)  # as validate_vitals stores a typed °F
            unable, position, on_oxygen, pain, weight = enc.empty_dict, "sitting", False, None, None
            first = kind in (BASELINE, FEVER, HYPERTENSION)
            if first:
                pain = patient.pain
                weight = round(lb_to_kg(round(patient.weight_kg * 2.2046226218 + ri(-20, 20) / 10, 1)), 2)
            elif reaction is not None:
                position, on_oxygen = "lying", "anaphylaxis" in reaction.symptoms
                pain = 5 if "headache" in reaction.symptoms else None
            else:
                u = rnd()
                if u < 0.04:  # a quick BP and pulse only
                    rr = temp_c = spo2 = None  # type: ignore[assignment]
                elif u < 0.045:
                    spo2 = None  # type: ignore[assignment]
                    unable = enc.json({"spo2": "Cold fingers; no reliable trace"})
            v = Vitals(
                systolic=sbp,
                diastolic=dbp,
                pulse=pulse,
                resp_rate=rr,
                temperature_c=temp_c,
                spo2=spo2,
                pain=pain,
                weight_kg=weight,
                consciousness="A",
                on_oxygen=on_oxygen,
                position=position,
                unable_to_obtain={},
                provider_notified=False,
                provider_name=None,
                note=None,
            )
            news = score(v)
            flags = alert_flags(v, thresholds, baseline_systolic=baseline_sbp, temperature_unit=unit, news=news)
            provider, note = self._notified(flags, kind, reaction) if flags else (None, None)
            entered = min(taken + (ri(0, 3) if rnd() < 0.97 else ri(20, 90)), limit)
            add(
                table,
                (
                    next_id,
                    placed.id,
                    phase,
                    ts(taken),
                    ts(entered),
                    placed.nurse,
                    sbp,
                    dbp,
                    pulse,
                    rr,
                    temp_c,
                    spo2,
                    pain,
                    weight,
                    "A",
                    yes if on_oxygen else no,
                    position,
                    unable,
                    no if provider is None else yes,
                    provider,
                    ts(min(taken + 3, limit)) if provider else None,
                    enc.json([f.as_dict() for f in flags]) if flags else enc.empty_list,
                    len(flags),
                    news.total,
                    yes if news.complete else no,
                    note,
                    "active",
                ),
            )
            next_id += 1
            if first:
                baseline_sbp = sbp
            last = taken if last is None or taken > last else last
        self.ids[table] = next_id
        return baseline_sbp, last

    def _notified(self, flags: list[Any], kind: int, reaction: ReactionSim | None) -> tuple[str | None, str | None]:
        """Who was told about a flagged set (provider name, note), if anyone."""
        if reaction is not None and reaction.provider:
            return reaction.provider, None
        if self.rng.random() < 0.3:
            return self.rng.choice(PROVIDERS), "Rechecked after 5 minutes; provider aware."
        if kind == BASELINE:
            return None, "Patient reports white-coat hypertension; usual home readings normal."
        return None, None

    def _write_entries(self, placed: Placed, plan: Plan, sim: Sim) -> float | None:
        """Program check, premedication and rate rows; returns the last running rate."""
        ri, ts, add, at = self.ri, self.enc.ts, self.writer.add, placed.at
        therapy, limit, nurse = plan.patient.therapy, placed.limit, placed.nurse
        confirmed = at(sim.program_at)
        if therapy.program and confirmed is not None:
            add(
                ProgramCheck.__table__,
                (
                    self._take_id(ProgramCheck.__table__),
                    placed.id,
                    therapy.program,
                    plan.patient.auth_ref,
                    ts(confirmed),
                    nurse,
                ),
            )
        for rel, (drug, dose, route) in sim.premeds:
            given = at(rel)
            if given is not None:
                add(
                    Premedication.__table__,
                    (
                        self._take_id(Premedication.__table__),
                        placed.id,
                        drug,
                        dose,
                        route,
                        ts(given),
                        ts(min(given + ri(0, 4), limit)),
                        nurse,
                        "active",
                    ),
                )
        rate_now: float | None = None
        table = RateChange.__table__
        for rel, kind, rate, note in sim.rates:
            moment = at(rel)
            if moment is None:
                continue
            if kind != "pause":
                rate_now = rate
            add(
                table,
                (
                    self._take_id(table),
                    placed.id,
                    ts(moment),
                    kind,
                    rate,
                    note,
                    ts(min(moment + ri(0, 2), limit)),
                    nurse,
                    "active",
                ),
            )
        return rate_now

    def _write_reactions(self, placed: Placed, sim: Sim) -> tuple[int, int | None]:
        """Reaction rows; returns (count, worst grade) for the session summary."""
        enc, table, at = self.enc, Reaction.__table__, placed.at
        worst, count = None, 0
        for r in sim.reactions:
            onset = at(r.onset)
            if onset is None:
                continue
            self.writer.add(
                table,
                (
                    self._take_id(table),
                    placed.id,
                    enc.ts(onset),
                    enc.json(r.symptoms),
                    r.other_text,
                    r.grade,
                    enc.json(r.actions),
                    r.medication,
                    enc.ts(at(r.resolved)),
                    enc.flag(r.provider is not None),
                    r.provider,
                    r.note,
                    enc.ts(min(onset + self.ri(5, 20), placed.limit)),
                    placed.nurse,
                    "active",
                ),
            )
            count += 1
            worst = r.grade if worst is None else max(worst, r.grade)
        return count, worst

    def _status(self, plan: Plan, sim: Sim, at: Callable[[int | None], int | None]) -> str:
        if plan.kind in ("cancelled", "scheduled"):
            return plan.kind
        if plan.kind == "deferred":
            return "deferred" if at(sim.closed) is not None else ("checked_in" if at(0) is not None else "scheduled")
        if at(sim.discharge) is not None:
            return "discharged"
        if at(sim.stop) is not None:
            return "observation"
        if at(sim.start) is not None:
            paused = False
            for rel, kind, _, _ in sim.rates:
                if at(rel) is None:
                    break
                paused = kind == "pause"
            return "paused" if paused else "infusing"
        if at(sim.ready) is not None:
            return "ready"
        return "checked_in" if at(0) is not None else "scheduled"

    def _lot(self, code: str, day: date) -> str:
        """A product lot shared by everyone infused with it in the same four weeks."""
        period = day.toordinal() // 28
        return f"{LOT_PREFIX.get(code, 'LT')}{(period * 7919) % 90000 + 10000}{'ABCD'[period % 4]}"

    # -- closing ------------------------------------------------------------------------------

    def _fix_sequences(self) -> None:
        """PostgreSQL serial sequences do not see explicit ids: move them past the new rows."""
        if self.conn.dialect.name != "postgresql":
            return
        for table in (*INSERT_ORDER, Chair.__table__, AppUser.__table__):
            self.conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f'(SELECT COALESCE(MAX(id), 0) + 1 FROM "{table.name}"), false)'
                )
            )

    def _audit(self, counts: dict[str, int]) -> None:
        """One audit event for the whole load, not one per row."""
        after = {
            **counts,
            "today": dict(self.today_counts),
            "seed": self.options.seed,
            "days": self.options.days,
            "clinic": CLINIC if self.fresh else None,
        }
        self.conn.execute(
            AuditEvent.__table__.insert(),
            [
                {
                    "at": datetime.fromtimestamp(self.now_min * 60, UTC),
                    "user_id": None,
                    "user_name": "system",
                    "action": "demo_load",
                    "entity": "clinic",
                    "entity_id": self.clinic_id,
                    "session_id": None,
                    "patient_id": None,
                    "before": {"clinic": self.clinic_before} if self.fresh else None,
                    "after": after,
                    "reason": "Demo data loaded with python -m infusion.demo",
                }
            ],
        )


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------


def load_demo(db: Database, options: DemoOptions, *, now: datetime | None = None) -> DemoResult:
    """Load the demo clinic in one transaction. Raises DemoRefused if sessions exist and not `force`."""
    if options.sessions < 1 or options.days < 1:
        raise ValueError("sessions and days must be at least 1")
    started = time.perf_counter()
    bootstrap(db)
    now = now or datetime.now(UTC)
    with db.engine.connect() as conn:
        conn = conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            _lock_tables(conn)
            existing = conn.execute(select(func.count()).select_from(InfusionSession.__table__)).scalar_one()
            if existing and not options.force:
                raise DemoRefused(existing)
            result = DemoLoader(conn, options, now, fresh=not existing).run()
    result.seconds = time.perf_counter() - started  # including the commit
    return result


def load_demo_if_empty(db: Database, options: DemoOptions | None = None) -> bool:
    """For `streamlit run dashboard.py -- --demo`: load the default demo unless sessions exist."""
    try:
        load_demo(db, options or DemoOptions())
    except DemoRefused:
        return False
    return True


def _lock_tables(conn: Connection) -> None:
    """Keep other writers out while ids are assigned from max(id) + 1 (SQLite: BEGIN IMMEDIATE already)."""
    if conn.dialect.name == "postgresql":
        names = ", ".join(
            f'"{t.name}"'
            for t in (*INSERT_ORDER, Chair.__table__, AppUser.__table__, Clinic.__table__, AuditEvent.__table__)
        )
        conn.execute(text(f"LOCK TABLE {names} IN SHARE ROW EXCLUSIVE MODE"))


def _positive(limit: int) -> Callable[[str], int]:
    """An argparse type for a whole number from 1 to `limit`, with a plain message otherwise."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
        if not 1 <= number <= limit:
            raise argparse.ArgumentTypeError(f"must be between 1 and {limit:,}, got {number}")
        return number

    return parse


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m infusion.demo",
        description="Fill the configured database with a demo US MS infusion clinic "
        "(a year of sessions and a live day around now).",
    )
    parser.add_argument(
        "--sessions",
        type=_positive(2_000_000),
        default=DemoOptions.sessions,
        help="number of sessions to create (default %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=DemoOptions.seed, help="random seed (default %(default)s)")
    parser.add_argument(
        "--days",
        type=_positive(3650),
        default=DemoOptions.days,
        help="history length in days, ending today (default %(default)s)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="database URL (default: CHAIRSIDE_DATABASE_URL or sqlite:///chairside.sqlite)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="add demo data even though the database already has sessions (nothing is deleted)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: 0 loaded, 1 the database failed (nothing saved), 2 bad arguments or refused."""
    args = parse_args(argv)
    url = args.database_url or database_url()
    shown = _safe_url(url)
    options = DemoOptions(sessions=args.sessions, seed=args.seed, days=args.days, force=args.force)
    try:
        db = open_database(url)
    except (SQLAlchemyError, CommandError, OSError, ValueError) as exc:
        print(f"error: cannot open database {shown}: {_first_line(exc)}", file=sys.stderr)
        return 1
    try:
        result = load_demo(db, options)
    except DemoRefused as refused:
        print(
            f"error: {shown} already has {refused.args[0]:,} sessions; refusing to add demo data. "
            "Use a new database, or pass --force to add more (nothing is deleted).",
            file=sys.stderr,
        )
        return 2
    except (SQLAlchemyError, RuntimeError) as exc:
        print(f"error: loading failed, nothing was saved: {_first_line(exc)}", file=sys.stderr)
        return 1
    finally:
        db.engine.dispose()
    _print_summary(shown, result)
    return 0


def _safe_url(url: str) -> str:
    """The URL for messages, without a password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1]


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _print_summary(url: str, result: DemoResult) -> None:
    c = result.counts
    today = ", ".join(f"{n} {s}" for s, n in sorted(result.today.items(), key=lambda kv: -kv[1]))
    print(f"Demo clinic loaded into {url} in {result.seconds:.1f} s")
    print(f"  {c['sessions']:,} sessions for {c['patients']:,} patients; today: {today or 'none'}")
    print(
        f"  {c['vital_signs']:,} vital signs, {c['rate_changes']:,} rate changes, "
        f"{c['premedications']:,} premedications, {c['reactions']:,} reactions, "
        f"{c['program_checks']:,} program checks"
    )


if __name__ == "__main__":
    sys.exit(main())
