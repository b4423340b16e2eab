"""De-identified exports (HIPAA Safe Harbor, clinical.md §6c): nothing identifying leaves, keys are stable."""

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
from tests.db.test_export import Clinic, build_clinic

SECRET = b"test-secret-0123456789abcdef"
OTHER_SECRET = b"another-secret-9876543210zyxw"
FULL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
CLOCK_TIME = re.compile(r"\b\d{1,2}:\d{2}\b")


@pytest.fixture
def clinic(db) -> Clinic:  # type: ignore[no-untyped-def]
    return build_clinic(db)


def deid_file(clinic: Clinic, dataset: str, secret: bytes = SECRET, **filters) -> str:
    f = ExportFilters(clinic.filters.start, clinic.filters.end, include_entered_in_error=True, **filters)
    out = io.BytesIO()
    write_csv(clinic.db, dataset, f, out, deidentify=True, secret=secret, actor_role="admin")
    return out.getvalue().decode("utf-8-sig")


def deid_frame(clinic: Clinic, dataset: str, secret: bytes = SECRET) -> pd.DataFrame:
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
    if dataset in ("sessions", "audit"):
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


def test_refuses_without_a_secret(clinic: Clinic, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(deid.ENV_SECRET, raising=False)
    with pytest.raises(ChairsideError, match="CHAIRSIDE_DEID_SECRET"):
        iter_rows(clinic.db, "vitals", clinic.filters, deidentify=True)
    with pytest.raises(ChairsideError, match="secret"):
        write_csv(clinic.db, "sessions", clinic.filters, io.BytesIO(), deidentify=True)
    with pytest.raises(ChairsideError, match="secret"):
        preview(clinic.db, "sessions", clinic.filters, deidentify=True)
    with pytest.raises(ChairsideError, match="too short"):
        iter_rows(clinic.db, "vitals", clinic.filters, deidentify=True, secret="short")
    monkeypatch.setenv(deid.ENV_SECRET, SECRET.decode())
    from_env = [r["patient_key"] for r in iter_rows(clinic.db, "sessions", clinic.filters, deidentify=True)]
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
        )
        text = out.getvalue().decode("utf-8-sig")
        for secret in ("Elm Street", "010-9999", "Homebody", "MRN-HOME1"):
            assert secret not in text, (dataset, secret)
