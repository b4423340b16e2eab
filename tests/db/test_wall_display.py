"""A wall display: paired by an administrator, reads the chair board only, never idles out,
shows patients by initials, and stops at once when unpaired (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher

from infusion.accounts import auth, tokens
from infusion.accounts.permissions import WALL_DISPLAY
from infusion.clock import utcnow
from infusion.errors import PermissionDenied, ValidationError
from infusion.reads import board
from infusion.services import entries, setup
from tests.helpers import ADMIN, new_session, normal_vitals, staff_actor, walk


@pytest.fixture(autouse=True)
def _fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def admin(db):
    return staff_actor(db, "Ada Admin", "admin")


def test_only_an_administrator_pairs_a_screen(db, admin):
    with pytest.raises(PermissionDenied):
        tokens.issue_display(db, staff_actor(db, "Cat Charge", "charge_nurse"), "Bay A")
    with pytest.raises(ValidationError):
        tokens.issue_display(db, admin, "   ")
    with pytest.raises(ValidationError):
        tokens.issue_display(db, admin, "x" * 81)
    assert [d.display_name for d in tokens.displays(db, admin)] == []


def test_a_paired_screen_reads_the_board_by_initials_and_never_idles_out(db, admin):
    nurse = staff_actor(db, "Nina Nurse")
    pid = setup.add_patient(db, nurse, mrn="MRN-W", given_name="Ann", family_name="Lee").id
    sid = new_session(db, nurse, "natalizumab", patient_id=pid)
    walk(db, nurse, sid, "infusing")
    start = utcnow()
    issued = tokens.issue_display(db, admin, "Bay A", now=start)
    screen = tokens.resume(db, issued.token, 15, now=start + timedelta(hours=9))  # a whole day, no taps
    assert screen is not None and screen.role == WALL_DISPLAY and screen.user_id is None
    frame = board.board_frame(db, screen, initials=True)
    assert list(frame["patient"]) == ["A.L."]
    assert "Lee" not in " ".join(map(str, frame.to_numpy().ravel()))
    with pytest.raises(PermissionDenied):  # read-only: no charting
        entries.record_vitals(db, screen, sid, normal_vitals())


def test_unpairing_stops_the_screen_at_once(db, admin):
    issued = tokens.issue_display(db, admin, "Bay B")
    (display,) = tokens.displays(db, admin)
    tokens.unpair_display(db, admin, display.id)
    assert tokens.resume(db, issued.token, 15) is None
    assert tokens.displays(db, admin) == []


def test_a_pairing_expires(db, admin):
    start = utcnow()
    issued = tokens.issue_display(db, admin, "Bay C", now=start)
    assert tokens.resume(db, issued.token, 15, now=start + tokens.DISPLAY_MAX_AGE) is None


def test_every_chair_has_a_row_and_the_legend_names_every_colour(db):
    nurse = staff_actor(db, "Nina Nurse")
    setup.add_chair(db, ADMIN, "Chair Empty")
    frame = board.board_frame(db, nurse)
    chairs = [c.name for c in setup.list_chairs(db) if c.kind == "chair"]
    figure = board.board_figure(frame, chairs, utcnow(), large=True)
    shown = {y for trace in figure.data for y in (trace.y or ())}
    assert "Chair Empty" in shown
    assert figure.layout.paper_bgcolor == board.DARK["paper"]  # dark on a wall, not a white chart
    labels = [label for label, _ in board.legend()]
    assert {"Infusing", "Paused", "Observation", "Reaction open"} <= set(labels)


def test_pairing_and_unpairing_a_screen_are_the_sites_own_events(db, admin):
    from sqlalchemy import select

    from db.models import AuditEvent

    tokens.issue_display(db, admin, "Bay D")
    (display,) = tokens.displays(db, admin)
    tokens.unpair_display(db, admin, display.id)
    with db.reading() as s:
        events = {
            e.action: e.site_id for e in s.scalars(select(AuditEvent).where(AuditEvent.entity == "sign_in_token"))
        }
    assert events["wall_display_paired"] == display.site_id is not None
    assert events["wall_display_unpaired"] == display.site_id
