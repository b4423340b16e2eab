"""Trends metrics and completeness checks against a small hand-built clinic (SQLite and PostgreSQL).

The clinic is in America/New_York; every time below is clinic-local (EST in
January–March 2025, UTC−5). Tysabri = natalizumab (label about 60 min,
vitals every 60 min); Ocrevus = ocrelizumab IV (infusions 1–2 ≥ 150 min).
Standard visit: check-in t, IV start t+20, stop after the infusion, discharge
60 min later (the observation period).

  id   patient  therapy  chair  nurse  check-in          infusion  reactions (active)        notes
  s1   P1       Tysabri  A      Alpha  Mon 06 Jan 09:00  #1 120'   grade 2                   vitals +40', +90'
  s2   P1       Tysabri  A      Alpha  Mon 13 Jan 09:00  #2  60'   —
  s3   P1       Tysabri  A      Alpha  Mon 03 Feb 09:00  #3  60'   grade 1
  s4   P2       Tysabri  B      Bravo  Mon 06 Jan 10:00  #1  60'   —                         check-in vitals → entered in error
  s5   P2       Tysabri  B      Bravo  Fri 31 Jan 20:00  #2  60'   grade 3                   = Sat 1 Feb 01:00 UTC
  s6   P3       Ocrevus  B      Alpha  Mon 10 Feb 08:00  #1 160'   grades 2 and 1            vitals +55', +110'
  s7   P3       Ocrevus  B      Alpha  Mon 24 Feb 08:00  #2 140'   —                         vitals +60' (→ error), +115'
  s8   P4       Tysabri  B      Bravo  Mon 03 Mar 09:00  #1  60'   grade 2 → entered in error
  s9   P4       Tysabri  B      Bravo  Mon 10 Mar 09:00  #2 100'   —                         vitals +10' only
  s10  P5       Tysabri  B      Bravo  Mon 17 Mar 09:00  #1  60'   —                         left in observation
  s11  P6       Tysabri  A      Alpha  Mon 17 Mar 09:00  #1  60'   —                         IV stop erased (import)
  s12  P7       Tysabri  A      Alpha  Mon 24 Mar 09:00  —         —                         deferred at 09:30

Completed (discharged): s1–s9 and s11. Every expected number in the tests is
worked out by hand from this table, in the test's docstring or comments.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import select, update

from db.engine import Database
from db.models import InfusionSession, Reaction, Therapy, VitalSign
from infusion.accounts.actor import SYSTEM, Actor
from infusion.clinical.vitals import VitalsEntry
from infusion.reads import trends as metrics
from infusion.reads.trends import TrendFilters
from infusion.services import entries, sessions
from infusion.services.setup import add_chair, add_patient, add_staff, update_clinic

NY = ZoneInfo("America/New_York")
Q1 = TrendFilters(date(2025, 1, 1), date(2025, 3, 31))
_mrn = itertools.count(1)


def local(day: str, hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=NY)


def vitals() -> VitalsEntry:
    return VitalsEntry(systolic=124, diastolic=78, pulse=72, resp_rate=16, temperature=36.8, spo2=98, pain=0)


@dataclass
class Clinic:
    db: Database
    tysabri: int
    ocrevus: int
    chair_a: int
    chair_b: int
    alpha: int
    bravo: int
    s: dict[int, int]  # s[1] = id of session s1 …

    def filters(self, **kw: object) -> TrendFilters:
        return TrendFilters(**{"start": Q1.start, "end": Q1.end, **kw})  # type: ignore[arg-type]


def _therapy(db: Database, code: str) -> int:
    with db.reading() as s:
        return s.scalars(select(Therapy.id).where(Therapy.code == code)).one()


def visit(
    db: Database,
    nurse: Actor,
    *,
    patient: int,
    therapy: int,
    chair: int,
    checkin: datetime,
    infusion: int = 60,
    vitals_at: tuple[int, ...] = (),
    reactions: tuple[tuple[int, int], ...] = (),
    discharge: bool = True,
    defer_after: int | None = None,
) -> int:
    """One visit through the service functions; minutes in vitals_at/reactions count from IV start."""
    sid = sessions.create_session(
        db, nurse, patient_id=patient, therapy_id=therapy, chair_id=chair, scheduled_at=checkin
    ).id
    sessions.check_in(db, nurse, sid, vitals(), expected_version=None, at=checkin)
    if defer_after is not None:
        sessions.defer(
            db, nurse, sid, "Fever at check-in", expected_version=None, at=checkin + timedelta(minutes=defer_after)
        )
        return sid
    sessions.proceed(db, nurse, sid, expected_version=None, at=checkin + timedelta(minutes=5))
    with db.reading() as s:
        row = s.get(Therapy, therapy)
        program, premed = row.program, row.premedication_required
    if program:
        sessions.confirm_program(db, nurse, sid, authorization_ref="AUTH-1")
    if premed:
        entries.record_premedication(
            db, nurse, sid, drug="Methylprednisolone", dose="100 mg", given_at=checkin + timedelta(minutes=10)
        )
    start = checkin + timedelta(minutes=20)
    sessions.start_iv(
        db,
        nurse,
        sid,
        expected_version=None,
        site="Left forearm",
        gauge=22,
        attempts=1,
        lot_number="LOT-1",
        rate_ml_h=100,
        at=start,
    )
    for minutes in vitals_at:
        entries.record_vitals(db, nurse, sid, vitals(), taken_at=start + timedelta(minutes=minutes))
    for onset, grade in reactions:
        entries.record_reaction(
            db,
            nurse,
            sid,
            symptoms=["rash"],
            grade=grade,
            actions=["observed"],
            onset_at=start + timedelta(minutes=onset),
            resolved_at=start + timedelta(minutes=onset + 10),
        )
    stop = start + timedelta(minutes=infusion)
    sessions.stop_iv(db, nurse, sid, expected_version=None, at=stop)
    if discharge:
        sessions.discharge(db, nurse, sid, expected_version=None, at=stop + timedelta(minutes=60))
    return sid


def build(db: Database, *, mark_errors: bool = True) -> Clinic:
    update_clinic(db, SYSTEM, name="Test clinic", timezone="America/New_York", temperature_unit="C", weight_unit="kg")
    alpha = add_staff(db, SYSTEM, "Nurse Alpha").id
    bravo = add_staff(db, SYSTEM, "Nurse Bravo").id
    a, b = Actor(alpha, "Nurse Alpha"), Actor(bravo, "Nurse Bravo")
    chair_a = add_chair(db, SYSTEM, "Chair A").id
    chair_b = add_chair(db, SYSTEM, "Chair B").id
    add_chair(db, SYSTEM, "Home visit", kind="home")
    patients = {
        i: add_patient(db, SYSTEM, mrn=f"M{next(_mrn):06d}", given_name="Pat", family_name=f"P{i}").id
        for i in range(1, 8)
    }
    ty, oc = _therapy(db, "natalizumab"), _therapy(db, "ocrelizumab_iv")
    s: dict[int, int] = {}
    s[1] = visit(
        db,
        a,
        patient=patients[1],
        therapy=ty,
        chair=chair_a,
        checkin=local("2025-01-06", "09:00"),
        infusion=120,
        vitals_at=(40, 90),
        reactions=((30, 2),),
    )
    s[4] = visit(db, b, patient=patients[2], therapy=ty, chair=chair_b, checkin=local("2025-01-06", "10:00"))
    s[2] = visit(db, a, patient=patients[1], therapy=ty, chair=chair_a, checkin=local("2025-01-13", "09:00"))
    s[5] = visit(
        db,
        b,
        patient=patients[2],
        therapy=ty,
        chair=chair_b,
        checkin=local("2025-01-31", "20:00"),
        reactions=((15, 3),),
    )
    s[3] = visit(
        db,
        a,
        patient=patients[1],
        therapy=ty,
        chair=chair_a,
        checkin=local("2025-02-03", "09:00"),
        reactions=((20, 1),),
    )
    s[6] = visit(
        db,
        a,
        patient=patients[3],
        therapy=oc,
        chair=chair_b,
        checkin=local("2025-02-10", "08:00"),
        infusion=160,
        vitals_at=(55, 110),
        reactions=((30, 2), (100, 1)),
    )
    s[7] = visit(
        db,
        a,
        patient=patients[3],
        therapy=oc,
        chair=chair_b,
        checkin=local("2025-02-24", "08:00"),
        infusion=140,
        vitals_at=(60, 115),
    )
    s[8] = visit(
        db,
        b,
        patient=patients[4],
        therapy=ty,
        chair=chair_b,
        checkin=local("2025-03-03", "09:00"),
        reactions=((20, 2),),
    )
    s[9] = visit(
        db,
        b,
        patient=patients[4],
        therapy=ty,
        chair=chair_b,
        checkin=local("2025-03-10", "09:00"),
        infusion=100,
        vitals_at=(10,),
    )
    s[10] = visit(
        db, b, patient=patients[5], therapy=ty, chair=chair_b, checkin=local("2025-03-17", "09:00"), discharge=False
    )
    s[11] = visit(db, a, patient=patients[6], therapy=ty, chair=chair_a, checkin=local("2025-03-17", "09:00"))
    s[12] = visit(
        db, a, patient=patients[7], therapy=ty, chair=chair_a, checkin=local("2025-03-24", "09:00"), defer_after=30
    )
    with db.writing() as w:  # what an import without a stop time looks like
        w.execute(
            update(InfusionSession).where(InfusionSession.id == s[11]).values(iv_stopped_at=None, infusion_minutes=None)
        )
    if mark_errors:
        mark_entered_in_error(db, s)
    return Clinic(db, ty, oc, chair_a, chair_b, alpha, bravo, s)


def mark_entered_in_error(db: Database, s: dict[int, int]) -> None:
    """Direct UPDATEs standing in for the correction screens: s8's reaction, s4's check-in vitals,
    s7's 09:20 vitals."""
    with db.writing() as w:
        w.execute(update(Reaction).where(Reaction.session_id == s[8]).values(status="entered_in_error"))
        w.execute(
            update(VitalSign)
            .where(VitalSign.session_id == s[4], VitalSign.phase == "pre")
            .values(status="entered_in_error")
        )
        w.execute(
            update(VitalSign)
            .where(VitalSign.session_id == s[7], VitalSign.taken_at == local("2025-02-24", "09:20"))
            .values(status="entered_in_error")
        )


@pytest.fixture
def clinic(db: Database) -> Clinic:
    return build(db)


def by_therapy(frame: pd.DataFrame, clinic: Clinic) -> dict[str, tuple[int, int]]:
    name = {clinic.tysabri: "Tysabri", clinic.ocrevus: "Ocrevus"}
    return {
        name[t]: (int(n), int(x)) for t, n, x in zip(frame["therapy_id"], frame["completed"], frame["with_reaction"])
    }


# ---------------------------------------------------------------------------
# Reaction rates
# ---------------------------------------------------------------------------


def test_reaction_rates_per_therapy_with_wilson_interval(clinic: Clinic) -> None:
    """Tysabri: 8 completed (s1–s5, s8, s9, s11), reactions in s1, s3, s5 → 3/8 = 37.5 per 100,
    Wilson 95 % 13.684–69.426. Ocrevus: s6, s7 → 1/2 = 50, Wilson 9.453–90.547.
    s10 (observation) and s12 (deferred) are not completed.
    """
    frame = metrics.reaction_rates(clinic.db, Q1)
    assert list(frame.columns) == list(metrics.REACTION_RATE_COLUMNS)
    assert list(frame["therapy"]) == ["Ocrevus", "Tysabri"]
    oc, ty = frame.iloc[0], frame.iloc[1]
    assert (oc.completed, oc.with_reaction, oc.rate_per_100) == (2, 1, 50.0)
    assert (oc.ci_low_per_100, oc.ci_high_per_100) == pytest.approx((9.453, 90.547), abs=1e-3)
    assert (ty.completed, ty.with_reaction, ty.rate_per_100) == (8, 3, 37.5)
    assert (ty.ci_low_per_100, ty.ci_high_per_100) == pytest.approx((13.684, 69.426), abs=1e-3)


def test_entered_in_error_and_corrected_reactions_do_not_count(db: Database) -> None:
    """Before the error is marked s8's grade-2 reaction counts (Tysabri 4/8, grade 2: s1 and s8);
    after it, 3/8 and grade 2 only s1. Marking s3's reaction 'corrected' (superseded, no
    replacement here) takes Tysabri to 2/8, whatever reaction_count on the session says."""
    clinic = build(db, mark_errors=False)
    f = clinic.filters(therapy_ids=(clinic.tysabri,))
    assert by_therapy(metrics.reaction_rates(db, f), clinic) == {"Tysabri": (8, 4)}
    grades = metrics.reaction_rates_by_grade(db, f)
    assert dict(zip(grades["grade"], grades["sessions"])) == {1: 1, 2: 2, 3: 1}

    mark_entered_in_error(db, clinic.s)
    assert by_therapy(metrics.reaction_rates(db, f), clinic) == {"Tysabri": (8, 3)}
    grades = metrics.reaction_rates_by_grade(db, f)
    assert dict(zip(grades["grade"], grades["sessions"])) == {1: 1, 2: 1, 3: 1}
    pchart = metrics.monthly_reaction_pchart(db, f)
    assert list(pchart["x"]) == [2, 1, 0]  # March lost s8's reaction

    with db.writing() as w:
        w.execute(update(Reaction).where(Reaction.session_id == clinic.s[3]).values(status="corrected"))
    assert by_therapy(metrics.reaction_rates(db, f), clinic) == {"Tysabri": (8, 2)}
    with db.reading() as s:  # the summary column still says otherwise: the metric does not use it
        assert s.get(InfusionSession, clinic.s[8]).reaction_count == 1


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        # therapy: only Tysabri's row
        (lambda c: c.filters(therapy_ids=(c.tysabri,)), {"Tysabri": (8, 3)}),
        # chair A: s1, s2, s3, s11 (reactions s1, s3); chair B: s4, s5, s8, s9 (s5) and s6, s7 (s6)
        (lambda c: c.filters(chair_ids=(c.chair_a,)), {"Tysabri": (4, 2)}),
        (lambda c: c.filters(chair_ids=(c.chair_b,)), {"Tysabri": (4, 1), "Ocrevus": (2, 1)}),
        # nurse who started the IV: Alpha s1, s2, s3, s11, s6, s7; Bravo s4, s5, s8, s9
        (lambda c: c.filters(nurse_ids=(c.alpha,)), {"Tysabri": (4, 2), "Ocrevus": (2, 1)}),
        (lambda c: c.filters(nurse_ids=(c.bravo,)), {"Tysabri": (4, 1)}),
        # first infusions: s1, s4, s8, s11 (s1) and s6 (s6); later: s2, s3, s5, s9 (s3, s5) and s7
        (lambda c: c.filters(infusion="first"), {"Tysabri": (4, 1), "Ocrevus": (1, 1)}),
        (lambda c: c.filters(infusion="later"), {"Tysabri": (4, 2), "Ocrevus": (1, 0)}),
        # January (clinic dates): s1, s2, s4 and s5 — s5 is 31 Jan at 20:00 in New York, 1 Feb in UTC
        (lambda c: TrendFilters(date(2025, 1, 1), date(2025, 1, 31)), {"Tysabri": (4, 2)}),
        (lambda c: TrendFilters(date(2025, 2, 1), date(2025, 2, 28)), {"Tysabri": (1, 1), "Ocrevus": (2, 1)}),
        (lambda c: TrendFilters(date(2025, 4, 1), date(2025, 4, 30)), {}),
    ],
)
def test_filters_change_the_rates(clinic: Clinic, filters, expected: dict[str, tuple[int, int]]) -> None:
    assert by_therapy(metrics.reaction_rates(clinic.db, filters(clinic)), clinic) == expected


def test_dates_are_clinic_local(clinic: Clinic) -> None:
    """The same January filter with the clinic in UTC loses s5 (01:00 UTC on 1 Feb) to February.
    (Asked first in New York time on the same engine, so a cached statement must not keep the zone.)"""
    jan = TrendFilters(date(2025, 1, 1), date(2025, 1, 31))
    months = metrics.monthly_reaction_pchart(clinic.db, Q1)
    assert list(zip(months["n"], months["x"])) == [(4, 2), (3, 2), (3, 0)]
    update_clinic(clinic.db, SYSTEM, name="Test clinic", timezone="UTC", temperature_unit="C", weight_unit="kg")
    assert by_therapy(metrics.reaction_rates(clinic.db, jan), clinic) == {"Tysabri": (3, 1)}
    months = metrics.monthly_reaction_pchart(clinic.db, Q1)
    assert list(zip(months["month"], months["n"], months["x"])) == [
        (date(2025, 1, 1), 3, 1),
        (date(2025, 2, 1), 4, 3),
        (date(2025, 3, 1), 3, 0),
    ]


def test_reaction_rates_by_grade(clinic: Clinic) -> None:
    """Worst active grade per session: Tysabri s3 → 1, s1 → 2, s5 → 3 (each 1/8 = 12.5 per 100,
    Wilson 2.242–47.089); Ocrevus s6 had grades 2 and 1 and counts once, under 2 (1/2 = 50)."""
    frame = metrics.reaction_rates_by_grade(clinic.db, Q1)
    assert list(frame.columns) == list(metrics.GRADE_RATE_COLUMNS)
    rows = {
        (t, g): (n, c, r)
        for t, g, n, c, r in zip(
            frame["therapy"], frame["grade"], frame["sessions"], frame["completed"], frame["rate_per_100"]
        )
    }
    assert rows == {
        ("Ocrevus", 2): (1, 2, 50.0),
        ("Tysabri", 1): (1, 8, 12.5),
        ("Tysabri", 2): (1, 8, 12.5),
        ("Tysabri", 3): (1, 8, 12.5),
    }
    ty1 = frame[(frame["therapy"] == "Tysabri") & (frame["grade"] == 1)].iloc[0]
    assert (ty1.ci_low_per_100, ty1.ci_high_per_100) == pytest.approx((2.242, 47.089), abs=1e-3)


def test_reaction_rates_by_infusion_number(clinic: Clinic) -> None:
    """Tysabri 1st: s1 (R), s4, s8, s11 → 1/4 = 25 (Wilson 4.559–69.936); 2nd: s2, s5 (R), s9 →
    1/3 (6.149–79.234); later: s3 (R) → 1/1 (20.655–100). Ocrevus 1st: s6 (R) 1/1; 2nd: s7 0/1
    (0–79.345)."""
    frame = metrics.reaction_rates_by_infusion_number(clinic.db, Q1)
    assert list(frame.columns) == list(metrics.INFUSION_NUMBER_RATE_COLUMNS)
    got = [
        (t, b, n, x)
        for t, b, n, x in zip(frame["therapy"], frame["infusion_bucket"], frame["completed"], frame["with_reaction"])
    ]
    assert got == [
        ("Ocrevus", "1st", 1, 1),
        ("Ocrevus", "2nd", 1, 0),
        ("Tysabri", "1st", 4, 1),
        ("Tysabri", "2nd", 3, 1),
        ("Tysabri", "later", 1, 1),
    ]
    assert list(frame["ci_low_per_100"]) == pytest.approx([20.655, 0.0, 4.559, 6.149, 20.655], abs=1e-3)
    assert list(frame["ci_high_per_100"]) == pytest.approx([100.0, 79.345, 69.936, 79.234, 100.0], abs=1e-3)
    later = metrics.reaction_rates_by_infusion_number(clinic.db, clinic.filters(infusion="later"))
    assert set(later["infusion_bucket"]) == {"2nd", "later"}


# ---------------------------------------------------------------------------
# p-chart
# ---------------------------------------------------------------------------


def test_monthly_pchart(clinic: Clinic) -> None:
    """All therapies: Jan s1 (R), s2, s4, s5 (R) → 2/4; Feb s3 (R), s6 (R), s7 → 2/3; Mar s8, s9,
    s11 → 0/3. p̄ = 4/10 = 0.4; 3σ = 3√(0.24/n) = 0.735 (n = 4) and 0.849 (n = 3), so every UCL
    clips to 1 and every LCL to 0: nothing is out of control.
    Tysabri alone: 2/4, 1/1, 0/3 → p̄ = 3/8; for February (n = 1) 3√(0.234375) = 1.452 → 0…1."""
    frame = metrics.monthly_reaction_pchart(clinic.db, Q1)
    assert list(frame.columns) == list(metrics.PCHART_COLUMNS)
    assert list(frame["month"]) == [date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)]
    assert list(frame["n"]) == [4, 3, 3] and list(frame["x"]) == [2, 2, 0]
    assert list(frame["p"]) == pytest.approx([0.5, 2 / 3, 0.0])
    assert list(frame["p_bar"]) == pytest.approx([0.4] * 3)
    assert list(frame["ucl"]) == [1.0, 1.0, 1.0] and list(frame["lcl"]) == [0.0, 0.0, 0.0]
    assert not frame["out_of_control"].any()

    ty = metrics.monthly_reaction_pchart(clinic.db, Q1, therapy_id=clinic.tysabri)
    assert list(ty["n"]) == [4, 1, 3] and list(ty["x"]) == [2, 1, 0]
    assert ty["p_bar"].iloc[0] == pytest.approx(0.375)


def test_pchart_limits_when_not_clipped(db: Database) -> None:
    """9 completed Tysabri visits in January (1 with a reaction) and 1 in February (with one).
    p̄ = 2/10 = 0.2; January 3√(0.2·0.8/9) = 0.4 → UCL 0.6, LCL 0 (clipped from −0.2);
    February n = 1: 3√0.16 = 1.2 → 0…1, and p = 1 is not above 1."""
    update_clinic(db, SYSTEM, name="Test clinic", timezone="America/New_York", temperature_unit="C", weight_unit="kg")
    nurse = Actor(add_staff(db, SYSTEM, "Nurse").id, "Nurse")
    chair = add_chair(db, SYSTEM, "Chair").id
    ty = _therapy(db, "natalizumab")
    for day in range(9):
        patient = add_patient(db, SYSTEM, mrn=f"M{next(_mrn):06d}", given_name="Pat", family_name="Jan").id
        visit(
            db,
            nurse,
            patient=patient,
            therapy=ty,
            chair=chair,
            checkin=local(f"2025-01-{6 + day:02d}", "09:00"),
            reactions=((10, 1),) if day == 0 else (),
        )
    patient = add_patient(db, SYSTEM, mrn=f"M{next(_mrn):06d}", given_name="Pat", family_name="Feb").id
    visit(
        db, nurse, patient=patient, therapy=ty, chair=chair, checkin=local("2025-02-03", "09:00"), reactions=((10, 1),)
    )
    frame = metrics.monthly_reaction_pchart(db, Q1)
    assert list(frame["n"]) == [9, 1]
    assert frame["p_bar"].iloc[0] == pytest.approx(0.2)
    assert list(frame["ucl"]) == pytest.approx([0.6, 1.0])
    assert list(frame["lcl"]) == pytest.approx([0.0, 0.0])


# ---------------------------------------------------------------------------
# Durations
# ---------------------------------------------------------------------------


def test_session_durations(clinic: Clinic) -> None:
    """One row per completed session. s11 has no stop time (and no summary), so no infusion minutes;
    its chair time 09:00→11:20 = 140. Tysabri label 60–60; Ocrevus infusions 1–2 ≥ 150 (no max)."""
    frame = metrics.session_durations(clinic.db, Q1)
    assert list(frame.columns) == list(metrics.DURATION_COLUMNS)
    assert len(frame) == 10
    oc = frame[frame["therapy"] == "Ocrevus"]
    assert list(zip(oc["infusion_number"], oc["infusion_minutes"], oc["chair_minutes"])) == [
        (1, 160.0, 240.0),
        (2, 140.0, 220.0),
    ]
    assert list(oc["label_min_minutes"]) == [150.0, 150.0] and oc["label_max_minutes"].isna().all()
    ty = frame[frame["therapy"] == "Tysabri"]
    assert sorted(ty["infusion_minutes"].dropna()) == [60.0] * 5 + [100.0, 120.0]
    assert ty["infusion_minutes"].isna().sum() == 1
    assert sorted(ty["chair_minutes"]) == [140.0] * 6 + [180.0, 200.0]
    assert set(ty["label_min_minutes"]) == {60.0} and set(ty["label_max_minutes"]) == {60.0}
    only_first = metrics.session_durations(clinic.db, clinic.filters(infusion="first"))
    assert sorted(only_first["infusion_number"]) == [1, 1, 1, 1, 1]  # s1, s4, s8, s11, s6


def test_duration_summary(clinic: Clinic) -> None:
    """Tysabri infusion minutes (s11 has none): 120, 60, 60, 60, 60, 60, 100 → mean 520/7, min 60,
    quartiles 60 / 60 / 80 (linear: halfway between 60 and 100), max 120; chair minutes 200, 140 ×6,
    180 → mean 1220/8 = 152.5, quartiles 140 / 140 / 150. Over the window (> 60 + 15): s1, s9.
    Ocrevus: 160, 140 → mean 150, quartiles 145 / 150 / 155; chair 240, 220; under the window:
    s7 (140 < 150; a true minimum gets no tolerance)."""
    frame = metrics.duration_summary(clinic.db, Q1)
    assert list(frame.columns) == list(metrics.DURATION_SUMMARY_COLUMNS)
    oc, ty = frame.iloc[0], frame.iloc[1]
    assert (oc.therapy, oc.sessions, oc.over_window, oc.under_window) == ("Ocrevus", 2, 0, 1)
    assert [oc[f"infusion_minutes_{k}"] for k in ("mean", "min", "q1", "median", "q3", "max")] == pytest.approx(
        [150, 140, 145, 150, 155, 160]
    )
    assert [oc[f"chair_minutes_{k}"] for k in ("mean", "min", "q1", "median", "q3", "max")] == pytest.approx(
        [230, 220, 225, 230, 235, 240]
    )
    assert (ty.therapy, ty.sessions, ty.over_window, ty.under_window) == ("Tysabri", 8, 2, 0)
    assert [ty[f"infusion_minutes_{k}"] for k in ("mean", "min", "q1", "median", "q3", "max")] == pytest.approx(
        [520 / 7, 60, 60, 60, 80, 120]
    )
    assert [ty[f"chair_minutes_{k}"] for k in ("mean", "min", "q1", "median", "q3", "max")] == pytest.approx(
        [152.5, 140, 140, 140, 150, 200]
    )
    # a wider tolerance clears s9 (100 ≤ 60 + 45) but not s1 (120)
    assert metrics.duration_summary(clinic.db, Q1, tolerance_minutes=45).iloc[1].over_window == 1


def test_reaction_time_lost(clinic: Clinic) -> None:
    """Plan = label max, or min where only a minimum exists. Tysabri with a reaction: s1 120, s3 60,
    s5 60 → mean 80 vs plan 60, extra +20, chair (200 + 140 + 140)/3 = 160; without: s2, s4, s8,
    s9 (s11 has no infusion time) → 60, 60, 60, 100 → 70, extra +10; chair over all five
    (140 ×4 + 180)/5 = 148. Ocrevus with: s6 160 vs 150 → +10, chair 240; without: s7 140 vs 150
    → −10, chair 220."""
    frame = metrics.reaction_time_lost(clinic.db, Q1)
    assert list(frame.columns) == list(metrics.TIME_LOST_COLUMNS)
    got = {
        (r.therapy, bool(r.with_reaction)): (
            r.sessions,
            r.mean_infusion_minutes,
            r.mean_planned_minutes,
            r.mean_extra_minutes,
            r.mean_chair_minutes,
        )
        for r in frame.itertuples()
    }
    expected = {
        ("Ocrevus", False): (1, 140, 150, -10, 220),
        ("Ocrevus", True): (1, 160, 150, 10, 240),
        ("Tysabri", False): (5, 70, 60, 10, 148),
        ("Tysabri", True): (3, 80, 60, 20, 160),
    }
    assert got.keys() == expected.keys()
    for key, values in expected.items():
        assert got[key] == pytest.approx(values), key


# ---------------------------------------------------------------------------
# Chair utilisation
# ---------------------------------------------------------------------------


def _cells(frame: pd.DataFrame) -> dict[tuple[int, int], tuple[float, float]]:
    return {
        (int(w), int(h)): (a, o)
        for w, h, a, o in zip(
            frame["weekday"], frame["hour"], frame["chair_hours_available"], frame["chair_hours_occupied"]
        )
    }


def test_chair_utilisation_one_monday(clinic: Clinic) -> None:
    """Mon 6 Jan: chair A 09:00–12:20 (s1), chair B 10:00–12:20 (s4); two clinic chairs (the home
    visit is not a chair-hour). Each Monday hour 07–18 offers 2 chair-hours; occupied 9 → 1,
    10 → 2, 11 → 2, 12 → 40 min = 2/3; shares 0.5, 1, 1, 1/3. Tue–Fri offer nothing that day."""
    day = TrendFilters(date(2025, 1, 6), date(2025, 1, 6))
    frame = metrics.chair_utilisation(clinic.db, day)
    assert list(frame.columns) == list(metrics.UTILISATION_COLUMNS)
    assert len(frame) == 5 * 12 and set(frame["weekday"]) == {0, 1, 2, 3, 4}
    cells = _cells(frame)
    for hour in range(7, 19):
        occupied = {9: 1.0, 10: 2.0, 11: 2.0, 12: 2 / 3}.get(hour, 0.0)
        assert cells[(0, hour)] == pytest.approx((2.0, occupied)), hour
    monday = frame[frame["weekday"] == 0].set_index("hour")["share"]
    assert list(monday.loc[9:12]) == pytest.approx([0.5, 1.0, 1.0, 1 / 3])
    assert frame[frame["weekday"] > 0]["share"].isna().all()
    assert frame["weekday_name"].iloc[0] == "Mon"

    only_a = metrics.chair_utilisation(clinic.db, TrendFilters(day.start, day.end, chair_ids=(clinic.chair_a,)))
    shares = only_a[only_a["weekday"] == 0].set_index("hour")["share"]
    assert list(shares.loc[8:13]) == pytest.approx([0.0, 1.0, 1.0, 1.0, 1 / 3, 0.0])


def test_chair_utilisation_in_local_evening_hours(clinic: Clinic) -> None:
    """Fri 31 Jan 20:00–22:20 New York time (s5, chair B) is Sat 01:00–03:20 UTC: with the clinic
    open until midnight, the Friday 20, 21 and 22 o'clock cells hold 1, 1 and 1/3 chair-hours of 2."""
    day = TrendFilters(date(2025, 1, 31), date(2025, 1, 31))
    frame = metrics.chair_utilisation(clinic.db, day, open_hour=0, close_hour=24, weekdays=range(7))
    occupied = frame[frame["chair_hours_occupied"] > 0]
    assert [(w, h) for w, h in zip(occupied["weekday"], occupied["hour"])] == [(4, 20), (4, 21), (4, 22)]
    assert list(occupied["share"]) == pytest.approx([0.5, 0.5, 1 / 6])
    assert frame[frame["weekday"] == 4]["chair_hours_available"].sum() == pytest.approx(48)
    # default hours (07–19) do not show evening time at all
    assert metrics.chair_utilisation(clinic.db, day)["chair_hours_occupied"].sum() == 0


def test_chair_utilisation_counts_deferred_and_open_sessions(clinic: Clinic) -> None:
    """Mon 24 Mar: s12 sat in chair A 09:00–09:30 before its deferral; s10 (chair B, checked in
    a week earlier) was never discharged, so it holds chair B all day. 9 o'clock: (0.5 + 1)/2."""
    day = TrendFilters(date(2025, 3, 24), date(2025, 3, 24))
    shares = metrics.chair_utilisation(clinic.db, day).query("weekday == 0").set_index("hour")["share"]
    assert shares.loc[9] == pytest.approx(0.75)
    assert list(shares.drop(index=9)) == pytest.approx([0.5] * 11)


# ---------------------------------------------------------------------------
# Completeness
# ---------------------------------------------------------------------------


def test_completeness(clinic: Clinic) -> None:
    """missing_iv_stop applies to s1–s9, s11 (discharged) and s10 (observation): 11, flagged s11.
    missing_checkin_vitals applies to every checked-in session (s1–s12): 12, flagged s4 (its only
    'pre' vitals were entered in error). vitals_overdue applies to discharged sessions with IV start
    and stop (s1–s9): allowed gap 60 + 15 = 75 min. s9: 09:20 → 09:30 → 11:00 = gaps 10, 90 → late.
    s7: 08:20 → (09:20 in error) → 10:15 → 10:40 = gaps 115, 25 → late. s1 (40, 50, 30) and s6
    (55, 55, 50) are on time; 60-min Tysabri infusions need no set in between."""
    report = metrics.completeness(clinic.db, Q1)
    assert list(report.counts.columns) == list(metrics.COMPLETENESS_COUNT_COLUMNS)
    assert list(report.sessions.columns) == list(metrics.COMPLETENESS_SESSION_COLUMNS)
    counts = {c: (n, k) for c, n, k in zip(report.counts["check"], report.counts["checked"], report.counts["flagged"])}
    assert counts == {"missing_iv_stop": (11, 1), "missing_checkin_vitals": (12, 1), "vitals_overdue": (9, 2)}
    assert report.counts.set_index("check").loc["missing_iv_stop", "share"] == pytest.approx(1 / 11)
    s = clinic.s
    listed = {(c, sid) for c, sid in zip(report.sessions["check"], report.sessions["session_id"])}
    assert listed == {
        ("missing_iv_stop", s[11]),
        ("missing_checkin_vitals", s[4]),
        ("vitals_overdue", s[7]),
        ("vitals_overdue", s[9]),
    }
    rows = report.sessions.set_index(["check", "session_id"])
    late = rows.loc[("vitals_overdue", s[7])]
    assert late["gap_minutes"] == pytest.approx(115)
    assert "115 min" in late["detail"] and late["therapy"] == "Ocrevus" and late["date"] == date(2025, 2, 24)
    assert rows.loc[("vitals_overdue", s[9]), "gap_minutes"] == pytest.approx(90)
    missing = rows.loc[("missing_checkin_vitals", s[4])]
    assert (missing["patient"], missing["chair"], missing["date"]) == ("P2, Pat", "Chair B", date(2025, 1, 6))
    assert math.isnan(missing["gap_minutes"])


def test_completeness_tolerance_and_filters(clinic: Clinic) -> None:
    """Tolerance 35 → allowed 95 min: s9's 90 passes, s7's 115 does not. Chair A alone: s1, s2, s3,
    s11 for the stop check (s11 flagged), s1–s3, s11, s12 for check-in vitals, s1–s3 for gaps."""
    wide = metrics.completeness(clinic.db, Q1, tolerance_minutes=35)
    assert list(wide.sessions.query("check == 'vitals_overdue'")["session_id"]) == [clinic.s[7]]
    chair_a = metrics.completeness(clinic.db, clinic.filters(chair_ids=(clinic.chair_a,)))
    counts = {
        c: (n, k) for c, n, k in zip(chair_a.counts["check"], chair_a.counts["checked"], chair_a.counts["flagged"])
    }
    assert counts == {"missing_iv_stop": (4, 1), "missing_checkin_vitals": (5, 0), "vitals_overdue": (3, 0)}
    limited = metrics.completeness(clinic.db, Q1, limit=1)
    assert len(limited.sessions.query("check == 'vitals_overdue'")) == 1  # listing capped, count exact
    assert limited.counts.set_index("check").loc["vitals_overdue", "flagged"] == 2


# ---------------------------------------------------------------------------
# Empty databases
# ---------------------------------------------------------------------------

ALL_FRAMES = (
    (metrics.reaction_rates, metrics.REACTION_RATE_COLUMNS),
    (metrics.reaction_rates_by_grade, metrics.GRADE_RATE_COLUMNS),
    (metrics.reaction_rates_by_infusion_number, metrics.INFUSION_NUMBER_RATE_COLUMNS),
    (metrics.monthly_reaction_pchart, metrics.PCHART_COLUMNS),
    (metrics.session_durations, metrics.DURATION_COLUMNS),
    (metrics.duration_summary, metrics.DURATION_SUMMARY_COLUMNS),
    (metrics.chair_utilisation, metrics.UTILISATION_COLUMNS),
    (metrics.reaction_time_lost, metrics.TIME_LOST_COLUMNS),
)


def assert_all_empty(database: Database) -> None:
    for function, columns in ALL_FRAMES:
        frame = function(database, Q1)
        assert frame.empty, function.__name__
        assert list(frame.columns) == list(columns), function.__name__
    report = metrics.completeness(database, Q1)
    assert report.sessions.empty and list(report.sessions.columns) == list(metrics.COMPLETENESS_SESSION_COLUMNS)
    assert list(report.counts["flagged"]) == [0, 0, 0] and report.counts["share"].isna().all()


def test_new_clinic_gives_empty_frames(db: Database) -> None:
    """Clinic row and catalog, no chairs and no sessions: empty frames with the documented
    columns, never an exception (the page shows its empty state)."""
    assert_all_empty(db)


def test_bare_database_gives_empty_frames(raw_db: Database) -> None:
    """No clinic row and no catalog either (time zone falls back to UTC)."""
    assert_all_empty(raw_db)


def test_filters_validate_and_hash() -> None:
    f = TrendFilters(date(2025, 1, 1), date(2025, 1, 31), therapy_ids=[3, 1])  # type: ignore[arg-type]
    assert f.therapy_ids == (3, 1) and hash(f) == hash(TrendFilters(date(2025, 1, 1), date(2025, 1, 31), (3, 1)))
    with pytest.raises(ValueError):
        TrendFilters(date(2025, 2, 1), date(2025, 1, 1))
    with pytest.raises(ValueError):
        TrendFilters(date(2025, 1, 1), date(2025, 1, 2), infusion="second")  # type: ignore[arg-type]


def test_location_filter_splits_clinic_and_home(db):
    """Issue 6: trends can filter clinic vs home infusions."""
    from datetime import timedelta

    from infusion.accounts.actor import Actor
    from infusion.clock import utcnow
    from infusion.reads.trends import TrendFilters, reaction_rates
    from infusion.services import setup
    from tests.helpers import ADMIN, ago, new_session, walk

    nurse = Actor(None, "Test Nurse", "nurse")
    home = setup.add_chair(db, ADMIN, "Home visit", kind="home")
    at_home = new_session(db, nurse, "natalizumab", chair_id=home.id)
    in_clinic = new_session(db, nurse, "natalizumab")
    walk(db, nurse, at_home, "discharged", t0=ago(300))
    walk(db, nurse, in_clinic, "discharged", t0=ago(290))
    today = utcnow().date()
    span = dict(start=today - timedelta(days=2), end=today + timedelta(days=1))
    counts = {
        where: int(reaction_rates(db, TrendFilters(**span, location=where))["completed"].sum())
        for where in ("all", "clinic", "home")
    }
    assert counts == {"all": 2, "clinic": 1, "home": 1}
