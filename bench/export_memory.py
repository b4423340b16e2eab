"""Peak memory of a vitals export at two database sizes: streaming should keep it flat.

    python bench/export_memory.py [--sizes 5000 50000] [--keep]

For each size a demo database is generated once (`python -m infusion.demo
--sessions N`, about 5.4 vitals per session; the 50,000-session one is
/tmp/export_bench.sqlite) unless it exists. If the demo generator is not
available, synthetic rows are bulk-inserted instead. Each measurement runs in a
fresh interpreter so one size's peak cannot hide in another's:

- maxrss: resource.getrusage peak resident set of the process, minus the same
  figure taken just before the export (imports, engine, clinic row), so the
  number is what the export itself added;
- tracemalloc peak: the most Python heap the export held at once (a separate
  run, since tracing slows the export down);
- CPU seconds next to wall seconds, as wall time on a shared machine is noise.

Prints figures only; nothing is asserted (the issue asks for a closing note, not
a timing test).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def database_path(sessions: int) -> Path:
    if sessions == 50_000:
        return Path("/tmp/export_bench.sqlite")
    return Path(f"/tmp/export_bench_{sessions}.sqlite")


def ensure_database(sessions: int) -> Path:
    path = database_path(sessions)
    if path.exists():
        return path
    url = f"sqlite:///{path}"
    print(f"generating {sessions:,} demo sessions into {path} …", file=sys.stderr, flush=True)
    done = subprocess.run(
        [sys.executable, "-m", "infusion.demo", "--sessions", str(sessions), "--database-url", url],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        print(
            f"infusion.demo.clinic failed ({done.stderr.strip().splitlines()[-1:]}); bulk-inserting synthetic rows",
            file=sys.stderr,
        )
        path.unlink(missing_ok=True)
        synthetic_database(path, sessions)
    return path


def synthetic_database(path: Path, sessions: int, vitals_per_session: int = 6) -> None:
    """Fallback: plain executemany of sessions and vitals (no clinical realism, same columns)."""
    from sqlalchemy import insert

    from db.engine import open_database
    from db.models import Chair, InfusionSession, Patient, Therapy, VitalSign
    from infusion.services.setup import bootstrap

    db = open_database(f"sqlite:///{path}")
    bootstrap(db)
    now = datetime.now(UTC) - timedelta(days=1)
    with db.writing() as s:
        therapy_id = s.query(Therapy.id).first()[0]
        s.execute(insert(Chair), [{"name": "Chair 1", "kind": "chair", "active": True}])
        chair_id = s.query(Chair.id).first()[0]
        s.execute(
            insert(Patient),
            [
                {"mrn": f"SYN{i:07d}", "family_name": "Synthetic", "given_name": str(i), "created_at": now}
                for i in range(1, 2001)
            ],
        )
        batch_s, batch_v, vid = [], [], 1
        for sid in range(1, sessions + 1):
            start = now - timedelta(hours=sid % 8760)
            batch_s.append(
                {
                    "id": sid,
                    "patient_id": 1 + sid % 2000,
                    "therapy_id": therapy_id,
                    "chair_id": chair_id,
                    "dose": 300.0,
                    "status": "discharged",
                    "scheduled_at": start,
                    "checked_in_at": start,
                    "iv_started_at": start + timedelta(minutes=20),
                    "created_at": start,
                }
            )
            for k in range(vitals_per_session):
                batch_v.append(
                    {
                        "id": vid,
                        "session_id": sid,
                        "phase": "infusion",
                        "taken_at": start + timedelta(minutes=15 * k),
                        "entered_at": start,
                        "systolic": 120,
                        "diastolic": 80,
                        "pulse": 70,
                        "resp_rate": 16,
                        "temperature_c": 36.8,
                        "spo2": 98,
                        "status": "active",
                        "flags": [],
                        "unable_to_obtain": {},
                    }
                )
                vid += 1
            if len(batch_v) >= 50_000:
                s.execute(insert(InfusionSession), batch_s)
                s.execute(insert(VitalSign), batch_v)
                batch_s, batch_v = [], []
        if batch_s:
            s.execute(insert(InfusionSession), batch_s)
        if batch_v:
            s.execute(insert(VitalSign), batch_v)
    db.engine.dispose()


def child(path: str, trace: bool) -> dict[str, float]:
    """One export of every vitals row to a file, in this (fresh) process."""
    import tracemalloc

    from db.engine import Database, make_engine
    from infusion.exports.datasets import ExportFilters, write_csv

    db = Database(make_engine(f"sqlite:///{path}"))
    with db.engine.connect() as conn:  # open the pool and load the dialect before the baseline
        conn.exec_driver_sql("SELECT 1")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    before_kb, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    out_path = Path(f"{path}.vitals.csv")
    with out_path.open("wb") as out:
        rows = write_csv(db, "vitals", ExportFilters(date(2000, 1, 1), date(2100, 1, 1)), out)
    seconds = time.perf_counter() - started
    peak_trace = tracemalloc.get_traced_memory()[1] if trace else 0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    after_kb, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime - cpu_before
    size = out_path.stat().st_size
    out_path.unlink()
    return {
        "rows": rows,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "maxrss_mib": after_kb / 1024,
        "export_rss_mib": (after_kb - before_kb) / 1024,
        "tracemalloc_peak_mib": peak_trace / 2**20,
        "file_mib": size / 2**20,
    }


def measure(path: Path, trace: bool) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(path)] + (["--trace"] if trace else []),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5_000, 50_000], help="demo sessions per database")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.trace)))
        return 0
    print(
        f"{'sessions':>9} {'vitals rows':>12} {'CSV MiB':>8} {'wall s':>7} {'CPU s':>6} {'µs/row CPU':>10} "
        f"{'maxrss MiB':>11} {'+export MiB':>12} {'tracemalloc peak MiB':>21}"
    )
    for sessions in args.sizes:
        path = ensure_database(sessions)
        plain = measure(path, trace=False)
        traced = measure(path, trace=True)
        print(
            f"{sessions:>9,} {int(plain['rows']):>12,} {plain['file_mib']:>8.1f} {plain['seconds']:>7.1f} "
            f"{plain['cpu_seconds']:>6.1f} {plain['cpu_seconds'] / max(plain['rows'], 1) * 1e6:>10.0f} "
            f"{plain['maxrss_mib']:>11.1f} "
            f"{plain['export_rss_mib']:>12.1f} {traced['tracemalloc_peak_mib']:>21.2f}",
            flush=True,
        )
    from infusion.exports.datasets import CHUNK_ROWS

    print(f"(databases: {', '.join(str(database_path(n)) for n in args.sizes)}; {CHUNK_ROWS:,} rows per chunk)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
