"""AppTest: a nurse walks a whole session through the Chairside page, and bad input
shows a message and stores nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from db.models import AuditEvent, InfusionSession, Patient, Reaction, VitalSign
from infusion.accounts.actor import Actor
from infusion.services import sessions as session_service
from infusion.services import setup
from tests.helpers import form_key, normal_vitals, therapy_id


def _count(db, model) -> int:
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(model))


def _seed(db):
    admin = Actor(None, "Setup", "admin")
    nurse = setup.add_staff(db, admin, "Nora Nurse", "nurse")
    setup.add_chair(db, admin, "Chair 1")
    patient = setup.add_patient(db, admin, mrn="MRN-1", given_name="Ann", family_name="Lee")
    return Actor(nurse.id, nurse.display_name, "nurse"), patient


def _start(make_app, actor):
    at = make_app()
    at.session_state["actor"] = actor
    at.run()
    assert not at.exception
    return at


def _texts(at) -> str:
    parts = [e.value for e in (*at.error, *at.warning, *at.success, *at.info)]
    parts += [m.value for m in at.markdown] + [c.value for c in at.caption]
    return "\n".join(str(p) for p in parts)


def _click(at, label: str):
    button = next(b for b in at.button if b.label == label)
    button.click().run()
    assert not at.exception, at.exception
    return at


def _tick_all_checks(at, sid: int, program_ref: str | None = None) -> None:
    for box in at.checkbox:
        if box.key and box.key.startswith(form_key(at, f"pretreatment_{sid}", "check_")):
            box.check()
    if program_ref:
        at.text_input(key=form_key(at, f"pretreatment_{sid}", "note_program_authorised")).set_value(program_ref)


def _add_walk_in(at, therapy_name: str) -> None:
    at.selectbox(key=form_key(at, "walk_in", "patient")).set_value(
        at.selectbox(key=form_key(at, "walk_in", "patient")).options
        and at.selectbox(key=form_key(at, "walk_in", "patient")).options[0]
    )
    at.selectbox(key=form_key(at, "walk_in", "patient")).select_index(1)
    therapy = at.selectbox(key=form_key(at, "walk_in", "therapy"))
    therapy.select_index(next(i for i, o in enumerate(therapy.options) if therapy_name in o))
    _click(at, "Add session")


def test_a_walk_in_without_a_therapy_is_refused_beside_the_button_and_keeps_what_was_typed(db, make_app):
    """The therapy picker starts empty: a walk-in is never added with the first therapy of the list because
    nobody picked one."""
    actor, patient = _seed(db)
    at = _start(make_app, actor)
    assert at.selectbox(key=form_key(at, "walk_in", "patient")).value is None  # a new patient, typed below
    typed = {"mrn": "MRN-NEW-7", "given": "Rosa", "family": "Vidal"}
    for field, value in typed.items():
        at.text_input(key=form_key(at, "walk_in", field)).set_value(value)
    assert at.selectbox(key=form_key(at, "walk_in", "therapy")).value is None
    at.number_input(key=form_key(at, "walk_in", "dose")).set_value(300.0)
    _click(at, "Add session")
    assert "Pick the therapy." in " ".join(e.value for e in at.error)
    assert (_count(db, InfusionSession), _count(db, Patient)) == (0, 1)  # no session, no new patient

    # nor the new patient's name: one refusal names both, not one per tap
    at.text_input(key=form_key(at, "walk_in", "family")).set_value("")
    _click(at, "Add session")
    refusal = " ".join(e.value for e in at.error)
    assert "Pick the therapy." in refusal and "Enter the patient's given and family name." in refusal
    assert (_count(db, InfusionSession), _count(db, Patient)) == (0, 1)
    at.text_input(key=form_key(at, "walk_in", "family")).set_value(typed["family"])
    for field, value in typed.items():
        assert at.text_input(key=form_key(at, "walk_in", field)).value == value, field
    assert at.number_input(key=form_key(at, "walk_in", "dose")).value == 300.0

    # an existing patient and a therapy picked: added
    at.selectbox(key=form_key(at, "walk_in", "patient")).select_index(1)

    therapy = at.selectbox(key=form_key(at, "walk_in", "therapy"))
    therapy.select_index(next(i for i, o in enumerate(therapy.options) if "Tysabri" in o))
    _click(at, "Add session")
    assert "Walk-in session added" in _texts(at)
    with db.reading() as s:
        assert s.scalars(select(InfusionSession.patient_id)).all() == [patient.id]


def test_nurse_logs_a_whole_tysabri_session(db, make_app):
    actor, patient = _seed(db)
    at = _start(make_app, actor)
    _add_walk_in(at, "Tysabri")
    assert "Walk-in session added" in _texts(at)
    with db.reading() as s:
        session = s.scalars(select(InfusionSession)).one()
    sid = session.id

    # check in with normal vitals (clinic in °C by default)
    key = f"check_in_{sid}"
    for field, value in {
        "sbp": 124,
        "dbp": 78,
        "pulse": 72,
        "temp": 36.7,
        "rr": 16,
        "spo2": 98,
        "pain": 0,
        "weight": 71.5,
    }.items():
        at.number_input(key=form_key(at, key, field)).set_value(value)
    _click(at, "Check in")
    assert "Checked in · NEWS2 0" in _texts(at)

    # Proceed is blocked until the pre-treatment checks (incl. TOUCH authorisation) are ticked
    _click(at, "✅ Proceed")
    assert "JC virus antibody test" in _texts(at) and "Not saved" in _texts(at)
    _tick_all_checks(at, sid, program_ref="TOUCH-123")
    _click(at, "✅ Proceed")  # what is ticked counts: one action, not two
    assert "Checks saved" in _texts(at)
    assert "Cleared to proceed" in _texts(at)
    assert "TOUCH checklist confirmed" in _texts(at)

    at.selectbox(key=form_key(at, f"start_{sid}", "site")).set_value("Left forearm")
    at.text_input(key=form_key(at, f"start_{sid}", "lot")).set_value("LOT-42")
    at.number_input(key=form_key(at, f"start_{sid}", "rate")).set_value(100.0)
    _click(at, "▶ Start IV")
    assert "IV started" in _texts(at)
    assert "🟢 Infusing" in _texts(at)

    # abnormal vitals: flags show before the save and ask for confirmation
    key = f"vitals_{sid}"
    for field, value in {"sbp": 118, "dbp": 70, "pulse": 126, "temp": 38.4, "rr": 18, "spo2": 97}.items():
        at.number_input(key=form_key(at, key, field)).set_value(value)
    _click(at, "Save vitals")
    shown = _texts(at)
    assert "Abnormal values" in shown and "Pulse 126 > 120 /min" in shown and "Temperature 38.4 °C" in shown
    assert _count(db, VitalSign) == 1  # only the check-in set so far: nothing saved before confirmation
    at.checkbox(key=form_key(at, key, "confirm_notified")).check()
    at.text_input(key=form_key(at, key, "confirm_provider")).set_value("Dr Patel")
    _click(at, "Confirm and save")
    with db.reading() as s:
        flagged = s.scalars(select(VitalSign).where(VitalSign.phase == "infusion")).one()
    assert (
        flagged.provider_name == "Dr Patel" and flagged.flag_count == 2
    )  # temperature and pulse (NEWS2 has no single 3 here)

    # a reaction, then its resolution
    rkey = f"reaction_{sid}"
    at.multiselect(key=form_key(at, rkey, "symptoms")).set_value(["fever", "chills"])
    at.radio(key=form_key(at, rkey, "grade")).set_value(2)
    at.multiselect(key=form_key(at, rkey, "actions")).set_value(["paused", "medication_given"])
    at.text_input(key=form_key(at, rkey, "med")).set_value("Acetaminophen 650 mg PO")
    _click(at, "Save reaction")
    assert "Reaction recorded; the infusion is paused" in _texts(at)
    assert "Open reaction" in _texts(at)
    with db.reading() as s:
        reaction = s.scalars(select(Reaction)).one()
        assert s.get(InfusionSession, sid).status == "paused"  # the record and the rate log agree
    _click(at, "Mark resolved")
    at.number_input(key=form_key(at, f"resume_{sid}", "rate")).set_value(50.0)  # half rate after the reaction
    _click(at, "▶ Resume infusion")
    assert "Infusion resumed." in _texts(at)

    # a few minutes into a one-hour Tysabri infusion: stopping asks for a deliberate second step
    _click(at, "⏹ Stop IV")
    assert "Not saved" in _texts(at) and _count(db, InfusionSession) == 1
    with db.reading() as s:
        assert s.get(InfusionSession, sid).status == "infusing"
    at.checkbox(key=form_key(at, f"stop_{sid}", "confirm_early")).check()
    _click(at, "⏹ Stop IV")
    assert "observation started" in _texts(at)
    # discharge now is before the 60-min Tysabri observation ends: a reason is required
    _click(at, "🏠 Discharge")
    assert "give a reason to discharge early" in _texts(at)
    at.text_input(key=form_key(at, f"discharge_{sid}", "reason")).set_value("Ride waiting; provider agreed")
    _click(at, "🏠 Discharge")
    assert "Patient discharged" in _texts(at)

    with db.reading() as s:
        done = s.get(InfusionSession, sid)
        reaction = s.get(Reaction, reaction.id)
        audit_users = set(s.scalars(select(AuditEvent.user_name).where(AuditEvent.session_id == sid)))
    assert done.status == "discharged"
    assert done.lot_number == "LOT-42" and done.iv_site == "Left forearm"
    assert done.reaction_count == 1 and done.worst_grade == 2
    assert done.early_discharge_reason == "Ride waiting; provider agreed"
    assert reaction.resolved_at is not None
    assert audit_users == {"Nora Nurse"}


def test_impossible_vitals_show_a_message_and_store_nothing(db, make_app):
    actor, _ = _seed(db)
    at = _start(make_app, actor)
    _add_walk_in(at, "Ocrevus")
    with db.reading() as s:
        sid = s.scalars(select(InfusionSession.id)).one()
    before = (_count(db, VitalSign), _count(db, AuditEvent))
    key = f"check_in_{sid}"
    for field, value in {"sbp": 400, "dbp": 80, "pulse": 72, "temp": 98.6, "rr": 16, "spo2": 98}.items():
        at.number_input(key=form_key(at, key, field)).set_value(value)
    _click(at, "Check in")
    shown = _texts(at)
    assert "Systolic BP 400 is outside the accepted range 40–300 mmHg" in shown
    assert "looks like °F" in shown
    assert (_count(db, VitalSign), _count(db, AuditEvent)) == before
    with db.reading() as s:
        assert s.get(InfusionSession, sid).status == "scheduled"


def test_start_iv_without_lot_is_refused(db, make_app):
    actor, _ = _seed(db)
    at = _start(make_app, actor)
    _add_walk_in(at, "Methylprednisolone")
    with db.reading() as s:
        sid = s.scalars(select(InfusionSession.id)).one()
    key = f"check_in_{sid}"
    for field, value in {"sbp": 120, "dbp": 80, "pulse": 72, "temp": 36.6, "rr": 16, "spo2": 98}.items():
        at.number_input(key=form_key(at, key, field)).set_value(value)
    _click(at, "Check in")
    _tick_all_checks(at, sid)
    _click(at, "✅ Proceed")
    at.selectbox(key=form_key(at, f"start_{sid}", "site")).set_value("Right forearm")
    at.number_input(key=form_key(at, f"start_{sid}", "rate")).set_value(250.0)
    _click(at, "▶ Start IV")
    assert "Enter the product lot number" in _texts(at)
    with db.reading() as s:
        assert s.get(InfusionSession, sid).status == "ready"


def test_a_fever_at_check_in_cannot_be_ticked_away(db, make_app):
    """38.6 °C at check-in, every box ticked: Proceed is refused until a reason is given (audited)."""
    actor, _ = _seed(db)
    at = _start(make_app, actor)
    _add_walk_in(at, "Methylprednisolone")
    with db.reading() as s:
        sid = s.scalars(select(InfusionSession.id)).one()
    key = f"check_in_{sid}"
    for field, value in {"sbp": 120, "dbp": 80, "pulse": 88, "temp": 38.6, "rr": 16, "spo2": 98}.items():
        at.number_input(key=form_key(at, key, field)).set_value(value)
    _click(at, "Check in")
    _click(at, "Confirm and save")  # the fever is flagged and confirmed
    _tick_all_checks(at, sid)
    _click(at, "✅ Proceed")
    assert "Not saved" in _texts(at) and "38.6" in _texts(at)
    with db.reading() as s:
        assert s.get(InfusionSession, sid).status == "checked_in"
    at.text_input(key=form_key(at, f"pretreatment_{sid}", "override")).set_value(
        "Neurologist: treat, fever from a cold"
    )
    _click(at, "✅ Proceed")
    assert "Cleared to proceed" in _texts(at)
    with db.reading() as s:
        assert s.get(InfusionSession, sid).status == "ready"
        reasons = s.scalars(
            select(AuditEvent.reason).where(AuditEvent.session_id == sid, AuditEvent.action == "pretreatment_override")
        ).all()
    assert reasons == ["Neurologist: treat, fever from a cold"]


def test_a_charge_nurse_sets_news2_scale_2_and_a_nurse_sees_it(db, make_app):
    """An ALS patient's SpO2 scale is a clinician's decision with a reason; nurses see which scale scores use."""
    nurse, patient = _seed(db)
    charge = setup.add_staff(db, Actor(None, "Setup", "admin"), "Cara Charge", "charge_nurse")
    charge_actor = Actor(charge.id, charge.display_name, "charge_nurse")
    at = _start(make_app, charge_actor)
    _add_walk_in(at, "IVIG")
    at.radio(key=form_key(at, f"news2_scale_{patient.id}", "scale")).set_value(2)
    _click(at, "Set scale")
    assert "Not saved" in _texts(at)  # no reason given
    at.text_input(key=form_key(at, f"news2_scale_{patient.id}", "reason")).set_value("ALS, hypercapnia; pulmonology")
    _click(at, "Set scale")
    assert "NEWS2 SpO2 scale set to 2" in _texts(at)
    with db.reading() as s:
        assert s.get(type(patient), patient.id).news2_spo2_scale == 2
    nurse_view = _start(make_app, nurse)
    with db.reading() as s:
        sid = s.scalars(select(InfusionSession.id)).one()
    nurse_view.button(key=f"open_{sid}").click().run()
    assert any("NEWS2 SpO2 Scale 2" in e.label for e in nurse_view.expander)
    assert "A charge nurse or an administrator sets the scale." in _texts(nurse_view)


def test_after_an_unconfirmed_save_the_same_values_save_once_and_changed_values_save_anew(db, make_app, monkeypatch):
    """The database took a save but the answer was lost ("not confirmed — try again"). Tapping again
    with the same values stores nothing twice; changing a value first stores what is on the screen,
    never answered with the earlier set."""
    from infusion.errors import DatabaseUnavailable
    from infusion.services import entries
    from tests.helpers import ago, walk

    actor, _ = _seed(db)
    at = _start(make_app, actor)
    _add_walk_in(at, "Tysabri")
    with db.reading() as s:
        sid = s.scalars(select(InfusionSession.id)).one()
    walk(db, actor, sid, "infusing", t0=ago(60))
    at.run()
    real = entries.record_vitals
    answered: list[int] = []

    def stored_but_unconfirmed(*args, **kwargs):  # every other call: committed, then the connection drops
        row = real(*args, **kwargs)
        answered.append(row.id)
        if len(answered) % 2:
            raise DatabaseUnavailable()
        return row

    monkeypatch.setattr(entries, "record_vitals", stored_but_unconfirmed)

    def fill(pulse: int) -> None:
        for field, value in {"sbp": 118, "dbp": 76, "pulse": pulse, "temp": 36.8, "rr": 16, "spo2": 98}.items():
            at.number_input(key=form_key(at, f"vitals_{sid}", field)).set_value(value)

    def pulses() -> list[int]:
        with db.reading() as s:
            return list(s.scalars(select(VitalSign.pulse).where(VitalSign.session_id == sid, VitalSign.phase != "pre")))

    fill(80)
    _click(at, "Save vitals")
    assert "not confirmed" in _texts(at) and pulses() == [80]
    _click(at, "Save vitals")  # the same values again: the stored set is the answer
    assert "Vitals saved" in _texts(at) and "may be in the record too" not in _texts(at) and pulses() == [80]

    fill(81)
    _click(at, "Save vitals")
    assert "not confirmed" in _texts(at) and pulses() == [80, 81]
    fill(95)  # the nurse corrects a value before trying again
    _click(at, "Save vitals")
    assert "Vitals saved" in _texts(at) and "may be in the record too" in _texts(at)
    assert sorted(pulses()) == [80, 81, 95]


def test_an_address_naming_a_session_that_is_gone_opens_nothing_and_says_so(db, make_app):
    actor, _ = _seed(db)
    at = make_app()
    at.session_state["actor"] = actor
    at.query_params["session"] = "987654"
    at.run()
    assert not at.exception
    assert "That session no longer exists." in _texts(at)
    at.run()
    assert "Pick a session on the left, or add a walk-in." in _texts(at)
    assert "session" not in at.query_params

    for crafted in ("²", "9" * 20, "1; drop", "-3"):  # nothing a record number can be: nothing opens
        fresh = make_app()
        fresh.session_state["actor"] = actor
        fresh.query_params["session"] = crafted
        fresh.run()
        assert not fresh.exception, crafted
        assert "Pick a session on the left, or add a walk-in." in _texts(fresh), crafted


def test_a_check_in_into_a_busy_chair_is_refused_at_the_first_tap_not_after_confirming_values(db, make_app):
    """The chair is still in use: said when the nurse taps Check in, before any abnormal value is asked
    about, with every value kept (it used to come only after "Confirm and save")."""
    actor, patient = _seed(db)
    chair_id = setup.list_chairs(db)[0].id
    busy = session_service.create_session(
        db, actor, patient_id=patient.id, therapy_id=therapy_id(db, "natalizumab"), chair_id=chair_id
    ).id
    session_service.check_in(db, actor, busy, normal_vitals(), expected_version=None)
    other = setup.add_patient(db, actor, mrn="MRN-2", given_name="Bo", family_name="Ng").id
    sid = session_service.create_session(
        db, actor, patient_id=other, therapy_id=therapy_id(db, "natalizumab"), chair_id=chair_id
    ).id
    at = _start(make_app, actor)
    at.session_state["selected_session"] = sid
    at.run()
    key = f"check_in_{sid}"
    abnormal = {"sbp": 182, "dbp": 78, "pulse": 72, "temp": 36.7, "rr": 16, "spo2": 98}
    for field, value in abnormal.items():
        at.number_input(key=form_key(at, key, field)).set_value(value)
    _click(at, "Check in")
    shown = _texts(at)
    assert "This chair already has an active session" in shown
    assert "Abnormal values" not in shown, "the chair is said first, not after the values are confirmed"
    assert at.number_input(key=form_key(at, key, "sbp")).value == 182


def test_a_tick_given_for_one_rate_is_not_an_answer_for_another(db, make_app):
    """Asked about 800 mL/h, the nurse ticks, then changes the rate to 900 and taps: 900 is asked about
    afresh with an empty box, and nothing is saved until she ticks again."""
    from tests.helpers import ago, walk

    actor, patient = _seed(db)
    sid = session_service.create_session(
        db, actor, patient_id=patient.id, therapy_id=therapy_id(db, "natalizumab"), chair_id=setup.list_chairs(db)[0].id
    ).id
    walk(db, actor, sid, "infusing", t0=ago(60))
    at = _start(make_app, actor)
    at.session_state["selected_session"] = sid
    at.run()
    form = f"rate_{sid}"

    def box():  # type: ignore[no-untyped-def]
        return [c for c in at.checkbox if c.key and c.key.startswith(form_key(at, form, "confirm_save"))]

    at.number_input(key=form_key(at, form, "rate")).set_value(800.0)
    _click(at, "Change rate")
    assert "800 mL/h is above" in _texts(at) and len(box()) == 1
    box()[0].check()
    at.number_input(key=form_key(at, form, "rate")).set_value(900.0)
    _click(at, "Change rate")
    assert "900 mL/h is above" in _texts(at)
    assert [b.value for b in box()] == [False], "the tick for 800 does not carry over to 900"
    _click(at, "Change rate")
    with db.reading() as s:
        assert s.get(InfusionSession, sid).current_rate_ml_h == 100, "nothing saved without a tick"
    box()[0].check()
    _click(at, "Change rate")
    assert "Rate changed to 900 mL/h." in _texts(at)
    with db.reading() as s:
        assert s.get(InfusionSession, sid).current_rate_ml_h == 900
