"""The audit trail across a clinic network: a person who holds the quality role at one site reads the events
about that site only — its sessions, its patients, its staff's actions there — in the search, the Action
choices, the CSV download and the audit export; network events (accounts, catalog, exports) are for
network-wide holders. Every event carries its site from the insert (services.audit.record), and migration
0013 fills the site of events written before it, leaving the audit table append-only."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError

from db.engine import Database
from db.migrate import upgrade_to_head
from db.models import AuditEvent, Chair, InfusionSession
from infusion.accounts.actor import Actor
from infusion.accounts.auth import add_user
from infusion.clock import utcnow
from infusion.exports import service
from infusion.exports.datasets import ExportFilters
from infusion.reads import audit_log
from infusion.reads import sessions as views
from infusion.services import sessions, setup
from infusion.services.setup import bootstrap
from tests.db.test_site_migration import _downgrade, engine  # noqa: F401 - the both-engine schema fixture
from tests.helpers import ADMIN, therapy_id


@dataclass
class Net:
    db: Database
    a: int
    b: int
    session_a: int
    session_b: int
    quality_a: Actor  # quality at site A only
    quality_all: Actor  # network quality
    nurse_b: Actor


def _build(db: Database) -> Net:
    site_a = setup.update_clinic(
        db, ADMIN, name="Northside", code="NTH", timezone="UTC", temperature_unit="C", weight_unit="kg"
    )
    site_b = setup.add_site(db, ADMIN, "Riverside", "RIV", "America/Los_Angeles", "C", "kg")
    chair_a = setup.add_chair(db, ADMIN, "North chair 1", site_id=site_a.id).id
    chair_b = setup.add_chair(db, ADMIN, "River chair 1", site_id=site_b.id).id
    nurse_a = setup.add_staff(db, ADMIN, "Nora North", "nurse", sites=[site_a.id])
    nurse_b = setup.add_staff(db, ADMIN, "Rita River", "nurse", sites=[site_b.id])
    booked = {}
    for chair, family, nurse, site in ((chair_a, "Ashby", nurse_a, site_a.id), (chair_b, "Brook", nurse_b, site_b.id)):
        actor = Actor(nurse.id, nurse.display_name, "nurse", site_id=site)
        pid = setup.add_patient(db, actor, mrn=f"MRN-{family}", given_name="Pat", family_name=family).id
        sid = sessions.create_session(
            db, actor, patient_id=pid, therapy_id=therapy_id(db, "natalizumab"), chair_id=chair
        ).id
        views.session_detail(db, actor, sid)  # an audited view
        booked[site] = sid
    qa = add_user(
        db, ADMIN, username="q.north", display_name="Quinn North", role="quality", network_wide=False, sites=[site_a.id]
    )
    qn = add_user(db, ADMIN, username="q.all", display_name="Nia Network", role="quality")
    return Net(
        db,
        site_a.id,
        site_b.id,
        booked[site_a.id],
        booked[site_b.id],
        Actor(qa.id, qa.display_name, "quality"),
        Actor(qn.id, qn.display_name, "quality"),
        Actor(nurse_b.id, nurse_b.display_name, "nurse"),
    )


@pytest.fixture
def net(db: Database) -> Net:
    return _build(db)


def _everything(**kwargs: object) -> audit_log.AuditFilters:
    today = utcnow().date()
    return audit_log.AuditFilters(start=today - timedelta(days=2), end=today + timedelta(days=2), **kwargs)  # type: ignore[arg-type]


def test_every_event_is_stored_with_the_site_it_is_about(net: Net) -> None:
    with net.db.reading() as s:
        events = list(s.scalars(select(AuditEvent)))
    by = {(e.action, e.entity, e.session_id): e.site_id for e in events}
    assert by[("create", "session", net.session_a)] == net.a and by[("view", "session", net.session_b)] == net.b
    patients = {(e.after or {})["mrn"]: e.site_id for e in events if e.entity == "patient" and e.action == "create"}
    assert patients == {"MRN-Ashby": net.a, "MRN-Brook": net.b}, "registered where the nurse works"
    chairs = {(e.after or {})["name"]: e.site_id for e in events if e.entity == "chair"}
    assert chairs == {"North chair 1": net.a, "River chair 1": net.b}
    assert {e.site_id for e in events if e.entity == "clinic" and e.entity_id == net.b} == {net.b}
    assert {e.site_id for e in events if e.entity == "app_user"} == {None}, "accounts are network events"


def test_quality_at_one_site_sees_only_that_sites_events_and_patients(net: Net) -> None:
    frame, total = audit_log.search(net.db, net.quality_a, _everything())
    assert total == len(frame) > 0
    assert set(frame["patient_mrn"].dropna()) == {"MRN-Ashby"}
    assert net.session_b not in set(frame["session_id"].dropna())
    assert "Rita River" not in set(frame["user"]) and "Brook" not in frame.to_csv()
    assert not set(frame["entity"]) & {"app_user"}, "no account events of the network"
    # asking for the other site's patient or session by name finds nothing
    assert audit_log.search(net.db, net.quality_a, _everything(patient_mrn="MRN-Brook"))[1] == 0
    assert audit_log.search(net.db, net.quality_a, _everything(session_id=net.session_b))[1] == 0
    assert audit_log.search(net.db, net.quality_a, _everything(user_name="Rita"))[1] == 0
    # the CSV download is the frame's
    data = audit_log.to_csv(frame).decode("utf-8-sig")
    assert "MRN-Ashby" in data and "MRN-Brook" not in data and "Rita River" not in data
    # the Action filter offers only actions seen at the site (no sign-in or user set-up of the network)
    assert "create" in audit_log.actions(net.db, net.quality_a)
    assert "search_audit" not in audit_log.actions(net.db, net.quality_a)


def test_network_quality_sees_every_site_and_the_network_events(net: Net) -> None:
    frame, total = audit_log.search(net.db, net.quality_all, _everything())
    assert set(frame["patient_mrn"].dropna()) == {"MRN-Ashby", "MRN-Brook"}
    assert {"Rita River", "Nora North"} <= set(frame["user"])
    assert "app_user" in set(frame["entity"])
    assert (
        audit_log.search(net.db, net.quality_all, _everything(patient_mrn="MRN-Brook"))[1] == 3
    )  # patient, booking, view
    assert total == len(frame)
    assert {"create", "view"} <= set(audit_log.actions(net.db, net.quality_all))


def test_the_audit_export_of_a_one_site_holder_holds_that_site_only(net: Net) -> None:
    today = utcnow().date()
    filters = ExportFilters(today - timedelta(days=2), today + timedelta(days=2))
    data, rows = service.csv_file(net.db, net.quality_a, "audit", filters)
    table = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows == len(table) > 0
    assert {r["site"] for r in table} == {"NTH"}, "no other site's events and no network events"
    assert "Rita River" not in data.decode("utf-8-sig")
    everyone, _ = service.csv_file(net.db, net.quality_all, "audit", filters)
    every = list(csv.DictReader(io.StringIO(everyone.decode("utf-8-sig"), newline="")))
    assert {r["site"] for r in every} == {"NTH", "RIV", ""}


def test_the_search_reads_by_site_and_time_from_its_index(net: Net) -> None:
    """The site-scoped search is a range on (site_id, at), not a walk of the whole trail."""
    with net.db.reading() as s:
        query = (
            select(AuditEvent.id)
            .where(*audit_log.readable(s, net.quality_a), AuditEvent.at >= utcnow() - timedelta(days=1))
            .order_by(AuditEvent.at.desc())
        )
        sql = str(query.compile(s.get_bind(), compile_kwargs={"literal_binds": True}))
        if s.get_bind().dialect.name == "sqlite":
            plan = " ".join(str(r[-1]) for r in s.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
        else:
            s.execute(text("SET LOCAL enable_seqscan = off"))  # a handful of rows: ask what it would use
            plan = " ".join(str(r[0]) for r in s.execute(text(f"EXPLAIN {sql}")))
    assert "ix_audit_site_at" in plan, plan


# Migration 0013 -------------------------------------------------------------------------------------


def _refused(eng: Engine, sql: str) -> bool:
    try:
        with eng.begin() as conn:
            conn.execute(text(sql))
    except DBAPIError as exc:
        return "append-only" in str(exc)
    return False


def test_migration_fills_the_site_of_older_events_and_the_trail_stays_append_only(engine: Engine) -> None:  # noqa: F811
    upgrade_to_head(engine)
    db = Database(engine)
    bootstrap(db)
    net = _build(db)
    with db.reading() as s:
        recorded = {
            e.id: (e.action, e.entity, e.session_id, e.patient_id, e.site_id) for e in s.scalars(select(AuditEvent))
        }
        latest_site = {
            pid: site
            for pid, site in s.execute(
                select(InfusionSession.patient_id, Chair.site_id).join(Chair, Chair.id == InfusionSession.chair_id)
            )
        }

    _downgrade(engine, "0012")
    with engine.connect() as conn:
        assert "site_id" not in conn.execute(text("SELECT * FROM audit_event LIMIT 0")).keys()
    upgrade_to_head(engine)

    with db.reading() as s:
        filled = {e.id: e.site_id for e in s.scalars(select(AuditEvent))}
    assert filled.keys() == recorded.keys()
    for event_id, (action, entity, session_id, patient_id, site) in recorded.items():
        if session_id is not None or entity in ("clinic", "chair", "app_user"):
            assert filled[event_id] == site, (action, entity)
        elif patient_id is not None:
            assert filled[event_id] == latest_site[patient_id], (action, entity)
    frame, _ = audit_log.search(db, net.quality_a, _everything())
    assert set(frame["patient_mrn"].dropna()) == {"MRN-Ashby"}

    # the guards are back: no UPDATE, no DELETE of an audit row
    assert _refused(engine, "UPDATE audit_event SET site_id = NULL")
    assert _refused(engine, "DELETE FROM audit_event")
    with db.reading() as s:
        assert s.scalar(select(AuditEvent.site_id).where(AuditEvent.session_id == net.session_b).limit(1)) == net.b


def test_a_patient_event_is_filed_where_the_person_acts_not_where_a_cancelled_booking_was(net: Net) -> None:
    """Brook is treated at Riverside; a Northside booking for next year is cancelled. A Riverside charge
    nurse sets Brook's NEWS2 scale: Riverside's quality staff see it, Northside's do not."""
    from infusion.services import news2_scale

    with net.db.reading() as s:
        brook = s.scalar(select(InfusionSession.patient_id).where(InfusionSession.id == net.session_b))
        north_chair = s.scalar(select(Chair.id).where(Chair.site_id == net.a))
    later = sessions.create_session(
        net.db,
        ADMIN,
        patient_id=brook,
        therapy_id=therapy_id(net.db, "natalizumab"),
        chair_id=north_chair,
        scheduled_at=utcnow() + timedelta(days=200),
    )
    sessions.cancel(net.db, ADMIN, later.id, "moved back to Riverside", expected_version=None)
    charge = setup.add_staff(net.db, ADMIN, "Cal River", "charge_nurse", sites=[net.b])
    charge_b = Actor(charge.id, charge.display_name, "charge_nurse", site_id=net.b)
    news2_scale.set_news2_scale(net.db, charge_b, brook, 2, "hypercapnic respiratory failure")
    with net.db.reading() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "set_news2_scale")).one()
    assert event.site_id == net.b
    assert audit_log.search(net.db, net.quality_a, _everything(action="set_news2_scale"))[1] == 0
