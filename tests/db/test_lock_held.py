"""Issue 12: a writer holding the lock. Another connection (SQLite: BEGIN IMMEDIATE; PostgreSQL: the session
row locked FOR UPDATE) holds it; a save waits a bounded time and ends with the clear "busy" message, nothing
stored; opening the session record still works (its view audit row follows once the lock is free)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select, text

import db.engine as engine_module
from db.engine import Database, make_engine
from db.models import AuditEvent, VitalSign
from infusion.accounts.actor import Actor
from infusion.errors import DatabaseBusy
from infusion.reads.sessions import session_detail
from infusion.services import entries
from tests.helpers import ago, new_session, normal_vitals, walk

WAIT_MS = 600


@pytest.fixture
def short_waits(monkeypatch, db_url):
    monkeypatch.setattr(engine_module, "LOCK_TIMEOUT_MS", WAIT_MS)
    database = Database(make_engine(db_url))
    yield database
    database.engine.dispose()


def test_a_held_lock_gives_a_bounded_wait_and_a_clear_message(db, nurse, short_waits):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "infusing", t0=ago(120))
    holder = make_engine(str(db.engine.url.render_as_string(hide_password=False)))
    with holder.connect() as conn:
        if db.dialect == "sqlite":
            conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
        else:
            conn.execute(text("SELECT id FROM infusion_session WHERE id = :id FOR UPDATE"), {"id": sid})
        with db.reading() as s:
            before = s.scalar(select(func.count()).select_from(VitalSign))
        started = time.monotonic()
        with pytest.raises(DatabaseBusy) as busy:
            entries.record_vitals(short_waits, nurse, sid, normal_vitals(), taken_at=ago(5), client_token="held")
        waited = time.monotonic() - started
        assert str(busy.value) == "The clinic database is busy; nothing was saved — try again."
        assert waited < WAIT_MS / 1000 + 5, f"waited {waited:.1f} s"
        # opening the record does not fail (nor wait for the writer)
        started = time.monotonic()
        detail = session_detail(short_waits, Actor(None, "Reader", "nurse"), sid)
        assert detail is not None and time.monotonic() - started < 3
        if db.dialect == "sqlite":
            conn.connection.dbapi_connection.execute("ROLLBACK")  # type: ignore[union-attr]
        else:
            conn.rollback()
    holder.dispose()
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(VitalSign)) == before
    # the deferred view row arrives once the lock is free
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with db.reading() as s:
            if s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.user_name == "Reader")):
                break
        time.sleep(0.2)
    else:
        pytest.fail("the view audit row never arrived")
    # and the retry of the refused save now stores it, once
    entries.record_vitals(short_waits, nurse, sid, normal_vitals(), taken_at=ago(5), client_token="held")
    entries.record_vitals(short_waits, nurse, sid, normal_vitals(), taken_at=ago(5), client_token="held")
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(VitalSign)) == before + 1


def test_a_save_after_a_quick_write_waits_the_full_time_again(db):
    """SQLite: a quick write (a view's audit row, 250 ms) shortens the pooled connection's wait; the next
    save on that connection must wait the full lock timeout again, and the next quick write the short one."""
    if db.dialect != "sqlite":
        pytest.skip("the wait is a per-connection PRAGMA on SQLite only")

    def wait_now(quick: bool) -> int:
        with db.writing(quick=quick) as w:
            return int(w.connection().exec_driver_sql("PRAGMA busy_timeout").scalar_one())

    assert wait_now(False) == engine_module.LOCK_TIMEOUT_MS
    assert wait_now(True) == engine_module.QUICK_LOCK_WAIT_MS
    assert wait_now(False) == engine_module.LOCK_TIMEOUT_MS
    assert wait_now(False) == engine_module.LOCK_TIMEOUT_MS
    assert wait_now(True) == engine_module.QUICK_LOCK_WAIT_MS
