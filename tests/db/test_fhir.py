"""FHIR R4 bundles (docs/clinical-basis.md §9): they validate, carry the LOINC/UCUM codes, and de-identify."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select

from db.models import InfusionSession, VitalSign
from infusion.demo.clinic import DemoOptions, load_demo
from infusion.errors import ChairsideError, NotFoundError
from infusion.exports.datasets import iter_rows
from infusion.exports.fhir import build_bundle, bundle_json, severity_for_grade
from tests.db.test_export import Clinic, another_session, build_clinic

SECRET = "fhir-test-secret-0123456789"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
#: R4 required value sets of the elements written (checked here: the library validates structure, not codes).
R4_CODES = {
    "Encounter.status": {
        "planned",
        "arrived",
        "triaged",
        "in-progress",
        "onleave",
        "finished",
        "cancelled",
        "entered-in-error",
        "unknown",
    },
    "MedicationAdministration.status": {
        "in-progress",
        "not-done",
        "on-hold",
        "completed",
        "entered-in-error",
        "stopped",
        "unknown",
    },
    "Observation.status": {
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    },
    "AdverseEvent.actuality": {"actual", "potential"},
    "AdverseEvent.severity": {"mild", "moderate", "severe"},
    "AdverseEvent.outcome": {"resolved", "recovering", "ongoing", "resolvedWithSequelae", "fatal", "unknown"},
    "AdverseEvent.seriousness": {"serious", "non-serious"},
    "Bundle.type": {
        "document",
        "message",
        "transaction",
        "transaction-response",
        "batch",
        "batch-response",
        "history",
        "searchset",
        "collection",
    },
}


@pytest.fixture
def clinic(db) -> Clinic:  # type: ignore[no-untyped-def]
    return build_clinic(db)


def resources(bundle: Bundle) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for entry in json.loads(bundle_json(bundle))["entry"]:
        out.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    return out


def codes(concept: dict) -> set[str]:
    return {c["code"] for c in concept.get("coding", [])}


def check_bundle(bundle: Bundle, *, deep: bool = True) -> dict:
    """Structural re-validation from JSON, closed references, and R4 code values."""
    text = bundle_json(bundle)
    data = json.loads(text)
    validated = Bundle.model_validate_json(text)  # the written JSON parses back into the R4 models
    assert len(validated.entry or []) == len(bundle.entry or [])
    if deep:
        assert validated.model_dump() == bundle.model_dump()
    assert data["type"] in R4_CODES["Bundle.type"]
    full_urls = {e["fullUrl"] for e in data["entry"]}
    assert len(full_urls) == len(data["entry"])
    for entry in data["entry"]:
        assert entry["fullUrl"] == f"urn:uuid:{entry['resource']['id']}"
    references = re.findall(r'"reference":\s*"(urn:uuid:[^"]+)"', json.dumps(data))
    assert set(references) <= full_urls, "every reference resolves inside the bundle"
    for r in (e["resource"] for e in data["entry"]):
        kind = r["resourceType"]
        if kind in ("Encounter", "MedicationAdministration", "Observation"):
            assert r["status"] in R4_CODES[f"{kind}.status"], r["status"]
        if kind == "AdverseEvent":
            assert r["actuality"] in R4_CODES["AdverseEvent.actuality"]
            for element in ("severity", "outcome", "seriousness"):
                assert codes(r[element]) <= R4_CODES[f"AdverseEvent.{element}"]
        if kind == "Observation":
            assert codes(r["category"][0]) == {"vital-signs"}
            assert "effectiveDateTime" in r and "subject" in r and "encounter" in r
    return data


def test_session_bundle_contents(clinic: Clinic) -> None:
    bundle = build_bundle(clinic.db, clinic.s1)
    check_bundle(bundle)
    by_type = resources(bundle)
    assert Counter({k: len(v) for k, v in by_type.items()}) == Counter(
        {
            "Patient": 1,
            "Encounter": 1,
            "MedicationAdministration": 1,
            "AdverseEvent": 1,
            # current readings: baseline (BP, HR, RR, T, SpO2, pain, weight + panel), fever and the correction
            # (BP, HR, RR, T, SpO2 + panel each); the superseded reading is left out
            "Observation": 8 + 6 + 6,
        }
    )
    urls = {e.resource.get_resource_type(): e.fullUrl for e in bundle.entry}

    patient = by_type["Patient"][0]
    assert patient["identifier"][0]["value"] == "MRN-ZQ-4471"
    assert patient["name"][0]["family"] == "Quixote-Marchbanks" and patient["birthDate"] == "1931-02-17"

    encounter = by_type["Encounter"][0]
    assert encounter["class"]["code"] == "AMB" and encounter["status"] == "finished"
    assert encounter["period"]["start"].endswith(("-05:00", "-04:00"))

    administration = by_type["MedicationAdministration"][0]
    assert administration["context"]["reference"] == urls["Encounter"]
    assert administration["subject"]["reference"] == urls["Patient"]
    period = administration["effectivePeriod"]
    assert period["start"] < period["end"]
    rate = administration["dosage"]["rateQuantity"]
    assert rate == {"value": 100.0, "unit": "mL/h", "system": UCUM, "code": "mL/h"}
    medication = administration["contained"][0]
    assert medication["batch"]["lotNumber"] == "LOT-QX-90817"
    assert administration["medicationReference"]["reference"] == "#" + medication["id"]
    assert "Rate steps" in administration["note"][0]["text"]

    observation_codes = Counter(c for o in by_type["Observation"] for c in codes(o["code"]))
    for code in ("85353-1", "85354-9", "8867-4", "9279-1", "8310-5", "2708-6", "59408-5", "72514-3", "29463-7"):
        assert observation_codes[code] >= 1, code
    bp = next(o for o in by_type["Observation"] if "85354-9" in codes(o["code"]))
    parts = {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in bp["component"]}
    assert set(parts) == {"8480-6", "8462-4"}
    assert {q["code"] for q in parts.values()} == {"mm[Hg]"} and {q["system"] for q in parts.values()} == {UCUM}
    temps = [o["valueQuantity"] for o in by_type["Observation"] if "8310-5" in codes(o["code"])]
    assert {t["code"] for t in temps} == {"Cel"} and temps[0]["value"] == pytest.approx(37.0)  # typed 98.6 °F
    weight = next(o["valueQuantity"] for o in by_type["Observation"] if "29463-7" in codes(o["code"]))
    assert weight["code"] == "kg" and weight["value"] == pytest.approx(69.99)
    spo2 = next(o for o in by_type["Observation"] if "2708-6" in codes(o["code"]))
    assert codes(spo2["code"]) == {"2708-6", "59408-5"} and spo2["valueQuantity"]["code"] == "%"
    pain = next(o for o in by_type["Observation"] if "72514-3" in codes(o["code"]))
    assert pain["valueQuantity"]["code"] == "{score}"
    panels = [o for o in by_type["Observation"] if "85353-1" in codes(o["code"])]
    assert len(panels) == 3 and all(p["hasMember"] for p in panels)
    statuses = Counter(o["status"] for o in by_type["Observation"])
    assert statuses["corrected"] >= 1 and set(statuses) == {"final", "corrected"}
    pulses = [o["valueQuantity"]["value"] for o in by_type["Observation"] if "8867-4" in codes(o["code"])]
    assert 92 in pulses and 88 not in pulses  # the correction, not the superseded value

    event = by_type["AdverseEvent"][0]  # the grade-3 entered-in-error reaction is left out
    assert codes(event["severity"]) == {"moderate"} and codes(event["outcome"]) == {"resolved"}
    assert event["suspectEntity"][0]["instance"]["reference"] == urls["MedicationAdministration"]
    assert event["subject"]["reference"] == urls["Patient"] and "grade 2" in event["event"]["text"]


def test_severity_from_grade() -> None:
    assert [severity_for_grade(g) for g in range(1, 6)] == ["mild", "moderate", "severe", "severe", "severe"]


def test_sessions_without_infusion(clinic: Clinic) -> None:
    deferred = resources(build_bundle(clinic.db, clinic.s2))
    assert "MedicationAdministration" not in deferred and "AdverseEvent" not in deferred
    assert deferred["Encounter"][0]["status"] == "finished" and deferred["Encounter"][0]["class"]["code"] == "HH"
    cancelled = resources(build_bundle(clinic.db, clinic.s3))
    assert cancelled["Encounter"][0]["status"] == "cancelled" and "period" not in cancelled["Encounter"][0]
    assert "Observation" not in cancelled
    with pytest.raises(NotFoundError):
        build_bundle(clinic.db, 999_999)


def test_deidentified_bundle(clinic: Clinic, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bundle = build_bundle(clinic.db, clinic.s1, deidentify=True, secret=SECRET)
    data = check_bundle(bundle)
    text = json.dumps(data).lower()
    for identifier in clinic.identifiers:
        assert identifier.lower() not in text, identifier
    assert "timestamp" not in data
    assert not re.search(r"\d{4}-\d{2}-\d{2}", text), "only years"
    for moment in re.findall(r'"(?:start|end|date|recordedDate|effectiveDateTime)":\s*"([^"]+)"', json.dumps(data)):
        assert re.fullmatch(r"\d{4}", moment), moment
    by_type = resources(bundle)
    assert "name" not in by_type["Patient"][0] and "birthDate" not in by_type["Patient"][0]
    assert "batch" not in by_type["MedicationAdministration"][0]["contained"][0]
    key = by_type["Patient"][0]["identifier"][0]["value"]
    csv_key = next(
        iter_rows(clinic.db, "sessions", clinic.filters, deidentify=True, secret=SECRET, actor_role="admin")
    )["patient_key"]
    assert key == csv_key, "the bundle and the CSV use the same pseudonym"
    # no Chairside record number in the ids: they are derived from keyed pseudonyms
    plain = build_bundle(clinic.db, clinic.s1)
    assert not {e.resource.id for e in plain.entry} & {e.resource.id for e in bundle.entry}
    monkeypatch.delenv("CHAIRSIDE_DEID_SECRET", raising=False)
    (clinic_dir := tmp_path / "not-a-dir").write_text("")
    monkeypatch.setenv("CHAIRSIDE_DEID_KEY_FILE", str(clinic_dir / "deid.key"))
    with pytest.raises(ChairsideError, match="CHAIRSIDE_DEID_SECRET"):  # no secret and no key can be made
        build_bundle(clinic.db, clinic.s1, deidentify=True)
    monkeypatch.setenv("CHAIRSIDE_DEID_KEY_FILE", str(tmp_path / "deid.key"))
    generated = build_bundle(clinic.db, clinic.s1, deidentify=True)  # the key file, made on first use
    generated_key = resources(generated)["Patient"][0]["identifier"][0]["value"]
    assert (
        generated_key != key
        and generated_key
        == next(iter_rows(clinic.db, "sessions", clinic.filters, deidentify=True, actor_role="admin"))["patient_key"]
    )


def test_bundle_ids_are_stable(clinic: Clinic) -> None:
    first, second = build_bundle(clinic.db, clinic.s1), build_bundle(clinic.db, clinic.s1)
    assert [e.fullUrl for e in first.entry] == [e.fullUrl for e in second.entry]


def test_every_demo_bundle_validates(db) -> None:  # type: ignore[no-untyped-def]
    load_demo(db, DemoOptions(sessions=40, days=14, seed=7))
    with db.reading() as s:
        ids = list(s.scalars(select(InfusionSession.id).order_by(InfusionSession.id)))
        with_vitals = set(s.scalars(select(VitalSign.session_id).where(VitalSign.status == "active")))
    assert len(ids) >= 40
    kinds: Counter[str] = Counter()
    for session_id in ids:
        for deidentify in (False, True):
            bundle = build_bundle(db, session_id, deidentify=deidentify, secret=SECRET)
            check_bundle(bundle, deep=False)
            kinds.update(e.resource.get_resource_type() for e in bundle.entry)
            if session_id in with_vitals:
                assert any(e.resource.get_resource_type() == "Observation" for e in bundle.entry)
    assert kinds["MedicationAdministration"] and kinds["Observation"] and kinds["Encounter"] == 2 * len(ids)


def test_timezone_offset_follows_the_clinic(clinic: Clinic) -> None:
    data = resources(build_bundle(clinic.db, clinic.s1))
    start = data["MedicationAdministration"][0]["effectivePeriod"]["start"]
    from datetime import datetime

    assert datetime.fromisoformat(start) == clinic.t0 + timedelta(minutes=22)


def _medication_status(clinic: Clinic, session_id: int) -> dict:
    bundle = build_bundle(clinic.db, session_id)
    check_bundle(bundle)
    return resources(bundle)["MedicationAdministration"][0]


def test_an_infusion_stopped_for_a_reaction_is_stopped_not_completed(clinic: Clinic) -> None:
    """Issue 11: FHIR R4 MedicationAdministration.status `stopped` = halted before it was all given."""
    from infusion.services import entries, sessions

    assert _medication_status(clinic, clinic.s1)["status"] == "completed"  # its reaction paused it only
    made = []
    for restarted in (False, True):
        t0 = clinic.t0 + timedelta(minutes=240 if restarted else 110)
        sid = another_session(clinic, t0, infusing=True)
        entries.record_reaction(
            clinic.db,
            clinic.nurse,
            sid,
            symptoms=["urticaria", "dyspnea"],
            grade=3,
            actions=["stopped", "medication_given"],
            medication_given="Diphenhydramine 50 mg IV",
            onset_at=t0 + timedelta(minutes=35),
            resolved_at=t0 + timedelta(minutes=55),
        )
        if restarted:  # stopped (the reaction paused it), treated, restarted at a lower rate: all given in the end
            entries.resume(clinic.db, clinic.nurse, sid, 50, at=t0 + timedelta(minutes=60))
        sessions.stop_iv(clinic.db, clinic.nurse, sid, expected_version=None, at=t0 + timedelta(minutes=90))
        sessions.discharge(clinic.db, clinic.nurse, sid, expected_version=None, early_reason="sent to ED")
        made.append(sid)
    stopped, resumed = (_medication_status(clinic, sid) for sid in made)
    assert stopped["status"] == "stopped"
    assert "reaction" in stopped["statusReason"][0]["text"] and "grade 3" in stopped["statusReason"][0]["text"]
    assert resumed["status"] == "completed" and "statusReason" not in resumed
    deidentified = resources(build_bundle(clinic.db, made[0], deidentify=True, secret=SECRET))
    assert deidentified["MedicationAdministration"][0]["status"] == "stopped"
