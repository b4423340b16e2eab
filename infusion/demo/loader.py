"""The load: one transaction that plans, simulates and writes the whole demo clinic.

`load_demo` is the entry point the command line, the dashboard's `--demo`
start, the benchmarks and the tests call. The order of the steps in `_run` is
also the order of the random draws, so reordering them changes what a seed
generates.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from random import Random

from sqlalchemy import Connection, func, select, update

from db.engine import WRITE_OPTION, Database
from db.models import InfusionSession, Patient
from infusion.clinical.reactions import ACTIONS, SYMPTOMS
from infusion.demo.days import PastDays
from infusion.demo.options import DemoOptions, DemoRefused, DemoResult
from infusion.demo.planning import Planner
from infusion.demo.premises import (
    add_chairs,
    chairs_for,
    fix_sequences,
    load_therapies,
    lock_tables,
    prepare_premises,
    write_audit,
)
from infusion.demo.reactions import REACTIONS
from infusion.demo.rows import SessionRows
from infusion.demo.simulate import IV_SITE_WEIGHTS, Generator, fast_randint
from infusion.demo.therapies import Plan
from infusion.demo.today import LiveDay, live_slots
from infusion.demo.writer import COLUMNS, COUNT_LABELS, SESSION_TABLE, Encoder, Ids, Writer
from infusion.reads.trends.maintenance import rebuild as rebuild_trend_summaries
from infusion.services.sessions import IV_SITES
from infusion.services.setup import bootstrap

log = logging.getLogger(__name__)


def check_assumptions() -> None:
    """Fail clearly if the models or the entry vocabulary changed under this loader."""
    symptoms = {s for p in REACTIONS.values() for s, _ in p.symptoms if not s.startswith("other:")}
    actions = {"observed", "rate_slowed", "paused", "stopped", "medication_given"}
    problems = [f"unknown symptoms {sorted(symptoms - set(SYMPTOMS))}"] if symptoms - set(SYMPTOMS) else []
    problems += [f"unknown actions {sorted(actions - set(ACTIONS))}"] if actions - set(ACTIONS) else []
    problems += (
        ["IV sites differ from infusion.services.sessions.IV_SITES"] if set(IV_SITE_WEIGHTS) != set(IV_SITES) else []
    )
    for table, names in COLUMNS.items():
        missing = [c.name for c in table.columns if c.name not in names and not c.nullable and c.server_default is None]
        unknown = [n for n in names if n not in table.columns]
        if missing or unknown:
            problems.append(f"table {table.name}: not filled {missing}, unknown {unknown}")
    if problems:
        raise RuntimeError("infusion.demo is out of date: " + "; ".join(problems))


def _first_mrn(conn: Connection, rng: Random) -> int:
    """The next free MRN-nnnnnn number, or a random start on an empty database."""
    mrns = conn.execute(select(Patient.mrn).where(Patient.mrn.like("MRN-%"))).scalars()
    numbers = [int(m[4:]) for m in mrns if m[4:].isdigit()]
    return (max(numbers) + 1) if numbers else 1000 + fast_randint(rng)(0, 8000)


def _run(conn: Connection, options: DemoOptions, now: datetime, fresh: bool) -> DemoResult:
    """Generate the demo clinic and write it inside the caller's transaction (the tables are locked)."""
    rng = Random(options.seed)
    now_min = int(now.timestamp() // 60)
    ids = Ids(conn)
    check_assumptions()
    premises = prepare_premises(conn, ids, now_min, fresh)
    therapies = load_therapies(conn)
    gen = Generator(rng, premises.settings)
    today = premises.today
    window_start = today - timedelta(days=max(1, options.span) - 1)
    first_mrn = _first_mrn(conn, rng)
    live = live_slots(premises, options.sessions)
    planner = Planner(rng, ids, therapies, today, window_start, options.sessions)
    patients, plans, live_plans = planner.plan(live)
    by_day: dict[date, list[Plan]] = defaultdict(list)
    for plan in plans:
        by_day[plan.day].append(plan)
    add_chairs(conn, ids, premises, chairs_for(by_day))
    writer = Writer(conn)
    rows = SessionRows(rng, ids, Encoder(conn.dialect), writer, gen, premises, now_min, options.span)
    rows.write_patients(patients, first_mrn)
    past = PastDays(rng, gen, rows, premises)
    for day in sorted(by_day):
        past.write(day, by_day[day])
        writer.maybe_flush()
    LiveDay(rng, gen, rows, premises, now_min).write(live_plans)
    writer.flush()
    # home-visit sessions are marked as such (they are not held to one active session per location)
    conn.execute(update(SESSION_TABLE).where(InfusionSession.chair_id == premises.home_id).values(at_home=True))
    fix_sequences(conn)
    written = writer.counts
    counts = {label: written.get(table, 0) for label, table in COUNT_LABELS.items()}
    today_counts = dict(rows.today_counts)
    after = {**counts, "today": today_counts, "seed": options.seed, "days": options.span}
    write_audit(conn, premises, now_min, fresh, after)
    rebuild_trend_summaries(conn)  # rows went in without the ORM: the trend summaries from them
    return DemoResult(counts, today_counts, 0.0)


def load_demo(db: Database, options: DemoOptions, *, now: datetime | None = None) -> DemoResult:
    """Load the demo clinic in one transaction. Raises DemoRefused if sessions exist and not `force`."""
    if options.sessions < 1 or options.span < 1:
        raise ValueError("sessions and days must be at least 1")
    started = time.perf_counter()
    bootstrap(db)
    now = now or datetime.now(UTC)
    with db.engine.connect() as conn:
        conn = conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            lock_tables(conn)
            existing = conn.execute(select(func.count()).select_from(SESSION_TABLE)).scalar_one()
            if existing and not options.force:
                raise DemoRefused(existing)
            log.info("generating %s demo sessions over %s days (seed %s)", options.sessions, options.span, options.seed)
            result = _run(conn, options, now, fresh=not existing)
    result.seconds = time.perf_counter() - started  # including the commit
    log.info("demo clinic loaded in %.1f s: %s", result.seconds, result.counts)
    return result


def load_demo_if_empty(db: Database, options: DemoOptions | None = None) -> bool:
    """For `streamlit run dashboard.py -- --demo`: load the default demo unless sessions exist."""
    try:
        load_demo(db, options or DemoOptions())
    except DemoRefused:
        return False
    return True
