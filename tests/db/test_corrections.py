"""Corrections, entered-in-error, late entries and addenda (issue 5, docs/clinical-basis.md §12), on SQLite
and (when configured) PostgreSQL.

A correction appends a new version and keeps the original, marked corrected, with
who, when and why; entered-in-error keeps the row but takes it out of every view
and summary; after discharge only an addendum may be added. Every refused write is
checked against a snapshot of every table: it must leave the database as it was.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from db.models import Addendum, InfusionSession, Premedication, RateChange, Reaction, SessionCorrection, VitalSign
from infusion.accounts.actor import Actor
from infusion.errors import ConfirmationRequired, ConflictError, PermissionDenied, StateError, ValidationError
from infusion.reads import sessions as views
from infusion.services import corrections, entries, sessions
from infusion.services.setup import add_staff
from tests.helpers import (
    ADMIN,
    ago,
    audit_count,
    audits_since,
    new_session,
    normal_vitals,
    row,
    snapshot,
    staff_actor,
    walk,
)

# ---------------------------------------------------------------- builders


def _actor(user) -> Actor:  # type: ignore[no-untyped-def]
    return Actor(user.id, user.display_name, user.role)


@dataclass(frozen=True)
class Staff:
    author: Actor
    other: Actor
    charge: Actor
    manager: Actor


@pytest.fixture
def staff(db) -> Staff:
    return Staff(
        author=_actor(add_staff(db, ADMIN, "Nora Author", "nurse")),
        other=_actor(add_staff(db, ADMIN, "Otto Other", "nurse")),
        charge=_actor(add_staff(db, ADMIN, "Cara Charge", "charge_nurse")),
        manager=_actor(add_staff(db, ADMIN, "Mona Manager", "manager")),
    )


@dataclass
class Chart:
    sid: int
    t0: datetime
    checkin_vital: int
    vital: int
    reaction: int
    premed: int | None
    rate: int

    def at(self, minutes: float) -> datetime:
        return self.t0 + timedelta(minutes=minutes)


def chart(
    db,
    author: Actor,
    *,
    to: str = "infusing",
    therapy: str = "ocrelizumab_iv",
    resolved: bool = False,
    t0: datetime | None = None,
) -> Chart:
    """A session charted by `author`: check-in t0 (vitals), premedication +10, IV start +20 at 100 mL/h,
    rate change to 90 mL/h +30, vitals (pulse 80) +40, reaction grade 2 +50 (resolved +60 if asked),
    then IV stop +80 and discharge now when `to` says so."""
    t0 = t0 or ago(300).replace(second=0, microsecond=0)
    sid = new_session(db, author, therapy)
    walk(db, author, sid, "infusing", t0=t0)
    rate = entries.change_rate(db, author, sid, 90, at=t0 + timedelta(minutes=30))
    vital = entries.record_vitals(db, author, sid, normal_vitals(pulse=80), taken_at=t0 + timedelta(minutes=40))
    reaction = entries.record_reaction(
        db,
        author,
        sid,
        symptoms=["fever"],
        grade=2,
        actions=["paused"],
        onset_at=t0 + timedelta(minutes=50),
        resolved_at=t0 + timedelta(minutes=60) if resolved else None,
    )
    if to in ("observation", "discharged"):
        sessions.stop_iv(db, author, sid, expected_version=None, at=t0 + timedelta(minutes=80))
    if to == "discharged":
        sessions.discharge(db, author, sid, expected_version=None)
    with db.reading() as s:
        checkin_vital = s.scalars(
            select(VitalSign.id).where(VitalSign.session_id == sid, VitalSign.phase == "pre")
        ).one()
        premed = s.scalars(select(Premedication.id).where(Premedication.session_id == sid)).one_or_none()
    return Chart(sid, t0, checkin_vital, vital.id, reaction.id, premed, rate.id)


@contextmanager
def unchanged(db):
    before = snapshot(db)
    yield
    after = snapshot(db)
    for table in before:
        assert after[table] == before[table], f"table {table} changed by a refused write"


def get(db, model, entry_id):
    with db.reading() as s:
        return s.get(model, entry_id)


def rows_of(db, model, session_id):
    with db.reading() as s:
        return list(s.scalars(select(model).where(model.session_id == session_id).order_by(model.id)))


def successor(db, model, entry_id):
    with db.reading() as s:
        return s.scalars(select(model).where(model.replaces_id == entry_id)).one()


def table_rows(frame, **match) -> list[dict]:
    """The records of a views table whose columns equal the given values."""
    return [r for r in frame.to_dict("records") if all(r[k] == v for k, v in match.items())]


# The five writes that change an entry or a session time, each with a valid reason.
def _correct_vitals(db, actor, c, reason="typo: pulse 88 not 80"):
    return corrections.correct_vitals(db, actor, c.vital, normal_vitals(pulse=88), reason=reason)


def _correct_reaction(db, actor, c, reason="grade 3: needed hydrocortisone"):
    return corrections.correct_reaction(
        db,
        actor,
        c.reaction,
        reason=reason,
        symptoms=["fever", "chills"],
        grade=3,
        actions=["paused", "medication_given"],
        medication_given="Hydrocortisone 100 mg IV",
    )


def _correct_premed(db, actor, c, reason="dose was 125 mg"):
    return corrections.correct_premedication(
        db, actor, c.premed, reason=reason, drug="Methylprednisolone", dose="125 mg"
    )


def _mark_in_error(db, actor, c, reason="wrong patient"):
    return corrections.mark_entered_in_error(db, actor, "reaction", c.reaction, reason)


def _fix_time(db, actor, c, reason="clock on the pump was wrong"):
    return corrections.correct_session_time(
        db, actor, c.sid, "iv_started_at", c.at(25), reason=reason, expected_version=None
    )


WRITES = {
    "correct_vitals": _correct_vitals,
    "correct_reaction": _correct_reaction,
    "correct_premedication": _correct_premed,
    "mark_entered_in_error": _mark_in_error,
    "correct_session_time": _fix_time,
}


# ---------------------------------------------------------------- a correction keeps the original


@pytest.mark.parametrize("who", ["author", "charge"])
def test_vitals_correction_keeps_the_original_and_adds_a_linked_version(db, staff, who):
    c = chart(db, staff.author)
    corrector = getattr(staff, who)
    new = corrections.correct_vitals(db, corrector, c.vital, normal_vitals(pulse=88), reason="typo: 88 not 80")

    old = get(db, VitalSign, c.vital)
    assert old.status == "corrected"
    assert (old.pulse, old.systolic, old.taken_at) == (80, 124, c.at(40))  # values untouched
    assert old.entered_by_id == staff.author.user_id and old.replaces_id is None and old.correction_reason is None

    new = get(db, VitalSign, new.id)
    assert new.id != old.id
    assert new.status == "active" and new.replaces_id == old.id
    assert new.entered_by_id == corrector.user_id
    assert new.correction_reason == "typo: 88 not 80"
    assert new.pulse == 88 and new.taken_at == old.taken_at and new.phase == old.phase == "infusion"
    assert len(rows_of(db, VitalSign, c.sid)) == 3  # check-in, original, correction


def test_vitals_correction_can_move_the_time_and_the_phase_follows(db, staff):
    c = chart(db, staff.author, to="observation")
    new = corrections.correct_vitals(
        db, staff.author, c.vital, normal_vitals(pulse=80), taken_at=c.at(85), reason="taken after the stop, not before"
    )
    assert get(db, VitalSign, new.id).phase == "observation"
    assert get(db, VitalSign, c.vital).phase == "infusion"


def test_reaction_correction_keeps_the_original(db, staff):
    c = chart(db, staff.author)
    new = _correct_reaction(db, staff.charge, c)
    old = get(db, Reaction, c.reaction)
    assert old.status == "corrected" and old.grade == 2 and old.symptoms == ["fever"]
    new = get(db, Reaction, new.id)
    assert (new.status, new.replaces_id, new.grade) == ("active", c.reaction, 3)
    assert new.entered_by_id == staff.charge.user_id
    assert new.correction_reason == "grade 3: needed hydrocortisone"
    assert new.onset_at == old.onset_at  # the onset is kept when not corrected


def test_premedication_correction_keeps_the_original(db, staff):
    c = chart(db, staff.author)
    new = _correct_premed(db, staff.author, c)
    old = get(db, Premedication, c.premed)
    assert (old.status, old.dose) == ("corrected", "100 mg")
    new = get(db, Premedication, new.id)
    assert (new.status, new.replaces_id, new.dose, new.given_at) == ("active", c.premed, "125 mg", old.given_at)
    assert new.entered_by_id == staff.author.user_id and new.correction_reason == "dose was 125 mg"
    detail = views.session_detail(db, staff.author, c.sid)
    assert not detail.needs_premedication  # the corrected premedication still counts as given
    table = views.premeds_table(detail)
    assert table_rows(table, Dose="100 mg")[0]["Status"] == "corrected"
    assert table_rows(table, Dose="125 mg")[0]["Status"] == "active"


# ---------------------------------------------------------------- every view follows the correction


def test_views_show_the_new_vitals_as_active_and_the_old_as_corrected(db, staff):
    c = chart(db, staff.author)
    _correct_vitals(db, staff.author, c)
    detail = views.session_detail(db, staff.author, c.sid)
    table = views.vitals_table(detail)
    assert [r["Status"] for r in table_rows(table, Pulse=80)] == ["corrected"]
    assert [r["Status"] for r in table_rows(table, Pulse=88)] == ["active"]
    assert table_rows(table, Pulse=88)[0]["Entered by"] == "Nora Author"


def test_views_show_the_new_reaction_as_active_and_the_old_as_corrected(db, staff):
    c = chart(db, staff.author)
    new = _correct_reaction(db, staff.author, c)
    detail = views.session_detail(db, staff.author, c.sid)
    table = views.reactions_table(detail)
    assert [r["Status"] for r in table_rows(table, Grade=2)] == ["corrected"]
    assert [r["Status"] for r in table_rows(table, Grade=3)] == ["active"]
    assert [r.id for r in detail.open_reactions] == [new.id]  # one open reaction, the current version


def test_reaction_grade_correction_updates_the_session_summaries(db, staff):
    c = chart(db, staff.author)
    entries.record_reaction(
        db,
        staff.author,
        c.sid,
        symptoms=["rash"],
        grade=1,
        actions=["observed"],
        onset_at=c.at(55),
        resolved_at=c.at(58),
    )
    assert (row(db, c.sid).reaction_count, row(db, c.sid).worst_grade) == (2, 2)
    _correct_reaction(db, staff.author, c)  # grade 2 → 3
    assert (row(db, c.sid).reaction_count, row(db, c.sid).worst_grade) == (2, 3)
    newest = successor(db, Reaction, c.reaction)
    corrections.correct_reaction(
        db,
        staff.charge,
        newest.id,
        reason="it was grade 1 after all",
        symptoms=["fever"],
        grade=1,
        actions=["observed"],
    )  # 3 → 1: the worst grade comes down again
    assert (row(db, c.sid).reaction_count, row(db, c.sid).worst_grade) == (2, 1)


def test_correcting_the_check_in_vitals_moves_the_baseline(db, staff):
    c = chart(db, staff.author, to="infusing")
    # with the recorded baseline of 124, a systolic of 115 is no drop worth flagging
    assert not entries.preview_vitals(db, staff.author, c.sid, normal_vitals(systolic=115)).flags
    new = corrections.correct_vitals(
        db, staff.author, c.checkin_vital, normal_vitals(systolic=150, diastolic=85), reason="baseline BP was 150/85"
    )
    assert row(db, c.sid).baseline_systolic == 150
    assert get(db, VitalSign, new.id).phase == "pre"
    # every later set is now compared with the corrected baseline: 150 → 115 is a drop of 35
    flags = entries.preview_vitals(db, staff.author, c.sid, normal_vitals(systolic=115)).flags
    assert any("baseline" in f.message.lower() for f in flags), [f.message for f in flags]


def test_the_check_in_set_stays_a_full_set_when_corrected(db, staff):
    c = chart(db, staff.author, to="infusing")
    with unchanged(db), pytest.raises(ValidationError):
        corrections.correct_vitals(
            db, staff.author, c.checkin_vital, normal_vitals(systolic=None), reason="no BP was taken"
        )


def test_last_vitals_time_follows_corrections_and_errors(db, staff):
    c = chart(db, staff.author)
    late = entries.record_vitals(db, staff.author, c.sid, normal_vitals(pulse=77), taken_at=c.at(70))
    assert row(db, c.sid).last_vitals_at == c.at(70)
    moved = corrections.correct_vitals(
        db, staff.author, late.id, normal_vitals(pulse=77), taken_at=c.at(55), reason="taken at :55, entered as :70"
    )
    assert row(db, c.sid).last_vitals_at == c.at(55)
    corrections.mark_entered_in_error(db, staff.author, "vital_sign", moved.id, "duplicate of the :40 set")
    assert row(db, c.sid).last_vitals_at == c.at(40)


def test_next_vitals_due_uses_the_corrected_time(db, staff):
    """Ocrevus schedule: 15 min after start (+35), at the rate change (+30), then every 60 min after the last set."""
    c = chart(db, staff.author)
    detail = views.session_detail(db, staff.author, c.sid)
    assert (detail.vitals_due.due_at, detail.vitals_due.reason) == (c.at(100), "every 60 min")
    moved = corrections.correct_vitals(
        db, staff.author, c.vital, normal_vitals(pulse=80), taken_at=c.at(50), reason="taken at :50"
    )
    detail = views.session_detail(db, staff.author, c.sid)
    assert (detail.vitals_due.due_at, detail.vitals_due.reason) == (c.at(110), "every 60 min")
    card = next(x for x in views.today_sessions(db, staff.author) if x.id == c.sid)
    assert card.vitals_due.due_at == c.at(110)

    corrections.mark_entered_in_error(db, staff.author, "vital_sign", moved.id, "wrong patient")
    detail = views.session_detail(db, staff.author, c.sid)
    assert (detail.vitals_due.due_at, detail.vitals_due.reason) == (c.at(30), "rate change")
    card = next(x for x in views.today_sessions(db, staff.author) if x.id == c.sid)
    assert card.vitals_due.due_at == c.at(30) and card.overdue_minutes > 0


# ---------------------------------------------------------------- entered in error


def test_reaction_entered_in_error_leaves_summaries_and_views_but_stays(db, staff):
    c = chart(db, staff.author)
    assert (row(db, c.sid).reaction_count, row(db, c.sid).worst_grade) == (1, 2)
    card = next(x for x in views.today_sessions(db, staff.author) if x.id == c.sid)
    assert card.open_reactions == 1

    corrections.mark_entered_in_error(db, staff.author, "reaction", c.reaction, "charted on the wrong patient")

    stored = get(db, Reaction, c.reaction)
    assert stored.status == "entered_in_error" and stored.correction_reason == "charted on the wrong patient"
    assert stored.grade == 2 and stored.symptoms == ["fever"]  # values kept
    assert (row(db, c.sid).reaction_count, row(db, c.sid).worst_grade) == (0, None)
    detail = views.session_detail(db, staff.author, c.sid)
    assert detail.open_reactions == []
    assert [r["Status"] for r in views.reactions_table(detail).to_dict("records")] == ["entered in error"]
    card = next(x for x in views.today_sessions(db, staff.author) if x.id == c.sid)
    assert card.open_reactions == 0 and not any("Reaction open" in a for a in card.alerts)


def test_reaction_in_error_leaves_the_count_but_not_the_other_reactions(db, staff):
    c = chart(db, staff.author)
    entries.record_reaction(
        db,
        staff.author,
        c.sid,
        symptoms=["rash"],
        grade=1,
        actions=["observed"],
        onset_at=c.at(55),
        resolved_at=c.at(58),
    )
    corrections.mark_entered_in_error(db, staff.author, "reaction", c.reaction, "duplicate")
    assert (row(db, c.sid).reaction_count, row(db, c.sid).worst_grade) == (1, 1)


def test_vitals_entered_in_error_stay_in_the_table_but_out_of_the_schedule(db, staff):
    c = chart(db, staff.author)
    corrections.mark_entered_in_error(db, staff.author, "vital_sign", c.vital, "wrong chair")
    stored = get(db, VitalSign, c.vital)
    assert (stored.status, stored.correction_reason, stored.pulse) == ("entered_in_error", "wrong chair", 80)
    detail = views.session_detail(db, staff.author, c.sid)
    assert [r["Status"] for r in table_rows(views.vitals_table(detail), Pulse=80)] == ["entered in error"]
    assert row(db, c.sid).last_vitals_at == c.t0  # only the check-in set is left
    assert detail.vitals_due.due_at == c.at(30)


def test_rate_change_entered_in_error_no_longer_asks_for_vitals(db, staff):
    c = chart(db, staff.author)
    corrections.mark_entered_in_error(db, staff.author, "vital_sign", c.vital, "wrong chair")
    assert views.session_detail(db, staff.author, c.sid).vitals_due.reason == "rate change"
    corrections.mark_entered_in_error(db, staff.author, "rate_change", c.rate, "rate was never changed")
    detail = views.session_detail(db, staff.author, c.sid)
    assert (detail.vitals_due.due_at, detail.vitals_due.reason) == (c.at(35), "15 min after start")
    assert table_rows(views.rates_table(detail), Event="Rate change")[0]["Status"] == "entered in error"


def test_iv_start_and_stop_are_corrected_as_times_not_marked_in_error(db, staff):
    c = chart(db, staff.author)
    start = next(r for r in rows_of(db, RateChange, c.sid) if r.kind == "start")
    with unchanged(db), pytest.raises(StateError):
        corrections.mark_entered_in_error(db, staff.author, "rate_change", start.id, "not started")


def test_an_open_reaction_in_error_does_not_hold_the_discharge(db, staff):
    c = chart(db, staff.author, to="observation")
    corrections.mark_entered_in_error(db, staff.author, "reaction", c.reaction, "wrong patient")
    sessions.discharge(db, staff.author, c.sid, expected_version=None)
    assert row(db, c.sid).status == "discharged"


def test_premedication_in_error_means_none_was_given(db, staff):
    c = chart(db, staff.author)
    corrections.mark_entered_in_error(db, staff.author, "premedication", c.premed, "given to the next patient")
    detail = views.session_detail(db, staff.author, c.sid)
    assert detail.needs_premedication  # Ocrevus calls for it, and the only record is in error
    assert views.premeds_table(detail).to_dict("records")[0]["Status"] == "entered in error"


# ---------------------------------------------------------------- who may correct


@pytest.mark.parametrize("write", list(WRITES))
def test_another_nurse_may_not_correct(db, staff, write):
    c = chart(db, staff.author)
    with unchanged(db), pytest.raises(PermissionDenied):
        WRITES[write](db, staff.other, c)


@pytest.mark.parametrize("write", list(WRITES))
def test_a_manager_may_not_correct(db, staff, write):
    c = chart(db, staff.author)
    with unchanged(db), pytest.raises(PermissionDenied):
        WRITES[write](db, staff.manager, c)


@pytest.mark.parametrize("write", list(WRITES))
@pytest.mark.parametrize("who", ["author", "charge"])
def test_the_author_and_a_charge_nurse_may_correct(db, staff, write, who):
    c = chart(db, staff.author)
    WRITES[write](db, getattr(staff, who), c)


def test_another_nurse_may_not_correct_the_charge_nurses_correction_either(db, staff):
    c = chart(db, staff.author)
    fixed = _correct_vitals(db, staff.charge, c)
    with unchanged(db), pytest.raises(PermissionDenied):
        corrections.correct_vitals(db, staff.other, fixed.id, normal_vitals(pulse=80), reason="it was 80")
    with unchanged(db), pytest.raises(PermissionDenied):
        corrections.mark_entered_in_error(db, staff.other, "vital_sign", fixed.id, "wrong patient")
    corrections.correct_vitals(db, staff.charge, fixed.id, normal_vitals(pulse=86), reason="recounted: 86")


# ---------------------------------------------------------------- after discharge: addendum only


@pytest.mark.parametrize("write", list(WRITES))
@pytest.mark.parametrize("who", ["author", "charge"])
def test_a_discharged_session_is_not_corrected(db, staff, write, who):
    c = chart(db, staff.author, to="discharged", resolved=True)
    with unchanged(db), pytest.raises(StateError, match="addendum"):
        WRITES[write](db, getattr(staff, who), c)


def test_a_discharged_session_takes_an_addendum(db, staff):
    c = chart(db, staff.author, to="discharged", resolved=True)
    before = audit_count(db)
    note = corrections.add_addendum(db, staff.other, c.sid, "  Patient called: mild headache that evening.  ")
    stored = get(db, Addendum, note.id)
    assert stored.text == "Patient called: mild headache that evening."
    assert stored.author_id == staff.other.user_id and stored.session_id == c.sid and stored.written_at is not None
    fixes, addenda = corrections.session_amendments(db, staff.author, c.sid)
    assert fixes == [] and [a.id for a in addenda] == [note.id]
    events = audits_since(db, before)
    assert [(e.action, e.entity, e.session_id, e.user_id) for e in events] == [
        ("addendum", "session", c.sid, staff.other.user_id)
    ]
    assert events[0].after["text"] == "Patient called: mild headache that evening."
    assert row(db, c.sid).status == "discharged"


def test_an_addendum_needs_text(db, staff):
    c = chart(db, staff.author, to="discharged", resolved=True)
    with unchanged(db), pytest.raises(ValidationError):
        corrections.add_addendum(db, staff.author, c.sid, "   ")


def test_a_manager_may_not_add_an_addendum(db, staff):
    c = chart(db, staff.author, to="discharged", resolved=True)
    with unchanged(db), pytest.raises(PermissionDenied):
        corrections.add_addendum(db, staff.manager, c.sid, "looks fine")


# ---------------------------------------------------------------- a reason is required


@pytest.mark.parametrize("write", list(WRITES))
@pytest.mark.parametrize("reason", ["", "   ", None])
def test_a_reason_is_required(db, staff, write, reason):
    c = chart(db, staff.author)
    with unchanged(db), pytest.raises(ValidationError) as exc:
        WRITES[write](db, staff.author, c, reason=reason)
    assert "reason" in exc.value.problems


# ---------------------------------------------------------------- only the current version changes


@pytest.mark.parametrize("write", ["correct_vitals", "correct_reaction", "correct_premedication"])
def test_an_already_corrected_entry_is_not_corrected_again(db, staff, write):
    c = chart(db, staff.author)
    WRITES[write](db, staff.author, c)
    with unchanged(db), pytest.raises(StateError):
        WRITES[write](db, staff.author, c, reason="second try on the old version")
    entity, entry_id = {
        "correct_vitals": ("vital_sign", c.vital),
        "correct_reaction": ("reaction", c.reaction),
        "correct_premedication": ("premedication", c.premed),
    }[write]
    with unchanged(db), pytest.raises(StateError):
        corrections.mark_entered_in_error(db, staff.author, entity, entry_id, "old version")


def test_an_entry_in_error_is_not_corrected_or_marked_again(db, staff):
    c = chart(db, staff.author)
    _mark_in_error(db, staff.author, c)
    with unchanged(db), pytest.raises(StateError):
        _correct_reaction(db, staff.charge, c)
    with unchanged(db), pytest.raises(StateError):
        _mark_in_error(db, staff.charge, c, reason="again")


def test_a_correction_that_fails_validation_changes_nothing(db, staff):
    c = chart(db, staff.author)
    with unchanged(db), pytest.raises(ValidationError):
        corrections.correct_vitals(db, staff.author, c.vital, normal_vitals(pulse=400), reason="typo")
    with unchanged(db), pytest.raises(ConfirmationRequired):
        corrections.correct_vitals(db, staff.author, c.vital, normal_vitals(pulse=130), reason="recounted")
    with unchanged(db), pytest.raises(ValidationError):
        corrections.correct_vitals(
            db, staff.author, c.vital, normal_vitals(), taken_at=c.at(-10), reason="before check-in"
        )
    with unchanged(db), pytest.raises(ValidationError):
        corrections.correct_reaction(
            db, staff.author, c.reaction, reason="anaphylaxis", symptoms=["anaphylaxis"], grade=2, actions=["stopped"]
        )
    with unchanged(db), pytest.raises(ValidationError):
        corrections.mark_entered_in_error(db, staff.author, "patient", 1, "not an entry")


def test_a_reaction_correction_naming_a_notified_provider_needs_the_name(db, staff):
    c = chart(db, staff.author)
    with unchanged(db), pytest.raises(ValidationError) as exc:
        corrections.correct_reaction(
            db,
            staff.author,
            c.reaction,
            reason="provider was called",
            symptoms=["fever"],
            grade=2,
            actions=["paused"],
            provider_notified=True,
            provider_name="  ",
        )
    assert "provider_name" in exc.value.problems


# ---------------------------------------------------------------- session times


def test_iv_stop_correction_keeps_the_original_and_recomputes_the_infusion(db, staff):
    """Tysabri: about 60 min, flagged beyond 60 + 15 min. The stop moves from +80 to +110 (90 min)."""
    c = chart(db, staff.author, to="observation", therapy="natalizumab")
    in_between = entries.record_vitals(db, staff.author, c.sid, normal_vitals(pulse=75), taken_at=c.at(95))
    assert get(db, VitalSign, in_between.id).phase == "observation"
    assert (row(db, c.sid).infusion_minutes, row(db, c.sid).long_infusion_flag) == (60.0, False)
    old_stop = next(r for r in rows_of(db, RateChange, c.sid) if r.kind == "stop")

    fixed = corrections.correct_session_time(
        db,
        staff.author,
        c.sid,
        "iv_stopped_at",
        c.at(110),
        reason="pump stopped at :10, charted early",
        expected_version=None,
    )

    assert fixed.iv_stopped_at == c.at(110)
    stored = row(db, c.sid)
    assert (stored.infusion_minutes, stored.long_infusion_flag) == (90.0, True)
    assert get(db, VitalSign, in_between.id).phase == "infusion"  # phases follow the session times
    assert get(db, VitalSign, c.checkin_vital).phase == "pre"
    (kept,) = rows_of(db, SessionCorrection, c.sid)
    assert kept.field == "iv_stopped_at" and kept.reason == "pump stopped at :10, charted early"
    assert datetime.fromisoformat(kept.old_value) == c.at(80)
    assert datetime.fromisoformat(kept.new_value) == c.at(110)
    assert kept.corrected_by_id == staff.author.user_id
    # the rate log mirrors it: the old stop row stays, corrected; a new active one replaces it
    old_stop = get(db, RateChange, old_stop.id)
    assert (old_stop.status, old_stop.at) == ("corrected", c.at(80))
    new_stop = successor(db, RateChange, old_stop.id)
    assert (new_stop.kind, new_stop.status, new_stop.at) == ("stop", "active", c.at(110))
    assert new_stop.correction_reason == "pump stopped at :10, charted early"
    assert new_stop.entered_by_id == staff.author.user_id
    fixes, _ = corrections.session_amendments(db, staff.author, c.sid)
    assert [f.id for f in fixes] == [kept.id]
    rates = views.rates_table(views.session_detail(db, staff.author, c.sid))
    assert [r["Status"] for r in table_rows(rates, Event="Stop")] == ["corrected", "active"]


def test_iv_start_correction_recomputes_minutes_and_mirrors_the_start_row(db, staff):
    c = chart(db, staff.author, to="observation", therapy="natalizumab")
    entries_before = rows_of(db, VitalSign, c.sid)
    corrections.correct_session_time(
        db,
        staff.charge,
        c.sid,
        "iv_started_at",
        c.at(10),
        reason="started at :10",
        expected_version=row(db, c.sid).version,
    )
    stored = row(db, c.sid)
    assert stored.iv_started_at == c.at(10)
    assert (stored.infusion_minutes, stored.long_infusion_flag) == (70.0, False)
    starts = [r for r in rows_of(db, RateChange, c.sid) if r.kind == "start"]
    assert [(r.status, r.at) for r in starts] == [("corrected", c.at(20)), ("active", c.at(10))]
    assert starts[1].replaces_id == starts[0].id and starts[1].rate_ml_h == starts[0].rate_ml_h == 100
    assert len(rows_of(db, VitalSign, c.sid)) == len(entries_before)


def test_check_in_correction_keeps_the_original(db, staff):
    c = chart(db, staff.author, to="infusing")
    corrections.correct_session_time(
        db, staff.author, c.sid, "checked_in_at", c.at(-5), reason="arrived 5 min earlier", expected_version=None
    )
    assert row(db, c.sid).checked_in_at == c.at(-5)
    (kept,) = rows_of(db, SessionCorrection, c.sid)
    assert (kept.field, datetime.fromisoformat(kept.old_value)) == ("checked_in_at", c.t0)


@pytest.mark.parametrize(
    "field, minutes",
    [
        ("iv_started_at", 90),  # after the IV stop (+80)
        ("iv_started_at", 80),  # equal to the IV stop: no infusion at all
        ("iv_stopped_at", 15),  # before the IV start (+20)
        ("iv_stopped_at", 20),  # equal to the IV start
        ("checked_in_at", 25),  # after the IV start
        ("checked_in_at", 1),  # after the check-in vitals (t0)
    ],
)
def test_out_of_order_session_times_are_refused(db, staff, field, minutes):
    c = chart(db, staff.author, to="observation")
    with unchanged(db), pytest.raises(ValidationError) as exc:
        corrections.correct_session_time(
            db, staff.author, c.sid, field, c.at(minutes), reason="typo", expected_version=None
        )
    assert field in exc.value.problems


def test_an_infusion_over_12_hours_is_refused(db, staff):
    """Check-in 13 h 20 min ago, IV start +20, stop +80: a stop 12 h 01 after the start is impossible."""
    c = chart(db, staff.author, to="observation", therapy="natalizumab", t0=ago(800).replace(second=0, microsecond=0))
    with unchanged(db), pytest.raises(ValidationError) as exc:
        corrections.correct_session_time(
            db, staff.author, c.sid, "iv_stopped_at", c.at(20 + 12 * 60 + 1), reason="typo", expected_version=None
        )
    assert "12" in str(exc.value)
    # the same through the IV start, once the check-in is early enough for it
    corrections.correct_session_time(
        db, staff.author, c.sid, "checked_in_at", c.at(-700), reason="arrived much earlier", expected_version=None
    )
    with unchanged(db), pytest.raises(ValidationError) as exc:
        corrections.correct_session_time(
            db, staff.author, c.sid, "iv_started_at", c.at(80 - 12 * 60 - 1), reason="typo", expected_version=None
        )
    assert "12" in str(exc.value)
    corrections.correct_session_time(
        db, staff.author, c.sid, "iv_stopped_at", c.at(20 + 12 * 60), reason="exactly 12 h", expected_version=None
    )
    assert row(db, c.sid).infusion_minutes == 720.0


def test_session_time_correction_refusals(db, staff):
    c = chart(db, staff.author, to="infusing")
    with unchanged(db), pytest.raises(StateError):  # no IV stop yet
        corrections.correct_session_time(
            db, staff.author, c.sid, "iv_stopped_at", c.at(70), reason="typo", expected_version=None
        )
    with unchanged(db), pytest.raises(ValidationError):
        corrections.correct_session_time(
            db, staff.author, c.sid, "discharged_at", c.at(70), reason="typo", expected_version=None
        )
    stale = row(db, c.sid).version - 1
    with unchanged(db), pytest.raises(ConflictError):
        corrections.correct_session_time(
            db, staff.author, c.sid, "iv_started_at", c.at(25), reason="typo", expected_version=stale
        )
    with unchanged(db), pytest.raises(ValidationError):  # in the future
        corrections.correct_session_time(
            db, staff.author, c.sid, "iv_started_at", ago(-60), reason="typo", expected_version=None
        )


def test_iv_stop_cannot_move_before_a_rate_change(db, staff):
    c = chart(db, staff.author, to="observation")  # rate change at +30
    with unchanged(db), pytest.raises(ValidationError):
        corrections.correct_session_time(
            db, staff.author, c.sid, "iv_stopped_at", c.at(25), reason="typo", expected_version=None
        )


def test_iv_start_cannot_move_after_a_rate_change(db, staff):
    c = chart(db, staff.author, to="observation")  # rate change at +30
    with unchanged(db), pytest.raises(ValidationError):
        corrections.correct_session_time(
            db, staff.author, c.sid, "iv_started_at", c.at(35), reason="typo", expected_version=None
        )


def test_check_in_correction_of_a_deferred_session_recomputes_chair_time(db, staff):
    t0 = ago(120).replace(second=0, microsecond=0)
    sid = new_session(db, staff.author, "natalizumab")
    walk(db, staff.author, sid, "checked_in", t0=t0)
    sessions.defer(db, staff.author, sid, "Fever", expected_version=None, at=t0 + timedelta(minutes=30))
    assert row(db, sid).chair_minutes == 30.0
    corrections.correct_session_time(
        db,
        staff.author,
        sid,
        "checked_in_at",
        t0 - timedelta(minutes=10),
        reason="arrived 10 min earlier",
        expected_version=None,
    )
    assert row(db, sid).chair_minutes == 40.0


# ---------------------------------------------------------------- history


def test_entry_history_is_the_whole_chain_from_any_version(db, staff):
    c = chart(db, staff.author)
    second = corrections.correct_vitals(db, staff.author, c.vital, normal_vitals(pulse=88), reason="typo: 88")
    third = corrections.correct_vitals(db, staff.charge, second.id, normal_vitals(pulse=86), reason="recount: 86")
    ids = [c.vital, second.id, third.id]
    for any_version in ids:
        history = corrections.entry_history(db, staff.other, "vital_sign", any_version)
        assert [v.id for v in history] == ids
        assert [v.status for v in history] == ["corrected", "corrected", "active"]
        assert [v.reason for v in history] == [None, "typo: 88", "recount: 86"]
        assert [v.values["pulse"] for v in history] == [80, 88, 86]
        assert [v.entered_by_id for v in history] == [staff.author.user_id, staff.author.user_id, staff.charge.user_id]
    corrections.mark_entered_in_error(db, staff.charge, "vital_sign", third.id, "wrong patient after all")
    history = corrections.entry_history(db, staff.author, "vital_sign", c.vital)
    assert [v.status for v in history] == ["corrected", "corrected", "entered_in_error"]
    assert history[-1].reason == "wrong patient after all"


def test_entry_history_of_an_uncorrected_entry_is_itself(db, staff):
    c = chart(db, staff.author)
    (only,) = corrections.entry_history(db, staff.author, "reaction", c.reaction)
    assert (only.id, only.status, only.reason, only.values["grade"]) == (c.reaction, "active", None, 2)


# ---------------------------------------------------------------- one audit event per write


@pytest.mark.parametrize(
    "write, action, entity",
    [
        ("correct_vitals", "correct", "vital_sign"),
        ("correct_reaction", "correct", "reaction"),
        ("correct_premedication", "correct", "premedication"),
        ("mark_entered_in_error", "entered_in_error", "reaction"),
        ("correct_session_time", "correct_time", "session"),
    ],
)
@pytest.mark.parametrize("who", ["author", "charge"])
def test_each_write_is_one_audit_event_with_its_reason(db, staff, write, action, entity, who):
    c = chart(db, staff.author)
    actor = getattr(staff, who)
    before = audit_count(db)
    result = WRITES[write](db, actor, c, reason="the reason given")
    events = audits_since(db, before)
    assert len(events) == 1, [(e.action, e.entity) for e in events]
    (event,) = events
    assert (event.action, event.entity, event.reason) == (action, entity, "the reason given")
    assert (event.user_id, event.user_name, event.session_id) == (actor.user_id, actor.name, c.sid)
    assert event.patient_id == row(db, c.sid).patient_id
    if write.startswith("correct_") and write != "correct_session_time":
        original = {"correct_vitals": c.vital, "correct_reaction": c.reaction, "correct_premedication": c.premed}
        assert event.entity_id == result.id
        assert event.before["id"] == original[write] and event.after["id"] == result.id
        assert event.after["status"] == "active" and event.after["replaces_id"] == original[write]
    if write == "correct_vitals":
        assert (event.before["pulse"], event.after["pulse"]) == (80, 88)
    if write == "mark_entered_in_error":
        assert event.entity_id == c.reaction and event.after == {"status": "entered_in_error"}
    if write == "correct_session_time":
        assert event.entity_id == c.sid
        assert datetime.fromisoformat(event.before["iv_started_at"]) == c.at(20)
        assert datetime.fromisoformat(event.after["iv_started_at"]) == c.at(25)


# ---------------------------------------------------------------- late entries


def _late_entry(db, actor, sid, kind, minutes):
    """Record one entry of `kind` whose clinical time is `minutes` before now; returns (table, match)."""
    at = ago(minutes)
    if kind == "vitals":
        entries.record_vitals(db, actor, sid, normal_vitals(pulse=91), taken_at=at)
        return views.vitals_table, {"Pulse": 91}, "Time"
    if kind == "premedication":
        entries.record_premedication(db, actor, sid, drug="Diphenhydramine", dose="25 mg", given_at=at)
        return views.premeds_table, {"Drug": "Diphenhydramine"}, "Time"
    if kind == "reaction":
        entries.record_reaction(db, actor, sid, symptoms=["rash"], grade=1, actions=["observed"], onset_at=at)
        return views.reactions_table, {"Grade": 1}, "Onset"
    entries.change_rate(db, actor, sid, 93, at=at)
    return views.rates_table, {"Rate mL/h": 93}, "Time"


@pytest.mark.parametrize("kind", ["vitals", "premedication", "reaction", "rate"])
@pytest.mark.parametrize("minutes, late", [(16, True), (25, True), (14, False), (2, False)])
def test_an_entry_more_than_15_minutes_after_its_time_is_a_late_entry(db, staff, kind, minutes, late):
    sid = new_session(db, staff.author, "ocrelizumab_iv")
    walk(db, staff.author, sid, "infusing", t0=ago(120))
    table, match, column = _late_entry(db, staff.author, sid, kind, minutes)
    (record,) = table_rows(table(views.session_detail(db, staff.author, sid)), **match)
    assert record[column].endswith(" (late entry)") is late, record[column]


# ---------------------------------------------------------------- metrics leave entries in error


def test_a_reaction_in_error_no_longer_counts_in_the_reaction_rate(db, staff):
    metrics = pytest.importorskip("infusion.reads.trends")
    if not hasattr(metrics, "reaction_rates") or not hasattr(metrics, "TrendFilters"):
        pytest.skip("infusion.reads.trends.reaction_rates(db, TrendFilters(...)) is not there yet")
    kept = chart(db, staff.author, to="observation", therapy="natalizumab", resolved=True)
    wrong = chart(db, staff.author, to="observation", therapy="natalizumab", resolved=True)
    corrections.mark_entered_in_error(db, staff.author, "reaction", wrong.reaction, "wrong patient")
    for c in (kept, wrong):
        sessions.discharge(db, staff.author, c.sid, expected_version=None)
    with db.reading() as s:
        therapy = s.get(InfusionSession, kept.sid).therapy_id
    today = datetime.now(ZoneInfo("UTC")).date()
    filters = metrics.TrendFilters(today - timedelta(days=2), today + timedelta(days=1))
    frame = metrics.reaction_rates(db, filters)
    (tysabri,) = [r for r in frame.to_dict("records") if r["therapy_id"] == therapy]
    assert (tysabri["completed"], tysabri["with_reaction"]) == (2, 1)
    assert tysabri["rate_per_100"] == pytest.approx(50.0)
    assert row(db, wrong.sid).worst_grade is None and row(db, kept.sid).worst_grade == 2


# Regressions found in review: each is what a nurse or an auditor would notice.


def test_opening_a_session_does_not_make_a_nurse_its_author(db):
    author, other = staff_actor(db, "Ann Author"), staff_actor(db, "Bea Other")
    sid = new_session(db, author, "methylprednisolone")
    walk(db, author, sid, "infusing", t0=ago(90))
    views.session_detail(db, other, sid)  # only looked at it
    with pytest.raises(PermissionDenied):
        corrections.correct_session_time(
            db, other, sid, "iv_started_at", ago(80), reason="typo", expected_version=row(db, sid).version
        )


def test_resolving_a_superseded_reaction_is_refused_and_the_current_one_stays_open(db):
    nurse, charge = staff_actor(db, "Ann Author"), staff_actor(db, "Cat Charge", "charge_nurse")
    sid = new_session(db, nurse, "methylprednisolone")
    walk(db, nurse, sid, "infusing", t0=ago(90))
    old = entries.record_reaction(db, nurse, sid, symptoms=["rash"], grade=1, actions=["observed"], onset_at=ago(30))
    corrections.correct_reaction(
        db, charge, old.id, reason="grade 2", symptoms=["rash"], grade=2, actions=["observed"], onset_at=ago(30)
    )
    with pytest.raises(StateError):
        entries.resolve_reaction(db, nurse, old.id)
    detail = views.session_detail(db, nurse, sid)
    assert [r.grade for r in detail.open_reactions] == [2]


def test_a_rate_change_marked_in_error_restores_the_current_rate(db):
    nurse = staff_actor(db, "Ann Author")
    sid = new_session(db, nurse, "methylprednisolone")
    walk(db, nurse, sid, "infusing", t0=ago(90))
    start_rate = row(db, sid).current_rate_ml_h
    change = entries.change_rate(db, nurse, sid, start_rate + 50, at=ago(10))
    assert row(db, sid).current_rate_ml_h == start_rate + 50
    corrections.mark_entered_in_error(db, nurse, "rate_change", change.id, "wrong pump")
    assert row(db, sid).current_rate_ml_h == start_rate


def test_a_pause_cannot_be_marked_in_error_behind_the_session_state(db):
    nurse = staff_actor(db, "Ann Author")
    sid = new_session(db, nurse, "methylprednisolone")
    walk(db, nurse, sid, "infusing", t0=ago(90))
    paused = entries.pause(db, nurse, sid, at=ago(5))
    with pytest.raises(StateError):
        corrections.mark_entered_in_error(db, nurse, "rate_change", paused.id, "oops")
    assert row(db, sid).status == "paused"
