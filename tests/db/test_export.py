"""Quality exports (issue 4): round trips on SQLite and PostgreSQL, corrections, injection, format, schema.

`build_clinic` is shared with the de-identification, FHIR and CLI tests: a clinic
in °F/lb and New York time with two patients whose identifiers are distinctive
enough to search a whole file for, and free text that starts with formula
characters.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import event, func, select, update

from db.engine import Database
from db.models import AuditEvent, InfusionSession, Premedication, Reaction, Therapy, VitalSign
from infusion.accounts.actor import Actor
from infusion.accounts.auth import add_user
from infusion.clinical.vitals import VitalsEntry
from infusion.clock import utcnow
from infusion.errors import ChairsideError, PermissionDenied, ValidationError
from infusion.exports.datasets import (
    DANGEROUS_LEADING,
    ExportFilters,
    count_rows,
    format_cell,
    iter_rows,
    preview,
    suggested_filename,
    write_csv,
)
from infusion.exports.schema import (
    DATASETS,
    DOCS_DIR,
    SCHEMA_VERSION,
    SCHEMAS,
    Deid,
    column_names,
    dictionary_rows,
    output_columns,
    render_csv,
    render_markdown,
)
from infusion.services import corrections, courses, entries, sessions
from infusion.services.setup import add_chair, add_patient, update_clinic

ADMIN = Actor(None, "Test Admin", "admin")
TZ = "America/New_York"
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")


@dataclass
class Clinic:
    """What `build_clinic` made: ids, the actors, and every identifier that must not leak."""

    db: Database
    nurse: Actor
    nurse2: Actor
    s1: int  # natalizumab, discharged, corrected vitals/IV start, one reaction + one entered in error
    s2: int  # ocrelizumab IV at home, deferred after check-in (no IV start)
    s3: int  # natalizumab again for patient 1, cancelled before check-in
    patient1: int
    patient2: int
    natalizumab: int
    chair1: int
    t0: datetime
    filters: ExportFilters
    identifiers: list[str] = field(default_factory=list)


def _entry(**values: float | str | None) -> VitalsEntry:
    """A normal set typed in the clinic's display units (°F, lb)."""
    base: dict = dict(systolic=124, diastolic=78, pulse=72, resp_rate=16, temperature=98.6, spo2=98, pain=0)
    base.update(values)
    return VitalsEntry(**base)


def _therapy(db: Database, code: str) -> int:
    with db.reading() as s:
        return s.scalars(select(Therapy.id).where(Therapy.code == code)).one()


def build_clinic(db: Database) -> Clinic:
    update_clinic(
        db,
        ADMIN,
        name="Lakeside MS Infusion Center",
        timezone=TZ,
        temperature_unit="F",
        weight_unit="lb",
        phone="(716) 555-0142",
    )
    u1 = add_user(db, ADMIN, username="nora.nightingale", display_name="Nora Nightingale", role="nurse")
    u2 = add_user(db, ADMIN, username="nell.second", display_name="Nell Secondsworth", role="nurse")
    nurse, nurse2 = Actor(u1.id, u1.display_name, "nurse"), Actor(u2.id, u2.display_name, "nurse")
    chair1 = add_chair(db, ADMIN, "Chair 1").id
    home = add_chair(db, ADMIN, "Home - 12 Elm Street", kind="home").id
    p1 = add_patient(
        db,
        nurse,
        mrn="MRN-ZQ-4471",
        given_name="Zebulon",
        family_name="Quixote-Marchbanks",
        birth_date=date(1931, 2, 17),
        diagnosis="Multiple sclerosis",
        allergies="Penicillin",
    ).id
    p2 = add_patient(
        db,
        nurse,
        mrn="MRN-OV-9902",
        given_name="Ottoline",
        family_name="Vexwright",
        birth_date=date(1960, 5, 5),
        diagnosis="Lives at 12 Elm Street",
    ).id
    nat, ocr = _therapy(db, "natalizumab"), _therapy(db, "ocrelizumab_iv")
    t0 = (utcnow() - timedelta(hours=6)).replace(microsecond=0)

    s1 = sessions.create_session(
        db,
        nurse,
        patient_id=p1,
        therapy_id=nat,
        chair_id=chair1,
        dose=300,
        scheduled_at=t0 - timedelta(minutes=10),
        walk_in=False,
    ).id
    sessions.check_in(
        db,
        nurse,
        s1,
        _entry(weight=154.3, note='=HYPERLINK("http://evil.example","Zebulon")'),
        expected_version=None,
        at=t0,
    )
    sessions.proceed(db, nurse, s1, expected_version=None, at=t0 + timedelta(minutes=5))
    sessions.confirm_program(db, nurse, s1, authorization_ref="TOUCH-AUTH-553")
    entries.record_premedication(
        db, nurse, s1, drug="Diphenhydramine", dose="25 mg", route="PO", given_at=t0 + timedelta(minutes=10)
    )
    sessions.start_iv(
        db,
        nurse,
        s1,
        expected_version=None,
        site="Left forearm",
        gauge=22,
        attempts=2,
        lot_number="LOT-QX-90817",
        rate_ml_h=100,
        at=t0 + timedelta(minutes=20),
    )
    entries.record_vitals(
        db,
        nurse,
        s1,
        _entry(
            temperature=100.9, pain=None, provider_notified=True, provider_name="Dr. Quentin Blake", note="+1 rechecked"
        ),
        taken_at=t0 + timedelta(minutes=35),
        acknowledge_flags=True,
    )
    entries.record_reaction(
        db,
        nurse,
        s1,
        symptoms=["rash", "other"],
        other_text="@Itchy scalp",
        grade=2,
        actions=["paused", "medication_given"],
        medication_given="-Cetirizine 10 mg PO",
        onset_at=t0 + timedelta(minutes=40),
        resolved_at=t0 + timedelta(minutes=70),
        provider_notified=True,
        provider_name="Dr. Quentin Blake",
        note="=SUM(A1:A9) Zebulon itchy",
    )
    wrong = entries.record_reaction(
        db,
        nurse,
        s1,
        symptoms=["headache"],
        grade=3,
        actions=["observed"],
        onset_at=t0 + timedelta(minutes=50),
        resolved_at=t0 + timedelta(minutes=55),
    )
    corrections.mark_entered_in_error(db, nurse, "reaction", wrong.id, "-wrong patient (Ottoline)")
    typo = entries.record_vitals(
        db, nurse, s1, _entry(pulse=88, temperature=98.8, pain=None), taken_at=t0 + timedelta(minutes=60)
    )
    corrections.correct_vitals(
        db, nurse, typo.id, _entry(pulse=92, temperature=98.8, pain=None), reason="typo: 92 not 88"
    )
    corrections.correct_session_time(
        db, nurse, s1, "iv_started_at", t0 + timedelta(minutes=22), reason="pump clock", expected_version=None
    )
    sessions.stop_iv(db, nurse, s1, expected_version=None, at=t0 + timedelta(minutes=82))
    sessions.discharge(
        db, nurse, s1, expected_version=None, at=t0 + timedelta(minutes=100), early_reason="-left early for the bus"
    )

    s2 = sessions.create_session(
        db, nurse2, patient_id=p2, therapy_id=ocr, chair_id=home, dose=300, scheduled_at=t0 + timedelta(minutes=25)
    ).id
    sessions.check_in(
        db,
        nurse2,
        s2,
        _entry(temperature=101.1),
        expected_version=None,
        at=t0 + timedelta(minutes=30),
        acknowledge_flags=True,
    )
    sessions.defer(
        db, nurse2, s2, "@fever 38.4, Ottoline to call back", expected_version=None, at=t0 + timedelta(minutes=40)
    )

    s3 = sessions.create_session(
        db,
        nurse,
        patient_id=p1,
        therapy_id=nat,
        chair_id=chair1,
        dose=300,
        scheduled_at=t0 + timedelta(minutes=200),
        walk_in=False,
    ).id
    sessions.cancel(db, nurse, s3, "=cancelled by Zebulon Quixote-Marchbanks", expected_version=None)
    # patient 1's natalizumab course ended (the course_ends dataset), with identifying free text in the note
    courses.end_course(db, ADMIN, p1, nat, "transferred", "=Zebulon moved in with his daughter, 12 Elm Street")

    today = utcnow().astimezone(ZoneInfo(TZ)).date()
    filters = ExportFilters(today - timedelta(days=3), today + timedelta(days=1))
    identifiers = [
        "Zebulon",
        "Quixote",
        "Marchbanks",
        "Ottoline",
        "Vexwright",
        "MRN-ZQ-4471",
        "MRN-OV-9902",
        "1931-02-17",
        "1960-05-05",
        "LOT-QX-90817",
        "TOUCH-AUTH-553",
        "Elm Street",
        "Quentin",
        "Nightingale",
        "Secondsworth",
        "Penicillin",
        "HYPERLINK",
        "Itchy",
        "Cetirizine",
        "bus",
        "pump clock",
        "typo",
        "555-0142",
    ]
    return Clinic(db, nurse, nurse2, s1, s2, s3, p1, p2, nat, chair1, t0, filters, identifiers)


@pytest.fixture
def clinic(db: Database) -> Clinic:
    return build_clinic(db)


def another_session(clinic: Clinic, t0: datetime, *, infusing: bool = False) -> int:
    """Patient 2 on natalizumab in chair 1: checked in at t0 (°F, the clinic's unit), ready +5 min (TOUCH done),
    IV started +20 min when `infusing`."""
    sid = sessions.create_session(
        clinic.db,
        clinic.nurse,
        patient_id=clinic.patient2,
        therapy_id=clinic.natalizumab,
        chair_id=clinic.chair1,
        dose=300,
        scheduled_at=t0,
    ).id
    sessions.check_in(clinic.db, clinic.nurse, sid, _entry(), expected_version=None, at=t0)
    sessions.proceed(clinic.db, clinic.nurse, sid, expected_version=None, at=t0 + timedelta(minutes=5))
    sessions.confirm_program(clinic.db, clinic.nurse, sid, authorization_ref="TOUCH-1")
    if infusing:
        sessions.start_iv(
            clinic.db,
            clinic.nurse,
            sid,
            expected_version=None,
            site="Left forearm",
            gauge=22,
            attempts=1,
            lot_number="LOT-1",
            rate_ml_h=100,
            at=t0 + timedelta(minutes=20),
        )
    return sid


def export_text(db: Database, dataset: str, filters: ExportFilters, **kwargs) -> str:
    out = io.BytesIO()
    write_csv(db, dataset, filters, out, actor_role=kwargs.pop("actor_role", "quality"), **kwargs)
    raw = out.getvalue()
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 byte-order mark"
    return raw.decode("utf-8-sig")


def read_export(db: Database, dataset: str, filters: ExportFilters, **kwargs) -> pd.DataFrame:
    """Through pandas, the way a quality analyst would read the file."""
    out = io.BytesIO()
    write_csv(db, dataset, filters, out, actor_role=kwargs.pop("actor_role", "quality"), **kwargs)
    out.seek(0)
    return pd.read_csv(out, encoding="utf-8-sig", keep_default_na=True)


def cells(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def same(exported: object, stored: object) -> bool:
    if stored is None:
        return exported is None or (isinstance(exported, float) and pd.isna(exported)) or exported == ""
    if isinstance(stored, datetime):
        return pd.Timestamp(exported).to_pydatetime() == stored.replace(microsecond=0)
    if isinstance(stored, float):
        return abs(float(exported) - stored) < 1e-9  # type: ignore[arg-type]
    if isinstance(stored, bool):
        return exported in (stored, str(stored).lower())
    if isinstance(stored, int):
        return int(exported) == stored  # type: ignore[call-overload]
    return exported == stored


# Round trips -----------------------------------------------------------------------------------


def test_vitals_round_trip_equals_database(clinic: Clinic) -> None:
    db = clinic.db
    frame = read_export(db, "vitals", clinic.filters)
    assert list(frame.columns) == column_names("vitals", False)
    with db.reading() as s:
        stored = list(s.scalars(select(VitalSign).where(VitalSign.status == "active").order_by(VitalSign.id)))
        patients = dict(s.execute(select(InfusionSession.id, InfusionSession.patient_id)).all())
    assert sorted(frame["vital_id"]) == [v.id for v in stored]
    pairs = {
        "systolic_mmhg": "systolic",
        "diastolic_mmhg": "diastolic",
        "pulse_per_min": "pulse",
        "resp_rate_per_min": "resp_rate",
        "temperature_c": "temperature_c",
        "spo2_pct": "spo2",
        "pain_score": "pain",
        "weight_kg": "weight_kg",
        "news2": "news2",
        "phase": "phase",
        "flag_count": "flag_count",
        "entered_by_id": "entered_by_id",
        "provider_name": "provider_name",
    }
    for v in stored:
        row = frame[frame["vital_id"] == v.id].iloc[0]
        assert row["session_id"] == v.session_id and row["patient_id"] == patients[v.session_id]
        for column, attribute in pairs.items():
            assert same(None if pd.isna(row[column]) else row[column], getattr(v, attribute)), (column, v.id)
        assert pd.to_datetime(row["taken_at"], utc=True).to_pydatetime() == v.taken_at.replace(microsecond=0)
        assert bool(row["corrected"]) is (v.replaces_id is not None)
        assert bool(row["entered_in_error"]) is False
    # SI whatever the display units: 98.6 °F and 154.3 lb were typed
    baseline = frame[frame["phase"] == "pre"].iloc[0]
    assert baseline["temperature_c"] == pytest.approx(37.0) and baseline["weight_kg"] == pytest.approx(69.99)
    fever = frame[frame["flags"].fillna("").str.contains("temp_high") & (frame["session_id"] == clinic.s1)]
    assert len(fever) == 1 and fever.iloc[0]["temperature_c"] == pytest.approx(38.28)


def test_sessions_round_trip_equals_database(clinic: Clinic) -> None:
    db = clinic.db
    frame = read_export(db, "sessions", clinic.filters).set_index("session_id")
    assert list(frame.index) == [clinic.s1, clinic.s2, clinic.s3]  # scheduled order
    with db.reading() as s:
        rows = {r.id: r for r in s.scalars(select(InfusionSession))}
        active = dict(
            s.execute(
                select(Reaction.session_id, func.count())
                .where(Reaction.status == "active")
                .group_by(Reaction.session_id)
            ).all()
        )
        premed = s.scalars(select(Premedication).where(Premedication.session_id == clinic.s1)).one()
    for sid, row in rows.items():
        got = frame.loc[sid]
        for column in (
            "status",
            "dose",
            "dose_unit",
            "infusion_number",
            "iv_site",
            "iv_gauge",
            "iv_attempts",
            "lot_number",
            "deferral_reason",
            "cancel_reason",
        ):
            value = None if pd.isna(got[column]) else got[column]
            expected = getattr(row, column)
            if isinstance(value, str) and expected and value != expected:
                assert value == "'" + expected, column  # neutralised, see the injection test
            else:
                assert same(value, expected), (sid, column)
        for column in ("checked_in_at", "iv_started_at", "iv_stopped_at", "discharged_at", "scheduled_at"):
            stored = getattr(row, column)
            if stored is None:
                assert pd.isna(got[column])
            else:
                assert ISO_WITH_OFFSET.match(got[column]), got[column]
                assert pd.to_datetime(got[column], utc=True).to_pydatetime() == stored.replace(microsecond=0)
        assert got["reaction_count"] == active.get(sid, 0)
    s1 = frame.loc[clinic.s1]
    assert s1["mrn"] == "MRN-ZQ-4471" and s1["patient_name"] == "Quixote-Marchbanks, Zebulon"
    assert s1["age_years"] >= 95 and s1["nurse_id"] == clinic.nurse.user_id
    assert s1["nurse_name"] == "Nora Nightingale"
    assert s1["worst_grade"] == 2 and s1["reaction_count"] == 1  # the grade 3 was entered in error
    assert s1["premedication_given"] == f"{premed.drug} {premed.dose} {premed.route}"
    assert s1["premedication_coded"] == "diphenhydramine 25 mg PO"  # "Diphenhydramine", "25 mg" typed
    assert (premed.drug_code, premed.dose_value, premed.dose_unit) == ("diphenhydramine", 25.0, "mg")
    assert bool(s1["program_check_done"]) and s1["program"] == "TOUCH"
    assert s1["infusion_min"] == pytest.approx(60.0) and s1["observation_min"] == pytest.approx(18.0)
    assert s1["chair_min"] == pytest.approx(100.0) and s1["start_rate_ml_h"] == 100
    assert bool(s1["corrected"]) and not bool(frame.loc[clinic.s2, "corrected"])
    assert frame.loc[clinic.s2, "nurse_id"] == clinic.nurse2.user_id
    assert frame.loc[clinic.s2, "chair_kind"] == "home" and pd.isna(frame.loc[clinic.s2, "iv_started_at"])
    assert pd.isna(frame.loc[clinic.s2, "program_check_done"])  # ocrelizumab has no program
    assert frame.loc[clinic.s3, "infusion_number"] == 2


def test_reactions_round_trip_and_entered_in_error(clinic: Clinic) -> None:
    db = clinic.db
    frame = read_export(db, "reactions", clinic.filters)
    with db.reading() as s:
        active = s.scalars(select(Reaction).where(Reaction.status == "active")).one()
        wrong = s.scalars(select(Reaction).where(Reaction.status == "entered_in_error")).one()
    assert list(frame["reaction_id"]) == [active.id]
    got = frame.iloc[0]
    assert got["grade"] == 2 and got["symptoms"] == "rash;other" and got["actions"] == "paused;medication_given"
    assert got["outcome"] == "resolved" and got["duration_min"] == pytest.approx(30.0)
    assert got["phase"] == "infusion" and not bool(got["entered_in_error"])
    assert pd.to_datetime(got["onset_at"], utc=True).to_pydatetime() == active.onset_at

    included = read_export(
        db, "reactions", ExportFilters(clinic.filters.start, clinic.filters.end, include_entered_in_error=True)
    )
    assert sorted(included["reaction_id"]) == sorted([active.id, wrong.id])
    flagged = included.set_index("reaction_id")
    assert bool(flagged.loc[wrong.id, "entered_in_error"]) and not bool(flagged.loc[active.id, "entered_in_error"])
    assert flagged.loc[wrong.id, "correction_reason"] == "'-wrong patient (Ottoline)"


def test_corrections_show_the_current_value_only(clinic: Clinic) -> None:
    db = clinic.db
    frame = read_export(db, "vitals", clinic.filters)
    with db.reading() as s:
        old = s.scalars(select(VitalSign).where(VitalSign.status == "corrected")).one()
        new = s.scalars(select(VitalSign).where(VitalSign.replaces_id == old.id)).one()
    assert old.id not in set(frame["vital_id"])
    row = frame[frame["vital_id"] == new.id].iloc[0]
    assert row["pulse_per_min"] == 92 and bool(row["corrected"]) and row["correction_reason"] == "typo: 92 not 88"
    assert frame["corrected"].sum() == 1
    # the corrected IV start moved the phase of the vitals with it and the session's reference
    sessions_frame = read_export(db, "sessions", clinic.filters).set_index("session_id")
    assert pd.to_datetime(
        sessions_frame.loc[clinic.s1, "iv_started_at"], utc=True
    ).to_pydatetime() == clinic.t0 + timedelta(minutes=22)


def test_audit_round_trip_and_role(clinic: Clinic) -> None:
    db = clinic.db
    frame = read_export(db, "audit", clinic.filters, actor_role="admin")
    with db.reading() as s:
        stored = list(s.scalars(select(AuditEvent).order_by(AuditEvent.at, AuditEvent.id)))
    assert list(frame["audit_id"]) == [a.id for a in stored]
    assert list(frame["action"]) == [a.action for a in stored]
    assert "entered_in_error" in set(frame["action"]) and "correct" in set(frame["action"])
    for role in (None, "nurse", "charge_nurse", "manager"):
        with pytest.raises(PermissionDenied, match="quality and admin"):
            iter_rows(db, "audit", clinic.filters, actor_role=role)
        with pytest.raises(ChairsideError):
            write_csv(db, "audit", clinic.filters, io.BytesIO(), actor_role=role)
    assert count_rows(db, "audit", clinic.filters, actor_role="quality") == len(stored)


# Format -----------------------------------------------------------------------------------------


def test_bom_crlf_header_and_timestamps_with_offset(clinic: Clinic) -> None:
    out = io.BytesIO()
    n = write_csv(clinic.db, "sessions", clinic.filters, out, actor_role="admin")
    raw = out.getvalue()
    assert raw[:3] == b"\xef\xbb\xbf" and n == 3
    assert raw.count(b"\r\n") >= 4 and raw.decode("utf-8-sig").splitlines()[0] == ",".join(
        column_names("sessions", False)
    )
    rows = cells(raw.decode("utf-8-sig"))
    datetime_columns = [c.name for c in output_columns("sessions", False) if c.type == "datetime"]
    seen = 0
    for row in rows:
        for column in datetime_columns:
            if row[column]:
                assert ISO_WITH_OFFSET.match(row[column]), row[column]
                assert row[column][-6:] in ("-05:00", "-04:00")  # New York, with its offset
                seen += 1
    assert seen >= 8
    # a text stream works too (UTF-8), with the same bytes
    text_out = io.StringIO(newline="")
    write_csv(clinic.db, "sessions", clinic.filters, text_out, actor_role="admin")
    assert text_out.getvalue().encode("utf-8") == raw


def test_formula_injection_is_neutralised_and_numbers_stay_numbers(clinic: Clinic) -> None:
    db = clinic.db
    with db.writing() as s:  # services strip leading whitespace, so put tab/CR notes in directly
        ids = list(s.scalars(select(VitalSign.id).where(VitalSign.status == "active").order_by(VitalSign.id)))
        s.execute(update(VitalSign).where(VitalSign.id == ids[2]).values(note="\tTabbed =1+1"))
        s.execute(update(VitalSign).where(VitalSign.id == ids[3]).values(note="\rCR =1+1"))
    vitals = {int(r["vital_id"]): r for r in cells(export_text(db, "vitals", clinic.filters))}
    assert vitals[ids[0]]["note"] == "'" + '=HYPERLINK("http://evil.example","Zebulon")'
    assert vitals[ids[2]]["note"] == "'\tTabbed =1+1"
    assert vitals[ids[3]]["note"] == "'\rCR =1+1"
    assert [r["note"] for r in vitals.values() if r["note"].startswith("'+")] == ["'+1 rechecked"]
    reaction = cells(export_text(db, "reactions", clinic.filters))[0]
    assert reaction["other_symptom"] == "'@Itchy scalp"
    assert reaction["medication_given"] == "'-Cetirizine 10 mg PO"
    assert reaction["note"] == "'=SUM(A1:A9) Zebulon itchy"
    by_id = {int(r["session_id"]): r for r in cells(export_text(db, "sessions", clinic.filters))}
    assert by_id[clinic.s1]["early_discharge_reason"] == "'-left early for the bus"
    assert by_id[clinic.s2]["deferral_reason"] == "'@fever 38.4, Ottoline to call back"
    assert by_id[clinic.s3]["cancel_reason"] == "'=cancelled by Zebulon Quixote-Marchbanks"
    # no text cell anywhere starts with a formula character
    for dataset in DATASETS:
        for row in cells(export_text(db, dataset, clinic.filters, actor_role="admin")):
            assert not any(value[:1] in DANGEROUS_LEADING for value in row.values() if value), row
    # numeric columns are never quoted: relative minutes before IV start are negative numbers
    deid_rows = cells(export_text(db, "vitals", clinic.filters, deidentify=True, secret=b"s" * 32))
    negatives = [r["taken_rel_min"] for r in deid_rows if r["taken_rel_min"].startswith("-")]
    assert negatives and all(float(v) < 0 for v in negatives)
    frame = read_export(db, "vitals", clinic.filters, deidentify=True, secret=b"s" * 32)
    assert frame["taken_rel_min"].dtype.kind == "f" and (frame["taken_rel_min"] < 0).any()


@pytest.mark.parametrize("lead", list(DANGEROUS_LEADING))
def test_format_cell_neutralises_text_not_numbers(lead: str) -> None:
    assert format_cell(f"{lead}SUM(1,2)") == f"'{lead}SUM(1,2)"
    assert format_cell("plain") == "plain" and format_cell("") == ""
    assert format_cell(-12.5) == -12.5 and format_cell(-3) == -3
    assert format_cell(True) == "true" and format_cell(None) == ""
    assert format_cell(["a"]) == '["a"]'


# Filters, preview, streaming ---------------------------------------------------------------------


def test_filters_therapy_chair_nurse_and_dates(clinic: Clinic) -> None:
    db, f = clinic.db, clinic.filters

    def ids(**kwargs) -> list[int]:
        filters = ExportFilters(kwargs.pop("start", f.start), kwargs.pop("end", f.end), **kwargs)
        return [row["session_id"] for row in iter_rows(db, "sessions", filters, actor_role="admin")]

    assert ids(therapy_ids=[clinic.natalizumab]) == [clinic.s1, clinic.s3]
    assert ids(chair_ids=[clinic.chair1]) == [clinic.s1, clinic.s3]
    assert ids(nurse_ids=[clinic.nurse2.user_id]) == [clinic.s2]
    assert ids(nurse_ids=[clinic.nurse.user_id]) == [clinic.s1, clinic.s3]
    assert ids(start=f.start - timedelta(days=30), end=f.start - timedelta(days=10)) == []
    vitals = [
        r["session_id"]
        for r in iter_rows(
            db, "vitals", ExportFilters(f.start, f.end, nurse_ids=[clinic.nurse2.user_id]), actor_role="admin"
        )
    ]
    assert set(vitals) == {clinic.s2}
    audit = list(
        iter_rows(db, "audit", ExportFilters(f.start, f.end, nurse_ids=[clinic.nurse2.user_id]), actor_role="quality")
    )
    assert audit and {r["user_id"] for r in audit} == {clinic.nurse2.user_id}
    with pytest.raises(ValidationError, match="before the start date"):
        ExportFilters(date(2026, 6, 30), date(2026, 1, 1))
    with pytest.raises(ValidationError, match="Unknown dataset"):
        iter_rows(db, "patients", f, actor_role="admin")
    empty = io.BytesIO()
    assert write_csv(db, "vitals", ExportFilters(date(2001, 1, 1), date(2001, 1, 2)), empty, actor_role="admin") == 0
    assert empty.getvalue().decode("utf-8-sig").strip() == ",".join(column_names("vitals", False))


def test_preview_rows_count_and_dtypes(clinic: Clinic) -> None:
    db = clinic.db
    frame, total = preview(db, "vitals", clinic.filters, n=2, actor_role="admin")
    assert (
        total
        == count_rows(db, "vitals", clinic.filters, actor_role="admin")
        == len(list(iter_rows(db, "vitals", clinic.filters, actor_role="admin")))
    )
    assert len(frame) == 2 and list(frame.columns) == column_names("vitals", False)
    assert str(frame["systolic_mmhg"].dtype) == "Int64" and str(frame["temperature_c"].dtype) == "Float64"
    assert str(frame["corrected"].dtype) == "boolean" and str(frame["taken_at"].dtype).startswith("datetime64[us")
    assert frame["phase"].dtype == "str"
    deid_frame, deid_total = preview(
        db, "sessions", clinic.filters, deidentify=True, secret="x" * 20, n=5, actor_role="admin"
    )
    assert deid_total == 3 and list(deid_frame.columns) == column_names("sessions", True)
    assert suggested_filename("vitals", clinic.filters, True).endswith(f"_deidentified_schema-v{SCHEMA_VERSION}.csv")


def test_streams_from_a_server_side_cursor_in_chunks(clinic: Clinic) -> None:
    db = clinic.db
    seen: list[tuple[dict, object]] = []

    def spy(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        seen.append((dict(context.execution_options), cursor))

    event.listen(db.engine, "before_cursor_execute", spy)
    try:
        one_by_one = list(iter_rows(db, "sessions", clinic.filters, chunk_rows=1, actor_role="admin"))
    finally:
        event.remove(db.engine, "before_cursor_execute", spy)
    streamed = [(options, cursor) for options, cursor in seen if options.get("stream_results")]
    assert len(streamed) == 1 and streamed[0][0].get("yield_per") == 1
    if db.dialect == "postgresql":
        assert getattr(streamed[0][1], "name", None), "psycopg server-side (named) cursor"
    assert one_by_one == list(iter_rows(db, "sessions", clinic.filters, actor_role="admin"))
    # closing early releases the connection (the pool has it back)
    rows = iter_rows(db, "vitals", clinic.filters, chunk_rows=1, actor_role="admin")
    next(rows)
    rows.close()
    assert db.engine.pool.checkedout() == 0


def test_text_output_must_be_utf8(clinic: Clinic, tmp_path) -> None:
    with open(tmp_path / "latin.csv", "w", encoding="latin-1", newline="") as fh:
        with pytest.raises(ChairsideError, match="UTF-8"):
            write_csv(clinic.db, "sessions", clinic.filters, fh, actor_role="admin")
    with open(tmp_path / "sig.csv", "w", encoding="utf-8-sig", newline="") as fh:
        write_csv(clinic.db, "sessions", clinic.filters, fh, actor_role="admin")
    assert (tmp_path / "sig.csv").read_bytes().count(b"\xef\xbb\xbf") == 1


# Schema and dictionary ------------------------------------------------------------------------------

#: The column contract, per schema version. Changing a dataset's columns fails this test until
#: SCHEMA_VERSION is bumped and a new entry added here (and the dictionaries regenerated).
FROZEN_COLUMNS = {
    "1": {
        "sessions": [
            "session_id",
            "patient_id",
            "mrn",
            "patient_name",
            "birth_date",
            "age_years",
            "diagnosis",
            "session_date",
            "therapy_code",
            "therapy_name",
            "dose",
            "dose_unit",
            "infusion_number",
            "chair_name",
            "chair_kind",
            "nurse_id",
            "nurse_name",
            "status",
            "walk_in",
            "scheduled_at",
            "checked_in_at",
            "ready_at",
            "iv_started_at",
            "iv_stopped_at",
            "discharged_at",
            "closed_at",
            "infusion_min",
            "observation_min",
            "chair_min",
            "long_infusion",
            "deferral_reason",
            "cancel_reason",
            "early_discharge_reason",
            "premedication_required",
            "premedication_given",
            "premedication_skip_reason",
            "program",
            "program_check_done",
            "iv_site",
            "iv_gauge",
            "iv_attempts",
            "lot_number",
            "start_rate_ml_h",
            "max_rate_ml_h",
            "pause_count",
            "reaction_count",
            "worst_grade",
            "corrected",
            "addendum_count",
        ],
        "sessions/deidentified": [
            "session_key",
            "patient_key",
            "age_years",
            "diagnosis",
            "session_year",
            "time_reference",
            "therapy_code",
            "therapy_name",
            "dose",
            "dose_unit",
            "infusion_number",
            "chair_kind",
            "nurse_id",
            "status",
            "walk_in",
            "scheduled_rel_min",
            "checked_in_rel_min",
            "ready_rel_min",
            "iv_started_rel_min",
            "iv_stopped_rel_min",
            "discharged_rel_min",
            "closed_rel_min",
            "infusion_min",
            "observation_min",
            "chair_min",
            "long_infusion",
            "premedication_required",
            "premedication_given",
            "program",
            "program_check_done",
            "iv_site",
            "iv_gauge",
            "iv_attempts",
            "start_rate_ml_h",
            "max_rate_ml_h",
            "pause_count",
            "reaction_count",
            "worst_grade",
            "corrected",
            "addendum_count",
        ],
        "vitals": [
            "vital_id",
            "session_id",
            "patient_id",
            "therapy_code",
            "infusion_number",
            "taken_at",
            "phase",
            "systolic_mmhg",
            "diastolic_mmhg",
            "pulse_per_min",
            "resp_rate_per_min",
            "temperature_c",
            "spo2_pct",
            "pain_score",
            "weight_kg",
            "consciousness",
            "on_oxygen",
            "position",
            "not_obtained",
            "not_obtained_reason",
            "flags",
            "flag_count",
            "news2",
            "news2_complete",
            "provider_notified",
            "provider_name",
            "provider_notified_at",
            "note",
            "entered_at",
            "entered_by_id",
            "entered_by_name",
            "corrected",
            "correction_reason",
            "entered_in_error",
        ],
        "vitals/deidentified": [
            "session_key",
            "patient_key",
            "time_reference",
            "therapy_code",
            "infusion_number",
            "taken_rel_min",
            "phase",
            "systolic_mmhg",
            "diastolic_mmhg",
            "pulse_per_min",
            "resp_rate_per_min",
            "temperature_c",
            "spo2_pct",
            "pain_score",
            "weight_kg",
            "consciousness",
            "on_oxygen",
            "position",
            "not_obtained",
            "flags",
            "flag_count",
            "news2",
            "news2_complete",
            "provider_notified",
            "provider_notified_rel_min",
            "entered_rel_min",
            "entered_by_id",
            "corrected",
            "entered_in_error",
        ],
        "reactions": [
            "reaction_id",
            "session_id",
            "patient_id",
            "therapy_code",
            "infusion_number",
            "onset_at",
            "phase",
            "grade",
            "symptoms",
            "other_symptom",
            "actions",
            "medication_given",
            "resolved_at",
            "duration_min",
            "outcome",
            "provider_notified",
            "provider_name",
            "note",
            "entered_at",
            "entered_by_id",
            "entered_by_name",
            "corrected",
            "correction_reason",
            "entered_in_error",
        ],
        "reactions/deidentified": [
            "session_key",
            "patient_key",
            "time_reference",
            "therapy_code",
            "infusion_number",
            "onset_rel_min",
            "phase",
            "grade",
            "symptoms",
            "actions",
            "resolved_rel_min",
            "duration_min",
            "outcome",
            "provider_notified",
            "entered_rel_min",
            "entered_by_id",
            "corrected",
            "entered_in_error",
        ],
        "audit": [
            "audit_id",
            "event_date",
            "at",
            "user_id",
            "user_name",
            "action",
            "entity",
            "entity_id",
            "session_id",
            "patient_id",
            "before",
            "after",
            "reason",
        ],
        "audit/deidentified": [
            "event_year",
            "at_rel_min",
            "time_reference",
            "user_id",
            "action",
            "entity",
            "session_key",
            "patient_key",
        ],
    },
}


def _v2(dataset: str) -> list[str]:
    """Schema 2: sessions gained premedication_coded; premedication_given (typed) left the de-identified file."""
    columns = list(FROZEN_COLUMNS["1"][dataset])
    if dataset == "sessions/deidentified":
        columns.remove("premedication_given")
    if dataset.startswith("sessions"):
        anchor = "premedication_given" if dataset == "sessions" else "premedication_required"
        columns.insert(columns.index(anchor) + 1, "premedication_coded")
    return columns


FROZEN_COLUMNS["2"] = {name: _v2(name) for name in FROZEN_COLUMNS["1"]}


def _v3(dataset: str) -> list[str]:
    """Schema 3: every dataset gained `site` (the site's code), kept in the de-identified files."""
    columns = list(FROZEN_COLUMNS["2"][dataset])
    columns.insert(columns.index("patient_key" if dataset.endswith("/deidentified") else "patient_id") + 1, "site")
    return columns


FROZEN_COLUMNS["3"] = {name: _v3(name) for name in FROZEN_COLUMNS["2"]}

#: Schema 4: a fifth dataset, course_ends; the other four unchanged.
FROZEN_COLUMNS["4"] = {
    **FROZEN_COLUMNS["3"],
    "course_ends": [
        "course_end_id",
        "patient_id",
        "site",
        "mrn",
        "patient_name",
        "therapy_code",
        "therapy_name",
        "end_reason",
        "note",
        "ended_date",
        "ended_at",
        "ended_by_id",
        "ended_by_name",
        "resumed_at",
        "resumed_by_id",
        "resumed_by_name",
        "resume_reason",
        "in_force",
    ],
    "course_ends/deidentified": [
        "patient_key",
        "site",
        "therapy_code",
        "therapy_name",
        "end_reason",
        "ended_year",
        "time_reference",
        "ended_by_id",
        "resumed_rel_min",
        "resumed_by_id",
        "in_force",
    ],
}


def test_schema_change_guard() -> None:
    assert SCHEMA_VERSION in FROZEN_COLUMNS, "new SCHEMA_VERSION: freeze its columns in FROZEN_COLUMNS"
    frozen = FROZEN_COLUMNS[SCHEMA_VERSION]
    for dataset in DATASETS:
        assert column_names(dataset, False) == frozen[dataset], (
            f"{dataset} columns changed: bump SCHEMA_VERSION, freeze the new list, regenerate docs"
        )
        assert column_names(dataset, True) == frozen[f"{dataset}/deidentified"]


def test_schema_definitions_are_consistent() -> None:
    for dataset, columns in SCHEMAS.items():
        names = [c.name for c in columns]
        assert len(names) == len(set(names)), dataset
        for c in columns:
            assert c.type in ("integer", "number", "boolean", "text", "date", "datetime"), c
            assert c.meaning.strip(), c
            if c.deid is Deid.PSEUDONYM:
                assert c.pseudonym_kind in ("patient", "session") and c.deid_name
        for deidentify in (False, True):
            out = column_names(dataset, deidentify)
            assert len(out) == len(set(out)), (dataset, deidentify)
        # nothing typed as a date or timestamp survives de-identification
        assert not [c.name for c in output_columns(dataset, True) if c.type in ("date", "datetime")]
    # units are in the names
    assert {"temperature_c", "weight_kg"} <= set(column_names("vitals", False))
    assert {"start_rate_ml_h", "max_rate_ml_h", "infusion_min"} <= set(column_names("sessions", False))


@pytest.mark.parametrize("dataset", DATASETS)
def test_dictionary_matches_columns(dataset: str) -> None:
    for deidentify in (False, True):
        rows = dictionary_rows(dataset, deidentify)
        assert [r["column"] for r in rows] == column_names(dataset, deidentify)
        parsed = list(csv.DictReader(io.StringIO(render_csv(dataset, deidentify), newline="")))
        assert [r["column"] for r in parsed] == column_names(dataset, deidentify)
        assert {r["schema_version"] for r in parsed} == {SCHEMA_VERSION}
        assert all(r["type"] and r["meaning"] for r in parsed)
    markdown = render_markdown(dataset)
    for name in column_names(dataset, False) + column_names(dataset, True):
        assert f"| `{name}` |" in markdown


@pytest.mark.parametrize("dataset", DATASETS)
def test_committed_dictionary_is_up_to_date(dataset: str) -> None:
    path = DOCS_DIR / f"{dataset}.md"
    assert path.is_file(), "run: python -m infusion.exports.schema"
    assert path.read_text(encoding="utf-8") == render_markdown(dataset), (
        f"{path} is stale: run python -m infusion.exports.schema"
    )


@pytest.mark.parametrize("role", [None, "nurse", "charge_nurse", "manager"])
def test_no_export_without_a_quality_or_admin_role(clinic: Clinic, role: str | None) -> None:
    """The library call itself refuses: a page or script cannot skip the check (identified or not)."""
    for deidentify in (False, True):
        with pytest.raises(PermissionDenied):
            write_csv(clinic.db, "sessions", clinic.filters, io.BytesIO(), deidentify, actor_role=role)
