"""Trend summaries (issue 14) stay in step with the raw rows, on SQLite and PostgreSQL.

Every write goes through the services (or a bulk UPDATE through a Session, as an
import fix-up would); afterwards a recompute of every summary from the raw rows
must equal what was kept in the writing transactions, and every summary-read
figure must equal its raw-row reference (`infusion.reads.trends.raw`).
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from db.engine import Database
from db.models import (
    AppUser,
    Chair,
    Clinic,
    InfusionSession,
    Reaction,
    Therapy,
    TrendDaily,
    TrendSession,
    VitalSign,
)
from infusion.accounts.actor import SYSTEM, Actor
from infusion.errors import ChairsideError
from infusion.reads import trends as metrics
from infusion.reads.trends import TrendFilters, maintenance, raw, summarised
from infusion.reads.trends import service as trend_service
from infusion.reads.trends.catalog import _read_catalog
from infusion.reads.trends.rebuild import rebuild_all
from infusion.services import corrections, entries, sessions
from infusion.services.aftercare import delayed_reaction_rates as raw_delayed
from infusion.services.setup import add_chair, add_patient, add_staff, update_clinic
from infusion.settings import ClinicSettings
from tests.db.test_metrics import NY, Q1, _therapy, build, local, vitals
from tests.db.test_metrics import visit as one_visit

_ids = itertools.count(1)


def _ready(db: Database, nurse: Actor, sid: int, therapy: int, checkin: datetime) -> None:
    """Checked in and through the program checklist and premedication the therapy asks for."""
    sessions.check_in(db, nurse, sid, vitals(), expected_version=None, at=checkin)
    sessions.proceed(db, nurse, sid, expected_version=None, at=checkin + timedelta(minutes=5))
    with db.reading() as s:
        row = s.get_one(Therapy, therapy)
        program, premed = row.program, row.premedication_required
    if program:
        sessions.confirm_program(db, nurse, sid, authorization_ref="AUTH-1")
    if premed:
        entries.record_premedication(
            db, nurse, sid, drug="Methylprednisolone", dose="100 mg", given_at=checkin + timedelta(minutes=10)
        )


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False, check_exact=False, rtol=1e-9
    )


def assert_durations_close(fast: pd.DataFrame, reference: pd.DataFrame, *, exact: bool = False) -> None:
    """The histogram's durations summary against the raw rows': the same therapies, session counts and
    counts over and under the window; the mean within a second; quartiles, shortest and longest within one
    5-minute bin. With a chair or nurse filter (read from the session rows) everything is exact."""
    if exact:
        _same(fast, reference)
        return
    counts = ["therapy_id", "therapy", "sessions", "over_window", "under_window"]
    _same(fast[counts], reference[counts])
    for kind in ("infusion_minutes", "chair_minutes"):
        mean = (fast[f"{kind}_mean"] - reference[f"{kind}_mean"]).abs()
        assert (mean.fillna(0) <= 1 / 60 + 1e-9).all(), (kind, mean.max())
        for stat in ("min", "q1", "median", "q3", "max"):
            gap = (fast[f"{kind}_{stat}"] - reference[f"{kind}_{stat}"]).abs()
            assert (gap.fillna(0) <= 5 + 1e-9).all(), (kind, stat, gap.max())
            assert (fast[f"{kind}_{stat}"].isna() == reference[f"{kind}_{stat}"].isna()).all()


def assert_in_step(db: Database, filters: list[TrendFilters]) -> None:
    with db.reading() as s:
        assert maintenance.compare(s.connection()) == []
    now = local("2025-04-01", "12:00")
    for f in filters:
        _same(metrics.reaction_rates(db, f), raw.reaction_rates(db, f))
        _same(metrics.reaction_rates_by_grade(db, f), raw.reaction_rates_by_grade(db, f))
        _same(metrics.reaction_rates_by_infusion_number(db, f), raw.reaction_rates_by_infusion_number(db, f))
        _same(metrics.monthly_reaction_pchart(db, f), raw.monthly_reaction_pchart(db, f))
        order = list(metrics.DURATION_COLUMNS)  # one row per session: ties within a therapy in any order
        _same(
            metrics.session_durations(db, f).sort_values(order, ignore_index=True),
            raw.session_durations(db, f).sort_values(order, ignore_index=True),
        )
        assert_durations_close(
            metrics.duration_summary(db, f), raw.duration_summary(db, f), exact=bool(f.nurse_ids or f.chair_ids)
        )
        lost, lost_raw = metrics.reaction_time_lost(db, f), raw.reaction_time_lost(db, f)
        means = [c for c in lost.columns if c.startswith("mean_")]  # whole seconds summed: within a second
        _same(lost.drop(columns=means), lost_raw.drop(columns=means))
        pd.testing.assert_frame_equal(lost[means], lost_raw[means], check_exact=False, atol=1 / 60, rtol=0)
        _same(metrics.chair_utilisation(db, f, now=now), raw.chair_utilisation(db, f, now=now))
        _same(metrics.delayed_reaction_rates(db, f), raw_delayed(db, f))
        fast, slow = metrics.completeness(db, f), raw.completeness(db, f)
        _same(fast.counts, slow.counts)
        _same(fast.sessions, slow.sessions)


def test_hand_built_clinic_is_in_step(db: Database) -> None:
    clinic = build(db)
    assert_in_step(
        db,
        [
            Q1,
            clinic.filters(nurse_ids=(clinic.alpha,)),
            clinic.filters(infusion="later", chair_ids=(clinic.chair_b,)),
            TrendFilters(date(2025, 1, 1), date(2025, 1, 31)),
            # part months at both ends (days read from trend_session) around whole ones (the histogram)
            TrendFilters(date(2025, 1, 15), date(2025, 3, 20)),
            TrendFilters(date(2025, 2, 3), date(2025, 2, 27)),
            # a whole year (the per-year rollups) with whole months and part months around it
            TrendFilters(date(2024, 10, 20), date(2026, 2, 10)),
            # most of a year: the year's row less the months left out, which hold this clinic's sessions
            TrendFilters(date(2025, 3, 1), date(2025, 12, 31)),
            TrendFilters(date(2025, 2, 10), date(2025, 11, 20)),
        ],
    )


def test_utilisation_without_a_chair_filter_leaves_out_home_visits_and_inactive_chairs(db: Database) -> None:
    """Utilisation with no chair filter reads each site's row for every treatment chair less its inactive
    chairs' rows (chair_use.EVERY_CHAIR): a home visit in a whole month and a chair taken out of service
    after holding sessions must not count, exactly as in the raw figure."""
    clinic = build(db)
    with db.reading() as s:
        home = s.scalars(select(Chair.id).where(Chair.kind == "home")).one()
        patient = s.scalars(select(InfusionSession.patient_id)).first()
    nurse = Actor(clinic.alpha, "Nurse Alpha")
    one_visit(db, nurse, patient=patient, therapy=clinic.tysabri, chair=home, checkin=local("2025-01-20", "09:00"))
    with db.writing() as s:  # a chair taken out of service, as an administrator's import fix-up would
        s.execute(update(Chair).where(Chair.id == clinic.chair_b).values(active=False))
    now = local("2025-04-01", "12:00")
    for f in (
        TrendFilters(date(2025, 1, 1), date(2025, 1, 31)),  # one whole month
        TrendFilters(date(2024, 10, 20), date(2026, 2, 10)),  # a whole year and months around it
        TrendFilters(date(2025, 2, 10), date(2025, 11, 20)),  # a year less its months left out
        TrendFilters(date(2025, 1, 13), date(2025, 1, 24)),  # days of a month, read from the session rows
    ):
        fast, reference = metrics.chair_utilisation(db, f, now=now), raw.chair_utilisation(db, f, now=now)
        _same(fast, reference)
        assert fast["chair_hours_occupied"].sum() > 0
    # the chair counted again once back in service: its own rows, not lost from the site's
    with db.writing() as s:
        s.execute(update(Chair).where(Chair.id == clinic.chair_b).values(active=True))
    f = TrendFilters(date(2025, 1, 1), date(2025, 1, 31))
    _same(metrics.chair_utilisation(db, f, now=now), raw.chair_utilisation(db, f, now=now))
    with db.reading() as s:
        assert maintenance.compare(s.connection()) == []


def test_version_moves_only_with_a_summary(db: Database) -> None:
    """A vitals check during an infusion moves no figure (the cache holds); a discharge does; so does a
    reaction entered in error."""
    clinic = build(db)
    before = trend_service.data_version(db)
    nurse = Actor(clinic.alpha, "Nurse Alpha")
    pid = add_patient(db, SYSTEM, mrn="V000001", given_name="Pat", family_name="Version").id
    checkin = local("2025-03-25", "09:00")
    sid = sessions.create_session(
        db, nurse, patient_id=pid, therapy_id=clinic.tysabri, chair_id=clinic.chair_a, scheduled_at=checkin
    ).id
    _ready(db, nurse, sid, clinic.tysabri, checkin)
    start = checkin + timedelta(minutes=20)
    sessions.start_iv(
        db, nurse, sid, expected_version=None, site="Left forearm", gauge=22, attempts=1, lot_number="L", rate_ml_h=100,
        at=start,
    )  # fmt: skip
    moved = trend_service.data_version(db)
    assert moved > before
    entries.record_vitals(db, nurse, sid, vitals(), taken_at=start + timedelta(minutes=30))
    assert trend_service.data_version(db) == moved
    sessions.stop_iv(db, nurse, sid, expected_version=None, at=start + timedelta(minutes=60))
    sessions.discharge(db, nurse, sid, expected_version=None, at=start + timedelta(minutes=120))
    assert trend_service.data_version(db) > moved
    assert_in_step(db, [Q1])


def test_time_lost_reads_the_count_rollup_and_a_rule_beyond_the_third_infusion_reads_the_sessions(
    db: Database,
) -> None:
    """Time lost comes from the count rollup's sums per infusion band (1st, 2nd, 3rd on). A label rule that
    tells the 3rd infusion from the 4th cannot be answered by the band, so the figure reads the session rows
    instead: both give the raw figure's numbers, and the rollup's seconds are the sessions' whole seconds."""
    clinic = build(db)
    nurse = Actor(clinic.alpha, "Nurse Alpha")
    pid = add_patient(db, SYSTEM, mrn="B000004", given_name="Pat", family_name="Fourth").id
    for week in range(4):  # infusions 1 to 4 of one course; the 4th with a reaction
        one_visit(
            db, nurse, patient=pid, therapy=clinic.tysabri, chair=clinic.chair_a,
            checkin=local(f"2025-02-{3 + 7 * week:02d}", "14:00"), infusion=45,
            reactions=((20, 1),) if week == 3 else (),
        )  # fmt: skip
    with db.reading() as s:
        minutes = s.execute(
            select(func.count(TrendSession.chair_minutes), func.sum(TrendSession.chair_minutes)).where(
                TrendSession.completed.is_(True)
            )
        ).one()
        rolled = s.execute(select(func.sum(TrendDaily.chair_n), func.sum(TrendDaily.chair_seconds))).one()
    assert minutes[0] > 0 and rolled[0] == minutes[0]
    seconds = float(minutes[1]) * 60  # PostgreSQL sums a BIGINT as NUMERIC: compared as numbers
    assert 0 <= seconds - int(rolled[1]) < minutes[0]  # floor(minutes × 60) per session: under 1 s each
    assert metrics.reaction_time_lost(db, Q1)["sessions"].sum() > 0
    assert_in_step(db, [Q1])
    with db.writing() as s:  # a catalog edit: the 4th infusion onwards planned shorter than the 3rd
        s.execute(
            update(Therapy)
            .where(Therapy.id == clinic.tysabri)
            .values(
                duration_windows=[
                    {"from": 1, "to": 3, "min_minutes": 60, "max_minutes": 60},
                    {"from": 4, "min_minutes": 30, "max_minutes": 30},
                ]
            )
        )
    with db.reading() as s:
        assert not summarised._bands_answer(_read_catalog(s))
    assert_in_step(db, [Q1, clinic.filters(nurse_ids=(clinic.alpha,))])


def test_time_lost_counts_a_completed_session_whose_minutes_are_unknown(db: Database) -> None:
    """A discharged session with no discharge time (an import fix-up) has no chair minutes; the raw figure
    still counts it among the sessions (its means leave it out): the rollup's figure counts it too, with
    and without a nurse filter."""
    clinic = build(db)
    with db.writing() as w:
        w.execute(
            update(InfusionSession)
            .where(InfusionSession.id == clinic.s[1])
            .values(discharged_at=None, chair_minutes=None)
        )
    for f in (Q1, clinic.filters(nurse_ids=(clinic.alpha,))):
        lost, reference = metrics.reaction_time_lost(db, f), raw.reaction_time_lost(db, f)
        means = [c for c in lost.columns if c.startswith("mean_")]
        _same(lost.drop(columns=means), reference.drop(columns=means))
        pd.testing.assert_frame_equal(lost[means], reference[means], check_exact=False, atol=1 / 60, rtol=0)
    with db.reading() as s:
        assert maintenance.compare(s.connection()) == []


def test_clinic_time_zone_change_and_rebuild(db: Database) -> None:
    build(db)
    update_clinic(db, SYSTEM, name="Test clinic", timezone="UTC", temperature_unit="C", weight_unit="kg")
    assert_in_step(db, [Q1])
    with db.writing() as w:  # a raw fix-up the session events cannot see: the rebuild repairs it
        w.connection().execute(update(TrendSession).values(chair_minutes=1.0))
    with db.reading() as s:
        assert maintenance.compare(s.connection())
    assert rebuild_all(db) > 0
    assert_in_step(db, [Q1])


# --- randomised writes and corrections --------------------------------------------------------------------

visit = st.fixed_dictionaries(
    {
        "ocrevus": st.booleans(),
        "second_site": st.booleans(),
        "day": st.integers(0, 80),
        "hour": st.integers(6, 21),
        "infusion": st.integers(20, 200),
        "vitals": st.lists(st.integers(1, 190), max_size=3),
        "reactions": st.lists(st.tuples(st.integers(1, 60), st.integers(1, 4)), max_size=2),
        "stop": st.booleans(),
        "discharge": st.booleans(),
        "late_vitals": st.booleans(),
        "delayed_reaction": st.booleans(),
        "later": st.tuples(
            st.sampled_from(["none", "error_reaction", "regrade", "error_vitals", "move_stop", "erase_stop"]),
            st.integers(1, 30),
        ),
    }
)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(visits=st.lists(visit, min_size=1, max_size=4))
def test_random_writes_and_corrections_keep_summaries_in_step(db: Database, visits: list[dict]) -> None:
    """Visits at the first site (New York) or at a second site (Honolulu), through writes and corrections."""
    update_clinic(db, SYSTEM, name="Test clinic", timezone="America/New_York", temperature_unit="C", weight_unit="kg")
    n = next(_ids)
    nurse_id = add_staff(db, SYSTEM, f"Nurse {n}").id
    with db.writing() as w:  # charts at both sites
        w.execute(update(AppUser).where(AppUser.id == nurse_id).values(network_wide=True))
    nurse = Actor(nurse_id, f"Nurse {n}", role="charge_nurse")
    therapies = (_therapy(db, "natalizumab"), _therapy(db, "ocrelizumab_iv"))
    with db.writing() as w:  # a second site, five hours behind the first in winter: its own local days
        second = Clinic(
            name=f"Honolulu {n}", code=f"HNL{n}", timezone="Pacific/Honolulu", temperature_unit="C", weight_unit="kg",
            settings=ClinicSettings().model_dump(),
        )  # fmt: skip
        w.add(second)
        w.flush()
        second_id = second.id
    for v in visits:
        k = next(_ids)
        site = second_id if v["second_site"] else None
        chair = add_chair(db, SYSTEM, f"Chair {k}", site_id=site).id
        pid = add_patient(db, SYSTEM, mrn=f"H{k:06d}", given_name="Pat", family_name=f"H{k}").id
        zone = ZoneInfo("Pacific/Honolulu") if site else NY
        checkin = datetime.fromisoformat(f"2025-01-01T{v['hour']:02d}:00").replace(tzinfo=zone) + timedelta(
            days=v["day"]
        )
        try:
            sid = sessions.create_session(
                db, nurse, patient_id=pid, therapy_id=therapies[v["ocrevus"]], chair_id=chair, scheduled_at=checkin
            ).id
            _ready(db, nurse, sid, therapies[v["ocrevus"]], checkin)
            start = checkin + timedelta(minutes=20)
            sessions.start_iv(
                db, nurse, sid, expected_version=None, site="Left forearm", gauge=22, attempts=1, lot_number="L",
                rate_ml_h=100, at=start,
            )  # fmt: skip
            for m in sorted(set(v["vitals"])):
                if m < v["infusion"]:
                    entries.record_vitals(db, nurse, sid, vitals(), taken_at=start + timedelta(minutes=m))
            for onset, grade in v["reactions"]:
                entries.record_reaction(
                    db, nurse, sid, symptoms=["rash"], grade=grade, actions=["observed"],
                    onset_at=start + timedelta(minutes=min(onset, v["infusion"] - 1)),
                )  # fmt: skip
            if not v["stop"]:
                continue
            stop = start + timedelta(minutes=v["infusion"])
            sessions.stop_iv(db, nurse, sid, expected_version=None, at=stop)
            if v["discharge"]:
                sessions.discharge(db, nurse, sid, expected_version=None, at=stop + timedelta(minutes=60))
            if v["late_vitals"]:  # a late entry: charted after discharge, taken during the infusion
                entries.record_vitals(db, nurse, sid, vitals(), taken_at=start + timedelta(minutes=v["infusion"] // 2))
            if v["delayed_reaction"] and v["discharge"]:
                with db.writing() as w:  # as the follow-up call records it: an active delayed reaction
                    w.add(
                        Reaction(
                            session_id=sid, onset_at=stop + timedelta(hours=5), symptoms=["rash"], grade=1,
                            actions=["observed"], delayed=True, entered_at=stop + timedelta(hours=20),
                        )
                    )  # fmt: skip
            action, minutes = v["later"]
            with db.reading() as s:
                reaction = s.scalar(select(Reaction.id).where(Reaction.session_id == sid, Reaction.status == "active"))
                vital = s.scalar(select(VitalSign.id).where(VitalSign.session_id == sid, VitalSign.status == "active"))
            if action == "error_reaction" and reaction:
                corrections.mark_entered_in_error(db, nurse, "reaction", reaction, "wrong patient")
            elif action == "regrade" and reaction:
                corrections.correct_reaction(
                    db,
                    nurse,
                    reaction,
                    reason="regraded",
                    symptoms=["rash"],
                    grade=5 - minutes % 4,
                    actions=["observed"],
                )
            elif action == "error_vitals" and vital:
                corrections.mark_entered_in_error(db, nurse, "vitals", vital, "wrong patient")
            elif action == "move_stop":
                corrections.correct_session_time(
                    db,
                    nurse,
                    sid,
                    "iv_stopped_at",
                    stop - timedelta(minutes=minutes),
                    reason="clock",
                    expected_version=None,
                )
            elif action == "erase_stop":
                with db.writing() as w:  # an import fix-up through a Session
                    w.execute(
                        update(InfusionSession).where(InfusionSession.id == sid).values(iv_stopped_at=None, infusion_minutes=None)
                    )  # fmt: skip
        except ChairsideError:
            continue  # a refused write changes nothing; the summaries must still match
    if any(v["second_site"] for v in visits):  # the second site's visits were charted, not refused
        with db.reading() as s:
            at_second = s.scalar(
                select(func.count()).select_from(TrendSession).where(TrendSession.site_id == second_id)
            )
        assert at_second
    assert_in_step(
        db,
        [
            Q1,
            TrendFilters(date(2025, 2, 1), date(2025, 3, 31), nurse_ids=(nurse_id,), infusion="first"),
            TrendFilters(date(2025, 1, 10), date(2025, 2, 20), site_ids=(second_id,)),
        ],
    )


def test_local_day_is_the_clinic_day(db: Database) -> None:
    clinic = build(db)
    with db.reading() as s:
        days = dict(s.execute(select(TrendSession.session_id, TrendSession.local_day)).all())
    assert days[clinic.s[5]] == date(2025, 1, 31)  # Fri 20:00 New York = Sat 01:00 UTC
    assert NY is not None
