"""Pre-treatment checks at check-in (issue 6): the checklist per therapy, answers kept
append-only with the session, and *proceed* blocked by each unchecked required item."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.models import AuditEvent, PretreatmentAnswer, ProgramCheck, Therapy
from infusion.accounts.actor import Actor
from infusion.errors import PermissionDenied, StateError, ValidationError
from infusion.services import sessions
from infusion.services.pretreatment import (
    PROGRAM_CODE,
    Check,
    checklist_for,
    latest_answers,
    pretreatment_blockers,
    proceed_with_checks,
    record_pretreatment,
    validate_checklist,
)
from tests.helpers import ago, audit_count, audits_since, new_session, normal_vitals, row, snapshot, version


def _therapy(db, code: str) -> Therapy:
    with db.reading() as s:
        return s.scalars(select(Therapy).where(Therapy.code == code)).one()


def _checked_in(db, nurse, code: str = "natalizumab") -> int:
    sid = new_session(db, nurse, code)
    sessions.check_in(db, nurse, sid, normal_vitals(), expected_version=None, at=ago(30))
    return sid


def _all_yes(db, code: str) -> dict[str, bool]:
    return {c.code: True for c in checklist_for(_therapy(db, code))}


def test_default_checklists_per_therapy(db):
    codes = {
        code: [c.code for c in checklist_for(_therapy(db, code))]
        for code in ("natalizumab", "alemtuzumab", "ocrelizumab_iv", "ivig")
    }
    common = ["no_active_infection", "allergies_reviewed"]
    assert codes["natalizumab"] == [*common, "jcv_test", PROGRAM_CODE]
    assert codes["alemtuzumab"] == [*common, "cbc", "kidney_function", PROGRAM_CODE]
    assert codes["ocrelizumab_iv"] == common
    assert codes["ivig"] == common
    tysabri = checklist_for(_therapy(db, "natalizumab"))
    assert all(c.required for c in tysabri)
    assert "TOUCH" in tysabri[-1].label and "JC virus" in tysabri[2].label
    assert "Lemtrada REMS" in checklist_for(_therapy(db, "alemtuzumab"))[-1].label


def test_clinic_checklist_replaces_the_defaults(db):
    therapy = _therapy(db, "ocrelizumab_iv")
    therapy.pretreatment_checks = [
        {"code": "hep_b", "label": "Hepatitis B screen on file", "required": True},
        {"code": "mri", "label": "Recent MRI", "required": False},
    ]
    assert checklist_for(therapy) == [
        Check("hep_b", "Hepatitis B screen on file", True),
        Check("mri", "Recent MRI", False),
    ]


def test_validate_checklist():
    assert validate_checklist([{"code": "a", "label": "A"}]) == [{"code": "a", "label": "A", "required": True}]
    assert validate_checklist([]) == []
    for bad in ([{"code": "", "label": "x"}], [{"code": "a", "label": "A"}, {"code": "a", "label": "B"}], "x"):
        with pytest.raises(ValidationError):
            validate_checklist(bad)


def test_proceed_is_blocked_naming_each_unchecked_required_item(db, nurse):
    sid = _checked_in(db, nurse, "alemtuzumab")
    record_pretreatment(
        db,
        nurse,
        sid,
        {"no_active_infection": True, "allergies_reviewed": True, "cbc": False},
        {"cbc": "Result from March, outside the window"},
    )
    blockers = pretreatment_blockers(db, sid)
    assert blockers == [
        "Complete blood count (CBC) within the clinic's window",
        "Kidney function (serum creatinine, urinalysis) within the clinic's window",
        "Lemtrada REMS: patient authorized and the program's pre-infusion checklist complete",
    ]
    before = snapshot(db)
    with pytest.raises(ValidationError) as refused:
        proceed_with_checks(db, nurse, sid, version(db, sid))
    for label in blockers:
        assert label in str(refused.value)
    assert "defer" in str(refused.value)
    assert snapshot(db) == before
    assert row(db, sid).status == "checked_in"
    # the nurse may defer instead
    sessions.defer(db, nurse, sid, "Labs not available", expected_version=version(db, sid))
    assert row(db, sid).status == "deferred"


def test_all_required_yes_lets_proceed(db, nurse):
    sid = _checked_in(db, nurse, "ocrelizumab_iv")
    assert len(pretreatment_blockers(db, sid)) == 2
    record_pretreatment(db, nurse, sid, _all_yes(db, "ocrelizumab_iv"), {})
    assert pretreatment_blockers(db, sid) == []
    proceed_with_checks(db, nurse, sid, version(db, sid))
    assert row(db, sid).status == "ready"


def test_optional_items_do_not_block(db, nurse):
    sid = _checked_in(db, nurse, "ivig")
    with db.writing() as s:
        s.scalars(select(Therapy).where(Therapy.code == "ivig")).one().pretreatment_checks = [
            {"code": "infection", "label": "No infection", "required": True},
            {"code": "igA", "label": "IgA level known", "required": False},
        ]
    record_pretreatment(db, nurse, sid, {"infection": True, "igA": False}, {})
    assert pretreatment_blockers(db, sid) == []
    proceed_with_checks(db, nurse, sid, None)


def test_reanswering_appends_and_the_latest_wins(db, nurse):
    sid = _checked_in(db, nurse, "ocrelizumab_iv")
    record_pretreatment(
        db,
        nurse,
        sid,
        {"no_active_infection": False, "allergies_reviewed": True},
        {"no_active_infection": "Temp 38.2 on arrival"},
    )
    assert pretreatment_blockers(db, sid) == [
        "No signs of active infection (no fever ≥ 38.0 °C / 100.4 °F, not on antibiotics)"
    ]
    with db.reading() as s:
        first = s.scalars(select(PretreatmentAnswer).where(PretreatmentAnswer.code == "no_active_infection")).one()
    record_pretreatment(
        db, nurse, sid, {"no_active_infection": True}, {"no_active_infection": "Recheck 37.1"}, at=ago(5)
    )
    with db.reading() as s:
        rows = list(
            s.scalars(
                select(PretreatmentAnswer).where(PretreatmentAnswer.session_id == sid).order_by(PretreatmentAnswer.id)
            )
        )
    assert [(r.code, r.answer, r.note) for r in rows] == [
        ("no_active_infection", False, "Temp 38.2 on arrival"),
        ("allergies_reviewed", True, None),
        ("no_active_infection", True, "Recheck 37.1"),
    ]
    assert (rows[0].id, rows[0].answer, rows[0].answered_at) == (first.id, False, first.answered_at)  # untouched
    latest = latest_answers(db, nurse, sid)
    assert latest["no_active_infection"].answer is True and latest["allergies_reviewed"].answer is True
    assert pretreatment_blockers(db, sid) == []
    assert all(r.label and r.required for r in rows)  # the label and rule as shown are kept with the answer


def test_each_answer_is_audited_and_the_session_version_unchanged(db, nurse):
    sid = _checked_in(db, nurse, "ocrelizumab_iv")
    seen, count = version(db, sid), audit_count(db)
    record_pretreatment(db, nurse, sid, {"no_active_infection": True, "allergies_reviewed": True}, {})
    events = audits_since(db, count)
    assert [(e.action, e.entity, e.session_id) for e in events] == [
        ("record_pretreatment", "pretreatment_answer", sid)
    ] * 2
    assert {e.after["code"] for e in events} == {"no_active_infection", "allergies_reviewed"}
    assert version(db, sid) == seen  # answers do not make the nurse's screen stale


def test_program_item_yes_records_the_program_check(db, nurse):
    sid = _checked_in(db, nurse, "natalizumab")
    record_pretreatment(db, nurse, sid, _all_yes(db, "natalizumab"), {PROGRAM_CODE: "TOUCH-778"})
    with db.reading() as s:
        check = s.scalars(select(ProgramCheck).where(ProgramCheck.session_id == sid)).one()
        assert s.scalars(select(AuditEvent).where(AuditEvent.action == "confirm_program")).one().session_id == sid
    assert (check.program, check.authorization_ref) == ("TOUCH", "TOUCH-778")
    proceed_with_checks(db, nurse, sid, version(db, sid))
    # start_iv accepts it: no separate "confirm TOUCH" step
    t = ago(1)
    sessions.start_iv(
        db,
        nurse,
        sid,
        expected_version=None,
        site="Left forearm",
        gauge=22,
        attempts=1,
        lot_number="LOT-9",
        rate_ml_h=100,
        at=t,
    )
    assert row(db, sid).status == "infusing"


@pytest.mark.parametrize(
    "answers, notes, field",
    [
        ({}, {}, "answers"),
        ({"mri": True}, {}, "answers"),
        ({"allergies_reviewed": True}, {"no_active_infection": "x"}, "notes"),
        ({"allergies_reviewed": "yes"}, {}, "answer.allergies_reviewed"),
        ({"allergies_reviewed": True}, {"allergies_reviewed": "x" * 501}, "notes"),
    ],
)
def test_bad_answers_are_refused_and_store_nothing(db, nurse, answers, notes, field):
    sid = _checked_in(db, nurse, "ocrelizumab_iv")
    before = snapshot(db)
    with pytest.raises(ValidationError) as refused:
        record_pretreatment(db, nurse, sid, answers, notes)
    assert field in refused.value.problems
    assert snapshot(db) == before


def test_answers_only_between_check_in_and_proceed(db, nurse):
    sid = new_session(db, nurse, "ocrelizumab_iv")
    with pytest.raises(StateError):
        record_pretreatment(db, nurse, sid, {"allergies_reviewed": True}, {})
    sessions.check_in(db, nurse, sid, normal_vitals(), expected_version=None, at=ago(30))
    record_pretreatment(db, nurse, sid, _all_yes(db, "ocrelizumab_iv"), {})
    proceed_with_checks(db, nurse, sid, None)
    with pytest.raises(StateError):
        record_pretreatment(db, nurse, sid, {"allergies_reviewed": False}, {})
    with pytest.raises(StateError):  # proceeding twice is the state machine's refusal, not the checklist's
        proceed_with_checks(db, nurse, sid, None)


def test_answer_time_is_a_clinical_time(db, nurse):
    sid = _checked_in(db, nurse, "ocrelizumab_iv")
    with pytest.raises(ValidationError):
        record_pretreatment(db, nurse, sid, {"allergies_reviewed": True}, {}, at=ago(-60))  # future
    with pytest.raises(ValidationError):
        record_pretreatment(db, nurse, sid, {"allergies_reviewed": True}, {}, at=ago(60))  # before check-in


def test_roles(db, nurse):
    sid = _checked_in(db, nurse, "ocrelizumab_iv")
    manager = Actor(None, "Manager", "manager")
    with pytest.raises(PermissionDenied):
        record_pretreatment(db, manager, sid, {"allergies_reviewed": True}, {})
    with pytest.raises(PermissionDenied):
        proceed_with_checks(db, manager, sid, None)
    charge = Actor(None, "Charge", "charge_nurse")
    record_pretreatment(db, charge, sid, _all_yes(db, "ocrelizumab_iv"), {})
    proceed_with_checks(db, charge, sid, None)


def test_stale_version_is_refused_after_the_checks_pass(db, nurse):
    from infusion.errors import ConflictError

    sid = _checked_in(db, nurse, "ocrelizumab_iv")
    record_pretreatment(db, nurse, sid, _all_yes(db, "ocrelizumab_iv"), {})
    with pytest.raises(ConflictError):
        proceed_with_checks(db, nurse, sid, version(db, sid) - 1)
    assert row(db, sid).status == "checked_in"


def test_a_clinic_edits_the_checklist_through_the_catalog_and_it_applies(db):
    """Administration: the clinic's own checklist replaces the defaults; a malformed one is refused."""
    from infusion.accounts.actor import Actor
    from infusion.errors import ValidationError
    from infusion.services import setup
    from infusion.services.pretreatment import checklist_for

    admin = Actor(None, "Admin", "admin")
    therapy = next(t for t in setup.list_therapies(db) if t.code == "ivig")
    own = [{"code": "igA", "label": "IgA level on file", "required": True}]
    updated = setup.update_therapy(
        db, admin, therapy.id, {"pretreatment_checks": own}, expected_version=therapy.version
    )
    assert [c.code for c in checklist_for(updated)] == ["igA"]
    with pytest.raises(ValidationError):
        setup.update_therapy(
            db, admin, therapy.id, {"pretreatment_checks": [{"label": "no code"}]}, expected_version=updated.version
        )


@pytest.mark.parametrize("temperature", [38.0, 38.4])
def test_a_measured_fever_cannot_be_ticked_away_only_overridden_with_a_reason(db, nurse, temperature):
    # Ocrevus/Briumvi USPI §2.2: delay the infusion in active infection; the clinic's fever threshold is
    # 38.0 °C (docs/clinical-basis.md §6, §7). What was measured at check-in outranks the tick.
    sid = new_session(db, nurse, "ocrelizumab_iv")
    sessions.check_in(
        db,
        nurse,
        sid,
        normal_vitals(temperature=temperature),
        expected_version=None,
        at=ago(30),
        acknowledge_flags=True,
    )
    record_pretreatment(db, nurse, sid, _all_yes(db, "ocrelizumab_iv"), {})
    assert any("was measured in this session" in b for b in pretreatment_blockers(db, sid))
    with pytest.raises(ValidationError) as refused:
        proceed_with_checks(db, nurse, sid, version(db, sid))
    assert "pretreatment.no_active_infection" in refused.value.problems
    assert row(db, sid).status == "checked_in"
    before = audit_count(db)
    proceed_with_checks(db, nurse, sid, version(db, sid), override_reason="Post-vaccine fever; neurologist approved")
    assert row(db, sid).status == "ready"
    events = {e.action: e for e in audits_since(db, before)}
    assert events["pretreatment_override"].reason == "Post-vaccine fever; neurologist approved"
    assert events["pretreatment_override"].after["measured_temperature_c"] == temperature


def test_below_the_fever_threshold_proceeds_without_an_override(db, nurse):
    sid = new_session(db, nurse, "ocrelizumab_iv")
    sessions.check_in(db, nurse, sid, normal_vitals(temperature=37.9), expected_version=None, at=ago(30))
    record_pretreatment(db, nurse, sid, _all_yes(db, "ocrelizumab_iv"), {})
    proceed_with_checks(db, nurse, sid, version(db, sid))
    assert row(db, sid).status == "ready"
