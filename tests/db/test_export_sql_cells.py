"""The vitals and reactions CSVs written by the database (infusion.exports.sql_cells, issue 14) is byte for byte the file
the per-row Python path writes, on SQLite and PostgreSQL, identified and de-identified.

The data is built to break a formatter: three sites in zones whose clocks change on different days (and one
that never changes), readings either side of each change to the microsecond, times decades outside the
period (the zone trees' fallback), relative minutes on every exact tie of round(…, 1), floats whose SQL text
differs from Python's repr, text cells opening with each OWASP formula character or holding commas, quotes and
line breaks, empty strings, NULLs, JSON lists with odd members, a site code and a staff name that need
neutralising, corrections and entries marked entered in error.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from db.engine import Database
from db.models import AppUser, Clinic, InfusionSession, Reaction, VitalSign
from infusion.accounts.actor import Actor
from infusion.exports import datasets, sql_cells
from infusion.exports.csv_writer import DANGEROUS_LEADING
from infusion.exports.datasets import ExportFilters, write_csv
from infusion.services import sessions
from infusion.services.setup import add_chair
from infusion.settings import ClinicSettings
from tests.helpers import new_patient, staff_actor, therapy_id

ADMIN = Actor(None, "Test Admin", "admin")
NURSE = Actor(None, "Test Nurse", "nurse")
SECRET = "sql-cells-secret-0123456789abcdef"
#: (code, zone): New York and London change their clocks on different Sundays; Honolulu never does.
SITES = (("BUF", "America/New_York"), ("-LDN", "Europe/London"), ("HNL", "Pacific/Honolulu"))
#: Local days around the 2026 changes (US 8 Mar / 1 Nov, UK 29 Mar / 25 Oct).
DAYS = (date(2026, 3, 8), date(2026, 3, 29), date(2026, 10, 25), date(2026, 11, 1))
PERIOD = ExportFilters(date(2026, 3, 1), date(2026, 11, 10), include_entered_in_error=True)

TEXTS: tuple[str | None, ...] = (
    *(lead + "x" for lead in DANGEROUS_LEADING),
    "=SUM(A1:A9)",
    "a, b",
    'said "ouch"',
    "line\nbreak",
    "carriage\rreturn",
    "",
    " leading space",
    "'already quoted",
    "ünïcødé, 東京",
    None,
    "plain",
)
FLOATS: tuple[float | None, ...] = (
    36.6,
    37.0,
    0.1 + 0.2,
    36.666666666666664,
    1e-05,
    0.0001,
    5e-324,
    0.0,
    1e9,
    123456789.125,
    None,
    -12.5,
)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


#: Each side of every 2026 change of the two zones that have them (UTC), to the microsecond, and far outside.
MOMENTS = tuple(
    _utc(t)
    for t in (
        "2026-03-08 06:59:59.999999",
        "2026-03-08 07:00:00",
        "2026-03-29 00:59:59.500000",
        "2026-03-29 01:00:00.000001",
        "2026-10-25 00:59:59",
        "2026-10-25 01:00:00",
        "2026-11-01 05:59:59.999999",
        "2026-11-01 06:00:00",
        "2001-07-20 20:17:40",
        "2099-12-31 23:59:59.999999",
    )
)


@dataclass
class Network:
    db: Database
    sites: dict[str, int]
    vitals: int
    reactions: int


def _sessions(db: Database, chairs: dict[str, int]) -> Iterator[tuple[int, datetime]]:
    patient = new_patient(db, NURSE)
    therapy = therapy_id(db, "natalizumab")
    for code, zone in SITES:
        for day in DAYS:
            for hour in (1, 3, 23):  # before, after and well after a 2 a.m. change, local time
                at = datetime.combine(day, time(hour, 30), tzinfo=ZoneInfo(zone))
                sid = sessions.create_session(
                    db, NURSE, patient_id=patient, therapy_id=therapy, chair_id=chairs[code], scheduled_at=at
                ).id
                yield sid, at


def _vital(i: int, session_id: int, scheduled: datetime, staff: list[int], rng: random.Random) -> dict[str, Any]:
    """Reading i of a session: offsets from the scheduled time (the time reference) on the ties of round(…, 1)."""
    tie = timedelta(seconds=3 * (2 * rng.randrange(0, 4000) + 1)) * rng.choice((1, -1))
    offsets = (
        tie,
        timedelta(seconds=15),
        -timedelta(seconds=45),
        timedelta(microseconds=rng.randrange(-(10**11), 10**11)),
    )
    taken = scheduled + offsets[i % len(offsets)]
    if i % 7 == 3:
        taken = MOMENTS[i % len(MOMENTS)]
    text = TEXTS[i % len(TEXTS)]
    unable: dict[str, Any] = {}
    if i % 5 == 1:
        unable = {"spo2": "cold, fingers", "x;y": "=bad", "pulse": None, "bp": 5, "temp": True}
    flags: list[dict[str, Any]] = []
    if i % 4 == 2:
        flags = [{"code": "temp_high"}, {"field": "pulse"}, {"code": "-weird"}, {"code": "sbp_low"}]
    return {
        "session_id": session_id,
        "phase": ("pre", "infusion", "observation")[i % 3],
        "taken_at": taken,
        "entered_at": MOMENTS[(i + 5) % len(MOMENTS)] if i % 3 == 0 else taken + timedelta(minutes=2, seconds=15),
        "entered_by_id": staff[i % len(staff)] if i % 6 else None,
        "systolic": 120 + i % 40 if i % 9 else None,
        "diastolic": -5 if i % 11 == 0 else 80,
        "pulse": 70,
        "resp_rate": None,
        "temperature_c": FLOATS[i % len(FLOATS)],
        "spo2": 97,
        "pain": i % 11,
        "weight_kg": FLOATS[(i + 3) % len(FLOATS)],
        "consciousness": ("A", "V", "=", "-", "")[i % 5],
        "on_oxygen": bool(i % 2),
        "position": TEXTS[(i + 2) % len(TEXTS)],
        "unable_to_obtain": unable,
        "provider_notified": i % 3 == 1,
        "provider_name": TEXTS[(i + 4) % len(TEXTS)],
        "provider_notified_at": MOMENTS[i % len(MOMENTS)] if i % 3 == 1 else None,
        "flags": flags,
        "flag_count": len(flags),
        "news2": i % 8 if i % 10 else None,
        "news2_complete": i % 2 == 0,
        "note": text,
        "status": "entered_in_error" if i % 13 == 5 else "active",
        "correction_reason": TEXTS[(i + 7) % len(TEXTS)] if i % 4 == 0 else None,
    }


def _reaction(i: int, session_id: int, scheduled: datetime, staff: list[int], rng: random.Random) -> dict[str, Any]:
    """Reaction i of a session: onset on the ties of round(…, 1) from the reference, odd lists and texts."""
    tie = timedelta(seconds=3 * (2 * rng.randrange(0, 4000) + 1))
    onset = scheduled + (tie, -tie, timedelta(minutes=25, seconds=15), timedelta(minutes=90))[i % 4]
    symptoms = (["rash", "x;y", "-bad", ""], [], ["flushing"], ["rash", "urticaria"])[i % 4]
    return {
        "session_id": session_id,
        "onset_at": onset,
        "symptoms": symptoms,
        "other_text": TEXTS[i % len(TEXTS)],
        "grade": 1 + i % 5,
        "actions": (["observed"], ["=cmd", "stopped"], [])[i % 3],
        "medication_given": TEXTS[(i + 3) % len(TEXTS)],
        "resolved_at": None if i % 3 == 0 else onset + (tie, timedelta(seconds=45), timedelta(microseconds=7))[i % 3],
        "provider_notified": i % 2 == 0,
        "provider_name": TEXTS[(i + 5) % len(TEXTS)],
        "note": TEXTS[(i + 1) % len(TEXTS)],
        "entered_at": MOMENTS[i % len(MOMENTS)] if i % 4 == 1 else onset + timedelta(minutes=3),
        "entered_by_id": staff[i % len(staff)] if i % 5 else None,
        "status": "entered_in_error" if i % 7 == 4 else "active",
        "correction_reason": TEXTS[(i + 6) % len(TEXTS)] if i % 2 else None,
    }


@pytest.fixture
def network(db: Database) -> Network:
    with db.writing() as s:
        first = s.scalars(select(Clinic).order_by(Clinic.id)).first()
        assert first is not None
        first.code, first.timezone = SITES[0]
        for code, zone in SITES[1:]:
            s.add(
                Clinic(
                    name=f"Site {code}",
                    code=code,
                    timezone=zone,
                    temperature_unit="C",
                    weight_unit="kg",
                    settings=ClinicSettings().model_dump(),
                )
            )
    with db.reading() as s:
        sites = {c.code: c.id for c in s.scalars(select(Clinic))}
    chairs = {code: add_chair(db, ADMIN, f"Chair {code}", site_id=site).id for code, site in sites.items()}
    staff = [staff_actor(db, name).user_id for name in ("Nora Nurse", "Ben Brown")]
    with db.writing() as s:  # names that need neutralising and quoting, as an account could hold them
        s.execute(update(AppUser).where(AppUser.id == staff[1]).values(display_name='=Evil, "Eve"'))
        s.execute(update(AppUser).where(AppUser.id == staff[0]).values(display_name="Dr :name O'Neil"))
    rng = random.Random(14)
    made = list(_sessions(db, chairs))
    users = [u for u in staff if u is not None]
    rows = [_vital(i, sid, at, users, rng) for sid, at in made for i in range(rng.randrange(8, 16))]
    reactions = [_reaction(i, sid, at, users, rng) for n, (sid, at) in enumerate(made) for i in range(n % 4)]
    with db.writing() as s:
        for n, (sid, at) in enumerate(made):  # half the sessions infused: phases and IV-start references
            if n % 2:
                start = at + timedelta(minutes=20, seconds=15)
                s.execute(
                    update(InfusionSession)
                    .where(InfusionSession.id == sid)
                    .values(iv_started_at=start, iv_stopped_at=None if n % 4 == 1 else start + timedelta(hours=1))
                )
    for model, values in ((VitalSign, rows), (Reaction, reactions)):
        with db.writing() as s:
            added = [model(**row) for row in values]
            s.add_all(added)
            s.flush()
            for previous, row in zip(added, added[1:], strict=False):  # some correct the one before
                if row.id % 5 == 0 and previous.session_id == row.session_id:
                    row.replaces_id = previous.id
    return Network(db, sites, len(rows), len(reactions))


def _export(
    db: Database, filters: ExportFilters, *, per_row: bool = False, dataset: str = "vitals", **kwargs: Any
) -> bytes:
    out = io.BytesIO()
    if per_row:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(datasets, "_sql_plan", lambda *args, **kw: None)
            write_csv(db, dataset, filters, out, actor_role="admin", **kwargs)
    else:
        write_csv(db, dataset, filters, out, actor_role="admin", **kwargs)
    return out.getvalue()


def _same(fast: bytes, reference: bytes) -> None:
    """Byte equality, reporting the first differing line when there is one."""
    if fast != reference:
        for number, (a, b) in enumerate(zip(fast.split(b"\r\n"), reference.split(b"\r\n"), strict=False)):
            assert a == b, f"line {number}:\n  database: {a!r}\n  per row:  {b!r}"
    assert fast == reference


MODES: dict[str, dict[str, Any]] = {
    "identified": {},
    "deidentified": {"deidentify": True, "secret": SECRET},
}


@pytest.mark.parametrize("dataset", ["vitals", "reactions"])
@pytest.mark.parametrize("mode", MODES)
def test_database_cells_equal_the_per_row_file(
    network: Network, mode: str, dataset: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    used: list[str] = []
    real = datasets._write_by_sql

    def spy(*args: Any, **kwargs: Any) -> int:
        used.append("sql")
        return real(*args, **kwargs)

    monkeypatch.setattr(datasets, "_write_by_sql", spy)
    fast = _export(network.db, PERIOD, dataset=dataset, **MODES[mode])
    assert used == ["sql"], "the export is written by the database"
    reference = _export(network.db, PERIOD, per_row=True, dataset=dataset, **MODES[mode])
    _same(fast, reference)
    rows = network.vitals if dataset == "vitals" else network.reactions
    assert fast.count(b"\r\n") - 1 >= rows * 0.9  # quoted line breaks inside cells count too


@pytest.mark.parametrize(
    "filters",
    [
        ExportFilters(PERIOD.start, PERIOD.end),  # entered-in-error left out
        ExportFilters(date(2026, 3, 8), date(2026, 3, 8), include_entered_in_error=True),
        ExportFilters(date(2026, 10, 25), date(2026, 11, 1), include_entered_in_error=True),
    ],
)
def test_other_periods_and_the_entered_in_error_filter(network: Network, filters: ExportFilters) -> None:
    for dataset in ("vitals", "reactions"):
        for kwargs in MODES.values():
            _same(
                _export(network.db, filters, dataset=dataset, **kwargs),
                _export(network.db, filters, per_row=True, dataset=dataset, **kwargs),
            )


def test_one_site_pseudonymous_site_and_small_chunks(network: Network) -> None:
    one = ExportFilters(PERIOD.start, PERIOD.end, include_entered_in_error=True, site_ids=(network.sites["-LDN"],))
    _same(_export(network.db, one), _export(network.db, one, per_row=True))
    keyed = ExportFilters(PERIOD.start, PERIOD.end, pseudonymise_site=True)
    kwargs: dict[str, Any] = {"deidentify": True, "secret": SECRET}
    _same(_export(network.db, keyed, **kwargs), _export(network.db, keyed, per_row=True, **kwargs))
    counts: list[int] = []
    chunked = _export(network.db, PERIOD, chunk_rows=7, progress=counts.append)
    _same(chunked, _export(network.db, PERIOD, per_row=True))
    assert counts == sorted(counts) and len(counts) > 2 and counts[-1] >= network.vitals * 0.9


@pytest.mark.parametrize("mode", MODES)
def test_large_lookup_tables(network: Network, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Staff names and site codes past the CASE limit: a Python function (SQLite) or a joined table (PostgreSQL)."""
    monkeypatch.setattr(sql_cells, "LOOKUP_CASE_LIMIT", 0)
    keyed = ExportFilters(
        PERIOD.start, PERIOD.end, include_entered_in_error=True, pseudonymise_site=mode != "identified"
    )
    for dataset in ("vitals", "reactions"):
        fast = _export(network.db, keyed, dataset=dataset, **MODES[mode])
        _same(fast, _export(network.db, keyed, per_row=True, dataset=dataset, **MODES[mode]))
    if mode == "identified":
        assert b"Dr :name O'Neil" in fast and b'"\'=Evil, ""Eve"""' in fast


def test_text_stream_gets_the_same_text(network: Network, tmp_path: Path) -> None:
    path = tmp_path / "vitals.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        write_csv(network.db, "vitals", PERIOD, fh, actor_role="admin")
    _same(path.read_bytes(), _export(network.db, PERIOD, per_row=True))


@pytest.mark.parametrize(
    "key",
    [
        "America/New_York",
        "Europe/London",
        "Pacific/Honolulu",
        "Australia/Lord_Howe",  # a 30-minute change
        "Asia/Kathmandu",  # +05:45
        "America/St_Johns",  # -03:30 and DST
        "UTC",
    ],
)
def test_zone_transitions_match_zoneinfo(key: str) -> None:
    zone = ZoneInfo(key)
    spans = sql_cells.transitions(key, 2024, 2027)
    ends = [start for start, _, _ in spans[1:]] + [datetime(2028, 1, 1, tzinfo=UTC)]
    for (start, seconds, suffix), end in zip(spans, ends, strict=True):
        for moment in (start, end - timedelta(microseconds=1), start + (end - start) / 2):
            local = moment.astimezone(zone)
            assert local.utcoffset() == timedelta(seconds=seconds), (key, moment)
            assert local.isoformat(timespec="seconds").endswith(suffix)
    assert spans[0][0] == datetime(2024, 1, 1, tzinfo=UTC)
