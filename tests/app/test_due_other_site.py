"""AppTest of the Due page across two sites: a patient listed at the nurse's working site (Northside, UTC)
who is due at another site she also works at (last given at Riverside, Los Angeles) is booked there by
default: the form offers Riverside's chairs, says so, takes the date and time as Riverside's, and the
confirmation names the chair and the site. A nurse who holds Northside only books at Northside and never
sees Riverside's name or chairs."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from db.models import InfusionSession
from infusion.accounts.actor import Actor
from infusion.clock import utcnow
from infusion.services import setup
from tests.app.helpers import run_app
from tests.helpers import ADMIN, form_key, therapy_id

LA = ZoneInfo("America/Los_Angeles")


def _texts(at: AppTest) -> str:
    parts = [e.value for e in (*at.error, *at.warning, *at.success, *at.info)]
    parts += [m.value for m in at.markdown] + [c.value for c in at.caption] + [h.value for h in at.subheader]
    return "\n".join(str(p) for p in parts)


def _session(db, patient: int, chair: int, at: datetime, status: str) -> None:  # type: ignore[no-untyped-def]
    done = status == "discharged"
    with db.writing() as s:
        s.add(
            InfusionSession(
                patient_id=patient,
                therapy_id=therapy_id(db, "natalizumab"),
                infusion_number=1 if done else 2,
                chair_id=chair,
                dose=300,
                status=status,
                scheduled_at=at,
                checked_in_at=at if done else None,
                iv_started_at=at if done else None,
                iv_stopped_at=at + timedelta(hours=1) if done else None,
                discharged_at=at + timedelta(hours=2) if done else None,
                created_at=at if done else utcnow(),
            )
        )


@pytest.fixture
def network(db):  # type: ignore[no-untyped-def]
    north = setup.update_clinic(
        db, ADMIN, name="Northside", code="NTH", timezone="UTC", temperature_unit="C", weight_unit="kg"
    )
    river = setup.add_site(db, ADMIN, "Riverside", "RIV", "America/Los_Angeles", "C", "kg")
    north_chair = setup.add_chair(db, ADMIN, "North chair 1", site_id=north.id).id
    river_chairs = [setup.add_chair(db, ADMIN, f"River chair {n}", site_id=river.id).id for n in (1, 2)]
    patient = setup.add_patient(db, ADMIN, mrn="MRN-RIV", given_name="Pat", family_name="Brook").id
    today = utcnow().date()
    # given at Riverside 40 days ago (Tysabri every 4 weeks: overdue), a later booking at Northside lists her there
    _session(
        db, patient, river_chairs[0], datetime.combine(today - timedelta(days=40), time(18), tzinfo=UTC), "discharged"
    )
    _session(db, patient, north_chair, datetime.combine(today + timedelta(days=20), time(9), tzinfo=UTC), "scheduled")
    both = setup.add_staff(db, ADMIN, "Nia Both", "nurse", sites=[north.id, river.id])
    north_only = setup.add_staff(db, ADMIN, "Nora North", "nurse", sites=[north.id])
    return {
        "north": north.id,
        "river": river.id,
        "river_chairs": river_chairs,
        "north_chair": north_chair,
        "patient": patient,
        "both": Actor(both.id, both.display_name, "nurse", site_id=north.id),
        "north_only": Actor(north_only.id, north_only.display_name, "nurse"),
    }


def _book_for(at: AppTest, patient: int, therapy: int) -> str:
    """Pick the overdue patient in "Book for" (it starts empty); the booking form's name."""
    at.selectbox(key="book_pick_overdue").set_value(f"{patient}_{therapy}")
    run_app(at)
    return f"sched_{patient}_{therapy}"


def _open(make_app, actor: Actor) -> AppTest:  # type: ignore[no-untyped-def]
    at = make_app()
    at.session_state["actor"] = actor
    run_app(at)
    return run_app(at.switch_page("pages/due.py"))


def test_a_patient_due_at_another_site_is_booked_in_that_sites_chairs_and_time(db, make_app, network) -> None:  # type: ignore[no-untyped-def]
    at = _open(make_app, network["both"])
    assert "Overdue (1)" in _texts(at)
    form = _book_for(at, network["patient"], therapy_id(db, "natalizumab"))
    site = at.selectbox(key=f"{form}_site")
    assert site.value == network["river"], "the site she is due at comes first"
    assert "Booking at Riverside: Riverside's chairs; the date and time are Riverside's" in _texts(at)
    chair = at.selectbox(key=form_key(at, form, f"chair_{network['river']}"))
    assert chair.options == ["River chair 1", "River chair 2"], "Riverside's chairs, not Northside's"
    chair.set_value(network["river_chairs"][1])
    day = datetime.now(LA).date() + timedelta(days=1)
    at.date_input(key=form_key(at, form, "date")).set_value(day)
    at.time_input(key=form_key(at, form, "time")).set_value(time(10, 30))
    at.button(key=form_key(at, form, "submit")).click()
    run_app(at)

    with db.reading() as s:
        booked = s.scalars(select(InfusionSession).where(InfusionSession.chair_id == network["river_chairs"][1])).one()
    assert booked.scheduled_at == datetime.combine(day, time(10, 30), tzinfo=LA), "10:30 at Riverside"
    shown = _texts(at)
    assert f"Booked {day:%a %d %b %Y} 10:30 in River chair 2 at Riverside, 300 mg." in shown, shown
    assert "the chair" not in shown


def test_she_may_book_at_her_working_site_instead(db, make_app, network) -> None:  # type: ignore[no-untyped-def]
    at = _open(make_app, network["both"])
    form = _book_for(at, network["patient"], therapy_id(db, "natalizumab"))
    at.selectbox(key=f"{form}_site").set_value(network["north"])
    run_app(at)
    chair = at.selectbox(key=form_key(at, form, "chair"))
    assert chair.options == ["North chair 1"]
    assert "Booking at" not in _texts(at)


def test_a_nurse_of_one_site_books_there_and_never_sees_the_other(db, make_app, network) -> None:  # type: ignore[no-untyped-def]
    at = _open(make_app, network["north_only"])
    assert "Overdue (1)" in _texts(at)
    form = _book_for(at, network["patient"], therapy_id(db, "natalizumab"))
    assert f"{form}_site" not in [s.key for s in at.selectbox], "one site: no site choice"
    chair = at.selectbox(key=form_key(at, form, "chair"))
    assert chair.options == ["North chair 1"]
    everything = _texts(at) + " ".join(str(o) for s in at.selectbox for o in s.options)
    assert "Riverside" not in everything and "River chair" not in everything
