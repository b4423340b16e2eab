"""The rate log says what the pump did. A rate above the label's ceiling for this infusion
(docs/clinical-basis.md §3) is never saved on one tap: the service refuses it until the nurse confirms,
stores nothing meanwhile, and keeps the confirmation in the audit trail; below the ceiling nothing changes.
A reaction saved as pausing or stopping a running infusion pauses it in the same save (SQLite and
PostgreSQL)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from db.models import AuditEvent, RateChange
from infusion.errors import ConfirmationRequired
from infusion.services import entries, sessions
from tests.helpers import ago, new_session, normal_vitals, row, walk


def _rate_rows(db, sid: int) -> int:  # type: ignore[no-untyped-def]
    with db.reading() as s:
        return int(s.scalar(select(func.count()).select_from(RateChange).where(RateChange.session_id == sid)))


def _last_event(db, action: str) -> AuditEvent:  # type: ignore[no-untyped-def]
    with db.reading() as s:
        return s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id.desc())).first()


def test_a_rate_above_the_ocrevus_plan_is_refused_until_confirmed(db, nurse):
    sid = new_session(db, nurse, "ocrelizumab_iv")
    walk(db, nurse, sid, "infusing", t0=ago(120))
    before = _rate_rows(db, sid)
    with pytest.raises(ConfirmationRequired) as asked:
        entries.change_rate(db, nurse, sid, 800)
    # the first Ocrevus infusion (300 mg in 250 mL) steps 30 → 180 mL/h
    assert "800 mL/h is above the label's highest step" in str(asked.value) and "180 mL/h" in str(asked.value)
    assert (_rate_rows(db, sid), row(db, sid).current_rate_ml_h) == (before, 100), "nothing stored"

    entries.change_rate(db, nurse, sid, 800, confirm_above_label=True)
    assert row(db, sid).current_rate_ml_h == 800
    event = _last_event(db, "rate_change")
    assert event.reason is not None and event.reason.startswith("Confirmed by the nurse: 800 mL/h")


def test_the_ceiling_itself_and_rates_below_need_no_confirmation(db, nurse):
    sid = new_session(db, nurse, "natalizumab")  # 100 mL over about an hour: 100 mL/h
    walk(db, nurse, sid, "infusing", t0=ago(120))
    for rate in (60, 100, 100.4):
        entries.change_rate(db, nurse, sid, rate)
        assert row(db, sid).current_rate_ml_h == rate
    assert _last_event(db, "rate_change").reason is None
    with pytest.raises(ConfirmationRequired, match="rate of the label's infusion time"):
        entries.change_rate(db, nurse, sid, 101)


def test_resume_and_iv_start_are_held_to_the_same_ceiling(db, nurse):
    sid = new_session(db, nurse, "natalizumab")
    walk(db, nurse, sid, "infusing", t0=ago(120))
    entries.pause(db, nurse, sid)
    with pytest.raises(ConfirmationRequired):
        entries.resume(db, nurse, sid, 300)
    assert row(db, sid).status == "paused"
    entries.resume(db, nurse, sid, 300, confirm_above_label=True)
    assert row(db, sid).status == "infusing"

    ready = new_session(db, nurse, "natalizumab")
    walk(db, nurse, ready, "ready", t0=ago(60))
    sessions.confirm_program(db, nurse, ready, authorization_ref="AUTH-1")  # TOUCH
    start = dict(expected_version=None, site="Left forearm", gauge=22, attempts=1, lot_number="TY-1", rate_ml_h=250)
    with pytest.raises(ConfirmationRequired):
        sessions.start_iv(db, nurse, ready, **start)
    assert row(db, ready).status == "ready" and _rate_rows(db, ready) == 0
    sessions.start_iv(db, nurse, ready, **start, confirm_above_label=True)
    assert row(db, ready).status == "infusing"
    assert "250 mL/h" in (_last_event(db, "start_iv").reason or "")


def test_ivig_is_held_to_five_ml_per_kg_per_hour_of_the_weight_measured(db, nurse):
    sid = new_session(db, nurse, "ivig")
    walk(db, nurse, sid, "infusing", t0=ago(120))
    entries.change_rate(db, nurse, sid, 900)  # no weight anywhere: no ceiling can be worked out
    entries.record_vitals(db, nurse, sid, normal_vitals(weight=60), taken_at=ago(30))
    entries.change_rate(db, nurse, sid, 300)  # 5 mL/kg/h × 60 kg
    with pytest.raises(ConfirmationRequired, match="weight-based maximum for .* 300 mL/h"):
        entries.change_rate(db, nurse, sid, 320)


def test_a_dose_based_plan_has_no_ml_ceiling(db, nurse):
    sid = new_session(db, nurse, "rituximab")  # mg/h: no concentration in the catalog
    walk(db, nurse, sid, "infusing", t0=ago(120))
    entries.change_rate(db, nurse, sid, 700)
    assert row(db, sid).current_rate_ml_h == 700


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rate=st.floats(min_value=0.5, max_value=1000, allow_nan=False), confirm=st.booleans())
def test_a_rate_is_stored_without_confirmation_exactly_when_within_the_ceiling(db, nurse, rate, confirm):
    sid = new_session(db, nurse, "natalizumab")
    walk(db, nurse, sid, "infusing", t0=ago(120))
    within = rate <= 100.5
    if within or confirm:
        entries.change_rate(db, nurse, sid, rate, confirm_above_label=confirm)
        assert row(db, sid).current_rate_ml_h == rate
        reason = _last_event(db, "rate_change").reason
        assert (reason is not None) == (not within)
    else:
        with pytest.raises(ConfirmationRequired):
            entries.change_rate(db, nurse, sid, rate)
        assert row(db, sid).current_rate_ml_h == 100


# ------------------------------------------------------------------ a reaction that interrupts the infusion
def _kinds(db, sid: int) -> list[str]:  # type: ignore[no-untyped-def]
    with db.reading() as s:
        return list(s.scalars(select(RateChange.kind).where(RateChange.session_id == sid).order_by(RateChange.at)))


@pytest.mark.parametrize("action", ["paused", "stopped"])
def test_a_reaction_saved_as_pausing_or_stopping_the_infusion_pauses_it_in_the_same_save(db, nurse, action):
    sid = new_session(db, nurse, "ocrelizumab_iv")
    walk(db, nurse, sid, "infusing", t0=ago(120))
    onset = ago(5)

    def save():  # type: ignore[no-untyped-def]
        return entries.record_reaction(
            db,
            nurse,
            sid,
            symptoms=["rash"],
            grade=2,
            actions=[action, "medication_given"],
            onset_at=onset,
            medication_given="Diphenhydramine 25 mg IV",
            client_token="rx-1",
        )

    reaction = save()
    assert row(db, sid).status == "paused"
    with db.reading() as s:
        pause = s.scalars(select(RateChange).where(RateChange.session_id == sid, RateChange.kind == "pause")).one()
    assert pause.at == reaction.onset_at == onset and "CTCAE grade 2" in (pause.note or "")
    assert _last_event(db, "rate_pause").session_id == sid
    # a retried save (same token) stores neither a second reaction nor a second pause
    again = save()
    assert again.id == reaction.id and _kinds(db, sid).count("pause") == 1
    entries.resume(db, nurse, sid, 50)  # half rate once it resolved
    assert row(db, sid).status == "infusing"


def test_a_reaction_that_did_not_interrupt_the_infusion_leaves_it_running(db, nurse):
    sid = new_session(db, nurse, "ocrelizumab_iv")
    walk(db, nurse, sid, "infusing", t0=ago(120))
    entries.record_reaction(db, nurse, sid, symptoms=["rash"], grade=1, actions=["observed"], onset_at=ago(5))
    assert row(db, sid).status == "infusing" and "pause" not in _kinds(db, sid)
    entries.pause(db, nurse, sid, at=ago(4))
    entries.record_reaction(db, nurse, sid, symptoms=["flushing"], grade=2, actions=["stopped"], onset_at=ago(3))
    assert row(db, sid).status == "paused" and _kinds(db, sid).count("pause") == 1  # already paused


def test_a_reaction_charted_after_the_pump_was_paused_and_restarted_makes_up_no_pause(db, nurse):
    """Treated first, charted later: paused 30 min ago, restarted 10 min ago, the reaction (onset 31 min ago,
    "paused") is saved alone: the rate log already says what the pump did."""
    sid = new_session(db, nurse, "ocrelizumab_iv")
    walk(db, nurse, sid, "infusing", t0=ago(120))
    entries.pause(db, nurse, sid, at=ago(30))
    entries.resume(db, nurse, sid, 50, at=ago(10))
    entries.record_reaction(db, nurse, sid, symptoms=["rash"], grade=2, actions=["paused"], onset_at=ago(31))
    assert row(db, sid).status == "infusing"
    assert _kinds(db, sid) == ["start", "pause", "resume"]


def test_a_confirmation_counts_only_for_the_reason_the_nurse_was_shown(db, nurse):
    sid = new_session(db, nurse, "ivig")
    walk(db, nurse, sid, "infusing", t0=ago(120))
    entries.record_vitals(db, nurse, sid, normal_vitals(weight=60), taken_at=ago(30))
    with pytest.raises(ConfirmationRequired) as asked:
        entries.change_rate(db, nurse, sid, 320)
    shown = " ".join(asked.value.flags)
    entries.record_vitals(db, nurse, sid, normal_vitals(weight=50), taken_at=ago(20))  # meanwhile: 250 mL/h
    with pytest.raises(ConfirmationRequired, match="250 mL/h"):
        entries.change_rate(db, nurse, sid, 320, confirm_above_label=shown)
    assert row(db, sid).current_rate_ml_h == 100
    entries.change_rate(db, nurse, sid, 320, confirm_above_label=" ".join(_asked(db, nurse, sid, 320)))
    assert row(db, sid).current_rate_ml_h == 320


def _asked(db, nurse, sid: int, rate: float) -> list[str]:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfirmationRequired) as asked:
        entries.change_rate(db, nurse, sid, rate)
    return asked.value.flags
