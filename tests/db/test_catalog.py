"""The therapy catalog seed (infusion/therapy_catalog.toml) against docs/clinical-basis.md §1–§4,
and seeding into the database (idempotent, never overwriting a clinic's edits)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select

from db.models import AuditEvent, Therapy
from infusion.clinical.catalog import (
    DurationWindow,
    duration_window,
    load_seed,
    observation_minutes,
    rate_plan_for,
)
from infusion.errors import ValidationError
from infusion.reads import sessions as views
from infusion.services import setup
from infusion.services.setup import seed_therapies
from tests.helpers import ADMIN, new_session, staff_actor

# Every therapy of docs/clinical-basis.md §1 that the foundation issue lists.
ISSUE_THERAPIES = {
    "ocrelizumab_iv",
    "ocrelizumab_sc",
    "natalizumab",
    "alemtuzumab",
    "ublituximab",
    "rituximab",
    "cyclophosphamide",
    "ivig",
    "methylprednisolone",
    "plasma_exchange",
    "edaravone",
}


@pytest.fixture(scope="module")
def seed() -> dict[str, dict]:
    return {row["code"]: row for row in load_seed()}


def test_every_listed_therapy_is_seeded(seed):
    assert ISSUE_THERAPIES <= set(seed)


def test_codes_are_unique():
    codes = [row["code"] for row in load_seed()]
    assert len(codes) == len(set(codes))


def test_every_row_names_its_clinical_basis_section(seed):
    for code, row in seed.items():
        assert "docs/clinical-basis.md" in row["source"], code
        assert "clinical.md" not in row["source"].replace("clinical-basis.md", ""), code
        assert "§1" in row["source"], code


def test_every_row_has_the_fields_a_session_needs(seed):
    for code, row in seed.items():
        assert row["name"], code
        assert row["duration_windows"], code
        assert row["observation_rules"], code
        assert row["duration_windows"][0].get("from", 1) == 1, code
        schedule = row["vitals_schedule"]
        # docs/clinical-basis.md §4 default: baseline, after start, each rate change, every 30–60 min, end, end of obs
        assert schedule["at_rate_change"] and schedule["at_end_of_infusion"] and schedule["at_end_of_observation"]
        assert 30 <= schedule["every_minutes"] <= 60, code
        assert schedule["after_start_minutes"][0] == 15, code
        assert isinstance(row["premedication_required"], bool)


def test_ocrevus_iv(seed):
    row = seed["ocrelizumab_iv"]
    assert row["brand"] == "Ocrevus"
    assert duration_window(row["duration_windows"], 1).min_minutes == 150  # infusions 1–2: ≥ 2.5 h
    assert duration_window(row["duration_windows"], 2).min_minutes == 150
    assert duration_window(row["duration_windows"], 3).min_minutes == 120  # later: ~2 h shorter option
    assert observation_minutes(row["observation_rules"], 1) == 60
    assert observation_minutes(row["observation_rules"], 7) == 60
    assert row["premedication_required"]
    assert "Methylprednisolone 100 mg" in row["premedication_text"]
    # "a minimum of 5 months" is counted in calendar months (infusion/clinical/intervals.py), not as 140 days
    assert row["min_interval_days"] is None
    assert not row["program"]
    assert rate_plan_for(row["rate_plan"], 1)["start_ml_h"] == 30
    assert rate_plan_for(row["rate_plan"], 1)["max_ml_h"] == 180
    assert rate_plan_for(row["rate_plan"], 3)["start_ml_h"] == 40
    assert rate_plan_for(row["rate_plan"], 3)["max_ml_h"] == 200


def test_ocrevus_zunovo(seed):
    row = seed["ocrelizumab_sc"]
    assert row["route"] == "SC"
    assert row["default_dose"] == 920
    assert duration_window(row["duration_windows"], 1) == DurationWindow(10, 10)
    assert observation_minutes(row["observation_rules"], 1) == 60  # ≥ 1 h after the first injection
    assert observation_minutes(row["observation_rules"], 2) == 15  # ≥ 15 min after later ones
    assert observation_minutes(row["observation_rules"], 9) == 15
    assert row["premedication_required"]


def test_tysabri(seed):
    row = seed["natalizumab"]
    assert row["brand"] == "Tysabri"
    assert row["program"] == "TOUCH"
    # TYSABRI USPI §2.3 (current, openFDA 3/2025; docs/clinical-basis.md §4): 1 h for the first 12
    # infusions, then clinical judgment
    assert observation_minutes(row["observation_rules"], 1) == 60
    assert observation_minutes(row["observation_rules"], 12) == 60
    assert observation_minutes(row["observation_rules"], 13) is None
    assert observation_minutes(row["observation_rules"], 30) is None
    assert duration_window(row["duration_windows"], 1).max_minutes == 60
    assert not row["premedication_required"]
    assert row["dosing_interval_days"] == 28  # every 4 weeks
    assert row["default_dose"] == 300


def test_lemtrada(seed):
    row = seed["alemtuzumab"]
    assert row["brand"] == "Lemtrada"
    assert row["program"] == "Lemtrada REMS"
    assert observation_minutes(row["observation_rules"], 1) == 120
    assert duration_window(row["duration_windows"], 1).max_minutes == 240  # ~4 h
    assert row["vitals_schedule"]["every_minutes"] == 30  # ivxhealth practice, docs/clinical-basis.md §4
    assert row["premedication_required"]
    assert row["default_dose"] == 12


def test_briumvi(seed):
    row = seed["ublituximab"]
    assert row["brand"] == "Briumvi"
    first, later = duration_window(row["duration_windows"], 1), duration_window(row["duration_windows"], 2)
    assert first.max_minutes == 240  # infusion 1: ~4 h
    assert later.max_minutes == 60  # later: ~1 h
    assert duration_window(row["duration_windows"], 5).max_minutes == 60
    assert observation_minutes(row["observation_rules"], 1) == 60  # after the first 2 infusions
    assert observation_minutes(row["observation_rules"], 2) == 60
    assert observation_minutes(row["observation_rules"], 3) is None  # physician's discretion
    assert row["premedication_required"]
    steps = rate_plan_for(row["rate_plan"], 1)["steps"]
    assert sum(s["minutes"] for s in steps) == 240
    assert [s["rate_ml_h"] for s in steps] == [10, 20, 35, 100]
    assert [s["rate_ml_h"] for s in rate_plan_for(row["rate_plan"], 2)["steps"]] == [100, 400]


def test_rituximab(seed):
    row = seed["rituximab"]
    assert duration_window(row["duration_windows"], 1) == DurationWindow(240, 360)  # first: 4–6 h
    assert duration_window(row["duration_windows"], 2) == DurationWindow(180, 240)  # later: 3–4 h
    assert observation_minutes(row["observation_rules"], 1) is None  # not fixed by the label
    assert row["premedication_required"]
    assert rate_plan_for(row["rate_plan"], 1)["start"] == 50
    assert rate_plan_for(row["rate_plan"], 2)["start"] == 100


def test_cyclophosphamide(seed):
    row = seed["cyclophosphamide"]
    window = duration_window(row["duration_windows"], 1)
    assert window.min_minutes == 60 and window.max_minutes == 240  # ~1 h to 3–4 h
    assert observation_minutes(row["observation_rules"], 1) is None
    assert "ondansetron" in row["premedication_text"]


def test_ivig(seed):
    row = seed["ivig"]
    assert row["dosing_interval_days"] == 21
    assert duration_window(row["duration_windows"], 1).min_minutes == 120
    assert duration_window(row["duration_windows"], 1).max_minutes is None  # rate-titrated: no upper bound
    assert row["vitals_schedule"]["after_start_minutes"] == [15, 30]
    assert not row["premedication_required"]  # practice, not required


def test_iv_methylprednisolone(seed):
    row = seed["methylprednisolone"]
    assert duration_window(row["duration_windows"], 1).min_minutes == 30  # ≥ 30 min for high doses
    assert row["default_dose"] == 1000
    assert not row["premedication_required"]


def test_plasma_exchange(seed):
    row = seed["plasma_exchange"]
    assert duration_window(row["duration_windows"], 1) == DurationWindow(120, 135)
    assert "ACE" in row["premedication_text"]


def test_edaravone(seed):
    row = seed["edaravone"]
    assert row["brand"] == "Radicava"
    assert duration_window(row["duration_windows"], 1) == DurationWindow(60, 60)
    assert row["default_dose"] == 60


def test_mycophenolate_is_not_an_infusion_chair_therapy(seed):
    assert not any("mycophenolate" in code for code in seed)


def test_window_descriptions():
    assert DurationWindow(60, 60).describe() == "about 1 h"
    assert DurationWindow(150, None).describe() == "≥ 2.5 h"
    assert DurationWindow(240, 360).describe() == "4 h–6 h"
    assert DurationWindow(30, None).describe() == "≥ 30 min"
    assert DurationWindow(None, None).describe() == "not defined"


def test_rules_by_infusion_number_outside_any_rule():
    assert duration_window([], 1) == DurationWindow(None, None)
    assert observation_minutes([{"from": 2, "minutes": 30}], 1) is None


# ---------------------------------------------------------------- seeding the database


def _therapy_count(db) -> int:
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(Therapy))


def test_seed_fills_the_database_with_the_file_values(db, seed):
    with db.reading() as s:
        rows = {t.code: t for t in s.scalars(select(Therapy))}
    assert set(rows) == set(seed)
    tysabri = rows["natalizumab"]
    assert tysabri.program == "TOUCH"
    assert observation_minutes(tysabri.observation_rules, 1) == 60
    assert rows["alemtuzumab"].vitals_schedule["every_minutes"] == 30
    assert rows["ocrelizumab_iv"].premedication_required is True
    assert all("docs/clinical-basis.md" in t.source for t in rows.values())


def test_seeding_twice_adds_nothing(db):
    before = _therapy_count(db)
    with db.reading() as s:
        audits_before = s.scalar(select(func.count()).select_from(AuditEvent))
    assert seed_therapies(db) == 0
    assert _therapy_count(db) == before
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == audits_before


def test_seeding_never_overwrites_a_clinic_edit(db):
    with db.writing() as s:
        tysabri = s.scalars(select(Therapy).where(Therapy.code == "natalizumab")).one()
        tysabri.observation_rules = [{"from": 1, "minutes": 30}]
        tysabri.premedication_required = True
        tysabri.name = "Natalizumab (clinic protocol)"
    seed_therapies(db)
    with db.reading() as s:
        tysabri = s.scalars(select(Therapy).where(Therapy.code == "natalizumab")).one()
    assert tysabri.observation_rules == [{"from": 1, "minutes": 30}]
    assert tysabri.premedication_required is True
    assert tysabri.name == "Natalizumab (clinic protocol)"


def test_seeding_adds_only_what_is_missing(db):
    with db.writing() as s:
        s.execute(delete(Therapy).where(Therapy.code == "edaravone"))
    before = _therapy_count(db)
    assert seed_therapies(db) == 1
    assert _therapy_count(db) == before + 1
    with db.reading() as s:
        seeded = s.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "seed", AuditEvent.entity == "therapy")
            .order_by(AuditEvent.id.desc())
        ).first()
        edaravone = s.scalars(select(Therapy).where(Therapy.code == "edaravone")).one()
    assert seeded.entity_id == edaravone.id
    assert seeded.user_name == "system"


# Regressions found in review: each is what a nurse or an auditor would notice.


@pytest.mark.parametrize(
    "changes",
    [
        {"duration_windows": [{"from": 1, "to": "3", "min_minutes": 60}]},
        {"vitals_schedule": []},
        {"vitals_schedule": {"after_start_minutes": "15", "every_minutes": 60}},
    ],
)
def test_malformed_catalog_edits_are_refused_and_chairside_keeps_working(db, changes):
    nurse = staff_actor(db, "Ann Author")
    therapy = next(t for t in setup.list_therapies(db) if t.code == "methylprednisolone")
    with pytest.raises(ValidationError):
        setup.update_therapy(db, ADMIN, therapy.id, changes, expected_version=therapy.version)
    sid = new_session(db, nurse, "methylprednisolone")
    assert any(card.id == sid for card in views.today_sessions(db, nurse))
