"""The session timeline figure and its CSV frame, built from sessions charted through the services.

Runs on SQLite, and on PostgreSQL when CHAIRSIDE_TEST_POSTGRES_URL is set.
Assertions read the figure's data (traces, their x/y, colours, hover), not pixels.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from infusion.accounts.actor import SYSTEM, Actor
from infusion.charts.timeline import (
    GRADE_COLOURS,
    INACTIVE_GREY,
    PHASE_COLOURS,
    ROWS,
    session_forecast,
    session_timeline,
    timeline_frame,
)
from infusion.clock import utcnow
from infusion.reads import sessions as views
from infusion.services import entries, sessions
from infusion.services.corrections import correct_vitals, mark_entered_in_error
from infusion.services.setup import add_staff, update_clinic
from tests.helpers import new_chair, new_patient, normal_vitals, therapy_id, walk

TZ = "America/Chicago"
READER = Actor(None, "Test Nurse", "nurse")  # opens the record (CLINICAL_READ)


def local(t: datetime) -> datetime:
    """How the figure draws a time: clinic wall-clock, naive."""
    return t.astimezone(ZoneInfo(TZ)).replace(tzinfo=None)


def by_role(fig, role: str, **match) -> list:
    return [
        t
        for t in fig.data
        if isinstance(t.meta, dict) and t.meta.get("role") == role and all(t.meta.get(k) == v for k, v in match.items())
    ]


def one(fig, role: str, **match):
    found = by_role(fig, role, **match)
    assert len(found) == 1, f"{role} {match}: {len(found)} traces"
    return found[0]


def row_of(trace) -> int:
    return 1 if trace.yaxis == "y" else int(trace.yaxis[1:])


def f_vitals(**overrides):
    """A normal set in °F (this test clinic's unit)."""
    return normal_vitals(**{"temperature": 98.2, **overrides})


@pytest.fixture
def charted(db):
    """An Ocrevus first infusion in a °F clinic, still infusing: steps, a pause, a reaction, flags, corrections."""
    admin = Actor(None, "a", "admin")
    update_clinic(db, admin, name="Test clinic", timezone=TZ, temperature_unit="F", weight_unit="lb")
    nina = add_staff(db, SYSTEM, "Nina Nurse", role="nurse")
    carla = add_staff(db, SYSTEM, "Carla Charge", role="charge_nurse")
    nurse, charge = Actor(nina.id, "Nina Nurse", "nurse"), Actor(carla.id, "Carla Charge", "charge_nurse")
    now = utcnow().replace(second=0, microsecond=0)
    t0 = now - timedelta(minutes=100)
    start = t0 + timedelta(minutes=20)
    s = lambda m: start + timedelta(minutes=m)  # noqa: E731

    sid = sessions.create_session(
        db,
        nurse,
        patient_id=new_patient(db, nurse),
        therapy_id=therapy_id(db, "ocrelizumab_iv"),
        chair_id=new_chair(db, nurse),
    ).id
    sessions.check_in(db, nurse, sid, f_vitals(), expected_version=None, at=t0)
    sessions.proceed(db, nurse, sid, expected_version=None, at=t0 + timedelta(minutes=5))
    entries.record_premedication(
        db, nurse, sid, drug="Methylprednisolone", dose="100 mg", given_at=t0 + timedelta(minutes=10)
    )
    sessions.start_iv(
        db,
        nurse,
        sid,
        expected_version=None,
        site="Left forearm",
        gauge=22,
        attempts=1,
        lot_number="LOT-1",
        rate_ml_h=30,
        at=start,
    )
    entries.record_vitals(
        db, nurse, sid, f_vitals(systolic=120, diastolic=76, pulse=74, temperature=98.4), taken_at=s(15)
    )
    entries.change_rate(db, nurse, sid, 60, at=s(30))
    entries.record_vitals(
        db, nurse, sid, f_vitals(pulse=130, temperature=100.8), taken_at=s(30), acknowledge_flags=True
    )
    entries.record_reaction(
        db,
        nurse,
        sid,
        symptoms=["flushing", "rash"],
        grade=2,
        actions=["paused", "medication_given"],
        medication_given="Diphenhydramine 25 mg IV",
        onset_at=s(35),
        resolved_at=s(50),
    )
    # the reaction's "paused" paused the infusion at its onset, s(35)
    entries.resume(db, nurse, sid, 30, at=s(55))
    typo = entries.record_vitals(db, nurse, sid, f_vitals(pulse=88), taken_at=s(60))
    correct_vitals(db, charge, typo.id, f_vitals(pulse=78), reason="typo: 78 not 88")
    wrong = entries.record_vitals(db, nurse, sid, f_vitals(spo2=85), taken_at=s(65), acknowledge_flags=True)
    mark_entered_in_error(db, charge, "vital_sign", wrong.id, "wrong patient")
    entries.record_vitals(db, nurse, sid, f_vitals(pulse=76), taken_at=s(70))  # entered within 15 min: not late
    detail = views.session_detail(db, READER, sid, now=now)
    assert detail is not None
    return detail, now, start


def test_rows_and_vital_series_in_display_units(charted):
    detail, now, start = charted
    fig = session_timeline(detail, now)
    axes = [k for k in fig.layout.to_plotly_json() if k.startswith("yaxis")]
    assert len(axes) == len(ROWS) == 7
    titles = [a.text for a in fig.layout.annotations][:7]
    assert titles == [
        "Phase · reactions",
        "Rate mL/h",
        "BP mmHg",
        "Pulse /min",
        "Temperature °F",
        "SpO2 %",
        "Respiration /min",
    ]
    assert {t.type for t in fig.data} == {"scatter"}  # SVG, not WebGL

    times = [local(start + timedelta(minutes=m)) for m in (15, 30, 60, 70)]
    check_in = local(start - timedelta(minutes=20))
    expected = {  # active values only; the corrected 88 and the entered-in-error set are elsewhere
        "systolic": [124, 120, 124, 124, 124],
        "diastolic": [78, 76, 78, 78, 78],
        "pulse": [72, 74, 130, 78, 76],
        "temperature_c": [98.2, 98.4, 100.8, 98.2, 98.2],
        "spo2": [98, 98, 98, 98, 98],
        "resp_rate": [16, 16, 16, 16, 16],
    }
    rows = {"systolic": 3, "diastolic": 3, "pulse": 4, "temperature_c": 5, "spo2": 6, "resp_rate": 7}
    for key, values in expected.items():
        trace = one(fig, "vital", series=key)
        assert list(trace.y) == values, key
        assert list(trace.x) == [check_in, *times]
        assert row_of(trace) == rows[key]

    hover = one(fig, "vital", series="pulse").hovertext
    assert "Pulse 72 /min" in hover[0] and "entered by Nina Nurse" in hover[0]
    assert "late entry" in hover[1]  # taken 65 min before it was entered
    assert "late entry" not in hover[-1]  # the last set, entered 10 min after it was taken
    assert "<b>correction</b> of an earlier entry: typo: 78 not 88" in hover[3] and "late entry" not in hover[3]
    assert "BP 124/78 mmHg" in one(fig, "vital", series="systolic").hovertext[0]
    bp_span = one(fig, "bp_span")
    assert list(bp_span.y[:3]) == [78, 124, None]


def test_flagged_points_and_thresholds(charted):
    detail, now, start = charted
    fig = session_timeline(detail, now)
    at30 = local(start + timedelta(minutes=30))
    pulse = one(fig, "flagged", row="pulse")
    assert (list(pulse.x), list(pulse.y)) == ([at30], [130])
    assert pulse.marker.color == "#dc2626" and pulse.marker.symbol == "diamond" and pulse.name == "Flagged"
    assert "Pulse 130 > 120 /min" in pulse.hovertext[0]
    temp = one(fig, "flagged", row="temperature")
    assert list(temp.y) == [100.8] and "100.4 °F" in temp.hovertext[0]  # 38.0 °C threshold shown in °F
    assert by_role(fig, "flagged", row="spo2") == []  # the SpO2 85 set was entered in error: not a live flag

    shapes = [s for s in fig.layout.shapes if s.name and s.name.startswith("threshold")]
    names = {s.name for s in shapes}
    assert names == {
        "threshold: SBP < 90",
        "threshold: SBP ≥ 180",
        "threshold: HR < 50",
        "threshold: HR > 120",
        "threshold: T ≥ 100.4 °F",
        "threshold: SpO2 < 92 %",
        "threshold: RR > 24",
        "threshold: DBP ≥ 110",
    }  # a dashed line, not a band: it overlaps normal systolic values
    temp_band = next(s for s in shapes if s.name == "threshold: T ≥ 100.4 °F")
    assert temp_band.y0 == 100.4 and temp_band.yref == "y5"
    assert "DBP ≥ 110" in {a.text for a in fig.layout.annotations}


def test_rate_steps_plan_and_forecast(charted):
    detail, now, start = charted
    fig = session_timeline(detail, now)
    rate = one(fig, "rate")
    assert rate.line.shape == "hv" and row_of(rate) == 2
    minutes = [0, 30, 35, 55]
    assert list(rate.x) == [local(start + timedelta(minutes=m)) for m in minutes] + [local(now)]
    assert list(rate.y) == [30, 60, 0, 30, 30]  # start, step, pause at 0, resume, running on to now

    planned = one(fig, "planned_rate")
    assert planned.line.dash == "dash" and planned.line.shape == "hv"
    assert list(planned.y) == [30, 60, 90, 120, 150, 180, 0]
    assert list(planned.x) == [local(start + timedelta(minutes=m)) for m in (0, 30, 60, 90, 120, 150)] + [
        local(start + timedelta(seconds=9500))
    ]  # bag done at 158 min 20 s

    # forecast from now: resumed at 30 (reduced from 60) at +55, so hold to +85, then 60, 90, …
    forecast = one(fig, "forecast_rate")
    assert forecast.x[0] == local(now) and forecast.y[0] == 30
    assert (forecast.x[1], forecast.y[1]) == (local(start + timedelta(minutes=85)), 60)
    assert forecast.y[-1] == 0


def test_reaction_marker_phases_and_corrections(charted):
    detail, now, start = charted
    fig = session_timeline(detail, now)
    reaction = one(fig, "reaction", grade=2)
    assert reaction.marker.color == GRADE_COLOURS[2] == "#f97316"
    assert list(reaction.text) == ["G2"] and reaction.x[0] == local(start + timedelta(minutes=35))
    hover = reaction.hovertext[0]
    for text in (
        "Flushing",
        "Rash",
        "Infusion paused",
        "Diphenhydramine 25 mg IV",
        "resolved",
        "15 min",
        "entered by Nina Nurse",
    ):
        assert text in hover, text
    onset = [s for s in fig.layout.shapes if s.type == "line" and s.line.color == GRADE_COLOURS[2]]
    assert len(onset) == 1 and (onset[0].yref, onset[0].y0, onset[0].y1) == ("paper", 0, 1)  # across every row
    assert onset[0].x0 == reaction.x[0]

    phases = [t.meta["phase"] for t in by_role(fig, "phase")]
    assert phases == ["Check-in", "Premedication", "Infusing", "Paused", "Infusing"]
    assert [t.fillcolor for t in by_role(fig, "phase")][:4] == [PHASE_COLOURS[p] for p in phases[:4]]
    assert list(one(fig, "phase_labels").text) == phases  # colour is not the only signal

    corrected = one(fig, "corrected", row="pulse")
    assert list(corrected.y) == [88] and corrected.marker.color == INACTIVE_GREY
    assert corrected.marker.symbol == "circle-open" and "corrected" in corrected.hovertext[0]
    assert "corrected</b> by Carla Charge" in corrected.hovertext[0] and "typo: 78 not 88" in corrected.hovertext[0]
    in_error = one(fig, "entered_in_error", row="spo2")
    assert list(in_error.y) == [85] and in_error.marker.symbol.endswith("-open")
    assert "entered in error</b>: wrong patient" in in_error.hovertext[0]


def test_frame_matches_the_figure(charted):
    detail, now, start = charted
    fig = session_timeline(detail, now)
    frame = timeline_frame(detail, now)
    assert str(frame["time"].dt.tz) == TZ

    pulse = frame[frame.series == "pulse"].sort_values("time", kind="stable")
    assert list(pulse.value) == [72, 74, 130, 88, 78, 72, 76]  # every pulse ever recorded, with its status
    assert list(pulse.status) == ["active", "active", "active", "corrected", "active", "entered_in_error", "active"]
    active = pulse[pulse.status == "active"]
    trace = one(fig, "vital", series="pulse")
    assert [t.replace(tzinfo=None) for t in active.time.dt.to_pydatetime()] == list(trace.x)
    assert list(active.value) == list(trace.y)
    flagged = frame[frame["flags"] != ""]
    assert set(flagged.series) == {"pulse", "temperature_c"}
    assert "Pulse 130 > 120" in flagged.loc[flagged.series == "pulse", "flags"].iloc[0]
    # late: entered > 15 min after it was taken; the 78 is a correction (marked as such, not late)
    assert list(pulse.late_entry) == [True, True, True, True, False, True, False]
    assert list(pulse.correction) == [False, False, False, False, True, False, False]
    assert set(pulse.entered_by) == {"Nina Nurse", "Carla Charge"}
    temp = frame[(frame.series == "temperature_c") & (frame.status == "active")]
    assert set(temp.unit) == {"°F"} and 100.8 in list(temp.value)

    rate = frame[frame.series == "rate"]
    assert list(rate.value) == [30, 60, 0, 30] and list(rate.detail) == ["start", "change", "pause", "resume"]
    assert len(frame[frame.series == "planned_rate"]) == 7
    reaction = frame[frame.series == "reaction"].iloc[0]
    assert reaction.value == 2 and "Flushing" in reaction.detail
    assert reaction.end - reaction.time == pd.Timedelta(minutes=15)
    assert list(frame[frame.series == "phase"].detail) == [
        "Check-in",
        "Premedication",
        "Infusing",
        "Paused",
        "Infusing",
    ]
    assert list(frame.columns) == [
        "time",
        "end",
        "series",
        "value",
        "unit",
        "status",
        "flags",
        "late_entry",
        "correction",
        "entered_by",
        "entered_at",
        "detail",
    ]


def test_discharged_session_in_a_celsius_clinic(db, nurse):
    """A finished Tysabri session: observation band, discharge mark, no 'now' line or forecast."""
    sid = sessions.create_session(
        db,
        nurse,
        patient_id=new_patient(db, nurse),
        therapy_id=therapy_id(db, "natalizumab"),
        chair_id=new_chair(db, nurse),
    ).id
    t0 = walk(db, nurse, sid, "discharged", infusion_minutes=60)
    now = utcnow()
    detail = views.session_detail(db, READER, sid, now=now)
    fig = session_timeline(detail, now)
    assert [t.meta["phase"] for t in by_role(fig, "phase")] == ["Check-in", "Infusing", "Observation"]
    marks = {t.meta["phase"]: t for t in by_role(fig, "phase_mark")}
    assert set(marks) == {"Observation ends", "Discharged"}
    assert marks["Observation ends"].x[0] == local_utc(t0 + timedelta(minutes=80 + 60))  # Tysabri: 1 h after stop
    assert by_role(fig, "forecast_rate") == []
    assert list(one(fig, "vital", series="temperature_c").y) == [36.8]
    rate = one(fig, "rate")
    assert list(rate.y) == [100, 0]  # the walk starts at 100 mL/h and stops at +60 min
    assert list(one(fig, "planned_rate").y) == [100, 0]  # Tysabri: 100 mL over 60 min
    assert list(one(fig, "planned_rate").x) == [
        local_utc(t0 + timedelta(minutes=20)),
        local_utc(t0 + timedelta(minutes=80)),
    ]


def local_utc(t: datetime) -> datetime:
    return t.replace(tzinfo=None)  # the default clinic is UTC


def test_a_session_not_yet_checked_in_draws_an_empty_figure(db, nurse):
    sid = sessions.create_session(
        db, nurse, patient_id=new_patient(db, nurse), therapy_id=therapy_id(db, "ivig"), chair_id=new_chair(db, nurse)
    ).id
    detail = views.session_detail(db, READER, sid)
    fig = session_timeline(detail)
    assert by_role(fig, "vital", series="pulse")[0].y in (None, ())
    assert "not been checked in" in " ".join(a.text for a in fig.layout.annotations)
    assert timeline_frame(detail).empty


def test_ivig_draws_start_and_maximum_but_no_forecast(db, nurse):
    """docs/clinical-basis.md §3 gives IVIG a start rate and a maximum but no step size: both drawn, nothing forecast."""
    sid = sessions.create_session(
        db, nurse, patient_id=new_patient(db, nurse), therapy_id=therapy_id(db, "ivig"), chair_id=new_chair(db, nurse)
    ).id
    t0 = utcnow() - timedelta(minutes=60)
    sessions.check_in(db, nurse, sid, normal_vitals(weight=70), expected_version=None, at=t0)
    sessions.proceed(db, nurse, sid, expected_version=None, at=t0 + timedelta(minutes=5))
    sessions.start_iv(
        db,
        nurse,
        sid,
        expected_version=None,
        site="Left forearm",
        gauge=22,
        attempts=1,
        lot_number="LOT-1",
        rate_ml_h=35,
        at=t0 + timedelta(minutes=10),
    )
    detail = views.session_detail(db, READER, sid)
    fig = session_timeline(detail)
    assert list(one(fig, "planned_rate").y) == [35]  # 0.5 mL/kg/h × 70 kg
    assert list(one(fig, "planned_max").y) == [350, 350]  # 5 mL/kg/h × 70 kg
    assert by_role(fig, "forecast_rate") == []
    assert "step size" in session_forecast(detail).note
