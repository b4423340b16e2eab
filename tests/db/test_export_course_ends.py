"""The `course_ends` export (schema v4) on SQLite and PostgreSQL, read the way a quality analyst reads it.

A network of two sites far apart in time (Buffalo, America/New_York; Honolulu, Pacific/Honolulu) with:
one Buffalo patient whose natalizumab course was ended, resumed and ended again (two rows); one Buffalo
IVIG course whose mark an infusion given afterwards lifted (no resume); one Honolulu course in force. Names,
MRNs and notes are distinctive enough to search a whole file for, and the free text starts with formula
characters. `in_force` is checked against the Due page's own "Ended courses" list.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from db.engine import Database
from db.models import Clinic, CourseEnd
from infusion.accounts.actor import Actor
from infusion.accounts.auth import add_user
from infusion.clock import utcnow
from infusion.errors import PermissionDenied, ValidationError
from infusion.exports import deidentify as deid
from infusion.exports import service
from infusion.exports.cli import main
from infusion.exports.datasets import DANGEROUS_LEADING, ExportFilters, count_rows, iter_rows, write_csv
from infusion.exports.schema import column_names
from infusion.reads.courses import ended_courses
from infusion.services import courses
from infusion.services.setup import add_chair, add_patient, add_site, update_clinic
from tests.db.test_due import give
from tests.helpers import ADMIN, therapy_id

SECRET = b"course-ends-test-secret-0123456789"
NY, HNL = ZoneInfo("America/New_York"), ZoneInfo("Pacific/Honolulu")
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
FULL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
CLOCK_TIME = re.compile(r"\b\d{1,2}:\d{2}\b")


@dataclass
class Courses:
    db: Database
    buf: int
    hnl: int
    buf_chair: int
    charge_buf: Actor  # Cora Chargewell, charge nurse at Buffalo
    charge_hnl: Actor  # Keala Nakamoto-Pryce, charge nurse at Honolulu
    admin: Actor  # Ada Administer, a real administrator account
    ignatius: int  # Buffalo, natalizumab: ended, resumed, ended again
    perpetua: int  # Honolulu, natalizumab: ended, in force
    barnaby: int  # Buffalo, IVIG: ended, then given an infusion (the mark no longer holds)
    first: int  # course_end ids
    second: int
    lifted: int
    honolulu: int
    filters: ExportFilters
    identifiers: tuple[str, ...]


def _staff(db: Database, username: str, name: str, role: str, site: int | None) -> Actor:
    user = add_user(
        db,
        ADMIN,
        username=username,
        display_name=name,
        role=role,
        network_wide=site is None,
        sites=None if site is None else [site],
    )
    return Actor(user.id, user.display_name, role, sites=None if site is None else frozenset({site}), site_id=site)


def _patient(db: Database, mrn: str, given: str, family: str) -> int:
    return add_patient(
        db, ADMIN, mrn=mrn, given_name=given, family_name=family, birth_date=date(1958, 3, 9), diagnosis="CIDP"
    ).id


def build_courses(db: Database) -> Courses:
    update_clinic(
        db,
        ADMIN,
        name="Buffalo Infusion",
        code="BUF",
        timezone="America/New_York",
        temperature_unit="F",
        weight_unit="lb",
    )
    with db.reading() as s:
        buf = s.scalars(select(Clinic.id).order_by(Clinic.id)).first()
    assert buf is not None
    hnl = add_site(db, ADMIN, "Honolulu Infusion", "HNL", "Pacific/Honolulu", "C", "kg").id
    buf_chair = add_chair(db, ADMIN, "Chair 1", site_id=buf).id
    hnl_chair = add_chair(db, ADMIN, "Chair 1", site_id=hnl).id
    charge_buf = _staff(db, "cora.chargewell", "Cora Chargewell", "charge_nurse", buf)
    charge_hnl = _staff(db, "keala.np", "Keala Nakamoto-Pryce", "charge_nurse", hnl)
    admin = _staff(db, "ada.administer", "Ada Administer", "admin", None)

    ignatius = _patient(db, "MRN-CE-7781", "Ignatius", "Wolfenbarger")
    perpetua = _patient(db, "MRN-CE-3302", "Perpetua", "Osgood-Brannigan")
    barnaby = _patient(db, "MRN-CE-5150", "Barnaby", "Quillfeather")
    today = utcnow().date()
    give(db, ignatius, "natalizumab", today - timedelta(days=60), chair_id=buf_chair)
    give(db, perpetua, "natalizumab", today - timedelta(days=45), chair_id=hnl_chair)
    give(db, barnaby, "ivig", today - timedelta(days=90), chair_id=buf_chair)
    natalizumab, ivig = therapy_id(db, "natalizumab"), therapy_id(db, "ivig")

    first = courses.end_course(
        db, charge_buf, ignatius, natalizumab, "switched", "=Ignatius switched; daughter Marigold on 716-555-0188"
    ).id
    courses.resume_course(db, admin, first, "@relapse in March, Dr Featherstonehaugh restarts")
    second = courses.end_course(db, charge_buf, ignatius, natalizumab, "declined", "+declined again by Ignatius").id
    honolulu = courses.end_course(
        db, charge_hnl, perpetua, natalizumab, "transferred", "-Perpetua moved to Hilo with Osgood family"
    ).id
    lifted = courses.end_course(db, charge_buf, barnaby, ivig, "completed").id
    # that mark made a month ago, and an infusion given since: the patient is due again (no resume)
    with db.writing() as s:
        s.execute(
            update(CourseEnd)
            .where(CourseEnd.id == lifted)
            .values(ended_at=datetime.combine(today - timedelta(days=30), time(15), tzinfo=NY))
        )
    give(db, barnaby, "ivig", today - timedelta(days=2), chair_id=buf_chair)

    filters = ExportFilters(today - timedelta(days=40), today + timedelta(days=1))
    identifiers = (
        "MRN-CE-7781",
        "MRN-CE-3302",
        "MRN-CE-5150",
        "Ignatius",
        "Wolfenbarger",
        "Perpetua",
        "Osgood",
        "Brannigan",
        "Barnaby",
        "Quillfeather",
        "Marigold",
        "555-0188",
        "Featherstonehaugh",
        "relapse",
        "Hilo",
        "Chargewell",
        "Nakamoto",
        "Administer",
    )
    return Courses(
        db,
        buf,
        hnl,
        buf_chair,
        charge_buf,
        charge_hnl,
        admin,
        ignatius,
        perpetua,
        barnaby,
        first,
        second,
        lifted,
        honolulu,
        filters,
        identifiers,
    )


@pytest.fixture
def world(db: Database) -> Courses:
    return build_courses(db)


def export_text(world: Courses, filters: ExportFilters | None = None, **kwargs) -> str:  # type: ignore[no-untyped-def]
    out = io.BytesIO()
    write_csv(world.db, "course_ends", filters or world.filters, out, actor_role="quality", **kwargs)
    raw = out.getvalue()
    assert raw.startswith(b"\xef\xbb\xbf")
    return raw.decode("utf-8-sig")


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def by_id(text: str) -> dict[int, dict[str, str]]:
    return {int(r["course_end_id"]): r for r in rows_of(text)}


def stored(db: Database) -> dict[int, CourseEnd]:
    with db.reading() as s:
        return {row.id: row for row in s.scalars(select(CourseEnd))}


def moment(cell: str) -> datetime:
    assert ISO_WITH_OFFSET.match(cell), cell
    return datetime.fromisoformat(cell)


# What the file says ---------------------------------------------------------------------------------------------


def test_an_ended_then_resumed_course_shows_its_end_and_its_resume(world: Courses) -> None:
    text = export_text(world)
    assert text.splitlines()[0] == ",".join(column_names("course_ends", False))
    rows = by_id(text)
    marks = stored(world.db)
    assert list(rows) == sorted(marks, key=lambda i: (marks[i].ended_at, i))  # in the order the marks were made
    first, second = rows[world.first], rows[world.second]
    mark = marks[world.first]
    assert (first["mrn"], first["patient_name"], first["site"]) == ("MRN-CE-7781", "Wolfenbarger, Ignatius", "BUF")
    assert (first["therapy_code"], first["end_reason"]) == ("natalizumab", "switched")
    assert (first["ended_by_id"], first["ended_by_name"]) == (str(world.charge_buf.user_id), "Cora Chargewell")
    assert moment(first["ended_at"]) == mark.ended_at.replace(microsecond=0)
    assert mark.resumed_at is not None and moment(first["resumed_at"]) == mark.resumed_at.replace(microsecond=0)
    assert (first["resumed_by_id"], first["resumed_by_name"]) == (str(world.admin.user_id), "Ada Administer")
    assert first["resume_reason"] == "'@relapse in March, Dr Featherstonehaugh restarts"
    assert first["in_force"] == "false"
    # ended again: a second row of the same patient and therapy, in force, with nothing resumed
    assert (second["mrn"], second["end_reason"], second["in_force"]) == ("MRN-CE-7781", "declined", "true")
    assert second["resumed_at"] == second["resumed_by_id"] == second["resumed_by_name"] == ""
    assert second["resume_reason"] == ""
    # times in the row's site's zone, with its offset; the day is that site's local day
    for row in rows.values():
        ended = moment(row["ended_at"])
        zone = NY if row["site"] == "BUF" else HNL
        assert ended.utcoffset() == ended.astimezone(zone).utcoffset()
        assert row["ended_date"] == ended.astimezone(zone).date().isoformat()
    assert rows[world.honolulu]["ended_at"].endswith("-10:00")


def test_in_force_is_the_due_lists_rule(world: Courses) -> None:
    """An infusion given after a mark lifts it without a resume; `in_force` agrees with the Due page's list."""
    rows = by_id(export_text(world))
    lifted = rows[world.lifted]
    assert (lifted["mrn"], lifted["therapy_code"], lifted["end_reason"]) == ("MRN-CE-5150", "ivig", "completed")
    assert lifted["in_force"] == "false" and lifted["resumed_at"] == ""
    in_force = {i for i, r in rows.items() if r["in_force"] == "true"}
    assert in_force == {world.second, world.honolulu}
    shown = set(ended_courses(world.db, world.charge_buf).course_end_id) | set(
        ended_courses(world.db, world.charge_hnl).course_end_id
    )
    assert in_force == shown


def test_deidentified_file_has_no_mrn_name_or_note(world: Courses) -> None:
    identified = export_text(world)
    for identifier in world.identifiers:  # the test would prove nothing otherwise
        assert identifier.lower() in identified.lower(), identifier
    text = export_text(world, deidentify=True, secret=SECRET)
    assert text.splitlines()[0] == ",".join(column_names("course_ends", True))
    lowered = text.lower()
    for identifier in world.identifiers:
        assert identifier.lower() not in lowered, f"{identifier!r} leaked into the de-identified file"
    assert not FULL_DATE.search(text) and not CLOCK_TIME.search(text)
    rows = rows_of(text)
    assert len(rows) == 4
    marks = stored(world.db)
    order = sorted(marks, key=lambda i: (marks[i].ended_at, i))
    for row, mark_id in zip(rows, order, strict=True):
        mark = marks[mark_id]
        # the same keyed pseudonym as the patient's rows in every other dataset
        assert row["patient_key"] == deid.patient_key(SECRET, mark.patient_id)
        assert row["time_reference"] == "course_end"
        zone = NY if mark.site_id == world.buf else HNL
        assert row["ended_year"] == str(mark.ended_at.astimezone(zone).year)
        if mark.resumed_at is None:
            assert row["resumed_rel_min"] == ""
        else:
            assert float(row["resumed_rel_min"]) == deid.relative_minutes(mark.resumed_at, mark.ended_at)
            assert float(row["resumed_rel_min"]) >= 0
    assert [r["in_force"] for r in rows] == ["true" if i in (world.second, world.honolulu) else "false" for i in order]
    assert {r["site"] for r in rows} == {"BUF", "HNL"}
    keyed = rows_of(export_text(world, replace(world.filters, pseudonymise_site=True), deidentify=True, secret=SECRET))
    assert "site" not in keyed[0] and {r["site_key"] for r in keyed} == {
        deid.site_key(SECRET, world.buf),
        deid.site_key(SECRET, world.hnl),
    }


def test_formula_leading_text_is_neutralised(world: Courses) -> None:
    with world.db.writing() as s:  # services strip leading whitespace: put a tab and a line feed in directly
        s.execute(update(CourseEnd).where(CourseEnd.id == world.lifted).values(note="\tcmd|' /C calc'!A0"))
        s.execute(update(CourseEnd).where(CourseEnd.id == world.first).values(resume_reason="\n=1+1"))
    rows = by_id(export_text(world))
    assert rows[world.first]["note"] == "'=Ignatius switched; daughter Marigold on 716-555-0188"
    assert rows[world.first]["resume_reason"] == "'\n=1+1"
    assert rows[world.second]["note"] == "'+declined again by Ignatius"
    assert rows[world.honolulu]["note"] == "'-Perpetua moved to Hilo with Osgood family"
    assert rows[world.lifted]["note"] == "'\tcmd|' /C calc'!A0"
    for row in rows.values():
        assert not any(value[:1] in DANGEROUS_LEADING for value in row.values() if value), row


# Who sees what --------------------------------------------------------------------------------------------------


def test_site_scoping_hides_other_sites_rows(world: Courses) -> None:
    db = world.db
    quality_buf = _staff(db, "quinn.buf", "Quinn Buffalo", "quality", world.buf)
    data, n = service.csv_file(db, quality_buf, "course_ends", world.filters)
    text = data.decode("utf-8-sig")
    assert n == 3 and set(by_id(text)) == {world.first, world.second, world.lifted}
    assert "HNL" not in text and "Perpetua" not in text and "MRN-CE-3302" not in text
    frame, total = service.preview(db, quality_buf, "course_ends", world.filters)
    assert total == 3 and set(frame["site"]) == {"BUF"}
    with pytest.raises(PermissionDenied, match="Honolulu"):
        service.preview(db, quality_buf, "course_ends", replace(world.filters, site_ids=(world.hnl,)))
    # someone holding every site names one
    everyone = _staff(db, "quinn.all", "Quinn Network", "quality", None)
    data, n = service.csv_file(db, everyone, "course_ends", replace(world.filters, site_ids=(world.hnl,)))
    assert n == 1 and set(by_id(data.decode("utf-8-sig"))) == {world.honolulu}
    # the EXPORTS roles only, in the library call itself
    for role in (None, "nurse", "charge_nurse", "manager"):
        with pytest.raises(PermissionDenied):
            iter_rows(db, "course_ends", world.filters, actor_role=role)
    with pytest.raises(PermissionDenied):
        service.preview(db, world.charge_buf, "course_ends", world.filters)


def test_each_sites_local_days_choose_the_rows(world: Courses) -> None:
    """The Honolulu mark made at 23:30 on a Honolulu day is that day's (the next day in UTC and in Buffalo)."""
    day = utcnow().date() - timedelta(days=5)
    late = datetime.combine(day, time(23, 30), tzinfo=HNL)
    with world.db.writing() as s:
        s.execute(update(CourseEnd).where(CourseEnd.id == world.honolulu).values(ended_at=late))
    on_the_day = by_id(export_text(world, ExportFilters(day, day)))
    assert list(on_the_day) == [world.honolulu]
    assert on_the_day[world.honolulu]["ended_date"] == day.isoformat()
    assert on_the_day[world.honolulu]["ended_at"] == f"{day.isoformat()}T23:30:00-10:00"
    assert not rows_of(export_text(world, ExportFilters(day + timedelta(days=1), day + timedelta(days=1))))


def test_therapy_and_nurse_filters_and_a_chair_filter_is_refused(world: Courses, tmp_path: Path) -> None:
    db, f = world.db, world.filters
    natalizumab, ivig = therapy_id(db, "natalizumab"), therapy_id(db, "ivig")
    assert set(by_id(export_text(world, replace(f, therapy_ids=(ivig,))))) == {world.lifted}
    assert set(by_id(export_text(world, replace(f, therapy_ids=(natalizumab,))))) == {
        world.first,
        world.second,
        world.honolulu,
    }
    # the nurse filter: who marked the course ended
    assert set(by_id(export_text(world, replace(f, nurse_ids=(world.charge_hnl.user_id,))))) == {world.honolulu}
    assert count_rows(db, "course_ends", replace(f, nurse_ids=(world.admin.user_id,)), actor_role="quality") == 0
    # a course end has no chair: refused before a byte is written, not an empty or unfiltered file
    chaired = replace(f, chair_ids=(world.buf_chair,))
    out = io.BytesIO()
    with pytest.raises(ValidationError, match="no chair"):
        write_csv(db, "course_ends", chaired, out, actor_role="quality")
    assert out.getvalue() == b""
    with pytest.raises(ValidationError, match="no chair"):
        count_rows(db, "course_ends", chaired, actor_role="quality")
    with pytest.raises(ValidationError, match="no chair"):
        iter_rows(db, "course_ends", chaired, actor_role="quality")
    target = tmp_path / "course_ends.csv"
    url = db.engine.url.render_as_string(hide_password=False)
    common = ["--dataset", "course_ends", "--from", f.start.isoformat(), "--to", f.end.isoformat()]
    assert main([*common, "--chair", "Chair 1", "--site", "BUF", "--database-url", url, "--out", str(target)]) == 2
    assert not target.exists()
    assert main([*common, "--site", "HNL", "--database-url", url, "--out", str(target), "--quiet"]) == 0
    assert set(by_id(target.read_text(encoding="utf-8-sig"))) == {world.honolulu}
