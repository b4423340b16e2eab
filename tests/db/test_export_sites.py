"""Exports across a clinic network (issue 13): the site column, the site filter, each site's local days,
the sites a person holds, pseudonymous site codes, the command line and the FHIR bundle.

Two sites far apart in time: Buffalo (America/New_York) and Honolulu (Pacific/Honolulu, UTC-10 all year).
The export day D holds one session at each site near its local midnights, and each site has a session just
outside its own day that falls inside the other site's day, so a single clinic-wide UTC range would be wrong.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from db.engine import Database
from db.models import AuditEvent, Clinic
from infusion.accounts.actor import Actor
from infusion.accounts.auth import add_user
from infusion.clock import utcnow
from infusion.errors import PermissionDenied, ValidationError
from infusion.exports import deidentify as deid
from infusion.exports import service
from infusion.exports.cli import main
from infusion.exports.datasets import ExportFilters, iter_rows, preview, suggested_filename, write_csv
from infusion.exports.fhir import build_bundle
from infusion.exports.schema import column_names
from infusion.services import entries, sessions
from infusion.services.setup import add_chair
from infusion.settings import ClinicSettings
from tests.helpers import new_patient, therapy_id, walk

ADMIN = Actor(None, "Test Admin", "admin")
NURSE = Actor(None, "Test Nurse", "nurse")
SECRET = "site-test-secret-0123456789abcdef"
NY, HNL = ZoneInfo("America/New_York"), ZoneInfo("Pacific/Honolulu")


@dataclass
class Network:
    db: Database
    day: date
    buf: int  # site ids
    hnl: int
    a1: int  # Buffalo, 00:30 on the day (Buffalo time): in
    a_prev: int  # Buffalo, 23:30 the evening before: out
    b1: int  # Honolulu, 23:30 on the day (Honolulu time; the next day in Buffalo): in
    b_prev: int  # Honolulu, 23:30 the evening before (04:30 on the day in Buffalo): out
    filters: ExportFilters


def _local(day: date, hour: int, minute: int, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def _session(db: Database, chair: int, at: datetime) -> int:
    return sessions.create_session(
        db,
        NURSE,
        patient_id=new_patient(db, NURSE),
        therapy_id=therapy_id(db, "natalizumab"),
        chair_id=chair,
        scheduled_at=at,
    ).id


@pytest.fixture
def network(db: Database) -> Network:
    return build_network(db)


def build_network(db: Database) -> Network:
    """Two sites (Buffalo and Honolulu) with the sessions described at the top (shared with the page test)."""
    with db.writing() as s:
        first = s.scalars(select(Clinic).order_by(Clinic.id)).first()
        assert first is not None
        first.name, first.code, first.timezone = "Buffalo Infusion", "BUF", "America/New_York"
        honolulu = Clinic(
            name="Honolulu Infusion",
            code="HNL",
            timezone="Pacific/Honolulu",
            temperature_unit="C",
            weight_unit="kg",
            settings=ClinicSettings().model_dump(),
        )
        s.add(honolulu)
        s.flush()
        buf, hnl = first.id, honolulu.id
    chair_a = add_chair(db, ADMIN, "Chair 1", site_id=buf).id
    chair_b = add_chair(db, ADMIN, "Chair 1", site_id=hnl).id  # the same name at another site
    day = utcnow().date() - timedelta(days=10)
    a1 = _session(db, chair_a, _local(day, 0, 30, NY))
    a_prev = _session(db, chair_a, _local(day - timedelta(days=1), 23, 30, NY))
    b1 = _session(db, chair_b, _local(day, 23, 30, HNL))
    b_prev = _session(db, chair_b, _local(day - timedelta(days=1), 23, 30, HNL))
    for sid, zone in ((a1, NY), (b1, HNL)):
        started = _local(day, 0, 35, NY) if zone is NY else _local(day, 23, 35, HNL)
        walk(db, NURSE, sid, "infusing", t0=started)
        entries.record_reaction(
            db,
            NURSE,
            sid,
            symptoms=["rash"],
            grade=1,
            actions=["observed"],
            onset_at=started + timedelta(minutes=30),
            resolved_at=started + timedelta(minutes=40),
        )
    return Network(db, day, buf, hnl, a1, a_prev, b1, b_prev, ExportFilters(day, day))


def _csv(db: Database, dataset: str, filters: ExportFilters, **kwargs) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    out = io.BytesIO()
    write_csv(db, dataset, filters, out, actor_role=kwargs.pop("actor_role", "admin"), **kwargs)
    return list(csv.DictReader(io.StringIO(out.getvalue().decode("utf-8-sig"), newline="")))


def _quality_at(db: Database, site: int) -> Actor:
    user = add_user(
        db,
        ADMIN,
        username=f"quality.{site}",
        display_name="Quinn Site",
        role="quality",
        network_wide=False,
        sites=[site],
    )
    return Actor(user.id, user.display_name, "quality")


# The site column and each site's local days ----------------------------------------------------------


def test_rows_carry_their_site_and_the_days_are_each_sites_own(network: Network) -> None:
    rows = _csv(network.db, "sessions", network.filters)
    assert {int(r["session_id"]): r["site"] for r in rows} == {network.a1: "BUF", network.b1: "HNL"}
    by_id = {int(r["session_id"]): r for r in rows}
    # each time carries its own site's offset, and the date is the site's local day
    assert by_id[network.b1]["scheduled_at"] == _local(network.day, 23, 30, HNL).isoformat()
    assert by_id[network.b1]["scheduled_at"].endswith("-10:00")
    assert by_id[network.a1]["scheduled_at"] == _local(network.day, 0, 30, NY).isoformat()
    assert by_id[network.a1]["session_date"] == by_id[network.b1]["session_date"] == network.day.isoformat()
    # the day before at each site holds each site's evening session only
    before = replace(network.filters, start=network.day - timedelta(days=1), end=network.day - timedelta(days=1))
    assert {int(r["session_id"]) for r in _csv(network.db, "sessions", before)} == {network.a_prev, network.b_prev}

    for dataset in ("vitals", "reactions"):
        rows = _csv(network.db, dataset, network.filters)
        assert rows and {(int(r["session_id"]), r["site"]) for r in rows} == {
            (network.a1, "BUF"),
            (network.b1, "HNL"),
        }, dataset
        at = "taken_at" if dataset == "vitals" else "onset_at"
        for r in rows:
            assert r[at].endswith("-10:00") == (r["site"] == "HNL"), (dataset, r[at])


def test_audit_events_carry_the_site_of_their_session(network: Network) -> None:
    today = utcnow().date()
    every = ExportFilters(today - timedelta(days=1), today + timedelta(days=1))
    rows = _csv(network.db, "audit", every)
    sites = {r["session_id"]: r["site"] for r in rows}
    assert sites[str(network.a1)] == "BUF" and sites[str(network.b1)] == "HNL"
    by_entity = {(r["entity"], r["site"]) for r in rows if not r["session_id"]}
    assert {("chair", "HNL"), ("chair", "BUF"), ("clinic", "BUF")} <= by_entity, "a site's set-up is that site's"
    assert ("therapy", "") in by_entity, "the catalog is the network's"
    only_hnl = _csv(network.db, "audit", replace(every, site_ids=(network.hnl,)))
    assert only_hnl and {r["site"] for r in only_hnl} == {"HNL"}, "named sites: their events only"


def test_the_audit_export_of_a_one_site_holder_leaves_out_other_sites_and_network_events(network: Network) -> None:
    db = network.db
    quality = _quality_at(db, network.buf)  # an account event of the network (no site)
    today = utcnow().date()
    every = ExportFilters(today - timedelta(days=1), today + timedelta(days=1))
    data, rows = service.csv_file(db, quality, "audit", every)
    table = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows == len(table) > 0 and {r["site"] for r in table} == {"BUF"}
    assert str(network.b1) not in {r["session_id"] for r in table}
    assert "app_user" not in {r["entity"] for r in table}
    frame, total = service.preview(db, quality, "audit", every)
    assert total == rows and set(frame["site"]) == {"BUF"}
    # a network-wide holder exports every site's events and the network's
    admin_rows = _csv(db, "audit", every)
    assert {r["site"] for r in admin_rows} == {"BUF", "HNL", ""}


def test_filter_by_site(network: Network) -> None:
    def ids(*sites: int) -> set[int]:
        filters = replace(network.filters, site_ids=sites)
        return {r["session_id"] for r in iter_rows(network.db, "sessions", filters, actor_role="admin")}

    assert ids(network.buf) == {network.a1}
    assert ids(network.hnl) == {network.b1}
    assert ids(network.buf, network.hnl) == {network.a1, network.b1}
    with pytest.raises(ValidationError, match="at least one site"):
        ExportFilters(network.day, network.day, site_ids=())
    with pytest.raises(ValidationError, match="Unknown site"):
        iter_rows(network.db, "sessions", replace(network.filters, site_ids=(9999,)), actor_role="admin")


def test_preview_of_several_zones_shows_each_rows_offset(network: Network) -> None:
    frame, total = preview(network.db, "sessions", network.filters, actor_role="admin")
    assert total == 2 and list(frame["site"]) == ["BUF", "HNL"]
    assert frame["scheduled_at"].iloc[1] == _local(network.day, 23, 30, HNL).isoformat()
    one, _ = preview(network.db, "sessions", replace(network.filters, site_ids=(network.hnl,)), actor_role="admin")
    assert str(one["scheduled_at"].dtype).startswith("datetime64[us, Pacific/Honolulu")


# The sites a person holds ---------------------------------------------------------------------------


def test_a_person_holding_one_site_exports_that_site_only(network: Network) -> None:
    db = network.db
    quality = _quality_at(db, network.buf)
    frame, total = service.preview(db, quality, "sessions", network.filters)
    assert total == 1 and list(frame["session_id"]) == [network.a1]
    assert [s.code for s in service.export_sites(db, quality)] == ["BUF"]
    with pytest.raises(PermissionDenied, match=r"Honolulu Infusion \(HNL\)"):
        service.preview(db, quality, "sessions", replace(network.filters, site_ids=(network.hnl,)))
    with db.reading() as s:
        exports_before = len(list(s.scalars(select(AuditEvent).where(AuditEvent.action == "export_csv"))))
    with pytest.raises(PermissionDenied):
        service.csv_file(db, quality, "vitals", replace(network.filters, site_ids=(network.buf, network.hnl)))
    with db.reading() as s:
        exports_after = len(list(s.scalars(select(AuditEvent).where(AuditEvent.action == "export_csv"))))
    assert exports_after == exports_before, "a refused export is not recorded as made"
    data, rows = service.csv_file(db, quality, "vitals", replace(network.filters, site_ids=(network.buf,)))
    assert rows and b"HNL" not in data
    # the library refuses too, before the first row
    with pytest.raises(PermissionDenied):
        iter_rows(
            db,
            "sessions",
            replace(network.filters, site_ids=(network.hnl,)),
            actor_role="quality",
            held_sites=frozenset({network.buf}),
        )
    # nor a FHIR bundle of the other site's session
    with pytest.raises(PermissionDenied):
        service.fhir_bundle(db, quality, network.b1)
    assert json.loads(service.fhir_bundle(db, quality, network.a1))["resourceType"] == "Bundle"


def test_a_network_wide_person_exports_every_site(network: Network) -> None:
    quality = Actor(
        add_user(network.db, ADMIN, username="quality.all", display_name="Nia Network", role="quality").id,
        "Nia Network",
        "quality",
    )
    assert {s.code for s in service.export_sites(network.db, quality)} == {"BUF", "HNL"}
    _, total = service.preview(network.db, quality, "sessions", network.filters)
    assert total == 2


# Pseudonymous site codes ----------------------------------------------------------------------------


def test_deidentified_files_keep_the_site_code_unless_asked(network: Network) -> None:
    rows = _csv(network.db, "sessions", network.filters, deidentify=True, secret=SECRET)
    assert {r["site"] for r in rows} == {"BUF", "HNL"}
    assert "site_key" not in rows[0]


def test_pseudonymous_site_codes_are_stable_distinct_and_not_the_code(network: Network) -> None:
    db = network.db
    asked = replace(network.filters, pseudonymise_site=True)
    keys = {}
    for dataset in ("sessions", "vitals", "reactions"):
        out = io.BytesIO()
        write_csv(db, dataset, asked, out, deidentify=True, secret=SECRET, actor_role="admin")
        text = out.getvalue().decode("utf-8-sig")
        assert "BUF" not in text and "HNL" not in text and "Infusion" not in text, dataset
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        assert "site" not in rows[0] and list(rows[0]) == column_names(dataset, True, True)
        keys[dataset] = {r["session_key"]: r["site_key"] for r in rows}
    # the same in every dataset and every export made with the same secret
    assert keys["sessions"] == keys["vitals"] == keys["reactions"]
    again = _csv(db, "sessions", asked, deidentify=True, secret=SECRET)
    assert {r["session_key"]: r["site_key"] for r in again} == keys["sessions"]
    # one key per site, different per site, the keyed hash of the site's number
    assert set(keys["sessions"].values()) == {
        deid.site_key(SECRET.encode(), network.buf),
        deid.site_key(SECRET.encode(), network.hnl),
    }
    assert len(set(keys["sessions"].values())) == 2
    # another secret, other keys
    other = _csv(db, "sessions", asked, deidentify=True, secret="another-secret-0123456789abcdef")
    assert not {r["site_key"] for r in other} & set(keys["sessions"].values())
    # the filter still applies, and the file name does not name the site
    only = _csv(db, "sessions", replace(asked, site_ids=(network.hnl,)), deidentify=True, secret=SECRET)
    assert [r["site_key"] for r in only] == [deid.site_key(SECRET.encode(), network.hnl)]
    assert "HNL" not in suggested_filename("sessions", replace(asked, site_ids=(network.hnl,)), True, ["HNL"])
    assert "_HNL" in suggested_filename("sessions", replace(network.filters, site_ids=(network.hnl,)), True, ["HNL"])


def test_a_pseudonymous_site_is_for_deidentified_files_only(network: Network) -> None:
    with pytest.raises(ValidationError, match="de-identify"):
        write_csv(
            network.db,
            "sessions",
            replace(network.filters, pseudonymise_site=True),
            io.BytesIO(),
            actor_role="admin",
        )


# FHIR -----------------------------------------------------------------------------------------------


def test_fhir_encounter_names_the_site_and_uses_its_zone(network: Network) -> None:
    bundle = json.loads(build_bundle(network.db, network.b1).model_dump_json())
    encounter = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter")
    assert encounter["serviceProvider"] == {"display": "Honolulu Infusion (HNL)"}
    assert encounter["period"]["start"].endswith("-10:00")
    deidentified = json.loads(build_bundle(network.db, network.b1, deidentify=True, secret=SECRET).model_dump_json())
    encounter = next(e["resource"] for e in deidentified["entry"] if e["resource"]["resourceType"] == "Encounter")
    assert encounter["serviceProvider"] == {"display": "HNL"}


# Command line ---------------------------------------------------------------------------------------


def _cli(network: Network, out: Path, *extra: str, dataset: str = "sessions") -> int:
    return main(
        [
            "--dataset",
            dataset,
            "--from",
            network.day.isoformat(),
            "--to",
            network.day.isoformat(),
            "--database-url",
            network.db.engine.url.render_as_string(hide_password=False),
            "--out",
            str(out),
            "--quiet",
            *extra,
        ]
    )


def test_cli_site(network: Network, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "hnl.csv"
    expected = io.BytesIO()
    write_csv(network.db, "vitals", replace(network.filters, site_ids=(network.hnl,)), expected, actor_role="admin")
    assert _cli(network, out, "--site", "HNL", dataset="vitals") == 0
    assert out.read_bytes() == expected.getvalue()
    assert _cli(network, tmp_path / "both.csv", "--site", "HNL", "--site", "BUF") == 0
    with (tmp_path / "both.csv").open(encoding="utf-8-sig", newline="") as fh:
        assert {r["site"] for r in csv.DictReader(fh)} == {"BUF", "HNL"}

    capsys.readouterr()
    assert _cli(network, tmp_path / "x.csv", "--site", "XYZ") == 2
    err = capsys.readouterr().err
    assert "--site: unknown 'XYZ'" in err and "BUF, HNL" in err
    assert not (tmp_path / "x.csv").exists()
    # a chair name two sites share needs the site
    assert _cli(network, tmp_path / "x.csv", "--chair", "Chair 1") == 2
    assert "--site" in capsys.readouterr().err
    assert _cli(network, tmp_path / "c.csv", "--chair", "Chair 1", "--site", "BUF") == 0
    with (tmp_path / "c.csv").open(encoding="utf-8-sig", newline="") as fh:
        assert [int(r["session_id"]) for r in csv.DictReader(fh)] == [network.a1]


def test_cli_pseudonymise_site(
    network: Network, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(network, tmp_path / "x.csv", "--pseudonymise-site") == 2
    assert "--pseudonymise-site goes with --deidentify" in capsys.readouterr().err
    monkeypatch.setenv("CHAIRSIDE_DEID_SECRET", SECRET)
    out = tmp_path / "deid.csv"
    assert _cli(network, out, "--deidentify", "--pseudonymise-site") == 0
    with out.open(encoding="utf-8-sig", newline="") as fh:
        keys = {r["site_key"] for r in csv.DictReader(fh)}
    assert keys == {deid.site_key(SECRET.encode(), network.buf), deid.site_key(SECRET.encode(), network.hnl)}
    with network.db.reading() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "export_csv")).one()
    assert event.after["pseudonymised_site"] is True
