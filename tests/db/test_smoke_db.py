from sqlalchemy import select

from db.models import Therapy


def test_catalog_seeded_on_each_backend(db):
    with db.reading() as s:
        codes = set(s.scalars(select(Therapy.code)))
    assert {"natalizumab", "alemtuzumab", "ocrelizumab_iv", "edaravone"} <= codes
