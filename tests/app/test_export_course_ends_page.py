"""The Export page offers the course_ends dataset: its preview, its de-identified preview and its dictionary,
and a chair filter refused with a message (a course end has no chair)."""

from __future__ import annotations

from typing import Any

import pytest

from db.engine import Database
from infusion.exports.deidentify import ENV_SECRET
from infusion.exports.schema import column_names
from tests.app.helpers import run_app
from tests.app.test_export_page import _open
from tests.db.test_export_course_ends import Courses, _staff, build_courses
from tests.helpers import form_key


@pytest.fixture
def world(db: Database) -> Courses:
    return build_courses(db)


def _preview(at: Any) -> Any:
    next(b for b in at.button if b.label == "Preview").click()
    return run_app(at)


def test_the_course_ends_dataset_on_the_export_page(
    world: Courses, make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_SECRET, "a-test-secret-of-32-characters!!")
    at = _open(make_app, _staff(world.db, "quinn.page", "Quinn Page", "quality", None))
    choice = at.selectbox(key=form_key(at, "export_filters", "dataset"))
    assert "course_ends" in choice.options
    choice.set_value("course_ends")
    _preview(at)
    assert not at.error, [str(e.value) for e in at.error]
    frame = at.dataframe[0].value
    assert list(frame.columns) == column_names("course_ends", False)
    assert set(frame["course_end_id"]) == {world.first, world.second, world.lifted, world.honolulu}
    assert any("**4 rows** match" in str(m.value) for m in at.markdown)
    assert any(e.label == "Data dictionary: course_ends" for e in at.expander)

    at.toggle(key=form_key(at, "export_filters", "deid")).set_value(True)
    run_app(at, no_errors=True)
    frame = at.dataframe[0].value
    assert list(frame.columns) == column_names("course_ends", True)
    assert "mrn" not in frame.columns and "note" not in frame.columns
    shown = " ".join(str(v) for v in frame.to_numpy().ravel()).lower()
    assert not [i for i in world.identifiers if i.lower() in shown]

    at.multiselect(key=form_key(at, "export_filters", "chair")).set_value([world.buf_chair])
    _preview(at)
    assert any("no chair" in str(e.value) for e in at.error), [str(e.value) for e in at.error]
