"""AppTest (issues 3 and 4): the dashboard pages — Chair board, Trends, Exports, Audit log and
Session record — with the demo clinic loaded and with an empty clinic, and what their
filters and buttons do.

Each demo test loads a small demo (400 sessions, fixed seed) into its own database. Plotly
charts are not inspectable in AppTest, so the tests read the numbers tables, captions and
markdown the pages draw beside them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import func, select

from db.models import AppUser, AuditEvent, InfusionSession, Patient
from infusion.accounts.actor import Actor
from infusion.clock import local_date, utcnow
from infusion.demo.clinic import DemoOptions, load_demo
from infusion.errors import ChairsideError
from infusion.exports import datasets as export
from infusion.exports.deidentify import ENV_SECRET
from infusion.reads import board
from infusion.reads import sessions as views
from infusion.reads import trends as metrics
from infusion.reads.trends import TrendFilters
from infusion.services import sessions
from infusion.services.setup import get_clinic
from tests.app.helpers import run_app
from tests.helpers import form_key
from ui.trends.numbers import heading

pytestmark = pytest.mark.usefixtures("fresh_page_caches")

DEMO = DemoOptions(sessions=400, seed=11)


# ------------------------------------------------------------------ helpers
def _demo(db) -> dict[str, Actor]:  # type: ignore[no-untyped-def]
    """Load the demo clinic; its staff by role (the first of each role)."""
    load_demo(db, DEMO)
    staff: dict[str, Actor] = {}
    with db.reading() as s:
        for user in s.scalars(select(AppUser).order_by(AppUser.id)):
            staff.setdefault(user.role, Actor(user.id, user.display_name, user.role))
    return staff


def _open(make_app, actor: Actor, path: str):  # type: ignore[no-untyped-def]
    at = make_app()
    at.session_state["actor"] = actor
    run_app(at)
    return run_app(at.switch_page(path))


def _click(at, label: str):  # type: ignore[no-untyped-def]
    next(b for b in at.button if b.label == label).click()
    return run_app(at)


def _texts(elements: Any) -> list[str]:
    return [str(e.value) for e in elements]


def _assert_clean(at) -> None:  # type: ignore[no-untyped-def]
    assert not at.exception, [e.value for e in at.exception]
    assert _texts(at.error) == [], _texts(at.error)


def _audit_count(db, action: str) -> int:  # type: ignore[no-untyped-def]
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)) or 0


PAGES = {  # page → (role that uses it, its file, its header)
    "board": ("charge_nurse", "pages/board.py", "Chair board"),
    "trends": ("manager", "pages/trends.py", "Trends"),
    "export": ("quality", "pages/export.py", "Exports"),
    "audit": ("quality", "pages/audit.py", "Audit log"),
    "session": ("nurse", "pages/session.py", "Session record"),
}


# ------------------------------------------------------------------ every page, demo and empty
@pytest.mark.parametrize("page", list(PAGES))
def test_page_renders_with_the_demo_clinic(db, make_app, page):
    role, path, title = PAGES[page]
    staff = _demo(db)
    at = _open(make_app, staff[role], path)
    _assert_clean(at)
    assert title in _texts(at.header)
    if page in ("board", "trends", "export"):
        assert at.dataframe, f"{page} shows no table with the demo data"


EMPTY_STATES = {  # page → the st.info an empty clinic sees (None: any st.info)
    "board": "No chairs yet",
    "trends": "No completed sessions match these filters yet",
    "export": "No rows match these filters",
    "audit": "Choose filters and press Search.",
    "session": "No sessions match.",
}


@pytest.mark.parametrize("page", list(PAGES))
def test_page_shows_a_helpful_empty_state_on_an_empty_database(db, make_app, page):
    role, path, title = PAGES[page]
    at = _open(make_app, Actor(None, f"Empty {role}", role), path)
    _assert_clean(at)
    assert title in _texts(at.header)
    infos = _texts(at.info)
    expected = EMPTY_STATES[page]
    assert infos, f"no empty-state message on {title}"
    if expected is not None:
        assert any(expected in info for info in infos), infos


def test_export_page_on_an_empty_database_counts_zero_rows_without_an_error(db, make_app):
    at = _open(make_app, Actor(None, "Empty quality", "quality"), "pages/export.py")
    _assert_clean(at)
    assert any("No rows match these filters" in m for m in _texts(at.info)), _texts(at.info)
    assert not [b for b in at.button if b.label == "Prepare the CSV file"]


def test_audit_search_on_an_empty_database_is_an_empty_state_not_an_error(db, make_app):
    at = _open(make_app, Actor(None, "Empty quality", "quality"), "pages/audit.py")
    at.text_input(key=form_key(at, "audit_filters", "mrn")).set_value("NOPE-1")
    _click(at, "Search")
    _assert_clean(at)
    assert "No audit events match these filters." in _texts(at.info)


def test_board_on_an_empty_clinic_with_chairs_says_no_sessions_today(db, make_app):
    from infusion.services import setup
    from tests.helpers import ADMIN

    setup.add_chair(db, ADMIN, "Chair 1")
    at = _open(make_app, Actor(None, "Empty charge", "charge_nurse"), "pages/board.py")
    _assert_clean(at)
    assert "No sessions on the board today." in _texts(at.info)


# ------------------------------------------------------------------ Trends
def _rates(at) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """The numbers table of 'Reaction rate per therapy': the first 'Numbers' expander's dataframe, its
    headings ("completed sessions") read back as the read's columns ("completed") to compare with it."""
    subheaders = _texts(at.subheader)
    assert subheaders[0] == "Reaction rate per therapy", subheaders
    numbers = [e for e in at.expander if e.label == "Numbers"]
    assert numbers, "no Numbers expander"
    shown = numbers[0].dataframe[0].value
    columns = {heading(c, "reaction_rates").text: c for c in metrics.REACTION_RATE_COLUMNS}
    assert set(shown.columns) == set(columns), list(shown.columns)
    return shown.rename(columns=columns)


def _clinic_today(db) -> Any:  # type: ignore[no-untyped-def]
    """The demo clinic's calendar day: the pages' default periods end on it, not on the UTC day."""
    return local_date(utcnow(), get_clinic(db).timezone)


def _trend_filters(db, **kw: Any) -> TrendFilters:  # type: ignore[no-untyped-def]
    today = _clinic_today(db)
    return TrendFilters(start=today - timedelta(days=365), end=today, **kw)


def _expected_rates(db, **kw: Any) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    return metrics.reaction_rates(db, _trend_filters(db, **kw))


def test_trends_therapy_filter_keeps_only_that_therapy(db, make_app):
    staff = _demo(db)
    at = _open(make_app, staff["manager"], "pages/trends.py")
    everything = _rates(at)
    assert len(everything) >= 2, everything
    assert everything["completed"].sum() == _expected_rates(db)["completed"].sum()

    picker = at.multiselect(key=form_key(at, "trend_filters", "therapy"))
    top = everything.sort_values("completed", ascending=False).iloc[0]  # the busiest therapy
    label = str(top["therapy"])
    assert label in picker.options
    picker.set_value([int(top["therapy_id"])])
    _click(at, "Apply filters")
    _assert_clean(at)
    one = _rates(at)
    assert list(one["therapy"]) == [label]
    assert int(one["completed"].iloc[0]) == int(top["completed"])
    assert int(one["with_reaction"].iloc[0]) == int(top["with_reaction"])


def test_trends_first_infusions_change_the_completed_counts(db, make_app):
    staff = _demo(db)
    at = _open(make_app, staff["manager"], "pages/trends.py")
    before = _rates(at)
    at.selectbox(key=form_key(at, "trend_filters", "infusion")).set_value("first")
    _click(at, "Apply filters")
    _assert_clean(at)
    first = _rates(at)
    expected = _expected_rates(db, infusion="first")
    assert first["completed"].sum() == expected["completed"].sum()
    assert first["completed"].sum() < before["completed"].sum()
    assert (
        first.set_index("therapy")["completed"] != before.set_index("therapy")["completed"].reindex(first["therapy"])
    ).any()


def test_trends_home_location_counts_only_home_sessions(db, make_app):
    staff = _demo(db)
    at = _open(make_app, staff["manager"], "pages/trends.py")
    before = _rates(at)
    at.selectbox(key=form_key(at, "trend_filters", "location")).set_value("home")
    _click(at, "Apply filters")
    _assert_clean(at)
    home = _rates(at)
    window = _trend_filters(db)
    lo, hi = metrics.utc_bounds(window.start, window.end, get_clinic(db).timezone)
    with db.reading() as s:
        home_discharged = s.scalar(
            select(func.count())
            .select_from(InfusionSession)
            .where(
                InfusionSession.status == "discharged",
                InfusionSession.at_home.is_(True),
                InfusionSession.checked_in_at >= lo,
                InfusionSession.checked_in_at < hi,
            )
        )
    assert home_discharged, "the demo has no discharged home visits"
    assert int(home["completed"].sum()) == home_discharged
    assert int(home["completed"].sum()) < int(before["completed"].sum())
    assert int(home["completed"].sum()) == int(_expected_rates(db, location="home")["completed"].sum())


def test_trends_shows_new_data_after_a_write(db, make_app):
    staff = _demo(db)
    at = _open(make_app, staff["manager"], "pages/trends.py")
    before = int(_rates(at)["completed"].sum())
    # a nurse discharges one of today's patients in observation: one more completed session
    with db.reading() as s:
        candidates = list(
            s.execute(
                select(InfusionSession.id, InfusionSession.version).where(InfusionSession.status == "observation")
            )
        )
    discharged = None
    for sid, version in candidates:
        try:
            sessions.discharge(db, staff["nurse"], sid, expected_version=version, early_reason="Test: ride waiting")
        except ChairsideError:
            continue
        discharged = sid
        break
    assert discharged is not None, "the demo has no patient in observation to discharge"
    assert int(_expected_rates(db)["completed"].sum()) == before + 1
    run_app(at)
    _assert_clean(at)
    assert int(_rates(at)["completed"].sum()) == before + 1, "Trends still shows the numbers from before the write"


# ------------------------------------------------------------------ Chair board
def test_board_lists_what_needs_attention_and_refreshes_every_30_s(db, make_app):
    staff = _demo(db)
    charge = staff["charge_nurse"]
    at = _open(make_app, charge, "pages/board.py")
    _assert_clean(at)
    assert any("refreshes every 30 s" in c for c in _texts(at.caption)), _texts(at.caption)
    assert "**Needs attention**" in _texts(at.markdown)

    shown = at.dataframe[0].value
    assert list(shown.columns) == ["chair", "patient", "therapy", "status", "why"]
    # what the board service says needs attention, computed now (the page ran moments ago)
    frame = board.board_frame(db, charge)
    expected = frame[frame["badges"] != ""]
    assert sorted(shown["patient"]) == sorted(expected["patient"])
    why = " | ".join(shown["why"])
    assert "Reaction open" in why or "Vitals overdue" in why, why
    # every open reaction on a clinic chair today is there
    for card in views.today_sessions(db, charge, utcnow()):
        if card.open_reactions and card.chair_id is not None and "Home" not in card.chair:
            assert board._short_name(card.patient) in set(shown["patient"]), card.patient


# ------------------------------------------------------------------ Exports
def _preview_count(at) -> int:  # type: ignore[no-untyped-def]
    line = next(m for m in _texts(at.markdown) if " rows** match" in m)
    return int(line.split("**")[1].split(" ")[0].replace(",", ""))


def test_export_preview_count_matches_count_rows(db, make_app):
    staff = _demo(db)
    at = _open(make_app, staff["quality"], "pages/export.py")
    _assert_clean(at)
    today = _clinic_today(db)
    for dataset in ("sessions", "vitals", "reactions"):
        at.selectbox(key=form_key(at, "export_filters", "dataset")).set_value(dataset)
        _click(at, "Preview")
        _assert_clean(at)
        filters = export.ExportFilters(start=today - timedelta(days=30), end=today)
        expected = export.count_rows(db, dataset, filters, actor_role="quality")
        assert expected > 0, dataset
        assert _preview_count(at) == expected, dataset
        assert len(at.dataframe[0].value) == min(expected, 20)


def test_export_deidentify_without_a_secret_makes_its_key_and_says_where(db, make_app, monkeypatch, tmp_path):
    """A new clinic following the quick start can de-identify: the key is generated once, outside the database."""
    monkeypatch.delenv(ENV_SECRET, raising=False)
    key = tmp_path / "keys" / "deid.key"
    monkeypatch.setenv("CHAIRSIDE_DEID_KEY_FILE", str(key))
    staff = _demo(db)
    at = _open(make_app, staff["quality"], "pages/export.py")
    at.toggle(key=form_key(at, "export_filters", "deid")).set_value(True)
    _click(at, "Preview")
    _assert_clean(at)
    assert "patient_key" in at.dataframe[0].value.columns
    assert key.is_file() and (key.stat().st_mode & 0o777) == 0o600
    assert str(key) in " ".join(c.value for c in at.caption)


def test_export_deidentified_preview_has_patient_key_and_no_mrn(db, make_app, monkeypatch):
    monkeypatch.setenv(ENV_SECRET, "a-test-secret-of-32-characters!!")
    staff = _demo(db)
    at = _open(make_app, staff["quality"], "pages/export.py")
    at.toggle(key=form_key(at, "export_filters", "deid")).set_value(True)
    _click(at, "Preview")
    _assert_clean(at)
    frame = at.dataframe[0].value
    assert "patient_key" in frame.columns
    assert not [c for c in frame.columns if "mrn" in c.lower()]
    assert frame["patient_key"].str.startswith("P-").all()
    with db.reading() as s:
        mrns = set(s.scalars(select(Patient.mrn)))
    assert not mrns & set(frame.astype(str).to_numpy().ravel())


def test_export_prepare_offers_a_download_and_audits_it_once(db, make_app):
    staff = _demo(db)
    quality = staff["quality"]
    at = _open(make_app, quality, "pages/export.py")
    before = _audit_count(db, "export_csv")
    assert not [b for b in at.get("download_button") if str(b.proto.label).startswith("Download chairside_")]
    _click(at, "Prepare the CSV file")
    _assert_clean(at)
    downloads = [b for b in at.get("download_button") if str(b.proto.label).startswith("Download chairside_sessions")]
    assert len(downloads) == 1, [b.proto.label for b in at.get("download_button")]
    assert f"({_preview_count(at):,} rows)" in downloads[0].proto.label
    with db.reading() as s:
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "export_csv")))
    assert len(events) == before + 1 == 1
    assert events[0].user_id == quality.user_id and events[0].user_name == quality.name
    assert events[0].after["dataset"] == "sessions" and events[0].after["rows"] == _preview_count(at)
    # a rerun (another interaction) does not export again
    run_app(at)
    assert _audit_count(db, "export_csv") == 1

    # a filter the file name leaves out (one therapy): the file prepared for every therapy is not offered
    picker = at.multiselect(key=form_key(at, "export_filters", "therapy"))
    picker.set_value([_busiest_therapy(db)])
    _click(at, "Preview")
    _assert_clean(at)
    assert _preview_count(at) < events[0].after["rows"], (_preview_count(at), events[0].after["rows"])
    assert not [b for b in at.get("download_button") if str(b.proto.label).startswith("Download chairside_")]
    assert "The filters changed since the file was prepared" in " ".join(_texts(at.caption))


def _busiest_therapy(db) -> int:  # type: ignore[no-untyped-def]
    with db.reading() as s:
        return int(
            s.scalars(
                select(InfusionSession.therapy_id).group_by(InfusionSession.therapy_id).order_by(func.count().desc())
            ).first()
        )


# ------------------------------------------------------------------ Audit log
def test_audit_search_by_mrn_finds_that_patients_events_and_is_audited(db, make_app):
    staff = _demo(db)
    nurse = staff["nurse"]
    with db.reading() as s:
        first, second = (
            s.execute(
                select(InfusionSession.id, Patient.mrn)
                .join(Patient, Patient.id == InfusionSession.patient_id)
                .where(InfusionSession.patient_id != select(func.min(InfusionSession.patient_id)).scalar_subquery())
                .order_by(InfusionSession.patient_id, InfusionSession.id)
                .limit(1)
            ).one(),
            s.execute(
                select(InfusionSession.id, Patient.mrn)
                .join(Patient, Patient.id == InfusionSession.patient_id)
                .order_by(InfusionSession.patient_id, InfusionSession.id)
                .limit(1)
            ).one(),
        )
    assert first.mrn != second.mrn
    views.session_detail(db, nurse, first.id)  # opening a record is an audited 'view'
    views.session_detail(db, nurse, second.id)
    searches = _audit_count(db, "search_audit")

    at = _open(make_app, staff["quality"], "pages/audit.py")
    at.text_input(key=form_key(at, "audit_filters", "mrn")).set_value(first.mrn)
    _click(at, "Search")
    _assert_clean(at)
    assert "**1** matching events" in _texts(at.markdown), _texts(at.markdown)
    frame = at.dataframe[0].value
    assert list(frame["patient_mrn"]) == [first.mrn]
    assert list(frame["action"]) == ["view"] and list(frame["session_id"]) == [first.id]
    assert list(frame["user"]) == [nurse.name]

    assert _audit_count(db, "search_audit") == searches + 1
    with db.reading() as s:
        search = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "search_audit").order_by(AuditEvent.id.desc())
        ).first()
    assert search is not None and search.user_id == staff["quality"].user_id
    assert search.after["patient_mrn"] == first.mrn and search.after["matches"] == 1


# ------------------------------------------------------------------ Session record
def test_session_record_shows_the_patients_name_and_vitals(db, make_app):
    staff = _demo(db)
    with db.reading() as s:
        sid, mrn, given, family = s.execute(
            select(InfusionSession.id, Patient.mrn, Patient.given_name, Patient.family_name)
            .join(Patient, Patient.id == InfusionSession.patient_id)
            .where(InfusionSession.status == "discharged")
            .order_by(InfusionSession.id)
            .limit(1)
        ).one()
    at = _open(make_app, staff["nurse"], "pages/session.py")
    _assert_clean(at)
    at.text_input(key=form_key(at, "find_session", "mrn")).set_value(mrn)
    at.checkbox(key=form_key(at, "find_session", "any_day")).check()
    _click(at, "Find")
    _assert_clean(at)
    at.selectbox(key="find_pick").set_value(sid)
    run_app(at)
    _assert_clean(at)
    headings = [m for m in _texts(at.markdown) if m.startswith("### ")]
    assert headings and headings[0].startswith(f"### {given} {family} · "), headings
    assert "**Vitals**" in _texts(at.markdown)
    vitals = at.dataframe[0].value  # the first table under the timeline is the vitals table
    assert len(vitals) > 0
    assert any(c.startswith(f"MRN {mrn}") for c in _texts(at.caption))


def test_session_record_opens_on_the_clinics_day(db, make_app):
    """In the evening the UTC date is already tomorrow's; the page opens on the site's day, with its sessions."""
    staff = _demo(db)
    at = _open(make_app, staff["nurse"], "pages/session.py")
    _assert_clean(at)
    assert at.date_input(key=form_key(at, "find_session", "day")).value == _clinic_today(db)
