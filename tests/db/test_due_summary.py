"""The due list read from `due_pair` (infusion.reads.due_summary) equals the raw-row path
(`due._due_list_raw`) at every site, in every section, on a demo clinic and a three-site network in three
zones, before and after writes: an IV start, a time correction, a protocol interval, a catalog edit, a
booking at another site, a bulk update and a site's zone change; and the stored rows equal a rebuild."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import select, update

from db.engine import Database
from db.models import Chair, Clinic, DuePair, InfusionSession, Therapy
from infusion.accounts.actor import Actor
from infusion.demo import DemoOptions, load_demo
from infusion.reads import due, due_summary
from infusion.services import corrections, entries, protocols, sessions
from infusion.services.scheduling import schedule_session
from infusion.services.setup import add_chair, update_clinic, update_therapy
from tests.helpers import ADMIN, ago, new_patient, new_session, normal_vitals, therapy_id, walk

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
ALL = (due.SECTION_OVERDUE, due.SECTION_WEEK, due.SECTION_PROTOCOL, due.SECTION_LATER, due.SECTION_NONE)


def _rebuild(db: Database) -> None:
    """The demo loader writes without the ORM: the summary from its rows (as the loader will)."""
    with db.writing() as s:
        due_summary.rebuild(s.connection())


def _sites(db: Database) -> dict[int, str]:
    with db.reading() as s:
        return dict(s.execute(select(Clinic.id, Clinic.timezone).order_by(Clinic.id)).all())  # type: ignore[arg-type]


def assert_same(db: Database) -> None:
    for site, tz in _sites(db).items():
        actor = Actor(None, "Test Admin", "admin", site_id=site)
        today = NOW.astimezone(ZoneInfo(tz)).date()
        for day in (today, today + timedelta(days=40), today - timedelta(days=200)):
            for sections in (
                ALL,
                (due.SECTION_OVERDUE, due.SECTION_WEEK, due.SECTION_PROTOCOL),
                (due.SECTION_LATER,),
                (due.SECTION_PROTOCOL,),  # the two undated sections are told apart in SQL when asked alone
                (due.SECTION_NONE,),
            ):
                fast = due.due_list(db, actor, day, sections=sections)
                raw = due._due_list_raw(db, actor, day, sections=sections)
                pd.testing.assert_frame_equal(fast, raw)
    with db.reading() as s:
        assert due_summary.compare(s.connection()) == []


def _pair_of(db: Database, code: str, site: int | None = None) -> tuple[int, int]:
    with db.reading() as s:
        q = (
            select(DuePair.patient_id, DuePair.therapy_id)
            .join(Therapy, Therapy.id == DuePair.therapy_id)
            .where(Therapy.code == code, DuePair.superseded.is_(False))
            .order_by(DuePair.patient_id)
        )
        if site is not None:
            q = q.where(DuePair.site_id == site)
        pair = s.execute(q.limit(1)).first()
    assert pair is not None, code
    return pair[0], pair[1]


def _idle_pair(db: Database, site: int, skip: int | None = None) -> tuple[int, int]:
    """A patient × therapy (with a default dose) given at `site`, the patient with no session today or later
    (free to book and start)."""
    with db.reading() as s:
        busy = select(InfusionSession.patient_id).where(InfusionSession.scheduled_at >= NOW - timedelta(days=1))
        pair = s.execute(
            select(DuePair.patient_id, DuePair.therapy_id)
            .join(Therapy, Therapy.id == DuePair.therapy_id)
            .where(
                DuePair.site_id == site,
                DuePair.superseded.is_(False),
                DuePair.patient_id.not_in(busy),
                DuePair.patient_id != (skip or 0),
                Therapy.default_dose.is_not(None),
            )
            .order_by(DuePair.patient_id)
            .limit(1)
        ).first()
    assert pair is not None
    return int(pair[0]), int(pair[1])


def _writes(db: Database) -> None:
    sites = list(_sites(db))
    first, last = sites[0], sites[-1]
    # an IV start (and discharge) of a new session for a patient with history, then its IV start corrected
    patient, tid = _idle_pair(db, first)
    chair = add_chair(db, ADMIN, "Summary test chair", site_id=first).id
    sid = sessions_new(db, patient, tid, chair)
    t0 = _give(db, sid, first)
    assert_same(db)
    corrections.correct_session_time(
        db, ADMIN, sid, "iv_started_at", t0 + timedelta(minutes=10), reason="pump clock", expected_version=None
    )
    assert_same(db)
    sessions.discharge(db, ADMIN, sid, expected_version=None, early_reason="test walk")
    # a protocol interval set, then changed
    ivig = _pair_of(db, "ivig")
    protocols.set_protocol_interval(db, ADMIN, ivig[0], ivig[1], 21)
    protocols.set_protocol_interval(db, ADMIN, ivig[0], ivig[1], 35)
    assert_same(db)
    # a catalog edit: Tysabri's interval and its brand (the label)
    tysabri = therapy_id(db, "natalizumab")
    update_therapy(db, ADMIN, tysabri, {"dosing_interval_days": 42, "brand": "Tysabri IV"}, expected_version=None)
    assert_same(db)
    # a booking at another site (in another zone on the network) for a patient last given at the first
    other, other_tid = _idle_pair(db, first, skip=patient)
    far_chair = add_chair(db, ADMIN, "Summary far chair", site_id=last).id
    schedule_session(
        db,
        ADMIN,
        other,
        other_tid,
        far_chair,
        NOW + timedelta(days=3),
        override_too_early_reason="test booking",
    )
    listed = due.due_list(db, Actor(None, "Test Admin", "admin", site_id=last), NOW.date(), sections=ALL)
    assert ((listed["patient_id"] == other) & (listed["therapy_id"] == other_tid)).any()
    assert_same(db)
    # a bulk UPDATE through a Session: a given session moves to the far chair
    with db.writing() as s:
        s.execute(update(InfusionSession).where(InfusionSession.id == sid).values(chair_id=far_chair))
    assert_same(db)
    # a site's zone changes: every pair of it replans
    with db.reading() as s:
        clinic = s.get(Clinic, first)
        assert clinic is not None
        name, unit_t, unit_w = clinic.name, clinic.temperature_unit, clinic.weight_unit
    update_clinic(
        db, ADMIN, name=name, timezone="Pacific/Kiritimati", temperature_unit=unit_t, weight_unit=unit_w, site_id=first
    )
    assert_same(db)


def _give(db: Database, sid: int, site: int) -> datetime:
    """Check-in, proceed, IV start and IV stop (helpers.walk, in the site's temperature unit)."""
    with db.reading() as s:
        unit = s.scalar(select(Clinic.temperature_unit).where(Clinic.id == site))
        therapy = s.scalar(select(Therapy).join(InfusionSession).where(InfusionSession.id == sid))
        assert therapy is not None
        program, premed = therapy.program, therapy.premedication_required
    t0 = ago(300)
    vitals = normal_vitals(temperature=98.2) if unit == "F" else normal_vitals()
    sessions.check_in(db, ADMIN, sid, vitals, expected_version=None, at=t0)
    sessions.proceed(db, ADMIN, sid, expected_version=None, at=t0 + timedelta(minutes=5))
    if program:
        sessions.confirm_program(db, ADMIN, sid, authorization_ref="AUTH-1")
    if premed:
        entries.record_premedication(
            db, ADMIN, sid, drug="Methylprednisolone", dose="100 mg", given_at=t0 + timedelta(minutes=10)
        )
    sessions.start_iv(
        db,
        ADMIN,
        sid,
        expected_version=None,
        site="Left forearm",
        gauge=22,
        attempts=1,
        lot_number="LOT-1",
        rate_ml_h=100,
        at=t0 + timedelta(minutes=20),
        confirm_above_label=True,  # whatever the demo's therapy: the label's ceiling is not this test's subject
    )
    sessions.stop_iv(db, ADMIN, sid, expected_version=None, at=t0 + timedelta(minutes=80))
    return t0


def sessions_new(db: Database, patient: int, tid: int, chair: int) -> int:
    with db.reading() as s:
        code = s.scalar(select(Therapy.code).where(Therapy.id == tid))
    return new_session(db, ADMIN, code or "natalizumab", chair_id=chair, patient_id=patient)


@pytest.mark.parametrize("seed", [3, 11])
def test_one_site_demo_equals_the_raw_path(db: Database, seed: int) -> None:
    load_demo(db, DemoOptions(sessions=600, seed=seed), now=NOW)
    _rebuild(db)
    assert_same(db)
    _writes(db)


def test_network_demo_equals_the_raw_path(db: Database) -> None:
    load_demo(db, DemoOptions(sessions=600, seed=5, sites=3), now=NOW)
    _rebuild(db)
    assert_same(db)
    assert_protocol_patients_are_the_sites_own(db)
    _book_ivig_at_another_site(db)
    assert_protocol_patients_are_the_sites_own(db)
    _writes(db)


def _book_ivig_at_another_site(db: Database) -> None:
    """An IVIG patient last given at another site, and a new patient, both booked at the last site: its
    protocol table lists them (the first with that last infusion, the new one with none yet). Which site
    gave IVIG depends on the day the demo is built for, so any site but the last will do."""
    last = max(_sites(db))
    ivig = therapy_id(db, "ivig")
    with db.reading() as s:
        busy = select(InfusionSession.patient_id).where(InfusionSession.scheduled_at >= NOW - timedelta(days=1))
        given = s.execute(
            select(DuePair.patient_id, DuePair.last_day)
            .where(DuePair.site_id != last, DuePair.therapy_id == ivig, DuePair.patient_id.not_in(busy))
            .order_by(DuePair.patient_id)
            .limit(1)
        ).first()
    if given is None:  # every IVIG patient of the demo built for this day is booked already: give one here
        first = min(_sites(db))
        patient = new_patient(db, ADMIN)
        near_chair = add_chair(db, ADMIN, "Protocol near chair", site_id=first).id
        _give(db, new_session(db, ADMIN, "ivig", chair_id=near_chair, patient_id=patient), first)
        with db.reading() as s:
            given = s.execute(
                select(DuePair.patient_id, DuePair.last_day).where(
                    DuePair.patient_id == patient, DuePair.therapy_id == ivig
                )
            ).first()
    assert given is not None, "an IVIG patient last given at a site other than the last"
    newcomer = new_patient(db, ADMIN)
    far_chair = add_chair(db, ADMIN, "Protocol far chair", site_id=last).id
    for patient, days in ((given[0], 3), (newcomer, 4)):
        schedule_session(
            db, ADMIN, patient, ivig, far_chair, NOW + timedelta(days=days), override_too_early_reason="test booking"
        )
    table = due.protocol_patients(db, Actor(None, "Test Admin", "admin", site_id=last)).set_index("patient_id")
    assert table.loc[given[0], "last_infusion"] == given[1]
    assert table.loc[newcomer, "last_infusion"] is None and table.loc[newcomer, "next_due"] is None


def assert_protocol_patients_are_the_sites_own(db: Database) -> None:
    """Each site's protocol table (IVIG, cyclophosphamide) lists the patients whose last infusion of it
    was given at that site and those booked there from today who were not, and nobody else: from the
    raw sessions here, from `due_pair` and the bookings in `due.protocol_patients`."""
    listed_somewhere = undated_somewhere = False
    with db.reading() as s:
        protocol = set(s.scalars(select(Therapy.id).where(Therapy.code.in_(due.PROTOCOL_THERAPIES))))
        given = s.execute(
            select(InfusionSession.patient_id, InfusionSession.therapy_id, Chair.site_id, InfusionSession.iv_started_at)
            .join(Chair, Chair.id == InfusionSession.chair_id)
            .where(InfusionSession.therapy_id.in_(protocol), InfusionSession.iv_started_at.is_not(None))
            .order_by(InfusionSession.iv_started_at, InfusionSession.id)
        ).all()
        booked = s.execute(
            select(InfusionSession.patient_id, InfusionSession.therapy_id, Chair.site_id, InfusionSession.scheduled_at)
            .join(Chair, Chair.id == InfusionSession.chair_id)
            .where(
                InfusionSession.therapy_id.in_(protocol),
                InfusionSession.status.in_(due.PENDING_STATUSES),
            )
        ).all()
    last_site = {(p, t): site for p, t, site, _ in given}  # in time order: the last one wins
    for site, tz in _sites(db).items():
        day_start = datetime.combine(NOW.astimezone(ZoneInfo(tz)).date(), datetime.min.time(), ZoneInfo(tz))
        expected = {pair for pair, at in last_site.items() if at == site} | {
            (p, t) for p, t, at, when in booked if at == site and when.astimezone(UTC) >= day_start.astimezone(UTC)
        }
        actor = Actor(None, "Test Admin", "admin", site_id=site)
        frame = due.protocol_patients(db, actor)
        assert set(zip(frame.patient_id, frame.therapy_id, strict=True)) == expected
        # the page's "no due date" warning names exactly the due list's "set protocol" section
        undated = due.without_due_date(frame)
        listed = due.due_list(db, actor, NOW.astimezone(ZoneInfo(tz)).date(), sections=(due.SECTION_PROTOCOL,))
        assert set(zip(undated.patient_id, undated.therapy_id, strict=True)) == set(
            zip(listed.patient_id, listed.therapy_id, strict=True)
        )
        listed_somewhere |= bool(expected)
        undated_somewhere |= not undated.empty
    assert listed_somewhere and undated_somewhere  # the demo network gives IVIG somewhere, some without interval


def test_summary_follows_every_write_without_a_rebuild(db: Database) -> None:
    """A session given through the services is planned in its own transaction; moving it to another
    patient with a bulk UPDATE replans both patients."""
    sid = new_session(db, ADMIN, "natalizumab")
    walk(db, ADMIN, sid, "discharged")
    other = new_session(db, ADMIN, "ocrelizumab_iv")
    with db.reading() as s:
        patient = s.scalar(select(InfusionSession.patient_id).where(InfusionSession.id == sid))
        moved_to = s.scalar(select(InfusionSession.patient_id).where(InfusionSession.id == other))
        assert s.scalar(select(DuePair.next_due).where(DuePair.patient_id == patient)) is not None
        assert due_summary.compare(s.connection()) == []
    with db.writing() as s:
        s.execute(update(InfusionSession).where(InfusionSession.id == sid).values(patient_id=moved_to))
    with db.reading() as s:
        assert s.scalar(select(DuePair.patient_id).where(DuePair.patient_id == patient)) is None
        assert s.scalar(select(DuePair.patient_id).where(DuePair.patient_id == moved_to)) == moved_to
        assert due_summary.compare(s.connection()) == []


def test_compare_reports_a_stale_row(db: Database) -> None:
    sid = new_session(db, ADMIN, "natalizumab")
    walk(db, ADMIN, sid, "discharged")
    with db.engine.begin() as conn:  # behind the ORM's back
        conn.execute(update(DuePair).values(next_due=date(2000, 1, 1)))
    with db.reading() as s:
        assert len(due_summary.compare(s.connection())) == 1
    _rebuild(db)
    with db.reading() as s:
        assert due_summary.compare(s.connection()) == []
        assert s.scalar(select(Chair.id).limit(1)) is not None
