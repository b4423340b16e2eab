"""AppTest: how the Trends page presents its numbers — human headings with units on every table and CSV
(through the shared spreadsheet-safe writer), the time against the label named for what it is with its
caption, a plain message instead of a chair heatmap for home visits, and the p-chart labelled by month."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import pytest

import ui.common
from infusion.accounts.actor import Actor
from infusion.exports.csv_writer import BOM
from tests.app.helpers import run_app
from tests.helpers import ADMIN, ago, form_key, new_session, walk

pytestmark = pytest.mark.usefixtures("fresh_page_caches")

MANAGER = Actor(None, "Clinic manager", "manager")
NURSE = Actor(None, "Clinic nurse", "charge_nurse")


def _open(make_app: Any) -> Any:
    at = make_app()
    at.session_state["actor"] = MANAGER
    run_app(at, no_errors=True)
    return run_app(at.switch_page("pages/trends.py"), no_errors=True)


def _sessions(db: Any, n: int = 3) -> None:
    """Tysabri visits finished within the label's hour (40 min), so the difference from it is negative."""
    from infusion.services.setup import add_chair

    chair = add_chair(db, ADMIN, "Chair 1").id
    for day in range(n):
        sid = new_session(db, NURSE, "natalizumab", chair_id=chair)
        walk(db, NURSE, sid, "discharged", t0=ago(60 * 24 * (day + 2)), infusion_minutes=40)


def _texts(elements: Any) -> list[str]:
    return [str(e.value) for e in elements]


def _headings(at: Any) -> list[list[str]]:
    return [[str(c) for c in d.value.columns] for d in at.dataframe]


def test_every_table_shows_headings_not_column_names(db: Any, make_app: Any) -> None:
    _sessions(db)
    at = _open(make_app)
    tables = _headings(at)
    assert len(tables) >= 8, tables
    raw = [c for columns in tables for c in columns if "_" in c]
    assert raw == [], raw
    everything = {c for columns in tables for c in columns}
    assert {"completed sessions", "sessions with a reaction", "per 100 completed"} <= everything
    assert "chair-hours occupied (h)" in everything and "share of chair-hours occupied" in everything
    assert "IV start → stop, median (min)" in everything


def test_time_against_the_label_is_named_for_what_it_is(db: Any, make_app: Any) -> None:
    _sessions(db)
    at = _open(make_app)
    frame = next(d.value for d in at.dataframe if "label time used, mean (min)" in d.value.columns)
    difference = "difference from label time, mean (min; negative = shorter)"
    assert float(frame[difference].iloc[0]) < 0  # finished within the label's hour: negative, as the read says
    assert not any("time lost" in m.lower() for m in _texts(at.markdown) + _texts(at.subheader))
    caption = next(c for c in _texts(at.caption) if c.startswith("Label time used"))
    assert "maximum" in caption and "at least" in caption and "not time lost" in caption


def test_home_visits_show_a_message_instead_of_a_chair_heatmap(db: Any, make_app: Any) -> None:
    _sessions(db)
    at = _open(make_app)
    assert any("share of chair-hours occupied" in c for c in sum(_headings(at), []))
    at.selectbox(key=form_key(at, "trend_filters", "location")).set_value("home")
    next(b for b in at.button if b.label == "Apply filters").click()
    run_app(at, no_errors=True)
    assert "Chair utilisation" in _texts(at.subheader)
    assert any("home visits use none" in i for i in _texts(at.info)), _texts(at.info)
    assert not any("share of chair-hours occupied" in c for c in sum(_headings(at), []))
    assert not _heatmaps(at)


def _heatmaps(at: Any) -> list[dict[str, Any]]:
    found = []
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        found += [t for t in spec.get("data", []) if t.get("type") == "heatmap"]
    return found


def _pchart_axis(at: Any) -> dict[str, Any]:
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if any(t.get("name") == "monthly rate" for t in spec.get("data", [])):
            return spec["layout"]["xaxis"]
    raise AssertionError("no p-chart on the page")


def test_the_pchart_of_a_short_period_is_labelled_by_month(db: Any, make_app: Any) -> None:
    _sessions(db)
    at = _open(make_app)
    assert _heatmaps(at)  # the clinic's heatmap is there for clinic chairs
    day = ago(60 * 24 * 2).date()
    at.date_input(key=form_key(at, "trend_filters", "from")).set_value(day.replace(day=1))
    at.date_input(key=form_key(at, "trend_filters", "to")).set_value(day)
    next(b for b in at.button if b.label == "Apply filters").click()
    run_app(at, no_errors=True)
    axis = _pchart_axis(at)
    assert axis["ticktext"] == [day.strftime("%b %Y")]


def test_csv_downloads_carry_the_headings_through_the_shared_writer(
    db: Any, make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[tuple[list[str], bytes]] = []
    real = ui.common.csv_bytes

    def recording(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
        data = real(header, rows)
        written.append((list(header), data))
        return data

    monkeypatch.setattr(ui.common, "csv_bytes", recording)
    _sessions(db)
    at = make_app()
    at.session_state["actor"] = MANAGER
    run_app(at, no_errors=True)
    written.clear()  # the page the manager lands on first may offer its own CSV
    run_app(at.switch_page("pages/trends.py"), no_errors=True)
    assert len(written) >= 6
    for header, data in written:
        assert data.startswith(BOM.encode("utf-8"))
        assert [c for c in header if "_" in c] == [], header
    rates = next(h for h, _ in written if "per 100 completed" in h)
    assert rates[:3] == ["therapy id", "therapy", "completed sessions"]
