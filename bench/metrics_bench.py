"""Time every Trends metric on a large demo database; figures only, no assertions.

    python -m infusion.demo --sessions 100000 --database-url sqlite:////tmp/bench.sqlite
    python bench/metrics_bench.py --database-url sqlite:////tmp/bench.sqlite

If the database has no sessions, the script fills it first: with infusion.demo.clinic
when that module can be imported, otherwise with a quick bulk insert of its own
(sessions, one reaction in ~8 %, vitals every 60 min) so the timings still mean
something. reaction_rates is also timed as one hand-written SQL statement, to
show what the SQLAlchemy Core + pandas + Wilson layer costs on top of the query
(two variants: EXISTS per session, and the LEFT JOIN that infusion.reads.trends.metrics uses).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select, text  # noqa: E402

from db.engine import WRITE_OPTION, Database, open_database  # noqa: E402
from db.models import Chair, InfusionSession, Patient, Reaction, Therapy, VitalSign  # noqa: E402
from infusion.reads import trends as metrics  # noqa: E402
from infusion.reads.trends import TrendFilters, utc_bounds  # noqa: E402
from infusion.reads.trends.filters import _clinic_tz  # noqa: E402
from infusion.services.setup import bootstrap  # noqa: E402

WINDOW = "s.status = 'discharged' AND s.checked_in_at >= :lo AND s.checked_in_at < :hi"
HAND_SQL = {
    # what the brief suggested: EXISTS per session (PostgreSQL runs it as a per-row SubPlan)
    "exists": f"""
SELECT s.therapy_id, COUNT(*) AS completed,
       SUM(CASE WHEN EXISTS (SELECT 1 FROM reaction r WHERE r.session_id = s.id AND r.status = 'active')
                THEN 1 ELSE 0 END) AS with_reaction
FROM infusion_session s WHERE {WINDOW} GROUP BY s.therapy_id""",
    # what infusion.reads.trends.metrics emits: a LEFT JOIN of active reactions grouped per session
    "left join": f"""
SELECT s.therapy_id, COUNT(*) AS completed, COUNT(r.sid) AS with_reaction
FROM infusion_session s
LEFT JOIN (SELECT session_id AS sid, MAX(grade) AS worst FROM reaction WHERE status = 'active'
           GROUP BY session_id) r ON r.sid = s.id
WHERE {WINDOW} GROUP BY s.therapy_id""",
}


def timed(function: Callable[[], Any], repeat: int) -> tuple[float, float, float]:
    """(first call, median, best) in milliseconds; the first call includes statement compilation."""
    runs = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        function()
        runs.append((time.perf_counter() - start) * 1000)
    rest = runs[1:] or runs
    return runs[0], statistics.median(rest), min(rest)


def session_count(db: Database) -> int:
    with db.reading() as s:
        return int(s.scalar(select(func.count()).select_from(InfusionSession)) or 0)


def fill(db: Database, sessions: int) -> None:
    try:
        from infusion.demo.clinic import DemoOptions, load_demo
    except ImportError as exc:  # the demo module is someone else's work in progress
        print(f"infusion.demo.clinic unavailable ({exc}); bulk-inserting {sessions:,} plain sessions")
        bulk_fill(db, sessions)
        return
    print(f"loading infusion.demo.clinic with {sessions:,} sessions …", flush=True)
    start = time.perf_counter()
    load_demo(db, DemoOptions(sessions=sessions))
    print(f"  done in {time.perf_counter() - start:.1f} s")


def bulk_fill(db: Database, sessions: int, seed: int = 7) -> None:
    """Discharged sessions spread over the last year, 08:00–17:00 UTC, one executemany per table."""
    rng = random.Random(seed)
    bootstrap(db)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with db.engine.connect() as conn:
        conn = conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            therapies = [r[0] for r in conn.execute(select(Therapy.id))]
            conn.execute(
                insert(Chair), [{"name": f"Bench chair {i}", "kind": "chair", "active": True} for i in range(8)]
            )
            chairs = [r[0] for r in conn.execute(select(Chair.id))]
            patients = max(100, sessions // 8)
            conn.execute(
                insert(Patient),
                [
                    {
                        "mrn": f"B{i:07d}",
                        "family_name": "Bench",
                        "given_name": str(i),
                        "diagnosis": "Multiple sclerosis",
                        "created_at": now,
                    }
                    for i in range(patients)
                ],
            )
            patient_ids = [r[0] for r in conn.execute(select(Patient.id))]
            rows, vitals, reactions = [], [], []
            first_id = int(conn.scalar(select(func.coalesce(func.max(InfusionSession.id), 0)))) + 1
            for i in range(sessions):
                day = now - timedelta(days=rng.randint(1, 365))
                checkin = day.replace(hour=rng.randint(8, 15), minute=rng.choice((0, 15, 30, 45)))
                start, length = checkin + timedelta(minutes=20), rng.choice((60, 90, 150, 210, 240))
                stop, end = start + timedelta(minutes=length), start + timedelta(minutes=length + 60)
                sid = first_id + i
                rows.append(
                    {
                        "id": sid,
                        "patient_id": rng.choice(patient_ids),
                        "therapy_id": rng.choice(therapies),
                        "chair_id": rng.choice(chairs),
                        "infusion_number": rng.randint(1, 6),
                        "status": "discharged",
                        "scheduled_at": checkin,
                        "checked_in_at": checkin,
                        "iv_started_at": start,
                        "iv_stopped_at": stop,
                        "discharged_at": end,
                        "infusion_minutes": float(length),
                        "chair_minutes": float(length + 80),
                        "created_at": checkin,
                    }
                )
                for minutes in range(-20, length + 1, 60):
                    vitals.append(
                        {
                            "session_id": sid,
                            "phase": "pre" if minutes < 0 else "infusion",
                            "taken_at": start + timedelta(minutes=minutes),
                            "entered_at": checkin,
                            "status": "active",
                            "systolic": 120,
                            "diastolic": 80,
                            "pulse": 70,
                        }
                    )
                if rng.random() < 0.08:
                    reactions.append(
                        {
                            "session_id": sid,
                            "onset_at": start + timedelta(minutes=30),
                            "grade": rng.choice((1, 1, 2, 2, 3)),
                            "symptoms": ["rash"],
                            "actions": ["observed"],
                            "entered_at": start,
                            "status": "active",
                        }
                    )
            conn.execute(insert(InfusionSession), rows)
            conn.execute(insert(VitalSign), vitals)
            if reactions:
                conn.execute(insert(Reaction), reactions)


def hand_written(db: Database, f: TrendFilters, variant: str) -> list[Any]:
    with db.reading() as s:
        tz = _clinic_tz(s)
        lo, hi = utc_bounds(f.start, f.end, tz)
        if db.dialect == "sqlite":  # the stored format of UTCDateTime on SQLite
            lo, hi = (x.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f") for x in (lo, hi))
        return s.connection().execute(text(HAND_SQL[variant]), {"lo": lo, "hi": hi}).all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default="sqlite:////tmp/bench.sqlite")
    parser.add_argument("--sessions", type=int, default=100_000, help="sessions to load when the database is empty")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--days", type=int, default=365, help="filter period ending today (default a year)")
    parser.add_argument("--bulk", action="store_true", help="fill with the bench's own bulk insert, not the demo")
    parser.add_argument("--explain", action="store_true", help="print the SQLite/PostgreSQL plan of reaction_rates")
    args = parser.parse_args(argv)

    db = open_database(args.database_url)
    if session_count(db) == 0:
        bulk_fill(db, args.sessions) if args.bulk else fill(db, args.sessions)
    with db.reading() as s:
        n_sessions = session_count(db)
        n_vitals = s.scalar(select(func.count()).select_from(VitalSign))
        n_reactions = s.scalar(select(func.count()).select_from(Reaction))
        therapy = s.scalar(select(Therapy.id).where(Therapy.code == "ocrelizumab_iv"))
        nurse = s.scalar(
            text("SELECT entered_by_id FROM rate_change WHERE kind = 'start' AND entered_by_id IS NOT NULL LIMIT 1")
        )
    today = date.today()
    year = TrendFilters(today - timedelta(days=args.days - 1), today)
    month = TrendFilters(today - timedelta(days=29), today)
    narrow = TrendFilters(
        year.start,
        year.end,
        therapy_ids=(therapy,) if therapy else (),
        nurse_ids=(nurse,) if nurse else (),
        infusion="later",
    )
    print(
        f"{db.dialect} {args.database_url}: {n_sessions:,} sessions, {n_vitals:,} vitals, "
        f"{n_reactions:,} reactions; period {year.start} – {year.end}; best of {args.repeat} after a first call"
    )
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("reaction_rates, hand-written SQL, EXISTS", lambda: hand_written(db, year, "exists")),
        ("reaction_rates, hand-written SQL, LEFT JOIN", lambda: hand_written(db, year, "left join")),
        ("reaction_rates", lambda: metrics.reaction_rates(db, year)),
        ("reaction_rates, last 30 days", lambda: metrics.reaction_rates(db, month)),
        ("reaction_rates, Ocrevus + nurse + later", lambda: metrics.reaction_rates(db, narrow)),
        ("reaction_rates_by_grade", lambda: metrics.reaction_rates_by_grade(db, year)),
        ("reaction_rates_by_infusion_number", lambda: metrics.reaction_rates_by_infusion_number(db, year)),
        ("monthly_reaction_pchart (all)", lambda: metrics.monthly_reaction_pchart(db, year)),
        ("monthly_reaction_pchart (one therapy)", lambda: metrics.monthly_reaction_pchart(db, year, therapy)),
        ("session_durations", lambda: metrics.session_durations(db, year)),
        ("duration_summary", lambda: metrics.duration_summary(db, year)),
        ("chair_utilisation", lambda: metrics.chair_utilisation(db, year)),
        ("reaction_time_lost", lambda: metrics.reaction_time_lost(db, year)),
        ("completeness", lambda: metrics.completeness(db, year)),
        ("completeness, last 30 days", lambda: metrics.completeness(db, month)),
    ]
    print(f"{'metric':<48}{'first ms':>10}{'median ms':>11}{'best ms':>9}{'rows':>7}")
    for name, function in cases:
        result = function()
        rows = len(result.sessions) if isinstance(result, metrics.CompletenessReport) else len(result)
        first, median, best = timed(function, args.repeat)
        print(f"{name:<48}{first:>10.1f}{median:>11.1f}{best:>9.1f}{rows:>7}")
    if args.explain:
        with db.reading() as s:
            tz = _clinic_tz(s)
            lo, hi = utc_bounds(year.start, year.end, tz)
            prefix = "EXPLAIN QUERY PLAN " if db.dialect == "sqlite" else "EXPLAIN "
            if db.dialect == "sqlite":
                lo, hi = (x.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f") for x in (lo, hi))
            for variant, sql in HAND_SQL.items():
                print(f"plan of the hand-written {variant} query:")
                for row in s.execute(text(prefix + sql), {"lo": lo, "hi": hi}):
                    print("  ", " | ".join(str(c) for c in row))
    db.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
