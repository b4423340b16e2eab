"""Save vitals: entries.record_vitals against a bare one-row insert + commit, interleaved, same run.

Each run gives itself a session to chart: a new patient (MRN BENCH-<stamp>) booked as a
walk-in home visit (a home visit needs no free chair), checked in and its IV started through the
services, so record_vitals runs its real path for a check during the infusion (role, write transaction, locked row,
version, validation, NEWS2, audit). The bare insert puts one vitals row for the same
session through a plain connection and commits; its rows are deleted afterwards, the
service's rows and audit events stay (they are what a nurse's saves leave).
"""

from __future__ import annotations

import time
from datetime import timedelta
from functools import partial

from sqlalchemy import delete, insert, select

from benchmarks.screens import Staff
from benchmarks.timing import clock
from db.engine import Database
from db.models import Chair, Therapy, VitalSign
from infusion.clinical.vitals import VitalsEntry
from infusion.clock import utcnow
from infusion.services import entries, sessions, setup


def bench_session(db: Database, who: Staff) -> int:
    stamp = f"{int(time.time() * 1000) % 10**10}"
    patient = setup.add_patient(db, who.nurse, mrn=f"BENCH-{stamp}", given_name="Bench", family_name=f"Patient{stamp}")
    with db.reading() as s:
        therapy_id = s.scalar(select(Therapy.id).where(Therapy.code == "methylprednisolone", Therapy.active.is_(True)))
        therapy_id = therapy_id or s.scalar(select(Therapy.id).where(Therapy.active.is_(True)).order_by(Therapy.id))
        home: int | None = s.scalar(
            select(Chair.id).where(Chair.kind == "home", Chair.active.is_(True)).order_by(Chair.id)
        )
    if therapy_id is None:
        raise RuntimeError("no active therapy in the catalog")
    if home is None:
        home = setup.add_chair(db, who.admin, f"Bench home {stamp}", kind="home").id
    row = sessions.create_session(db, who.nurse, patient_id=patient.id, therapy_id=therapy_id, chair_id=home)
    temperature = 98.2 if setup.get_clinic(db).temperature_unit == "F" else 36.8
    baseline = VitalsEntry(systolic=120, diastolic=80, pulse=70, resp_rate=16, temperature=temperature, spo2=98)
    checked_in = utcnow() - timedelta(minutes=30)
    sessions.check_in(db, who.nurse, row.id, baseline, expected_version=None, at=checked_in, acknowledge_flags=True)
    # the saves are the nurse's checks during the infusion (record_vitals' purpose; the set before it is
    # check-in's): proceed, premedication where the therapy asks for it, IV start
    sessions.proceed(db, who.nurse, row.id, expected_version=None, at=checked_in + timedelta(minutes=5))
    with db.reading() as s:
        therapy = s.get(Therapy, therapy_id)
        premedication = bool(therapy and therapy.premedication_required)
        program = bool(therapy and therapy.program)
    if program:
        sessions.confirm_program(db, who.nurse, row.id, authorization_ref="BENCH")
    if premedication:
        entries.record_premedication(
            db, who.nurse, row.id, drug="Acetaminophen", dose="650 mg", given_at=checked_in + timedelta(minutes=10)
        )
    sessions.start_iv(
        db,
        who.nurse,
        row.id,
        expected_version=None,
        site="Left forearm",
        gauge=22,
        attempts=1,
        lot_number="BENCH-LOT",
        rate_ml_h=100,
        at=checked_in + timedelta(minutes=20),
    )
    return int(row.id)


def measure(db: Database, who: Staff, saves: int) -> tuple[list[float], list[float], int]:
    """Seconds per record_vitals and per bare insert + commit (alternating), and the session used."""
    sid = bench_session(db, who)
    stamp = int(time.time())
    bare_ids: list[int] = []

    def save(i: int) -> None:
        entries.record_vitals(
            db,
            who.nurse,
            sid,
            VitalsEntry(systolic=118, diastolic=76, pulse=70 + i % 20, resp_rate=16, spo2=98),
            client_token=f"bench-{stamp}-{i}",
            acknowledge_flags=True,
        )

    def bare(i: int) -> None:
        now = utcnow()
        with db.engine.connect() as conn:
            new_id = conn.execute(
                insert(VitalSign)
                .values(
                    session_id=sid,
                    phase="infusion",
                    taken_at=now,
                    entered_at=now,
                    entered_by_id=who.nurse.user_id,
                    systolic=118,
                    diastolic=76,
                    pulse=70 + i % 20,
                    status="active",
                )
                .returning(VitalSign.id)
            ).scalar_one()
            conn.commit()
        bare_ids.append(int(new_id))

    save(-1)  # warm-up
    bare(-1)
    ours, theirs = [], []
    for i in range(saves):
        if i % 2:
            theirs.append(clock(partial(bare, i)))
            ours.append(clock(partial(save, i)))
        else:
            ours.append(clock(partial(save, i)))
            theirs.append(clock(partial(bare, i)))
    with db.engine.begin() as conn:
        conn.execute(delete(VitalSign).where(VitalSign.id.in_(bare_ids)))
    return ours, theirs, sid
