"""A whole session through the service functions, on SQLite and (when configured) PostgreSQL.

Every rejection is checked against a snapshot of every table taken before the
call: a refused write must leave the database exactly as it was.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from db.models import AuditEvent, InfusionSession, Premedication, ProgramCheck, RateChange, Reaction, VitalSign
from infusion.accounts.actor import SYSTEM, Actor
from infusion.clock import utcnow
from infusion.errors import (
    ConfirmationRequired,
    ConflictError,
    NotFoundError,
    StateError,
    ValidationError,
)
from infusion.services import entries, sessions, setup
from infusion.services.setup import add_staff
from tests.helpers import (
    ADMIN,
    ago,
    audit_count,
    audits_since,
    new_chair,
    new_patient,
    new_session,
    normal_vitals,
    row,
    snapshot,
    staff_actor,
    therapy_id,
    version,
    walk,
)


@contextmanager
def unchanged(db):
    before = snapshot(db)
    yield
    after = snapshot(db)
    for table in before:
        assert after[table] == before[table], f"table {table} changed by a rejected write"


def rows_of(db, model, session_id):
    with db.reading() as s:
        return list(s.scalars(select(model).where(model.session_id == session_id).order_by(model.id)))


# ---------------------------------------------------------------- the whole walk


def test_full_session_walk(db):
    staff = add_staff(db, SYSTEM, "Ada Lovelace")
    ada = Actor(staff.id, "Ada Lovelace")
    t0 = utcnow().replace(microsecond=0) - timedelta(minutes=420)
    at = lambda minutes: t0 + timedelta(minutes=minutes)  # noqa: E731

    writes = []

    def step(expected_actions, fn, *args, **kwargs):
        writes.extend(expected_actions)
        count = audit_count(db)
        result = fn(*args, **kwargs)
        new = audits_since(db, count)
        assert [a.action for a in new] == expected_actions
        assert {a.user_name for a in new} == {"Ada Lovelace"}
        assert {a.user_id for a in new} == {staff.id}
        return result

    patient_id, chair_id = new_patient(db, ada), new_chair(db, ada)
    created = step(
        ["create"],
        sessions.create_session,
        db,
        ada,
        patient_id=patient_id,
        therapy_id=therapy_id(db, "alemtuzumab"),
        chair_id=chair_id,
    )
    sid = created.id
    assert created.status == "scheduled" and created.dose == 12 and created.infusion_number == 1

    # check-in: the baseline set and the state change, audited separately
    s = step(
        ["record_vitals", "check_in"],
        sessions.check_in,
        db,
        ada,
        sid,
        normal_vitals(weight=70.5),
        expected_version=created.version,
        at=at(0),
    )
    assert s.status == "checked_in" and s.checked_in_at == at(0)
    assert s.baseline_systolic == 124
    s = step(["proceed"], sessions.proceed, db, ada, sid, expected_version=s.version, at=at(5))
    assert s.status == "ready" and s.ready_at == at(5)
    check = step(["confirm_program"], sessions.confirm_program, db, ada, sid, authorization_ref="REMS-778")
    assert check.program == "Lemtrada REMS" and check.authorization_ref == "REMS-778"
    assert check.confirmed_by_id == staff.id
    step(
        ["record_premedication"],
        entries.record_premedication,
        db,
        ada,
        sid,
        drug="Methylprednisolone",
        dose="1000 mg",
        route="IV",
        given_at=at(10),
    )
    s = step(
        ["start_iv"],
        sessions.start_iv,
        db,
        ada,
        sid,
        expected_version=version(db, sid),
        site="Left forearm",
        gauge=22,
        attempts=2,
        lot_number=" LEM123 ",
        rate_ml_h=25,
        at=at(30),
    )
    assert s.status == "infusing" and s.iv_started_at == at(30)
    assert (s.iv_site, s.iv_gauge, s.iv_attempts, s.lot_number, s.current_rate_ml_h) == (
        "Left forearm",
        22,
        2,
        "LEM123",
        25.0,
    )

    step(["record_vitals"], entries.record_vitals, db, ada, sid, normal_vitals(), taken_at=at(45))
    step(["rate_change"], entries.change_rate, db, ada, sid, 20, at=at(60))
    assert row(db, sid).current_rate_ml_h == 20
    step(["record_vitals"], entries.record_vitals, db, ada, sid, normal_vitals(pulse=88), taken_at=at(62))
    reaction = step(  # saved as pausing the infusion: the same save pauses it, at the onset
        ["record_reaction", "rate_pause"],
        entries.record_reaction,
        db,
        ada,
        sid,
        symptoms=["flushing", "pruritus"],
        grade=2,
        actions=["paused", "medication_given"],
        medication_given="Diphenhydramine 25 mg IV",
        onset_at=at(90),
        provider_notified=True,
        provider_name="Dr Ruiz",
    )
    assert row(db, sid).reaction_count == 1 and row(db, sid).worst_grade == 2
    assert row(db, sid).status == "paused"

    # a flagged set: nothing stored until acknowledged
    with unchanged(db), pytest.raises(ConfirmationRequired) as exc:
        entries.record_vitals(db, ada, sid, normal_vitals(pulse=125), taken_at=at(95))
    assert any("Pulse 125 > 120" in f for f in exc.value.flags)
    step(
        ["record_vitals"],
        entries.record_vitals,
        db,
        ada,
        sid,
        normal_vitals(pulse=125),
        taken_at=at(95),
        acknowledge_flags=True,
    )

    step(["resolve_reaction"], entries.resolve_reaction, db, ada, reaction.id, resolved_at=at(115))
    step(["rate_resume"], entries.resume, db, ada, sid, 25, at=at(120))
    assert row(db, sid).status == "infusing" and row(db, sid).current_rate_ml_h == 25
    step(["record_vitals"], entries.record_vitals, db, ada, sid, normal_vitals(), taken_at=at(150))
    s = step(["stop_iv"], sessions.stop_iv, db, ada, sid, expected_version=version(db, sid), at=at(280))
    assert s.status == "observation" and s.iv_stopped_at == at(280)
    assert s.infusion_minutes == pytest.approx(250.0)
    assert s.long_infusion_flag is False  # 250 min ≤ 240 + 15 tolerance
    assert s.current_rate_ml_h == 0
    step(["record_vitals"], entries.record_vitals, db, ada, sid, normal_vitals(), taken_at=at(280))
    step(["record_vitals"], entries.record_vitals, db, ada, sid, normal_vitals(), taken_at=at(400))
    s = step(["discharge"], sessions.discharge, db, ada, sid, expected_version=version(db, sid), at=at(405))

    # the stored session
    s = row(db, sid)
    assert s.status == "discharged" and s.discharged_at == at(405)
    assert s.early_discharge_reason is None
    assert s.chair_minutes == pytest.approx(405.0)
    assert s.infusion_minutes == pytest.approx(250.0)
    assert s.reaction_count == 1 and s.worst_grade == 2
    assert s.last_vitals_at == at(400)

    vitals = rows_of(db, VitalSign, sid)
    assert [(v.taken_at, v.phase) for v in vitals] == [
        (at(0), "pre"),
        (at(45), "infusion"),
        (at(62), "infusion"),
        (at(95), "infusion"),
        (at(150), "infusion"),
        (at(280), "observation"),
        (at(400), "observation"),
    ]
    assert all(v.entered_by_id == staff.id for v in vitals)
    assert vitals[0].weight_kg == pytest.approx(70.5)
    assert vitals[0].news2 == 0 and vitals[0].news2_complete
    flagged = vitals[3]
    assert flagged.pulse == 125 and flagged.flag_count == 1 and flagged.flags[0]["code"] == "pulse_high"
    assert flagged.news2 == 2  # pulse 111–130 scores 2; everything else normal
    rates = rows_of(db, RateChange, sid)
    assert [(r.kind, r.rate_ml_h, r.at) for r in rates] == [
        ("start", 25, at(30)),
        ("change", 20, at(60)),
        ("pause", None, at(90)),  # the reaction paused it at its onset
        ("resume", 25, at(120)),
        ("stop", 0, at(280)),
    ]
    premed = rows_of(db, Premedication, sid)
    assert [(p.drug, p.dose, p.route, p.given_at) for p in premed] == [("Methylprednisolone", "1000 mg", "IV", at(10))]
    stored_reaction = rows_of(db, Reaction, sid)[0]
    assert stored_reaction.onset_at == at(90) and stored_reaction.resolved_at == at(115)
    assert stored_reaction.symptoms == ["flushing", "pruritus"]
    assert stored_reaction.actions == ["paused", "medication_given"]
    assert stored_reaction.provider_name == "Dr Ruiz"
    assert len(rows_of(db, ProgramCheck, sid)) == 1

    # every audit event of this session names the nurse and carries the session
    with db.reading() as session:
        events = list(session.scalars(select(AuditEvent).where(AuditEvent.session_id == sid).order_by(AuditEvent.id)))
    assert [e.action for e in events] == writes
    assert {e.user_name for e in events} == {"Ada Lovelace"}
    check_in_event = next(e for e in events if e.action == "check_in")
    assert check_in_event.before["status"] == "scheduled" and check_in_event.after["status"] == "checked_in"
    discharge_event = next(e for e in events if e.action == "discharge")
    assert discharge_event.after["status"] == "discharged"


def test_stored_news2_matches_the_set(db, nurse):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "infusing", t0=ago(120))
    # RR 22 → 2, SpO2 93 → 2, SBP 105 → 1, pulse 115 → 2, 38.5 °C → 1: 8
    vital = entries.record_vitals(
        db,
        nurse,
        sid,
        normal_vitals(resp_rate=22, spo2=93, systolic=105, diastolic=70, pulse=115, temperature=38.5),
        acknowledge_flags=True,
    )
    assert vital.news2 == 8 and vital.news2_complete
    partial = entries.record_vitals(db, nurse, sid, normal_vitals(temperature=None, spo2=None))
    assert partial.news2 == 0 and partial.news2_complete is False


def test_create_session_checks_its_choices(db, nurse):
    patient, chair = new_patient(db, nurse), new_chair(db, nurse)
    with unchanged(db), pytest.raises(ValidationError) as exc:
        sessions.create_session(db, nurse, patient_id=987654, therapy_id=987654, chair_id=987654)
    assert {"patient", "therapy", "chair"} <= set(exc.value.problems)
    with unchanged(db), pytest.raises(ValidationError) as exc:
        sessions.create_session(
            db, nurse, patient_id=patient, therapy_id=therapy_id(db, "ivig"), chair_id=chair, dose=0
        )
    assert "dose" in exc.value.problems
    created = sessions.create_session(
        db, nurse, patient_id=patient, therapy_id=therapy_id(db, "natalizumab"), chair_id=chair
    )
    assert created.dose == 300 and created.dose_unit == "mg"  # the catalog's default dose


# ---------------------------------------------------------------- out-of-order and future times


def test_vitals_before_check_in_are_refused(db, nurse):
    sid = new_session(db, nurse)
    with unchanged(db), pytest.raises(StateError, match="vitals"):
        entries.record_vitals(db, nurse, sid, normal_vitals(), taken_at=ago(10))
    t0 = walk(db, nurse, sid, "checked_in", t0=ago(60))
    with unchanged(db), pytest.raises(ValidationError) as exc:
        entries.record_vitals(db, nurse, sid, normal_vitals(), taken_at=t0 - timedelta(minutes=1))
    assert "before check-in" in exc.value.problems["taken_at"]


def test_iv_stop_before_iv_start_is_refused(db, nurse):
    sid = new_session(db, nurse)
    t0 = walk(db, nurse, sid, "infusing", t0=ago(120))
    start = t0 + timedelta(minutes=20)
    for bad in (start - timedelta(minutes=1), start):
        with unchanged(db), pytest.raises(ValidationError) as exc:
            sessions.stop_iv(db, nurse, sid, expected_version=None, at=bad)
        assert "IV start" in exc.value.problems["iv_stopped_at"]


def test_iv_stop_before_last_rate_entry_is_refused(db, nurse):
    sid = new_session(db, nurse)
    t0 = walk(db, nurse, sid, "infusing", t0=ago(120))
    entries.change_rate(db, nurse, sid, 90, at=t0 + timedelta(minutes=50))
    with unchanged(db), pytest.raises(ValidationError) as exc:
        sessions.stop_iv(db, nurse, sid, expected_version=None, at=t0 + timedelta(minutes=45))
    assert "rate" in exc.value.problems["iv_stopped_at"]


def test_rate_entry_before_iv_start_or_previous_entry_is_refused(db, nurse):
    sid = new_session(db, nurse)
    t0 = walk(db, nurse, sid, "infusing", t0=ago(120))
    with unchanged(db), pytest.raises(ValidationError):
        entries.change_rate(db, nurse, sid, 90, at=t0 + timedelta(minutes=10))
    entries.pause(db, nurse, sid, at=t0 + timedelta(minutes=60))
    with unchanged(db), pytest.raises(ValidationError):
        entries.resume(db, nurse, sid, 100, at=t0 + timedelta(minutes=59))


def test_reaction_resolving_before_onset_is_refused(db, nurse):
    sid = new_session(db, nurse)
    t0 = walk(db, nurse, sid, "infusing", t0=ago(120))
    onset = t0 + timedelta(minutes=40)
    with unchanged(db), pytest.raises(ValidationError) as exc:
        entries.record_reaction(
            db,
            nurse,
            sid,
            symptoms=["rash"],
            grade=1,
            actions=["observed"],
            onset_at=onset,
            resolved_at=onset - timedelta(minutes=5),
        )
    assert "before the onset" in exc.value.problems["resolved_at"]

    reaction = entries.record_reaction(db, nurse, sid, symptoms=["rash"], grade=1, actions=["observed"], onset_at=onset)
    with unchanged(db), pytest.raises(ValidationError) as exc:
        entries.resolve_reaction(db, nurse, reaction.id, resolved_at=onset - timedelta(seconds=1))
    assert "resolved_at" in exc.value.problems
    entries.resolve_reaction(db, nurse, reaction.id, resolved_at=onset + timedelta(minutes=20))
    with unchanged(db), pytest.raises(StateError):  # the original resolution time is kept
        entries.resolve_reaction(db, nurse, reaction.id, resolved_at=onset + timedelta(minutes=30))


def test_reaction_onset_before_check_in_is_refused(db, nurse):
    sid = new_session(db, nurse)
    t0 = walk(db, nurse, sid, "infusing", t0=ago(120))
    with unchanged(db), pytest.raises(ValidationError) as exc:
        entries.record_reaction(
            db, nurse, sid, symptoms=["rash"], grade=1, actions=["observed"], onset_at=t0 - timedelta(minutes=1)
        )
    assert "onset_at" in exc.value.problems


def test_times_in_the_future_beyond_clock_skew_are_refused(db, nurse):
    sid = new_session(db, nurse)
    with unchanged(db), pytest.raises(ValidationError) as exc:
        sessions.check_in(db, nurse, sid, normal_vitals(), expected_version=None, at=utcnow() + timedelta(minutes=10))
    assert "future" in exc.value.problems["checked_in_at"]
    walk(db, nurse, sid, "infusing", t0=ago(120))
    with unchanged(db), pytest.raises(ValidationError) as exc:
        entries.record_vitals(db, nurse, sid, normal_vitals(), taken_at=utcnow() + timedelta(minutes=6))
    assert "future" in exc.value.problems["taken_at"]
    with unchanged(db), pytest.raises(ValidationError):
        entries.record_reaction(
            db, nurse, sid, symptoms=["rash"], grade=1, actions=["observed"], onset_at=utcnow() + timedelta(hours=1)
        )
    with unchanged(db), pytest.raises(ValidationError):
        entries.change_rate(db, nurse, sid, 95, at=utcnow() + timedelta(minutes=30))
    with unchanged(db), pytest.raises(ValidationError):
        sessions.stop_iv(db, nurse, sid, expected_version=None, at=utcnow() + timedelta(minutes=20))
    # a watch a little fast (within the 5-min skew) is accepted
    vital = entries.record_vitals(db, nurse, sid, normal_vitals(), taken_at=utcnow() + timedelta(minutes=4))
    assert vital.id is not None


def test_naive_time_is_refused(db, nurse):
    sid = new_session(db, nurse)
    with unchanged(db), pytest.raises(ValidationError):
        sessions.check_in(
            db,
            nurse,
            sid,
            normal_vitals(),
            expected_version=None,
            at=utcnow().replace(tzinfo=None) - timedelta(minutes=5),
        )


# ---------------------------------------------------------------- wrong state transitions


def _do(action, db, actor, sid):
    calls = {
        "check_in": lambda: sessions.check_in(db, actor, sid, normal_vitals(), expected_version=None),
        "proceed": lambda: sessions.proceed(db, actor, sid, expected_version=None),
        "defer": lambda: sessions.defer(db, actor, sid, "fever", expected_version=None),
        "cancel": lambda: sessions.cancel(db, actor, sid, "patient called in sick", expected_version=None),
        "start_iv": lambda: sessions.start_iv(
            db,
            actor,
            sid,
            expected_version=None,
            site="Left forearm",
            gauge=22,
            attempts=1,
            lot_number="L1",
            rate_ml_h=100,
        ),
        "pause": lambda: entries.pause(db, actor, sid),
        "resume": lambda: entries.resume(db, actor, sid, 100),
        "change_rate": lambda: entries.change_rate(db, actor, sid, 95),
        "stop_iv": lambda: sessions.stop_iv(db, actor, sid, expected_version=None),
        "discharge": lambda: sessions.discharge(db, actor, sid, expected_version=None, early_reason="ride waiting"),
        "record_vitals": lambda: entries.record_vitals(db, actor, sid, normal_vitals()),
        "record_reaction": lambda: entries.record_reaction(
            db, actor, sid, symptoms=["rash"], grade=1, actions=["observed"]
        ),
        "record_premedication": lambda: entries.record_premedication(
            db, actor, sid, drug="Cetirizine", dose="10 mg", route="PO"
        ),
        "confirm_program": lambda: sessions.confirm_program(db, actor, sid),
    }
    return calls[action]()


def _bring_to(db, actor, sid, status):
    if status == "scheduled":
        return
    if status == "cancelled":
        sessions.cancel(db, actor, sid, "no show", expected_version=None)
        return
    if status == "deferred":
        walk(db, actor, sid, "checked_in", t0=ago(200))
        sessions.defer(db, actor, sid, "active infection", expected_version=None)
        return
    if status == "paused":
        walk(db, actor, sid, "infusing", t0=ago(200))
        entries.pause(db, actor, sid, at=ago(100))
        return
    walk(db, actor, sid, status, t0=ago(200))


WRONG = [
    (
        "scheduled",
        [
            "proceed",
            "start_iv",
            "pause",
            "resume",
            "change_rate",
            "stop_iv",
            "discharge",
            "record_vitals",
            "record_reaction",
            "record_premedication",
            "confirm_program",
        ],
    ),
    (
        "checked_in",
        ["check_in", "start_iv", "stop_iv", "discharge", "cancel", "pause", "resume", "change_rate", "record_reaction"],
    ),
    ("ready", ["check_in", "proceed", "stop_iv", "discharge", "cancel", "pause", "resume", "change_rate"]),
    ("infusing", ["check_in", "proceed", "start_iv", "discharge", "resume", "defer", "cancel", "confirm_program"]),
    ("paused", ["pause", "change_rate", "start_iv", "discharge", "defer"]),
    (
        "observation",
        [
            "start_iv",
            "pause",
            "resume",
            "change_rate",
            "stop_iv",
            "defer",
            "cancel",
            "record_premedication",
            "confirm_program",
        ],
    ),
    (
        "discharged",
        ["check_in", "discharge", "stop_iv", "record_vitals", "record_reaction", "record_premedication", "defer"],
    ),
    ("deferred", ["check_in", "proceed", "start_iv", "record_vitals", "record_reaction", "cancel"]),
    ("cancelled", ["check_in", "proceed", "defer", "record_vitals"]),
]


@pytest.mark.parametrize("status,actions", WRONG, ids=[w[0] for w in WRONG])
def test_wrong_state_transitions_are_refused_and_change_nothing(db, nurse, status, actions):
    sid = new_session(db, nurse)
    _bring_to(db, nurse, sid, status)
    assert row(db, sid).status == status
    for action in actions:
        with unchanged(db), pytest.raises(StateError):
            _do(action, db, nurse, sid)


def test_unknown_session(db, nurse):
    with pytest.raises(NotFoundError):
        sessions.proceed(db, nurse, 987654, expected_version=None)
    with pytest.raises(NotFoundError):
        entries.record_vitals(db, nurse, 987654, normal_vitals())
    with pytest.raises(NotFoundError):
        entries.resolve_reaction(db, nurse, 987654)


# ---------------------------------------------------------------- reasons


def test_defer_needs_a_reason_and_keeps_the_session(db, nurse):
    sid = new_session(db, nurse)
    t0 = walk(db, nurse, sid, "checked_in", t0=ago(30))
    with unchanged(db), pytest.raises(ValidationError) as exc:
        sessions.defer(db, nurse, sid, "   ", expected_version=None)
    assert "deferral_reason" in exc.value.problems
    count = audit_count(db)
    deferred = sessions.defer(
        db, nurse, sid, "Temperature 38.4, active UTI", expected_version=None, at=t0 + timedelta(minutes=10)
    )
    assert deferred.status == "deferred" and deferred.deferral_reason == "Temperature 38.4, active UTI"
    assert deferred.closed_at == t0 + timedelta(minutes=10)
    assert deferred.chair_minutes == pytest.approx(10.0)
    [event] = audits_since(db, count)
    assert event.action == "defer" and event.reason == "Temperature 38.4, active UTI"
    assert event.user_name == nurse.name
    # the vitals stay; the chair and the patient are free again
    assert len(rows_of(db, VitalSign, sid)) == 1
    again = new_session(db, nurse, chair_id=deferred.chair_id, patient_id=deferred.patient_id)
    assert sessions.check_in(db, nurse, again, normal_vitals(), expected_version=None).status == "checked_in"


def test_cancel_needs_a_reason(db, nurse):
    sid = new_session(db, nurse)
    with unchanged(db), pytest.raises(ValidationError) as exc:
        sessions.cancel(db, nurse, sid, "", expected_version=None)
    assert "cancel_reason" in exc.value.problems
    cancelled = sessions.cancel(db, nurse, sid, "Insurance authorization pending", expected_version=None)
    assert cancelled.status == "cancelled" and cancelled.cancel_reason == "Insurance authorization pending"


def test_early_discharge_needs_a_reason(db, nurse):
    sid = new_session(db, nurse)  # Tysabri: 60 min observation
    t0 = walk(db, nurse, sid, "observation", t0=ago(100), infusion_minutes=60)  # stopped 20 min ago
    with unchanged(db), pytest.raises(ValidationError) as exc:
        sessions.discharge(db, nurse, sid, expected_version=None)
    assert "Observation runs until" in exc.value.problems["early_discharge_reason"]
    count = audit_count(db)
    done = sessions.discharge(db, nurse, sid, expected_version=None, early_reason="Patient declined to wait")
    assert done.status == "discharged" and done.early_discharge_reason == "Patient declined to wait"
    assert audits_since(db, count)[0].reason == "Patient declined to wait"
    assert done.chair_minutes == pytest.approx((done.discharged_at - t0).total_seconds() / 60, abs=0.1)


def test_discharge_after_observation_needs_no_reason(db, nurse):
    sid = new_session(db, nurse)
    t0 = walk(db, nurse, sid, "observation", t0=ago(200), infusion_minutes=60)  # stopped 120 min ago
    done = sessions.discharge(db, nurse, sid, expected_version=None, at=t0 + timedelta(minutes=145))
    assert done.status == "discharged" and done.early_discharge_reason is None
    assert done.chair_minutes == pytest.approx(145.0)


def test_discharge_before_iv_stop_time_is_refused(db, nurse):
    sid = new_session(db, nurse)
    t0 = walk(db, nurse, sid, "observation", t0=ago(200), infusion_minutes=60)
    with unchanged(db), pytest.raises(ValidationError):
        sessions.discharge(db, nurse, sid, expected_version=None, at=t0 + timedelta(minutes=70), early_reason="x")


def test_discharge_waits_for_open_reaction(db, nurse):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "observation", t0=ago(200), infusion_minutes=60)
    reaction = entries.record_reaction(
        db, nurse, sid, symptoms=["headache"], grade=1, actions=["observed"], onset_at=ago(50)
    )
    with unchanged(db), pytest.raises(StateError, match="reaction"):
        sessions.discharge(db, nurse, sid, expected_version=None)
    entries.resolve_reaction(db, nurse, reaction.id, resolved_at=ago(10))
    assert sessions.discharge(db, nurse, sid, expected_version=None).status == "discharged"


# ---------------------------------------------------------------- infusion length


def test_infusion_over_12_hours_is_refused(db, nurse):
    sid = new_session(db, nurse, "ivig")
    t0 = walk(db, nurse, sid, "infusing", t0=ago(13 * 60 + 40))
    start = t0 + timedelta(minutes=20)
    with unchanged(db), pytest.raises(ValidationError) as exc:
        sessions.stop_iv(db, nurse, sid, expected_version=None, at=start + timedelta(hours=12, minutes=1))
    assert "12 h" in exc.value.problems["iv_stopped_at"]
    with unchanged(db), pytest.raises(ValidationError):
        sessions.stop_iv(db, nurse, sid, expected_version=None)  # now: 13 h+
    stopped = sessions.stop_iv(db, nurse, sid, expected_version=None, at=start + timedelta(hours=12))
    assert stopped.infusion_minutes == pytest.approx(720.0)
    assert stopped.long_infusion_flag is False  # IVIG has no upper bound


@pytest.mark.parametrize("minutes,flagged", [(60, False), (75, False), (76, True), (11 * 60, True)])
def test_longer_than_window_is_flagged_not_refused(db, nurse, minutes, flagged):
    sid = new_session(db, nurse)  # Tysabri: about 1 h, tolerance 15 min
    walk(db, nurse, sid, "observation", t0=ago(minutes + 40), infusion_minutes=minutes)
    stored = row(db, sid)
    assert stored.status == "observation"
    assert stored.infusion_minutes == pytest.approx(minutes)
    assert stored.long_infusion_flag is flagged


def test_window_follows_the_infusion_number(db, nurse):
    # Briumvi: infusion 1 about 4 h, later about 1 h
    patient = new_patient(db, nurse)
    first = new_session(db, nurse, "ublituximab", patient_id=patient)
    walk(db, nurse, first, "observation", t0=ago(600), infusion_minutes=250)
    assert row(db, first).long_infusion_flag is False
    sessions.discharge(db, nurse, first, expected_version=None)
    second = new_session(db, nurse, "ublituximab", patient_id=patient)
    assert row(db, second).infusion_number == 2
    walk(db, nurse, second, "observation", t0=ago(300), infusion_minutes=90)
    assert row(db, second).long_infusion_flag is True


def test_infusion_number_counts_infusions_given_before_this_one(db, nurse):
    patient = new_patient(db, nurse)
    day1 = new_session(db, nurse, "ublituximab", patient_id=patient)
    day15 = new_session(db, nurse, "ublituximab", patient_id=patient)  # both booked ahead
    walk(db, nurse, day1, "discharged", t0=ago(600), infusion_minutes=240)
    walk(db, nurse, day15, "infusing", t0=ago(60))
    assert row(db, day15).infusion_number == 2


# ---------------------------------------------------------------- program checklist and premedication


def test_touch_checklist_required_before_tysabri_iv_start(db, nurse):
    sid = new_session(db, nurse, "natalizumab")
    walk(db, nurse, sid, "ready", t0=ago(60))
    with unchanged(db), pytest.raises(StateError, match="TOUCH"):
        sessions.start_iv(
            db,
            nurse,
            sid,
            expected_version=None,
            site="Right forearm",
            gauge=20,
            attempts=1,
            lot_number="TY1",
            rate_ml_h=100,
        )
    count = audit_count(db)
    check = sessions.confirm_program(db, nurse, sid, authorization_ref="TOUCH-42")
    again = sessions.confirm_program(db, nurse, sid, authorization_ref="TOUCH-42")
    assert again.id == check.id
    assert [e.action for e in audits_since(db, count)] == ["confirm_program"]  # the repeat wrote nothing
    started = sessions.start_iv(
        db,
        nurse,
        sid,
        expected_version=None,
        site="Right forearm",
        gauge=20,
        attempts=1,
        lot_number="TY1",
        rate_ml_h=100,
    )
    assert started.status == "infusing"


def test_program_check_only_for_therapies_with_a_program(db, nurse):
    sid = new_session(db, nurse, "ocrelizumab_iv")
    walk(db, nurse, sid, "ready", t0=ago(60))
    with unchanged(db), pytest.raises(StateError, match="no program"):
        sessions.confirm_program(db, nurse, sid)


def test_lemtrada_needs_rems_and_premedication(db, nurse):
    sid = new_session(db, nurse, "alemtuzumab")
    walk(db, nurse, sid, "ready", t0=ago(60))
    kwargs = dict(expected_version=None, site="Left hand", gauge=22, attempts=1, lot_number="LM1", rate_ml_h=25)
    with unchanged(db), pytest.raises(StateError, match="Lemtrada REMS"):
        sessions.start_iv(db, nurse, sid, **kwargs)
    sessions.confirm_program(db, nurse, sid)
    with unchanged(db), pytest.raises(ValidationError) as exc:
        sessions.start_iv(db, nurse, sid, **kwargs)
    assert "premedication" in exc.value.problems


def test_ocrevus_premedication_required_or_a_reason(db, nurse):
    sid = new_session(db, nurse, "ocrelizumab_iv")
    walk(db, nurse, sid, "ready", t0=ago(60))
    kwargs = dict(expected_version=None, site="Left antecubital", gauge=20, attempts=1, lot_number="OC1", rate_ml_h=30)
    with unchanged(db), pytest.raises(ValidationError) as exc:
        sessions.start_iv(db, nurse, sid, **kwargs, premed_skip_reason="  ")
    message = exc.value.problems["premedication"]
    assert "Ocrevus" in message and "Methylprednisolone 100 mg" in message
    started = sessions.start_iv(db, nurse, sid, **kwargs, premed_skip_reason="Given at the referring clinic")
    assert started.status == "infusing"
    assert started.premed_override_reason == "Given at the referring clinic"


def test_ocrevus_with_recorded_premedication_starts(db, nurse):
    sid = new_session(db, nurse, "ocrelizumab_iv")
    walk(db, nurse, sid, "infusing", t0=ago(60))  # walk records methylprednisolone first
    stored = row(db, sid)
    assert stored.status == "infusing" and stored.premed_override_reason is None
    assert len(rows_of(db, Premedication, sid)) == 1


def test_premedication_fields_are_validated(db, nurse):
    sid = new_session(db, nurse, "ocrelizumab_iv")
    walk(db, nurse, sid, "checked_in", t0=ago(60))
    with unchanged(db), pytest.raises(ValidationError) as exc:
        entries.record_premedication(db, nurse, sid, drug=" ", dose="100 mg")
    assert "drug" in exc.value.problems
    with unchanged(db), pytest.raises(ValidationError):
        entries.record_premedication(db, nurse, sid, drug="Cetirizine", dose="10 mg", route="rectal")
    with unchanged(db), pytest.raises(ValidationError):
        entries.record_premedication(db, nurse, sid, drug="Cetirizine", dose="10 mg", given_at=ago(120))


def test_iv_start_fields_are_validated(db, nurse):
    sid = new_session(db, nurse, "edaravone")
    walk(db, nurse, sid, "ready", t0=ago(60))
    with unchanged(db), pytest.raises(ValidationError) as exc:
        sessions.start_iv(
            db, nurse, sid, expected_version=None, site="Elbow", gauge=19, attempts=0, lot_number=" ", rate_ml_h=0
        )
    assert set(exc.value.problems) == {"iv_site", "iv_gauge", "iv_attempts", "lot_number", "rate_ml_h"}
    with unchanged(db), pytest.raises(ValidationError) as exc:
        sessions.start_iv(
            db, nurse, sid, expected_version=None, site="Port", gauge=20, attempts=1, lot_number="ED1", rate_ml_h=5000
        )
    assert "mL/h" in exc.value.problems["rate_ml_h"]


def test_rate_values_are_validated(db, nurse):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "infusing", t0=ago(60))
    for bad in (0, -5, 1001):
        with unchanged(db), pytest.raises(ValidationError):
            entries.change_rate(db, nurse, sid, bad)


# ---------------------------------------------------------------- flagged vitals


def test_flagged_vitals_need_acknowledgement_and_store_nothing_until_then(db, nurse):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "infusing", t0=ago(60))
    low = normal_vitals(systolic=85, diastolic=55)
    with unchanged(db), pytest.raises(ConfirmationRequired) as exc:
        entries.record_vitals(db, nurse, sid, low)
    assert any("Systolic BP 85 < 90" in f for f in exc.value.flags)
    assert any("fell 39" in f for f in exc.value.flags)  # baseline 124 from check-in
    vital = entries.record_vitals(
        db,
        nurse,
        sid,
        normal_vitals(systolic=85, diastolic=55, provider_notified=True, provider_name="Dr Okafor"),
        acknowledge_flags=True,
    )
    # DBP 55 < 60 flags too (NHS "below 90/60 mmHg", docs/clinical-basis.md §6)
    assert {f["code"] for f in vital.flags} == {"sbp_low", "dbp_low", "sbp_change", "news2_single_3"}
    assert vital.flag_count == 4
    assert vital.provider_notified and vital.provider_name == "Dr Okafor"
    assert vital.provider_notified_at is not None


def test_flags_show_before_saving_and_the_confirmed_save_keeps_the_form_token(db, nurse):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "infusing", t0=ago(60))
    entry = normal_vitals(temperature=38.6, spo2=90)
    with unchanged(db):
        preview = entries.preview_vitals(db, nurse, sid, entry)
    assert {f.code for f in preview.flags} == {"temp_high", "spo2_low", "news2_single_3"}
    assert preview.news2.total == 4  # SpO2 90 → 3, 38.6 °C → 1
    with unchanged(db), pytest.raises(ConfirmationRequired):
        entries.record_vitals(db, nurse, sid, entry, client_token="form-1")
    saved = entries.record_vitals(db, nurse, sid, entry, client_token="form-1", acknowledge_flags=True)
    assert saved.flag_count == 3 and saved.news2 == 4


def test_invalid_vitals_are_rejected_with_field_messages(db, nurse):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "infusing", t0=ago(60))
    with unchanged(db), pytest.raises(ValidationError) as exc:
        entries.record_vitals(db, nurse, sid, normal_vitals(systolic=350, temperature=101.2))
    assert "40–300" in exc.value.problems["systolic"]
    assert "°F" in exc.value.problems["temperature"]
    with unchanged(db), pytest.raises(ValidationError) as exc:
        entries.record_vitals(db, nurse, sid, normal_vitals(provider_notified=True))
    assert "provider_name" in exc.value.problems


def test_check_in_with_fever_asks_for_confirmation_first(db, nurse):
    sid = new_session(db, nurse)
    with unchanged(db), pytest.raises(ConfirmationRequired) as exc:
        sessions.check_in(db, nurse, sid, normal_vitals(temperature=38.4), expected_version=None, at=ago(5))
    assert any("38.4 °C" in f for f in exc.value.flags)
    checked = sessions.check_in(
        db, nurse, sid, normal_vitals(temperature=38.4), expected_version=None, at=ago(5), acknowledge_flags=True
    )
    assert checked.status == "checked_in"
    [vital] = rows_of(db, VitalSign, sid)
    assert vital.temperature_c == pytest.approx(38.4) and vital.flags[0]["code"] == "temp_high"


def test_check_in_requires_the_core_set(db, nurse):
    sid = new_session(db, nurse)
    with unchanged(db), pytest.raises(ValidationError) as exc:
        sessions.check_in(db, nurse, sid, normal_vitals(spo2=None, resp_rate=None), expected_version=None)
    assert {"spo2", "resp_rate"} <= set(exc.value.problems)
    checked = sessions.check_in(
        db,
        nurse,
        sid,
        normal_vitals(spo2=None, unable_to_obtain={"spo2": "nail polish"}, resp_rate=18),
        expected_version=None,
    )
    assert checked.status == "checked_in"
    assert rows_of(db, VitalSign, sid)[0].unable_to_obtain == {"spo2": "nail polish"}


# ---------------------------------------------------------------- reactions


def test_anaphylaxis_below_grade_3_is_refused(db, nurse):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "infusing", t0=ago(60))
    for grade in (1, 2):
        with unchanged(db), pytest.raises(ValidationError) as exc:
            entries.record_reaction(
                db,
                nurse,
                sid,
                symptoms=["anaphylaxis", "urticaria"],
                grade=grade,
                actions=["stopped", "medication_given"],
                medication_given="Epinephrine 0.5 mg IM",
            )
        assert "grade 3" in exc.value.problems["grade"]
    reaction = entries.record_reaction(
        db,
        nurse,
        sid,
        symptoms=["anaphylaxis"],
        grade=3,
        actions=["stopped", "medication_given"],
        medication_given="Epinephrine 0.5 mg IM",
    )
    assert reaction.grade == 3
    assert row(db, sid).worst_grade == 3


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(symptoms=[], grade=1, actions=["observed"]), "symptoms"),
        (dict(symptoms=["sneezing"], grade=1, actions=["observed"]), "symptoms"),
        (dict(symptoms=["other"], grade=1, actions=["observed"]), "other_text"),
        (dict(symptoms=["rash"], grade=0, actions=["observed"]), "grade"),
        (dict(symptoms=["rash"], grade=6, actions=["observed"]), "grade"),
        (dict(symptoms=["rash"], grade=1, actions=[]), "actions"),
        (dict(symptoms=["rash"], grade=1, actions=["prayed"]), "actions"),
        (dict(symptoms=["rash"], grade=2, actions=["medication_given"]), "medication_given"),
        (dict(symptoms=["rash"], grade=2, actions=["observed"], provider_notified=True), "provider_name"),
    ],
)
def test_reaction_fields_are_validated(db, nurse, kwargs, field):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "infusing", t0=ago(60))
    with unchanged(db), pytest.raises(ValidationError) as exc:
        entries.record_reaction(db, nurse, sid, **kwargs)
    assert field in exc.value.problems


def test_reaction_summaries(db, nurse):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "observation", t0=ago(200))
    entries.record_reaction(
        db, nurse, sid, symptoms=["headache"], grade=1, actions=["observed"], onset_at=ago(100), resolved_at=ago(90)
    )
    entries.record_reaction(
        db,
        nurse,
        sid,
        symptoms=["dyspnea", "hypotension"],
        grade=3,
        actions=["medication_given"],
        medication_given="Hydrocortisone 100 mg IV",
        onset_at=ago(60),
        resolved_at=ago(30),
    )
    entries.record_reaction(
        db,
        nurse,
        sid,
        symptoms=["other"],
        other_text="metallic taste",
        grade=1,
        actions=["observed"],
        onset_at=ago(20),
        resolved_at=ago(15),
    )
    stored = row(db, sid)
    assert stored.reaction_count == 3 and stored.worst_grade == 3


# ---------------------------------------------------------------- one active session per chair and patient


def test_a_chair_holds_one_active_session(db, nurse):
    chair = new_chair(db, nurse)
    first = new_session(db, nurse, chair_id=chair)
    second = new_session(db, nurse, chair_id=chair)
    walk(db, nurse, first, "infusing", t0=ago(60))
    with unchanged(db), pytest.raises(ConflictError, match="chair"):
        sessions.check_in(db, nurse, second, normal_vitals(), expected_version=None)
    sessions.stop_iv(db, nurse, first, expected_version=None)
    sessions.discharge(db, nurse, first, expected_version=None, early_reason="test")
    assert sessions.check_in(db, nurse, second, normal_vitals(), expected_version=None).status == "checked_in"


def test_a_patient_has_one_active_session(db, nurse):
    patient = new_patient(db, nurse)
    first = new_session(db, nurse, patient_id=patient)
    second = new_session(db, nurse, "methylprednisolone", patient_id=patient)
    walk(db, nurse, first, "checked_in", t0=ago(60))
    with unchanged(db), pytest.raises(ConflictError, match="patient"):
        sessions.check_in(db, nurse, second, normal_vitals(), expected_version=None)


def _session_values(db, *, chair_id, patient_id, status):
    return dict(
        patient_id=patient_id,
        therapy_id=therapy_id(db, "natalizumab"),
        chair_id=chair_id,
        dose=300,
        dose_unit="mg",
        infusion_number=1,
        status=status,
        walk_in=True,
        scheduled_at=utcnow(),
        created_at=utcnow(),
        reaction_count=0,
        long_infusion_flag=False,
        version=1,
    )


@pytest.mark.parametrize("shared", ["chair", "patient"])
def test_database_index_refuses_a_second_active_session(db, nurse, shared):
    chair, patient = new_chair(db, nurse), new_patient(db, nurse)
    active = new_session(db, nurse, chair_id=chair, patient_id=patient)
    walk(db, nurse, active, "infusing", t0=ago(60))
    other_chair = chair if shared == "chair" else new_chair(db, nurse)
    other_patient = patient if shared == "patient" else new_patient(db, nurse)
    waiting = new_session(db, nurse, chair_id=other_chair, patient_id=other_patient)

    # UPDATE of a waiting session into an active status
    with unchanged(db), pytest.raises(IntegrityError):
        with db.writing() as s:
            s.execute(update(InfusionSession).where(InfusionSession.id == waiting).values(status="checked_in"))
    # INSERT of a new active session
    with unchanged(db), pytest.raises(IntegrityError):
        with db.writing() as s:
            s.execute(
                insert(InfusionSession).values(
                    **_session_values(db, chair_id=other_chair, patient_id=other_patient, status="observation")
                )
            )
    # closed and waiting sessions are not limited
    with db.writing() as s:
        for status in ("scheduled", "discharged", "deferred", "cancelled"):
            s.execute(
                insert(InfusionSession).values(
                    **_session_values(db, chair_id=other_chair, patient_id=other_patient, status=status)
                )
            )


# ---------------------------------------------------------------- stale screens and double taps


def test_stale_expected_version_is_a_conflict_and_changes_nothing(db, nurse):
    sid = new_session(db, nurse)
    seen = version(db, sid)
    other = Actor(None, "Second Nurse")
    sessions.check_in(db, other, sid, normal_vitals(), expected_version=seen, at=ago(20))
    with unchanged(db), pytest.raises(ConflictError) as exc:
        sessions.check_in(db, nurse, sid, normal_vitals(), expected_version=seen, at=ago(19))
    assert "Second Nurse" in str(exc.value) and "Nothing was saved" in str(exc.value)
    current = version(db, sid)
    assert current > seen
    sessions.proceed(db, nurse, sid, expected_version=current, at=ago(15))
    with unchanged(db), pytest.raises(ConflictError):
        sessions.defer(db, nurse, sid, "fever", expected_version=current)
    with unchanged(db), pytest.raises(ConflictError):
        entries.record_vitals(db, nurse, sid, normal_vitals(), expected_version=current)


def test_same_client_token_twice_stores_one_row(db, nurse):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "infusing", t0=ago(60))
    count = audit_count(db)
    first = entries.record_vitals(db, nurse, sid, normal_vitals(pulse=80), client_token="tok-vitals-1")
    again = entries.record_vitals(db, nurse, sid, normal_vitals(pulse=80), client_token="tok-vitals-1")
    assert again.id == first.id
    r1 = entries.record_reaction(
        db, nurse, sid, symptoms=["rash"], grade=1, actions=["observed"], client_token="tok-reaction-1"
    )
    r2 = entries.record_reaction(
        db, nurse, sid, symptoms=["rash"], grade=1, actions=["observed"], client_token="tok-reaction-1"
    )
    assert r1.id == r2.id
    p1 = entries.record_premedication(
        db, nurse, sid, drug="Acetaminophen", dose="650 mg", route="PO", client_token="tok-premed-1"
    )
    p2 = entries.record_premedication(
        db, nurse, sid, drug="Acetaminophen", dose="650 mg", route="PO", client_token="tok-premed-1"
    )
    assert p1.id == p2.id
    c1 = entries.change_rate(db, nurse, sid, 90, client_token="tok-rate-1")
    c2 = entries.change_rate(db, nurse, sid, 90, client_token="tok-rate-1")
    assert c1.id == c2.id
    assert len([v for v in rows_of(db, VitalSign, sid) if v.client_token == "tok-vitals-1"]) == 1
    assert len(rows_of(db, Reaction, sid)) == 1
    assert row(db, sid).reaction_count == 1
    assert len(rows_of(db, Premedication, sid)) == 1  # Tysabri: the walk records no premedication
    assert len([r for r in rows_of(db, RateChange, sid) if r.kind == "change"]) == 1
    assert [e.action for e in audits_since(db, count)] == [
        "record_vitals",
        "record_reaction",
        "record_premedication",
        "rate_change",
    ]


def test_client_token_from_another_session_is_refused(db, nurse):
    a, b = new_session(db, nurse), new_session(db, nurse)
    walk(db, nurse, a, "infusing", t0=ago(60))
    walk(db, nurse, b, "infusing", t0=ago(60))
    entries.record_vitals(db, nurse, a, normal_vitals(), client_token="tok-shared")
    with unchanged(db), pytest.raises(ValidationError) as exc:
        entries.record_vitals(db, nurse, b, normal_vitals(), client_token="tok-shared")
    assert "client_token" in exc.value.problems


def test_a_retried_premedication_or_reaction_is_saved_once_after_the_session_moved_on(db, nurse):
    """A retry that arrives after the nurse moved the session on (a tap answered late, a reload) is told
    its entry was saved, not refused for the new status: the entry is there, once."""
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "infusing", t0=ago(90))
    premed = entries.record_premedication(
        db, nurse, sid, drug="Acetaminophen", dose="650 mg", route="PO", client_token="tok-premed-late"
    )
    rash = {"symptoms": ["rash"], "grade": 1, "actions": ["observed"], "onset_at": ago(10), "resolved_at": ago(5)}
    reaction = entries.record_reaction(db, nurse, sid, **rash, client_token="tok-reaction-late")
    sessions.stop_iv(db, nurse, sid, expected_version=None)
    sessions.discharge(db, nurse, sid, expected_version=None, early_reason="test walk")
    with pytest.raises(StateError):  # a new entry is refused now
        entries.record_reaction(db, nurse, sid, symptoms=["rash"], grade=1, actions=["observed"])
    again = entries.record_premedication(
        db, nurse, sid, drug="Acetaminophen", dose="650 mg", route="PO", client_token="tok-premed-late"
    )
    twice = entries.record_reaction(db, nurse, sid, **rash, client_token="tok-reaction-late")
    assert (again.id, twice.id) == (premed.id, reaction.id)
    assert len(rows_of(db, Premedication, sid)) == 1 and len(rows_of(db, Reaction, sid)) == 1


def test_retry_with_same_token_and_version_returns_the_saved_row(db, nurse):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "infusing", t0=ago(60))
    seen = version(db, sid)
    first = entries.record_vitals(db, nurse, sid, normal_vitals(), client_token="tok-retry", expected_version=seen)
    again = entries.record_vitals(db, nurse, sid, normal_vitals(), client_token="tok-retry", expected_version=seen)
    assert again.id == first.id


def test_home_visits_share_one_location_but_not_one_patient(db, nurse):
    """Home infusion follows the same lifecycle; two patients can be infused at home at once,
    while a patient still has at most one active session."""
    from infusion.services import setup
    from tests.helpers import ADMIN

    home = setup.add_chair(db, ADMIN, "Home visit", kind="home")
    first = new_session(db, nurse, "natalizumab", chair_id=home.id)
    second = new_session(db, nurse, "natalizumab", chair_id=home.id)
    walk(db, nurse, first, "infusing", t0=ago(90))
    walk(db, nurse, second, "infusing", t0=ago(80))
    assert row(db, first).at_home and row(db, second).status == "infusing"
    from infusion.reads import board

    visits = board.home_visits(db, Actor(None, "Charge", "charge_nurse"))
    assert len(visits) == 2 and set(visits["status"]) == {"Infusing"}


# Regressions found in review: each is what a nurse or an auditor would notice.


def test_a_refused_walk_in_stores_no_new_patient(db):
    from sqlalchemy import func, select

    from db.models import Patient
    from infusion.services import sessions

    nurse = staff_actor(db, "Ann Author")
    chair = setup.add_chair(db, ADMIN, "Chair W")
    therapy = next(t for t in setup.list_therapies(db) if t.code == "natalizumab")
    new = {"mrn": "MRN-W1", "given_name": "Wendy", "family_name": "Walk"}
    with pytest.raises(ValidationError):
        sessions.create_walk_in(db, nurse, therapy_id=therapy.id, chair_id=chair.id, dose=-1, new_patient=new)
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Patient).where(Patient.mrn == "MRN-W1")) == 0
    made = sessions.create_walk_in(db, nurse, therapy_id=therapy.id, chair_id=chair.id, new_patient=new)
    assert made.status == "scheduled" and made.dose == 300


@pytest.mark.parametrize(
    ("actions", "medication", "field"),
    [
        (["observed", "medication_given"], "Diphenhydramine 25 mg IV", "actions"),
        (["observed"], "Diphenhydramine 25 mg IV", "medication_given"),
    ],
)
def test_a_reaction_cannot_say_observed_only_and_name_a_medication(db, nurse, actions, medication, field):
    """'Observed only' with a medication given contradicts itself in the record: refused, nothing stored."""
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "infusing", t0=ago(90))
    with pytest.raises(ValidationError) as refused:
        entries.record_reaction(
            db, nurse, sid, symptoms=["rash"], grade=1, actions=actions, medication_given=medication
        )
    assert field in refused.value.problems
    assert row(db, sid).reaction_count == 0
