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
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from random import Random

from sqlalchemy import Connection, func, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from db.engine import WRITE_OPTION, Database
from db.models import (
    DuePair,
    InfusionSession,
    Patient,
    TrendDaily,
    TrendDuration,
    TrendSession,
    UserSite,
    trend_chair_use,
    trend_chair_use_year,
    trend_duration_year,
    trend_monthly,
)
from infusion.clinical.reactions import ACTIONS, SYMPTOMS
from infusion.demo import network
from infusion.demo.days import PastDays
from infusion.demo.options import DemoOptions, DemoRefused, DemoResult, network_minimum, split_sessions
from infusion.demo.people import SITES
from infusion.demo.pipeline import PARALLEL_FROM, bulk_load_settings, can_fork, foreign_keys_after, produce
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
from infusion.demo.therapies import PatientInfo, Plan
from infusion.demo.today import LiveDay, LiveSlot, live_slots
from infusion.demo.writer import (
    CLINIC_TABLE,
    COLUMNS,
    COUNT_LABELS,
    ID_TABLES,
    SESSION_TABLE,
    Batch,
    Encoder,
    Ids,
    TableSink,
    Writer,
    table_of,
)
from infusion.reads.due_summary import rebuild as rebuild_due_summary
from infusion.reads.trends.maintenance import rebuild as rebuild_trend_summaries
from infusion.reads.trends.maintenance import summarise_sessions
from infusion.services.sessions import IV_SITES
from infusion.services.setup import bootstrap

log = logging.getLogger(__name__)

#: The tables a load writes, analysed after it on PostgreSQL: the rollups too (left to autovacuum, the
#: year rollups planned on estimates of one row, and five years of durations read through a random heap
#: walk and a parallel sort instead of a scan and a hash)
ANALYZED = (
    *ID_TABLES,
    CLINIC_TABLE,
    table_of(UserSite),
    table_of(TrendSession),
    table_of(TrendDaily),
    trend_monthly,
    table_of(TrendDuration),
    trend_duration_year,
    trend_chair_use,
    trend_chair_use_year,
    table_of(DuePair),
)


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


class Progress:
    """Progress for the command line (`say`, e.g. print to stderr): while the rows are written, rows,
    rows/s, sessions done in percent and the elapsed time, then each later step. Silent without `say`.

    A `say` with a true `live` attribute (a terminal) gets the rows line through its `update` twice a
    second, to redraw in place; otherwise it is a new line every `QUIET_EVERY` seconds, so a log is not
    flooded."""

    QUIET_EVERY = 5.0

    def __init__(self, say: Callable[[str], None] | None, sessions: int) -> None:
        self.say, self.sessions = say, sessions
        live = bool(getattr(say, "live", False))
        self._update: Callable[[str], None] | None = getattr(say, "update", say) if live else say
        self._every = 0.5 if live else self.QUIET_EVERY
        self.started = self._last = time.perf_counter()

    def rows(self, sink: TableSink) -> None:
        now = time.perf_counter()
        if self._update is None or now - self._last < self._every:
            return
        self._last = now
        self._update(self.line(sink.written, sink.counts.get(SESSION_TABLE.name, 0), now - self.started))

    def line(self, written: int, done: int, elapsed: float) -> str:
        share = done / self.sessions if self.sessions else 1.0
        return (
            f"  {_bar(share)} {share:4.0%}  {done:,} of {self.sessions:,} sessions, {written:,} rows, "
            f"{written / max(elapsed, 1e-9):,.0f} rows/s, {elapsed:.0f} s"
        )

    def step(self, what: str) -> None:
        if self.say is not None:
            self.say(f"  {what} ({time.perf_counter() - self.started:.0f} s)")


def _bar(share: float, width: int = 20) -> str:
    filled = min(width, int(share * width))
    return "[" + "#" * filled + "." * (width - filled) + "]"


class SummariseAsWritten:
    """SQLite: each written batch's sessions get their trend_session rows at once, while the generator makes
    the next batch (the writing process waits for it about half the time), so only the rollups are left
    for after the rows: at a million sessions ~30 s of summaries move into the row phase. A batch holds
    whole days, so its sessions' vitals, rate changes and reactions are written with them; their home
    visits are marked as such first (`at_home`, which the summary carries; home visits are not held to one
    active session per location). PostgreSQL marks and summarises after the load (`active` False)."""

    def __init__(self, conn: Connection, homes: list[int]) -> None:
        self.conn, self.homes = conn, homes
        self.active = conn.dialect.name == "sqlite"
        if self.active:
            conn.exec_driver_sql("CREATE TEMP TABLE IF NOT EXISTS demo_written (id INTEGER PRIMARY KEY)")
            self.ids = select(text("id")).select_from(text("temp.demo_written"))

    def __call__(self, batch: Batch) -> None:
        if not self.active:
            return
        sessions = [(row[0],) for name, rows in batch if name == SESSION_TABLE.name for row in rows]
        if not sessions:
            return
        raw = self.conn.connection.driver_connection
        assert raw is not None
        raw.execute("DELETE FROM temp.demo_written")
        raw.executemany("INSERT INTO temp.demo_written (id) VALUES (?)", sessions)
        batch_sessions = InfusionSession.id.in_(self.ids)
        if self.homes:
            self.conn.execute(
                update(SESSION_TABLE)
                .where(batch_sessions, InfusionSession.chair_id.in_(self.homes))
                .values(at_home=True)
            )
        summarise_sessions(self.conn, batch_sessions)

    def finish(self) -> None:
        """The rollups and the due list's summary (every trend_session row, after marking every home visit,
        when nothing was summarised batch by batch)."""
        if not self.active and self.homes:
            self.conn.execute(
                update(SESSION_TABLE).where(InfusionSession.chair_id.in_(self.homes)).values(at_home=True)
            )
        rebuild_trend_summaries(self.conn, sessions=not self.active)
        rebuild_due_summary(self.conn)
        if self.active:
            self.conn.exec_driver_sql("DROP TABLE temp.demo_written")


def _run(
    conn: Connection, options: DemoOptions, now: datetime, fresh: bool, progress: Progress, parallel: bool
) -> DemoResult:
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
    encoder = Encoder(conn.dialect)

    def generate(writer: Writer) -> dict[str, int]:
        rows = SessionRows(rng, ids, encoder, writer, gen, premises, now_min, options.span)
        rows.write_patients(patients, first_mrn)
        past = PastDays(rng, gen, rows, premises)
        for day in sorted(by_day):
            past.write(day, by_day[day])
            writer.maybe_flush()
        LiveDay(rng, gen, rows, premises, now_min).write(live_plans)
        return dict(rows.today_counts)

    summaries = SummariseAsWritten(conn, [premises.home_id] if premises.home_id is not None else [])
    with foreign_keys_after(conn, options.sessions):
        sink, today_counts = produce(conn, generate, progress.rows, parallel=parallel, written=summaries)
    fix_sequences(conn)
    written = sink.counts
    counts = {label: written.get(table, 0) for label, table in COUNT_LABELS.items()}
    after = {**counts, "today": today_counts, "seed": options.seed, "days": options.span}
    write_audit(conn, premises, now_min, fresh, after)
    progress.step(f"{sink.written:,} rows written; rebuilding the trend summaries")
    summaries.finish()  # rows went in without the ORM: the trend and due-list summaries from them
    return DemoResult(counts, today_counts, 0.0)


def _run_network(
    conn: Connection, options: DemoOptions, now: datetime, fresh: bool, progress: Progress, parallel: bool
) -> DemoResult:
    """`_run` for a network of `options.sites` sites (infusion/demo/network.py): each site planned
    with its share of the sessions, a few patients moved to a second site, then written site by site."""
    rng = Random(options.seed)
    now_min = int(now.timestamp() // 60)
    ids = Ids(conn)
    check_assumptions()
    sites = network.prepare_sites(conn, ids, now_min, fresh, options.sites)
    network.busy_chairs(conn, sites)
    therapies = load_therapies(conn)
    first_mrn = _first_mrn(conn, rng)
    serves = network.home_sites(sites)
    budgets = split_sessions(options.sessions, options.sites)
    patients: list[list[PatientInfo]] = []
    plans: list[list[Plan]] = []
    lives: list[list[tuple[LiveSlot, Plan]]] = []
    for site, budget, first_day, home in zip(sites, budgets, network.first_days(sites, options.span), serves):
        live = live_slots(site, budget)
        planner = Planner(rng, ids, therapies, site.today, first_day, budget, home_team=home)
        site_patients, site_plans, site_live = planner.plan(live)
        patients.append(site_patients)
        plans.append(site_plans)
        lives.append(site_live)
    shared = network.share_patients(rng, sites, patients, plans, [{p.patient.id for _, p in lv} for lv in lives])
    log.info("%s patients continue at a second site", shared)
    for site, site_plans in zip(sites, plans):
        by_day: dict[date, list[Plan]] = defaultdict(list)
        for plan in site_plans:
            by_day[plan.day].append(plan)
        network.add_chairs(conn, ids, site, chairs_for(by_day))
    network.add_staff(conn, ids, sites, now_min)
    encoder = Encoder(conn.dialect)

    def generate(writer: Writer) -> dict[str, int]:
        today_counts: dict[str, int] = defaultdict(int)
        for index, (site, site_plans, site_live) in enumerate(zip(sites, plans, lives)):
            gen = Generator(rng, site.settings, reaction_scale=SITES[index][5])
            rows = SessionRows(rng, ids, encoder, writer, gen, site, now_min, options.span)
            if index == 0:
                rows.write_patients([p for site_patients in patients for p in site_patients], first_mrn)
            past = PastDays(rng, gen, rows, site)
            by_day: dict[date, list[Plan]] = defaultdict(list)
            for plan in site_plans:
                by_day[plan.day].append(plan)
            for day in sorted(by_day):
                past.write(day, by_day[day])
                writer.maybe_flush()
            LiveDay(rng, gen, rows, site, now_min).write(site_live)
            for status, n in rows.today_counts.items():
                today_counts[status] += n
        return dict(today_counts)

    homes = [site.home_id for site in sites if site.home_id is not None]
    summaries = SummariseAsWritten(conn, homes)
    with foreign_keys_after(conn, options.sessions):
        sink, today_counts = produce(conn, generate, progress.rows, parallel=parallel, written=summaries)
    fix_sequences(conn)
    written = sink.counts
    counts = {label: written.get(table, 0) for label, table in COUNT_LABELS.items()}
    after = {
        **counts,
        "today": today_counts,
        "seed": options.seed,
        "days": options.span,
        "sites": [SITES[i][0] for i in range(options.sites)],
        "patients_at_two_sites": shared,
    }
    write_audit(conn, sites[0], now_min, fresh, after)
    progress.step(f"{sink.written:,} rows written; rebuilding the trend summaries")
    summaries.finish()  # rows went in without the ORM: the trend and due-list summaries from them
    return DemoResult(counts, today_counts, 0.0, sites=options.sites)


def load_demo(
    db: Database,
    options: DemoOptions,
    *,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
    parallel: bool | None = None,
) -> DemoResult:
    """Load the demo clinic in one transaction. Raises DemoRefused if sessions exist and not `force`.

    `progress` receives a line now and then (rows written, rows/s, the later steps); the command line
    prints them to stderr. `parallel`: generate the rows in a child process while this one writes them
    (None: from `PARALLEL_FROM` sessions where it can, `infusion.demo.pipeline`); the data are the same
    either way. On PostgreSQL the loaded tables are analysed after the commit, so the planner does not
    plan the first reads on empty-table estimates."""
    if options.sessions < 1 or options.span < 1:
        raise ValueError("sessions and days must be at least 1")
    if options.sites > 1 and options.sessions < network_minimum(options.sites):
        raise ValueError(f"a network of {options.sites} sites needs at least {network_minimum(options.sites)} sessions")
    started = time.perf_counter()
    bootstrap(db)
    now = now or datetime.now(UTC)
    report = Progress(progress, options.sessions)
    if parallel is None:
        parallel = options.sessions >= PARALLEL_FROM
    parallel = parallel and can_fork()
    with db.engine.connect() as conn:
        conn = conn.execution_options(**{WRITE_OPTION: True})
        with bulk_load_settings(conn), conn.begin():
            lock_tables(conn)
            existing = conn.execute(select(func.count()).select_from(SESSION_TABLE)).scalar_one()
            if existing and not options.force:
                raise DemoRefused(existing)
            log.info("generating %s demo sessions over %s days (seed %s)", options.sessions, options.span, options.seed)
            report.step(f"generating {options.sessions:,} sessions at {options.sites} site(s) over {options.span} days")
            run = _run if options.sites == 1 else _run_network
            result = run(conn, options, now, not existing, report, parallel)
            report.step("committing")
    if db.engine.dialect.name == "postgresql":
        report.step("analysing the loaded tables")
        analyze(db)
    result.seconds = time.perf_counter() - started  # including the commit (and ANALYZE)
    log.info("demo clinic loaded in %.1f s: %s", result.seconds, result.counts)
    return result


def analyze(db: Database) -> None:
    """PostgreSQL: planner statistics for every table the load wrote (autovacuum would gather them
    only some time after a bulk load; until then the Trends joins plan on estimates of one row)."""
    names = ", ".join(f'"{t.name}"' for t in ANALYZED)
    try:
        with db.engine.connect() as conn:
            conn.execute(text(f"ANALYZE {names}"))
            conn.commit()
    except SQLAlchemyError as exc:  # the load is committed: statistics come later from autovacuum
        log.warning("ANALYZE after the demo load failed: %s", exc)


def load_demo_if_empty(db: Database, options: DemoOptions | None = None) -> bool:
    """For `streamlit run dashboard.py -- --demo`: load the default demo unless sessions exist."""
    try:
        load_demo(db, options or DemoOptions())
    except DemoRefused:
        return False
    return True
