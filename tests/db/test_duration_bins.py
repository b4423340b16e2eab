"""The packed duration histogram's storage (`histogram.apply_deltas`, migration 0018) on SQLite and
PostgreSQL: any sequence of additions and removals leaves each row holding exactly the running sum of its
bins, a row whose bins all empty is gone, and two writers adding to the same new row at once are both
counted. The whole path (services → summaries → figures) is tested in test_trend_summaries."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from db.engine import Database
from infusion.reads.trends import histogram

TH = histogram.TH
ROW = (1, date(2026, 3, 1), 7, False, 2, 0)  # site, month, therapy, at home, infusion number, kind
OTHER = (1, date(2026, 3, 1), 7, True, 2, 0)

deltas = st.lists(
    st.tuples(
        st.sampled_from([ROW, OTHER]),
        st.integers(0, 60),  # bin
        st.tuples(st.integers(-3, 3), st.integers(-3, 3), st.integers(-40_000, 40_000)),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(deltas, min_size=1, max_size=6))
def test_any_sequence_of_deltas_leaves_the_running_sum(db: Database, steps: list[list[Any]]) -> None:
    with db.writing() as s:
        s.execute(delete(TH))
    expected: dict[tuple[Any, ...], dict[str, int]] = {}
    for step in steps:
        batch: dict[tuple[Any, ...], dict[str, int]] = {}
        for row, b, (n, edge, seconds) in step:
            into = batch.setdefault((*row, b), {"n": 0, "edge": 0, "seconds": 0})
            into["n"] += n
            into["edge"] += edge
            into["seconds"] += seconds
        with db.writing() as s:  # one transaction per step, as one save is
            histogram.apply_deltas(s.connection(), TH, batch)
        for key, counts in batch.items():
            into = expected.setdefault(key, {"n": 0, "edge": 0, "seconds": 0})
            for c, v in counts.items():
                into[c] += v
    wanted = {k: v for k, v in expected.items() if any(v.values())}
    with db.reading() as s:
        assert histogram.stored_bins(s.connection(), TH) == wanted
        rows = s.scalar(select(func.count()).select_from(TH))
    assert rows == len({k[:-1] for k in wanted})  # a row with every bin empty is deleted, not kept


@given(
    bins=st.dictionaries(
        st.integers(0, 200),
        st.tuples(st.integers(), st.integers(), st.integers()).map(lambda t: tuple(x % 2**40 for x in t)),
    )
)
def test_pack_keeps_every_non_empty_bin(bins: dict[int, tuple[int, int, int]]) -> None:
    packed = histogram.pack(bins)
    kept = {b: c for b, c in bins.items() if any(c)}
    if not kept:
        assert packed is None
    else:
        assert packed is not None and histogram.unpack(*packed) == kept


def test_two_writers_adding_to_the_same_new_row_are_both_counted(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("PostgreSQL: SQLite writers queue for the whole database (BEGIN IMMEDIATE)")
    with db.writing() as s:
        s.execute(delete(TH))
    gate = threading.Barrier(2)
    failures: list[BaseException] = []

    def add(b: int) -> None:
        try:
            with db.writing() as s:
                conn = s.connection()
                gate.wait(timeout=10)  # both transactions open before either inserts the row
                histogram.apply_deltas(conn, TH, {(*ROW, b): {"n": 1, "edge": 0, "seconds": 600}})
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=add, args=(b,)) for b in (3, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert failures == []
    with db.reading() as s:
        stored = histogram.stored_bins(s.connection(), TH)
    assert stored == {(*ROW, 3): {"n": 1, "edge": 0, "seconds": 600}, (*ROW, 5): {"n": 1, "edge": 0, "seconds": 600}}


def test_a_row_made_and_emptied_by_others_between_a_writers_read_and_insert_still_takes_its_count(
    db: Database,
) -> None:
    """The narrowest race: this writer finds no row; another makes it (so this INSERT does nothing); a third
    empties and deletes it before this writer reads it again. The count must still land, not raise."""
    if db.dialect != "postgresql":
        pytest.skip("PostgreSQL: SQLite writers queue for the whole database (BEGIN IMMEDIATE)")
    from sqlalchemy import event
    from sqlalchemy.sql.dml import Insert

    with db.writing() as s:
        s.execute(delete(TH))
    others = {"made": False, "emptied": False}

    def before(conn: Any, clause: Any, *args: Any) -> None:
        if isinstance(clause, Insert) and not others["made"]:
            others["made"] = True  # another nurse's save makes the row first
            with db.writing() as other:
                histogram.apply_deltas(other.connection(), TH, {(*ROW, 3): {"n": 1, "edge": 0, "seconds": 600}})

    def after(conn: Any, clause: Any, *args: Any) -> None:
        if isinstance(clause, Insert) and others["made"] and not others["emptied"]:
            others["emptied"] = True  # and a correction takes that count away again, emptying the row
            with db.writing() as other:
                histogram.apply_deltas(other.connection(), TH, {(*ROW, 3): {"n": -1, "edge": 0, "seconds": -600}})

    with db.writing() as s:
        conn = s.connection()
        event.listen(conn, "before_execute", before)
        event.listen(conn, "after_execute", after)
        histogram.apply_deltas(conn, TH, {(*ROW, 5): {"n": 1, "edge": 0, "seconds": 900}})
        event.remove(conn, "before_execute", before)
        event.remove(conn, "after_execute", after)
    assert others == {"made": True, "emptied": True}
    with db.reading() as s:
        assert histogram.stored_bins(s.connection(), TH) == {(*ROW, 5): {"n": 1, "edge": 0, "seconds": 900}}
