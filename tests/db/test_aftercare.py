"""After the chair (issue 6): discharge education, the printable patient summary, the
next-day follow-up work list and calls, delayed reactions and their rates."""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from db.models import AuditEvent, FollowUp, Patient, Reaction
from infusion.accounts.actor import SYSTEM, Actor
from infusion.clock import from_local
from infusion.errors import (
    ConfirmationRequired,
    ConflictError,
    PermissionDenied,
    StateError,
    ValidationError,
)
from infusion.reads.trends import TrendFilters, reaction_rates
from infusion.services import aftercare, entries, sessions
from infusion.services.setup import add_patient, add_staff, update_clinic
from tests.helpers import (
    ago,
    audit_count,
    audits_since,
    new_session,
    normal_vitals,
    row,
    snapshot,
    therapy_id,
    version,
    walk,
)

TZ = "America/New_York"
MARCH = TrendFilters(date(2025, 3, 1), date(2025, 3, 31))


def local(day: str, hhmm: str) -> datetime:
    return from_local(datetime.fromisoformat(f"{day}T{hhmm}"), TZ)


@pytest.fixture
def clinic(db):
    update_clinic(
        db, SYSTEM, name="Lakeside & Co Infusion", timezone=TZ, temperature_unit="C", weight_unit="kg", phone="555-0100"
    )
    return db


@pytest.fixture
def staff(clinic) -> Actor:
    user = add_staff(clinic, SYSTEM, "Nora Nurse")
    return Actor(user.id, user.display_name, "nurse")


def visit(
    db,
    nurse: Actor,
    *,
    discharge_at: datetime,
    therapy: str = "natalizumab",
    patient_id: int | None = None,
    chair_id: int | None = None,
    reaction: dict | None = None,
) -> int:
    """A whole session whose discharge is at `discharge_at` (check-in 3 h before)."""
    sid = new_session(db, nurse, therapy, patient_id=patient_id, chair_id=chair_id)
    t0 = discharge_at - timedelta(hours=3)
    walk(db, nurse, sid, "infusing", t0=t0)
    if reaction:
        entries.record_reaction(
            db, nurse, sid, onset_at=t0 + timedelta(minutes=40), resolved_at=t0 + timedelta(minutes=55), **reaction
        )
    sessions.stop_iv(db, nurse, sid, expected_version=None, at=t0 + timedelta(minutes=80))
    sessions.discharge(db, nurse, sid, expected_version=None, at=discharge_at)
    return sid


def delayed(db, nurse, sid, onset: datetime, grade: int = 1, **kw) -> Reaction:
    return aftercare.record_delayed_reaction(
        db,
        nurse,
        sid,
        kw.pop("symptoms", ["fever"]),
        grade,
        kw.pop("actions", ["observed"]),
        onset,
        kw.pop("note", None),
        **kw,
    )


# ---------------------------------------------------------------- education
def test_education_is_recorded_additively_and_audited(clinic, staff):
    sid = new_session(clinic, staff)
    walk(clinic, staff, sid, "observation")
    with pytest.raises(StateError):  # not before observation
        other = new_session(clinic, staff)
        walk(clinic, staff, other, "infusing")
        aftercare.record_education(clinic, staff, other, ["rest"])
    seen, count = version(clinic, sid), audit_count(clinic)
    aftercare.record_education(clinic, staff, sid, ["whom_to_call", "rest"], expected_version=seen)
    assert row(clinic, sid).education == ["rest", "whom_to_call"]  # vocabulary order
    assert version(clinic, sid) == seen + 1
    sessions.discharge(clinic, staff, sid, expected_version=None, early_reason="test")
    aftercare.record_education(clinic, staff, sid, ["delayed_reactions", "rest"])
    assert row(clinic, sid).education == ["rest", "delayed_reactions", "whom_to_call"]
    events = [e for e in audits_since(clinic, count) if e.action == "record_education"]
    assert [(e.before, e.after) for e in events] == [
        ({"education": []}, {"education": ["rest", "whom_to_call"]}),
        ({"education": ["rest", "whom_to_call"]}, {"education": ["rest", "delayed_reactions", "whom_to_call"]}),
    ]
    before = snapshot(clinic)
    aftercare.record_education(clinic, staff, sid, ["rest"])  # nothing new: no write, no audit
    assert snapshot(clinic) == before


@pytest.mark.parametrize("items", [[], ["juggling"]])
def test_education_refuses_unknown_or_empty(clinic, staff, items):
    sid = new_session(clinic, staff)
    walk(clinic, staff, sid, "observation")
    before = snapshot(clinic)
    with pytest.raises(ValidationError):
        aftercare.record_education(clinic, staff, sid, items)
    assert snapshot(clinic) == before


def test_education_roles_and_stale_version(clinic, staff):
    sid = new_session(clinic, staff)
    walk(clinic, staff, sid, "observation")
    with pytest.raises(PermissionDenied):
        aftercare.record_education(clinic, Actor(None, "M", "manager"), sid, ["rest"])
    with pytest.raises(ConflictError):
        aftercare.record_education(clinic, staff, sid, ["rest"], expected_version=version(clinic, sid) - 1)


# ---------------------------------------------------------------- summary
def test_summary_carries_the_session_facts_and_nothing_of_another_patient(clinic, staff):
    pid = add_patient(clinic, staff, mrn="MRN-SUM-1", given_name="Ann", family_name="Lee <Jr>").id
    other_pid = add_patient(clinic, staff, mrn="MRN-OTHER-9", given_name="Zed", family_name="Quill").id
    sid = visit(
        clinic,
        staff,
        discharge_at=local("2025-03-12", "13:15"),
        patient_id=pid,
        reaction={
            "symptoms": ["rash", "pruritus"],
            "grade": 2,
            "actions": ["paused", "medication_given"],
            "medication_given": "Diphenhydramine 25 mg IV",
        },
    )
    visit(
        clinic,
        staff,
        discharge_at=local("2025-03-12", "14:40"),
        patient_id=other_pid,
        therapy="ocrelizumab_iv",
        reaction={
            "symptoms": ["headache"],
            "grade": 1,
            "actions": ["medication_given"],
            "medication_given": "Paracetamol 1 g PO (other patient)",
        },
    )
    delayed(clinic, staff, sid, local("2025-03-12", "21:30"), symptoms=["fever"], grade=1)
    aftercare.record_education(clinic, staff, sid, ["rest", "delayed_reactions", "whom_to_call"])

    summary = aftercare.patient_summary(clinic, staff, sid)
    assert summary["clinic"] == {"name": "Lakeside & Co Infusion", "phone": "555-0100", "timezone": TZ}
    assert summary["therapy"]["brand"] == "Tysabri"
    # times in the clinic's zone (EDT on 12 March 2025): discharge 13:15, check-in 10:15, IV 10:35–11:35
    assert summary["times"] == {
        "checked_in": "10:15",
        "iv_started": "10:35",
        "iv_stopped": "11:35",
        "discharged": "13:15",
        "infusion_duration": "1 h 00 min",
    }
    assert summary["date"] == "Wednesday 12 March 2025"
    assert [r["delayed"] for r in summary["reactions"]] == [False, True]
    page = aftercare.summary_html(summary)
    for fact in (
        "Tysabri",
        "10:15",
        "10:35",
        "11:35",
        "13:15",
        "Rash",
        "Pruritus",
        "grade 2",
        "Infusion paused",
        "Diphenhydramine 25 mg IV",
        "after you went home",
        "Fever",
        "555-0100",
        summary["next_due"],
        "Lakeside &amp; Co Infusion",
        "Lee &lt;Jr&gt;",
        "MRN-SUM-1",
        aftercare.EDUCATION["rest"],
        "up to 24 hours after the infusion",
        TZ,
        "@media print",
    ):
        assert fact in page, fact
    for leak in ("Quill", "MRN-OTHER-9", "Paracetamol", "Headache", "Ocrevus", "<Jr>"):
        assert leak not in page, leak
    for external in ("http://", "https://", "<script", "<link", "<img", "@import", "url("):
        assert external not in page.lower()


def test_summary_next_due_without_the_due_module(clinic, staff, monkeypatch):
    monkeypatch.setitem(sys.modules, "infusion.reads.due", None)  # as if infusion/reads/due.py did not exist
    sid = visit(clinic, staff, discharge_at=local("2025-03-12", "13:15"))
    summary = aftercare.patient_summary(clinic, staff, sid)
    assert summary["next_due"] == aftercare.ASK_THE_CLINIC == "Ask the clinic"
    assert "Ask the clinic" in aftercare.summary_html(summary)


def test_summary_next_due_from_the_due_module(clinic, staff):
    pytest.importorskip("infusion.reads.due")
    sid = visit(clinic, staff, discharge_at=local("2025-03-12", "13:15"))
    assert aftercare.patient_summary(clinic, staff, sid)["next_due"].startswith("09 Apr 2025")  # Tysabri: 28 days
    steroid = visit(clinic, staff, discharge_at=local("2025-03-12", "15:15"), therapy="methylprednisolone")
    assert aftercare.patient_summary(clinic, staff, steroid)["next_due"] == aftercare.ASK_THE_CLINIC  # on demand


def test_summary_next_due_and_states(clinic, staff):
    sid = new_session(clinic, staff)
    walk(clinic, staff, sid, "ready")
    with pytest.raises(StateError):
        aftercare.patient_summary(clinic, staff, sid)
    sid = visit(clinic, staff, discharge_at=local("2025-03-12", "13:15"))
    summary = aftercare.patient_summary(clinic, staff, sid, next_due=date(2025, 4, 9))
    assert summary["next_due"] == "09 Apr 2025"
    assert summary["reactions"] == [] and summary["education"] == []
    page = aftercare.summary_html(summary)
    assert "No reaction was recorded" in page and "09 Apr 2025" in page
    with pytest.raises(PermissionDenied):
        aftercare.patient_summary(clinic, Actor(None, "Q", "quality"), sid)


# ---------------------------------------------------------------- work list
def test_worklist_is_yesterdays_discharges_in_the_clinic_time_zone(clinic, staff):
    # 9 March 2025 is the US spring-forward day: 23 hours long in New York.
    in_early = visit(clinic, staff, discharge_at=local("2025-03-09", "00:10"))
    in_late = visit(clinic, staff, discharge_at=local("2025-03-09", "23:50"))
    visit(clinic, staff, discharge_at=local("2025-03-08", "23:50"))  # the day before
    visit(clinic, staff, discharge_at=local("2025-03-10", "00:10"))  # the day itself
    deferred = new_session(clinic, staff)
    sessions.check_in(clinic, staff, deferred, normal_vitals(), expected_version=None, at=local("2025-03-09", "12:00"))
    sessions.defer(clinic, staff, deferred, "Fever", expected_version=None, at=local("2025-03-09", "12:10"))

    frame = aftercare.follow_up_worklist(clinic, staff, date(2025, 3, 10))
    assert list(frame.columns) == list(aftercare.FOLLOW_UP_COLUMNS)
    assert frame["session_id"].tolist() == [in_early, in_late]
    assert frame["outcome"].tolist() == ["pending", "pending"]
    assert frame["attempts"].tolist() == [0, 0] and frame["follow_up_version"].tolist() == [0, 0]
    assert frame["discharged"].tolist() == ["Sun 09 Mar 00:10", "Sun 09 Mar 23:50"]
    assert frame["therapy"].tolist() == ["Tysabri", "Tysabri"]
    with clinic.reading() as s:  # the list is computed: opening it writes nothing
        assert s.scalar(select(func.count()).select_from(FollowUp)) == 0
    assert len(aftercare.follow_up_worklist(clinic, staff, date(2025, 3, 10), days=3)) == 3
    assert aftercare.follow_up_worklist(clinic, staff, date(2025, 3, 12)).empty
    with pytest.raises(PermissionDenied):
        aftercare.follow_up_worklist(clinic, Actor(None, "M", "manager"), date(2025, 3, 10))


def test_worklist_shows_phone_and_reactions(clinic, staff):
    pid = add_patient(clinic, staff, mrn="MRN-PH", given_name="Bo", family_name="Ray").id
    with clinic.writing() as s:
        s.get(Patient, pid).phone = "555-0199"
    sid = visit(
        clinic,
        staff,
        discharge_at=local("2025-03-12", "13:00"),
        patient_id=pid,
        reaction={"symptoms": ["rash"], "grade": 2, "actions": ["observed"]},
    )
    delayed(clinic, staff, sid, local("2025-03-12", "20:00"), grade=1)
    got = aftercare.follow_up_worklist(clinic, staff, date(2025, 3, 13)).iloc[0]
    assert (got["patient"], got["mrn"], got["phone"]) == ("Ray, Bo", "MRN-PH", "555-0199")
    assert (got["reaction_count"], got["worst_grade"], got["delayed_reactions"]) == (2, 2, 1)


# ---------------------------------------------------------------- calls
def test_follow_up_calls_add_up_and_are_audited(clinic, staff):
    sid = visit(clinic, staff, discharge_at=local("2025-03-12", "13:00"))
    count = audit_count(clinic)
    first = aftercare.record_follow_up(clinic, staff, sid, "not_reached", "Voicemail", expected_version=0)
    assert (first.outcome, first.attempts, first.version) == ("not_reached", 1, 1)
    with pytest.raises(ConflictError):  # a second tablet still showing "not called yet"
        aftercare.record_follow_up(clinic, staff, sid, "reached", "", expected_version=0)
    second = aftercare.record_follow_up(clinic, staff, sid, "reached", "Feels well", expected_version=1)
    assert (second.outcome, second.attempts, second.called_by_id) == ("reached", 2, staff.user_id)
    lines = second.note.splitlines()
    assert len(lines) == 2 and lines[0].endswith("not reached (Nora Nurse): Voicemail")
    assert lines[1].endswith("reached (Nora Nurse): Feels well")
    events = audits_since(clinic, count)
    assert [(e.action, e.entity, e.session_id) for e in events] == [("record_follow_up", "follow_up", sid)] * 2
    assert events[1].before["outcome"] == "not_reached" and events[1].after["outcome"] == "reached"
    got = aftercare.follow_up_worklist(clinic, staff, date(2025, 3, 13)).iloc[0]
    assert (got["outcome"], got["attempts"], got["called_by"], got["follow_up_version"]) == (
        "reached",
        2,
        "Nora Nurse",
        2,
    )
    with clinic.reading() as s:
        assert s.scalar(select(func.count()).select_from(FollowUp)) == 1


def test_follow_up_refusals(clinic, staff):
    sid = visit(clinic, staff, discharge_at=local("2025-03-12", "13:00"))
    with pytest.raises(ValidationError):
        aftercare.record_follow_up(clinic, staff, sid, "pending", "")
    with pytest.raises(PermissionDenied):
        aftercare.record_follow_up(clinic, Actor(None, "M", "manager"), sid, "reached", "")
    open_session = new_session(clinic, staff)
    snap = snapshot(clinic)
    with pytest.raises(StateError):
        aftercare.record_follow_up(clinic, staff, open_session, "reached", "")
    assert snapshot(clinic) == snap


# ---------------------------------------------------------------- delayed reactions
def test_delayed_reaction_is_stored_and_updates_the_session(clinic, staff):
    discharged = local("2025-03-12", "13:00")
    sid = visit(
        clinic, staff, discharge_at=discharged, reaction={"symptoms": ["rash"], "grade": 1, "actions": ["observed"]}
    )
    seen, count = version(clinic, sid), audit_count(clinic)
    reaction = delayed(
        clinic,
        staff,
        sid,
        discharged + timedelta(hours=6),
        grade=2,
        symptoms=["fever", "chills"],
        actions=["medication_given"],
        medication_given="Paracetamol 1 g PO",
        note="Settled by morning",
        client_token="tok-1",
    )
    assert reaction.delayed is True and reaction.status == "active"
    assert reaction.onset_at == discharged + timedelta(hours=6)
    session = row(clinic, sid)
    # an appended entry updates the summaries but not the version that guards state changes
    assert (session.reaction_count, session.worst_grade, session.version) == (2, 2, seen)
    event = audits_since(clinic, count)[0]
    assert (event.action, event.entity, event.reason) == (
        "record_delayed_reaction",
        "reaction",
        "onset 6.0 h after discharge",
    )
    assert event.after["delayed"] is True
    again = delayed(
        clinic,
        staff,
        sid,
        discharged + timedelta(hours=6),
        grade=2,
        symptoms=["fever", "chills"],
        actions=["medication_given"],
        medication_given="Paracetamol 1 g PO",
        client_token="tok-1",
    )
    assert again.id == reaction.id and row(clinic, sid).reaction_count == 2  # a retried save


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(onset=timedelta(minutes=-5)), "onset_at"),  # before discharge
        (dict(onset=timedelta(hours=73)), "onset_at"),  # past the 72 h accepted
        (dict(symptoms=["sneezing"]), "symptoms"),  # entries._validate_reaction
        (dict(symptoms=["anaphylaxis"], grade=2), "grade"),
        (dict(actions=["paused"]), "actions"),  # in-chair action after discharge
        (dict(actions=[]), "actions"),
        (dict(actions=["medication_given"]), "medication_given"),
        (dict(symptoms=["other"]), "other_text"),
    ],
)
def test_delayed_reaction_validation(clinic, staff, change, field):
    discharged = local("2025-03-12", "13:00")
    sid = visit(clinic, staff, discharge_at=discharged)
    args = dict(symptoms=["fever"], grade=1, actions=["observed"])
    change = dict(change)  # the parameter dict is shared by both backends
    onset = discharged + change.pop("onset", timedelta(hours=2))
    args.update(change)
    before = snapshot(clinic)
    with pytest.raises(ValidationError) as refused:
        aftercare.record_delayed_reaction(
            clinic, staff, sid, args["symptoms"], args["grade"], args["actions"], onset, None
        )
    assert field in refused.value.problems
    assert snapshot(clinic) == before


def test_onset_beyond_24h_needs_confirmation(clinic, staff):
    discharged = local("2025-03-07", "15:00")  # a Friday; the call is on Monday
    sid = visit(clinic, staff, discharge_at=discharged)
    before = snapshot(clinic)
    with pytest.raises(ConfirmationRequired) as asked:
        delayed(clinic, staff, sid, discharged + timedelta(hours=30))
    assert "24 h" in str(asked.value)
    assert snapshot(clinic) == before
    reaction = delayed(clinic, staff, sid, discharged + timedelta(hours=30), confirm_beyond_24h=True)
    assert reaction.delayed
    with clinic.reading() as s:
        assert (
            "beyond 24 h"
            in s.scalars(select(AuditEvent.reason).where(AuditEvent.action == "record_delayed_reaction")).one()
        )


def test_delayed_reaction_only_after_discharge_and_for_charting_roles(clinic, staff):
    sid = new_session(clinic, staff)
    walk(clinic, staff, sid, "observation")
    with pytest.raises(StateError):
        delayed(clinic, staff, sid, ago(1))
    sid = visit(clinic, staff, discharge_at=local("2025-03-12", "13:00"))
    with pytest.raises(PermissionDenied):
        delayed(clinic, Actor(None, "M", "manager"), sid, local("2025-03-12", "18:00"))
    with pytest.raises(ValidationError):  # in the future
        delayed(clinic, staff, sid, ago(-120))


def test_withdraw_a_delayed_reaction(clinic, staff):
    sid = visit(clinic, staff, discharge_at=local("2025-03-12", "13:00"))
    reaction = delayed(clinic, staff, sid, local("2025-03-12", "18:00"), grade=3)
    assert row(clinic, sid).worst_grade == 3
    other = Actor(add_staff(clinic, SYSTEM, "Other Nurse").id, "Other Nurse", "nurse")
    with pytest.raises(PermissionDenied):
        aftercare.withdraw_delayed_reaction(clinic, other, reaction.id, "wrong patient")
    with pytest.raises(ValidationError):
        aftercare.withdraw_delayed_reaction(clinic, staff, reaction.id, " ")
    aftercare.withdraw_delayed_reaction(clinic, staff, reaction.id, "wrong patient")
    session = row(clinic, sid)
    assert (session.reaction_count, session.worst_grade) == (0, None)
    with pytest.raises(StateError):
        aftercare.withdraw_delayed_reaction(clinic, staff, reaction.id, "again")


# ---------------------------------------------------------------- rates
def test_delayed_rates_split_during_and_within_24h_after(clinic, staff):
    rash = {"symptoms": ["rash"], "grade": 1, "actions": ["observed"]}
    d = local("2025-03-12", "13:00")
    a = visit(clinic, staff, discharge_at=d, reaction=rash)  # during only
    b = visit(clinic, staff, discharge_at=d + timedelta(hours=1))  # after only
    c = visit(clinic, staff, discharge_at=d + timedelta(hours=2), reaction=rash)  # both
    e = visit(clinic, staff, discharge_at=d + timedelta(hours=3))  # after, but at 30 h
    visit(clinic, staff, discharge_at=d + timedelta(hours=4))  # none
    f = visit(clinic, staff, discharge_at=d, therapy="ocrelizumab_iv")  # withdrawn
    delayed(clinic, staff, b, d + timedelta(hours=1, minutes=30))
    delayed(clinic, staff, b, d + timedelta(hours=5))  # a second one: still 1 session
    delayed(clinic, staff, c, d + timedelta(hours=2) + timedelta(hours=23, minutes=59))
    delayed(clinic, staff, e, d + timedelta(hours=3) + timedelta(hours=30), confirm_beyond_24h=True)
    withdrawn = delayed(clinic, staff, f, d + timedelta(hours=2))
    aftercare.withdraw_delayed_reaction(clinic, staff, withdrawn.id, "wrong patient")
    # an open session does not count
    open_sid = new_session(clinic, staff)
    walk(clinic, staff, open_sid, "observation", t0=local("2025-03-12", "09:00"))
    assert a and open_sid

    frame = aftercare.delayed_reaction_rates(clinic, MARCH)
    assert list(frame.columns) == list(aftercare.DELAYED_RATE_COLUMNS)
    by = {r["therapy"]: r for r in frame.to_dict("records")}
    assert set(by) == {"Tysabri", "Ocrevus"}
    ty = by["Tysabri"]
    assert (ty["completed"], ty["during_session"], ty["within_24h_after"]) == (5, 2, 2)
    assert (ty["rate_during_per_100"], ty["rate_after_per_100"]) == (40.0, 40.0)
    oc = by["Ocrevus"]
    assert (oc["completed"], oc["during_session"], oc["within_24h_after"]) == (1, 0, 0)
    assert ty["therapy_id"] == therapy_id(clinic, "natalizumab")
    # the overall rate counts every active reaction, delayed ones included (issue 6)
    overall = {r["therapy"]: r["with_reaction"] for r in reaction_rates(clinic, MARCH).to_dict("records")}
    assert overall == {"Tysabri": 4, "Ocrevus": 0}
    # filters apply as in metrics: another month is empty, a therapy filter keeps one row
    assert aftercare.delayed_reaction_rates(clinic, TrendFilters(date(2025, 4, 1), date(2025, 4, 30))).empty
    only = aftercare.delayed_reaction_rates(
        clinic, TrendFilters(MARCH.start, MARCH.end, therapy_ids=(therapy_id(clinic, "natalizumab"),))
    )
    assert only["therapy"].tolist() == ["Tysabri"]


def test_delayed_rates_on_an_empty_database(clinic):
    frame = aftercare.delayed_reaction_rates(clinic, MARCH)
    assert frame.empty and list(frame.columns) == list(aftercare.DELAYED_RATE_COLUMNS)
