"""The chair board as a charge nurse reads it: every booking named on its row, a cancelled booking gone,
two bookings holding one chair at once said in words, a finished session's plan no longer drawn, and a
wall display's rows fitting a screen that cannot scroll (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pandas as pd
import plotly.graph_objects as go

from infusion.clock import utcnow
from infusion.reads import board
from infusion.reads import sessions as views
from infusion.services import sessions
from tests.helpers import ADMIN, new_chair, new_patient, therapy_id, walk

DAY = utcnow().date() - timedelta(days=2)  # a day of its own, past (a walk charts past times); UTC clinic


def at(hour: int, minute: int = 0) -> datetime:
    return datetime.combine(DAY, time(hour, minute), tzinfo=UTC)


def book(db, nurse, chair: int, when: datetime, therapy: str = "natalizumab") -> int:  # type: ignore[no-untyped-def]
    return sessions.create_session(
        db,
        nurse,
        patient_id=new_patient(db, nurse),
        therapy_id=therapy_id(db, therapy),
        chair_id=chair,
        scheduled_at=when,
    ).id


def labels(figure: go.Figure) -> list[tuple[object, str]]:
    """(x, text) of every session label the figure draws."""
    texts = [t for t in figure.data if t.type == "scatter" and t.mode == "text"]
    return [(x, str(text)) for t in texts for x, text in zip(t.x, t.text, strict=True)]


def planned_bars(figure: go.Figure) -> list[str]:
    return [str(t.hovertemplate) for t in figure.data if t.type == "bar" and "Planned:" in str(t.hovertemplate)]


def test_a_booking_not_yet_checked_in_is_named_at_its_planned_time(db, nurse):
    chair = new_chair(db, ADMIN)
    sid = book(db, nurse, chair, at(13, 30))
    running = book(db, nurse, new_chair(db, ADMIN), at(8))  # beside one under way, as on any clinic morning
    walk(db, nurse, running, "infusing", t0=at(8))
    now = at(9)
    frame = board.board_frame(db, nurse, now)
    figure = board.board_figure(frame, list(frame["chair"]), now)
    [(x, text)] = [(x, text) for x, text in labels(figure) if "Waiting" in text or "Scheduled" in text]
    name = frame.loc[frame["session_id"] == sid, "patient"].iloc[0]
    assert name in text, text
    assert pd.Timestamp(x) == pd.Timestamp(at(13, 30)), "the label sits at the planned start, not at a missing one"


def test_a_cancelled_booking_leaves_the_board_and_a_closed_plan_is_not_drawn(db, nurse):
    chair = new_chair(db, ADMIN)
    cancelled = book(db, nurse, chair, at(15))
    sessions.cancel(db, nurse, cancelled, "Patient unwell, rebooked", expected_version=None)
    done = book(db, nurse, chair, at(8))
    walk(db, nurse, done, "discharged", t0=at(8), infusion_minutes=60)
    now = at(12)
    frame = board.board_frame(db, nurse, now)
    assert list(frame["session_id"]) == [done], "the cancelled booking is not on the board"
    figure = board.board_figure(frame, list(frame["chair"]), now)
    assert planned_bars(figure) == [], "a discharged session's planned box would make the chair look taken"
    assert any("Discharged" in text for _, text in labels(figure))


def test_two_bookings_holding_one_chair_at_once_are_flagged_on_both(db, nurse):
    chair, other_chair = new_chair(db, ADMIN), new_chair(db, ADMIN)
    first = book(db, nurse, chair, at(13))
    second = book(db, nurse, chair, at(13, 15))
    later = book(db, nurse, chair, at(18))  # after the first two end: no clash
    elsewhere = book(db, nurse, other_chair, at(13))
    frame = board.board_frame(db, nurse, at(9)).set_index("session_id")
    for sid in (first, second):
        assert "Double-booked" in frame.loc[sid, "_alerts"] and "🪑" in frame.loc[sid, "badges"]
    assert frame.loc[first, "patient"] in frame.loc[second, "_alerts"], "names the other booking"
    for sid in (later, elsewhere):
        assert "Double-booked" not in frame.loc[sid, "_alerts"]


def test_a_booking_at_midnight_is_tomorrows(db, nurse):
    chair = new_chair(db, ADMIN)
    today = book(db, nurse, chair, at(23, 45))
    tomorrow = book(db, nurse, chair, at(0) + timedelta(days=1))
    listed = [c.id for c in views.today_sessions(db, nurse, at(20))]
    assert today in listed and tomorrow not in listed


def test_a_wall_display_fits_eleven_chairs_on_one_screen(db, nurse):
    chairs = [f"Chair {i}" for i in range(1, 12)]
    frame = board.board_frame(db, nurse, at(9))
    wall = board.board_figure(frame, chairs, at(9), large=True)
    desk = board.board_figure(frame, chairs, at(9))
    assert wall.layout.height <= board.WALL_ROWS_PX + 60 < 90 * len(chairs)
    assert desk.layout.height == 60 * len(chairs) + 60, "a desk board scrolls: its rows keep their height"


def test_a_cancelled_home_visit_leaves_the_home_visit_list(db, nurse):
    from infusion.services.setup import add_chair

    home = add_chair(db, ADMIN, "Home visits", kind="home").id
    kept = book(db, nurse, home, at(10))
    cancelled = book(db, nurse, home, at(11))
    sessions.cancel(db, nurse, cancelled, "Patient in hospital", expected_version=None)
    visits = board.home_visits(db, nurse, at(9))
    assert len(visits) == 1 and kept != cancelled
