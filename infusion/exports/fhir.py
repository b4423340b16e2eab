"""A FHIR R4 Bundle for one infusion session, for registries and EHR interfaces (docs/clinical-basis.md §9).

Built with `fhir.resources` (8.x): its models validate structure, cardinality,
choice types and primitive formats on construction, so a bundle that builds is
structurally valid. fhir.resources 7+ ships R5 as the default and R4B instead of
R4; R4B changed none of the elements used here (MedicationAdministration.context,
the R4 AdverseEvent, Encounter.class as a Coding), so the R4B models write R4
JSON. Code values (statuses, severities) are not checked by the library; the
tests check them against the R4 value sets.

Mapping (docs/clinical-basis.md §9):
- Patient: MRN, name and birth date; de-identified: only the pseudonymous key.
- Encounter: class AMB (HH for a home visit), period check-in → discharge; serviceProvider is
  the site (a display-only Reference to the Organization: its name and code; de-identified: the
  code only, as in the CSV). Times are in the site's time zone.
- MedicationAdministration: status completed, or stopped (statusReason: the
  reaction's grade) when a reaction's actions stopped the infusion; on-hold while
  paused, in-progress while running. effectivePeriod IV start → IV stop, context →
  Encounter, dosage dose/route and the rate at IV start in mL/h (UCUM). The lot
  goes where FHIR R4 keeps it, Medication.batch.lotNumber, in a Medication
  contained in the administration (no custom extension needed). Later rate
  steps are summarised in a generated note rather than as partOf
  administrations.
- Observations: one vital-signs panel (85353-1) per reading with hasMember
  links to BP 85354-9 (components 8480-6/8462-4), heart rate 8867-4,
  respiratory rate 9279-1, temperature 8310-5 (Cel), SpO2 2708-6 + 59408-5,
  pain 72514-3 and weight 29463-7, in UCUM units, always SI.
- AdverseEvent per reaction: suspectEntity.instance → MedicationAdministration,
  severity from the CTCAE grade (1 mild, 2 moderate, ≥3 severe), outcome
  resolved / ongoing (fatal for grade 5).

Corrections are applied as in the CSV: superseded and entered-in-error entries
are left out; a correction is an Observation with status `corrected`.
De-identified bundles carry only the year of every time (FHIR allows partial
dates; Bundle.timestamp is omitted as it must be a full instant), no names,
MRN, birth date, lot, notes or free text, and resource ids derived from the
keyed pseudonyms so no Chairside record number appears.

About 500 lines on purpose: one builder maps one session to one Bundle, and its resources share the
resource ids, references and the de-identification switch set up once in `_Builder.__init__`.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import IO, Any, cast
from zoneinfo import ZoneInfo

from fhir.resources.R4B.adverseevent import AdverseEvent, AdverseEventSuspectEntity
from fhir.resources.R4B.annotation import Annotation
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.medication import Medication, MedicationBatch
from fhir.resources.R4B.medicationadministration import (
    MedicationAdministration,
    MedicationAdministrationDosage,
)
from fhir.resources.R4B.observation import Observation, ObservationComponent
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.reference import Reference
from sqlalchemy import select

from db.engine import Database
from db.models import Chair, Clinic, InfusionSession, Patient, RateChange, Reaction, Therapy, VitalSign
from infusion.clinical.reactions import SYMPTOMS
from infusion.errors import NotFoundError
from infusion.exports import deidentify as deid

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
AE_SEVERITY = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
AE_OUTCOME = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"
AE_SERIOUSNESS = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"

log = logging.getLogger(__name__)

#: Fixed namespace: the same record always gets the same resource id, so a re-sent bundle updates, not duplicates.
_NAMESPACE = uuid.UUID("0c8f7a52-4d3e-5b1a-9e0f-6a2b3c4d5e6f")

#: (LOINC, display, UCUM code, unit shown) per measure, docs/clinical-basis.md §9.
VITAL_CODES: dict[str, tuple[str, str, str, str]] = {
    "panel": ("85353-1", "Vital signs, weight, height, head circumference, oxygen saturation and BMI panel", "", ""),
    "bp": ("85354-9", "Blood pressure panel with all children optional", "", ""),
    "systolic": ("8480-6", "Systolic blood pressure", "mm[Hg]", "mmHg"),
    "diastolic": ("8462-4", "Diastolic blood pressure", "mm[Hg]", "mmHg"),
    "pulse": ("8867-4", "Heart rate", "/min", "/min"),
    "resp_rate": ("9279-1", "Respiratory rate", "/min", "/min"),
    "temperature_c": ("8310-5", "Body temperature", "Cel", "°C"),
    "spo2": ("2708-6", "Oxygen saturation in Arterial blood", "%", "%"),
    "pain": ("72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported", "{score}", "{score}"),
    "weight_kg": ("29463-7", "Body weight", "kg", "kg"),
}
SPO2_PULSE_OXIMETRY = ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry")

ENCOUNTER_STATUS = {
    "scheduled": "planned",
    "checked_in": "arrived",
    "ready": "triaged",
    "infusing": "in-progress",
    "paused": "in-progress",
    "observation": "in-progress",
    "discharged": "finished",
    "deferred": "finished",  # the visit happened; the infusion did not
    "cancelled": "cancelled",
}


def severity_for_grade(grade: int) -> str:
    """CTCAE grade → AdverseEvent.severity: 1 mild, 2 moderate, 3 and above severe."""
    return "mild" if grade <= 1 else "moderate" if grade == 2 else "severe"


@dataclass
class SessionRecord:
    """What a bundle is built from: the session and its current entries (read only, no audit side effect)."""

    session: InfusionSession
    patient: Patient
    therapy: Therapy
    chair: Chair
    timezone: str
    vitals: list[VitalSign]
    rates: list[RateChange]
    reactions: list[Reaction]
    site_code: str = ""
    site_name: str = ""


def load_session(db: Database, session_id: int) -> SessionRecord:
    """The session with its active entries (superseded and entered-in-error ones left out)."""
    with db.reading() as s:
        row = s.get(InfusionSession, session_id)
        if row is None:
            raise NotFoundError(f"Session {session_id} not found.")
        patient, therapy, chair = (
            s.get(Patient, row.patient_id),
            s.get(Therapy, row.therapy_id),
            s.get(Chair, row.chair_id),
        )
        assert patient is not None and therapy is not None and chair is not None  # foreign keys
        site = s.get(Clinic, chair.site_id)  # the session's site: its chair's
        assert site is not None  # foreign key
        tz = site.timezone
        vitals = list(
            s.scalars(
                select(VitalSign)
                .where(VitalSign.session_id == row.id, VitalSign.status == "active")
                .order_by(VitalSign.taken_at, VitalSign.id)
            )
        )
        rates = list(
            s.scalars(
                select(RateChange)
                .where(RateChange.session_id == row.id, RateChange.status == "active")
                .order_by(RateChange.at, RateChange.id)
            )
        )
        reactions = list(
            s.scalars(
                select(Reaction)
                .where(Reaction.session_id == row.id, Reaction.status == "active")
                .order_by(Reaction.onset_at, Reaction.id)
            )
        )
    return SessionRecord(row, patient, therapy, chair, tz, vitals, rates, reactions, site.code, site.name)


def build_bundle(
    db: Database,
    session_id: int,
    *,
    deidentify: bool = False,
    secret: bytes | str | None = None,
    now: datetime | None = None,
) -> Bundle:
    """The session as a FHIR R4 collection Bundle (validated by construction)."""
    key = deid.resolve_secret(secret) if deidentify else None
    bundle = _Builder(load_session(db, session_id), key).bundle(now or datetime.now(UTC))
    # no session number: in de-identified mode it is one of the record numbers the bundle leaves out
    log.info("FHIR bundle built: resources=%d deidentified=%s", len(bundle.entry or []), deidentify)
    return bundle


def bundle_json(bundle: Bundle) -> str:
    return bundle.model_dump_json(indent=2)


def write_bundle(
    db: Database,
    session_id: int,
    out: IO[bytes] | IO[str],
    *,
    deidentify: bool = False,
    secret: bytes | str | None = None,
) -> Bundle:
    """Write the session's bundle as JSON (UTF-8) to a binary or text stream."""
    bundle = build_bundle(db, session_id, deidentify=deidentify, secret=secret)
    text = bundle_json(bundle) + "\n"
    if hasattr(out, "encoding"):  # a text stream; binary files and buffers have no encoding
        cast(IO[str], out).write(text)
    else:
        cast(IO[bytes], out).write(text.encode("utf-8"))
    return bundle


def _concept(system: str, code: str, display: str | None = None, text: str | None = None) -> CodeableConcept:
    return CodeableConcept(coding=[Coding(system=system, code=code, display=display)], text=text)


def _decimal(value: float) -> Decimal:
    """FHIR decimals are `Decimal`; via str, as fhir.resources converts a float itself (1.1 stays 1.1)."""
    return Decimal(str(value))


def _quantity(value: float, ucum: str, unit: str) -> Quantity:
    return Quantity(value=_decimal(value), unit=unit, system=UCUM, code=ucum)


class _Builder:
    """Turns one SessionRecord into resources; `secret` set = de-identified."""

    def __init__(self, record: SessionRecord, secret: bytes | None) -> None:
        self.d = record
        self.secret = secret
        self.tz = ZoneInfo(record.timezone)
        self.entries: list[BundleEntry] = []
        row = record.session
        if secret is not None:
            self.patient_key: str | None = deid.patient_key(secret, row.patient_id)
            self._seed = deid.session_key(secret, row.id)
            patient_seed = self.patient_key
        else:
            self.patient_key = None
            self._seed = f"session:{row.id}"
            patient_seed = f"patient:{row.patient_id}"
        self.patient_id = self._id("Patient", patient_seed)
        self.encounter_id = self._id("Encounter", self._seed)
        self.medadmin_id = self._id("MedicationAdministration", self._seed)

    # ids, references and times ---------------------------------------------------------------

    @staticmethod
    def _id(kind: str, seed: str) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{kind}:{seed}"))

    @staticmethod
    def _ref(resource_id: str) -> Reference:
        return Reference(reference=f"urn:uuid:{resource_id}")

    @classmethod
    def _member_ref(cls, observation: Observation) -> Reference:
        """A panel's hasMember link; every Observation built here has an id."""
        assert observation.id is not None
        return cls._ref(observation.id)

    def _time(self, moment: datetime | None) -> Any:
        """A FHIR dateTime: local time with offset, or only the year when de-identified."""
        if moment is None:
            return None
        if self.secret is not None:
            return str(moment.astimezone(self.tz).year)
        return moment.astimezone(self.tz)

    def _add(self, resource: Any) -> None:
        self.entries.append(BundleEntry(fullUrl=f"urn:uuid:{resource.id}", resource=resource))

    # resources ---------------------------------------------------------------------------------

    def bundle(self, now: datetime) -> Bundle:
        self._add(self.patient())
        self._add(self.encounter())
        administration = self.medication_administration()
        if administration is not None:
            self._add(administration)
        for vital in self.d.vitals:
            for observation in self.observations(vital):
                self._add(observation)
        for reaction in self.d.reactions:
            self._add(self.adverse_event(reaction, administration is not None))
        return Bundle(
            id=self._id("Bundle", self._seed),
            type="collection",
            timestamp=None if self.secret is not None else now.astimezone(UTC),
            entry=self.entries,
        )

    def patient(self) -> FhirPatient:
        p = self.d.patient
        if self.secret is not None:
            return FhirPatient(
                id=self.patient_id,
                identifier=[
                    Identifier(type=CodeableConcept(text="Chairside pseudonymous patient key"), value=self.patient_key)
                ],
            )
        return FhirPatient(
            id=self.patient_id,
            identifier=[Identifier(type=_concept(IDENTIFIER_TYPE, "MR", "Medical record number"), value=p.mrn)],
            name=[HumanName(family=p.family_name, given=[p.given_name])],
            birthDate=p.birth_date,
        )

    def encounter(self) -> Encounter:
        row = self.d.session
        home = self.d.chair.kind == "home"
        end = row.discharged_at or row.closed_at
        period = None
        if row.checked_in_at is not None:
            period = Period(start=self._time(row.checked_in_at), end=self._time(end))
        return Encounter(
            id=self.encounter_id,
            status=ENCOUNTER_STATUS[row.status],
            # populate_by_name accepts the attribute name at run time; without the pydantic mypy plugin
            # (not in pyproject) mypy only knows the alias `class`, a Python keyword
            class_fhir=Coding(  # type: ignore[call-arg]
                system=ACT_CODE, code="HH" if home else "AMB", display="home health" if home else "ambulatory"
            ),
            type=[CodeableConcept(text="Infusion session")],
            serviceType=CodeableConcept(text=self.d.therapy.brand or self.d.therapy.name),
            subject=self._ref(self.patient_id),
            period=period,
            serviceProvider=self._site(),
        )

    def _site(self) -> Reference | None:
        """The site as a display-only Reference (no Organization resource is sent); de-identified: its code."""
        code, name = self.d.site_code, self.d.site_name
        if not code:
            return None
        if self.secret is not None:
            return Reference(display=code)
        return Reference(display=f"{name} ({code})" if name else code)

    def medication_administration(self) -> MedicationAdministration | None:
        row, therapy = self.d.session, self.d.therapy
        if row.iv_started_at is None:
            return None  # never started (deferred, cancelled, not yet): nothing was administered
        name = f"{therapy.brand} ({therapy.name})" if therapy.brand else therapy.name
        medication = Medication(
            id="medication",
            code=CodeableConcept(text=name),
            batch=MedicationBatch(lotNumber=row.lot_number) if row.lot_number and self.secret is None else None,
        )
        stopped_by = self._stopping_reaction()
        status_reason = None
        if stopped_by is not None:
            # FHIR R4: "stopped" = halted before all of it was given; a reaction that stopped it is the reason
            status = "stopped"
            status_reason = [
                CodeableConcept(text=f"Stopped for an infusion-related reaction (CTCAE v5.0 grade {stopped_by.grade})")
            ]
        elif row.iv_stopped_at is not None:
            status = "completed"
        elif row.status == "paused":
            status = "on-hold"
        else:
            status = "in-progress"
        start_rate = next((r.rate_ml_h for r in self.d.rates if r.kind == "start"), None)
        ucum_dose = row.dose_unit if row.dose_unit in ("mg", "g", "g/kg", "mg/kg", "mL") else None
        dose = None
        if row.dose is not None:
            dose = (
                _quantity(row.dose, ucum_dose, row.dose_unit)
                if ucum_dose
                else Quantity(value=_decimal(row.dose), unit=row.dose_unit)
            )
        history = self._rate_history()
        return MedicationAdministration(
            id=self.medadmin_id,
            contained=[medication],
            status=status,
            statusReason=status_reason,
            medicationReference=Reference(reference="#medication", display=name),
            subject=self._ref(self.patient_id),
            context=self._ref(self.encounter_id),
            effectivePeriod=Period(start=self._time(row.iv_started_at), end=self._time(row.iv_stopped_at)),
            dosage=MedicationAdministrationDosage(
                route=CodeableConcept(text=therapy.route),
                dose=dose,
                rateQuantity=_quantity(start_rate, "mL/h", "mL/h") if start_rate is not None else None,
            ),
            note=[Annotation(text=history)] if history else None,
        )

    def _stopping_reaction(self) -> Reaction | None:
        """The current reaction whose actions stopped the infusion (onset between IV start and IV stop), if any.

        Only once the IV is stopped: while the session is still infusing or paused the administration is not
        over (a paused one is on-hold), a reaction after IV stop (in observation) stopped nothing, and an
        infusion restarted after the reaction (a resume or rate step later than its onset) was completed.
        """
        start, stop = self.d.session.iv_started_at, self.d.session.iv_stopped_at
        if start is None or stop is None:
            return None
        for reaction in self.d.reactions:
            if "stopped" not in (reaction.actions or []) or not start <= reaction.onset_at <= stop:
                continue
            restarted = any(r.kind in ("start", "change", "resume") and r.at > reaction.onset_at for r in self.d.rates)
            if not restarted:
                return reaction
        return None

    def _rate_history(self) -> str:
        """Rate steps as generated text (no free text), minutes from IV start: '0 min 100 mL/h; 30 min 200 mL/h'."""
        start = self.d.session.iv_started_at
        assert start is not None
        steps = []
        for r in self.d.rates:
            minute = round((r.at - start).total_seconds() / 60)
            if r.kind == "pause":
                steps.append(f"{minute} min paused")
            elif r.kind == "stop":
                steps.append(f"{minute} min stopped")
            elif r.rate_ml_h is not None:
                steps.append(f"{minute} min {r.rate_ml_h:g} mL/h" + (" (resumed)" if r.kind == "resume" else ""))
        return "Rate steps (minutes from IV start): " + "; ".join(steps) if steps else ""

    def _observation(
        self,
        vital: VitalSign,
        key: str,
        *,
        value: Quantity | None = None,
        components: list[ObservationComponent] | None = None,
        members: list[Reference] | None = None,
    ) -> Observation:
        loinc, display, _, _ = VITAL_CODES[key]
        coding = [Coding(system=LOINC, code=loinc, display=display)]
        if key == "spo2":
            coding.append(Coding(system=LOINC, code=SPO2_PULSE_OXIMETRY[0], display=SPO2_PULSE_OXIMETRY[1]))
        return Observation(
            id=self._id("Observation", f"{self._vital_seed(vital)}:{key}"),
            status="corrected" if vital.replaces_id is not None else "final",
            category=[_concept(OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")],
            code=CodeableConcept(coding=coding, text=display),
            subject=self._ref(self.patient_id),
            encounter=self._ref(self.encounter_id),
            effectiveDateTime=self._time(vital.taken_at),
            valueQuantity=value,
            component=components,
            hasMember=members,
        )

    def _vital_seed(self, vital: VitalSign) -> str:
        if self.secret is not None:
            return deid.pseudonym(self.secret, "vital", vital.id)
        return f"vital:{vital.id}"

    def _value(self, key: str, number: float) -> Quantity:
        _, _, ucum, unit = VITAL_CODES[key]
        return _quantity(number, ucum, unit)

    def observations(self, vital: VitalSign) -> list[Observation]:
        """The members of one reading, then its vital-signs panel."""
        members: list[Observation] = []
        if vital.systolic is not None and vital.diastolic is not None:
            members.append(
                self._observation(
                    vital,
                    "bp",
                    components=[
                        ObservationComponent(
                            code=_concept(LOINC, VITAL_CODES[part][0], VITAL_CODES[part][1]),
                            valueQuantity=self._value(part, getattr(vital, part)),
                        )
                        for part in ("systolic", "diastolic")
                    ],
                )
            )
        for key in ("pulse", "resp_rate", "temperature_c", "spo2", "pain", "weight_kg"):
            number = getattr(vital, key)
            if number is not None:
                members.append(self._observation(vital, key, value=self._value(key, number)))
        if not members:
            return []
        panel = self._observation(vital, "panel", members=[self._member_ref(m) for m in members])
        return [*members, panel]

    def adverse_event(self, reaction: Reaction, has_administration: bool) -> AdverseEvent:
        grade = reaction.grade
        symptoms = ", ".join(SYMPTOMS.get(s, s) for s in reaction.symptoms)
        if grade >= 5:
            outcome = ("fatal", "Fatal")
        elif reaction.resolved_at is not None:
            outcome = ("resolved", "Resolved")
        else:
            outcome = ("ongoing", "Ongoing")
        serious = grade >= 3
        seed = (
            deid.pseudonym(self.secret, "reaction", reaction.id)
            if self.secret is not None
            else f"reaction:{reaction.id}"
        )
        return AdverseEvent(
            id=self._id("AdverseEvent", seed),
            actuality="actual",
            event=CodeableConcept(text=f"Infusion-related reaction (CTCAE v5.0 grade {grade}): {symptoms}"),
            subject=self._ref(self.patient_id),
            encounter=self._ref(self.encounter_id),
            date=self._time(reaction.onset_at),
            recordedDate=self._time(reaction.entered_at),
            seriousness=_concept(
                AE_SERIOUSNESS, "serious" if serious else "non-serious", "Serious" if serious else "Non-serious"
            ),
            severity=_concept(AE_SEVERITY, severity_for_grade(grade), severity_for_grade(grade).capitalize()),
            outcome=_concept(AE_OUTCOME, outcome[0], outcome[1]),
            suspectEntity=[AdverseEventSuspectEntity(instance=self._ref(self.medadmin_id))]
            if has_administration
            else None,
        )
