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
