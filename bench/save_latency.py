"""Save and screen-read latency on a large clinic database (prints figures; asserts nothing).

    python bench/save_latency.py [--database-url URL] [--sessions N] [--saves 300]

Without a URL it builds a temporary SQLite file with the demo loader (N
sessions, default 100,000), then times, on top of that history:
  - record_vitals (one nurse save: lock, validate, insert, audit, commit),
  - change_rate, and
  - the two reads behind the Chairside screen (today's list, one session in full).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from db.engine import open_database  # noqa: E402
from infusion.accounts.actor import Actor
from infusion.clinical.vitals import VitalsEntry  # noqa: E402
from infusion.clock import utcnow  # noqa: E402
from infusion.reads import sessions as views
from infusion.services import entries, sessions, setup

ADMIN = Actor(None, "bench admin", "admin")


def timed(fn, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def report(name: str, ms: list[float]) -> None:
    ms = sorted(ms)
    p95 = ms[int(len(ms) * 0.95) - 1]
    print(f"{name:28} n={len(ms):4}  median {statistics.median(ms):7.2f} ms   p95 {p95:7.2f} ms   max {ms[-1]:7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--saves", type=int, default=300)
    args = parser.parse_args()
    url = args.database_url
    if url is None:
        path = Path(tempfile.mkdtemp()) / "bench.sqlite"
        url = f"sqlite:///{path}"
        from infusion.demo.clinic import main as demo_main

        t0 = time.perf_counter()
        demo_main(["--sessions", str(args.sessions), "--database-url", url])
        print(f"demo load: {time.perf_counter() - t0:.1f} s")
    db = open_database(url)
    setup.bootstrap(db)
    stamp = int(time.time())
    nurse_user = setup.add_staff(db, ADMIN, f"Bench Nurse {stamp}", "nurse", username=f"bench.{stamp}")
    nurse = Actor(nurse_user.id, nurse_user.display_name, "nurse")
    chair = setup.add_chair(db, ADMIN, f"Bench chair {stamp}")
    patient = setup.add_patient(db, nurse, mrn=f"BENCH-{stamp}", given_name="Bench", family_name="Patient")
    therapy = next(t for t in setup.list_therapies(db) if t.code == "methylprednisolone")
    now = utcnow()
    row = sessions.create_session(db, nurse, patient_id=patient.id, therapy_id=therapy.id, chair_id=chair.id)
    clinic = setup.get_clinic(db)
    temperature = 98.2 if clinic.temperature_unit == "F" else 36.8
    baseline = VitalsEntry(systolic=120, diastolic=80, pulse=70, resp_rate=16, temperature=temperature, spo2=98)
    sessions.check_in(
        db, nurse, row.id, baseline, expected_version=None, at=now - timedelta(minutes=60), acknowledge_flags=True
    )
    sessions.proceed(db, nurse, row.id, expected_version=None, at=now - timedelta(minutes=59))
    sessions.start_iv(
        db,
        nurse,
        row.id,
        expected_version=None,
        site="Port",
        gauge=20,
        attempts=1,
        lot_number="B",
        rate_ml_h=100,
        at=now - timedelta(minutes=58),
    )
    with db.engine.connect() as conn:
        counts = {
            t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()
            for t in ("infusion_session", "vital_sign", "audit_event")
        }
    print(f"database: {db.dialect}; rows: {counts}")

    report(
        "record_vitals (save)",
        timed(
            lambda i: entries.record_vitals(
                db,
                nurse,
                row.id,
                VitalsEntry(pulse=70 + i % 20, systolic=118, diastolic=76),
                client_token=f"b{stamp}-{i}",
            ),
            args.saves,
        ),
    )
    report("change_rate (save)", timed(lambda i: entries.change_rate(db, nurse, row.id, 100 + i % 50), 100))
    report("today_sessions (read)", timed(lambda i: views.today_sessions(db, nurse), 50))
    report("session_detail (read)", timed(lambda i: views.session_detail(db, nurse, row.id), 50))


if __name__ == "__main__":
    main()
