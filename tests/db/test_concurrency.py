"""Several nurses (threads) writing to the same session at once, on SQLite and PostgreSQL.

The services lock the session row (BEGIN IMMEDIATE on SQLite, SELECT … FOR
UPDATE on PostgreSQL), so simultaneous writes must queue, none may be lost, and
racing state changes must end with exactly one winner and a clear message for
the other nurse.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, func, select

from db.models import AuditEvent, InfusionSession, RateChange, Reaction, VitalSign
from infusion.accounts.actor import Actor
from infusion.errors import ChairsideError, ConflictError, StateError
from infusion.services import entries, sessions
from tests.helpers import ago, new_chair, new_session, normal_vitals, row, version, walk

THREADS = 8


def run_together(calls: list[Callable[[], Any]]) -> list[tuple[str, Any]]:
    """Start every call at the same moment; return ("ok", result) or ("error", exception) per call."""
    barrier = threading.Barrier(len(calls))
    results: list[tuple[str, Any] | None] = [None] * len(calls)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = ("ok", calls[i]())
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            results[i] = ("error", exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert all(not t.is_alive() for t in threads), "a writer hung"
    return results  # type: ignore[return-value]


def test_simultaneous_vitals_are_all_stored(db, nurse):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "infusing", t0=ago(120))
    times = [ago(60 - 5 * i) for i in range(THREADS)]
    nurses = [Actor(None, f"Nurse {i}") for i in range(THREADS)]
    calls = [
        (
            lambda i=i: entries.record_vitals(
                db, nurses[i], sid, normal_vitals(pulse=70 + i), taken_at=times[i], client_token=f"conc-{i}"
            )
        )
        for i in range(THREADS)
    ]
    results = run_together(calls)
    errors = [r for kind, r in results if kind == "error"]
    assert errors == []
    with db.reading() as s:
        stored = list(
            s.scalars(select(VitalSign).where(VitalSign.session_id == sid, VitalSign.client_token.like("conc-%")))
        )
        audit_names = set(
            s.scalars(
                select(AuditEvent.user_name).where(AuditEvent.session_id == sid, AuditEvent.action == "record_vitals")
            )
        )
    assert sorted(v.pulse for v in stored) == [70 + i for i in range(THREADS)]
    assert {v.taken_at for v in stored} == set(times)
    assert all(v.phase == "infusion" for v in stored)
    assert row(db, sid).last_vitals_at == max(times)
    assert {f"Nurse {i}" for i in range(THREADS)} <= audit_names


def test_simultaneous_reactions_keep_the_summary_right(db, nurse):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "infusing", t0=ago(120))
    calls = [
        (
            lambda i=i: entries.record_reaction(
                db, nurse, sid, symptoms=["flushing"], grade=1 + i % 3, actions=["observed"], onset_at=ago(30 + i)
            )
        )
        for i in range(THREADS)
    ]
    results = run_together(calls)
    assert [kind for kind, _ in results] == ["ok"] * THREADS
    stored = row(db, sid)
    assert stored.reaction_count == THREADS  # no lost update of the summary column
    assert stored.worst_grade == 3
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Reaction).where(Reaction.session_id == sid)) == THREADS


def test_racing_iv_stops_have_one_winner(db, nurse):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "infusing", t0=ago(120))
    seen = version(db, sid)
    calls = [(lambda: sessions.stop_iv(db, nurse, sid, expected_version=seen)) for _ in range(2)]
    results = run_together(calls)
    kinds = sorted(kind for kind, _ in results)
    assert kinds == ["error", "ok"], results
    error = next(r for kind, r in results if kind == "error")
    assert isinstance(error, (ConflictError, StateError)), repr(error)
    with db.reading() as s:
        stops = s.scalar(
            select(func.count()).select_from(RateChange).where(RateChange.session_id == sid, RateChange.kind == "stop")
        )
        stop_audits = s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.session_id == sid, AuditEvent.action == "stop_iv")
        )
    assert stops == 1 and stop_audits == 1
    assert row(db, sid).status == "observation"


def test_racing_iv_stops_without_version_have_one_winner(db, nurse):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "infusing", t0=ago(120))
    results = run_together([(lambda: sessions.stop_iv(db, nurse, sid, expected_version=None)) for _ in range(3)])
    kinds = [kind for kind, _ in results]
    assert kinds.count("ok") == 1
    assert all(isinstance(r, StateError) for kind, r in results if kind == "error")


@pytest.fixture
def signed_in_nurse(db) -> Actor:
    """A nurse with an account: the retry lookup then shares the account's statement."""
    from infusion.accounts import auth

    admin = auth.create_first_admin(db, username="boss", display_name="Bo Boss", password="correct horse battery")
    user = auth.add_user(
        db, admin, username="nora", display_name="Nora Nurse", role="nurse", password="correct horse battery"
    )
    return Actor(user.id, user.display_name, user.role)


@pytest.mark.parametrize("who", ["nurse", "signed_in_nurse"])
def test_same_client_token_from_two_threads_stores_one_row(db, nurse, who, request):
    """Four taps at once with one form's token: one row, and every tap is told it was saved. A tap
    that waited for the session's lock must see the row the first one committed meanwhile."""
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "infusing", t0=ago(120))
    taken = ago(30)
    actor = request.getfixturevalue(who)
    calls = [
        (
            lambda: entries.record_vitals(
                db, actor, sid, normal_vitals(pulse=91), taken_at=taken, client_token="double-tap"
            )
        )
        for _ in range(4)
    ]
    results = run_together(calls)
    assert [kind for kind, _ in results] == ["ok"] * 4, results
    assert len({r.id for _, r in results}) == 1
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(VitalSign).where(VitalSign.client_token == "double-tap")) == 1
        assert (
            s.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(
                    AuditEvent.session_id == sid,
                    AuditEvent.action == "record_vitals",
                    AuditEvent.entity_id == results[0][1].id,
                )
            )
            == 1
        )


def _meet_after_active_check(db, parties: int):
    """Hold each check-in right after its 'is the chair/patient free?' query until all have run it.

    This makes the race deterministic on PostgreSQL, where the writers lock
    different session rows and run side by side. (On SQLite writers queue on
    BEGIN IMMEDIATE, so no hook is needed there.)
    """
    barrier = threading.Barrier(parties, timeout=5)

    def after(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if "infusion_session.id !=" in statement and "FROM infusion_session" in statement:
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass

    event.listen(db.engine, "after_cursor_execute", after)
    return lambda: event.remove(db.engine, "after_cursor_execute", after)


@pytest.mark.parametrize("shared", ["chair", "patient"])
def test_racing_check_ins_for_one_chair_or_patient(db, nurse, request, shared):
    chair = new_chair(db, nurse)
    if shared == "chair":
        a, b = new_session(db, nurse, chair_id=chair), new_session(db, nurse, chair_id=chair)
    else:
        a = new_session(db, nurse)
        with db.reading() as s:
            patient = s.get(InfusionSession, a).patient_id
        b = new_session(db, nurse, patient_id=patient)
    release = _meet_after_active_check(db, 2) if db.dialect == "postgresql" else (lambda: None)
    try:
        results = run_together(
            [
                (lambda sid=sid: sessions.check_in(db, nurse, sid, normal_vitals(), expected_version=None, at=ago(5)))
                for sid in (a, b)
            ]
        )
    finally:
        release()
    kinds = sorted(kind for kind, _ in results)
    assert kinds == ["error", "ok"], results
    error = next(r for kind, r in results if kind == "error")
    assert isinstance(error, ConflictError), repr(error)
    assert isinstance(error, ChairsideError)
    with db.reading() as s:
        active = s.scalar(
            select(func.count())
            .select_from(InfusionSession)
            .where(InfusionSession.id.in_((a, b)), InfusionSession.status == "checked_in")
        )
        vitals = s.scalar(select(func.count()).select_from(VitalSign).where(VitalSign.session_id.in_((a, b))))
    assert active == 1 and vitals == 1


def test_writers_on_different_sessions_do_not_block_each_other_out(db, nurse):
    ids = [new_session(db, nurse) for _ in range(4)]
    for sid in ids:
        walk(db, nurse, sid, "infusing", t0=ago(120))
    calls = [
        (lambda sid=sid: entries.record_vitals(db, nurse, sid, normal_vitals(), taken_at=ago(10)))
        for sid in ids
        for _ in range(2)
    ]
    results = run_together(calls)
    assert [kind for kind, _ in results] == ["ok"] * len(calls), results
    for sid in ids:
        assert row(db, sid).last_vitals_at is not None
        assert row(db, sid).last_vitals_at > ago(11)


# ------------------------------------------------------------------ issue 12: 20 writers, nothing lost, doubled or raw
WRITERS = 20


def test_twenty_writers_on_shared_and_separate_sessions(db, nurse):
    """Half the writers chart one shared session (vitals from one nurse, rate changes from another, each
    holding the version it saw), half chart a session each; every call is sent twice (a double tap)."""
    shared = new_session(db, nurse)
    walk(db, nurse, shared, "infusing", t0=ago(300))
    own = []
    for _ in range(WRITERS // 2):
        sid = new_session(db, nurse, chair_id=new_chair(db, Actor(None, "Admin", "admin")))
        walk(db, nurse, sid, "infusing", t0=ago(300))
        own.append(sid)
    seen = version(db, shared)
    vitals_nurse, rate_nurse = Actor(None, "Vitals Nurse"), Actor(None, "Rate Nurse")
    calls: list[Callable[[], Any]] = []
    for i in range(WRITERS // 2):
        t = ago(200 - 10 * i)
        if i % 2 == 0:
            calls += [
                lambda i=i, t=t: entries.record_vitals(
                    db, vitals_nurse, shared, normal_vitals(pulse=60 + i), taken_at=t, client_token=f"sv-{i}"
                )
            ] * 2
        else:
            calls += [
                lambda i=i: entries.change_rate(
                    db, rate_nurse, shared, 50 + i, expected_version=seen, client_token=f"sr-{i}"
                )
            ] * 2
        calls += [
            lambda i=i, t=t: entries.record_vitals(
                db, nurse, own[i], normal_vitals(pulse=70 + i), taken_at=t, client_token=f"ov-{i}"
            )
        ] * 2
    results = run_together(calls)
    raw = [r for kind, r in results if kind == "error" and not isinstance(r, ChairsideError)]
    assert raw == [], raw
    refused = [r for kind, r in results if kind == "error"]
    # the only refusals allowed: a rate change that raced another rate change (a real state change);
    # never one caused by the other nurse's vitals
    assert all(isinstance(r, ConflictError) and "rate" in str(r) for r in refused), refused
    with db.reading() as s:
        tokens = list(s.scalars(select(VitalSign.client_token).where(VitalSign.client_token.like("%v-%"))))
        rates = list(s.scalars(select(RateChange.client_token).where(RateChange.client_token.like("sr-%"))))
    expected_vitals = {f"sv-{i}" for i in range(0, WRITERS // 2, 2)} | {f"ov-{i}" for i in range(WRITERS // 2)}
    assert sorted(tokens) == sorted(expected_vitals)  # 0 lost, 0 duplicated
    assert len(rates) == len(set(rates)) >= 1
    assert len(rates) + len({str(r) for r in refused}) >= 1


def test_another_nurses_vitals_never_invalidate_a_rate_change(db, nurse):
    sid = new_session(db, nurse)
    walk(db, nurse, sid, "infusing", t0=ago(300))
    for i in range(5):
        seen = version(db, sid)
        entries.record_vitals(db, Actor(None, "Other Nurse"), sid, normal_vitals(pulse=70 + i), taken_at=ago(100 - i))
        entries.record_reaction(
            db, Actor(None, "Other Nurse"), sid, symptoms=["rash"], grade=1, actions=["observed"], onset_at=ago(90 - i)
        )
        entries.change_rate(db, nurse, sid, 50 + i, expected_version=seen, client_token=f"nr-{i}")
