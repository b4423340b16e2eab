"""Versioned column schemas of the quality exports, and the data dictionary rendered from them.

One definition per column drives three things: the row a dataset writes
(`infusion.exports.datasets` looks columns up here by name), the de-identified variant of
that row (each column says how HIPAA Safe Harbor treats it, docs/clinical-basis.md §13),
and the data dictionary (CSV for download beside an export, Markdown committed
under docs/data-dictionary/). Because all three come from the same tuple the
file a quality team loads and the document describing it cannot drift apart.

De-identification is "drop unless known safe": a column leaves in a de-identified
file only when it declares a safe treatment (`Deid`). A column that declares
none (`Deid.UNDECLARED`, the default) is dropped from de-identified files, and a
text column cannot be declared plainly kept: it is `CODED` (a value from a fixed
list, never typed text), transformed, or removed. Free text can therefore not
reach a de-identified file by someone forgetting to say what it is.

The column set is a contract with spreadsheets, R scripts and registries
downstream: changing it is deliberate. Bump `SCHEMA_VERSION`, update the frozen
lists in tests/db/test_export.py and regenerate the dictionaries with
`python -m infusion.exports.schema`.

About 800 lines on purpose: most of it is the column declarations (one tuple per dataset, each column
with its type, meaning and de-identification rule), kept beside the rules that render and de-identify
them so the contract is written in one place.
"""

from __future__ import annotations

import csv
import enum
import io
import sys
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from db.models import SESSION_STATUSES
from infusion.clinical.catalog import load_seed
from infusion.clinical.course_end import REASON_CODES, REASONS
from infusion.clinical.premedication import DRUG_CODES as PREMED_DRUGS
from infusion.clinical.premedication import ROUTES as PREMED_ROUTES
from infusion.clinical.premedication import UNITS as PREMED_UNITS
from infusion.clinical.reactions import ACTIONS, SYMPTOMS
from infusion.clinical.vitals import CONSCIOUSNESS, MEASURES, POSITIONS
from infusion.services.sessions import IV_GAUGES, IV_SITES
from infusion.services.setup import DIAGNOSES

#: Bumped whenever a dataset is added, or gains, loses, renames or retypes a column.
#: 2: sessions gained `premedication_coded`; `premedication_given` (typed text) left the de-identified file.
#: 3: sessions, vitals, reactions and audit gained `site` (the site's code; `site_key` in a de-identified file
#:    made with pseudonymous sites); dates and times are in the row's site's time zone.
#: 4: a fifth dataset, `course_ends` (the Due page's ended-course marks); the other four are unchanged.
SCHEMA_VERSION = "4"

DATASETS = ("sessions", "vitals", "reactions", "audit", "course_ends")

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs" / "data-dictionary"

#: Column types as written to the CSV.
TYPES = {
    "integer": "whole number",
    "number": "decimal number (point as separator)",
    "boolean": "true or false",
    "text": "text",
    "date": "date, ISO 8601 (YYYY-MM-DD), in the time zone of the row's site",
    "datetime": "ISO 8601 timestamp to the second with the UTC offset, in the time zone of the row's site",
}

#: Codes `infusion.clinical.vitals.alert_flags` writes (docs/clinical-basis.md §6 thresholds).
FLAG_CODES = (
    "temp_high",
    "sbp_low",
    "sbp_high",
    "sbp_change",
    "dbp_high",
    "pulse_low",
    "pulse_high",
    "rr_high",
    "spo2_low",
    "news2_single_3",
)
TIME_REFERENCES = ("iv_start", "check_in", "scheduled")
PHASES = ("pre", "infusion", "observation")
CHAIR_KINDS = ("chair", "home")
OUTCOMES = ("resolved", "ongoing")


class Deid(enum.Enum):
    """What de-identified mode does to a column (HIPAA Safe Harbor, 45 CFR 164.514(b)(2))."""

    UNDECLARED = "removed (no de-identification treatment declared)"
    KEEP = "kept"  # numbers, booleans: never for text
    CODED = "kept (a code from a fixed list, never typed text)"
    REMOVE = "removed"
    PSEUDONYM = "replaced by a keyed pseudonym"
    YEAR = "reduced to the year"
    RELATIVE = "given as minutes relative to the time reference"
    AGE_CAP = "ages over 89 given as 90+"
    VOCABULARY = "values outside the allowed list given as Other"
    SITE = "kept (a site is not a Safe Harbor identifier); replaced by a keyed pseudonym when asked"
    ONLY = "only in the de-identified export"


@dataclass(frozen=True)
class Column:
    """One column of a dataset.

    `name` is the identified column; `deid_name` the de-identified one when the
    transformation changes what the values are (a key instead of an id, minutes
    instead of a timestamp), so one name never carries two meanings.
    `source` is the identified column an output column is computed from.
    """

    name: str
    type: str
    meaning: str
    unit: str = ""
    allowed: str = ""
    deid: Deid = Deid.UNDECLARED
    deid_name: str | None = None
    pseudonym_kind: str | None = None  # "patient" | "session" for Deid.PSEUDONYM, "site" for Deid.SITE
    vocabulary: tuple[str, ...] = ()  # the known values, for Deid.VOCABULARY and (optionally) Deid.CODED
    separator: str = ""  # a list of codes in one cell, e.g. ";": each code is checked against `vocabulary`
    source: str | None = None

    def __post_init__(self) -> None:
        if self.type == "text" and self.deid is Deid.KEEP:
            raise ValueError(
                f"{self.name}: a text column cannot be kept as is in de-identified files; declare it CODED "
                "(a value from a fixed list), give it another treatment, or REMOVE it"
            )

    @property
    def identifier(self) -> bool:
        """True when de-identified mode removes or transforms this column."""
        return self.deid not in (Deid.KEEP, Deid.CODED, Deid.ONLY, Deid.SITE)

    @property
    def handling(self) -> str:
        """The de-identified treatment in words, for the dictionary."""
        if self.deid in (Deid.KEEP, Deid.CODED, Deid.ONLY, Deid.UNDECLARED):
            return self.deid.value
        if self.deid is Deid.SITE:
            return f"{self.deid.value} (column `{self.deid_name}`)"
        if self.deid is Deid.REMOVE:
            return "removed"
        target = self.deid_name or self.name
        if target != self.name:
            return f"{self.deid.value} (column `{target}`)"
        return self.deid.value


def _list(values: Iterable[object]) -> str:
    return ", ".join(str(v) for v in values)


def _therapy_codes() -> str:
    codes = [row["code"] for row in load_seed()]
    return f"a code of the clinic's therapy catalog (seeded: {_list(codes)})"


def _dose_units() -> str:
    return _list(sorted({row["dose_unit"] for row in load_seed()}))


def _programs() -> str:
    programs = sorted({row["program"] for row in load_seed() if row.get("program")})
    return _list(programs) + "; blank when the therapy has none"


# Shared columns --------------------------------------------------------------------------


def _session_id(meaning: str = "Chairside's number for the session; links rows across datasets.") -> Column:
    return Column(
        "session_id", "integer", meaning, deid=Deid.PSEUDONYM, deid_name="session_key", pseudonym_kind="session"
    )


def _patient_id() -> Column:
    return Column(
        "patient_id",
        "integer",
        "Chairside's internal number for the patient (not the MRN).",
        deid=Deid.PSEUDONYM,
        deid_name="patient_key",
        pseudonym_kind="patient",
    )


def _mrn() -> Column:
    return Column("mrn", "text", "Medical record number.", deid=Deid.REMOVE)


def _patient_name() -> Column:
    return Column("patient_name", "text", "Family name, given name.", deid=Deid.REMOVE)


def _site(meaning: str = "The site (clinic of the network) where the session took place: its short code.") -> Column:
    # a treating site is not among the 18 Safe Harbor identifiers (they describe the patient, relatives,
    # employers and household members): kept, or a keyed pseudonym when the export asks (docs: DEID_NOTICE)
    return Column(
        "site",
        "text",
        meaning,
        allowed="a site code of the network (Administration)",
        deid=Deid.SITE,
        deid_name="site_key",
        pseudonym_kind="site",
    )


_TIME_REFERENCE = Column(
    "time_reference",
    "text",
    "What the *_rel_min columns of this row count from: the session's IV start; its check-in when the IV "
    "never started; its scheduled time when the patient never checked in. Blank when the row has no session.",
    allowed=_list(TIME_REFERENCES),
    deid=Deid.ONLY,
)


def _keep(name: str, type_: str, meaning: str, *, unit: str = "", allowed: str = "") -> Column:
    """A number or boolean that de-identified files keep as is."""
    return Column(name, type_, meaning, unit=unit, allowed=allowed, deid=Deid.KEEP)


def _coded(
    name: str, meaning: str, vocabulary: Iterable[object] = (), *, separator: str = "", allowed: str = ""
) -> Column:
    """A text column whose values come from a fixed list; with `vocabulary`, others become Other when de-identified."""
    return Column(
        name,
        "text",
        meaning,
        allowed=allowed,
        deid=Deid.CODED,
        vocabulary=tuple(str(v) for v in vocabulary),
        separator=separator,
    )


def _at(name: str, meaning: str) -> Column:
    return Column(name, "datetime", meaning, deid=Deid.RELATIVE)


def _staff_id(name: str, meaning: str) -> Column:
    return Column(name, "integer", meaning + " (Chairside staff number).", deid=Deid.KEEP)


def _staff_name(name: str, meaning: str) -> Column:
    # Staff names are not among the 18 Safe Harbor identifiers; removing them is a policy choice (docs/clinical-basis.md §13).
    return Column(name, "text", meaning, deid=Deid.REMOVE)


def _entry_tail(what: str) -> tuple[Column, ...]:
    return (
        _at("entered_at", f"When the {what} was saved (later than the clinical time for a late entry)."),
        _staff_id("entered_by_id", f"Who saved the {what}"),
        _staff_name("entered_by_name", f"Name of who saved the {what}."),
        _keep(
            "corrected",
            "boolean",
            f"True when this {what} is a correction: the value shown is the current "
            "one and replaces an earlier entry (superseded entries are never exported).",
        ),
        Column(
            "correction_reason",
            "text",
            "Why the entry was corrected or marked entered in error, as typed.",
            deid=Deid.REMOVE,
        ),
        _keep(
            "entered_in_error",
            "boolean",
            f"True when the {what} was marked entered in error. Such rows are "
            "left out unless the export includes them on request.",
        ),
    )


# Datasets ---------------------------------------------------------------------------------

SESSIONS: tuple[Column, ...] = (
    _session_id(),
    _patient_id(),
    _site(),
    _mrn(),
    _patient_name(),
    Column("birth_date", "date", "Date of birth.", deid=Deid.REMOVE),
    Column(
        "age_years",
        "integer",
        "Age in whole years on the session date. De-identified: ages over 89 are "
        "the text 90+ (so the column is then text).",
        unit="years",
        deid=Deid.AGE_CAP,
    ),
    Column(
        "diagnosis",
        "text",
        "The patient's diagnosis as recorded.",
        allowed=_list(DIAGNOSES) + "; blank",
        deid=Deid.VOCABULARY,
        vocabulary=tuple(DIAGNOSES),
    ),
    Column("session_date", "date", "The day the session was scheduled for.", deid=Deid.YEAR, deid_name="session_year"),
    _TIME_REFERENCE,
    # therapy codes, names, units and programs come from the clinic's catalog (configuration, not patient data)
    _coded("therapy_code", "The therapy given.", allowed=_therapy_codes()),
    _coded("therapy_name", "The therapy's name in the catalog."),
    _keep("dose", "number", "The prescribed dose, in `dose_unit`."),
    _coded("dose_unit", "Unit of `dose`.", allowed=_dose_units()),
    _keep(
        "infusion_number",
        "integer",
        "Which session of this therapy for this patient (1 = first); counts sessions that reached IV start.",
    ),
    # A home visit's "chair" may be named after the patient or the address (geography below state level).
    Column("chair_name", "text", "Where the session took place.", deid=Deid.REMOVE),
    _coded("chair_kind", "A chair in the clinic or a home visit.", CHAIR_KINDS, allowed=_list(CHAIR_KINDS)),
    _staff_id("nurse_id", "Who checked the patient in, or who created the session when nobody has"),
    _staff_name("nurse_name", "Name of the nurse in `nurse_id`."),
    _coded("status", "Session status at export time.", SESSION_STATUSES, allowed=_list(SESSION_STATUSES)),
    _keep("walk_in", "boolean", "Added on the day rather than booked ahead."),
    _at("scheduled_at", "Scheduled time."),
    _at("checked_in_at", "Check-in (baseline vitals taken)."),
    _at("ready_at", "Check-in assessment done; cleared to start."),
    _at("iv_started_at", "IV start: the infusion begins."),
    _at("iv_stopped_at", "IV stop: the infusion ends and observation begins."),
    _at("discharged_at", "Discharge."),
    _at("closed_at", "When a deferred or cancelled session was closed."),
    _keep("infusion_min", "number", "IV start to IV stop.", unit="min"),
    _keep("observation_min", "number", "IV stop to discharge.", unit="min"),
    _keep("chair_min", "number", "Check-in to discharge (or to deferral).", unit="min"),
    _keep("long_infusion", "boolean", "The infusion ran longer than the label window plus the clinic's tolerance."),
    Column("deferral_reason", "text", "Why the session was deferred, as typed.", deid=Deid.REMOVE),
    Column("cancel_reason", "text", "Why the session was cancelled, as typed.", deid=Deid.REMOVE),
    Column(
        "early_discharge_reason",
        "text",
        "Why the patient left before the observation period ended, as typed.",
        deid=Deid.REMOVE,
    ),
    _keep("premedication_required", "boolean", "The therapy's label calls for premedication."),
    Column(
        "premedication_given",
        "text",
        'Premedication given, current entries in time order, as "drug dose route" separated by "; ", as typed '
        "(or the picked drug's name and the coded dose).",
        deid=Deid.REMOVE,
    ),
    Column(
        "premedication_coded",
        "text",
        'Premedication given, current entries in time order, as coded "drug dose unit route" separated by "; " '
        "(e.g. diphenhydramine 25 mg IV). The drug is a code of the premedication list; anything else given is "
        "other; the dose is left out when it was not recorded as a number and unit.",
        allowed=f"drugs: {_list(PREMED_DRUGS)}; units: {_list(PREMED_UNITS)}; routes: {_list(PREMED_ROUTES)}",
        deid=Deid.CODED,
    ),
    Column(
        "premedication_skip_reason", "text", "Why required premedication was not given, as typed.", deid=Deid.REMOVE
    ),
    _coded("program", "Program checklist the therapy requires.", allowed=_programs()),
    _keep(
        "program_check_done",
        "boolean",
        "The program checklist was confirmed for this session; blank when the therapy has no program.",
    ),
    _coded("iv_site", "IV site.", IV_SITES, allowed=_list(IV_SITES) + "; blank"),
    _keep("iv_gauge", "integer", "IV catheter gauge.", unit="gauge", allowed=_list(IV_GAUGES)),
    _keep("iv_attempts", "integer", "Attempts needed to place the IV."),
    Column("lot_number", "text", "Product lot number from the bag label.", deid=Deid.REMOVE),
    _keep("start_rate_ml_h", "number", "Rate at IV start.", unit="mL/h"),
    _keep("max_rate_ml_h", "number", "Highest rate set during the infusion.", unit="mL/h"),
    _keep("pause_count", "integer", "How many times the infusion was paused."),
    _keep("reaction_count", "integer", "Reactions recorded (current entries; entered-in-error ones not counted)."),
    _keep("worst_grade", "integer", "Highest CTCAE v5.0 grade among those reactions; blank when none.", allowed="1–5"),
    _keep(
        "corrected",
        "boolean",
        "A session time or IV detail was corrected after it was recorded; the values "
        "shown are the current ones (the originals stay in Chairside's record).",
    ),
    _keep("addendum_count", "integer", "Addenda written after discharge (their text is not exported)."),
)

VITALS: tuple[Column, ...] = (
    Column("vital_id", "integer", "Chairside's number for the reading.", deid=Deid.REMOVE),
    _session_id(),
    _patient_id(),
    _site("The session's site: its short code."),
    _TIME_REFERENCE,
    _coded("therapy_code", "The session's therapy.", allowed=_therapy_codes()),
    _keep("infusion_number", "integer", "The session's infusion number for this patient and therapy."),
    _at("taken_at", "When the reading was taken."),
    _coded("phase", "Before IV start, during the infusion, or after IV stop.", PHASES, allowed=_list(PHASES)),
    _keep("systolic_mmhg", "integer", "Systolic blood pressure.", unit="mmHg", allowed="40–300"),
    _keep("diastolic_mmhg", "integer", "Diastolic blood pressure.", unit="mmHg", allowed="20–200"),
    _keep("pulse_per_min", "integer", "Heart rate.", unit="/min", allowed="20–250"),
    _keep("resp_rate_per_min", "integer", "Respiration rate.", unit="/min", allowed="4–60"),
    _keep(
        "temperature_c",
        "number",
        "Body temperature, always in °C whatever the clinic's display unit.",
        unit="°C",
        allowed="30–45",
    ),
    _keep("spo2_pct", "integer", "Oxygen saturation by pulse oximetry.", unit="%", allowed="50–100"),
    _keep("pain_score", "integer", "Pain, 0–10 numeric rating.", unit="score", allowed="0–10"),
    _keep(
        "weight_kg",
        "number",
        "Body weight, always in kg whatever the clinic's display unit.",
        unit="kg",
        allowed="20–350",
    ),
    _coded(
        "consciousness",
        "ACVPU: " + _list(f"{k} {v}" for k, v in CONSCIOUSNESS.items()) + ".",
        CONSCIOUSNESS,
        allowed=_list(CONSCIOUSNESS),
    ),
    _keep("on_oxygen", "boolean", "On supplemental oxygen (NEWS2)."),
    _coded("position", "Position for the blood pressure.", POSITIONS, allowed=_list(POSITIONS) + "; blank"),
    _coded(
        "not_obtained",
        'Measures that could not be obtained, separated by ";".',
        MEASURES,
        separator=";",
        allowed=_list(MEASURES),
    ),
    Column("not_obtained_reason", "text", 'Why, as typed ("measure: reason" separated by "; ").', deid=Deid.REMOVE),
    _coded(
        "flags",
        'Alert flags raised by the clinic\'s thresholds, separated by ";".',
        FLAG_CODES,
        separator=";",
        allowed=_list(FLAG_CODES),
    ),
    _keep("flag_count", "integer", "Number of alert flags."),
    _keep(
        "news2",
        "integer",
        "NEWS2 total (RCP 2017, SpO2 scale 1), over the measures present; a trend indicator in an outpatient chair.",
        unit="score",
        allowed="0–20",
    ),
    _keep("news2_complete", "boolean", "All NEWS2 parameters were present."),
    _keep("provider_notified", "boolean", "A provider was notified about this reading."),
    _staff_name("provider_name", "Who was notified."),
    _at("provider_notified_at", "When the provider was notified."),
    Column("note", "text", "Nurse's note, as typed.", deid=Deid.REMOVE),
    *_entry_tail("reading"),
)

REACTIONS: tuple[Column, ...] = (
    Column("reaction_id", "integer", "Chairside's number for the reaction.", deid=Deid.REMOVE),
    _session_id(),
    _patient_id(),
    _site("The session's site: its short code."),
    _TIME_REFERENCE,
    _coded("therapy_code", "The session's therapy.", allowed=_therapy_codes()),
    _keep("infusion_number", "integer", "The session's infusion number for this patient and therapy."),
    _at("onset_at", "Onset of the reaction."),
    _coded("phase", "Phase of the session at onset.", PHASES, allowed=_list(PHASES)),
    _keep(
        "grade",
        "integer",
        "CTCAE v5.0 grade (1 mild, 2 moderate, 3 severe, 4 life-threatening, 5 death).",
        allowed="1–5",
    ),
    _coded("symptoms", 'Symptoms, separated by ";".', SYMPTOMS, separator=";", allowed=_list(SYMPTOMS)),
    Column("other_symptom", "text", "Description of an 'other' symptom, as typed.", deid=Deid.REMOVE),
    _coded("actions", 'What was done, separated by ";".', ACTIONS, separator=";", allowed=_list(ACTIONS)),
    Column(
        "medication_given", "text", "Medication given for the reaction (drug, dose, route), as typed.", deid=Deid.REMOVE
    ),
    _at("resolved_at", "When the reaction resolved; blank while ongoing."),
    _keep("duration_min", "number", "Onset to resolution.", unit="min"),
    _coded("outcome", "Resolved, or still ongoing at export time.", OUTCOMES, allowed=_list(OUTCOMES)),
    _keep("provider_notified", "boolean", "A provider was notified."),
    _staff_name("provider_name", "Who was notified."),
    Column("note", "text", "Nurse's note, as typed.", deid=Deid.REMOVE),
    *_entry_tail("reaction"),
)

AUDIT: tuple[Column, ...] = (
    Column("audit_id", "integer", "Chairside's number for the audit event.", deid=Deid.REMOVE),
    Column("event_date", "date", "Day of the event.", deid=Deid.YEAR, deid_name="event_year"),
    Column("at", "datetime", "When the change was saved.", deid=Deid.RELATIVE),
    _TIME_REFERENCE,
    _staff_id("user_id", "Who made the change"),
    _staff_name("user_name", 'Name of who made the change ("system" for automatic changes).'),
    # action and entity are written by the services' code (services.audit.record), never typed
    _coded("action", "What was done (create, check_in, record_vitals, rate_change, …)."),
    _coded("entity", "Kind of record changed (session, vital_sign, reaction, patient, …)."),
    Column("entity_id", "integer", "Chairside's number for the record changed.", deid=Deid.REMOVE),
    _session_id("The session the event concerns; blank when none."),
    Column(
        "patient_id",
        "integer",
        "The patient the event concerns (Chairside's internal number); blank when none.",
        deid=Deid.PSEUDONYM,
        deid_name="patient_key",
        pseudonym_kind="patient",
    ),
    _site(
        "The site the event concerns (its short code): its session's site, else the site or chair changed, else "
        "the patient's site; blank for network events (accounts, catalog, exports)."
    ),
    Column("before", "text", "Changed fields before the change, as JSON.", deid=Deid.REMOVE),
    Column("after", "text", "Changed fields after the change, as JSON.", deid=Deid.REMOVE),
    Column("reason", "text", "Reason given, as typed.", deid=Deid.REMOVE),
)

COURSE_ENDS: tuple[Column, ...] = (
    Column("course_end_id", "integer", "Chairside's number for the course-end mark.", deid=Deid.REMOVE),
    _patient_id(),
    _site(
        "The site the mark was filed under (where the patient × therapy was listed or booked when the course was "
        "ended): its short code."
    ),
    _mrn(),
    _patient_name(),
    _coded("therapy_code", "The therapy whose course was ended.", allowed=_therapy_codes()),
    _coded("therapy_name", "The therapy's name in the catalog."),
    _coded(
        "end_reason",
        "Why the course was ended, as picked from the list: "
        + "; ".join(f"{code} = {label}" for code, label in REASONS.items())
        + ".",
        REASON_CODES,
        allowed=_list(REASON_CODES),
    ),
    Column("note", "text", "Note on the end, as typed (required when the reason is other).", deid=Deid.REMOVE),
    Column(
        "ended_date",
        "date",
        "The day the course was marked ended.",
        deid=Deid.YEAR,
        deid_name="ended_year",
    ),
    Column(
        "time_reference",
        "text",
        "What the *_rel_min columns of this row count from: the moment the course was marked ended.",
        allowed="course_end",
        deid=Deid.ONLY,
    ),
    # the year is in ended_year and the resume counts from this moment (time_reference): nothing else to keep
    Column("ended_at", "datetime", "When the course was marked ended.", deid=Deid.REMOVE),
    _staff_id("ended_by_id", "Who marked the course ended"),
    _staff_name("ended_by_name", "Name of who marked the course ended, as recorded then."),
    _at("resumed_at", "When the mark was lifted by resuming the course; blank when never resumed."),
    _staff_id("resumed_by_id", "Who resumed the course"),
    _staff_name("resumed_by_name", "Name of who resumed the course, as recorded then."),
    Column(
        "resume_reason",
        "text",
        "Why the course was resumed, as typed (ending a course again after the patient was treated again "
        "closes the earlier mark with a reason saying so).",
        deid=Deid.REMOVE,
    ),
    _keep(
        "in_force",
        "boolean",
        "True when the mark still holds at export time, so the due list leaves the patient × therapy out: not "
        "resumed, and no infusion of this therapy given to the patient (IV started) after the mark was made. An "
        "infusion given later lifts the mark without a resume (the patient is due again).",
    ),
)

SCHEMAS: dict[str, tuple[Column, ...]] = {
    "sessions": SESSIONS,
    "vitals": VITALS,
    "reactions": REACTIONS,
    "audit": AUDIT,
    "course_ends": COURSE_ENDS,
}

DESCRIPTIONS = {
    "sessions": "One row per session: patient, site, therapy, dose, chair, nurse, the session's times and durations, "
    "status, premedication, program checklist, lot, rates and reactions. The date range applies to "
    "the day the session was scheduled for, in its site's time zone.",
    "vitals": "One row per vital-signs reading, each measure in its own column in SI units, with phase, alert "
    "flags and NEWS2. The date range applies to the session's scheduled day, in its site's time zone.",
    "reactions": "One row per infusion reaction with its symptoms, CTCAE grade, actions, onset and resolution. "
    "The date range applies to the session's scheduled day, in its site's time zone.",
    "audit": "One row per audit event (every change Chairside saved), for quality and admin staff only. The date "
    "range applies to the event time, in the time zone of the event's site (events about no site: the first "
    "site's). An export limited to some sites, or made by someone who holds only some sites, holds the events "
    "about those sites only (no network events).",
    "course_ends": "One row per course-end mark: a charge nurse or an administrator marked a patient × therapy "
    "course ended on the Due page (reason, note), and perhaps resumed it later (who, when, why); `in_force` says "
    "whether the mark still holds at export time. A course ended again is a new row, the earlier one keeps its "
    "end and its resume. The date range applies to the day the course was marked ended, in the time zone of the "
    "site the mark was filed under. The therapy filter selects the course's therapy and the nurse filter who "
    "marked it ended; a course end has no chair, so an export of course ends with a chair filter is refused.",
}

FORMAT_NOTES = (
    "UTF-8 with a byte-order mark, comma separated, one header row, CRLF line ends, fields quoted only when "
    "needed (RFC 4180).",
    "Timestamps: ISO 8601 to the second with the UTC offset, in the time zone of the row's site "
    "(e.g. 2026-03-02T09:15:00-05:00); a network spans zones, so rows of different sites may carry different "
    "offsets. Dates: YYYY-MM-DD, the site's local day.",
    "The date range is each site's own local days: 1 to 31 March means midnight to midnight at the row's site "
    "(where the session took place; the dataset's description says which site and which time for the others). "
    "`site` is the site's code; an export may be limited to some sites, never beyond the sites where the person "
    "exporting holds their role.",
    "Units are SI whatever the clinic's display units, and are named in the column (temperature_c, weight_kg, "
    "rate_ml_h, *_min in minutes).",
    "Booleans are true/false; a blank cell means no value.",
    "Corrections are applied: each row shows the current value, `corrected` says it replaced an earlier entry, "
    "and superseded entries are left out. Entries marked entered in error are left out unless requested, then "
    "flagged in `entered_in_error`.",
    "Spreadsheet formula injection is neutralised (OWASP): a text cell starting with =, +, -, @, tab, carriage "
    "return or line feed gets a leading single quote ('). Numeric columns are never changed, so negative "
    "numbers stay numbers.",
)


SITE_KEY_MEANING = (
    "Pseudonymous site key: a keyed hash (HMAC-SHA256, truncated) of Chairside's site number with the clinic's "
    "de-identification secret, in place of the site's code (the export asked to replace the site). The same site "
    "has the same key in every export made with the same secret, so sites can be compared without naming them."
)


def _deid_column(col: Column, pseudonymise_site: bool = False) -> Column | None:
    """The column as it appears in the de-identified export (None when removed or when no treatment is declared)."""
    if col.deid in (Deid.REMOVE, Deid.UNDECLARED):
        return None
    if col.deid is Deid.SITE:
        if not pseudonymise_site:
            return replace(col, source=col.name)
        return replace(col, name=col.deid_name or col.name, source=col.name, meaning=SITE_KEY_MEANING, allowed="")
    if col.deid is Deid.PSEUDONYM:
        return replace(
            col,
            name=col.deid_name or col.name,
            type="text",
            source=col.name,
            meaning=f"Pseudonymous {col.pseudonym_kind} key: a keyed hash (HMAC-SHA256, truncated) of "
            f"Chairside's {col.pseudonym_kind} number with the clinic's de-identification "
            "secret. Stable across exports made with the same secret; not derivable without it.",
            allowed="",
        )
    if col.deid is Deid.YEAR:
        return replace(
            col,
            name=col.deid_name or f"{col.name}_year",
            type="integer",
            source=col.name,
            meaning=col.meaning.rstrip(".") + ": the year only.",
        )
    if col.deid is Deid.RELATIVE:
        base = col.name[:-3] if col.name.endswith("_at") else col.name
        return replace(
            col,
            name=col.deid_name or f"{base}_rel_min",
            type="number",
            unit="min",
            source=col.name,
            meaning=col.meaning.rstrip(".") + ": minutes relative to the row's `time_reference` "
            "(negative = before it).",
        )
    if col.deid is Deid.AGE_CAP:
        return replace(
            col,
            type="text",
            source=col.name,
            allowed="0–89, 90+",
            meaning="Age in whole years on the session date; ages over 89 are given as 90+.",
        )
    return replace(col, source=col.name)


def output_columns(dataset: str, deidentify: bool, pseudonymise_site: bool = False) -> tuple[Column, ...]:
    """The columns a dataset writes, in order, for the chosen mode.

    `pseudonymise_site` (de-identified files only) writes `site_key`, a keyed pseudonym, instead of `site`.
    """
    if dataset not in SCHEMAS:
        raise KeyError(dataset)
    if not deidentify:
        return tuple(replace(c, source=c.name) for c in SCHEMAS[dataset] if c.deid is not Deid.ONLY)
    return tuple(out for c in SCHEMAS[dataset] if (out := _deid_column(c, pseudonymise_site)) is not None)


def column_names(dataset: str, deidentify: bool, pseudonymise_site: bool = False) -> list[str]:
    return [c.name for c in output_columns(dataset, deidentify, pseudonymise_site)]


# Data dictionary ------------------------------------------------------------------------------

DICTIONARY_FIELDS = (
    "dataset",
    "schema_version",
    "column",
    "type",
    "unit",
    "meaning",
    "allowed_values",
    "de_identified",
)


def dictionary_rows(dataset: str, deidentify: bool, pseudonymise_site: bool = False) -> list[dict[str, str]]:
    """One row per output column of the chosen mode."""
    rows = []
    for col in output_columns(dataset, deidentify, pseudonymise_site):
        base = next(c for c in SCHEMAS[dataset] if c.name == col.source)
        rows.append(
            {
                "dataset": dataset,
                "schema_version": SCHEMA_VERSION,
                "column": col.name,
                "type": col.type,
                "unit": col.unit,
                "meaning": col.meaning,
                "allowed_values": col.allowed,
                "de_identified": (f"from `{base.name}`: {base.deid.value}" if col.name != base.name else base.handling)
                if deidentify
                else base.handling,
            }
        )
    return rows


def render_csv(dataset: str, deidentify: bool = False, pseudonymise_site: bool = False) -> str:
    """The dictionary of one dataset as CSV text (no BOM; the caller adds one for download)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=DICTIONARY_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(dictionary_rows(dataset, deidentify, pseudonymise_site))
    return buffer.getvalue()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(rows: list[dict[str, str]], with_deid: bool) -> list[str]:
    head = ["Column", "Type", "Unit", "Meaning", "Allowed values"] + (["De-identified export"] if with_deid else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"`{r['column']}`", r["type"], r["unit"], r["meaning"], r["allowed_values"]]
        if with_deid:
            cells.append(r["de_identified"])
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def render_markdown(dataset: str) -> str:
    """The committed dictionary of one dataset: both modes, format notes and the de-identification rules."""
    from infusion.exports.deidentify import DEID_NOTICE  # late: deidentify imports nothing from here, but keep it light

    lines = [
        f"# Data dictionary: `{dataset}`",
        "",
        f"Schema version {SCHEMA_VERSION}. Generated from `infusion/exports/schema.py` by "
        "`python -m infusion.exports.schema`; do not edit by hand (a test compares this file with the code).",
        "",
        DESCRIPTIONS[dataset],
        "",
        "## File format",
        "",
        *[f"- {note}" for note in FORMAT_NOTES],
        "",
        "## Columns",
        "",
        *_table(dictionary_rows(dataset, False), with_deid=True),
        "",
        "## De-identified export",
        "",
        *[f"- {note}" for note in DEID_NOTICE],
        "",
        "Columns of the de-identified file:",
        "",
        *_table(dictionary_rows(dataset, True), with_deid=False),
        "",
        "When the export asks to replace the site with a pseudonymous code, `site` is replaced by:",
        "",
        *_table([r for r in dictionary_rows(dataset, True, True) if r["column"] == "site_key"], with_deid=False),
        "",
        f"Types: {'; '.join(f'**{k}** {v}' for k, v in TYPES.items())}.",
        "",
    ]
    return "\n".join(lines)


def write_dictionaries(directory: Path = DOCS_DIR) -> list[Path]:
    """Regenerate docs/data-dictionary/<dataset>.md."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for dataset in DATASETS:
        path = directory / f"{dataset}.md"
        path.write_text(render_markdown(dataset), encoding="utf-8", newline="\n")
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    for written_path in write_dictionaries():
        print(written_path, file=sys.stderr)
