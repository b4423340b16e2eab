import pytest
from sqlalchemy import select, text

from db.models import Therapy


def test_catalog_seeded_on_each_backend(db):
    with db.reading() as s:
        codes = set(s.scalars(select(Therapy.code)))
    assert {"natalizumab", "alemtuzumab", "ocrelizumab_iv", "edaravone"} <= codes


def test_summary_reads_plan_without_parallel_workers_and_other_reads_keep_them(db):
    """A Trends figure reads a few thousand summary rows: on PostgreSQL its transaction plans without
    parallel workers (their start-up cost more than the read); any other read keeps the server's setting,
    and the setting does not leak into the next transaction on the same pooled connection."""
    if db.dialect != "postgresql":
        with db.reading(summaries=True) as s:  # SQLite has no such setting: the read works the same
            assert s.scalars(select(Therapy.code)).first() is not None
        return
    show = text("SHOW max_parallel_workers_per_gather")
    with db.reading() as s:
        default = s.scalar(show)
    assert default != "0"  # PostgreSQL's default is 2: the test means something only if it is not 0
    with db.reading(summaries=True) as s:
        assert s.scalar(show) == "0"
    with db.reading() as s:
        assert s.scalar(show) == default


def test_a_write_slipped_into_a_read_is_refused_on_postgresql_and_stores_nothing(db):
    """Reads end with COMMIT on PostgreSQL (a ROLLBACK would drop every statement psycopg prepared), so
    they run READ ONLY: a write in one fails at the server instead of being kept. SQLite rolls a read back."""
    from sqlalchemy import update
    from sqlalchemy.exc import InternalError

    with db.reading() as s:
        name = s.scalar(select(Therapy.name).where(Therapy.code == "natalizumab"))
    if db.dialect == "postgresql":
        with pytest.raises(InternalError, match="read-only transaction"), db.reading(summaries=True) as s:
            s.execute(update(Therapy).where(Therapy.code == "natalizumab").values(name="changed in a read"))
    else:
        with db.reading() as s:
            s.execute(update(Therapy).where(Therapy.code == "natalizumab").values(name="changed in a read"))
    with db.reading() as s:
        assert s.scalar(select(Therapy.name).where(Therapy.code == "natalizumab")) == name


def test_reads_keep_their_prepared_statements_between_transactions(db):
    """psycopg prepares a statement run five times on a connection and drops them all on ROLLBACK: reads
    that end with COMMIT keep them, so a Trends figure or a board read is planned once per connection."""
    if db.dialect != "postgresql":
        return
    query = select(Therapy.code).where(Therapy.code == "natalizumab")
    prepared = text("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%therapy.code = $1%'")
    for _ in range(7):
        with db.reading() as s:  # the pool hands the same connection back: nothing else is using it
            s.scalar(query)
            kept = s.scalar(prepared)
    assert kept >= 1


def test_a_read_the_app_refuses_keeps_the_prepared_statements_too(db):
    """'That chair is in use' ends a read by raising: on PostgreSQL the read-only transaction still ends
    with COMMIT, so the connection's prepared statements survive the refusal."""
    from infusion.errors import ConflictError

    if db.dialect != "postgresql":
        return
    query = select(Therapy.code).where(Therapy.code == "natalizumab")
    prepared = text("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%therapy.code = $1%'")
    for _ in range(7):
        with pytest.raises(ConflictError), db.reading() as s:
            s.scalar(query)
            raise ConflictError("That chair is in use.")
    with db.reading() as s:
        assert s.scalar(prepared) >= 1
