"""De-identified exports (HIPAA Safe Harbor, docs/clinical-basis.md §13): nothing identifying leaves, keys are stable."""

from __future__ import annotations

import hashlib
import hmac
import io
import re
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from infusion.errors import ChairsideError
from infusion.exports import deidentify as deid
from infusion.exports.datasets import ExportFilters, iter_rows, preview, write_csv
from infusion.exports.schema import DATASETS, column_names
from tests.db.test_export import Clinic, another_session, build_clinic

SECRET = b"test-secret-0123456789abcdef"
OTHER_SECRET = b"another-secret-9876543210zyxw"
FULL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
CLOCK_TIME = re.compile(r"\b\d{1,2}:\d{2}\b")


@pytest.fixture
def clinic(db) -> Clinic:  # type: ignore[no-untyped-def]
    return build_clinic(db)


def deid_file(clinic: Clinic, dataset: str, secret: bytes | None = SECRET, **filters) -> str:
    f = ExportFilters(clinic.filters.start, clinic.filters.end, include_entered_in_error=True, **filters)
    out = io.BytesIO()
    write_csv(clinic.db, dataset, f, out, deidentify=True, secret=secret, actor_role="admin")
    return out.getvalue().decode("utf-8-sig")


def deid_frame(clinic: Clinic, dataset: str, secret: bytes | None = SECRET) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(deid_file(clinic, dataset, secret)))


@pytest.mark.parametrize("dataset", DATASETS)
def test_no_identifier_of_the_test_patients_appears(clinic: Clinic, dataset: str) -> None:
    text = deid_file(clinic, dataset)
    assert text.count("\n") > 1, "the file has rows"
    lowered = text.lower()
    for identifier in clinic.identifiers:
        assert identifier.lower() not in lowered, f"{identifier!r} leaked into the de-identified {dataset} file"
    for year in ("1931", "1960"):  # birth years
        assert not re.search(rf"\b{year}\b", text), year
    assert not FULL_DATE.search(text), "a full date"
    assert not CLOCK_TIME.search(text), "a clock time"
    # the identified file does hold them (the test would prove nothing otherwise)
    out = io.BytesIO()
    write_csv(
        clinic.db,
        dataset,
        ExportFilters(clinic.filters.start, clinic.filters.end, include_entered_in_error=True),
        out,
        actor_role="admin",
    )
    identified = out.getvalue().decode("utf-8-sig")
    assert FULL_DATE.search(identified)
    if dataset in ("sessions", "audit", "course_ends"):
        assert "MRN-ZQ-4471" in identified


def test_removed_columns_are_absent() -> None:
    for dataset in DATASETS:
        names = set(column_names(dataset, True))
        assert not names & {
            "mrn",
            "patient_name",
            "birth_date",
            "lot_number",
            "note",
            "deferral_reason",
            "cancel_reason",
            "early_discharge_reason",
            "provider_name",
            "entered_by_name",
            "nurse_name",
            "user_name",
            "before",
            "after",
            "reason",
            "chair_name",
            "patient_id",
            "session_id",
            "other_symptom",
            "medication_given",
            "correction_reason",
            "not_obtained_reason",
        }


def test_same_patient_same_key_different_secret_different_key(clinic: Clinic) -> None:
    sessions = deid_frame(clinic, "sessions").set_index("time_reference")
    keys = list(deid_frame(clinic, "sessions")["patient_key"])
    assert keys[0] == keys[2] != keys[1]  # sessions 1 and 3 are patient 1, session 2 is patient 2
    assert all(re.fullmatch(r"P-[0-9a-f]{16}", k) for k in keys)
    assert list(sessions.index) == ["iv_start", "check_in", "scheduled"]
    again = list(deid_frame(clinic, "sessions")["patient_key"])
    assert again == keys, "stable across exports"
    vitals_keys = set(deid_frame(clinic, "vitals")["patient_key"])
    assert vitals_keys == {keys[0], keys[1]}, "the same key in every dataset"
    other = list(deid_frame(clinic, "sessions", OTHER_SECRET)["patient_key"])
    assert not set(other) & set(keys)
    assert other[0] == other[2]
    # the key is the documented HMAC, not derivable without the secret
    digest = hmac.new(SECRET, f"chairside:patient:{clinic.patient1}".encode(), hashlib.sha256).hexdigest()
    assert keys[0] == f"P-{digest[:16]}"
    assert keys[0] != f"P-{hashlib.sha256(f'chairside:patient:{clinic.patient1}'.encode()).hexdigest()[:16]}"


def test_dates_to_year_times_relative_to_iv_start_ages_capped(clinic: Clinic) -> None:
    frame = deid_frame(clinic, "sessions")
    s1, s2, s3 = (frame.iloc[i] for i in range(3))
    local_year = clinic.t0.astimezone(deid_zone()).year
    assert set(frame["session_year"]) <= {local_year, local_year + 1}
    assert s1["time_reference"] == "iv_start" and s1["iv_started_rel_min"] == 0
    assert s1["checked_in_rel_min"] == -22 and s1["iv_stopped_rel_min"] == 60
    assert s1["discharged_rel_min"] == 78 and s1["infusion_min"] == 60
    assert s2["time_reference"] == "check_in" and s2["checked_in_rel_min"] == 0 and s2["closed_rel_min"] == 10
    assert pd.isna(s2["iv_started_rel_min"])
    assert s3["time_reference"] == "scheduled" and s3["scheduled_rel_min"] == 0
    s2_day = (clinic.t0 + timedelta(minutes=25)).astimezone(deid_zone()).date()  # its scheduled day
    assert s1["age_years"] == "90+" and str(s2["age_years"]) == str(deid.age_on(date(1960, 5, 5), s2_day))
    assert s1["diagnosis"] == "Multiple sclerosis" and s2["diagnosis"] == "Other"
    reactions = deid_frame(clinic, "reactions")
    assert set(reactions["onset_rel_min"]) == {18, 28}  # onset 40 and 50 min after check-in, IV at +22
    vitals = deid_frame(clinic, "vitals")
    assert vitals["taken_rel_min"].min() == -22


def deid_zone():  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    from tests.db.test_export import TZ

    return ZoneInfo(TZ)


def test_refuses_a_short_secret_and_takes_the_variable(
    clinic: Clinic, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(deid.ENV_SECRET, raising=False)
    (tmp_path / "file").write_text("")
    monkeypatch.setenv(deid.ENV_KEY_FILE, str(tmp_path / "file" / "deid.key"))  # no key can be made here
    with pytest.raises(ChairsideError, match="CHAIRSIDE_DEID_SECRET"):
        iter_rows(clinic.db, "vitals", clinic.filters, deidentify=True, actor_role="admin")
    with pytest.raises(ChairsideError, match="secret"):
        write_csv(clinic.db, "sessions", clinic.filters, io.BytesIO(), deidentify=True, actor_role="admin")
    with pytest.raises(ChairsideError, match="secret"):
        preview(clinic.db, "sessions", clinic.filters, deidentify=True, actor_role="admin")
    with pytest.raises(ChairsideError, match="too short"):
        iter_rows(clinic.db, "vitals", clinic.filters, deidentify=True, secret="short", actor_role="admin")
    monkeypatch.setenv(deid.ENV_SECRET, SECRET.decode())
    from_env = [
        r["patient_key"] for r in iter_rows(clinic.db, "sessions", clinic.filters, deidentify=True, actor_role="admin")
    ]
    assert from_env == list(deid_frame(clinic, "sessions")["patient_key"])


def test_value_rules() -> None:
    assert deid.age_on(date(1931, 2, 17), date(2026, 2, 16)) == 94
    assert deid.age_on(date(1931, 2, 17), date(2026, 2, 17)) == 95
    assert deid.age_label(89) == "89" and deid.age_label(90) == "90+" and deid.age_label(None) is None
    ref = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert deid.relative_minutes(ref - timedelta(minutes=20, seconds=30), ref) == -20.5
    assert deid.relative_minutes(None, ref) is None and deid.relative_minutes(ref, None) is None
    assert deid.reference_time(None, ref, ref - timedelta(hours=1)) == (ref, "check_in")
    assert deid.within_vocabulary("CIDP", ("CIDP",)) == "CIDP"
    assert deid.within_vocabulary("Mrs Smith's sister", ("CIDP",)) == "Other"
    assert deid.within_vocabulary("", ("CIDP",)) is None
    assert deid.session_key(SECRET, 7).startswith("S-") and deid.patient_key(SECRET, 7).startswith("P-")
    assert deid.session_key(SECRET, 7)[2:] != deid.patient_key(SECRET, 7)[2:], "kinds are domain-separated"


def test_notice_says_what_was_removed() -> None:
    text = " ".join(deid.DEID_NOTICE)
    for phrase in (
        "names",
        "MRN",
        "dates of birth",
        "pseudonymous",
        "year",
        "IV start",
        "90+",
        "Free text",
        "lot numbers",
        "privacy officer",
    ):
        assert phrase in text, phrase


def test_a_home_patients_address_and_phone_never_reach_a_deidentified_export(db, monkeypatch):
    """Issue 6: the address is kept with the patient for home visits, not in de-identified files."""
    import io

    from infusion.accounts.actor import Actor
    from infusion.clock import utcnow
    from infusion.exports import datasets as export
    from infusion.services import sessions, setup
    from tests.helpers import ADMIN, ago, walk

    monkeypatch.setenv("CHAIRSIDE_DEID_SECRET", "a-long-enough-test-secret")
    nurse = Actor(None, "Test Nurse", "nurse")
    home = setup.add_chair(db, ADMIN, "Home visit", kind="home")
    patient = setup.add_patient(
        db,
        nurse,
        mrn="MRN-HOME1",
        given_name="Hana",
        family_name="Homebody",
        address="12 Elm Street, Springfield",
        phone="(555) 010-9999",
    )
    therapy = next(t for t in setup.list_therapies(db) if t.code == "natalizumab")
    sid = sessions.create_session(db, nurse, patient_id=patient.id, therapy_id=therapy.id, chair_id=home.id).id
    walk(db, nurse, sid, "discharged", t0=ago(200))
    today = utcnow().date()
    for dataset in ("sessions", "vitals", "reactions"):
        out = io.BytesIO()
        export.write_csv(
            db,
            dataset,
            export.ExportFilters(start=today.replace(day=1) if today.day > 2 else today, end=today),
            out,
            deidentify=True,
            actor_role="admin",
        )
        text = out.getvalue().decode("utf-8-sig")
        for secret in ("Elm Street", "010-9999", "Homebody", "MRN-HOME1"):
            assert secret not in text, (dataset, secret)


# Issue 11: no typed text, drop unless declared, a key that a new install makes itself -------------------------


@pytest.fixture
def key_path(tmp_path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """No variable; the generated key goes under the test's directory, never the runner's home."""
    monkeypatch.delenv(deid.ENV_SECRET, raising=False)
    path = tmp_path / "home" / ".chairside" / "deid.key"
    monkeypatch.setenv(deid.ENV_KEY_FILE, str(path))
    return path


def test_a_name_and_phone_typed_into_premedication_never_reach_a_deidentified_file(clinic: Clinic) -> None:
    """The leak of issue 11: free text typed as the premedication came out in the de-identified sessions file."""
    from infusion.services import entries

    t0 = clinic.t0 + timedelta(minutes=300)  # scheduled after the clinic's three: the last row
    sid = another_session(clinic, t0)
    entries.record_premedication(  # the old free-text form, misused as a note
        clinic.db,
        clinic.nurse,
        sid,
        drug="Benadryl per Ottoline Vexwright, call 716-555-0199",
        dose="25 mg - daughter Priya Vexwright",
        route="PO",
        given_at=t0 + timedelta(minutes=8),
    )
    entries.record_premedication(  # the coded form, with a name typed as the 'other' drug
        clinic.db,
        clinic.nurse,
        sid,
        drug_code="other",
        drug="Priya said (716) 555-0199",
        dose_value=8,
        dose_unit="mg",
        route="IV",
        given_at=t0 + timedelta(minutes=9),
    )
    for text in (deid_file(clinic, "sessions"), deid_file(clinic, "audit")):
        lowered = text.lower()
        for leaked in ("Vexwright", "Priya", "Ottoline", "555-0199", "716", "daughter", "Benadryl", "call"):
            assert leaked.lower() not in lowered, leaked
    row = deid_frame(clinic, "sessions").iloc[-1]
    assert row["premedication_coded"] == "other PO; other 8 mg IV"  # codes and numbers only
    assert "premedication_given" not in deid_frame(clinic, "sessions").columns
    identified = io.BytesIO()
    write_csv(clinic.db, "sessions", clinic.filters, identified, actor_role="admin")
    assert "Priya" in identified.getvalue().decode("utf-8-sig"), "the typed text stays in the identified file"


def test_a_column_without_a_declared_treatment_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop unless known safe: a new text column nobody declared cannot leak, and text cannot be plainly kept."""
    from infusion.exports import schema, shaping
    from infusion.exports.schema import Column, Deid

    careless = Column("visitor_note", "text", "Who came with the patient, as typed.")  # no deid=
    assert careless.deid is Deid.UNDECLARED and careless.identifier
    monkeypatch.setitem(schema.SCHEMAS, "sessions", (*schema.SESSIONS, careless))
    assert "visitor_note" in schema.column_names("sessions", False)
    assert "visitor_note" not in schema.column_names("sessions", True)
    assert "visitor_note" not in [r["column"] for r in schema.dictionary_rows("sessions", True)]
    assert "no de-identification treatment declared" in schema.render_csv("sessions", False)
    ctx_columns = schema.output_columns("sessions", True)
    record = {c.source: "Mrs Smith, 555-0100" for c in ctx_columns} | {"visitor_note": "Mrs Smith, 555-0100"}
    shapers = shaping._shapers(ctx_columns, SECRET, {})
    assert "visitor_note" not in {name for name, _, _ in shapers} and "visitor_note" in record
    with pytest.raises(ValueError, match="CODED"):
        Column("visitor_note", "text", "as typed", deid=Deid.KEEP)
    # every shipped column declares its treatment, and every kept text column is coded
    for dataset, columns in schema.SCHEMAS.items():
        for col in columns:
            if col.name == "visitor_note":
                continue
            assert col.deid is not Deid.UNDECLARED, (dataset, col.name)
            if col.type == "text" and col.deid not in (Deid.REMOVE, Deid.ONLY):
                assert col.deid in (Deid.CODED, Deid.VOCABULARY, Deid.PSEUDONYM, Deid.AGE_CAP, Deid.SITE), (
                    dataset,
                    col.name,
                )


def test_coded_columns_outside_their_list_become_other() -> None:
    from infusion.exports.schema import Column, Deid
    from infusion.exports.shaping import _deidentified

    symptoms = Column("symptoms", "text", "s", deid=Deid.CODED, vocabulary=("rash", "other"), separator=";")
    assert _deidentified(symptoms, "rash;Mrs Smith", None, SECRET) == "rash;Other"
    site = Column("iv_site", "text", "s", deid=Deid.CODED, vocabulary=("Left forearm",))
    assert _deidentified(site, "Left forearm", None, SECRET) == "Left forearm"
    assert _deidentified(site, "by Dr Jones' office", None, SECRET) == "Other"


def test_coded_premedication_round_trips(clinic: Clinic) -> None:
    from sqlalchemy import select

    from db.models import Premedication
    from infusion.clinical import premedication
    from infusion.errors import ValidationError
    from infusion.services import entries

    t0 = clinic.t0 + timedelta(minutes=300)  # scheduled after the clinic's three: the last row
    sid = another_session(clinic, t0)
    given = [
        ("methylprednisolone", 100, "mg", "IV"),
        ("diphenhydramine", 25.5, "mg", "PO"),
        ("acetaminophen", 1, "g", "PO"),
    ]
    for minute, (code, value, unit, route) in enumerate(given):
        entries.record_premedication(
            clinic.db,
            clinic.nurse,
            sid,
            drug_code=code,
            dose_value=value,
            dose_unit=unit,
            route=route,
            given_at=t0 + timedelta(minutes=6 + minute),
        )
    with clinic.db.reading() as s:
        rows = list(s.scalars(select(Premedication).where(Premedication.session_id == sid).order_by(Premedication.id)))
    assert [(r.drug_code, r.dose_value, r.dose_unit, r.route) for r in rows] == given
    assert [(r.drug, r.dose) for r in rows] == [  # the identified record reads as before
        ("Methylprednisolone", "100 mg"),
        ("Diphenhydramine (antihistamine)", "25.5 mg"),
        ("Acetaminophen (paracetamol)", "1 g"),
    ]
    expected = "methylprednisolone 100 mg IV; diphenhydramine 25.5 mg PO; acetaminophen 1 g PO"
    assert deid_frame(clinic, "sessions").iloc[-1]["premedication_coded"] == expected
    plain = io.BytesIO()
    write_csv(clinic.db, "sessions", clinic.filters, plain, actor_role="admin")
    last = pd.read_csv(io.BytesIO(plain.getvalue()), encoding="utf-8-sig").iloc[-1]
    assert last["premedication_coded"] == expected
    assert last["premedication_given"].startswith("Methylprednisolone 100 mg IV; ")
    for bad, field in (
        (dict(drug_code="Benadryl"), "drug_code"),
        (dict(drug_code="other", dose_value=5, dose_unit="mg"), "drug"),
        (dict(drug_code="acetaminophen", dose_value=-5, dose_unit="mg"), "dose_value"),
        (dict(drug_code="acetaminophen", dose_value=500, dose_unit="tablets"), "dose_unit"),
        (dict(drug_code="acetaminophen", dose_value=500), "dose_unit"),
        (dict(drug_code="acetaminophen", dose_value=500, dose_unit="mg", route="rectal"), "route"),
    ):
        with pytest.raises(ValidationError) as refused:
            entries.record_premedication(clinic.db, clinic.nurse, sid, **bad)  # type: ignore[arg-type]
        assert field in refused.value.problems, (bad, refused.value.problems)
    assert premedication.code_for(" benadryl ") == "diphenhydramine" and premedication.code_for("Benadryl 25") is None
    assert premedication.parse_dose("0.5 MG") == (0.5, "mg") and premedication.parse_dose("1,000 mg") is None
    assert premedication.coded_summary("Mrs Smith", 5, "spoons", "by mouth") == "other"


def test_the_key_is_generated_once_private_and_reused(clinic: Clinic, key_path) -> None:  # type: ignore[no-untyped-def]
    """Quick start without CHAIRSIDE_DEID_SECRET: the first de-identified export makes the key, later ones reuse it."""
    import os
    import stat

    assert not key_path.exists()
    first = list(deid_frame(clinic, "sessions", secret=None)["patient_key"])
    assert key_path.is_file()
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_path.parent.stat().st_mode) == 0o700
    key = key_path.read_text()
    assert len(key.strip()) == 64 and int(key, 16)  # 256 random bits, hex
    second = list(deid_frame(clinic, "sessions", secret=None)["patient_key"])
    assert key_path.read_text() == key, "reused, not regenerated"
    assert first == second and first[0] == first[2] != first[1], "pseudonyms stable across two exports"
    assert first == list(deid_frame(clinic, "sessions", secret=key.strip().encode())["patient_key"])
    assert not list(key_path.parent.glob(".*.new")), "no draft left behind"
    # the variable, when set, wins over the file
    os.environ[deid.ENV_SECRET] = SECRET.decode()
    try:
        assert deid.resolve_secret() == SECRET
    finally:
        del os.environ[deid.ENV_SECRET]
    # a key other users can read is refused rather than used
    key_path.chmod(0o644)
    with pytest.raises(ChairsideError, match="chmod 600"):
        deid.resolve_secret()
    key_path.chmod(0o600)
    assert deid.resolve_secret() == key.strip().encode()


def test_a_key_that_cannot_be_made_names_both_ways_out(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(deid.ENV_SECRET, raising=False)
    (tmp_path / "file").write_text("")
    monkeypatch.setenv(deid.ENV_KEY_FILE, str(tmp_path / "file" / "deid.key"))
    with pytest.raises(ChairsideError, match=f"{deid.ENV_KEY_FILE}.*{deid.ENV_SECRET}"):
        deid.resolve_secret()
    monkeypatch.delenv(deid.ENV_KEY_FILE)
    assert deid.key_file() == deid.DEFAULT_KEY_FILE.expanduser()
