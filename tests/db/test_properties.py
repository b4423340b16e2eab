"""Issue 12, proof in the suite: every public write service, fed anything, either stores exactly what it
was given or refuses with the project's own error and a readable message; nothing else escapes, and a
refusal changes no row count.

Inputs mix plausible values with the failure classes of issue 12: text longer than its column, NUL and
unpaired surrogates, NaN/±inf/1e308, integers beyond 64 bits, times in 751 or 9999 or without a time
zone, None or the wrong type where text is required, an empty client token. One database per test
function (the `db` fixture), shared by its examples: each example checks the row counts around itself.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from db.models import Base, InfusionSession, Patient, Premedication
from infusion.accounts import auth
from infusion.accounts.actor import Actor
from infusion.clock import utcnow
from infusion.errors import ChairsideError
from infusion.services import corrections, entries, scheduling, sessions, setup
from tests.helpers import ago, new_chair, new_patient, new_session, normal_vitals, therapy_id, walk

#: examples per service: a few in CI (each example walks a session through its steps); raise it for a nightly run
EXAMPLES = int(os.environ.get("CHAIRSIDE_PROPERTY_EXAMPLES", "5"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
ADMIN = Actor(None, "Property Admin", "admin")
STATS: Counter[str] = Counter()

# ------------------------------------------------------------------ strategies: the failure classes of issue 12
any_char = st.characters(codec=None, exclude_categories=())  # includes NUL and unpaired surrogates
nasty_text = st.one_of(
    st.text(min_size=1, max_size=12),
    st.text(alphabet=any_char, max_size=30),
    st.integers(min_value=35, max_value=260).map(lambda n: "x" * n),  # around every String(n) limit
    st.sampled_from(["", "   ", "\x00", "a\x00b", "\ud800", "ok\udfff", "Dr O’Neil", "ß" * 41]),
    st.none(),
    st.integers(),
    st.floats(),
    st.just(datetime(2024, 1, 1, tzinfo=UTC)),
)
nasty_number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 0.0, -1.0, 182.0, 182.5]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63, 2**63 - 1, 2**31, -(2**63) - 1]),
    st.none(),
    st.booleans(),
    st.text(max_size=3),
)
small_number = st.one_of(st.integers(min_value=1, max_value=400), st.floats(min_value=0.1, max_value=400))
nasty_time = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 30)),  # naive
    st.sampled_from(
        [
            datetime(751, 3, 1, tzinfo=UTC),
            datetime(1900, 1, 1, tzinfo=UTC),
            datetime(7984, 5, 5, tzinfo=UTC),
            datetime(9999, 12, 31, tzinfo=UTC),
        ]
    ),
    st.integers(min_value=1, max_value=600).map(lambda m: utcnow() - timedelta(minutes=m)),
    st.none(),
    st.just("yesterday"),
)
nasty_id = st.one_of(
    st.integers(min_value=-5, max_value=10),
    st.sampled_from([2**63, 2**63 - 1, 2**64 + 1, -(2**63)]),
    st.none(),
    st.text(max_size=3),
    st.floats(),
)
token = st.one_of(st.none(), st.just(""), st.text(alphabet=any_char, max_size=70), st.uuids().map(str))


# ------------------------------------------------------------------ the property
def counts(db) -> dict[str, int]:
    with db.reading() as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) or 0 for t in Base.metadata.sorted_tables}


def stored_or_refused(db, call: Callable[[], Any], kind: str) -> Any:
    """Run `call`: the result, or None after a ChairsideError with a readable message and no row counted."""
    before = counts(db)
    STATS["examples"] += 1
    STATS[f"examples:{db.dialect}"] += 1
    try:
        result = call()
    except ChairsideError as error:
        message = str(error)
        assert message and len(message) < 2000, message
        for raw in ("Traceback", "sqlalchemy", "psycopg", "sqlite3", "(Background on this error"):
            assert raw not in message, message
        assert counts(db) == before, f"{kind}: a refusal changed the database"
        STATS[f"refused:{db.dialect}"] += 1
        return None
    STATS[f"stored:{db.dialect}"] += 1
    return result


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    path = os.environ.get("CHAIRSIDE_PROPERTY_STATS")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps(dict(STATS)) + "\n")


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


# ------------------------------------------------------------------ set-up and accounts
@PROPERTY
@given(
    mrn=nasty_text,
    given_name=nasty_text,
    family_name=nasty_text,
    phone=nasty_text,
    diagnosis=nasty_text,
    birth_date=st.one_of(st.none(), st.dates(), st.just(datetime(1980, 1, 1, tzinfo=UTC)), st.just("1980-01-01")),
)
def test_add_patient(db, nurse, mrn, given_name, family_name, phone, diagnosis, birth_date):
    patient = stored_or_refused(
        db,
        lambda: setup.add_patient(
            db,
            nurse,
            mrn=mrn,
            given_name=given_name,
            family_name=family_name,
            birth_date=birth_date,
            diagnosis=diagnosis,
            phone=phone,
        ),
        "add_patient",
    )
    if patient is not None:
        with db.reading() as s:
            row = s.get(Patient, patient.id)
        assert (row.mrn, row.given_name, row.family_name) == (_strip(mrn), _strip(given_name), _strip(family_name))
        assert row.phone == (_strip(phone) or None) and row.birth_date == birth_date


@PROPERTY
@given(name=nasty_text, kind=st.one_of(st.sampled_from(["chair", "home"]), nasty_text))
def test_add_chair(db, name, kind):
    chair = stored_or_refused(db, lambda: setup.add_chair(db, ADMIN, name, kind), "add_chair")
    if chair is not None:
        assert chair.name == _strip(name)


@PROPERTY
@given(display_name=nasty_text, role=st.one_of(st.sampled_from(["nurse", "admin"]), nasty_text), username=nasty_text)
def test_add_staff(db, display_name, role, username):
    user = stored_or_refused(db, lambda: setup.add_staff(db, ADMIN, display_name, role, username), "add_staff")
    if user is not None:
        assert user.display_name == _strip(display_name)


@PROPERTY
@given(name=nasty_text, timezone=st.one_of(st.just("Europe/London"), nasty_text), phone=nasty_text)
def test_update_clinic(db, name, timezone, phone):
    stored_or_refused(
        db,
        lambda: setup.update_clinic(
            db, ADMIN, name=name, timezone=timezone, temperature_unit="C", weight_unit="kg", phone=phone
        ),
        "update_clinic",
    )


@PROPERTY
@given(
    key=st.sampled_from(
        ["lockout_attempts", "min_password_length", "lockout_minutes", "clock_skew_minutes", "max_infusion_hours"]
    ),
    value=nasty_number,
    threshold=st.sampled_from(["temperature_c_high", "spo2_low"]),
    limit=nasty_number,
)
def test_update_settings(db, key, value, threshold, limit):
    clinic = stored_or_refused(
        db, lambda: setup.update_settings(db, ADMIN, {key: value, "thresholds": {threshold: limit}}), "settings"
    )
    if clinic is not None:
        stored = setup.clinic_settings(setup.get_clinic(db))
        assert getattr(stored, key) == value and getattr(stored.thresholds, threshold) == limit
        assert stored.lockout_attempts >= 1 and stored.min_password_length >= 8


@PROPERTY
@given(
    field=st.sampled_from(["dosing_interval_days", "min_interval_days", "default_dose", "name", "dose_unit", "notes"]),
    value=st.one_of(nasty_number, nasty_text),
)
def test_update_therapy(db, field, value):
    tid = therapy_id(db, "natalizumab")
    therapy = stored_or_refused(
        db, lambda: setup.update_therapy(db, ADMIN, tid, {field: value}, expected_version=None), "update_therapy"
    )
    if therapy is not None:
        stored = getattr(setup.list_therapies(db, active_only=False)[0].__class__, field)  # the column exists
        assert stored is not None
        with db.reading() as s:
            row = s.get(type(therapy), tid)
            assert getattr(row, field) == value or (field == "name" and getattr(row, field) == value)


@PROPERTY
@given(username=nasty_text, password=nasty_text)
def test_authenticate(db, username, password):
    from infusion.errors import AuthError

    STATS["examples"] += 1
    with pytest.raises(AuthError):
        auth.authenticate(db, username, password)


@PROPERTY
@given(
    username=nasty_text,
    display_name=nasty_text,
    role=st.one_of(st.just("nurse"), nasty_text),
    email=nasty_text,
    active=st.one_of(st.booleans(), st.none(), st.integers(), st.text(max_size=2)),
)
def test_add_user_and_set_active(db, username, display_name, role, email, active):
    user = stored_or_refused(
        db,
        lambda: auth.add_user(
            db, ADMIN, username=username, display_name=display_name, role=role, email=email, password=None
        ),
        "add_user",
    )
    if user is not None:
        assert user.display_name == _strip(display_name)
        stored_or_refused(db, lambda: auth.set_active(db, ADMIN, user.id, active), "set_active")


# ------------------------------------------------------------------ sessions and entries
@PROPERTY
@given(
    dose=nasty_number,
    when=nasty_time,
    patient=st.one_of(st.just("real"), nasty_id),
    tok=token,
)
def test_create_session(db, nurse, dose, when, patient, tok):
    tid, chair = therapy_id(db, "natalizumab"), new_chair(db, ADMIN)
    pid = new_patient(db, nurse) if patient == "real" else patient
    row = stored_or_refused(
        db,
        lambda: sessions.create_session(
            db, nurse, patient_id=pid, therapy_id=tid, chair_id=chair, dose=dose, scheduled_at=when, client_token=tok
        ),
        "create_session",
    )
    if row is not None:
        with db.reading() as s:
            stored = s.get(InfusionSession, row.id)
        assert dose is None or stored.dose == dose


@PROPERTY
@given(when=nasty_time, dose=st.one_of(st.none(), nasty_number), tok=token)
def test_schedule_session(db, nurse, when, dose, tok):
    tid, chair, pid = therapy_id(db, "natalizumab"), new_chair(db, ADMIN), new_patient(db, nurse)
    first = stored_or_refused(
        db,
        lambda: scheduling.schedule_session(db, nurse, pid, tid, chair, when, dose=dose, client_token=tok),
        "schedule_session",
    )
    if first is not None and tok and tok.strip():
        again = scheduling.schedule_session(db, nurse, pid, tid, chair, when, dose=dose, client_token=tok)
        assert again.id == first.id  # a double tap books once


@PROPERTY
@given(drug=nasty_text, dose=nasty_text, route=st.one_of(st.just("IV"), nasty_text), at=nasty_time, tok=token)
def test_record_premedication(db, nurse, drug, dose, route, at, tok):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "ready", t0=ago(120))
    premed = stored_or_refused(
        db,
        lambda: entries.record_premedication(
            db, nurse, sid, drug=drug, dose=dose, route=route, given_at=at, client_token=tok
        ),
        "premedication",
    )
    if premed is not None:
        with db.reading() as s:
            row = s.get(Premedication, premed.id)
        assert (row.drug, row.dose) == (_strip(drug), _strip(dose))


@PROPERTY
@given(rate=nasty_number, at=nasty_time, note=nasty_text, tok=token)
def test_change_rate(db, nurse, rate, at, note, tok):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "infusing", t0=ago(300))
    stored_or_refused(
        db, lambda: entries.change_rate(db, nurse, sid, rate, at=at, note=note, client_token=tok), "change_rate"
    )


@PROPERTY
@given(
    pulse=nasty_number,
    temperature=nasty_number,
    provider_name=nasty_text,
    note=nasty_text,
    at=nasty_time,
    tok=token,
)
def test_record_vitals(db, nurse, pulse, temperature, provider_name, note, at, tok):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "infusing", t0=ago(300))
    vitals = normal_vitals(pulse=pulse, temperature=temperature, note=note)
    vitals.provider_name = provider_name if isinstance(provider_name, str) else None
    vitals.provider_notified = isinstance(provider_name, str)
    stored_or_refused(
        db,
        lambda: entries.record_vitals(db, nurse, sid, vitals, taken_at=at, acknowledge_flags=True, client_token=tok),
        "record_vitals",
    )


@PROPERTY
@given(provider_name=nasty_text, note=nasty_text, other=nasty_text, onset=nasty_time, grade=nasty_number, tok=token)
def test_record_reaction(db, nurse, provider_name, note, other, onset, grade, tok):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "infusing", t0=ago(300))
    stored_or_refused(
        db,
        lambda: entries.record_reaction(
            db,
            nurse,
            sid,
            symptoms=["other", "rash"],
            grade=grade,
            actions=["observed"],
            onset_at=onset,
            other_text=other,
            provider_notified=provider_name is not None,
            provider_name=provider_name,
            note=note,
            client_token=tok,
        ),
        "record_reaction",
    )


@PROPERTY
@given(site=nasty_text, gauge=nasty_number, attempts=nasty_number, lot=nasty_text, rate=nasty_number)
def test_start_iv(db, nurse, site, gauge, attempts, lot, rate):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "ready", t0=ago(120))
    stored_or_refused(
        db,
        lambda: sessions.start_iv(
            db,
            nurse,
            sid,
            expected_version=None,
            site=site,
            gauge=gauge,
            attempts=attempts,
            lot_number=lot,
            rate_ml_h=rate,
            premed_skip_reason="given at home",
        ),
        "start_iv",
    )


@PROPERTY
@given(value=nasty_time, reason=nasty_text, field=st.one_of(st.just("checked_in_at"), nasty_text))
def test_correct_session_time(db, nurse, value, reason, field):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "infusing", t0=ago(300))
    row = stored_or_refused(
        db,
        lambda: corrections.correct_session_time(db, nurse, sid, field, value, reason=reason, expected_version=None),
        "correct_session_time",
    )
    if row is not None:
        assert row.chair_minutes is None or 0 <= row.chair_minutes < 60 * 24 * 365


@PROPERTY
@given(text=nasty_text, session=st.one_of(st.just("real"), nasty_id))
def test_add_addendum(db, nurse, text, session):
    sid = new_session(db, nurse) if session == "real" else session
    stored_or_refused(db, lambda: corrections.add_addendum(db, nurse, sid, text), "add_addendum")


def test_an_empty_client_token_is_no_token(db, nurse):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "infusing", t0=ago(120))
    first = entries.record_vitals(db, nurse, sid, normal_vitals(), taken_at=ago(30), client_token="")
    second = entries.record_vitals(db, nurse, sid, normal_vitals(pulse=80), taken_at=ago(20), client_token="")
    assert first.id != second.id and first.client_token is None and second.client_token is None


def test_nan_never_turns_into_null(db):
    tid = therapy_id(db, "natalizumab")
    before = setup.list_therapies(db, active_only=False)
    interval = next(t.dosing_interval_days for t in before if t.id == tid)
    with pytest.raises(ChairsideError, match="(?i)dosing interval days"):
        setup.update_therapy(db, ADMIN, tid, {"dosing_interval_days": math.nan}, expected_version=None)
    after = next(t.dosing_interval_days for t in setup.list_therapies(db, active_only=False) if t.id == tid)
    assert after == interval


def test_max_length_is_the_column_length():
    from db.models import Chair, InfusionSession, Patient, VitalSign
    from infusion.services.integrity import max_length

    assert max_length(Patient, "phone") == 40 and max_length(Patient, "mrn") == 40
    assert max_length(InfusionSession, "lot_number") == 60 and max_length(VitalSign, "provider_name") == 120
    assert max_length(Chair, "name") == 80 and max_length(Patient, "allergies") is None


def test_a_birth_date_given_as_a_datetime_is_refused(db, nurse):
    with pytest.raises(ChairsideError, match="Date of birth"):
        setup.add_patient(db, nurse, mrn="M1", given_name="A", family_name="B", birth_date=datetime(1980, 1, 1))
    assert setup.add_patient(db, nurse, mrn="M1", given_name="A", family_name="B", birth_date=date(1980, 1, 1))
