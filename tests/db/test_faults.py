"""Issue 12 fault tests: no raw failure reaches a user, and no acknowledged save is lost or doubled.

1. A writer process (tests/db/fault_writer.py) records vitals through the real service and is killed with
   SIGKILL mid-burst, several times: every save it acknowledged is stored exactly once with its audit event,
   the SQLite file passes `PRAGMA integrity_check`, and retrying an acknowledged token stores nothing new.
2. A PostgreSQL server of the test's own is restarted under an open `Database`: the next save works without
   a new engine; a save while it is down is refused with the project's own message and, retried with the
   same token after the restart, is stored once.

The counts (kills, acknowledged saves checked, restarts) are printed past pytest's capture.
"""

from __future__ import annotations

import os
import pwd
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import QueuePool, create_engine, func, select, text

from db.engine import Database, open_database
from db.models import AuditEvent, VitalSign
from infusion.accounts.actor import Actor
from infusion.errors import ChairsideError, DatabaseUnavailable
from infusion.services import entries
from infusion.services.setup import bootstrap
from tests.helpers import ROOT, ago, new_session, normal_vitals, walk

#: acknowledged saves after which each writer is killed, and a delay before the kill (varied, so the kill
#: lands at different points of a save: before the lock, inside the transaction, during the commit)
KILL_AFTER = [(6, 0.0), (11, 0.004), (3, 0.011), (17, 0.023)]
WRITER_DEADLINE_S = 30


def report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    """A count for the closing note, shown even under pytest's output capture."""
    with capsys.disabled():
        print(f"\n[faults] {line}")


# --- 1. SIGKILL of a writer mid-burst ---------------------------------------------------------------------


def run_writer_until_killed(url: str, prefix: str, session_ids: list[int], acks: int, delay: float) -> list[str]:
    """Start a writer, SIGKILL it after `acks` acknowledged saves; return every token it acknowledged."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.db.fault_writer", url, prefix, ",".join(map(str, session_ids))],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    buffer = ""
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + WRITER_DEADLINE_S
    try:
        while len(lines) < acks:
            if time.monotonic() > deadline:
                pytest.fail(f"the writer acknowledged {len(lines)} of {acks} saves in {WRITER_DEADLINE_S} s")
            if not selector.select(timeout=1):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536).decode()
            if not chunk:
                proc.wait()
                pytest.fail(f"the writer ended by itself (exit {proc.returncode}):\n{proc.stderr.read()[-3000:]}")
            buffer += chunk
            *complete, buffer = buffer.split("\n")
            lines.extend(complete)
        time.sleep(delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        selector.close()
    buffer += proc.stdout.read()  # lines printed before the kill that were still in the pipe
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    *complete, _partial = buffer.split("\n")  # a line without its newline was never acknowledged
    return lines + complete


def test_sigkilled_writer_loses_and_doubles_nothing(db, nurse, db_url, capsys):
    session_ids = []
    for _ in range(2):
        sid = new_session(db, nurse)
        walk(db, nurse, sid, "infusing", t0=ago(120))
        session_ids.append(sid)
    acknowledged: list[str] = []
    for run, (acks, delay) in enumerate(KILL_AFTER, 1):
        acknowledged += run_writer_until_killed(db_url, f"kill{run}", session_ids, acks, delay)

    with db.reading() as s:
        stored = dict(
            s.execute(
                select(VitalSign.client_token, func.count())
                .where(VitalSign.client_token.like("kill%"))
                .group_by(VitalSign.client_token)
            ).all()
        )
        vitals_total = s.scalar(select(func.count()).select_from(VitalSign))
        unaudited = s.scalars(
            select(VitalSign.id).where(
                ~select(AuditEvent.id)
                .where(AuditEvent.entity == "vital_sign", AuditEvent.entity_id == VitalSign.id)
                .exists()
            )
        ).all()
        orphan_audits = s.scalars(
            select(AuditEvent.id).where(
                AuditEvent.entity == "vital_sign", AuditEvent.entity_id.not_in(select(VitalSign.id))
            )
        ).all()
        audits_total = s.scalar(select(func.count()).select_from(AuditEvent))
    assert len(acknowledged) == len(set(acknowledged))
    missing = [t for t in acknowledged if t not in stored]
    assert not missing, f"acknowledged saves lost after SIGKILL: {missing}"
    assert all(n == 1 for n in stored.values())
    assert not unaudited, f"vital signs without their audit event: {unaudited}"
    assert not orphan_audits, f"audit events of vital signs that were not stored: {orphan_audits}"
    if db.dialect == "sqlite":
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalars().all() == ["ok"]
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []

    # a retried acknowledged save (the page re-sending the same token) returns the stored row, nothing new
    with db.reading() as s:
        rows = s.execute(
            select(VitalSign.client_token, VitalSign.id, VitalSign.session_id).where(
                VitalSign.client_token.in_(acknowledged)
            )
        ).all()
    for token, vital_id, session_id in rows:  # every acknowledged token, sent again
        again = entries.record_vitals(db, nurse, session_id, normal_vitals(pulse=99), client_token=token)
        assert again.id == vital_id
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(VitalSign)) == vitals_total
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == audits_total

    report(
        capsys,
        f"{db.dialect}: {len(KILL_AFTER)} SIGKILLs, {len(acknowledged)} acknowledged saves each stored once "
        f"({len(stored) - len(acknowledged)} stored but killed before the acknowledgement), "
        f"{vitals_total} vital signs all audited, {len(rows)} acknowledged tokens retried: nothing new"
        + (", integrity_check ok" if db.dialect == "sqlite" else ""),
    )


# --- 2. PostgreSQL restarted under a running app ----------------------------------------------------------


def _postgres_bindir() -> Path | None:
    found = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists() and (p / "pg_ctl").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OwnPostgres:
    """A throwaway PostgreSQL server (trust auth, 127.0.0.1, a free port) in a directory of its own."""

    def __init__(self, bindir: Path, base: Path, run_as: str | None) -> None:
        self.bindir, self.base, self.run_as = bindir, base, run_as
        self.data = base / "data"
        self.port = _free_port()
        self.options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={base}"
        self.restarts = 0

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        # run from its own directory: the postgres user may not be able to enter the checkout (or the cwd)
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=self.base)
        if done.returncode:
            log = self.base / "server.log"
            raise RuntimeError(
                f"{tool} failed ({done.returncode}): {done.stderr or done.stdout}"
                + (f"\n{log.read_text()[-2000:]}" if log.exists() else "")
            )

    def _ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.base / "server.log"), "-t", "30", *args)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        self._ctl("-o", self.options, "-w", "start")

    def restart(self) -> None:
        self._ctl("-m", "fast", "-w", "restart")
        self.restarts += 1

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")

    def start(self) -> None:
        self._ctl("-o", self.options, "-w", "start")
        self.restarts += 1

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[OwnPostgres]:
    bindir = _postgres_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    run_as = None
    base = tmp_path
    made = None
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres OS user
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres OS user to run initdb as")
        if shutil.which("runuser") is None:
            pytest.skip("running as root and runuser is missing")
        run_as = "postgres"
        made = base = Path(tempfile.mkdtemp(prefix="chairside-pg-"))  # tmp_path's parents are root-only
        os.chown(base, owner.pw_uid, owner.pw_gid)
    server = OwnPostgres(bindir, base, run_as)
    try:
        try:
            server.init()
        except RuntimeError as error:
            pytest.skip(f"could not start a PostgreSQL server of the test's own: {error}")
        yield server
    finally:
        if (server.data / "postmaster.pid").exists():
            try:
                server._ctl("-m", "immediate", "-w", "stop")
            except RuntimeError:
                pass
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


def _stored(db: Database, token: str) -> int:
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(VitalSign).where(VitalSign.client_token == token)) or 0


def test_postgresql_restart_under_a_running_app(own_postgres, capsys):
    admin = create_engine(own_postgres.url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE chairside"))
    admin.dispose()
    db = open_database(own_postgres.url("chairside"))  # make_engine + upgrade_to_head, as the app opens it
    try:
        bootstrap(db)
        nurse = Actor(None, "Test Nurse", "nurse")
        sid = new_session(db, nurse)
        walk(db, nurse, sid, "infusing", t0=ago(120))
        entries.record_vitals(db, nurse, sid, normal_vitals(), client_token="restart-1")
        pool = db.engine.pool
        assert isinstance(pool, QueuePool) and pool.checkedin() >= 1  # an idle pooled connection the restart will kill

        own_postgres.restart()
        entries.record_vitals(db, nurse, sid, normal_vitals(pulse=75), client_token="restart-2")  # same engine

        own_postgres.stop()
        with pytest.raises(ChairsideError) as refused:
            entries.record_vitals(db, nurse, sid, normal_vitals(pulse=80), client_token="restart-3")
        assert isinstance(refused.value, DatabaseUnavailable)
        assert str(refused.value) == DatabaseUnavailable.MESSAGE
        with pytest.raises(DatabaseUnavailable), db.reading() as s:
            s.scalar(select(1))  # a screen's read gets the same plain message

        own_postgres.start()
        first = entries.record_vitals(db, nurse, sid, normal_vitals(pulse=80), client_token="restart-3")
        again = entries.record_vitals(db, nurse, sid, normal_vitals(pulse=80), client_token="restart-3")
        assert again.id == first.id
        assert [_stored(db, f"restart-{n}") for n in (1, 2, 3)] == [1, 1, 1]
        with db.reading() as s:
            audited = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.entity == "vital_sign"))
            assert audited == s.scalar(select(func.count()).select_from(VitalSign))
    finally:
        db.engine.dispose()
    report(
        capsys,
        f"own PostgreSQL server: {own_postgres.restarts} restarts under one open Database "
        "(pg_ctl restart -m fast, then stop/start); the save after each worked on the same engine, "
        "the save while stopped was refused as DatabaseUnavailable and its retry stored once",
    )
