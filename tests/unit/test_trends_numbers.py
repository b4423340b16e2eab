"""The headings of the Trends numbers tables (ui.trends.numbers): one mapping for every table, human words
with units, unique within a table, safe as the first cell of a CSV column, and the time-against-label
columns named for what they hold (a negative difference is not "time lost")."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest

from infusion.exports.csv_writer import BOM, DANGEROUS_LEADING, csv_bytes
from infusion.reads.trends import (
    COMPLETENESS_COUNT_COLUMNS,
    COMPLETENESS_SESSION_COLUMNS,
    DURATION_SUMMARY_COLUMNS,
    GRADE_RATE_COLUMNS,
    INFUSION_NUMBER_RATE_COLUMNS,
    PCHART_COLUMNS,
    REACTION_RATE_COLUMNS,
    SITE_COLUMNS,
    TIME_LOST_COLUMNS,
    UTILISATION_COLUMNS,
)
from infusion.reads.trends.funnel import FUNNEL_COLUMNS
from infusion.reads.trends.summarised import DELAYED_RATE_COLUMNS
from ui.trends.numbers import HEADINGS, heading, shown

BY_SITE = ("site_id", "site")

#: every table the Trends page shows, by the name the page gives it, with the read's columns
TABLES: dict[str, tuple[str, ...]] = {
    "reaction_rates": REACTION_RATE_COLUMNS,
    "reaction_rates_by_site": (*BY_SITE, *REACTION_RATE_COLUMNS),
    "reaction_rates_by_grade": GRADE_RATE_COLUMNS,
    "reaction_rates_by_infusion": INFUSION_NUMBER_RATE_COLUMNS,
    "delayed_reactions": DELAYED_RATE_COLUMNS,
    "pchart": PCHART_COLUMNS,
    "durations": DURATION_SUMMARY_COLUMNS,
    "durations_by_site": (*BY_SITE, *DURATION_SUMMARY_COLUMNS),
    "utilisation": UTILISATION_COLUMNS,
    "utilisation_by_site": (*BY_SITE, *UTILISATION_COLUMNS),
    "time_lost": TIME_LOST_COLUMNS,
    "time_lost_by_site": (*BY_SITE, *TIME_LOST_COLUMNS),
    "completeness": COMPLETENESS_COUNT_COLUMNS,
    "completeness_by_site": (*BY_SITE, *COMPLETENESS_COUNT_COLUMNS),
    "incomplete_sessions": COMPLETENESS_SESSION_COLUMNS,
    "funnel": FUNNEL_COLUMNS,
    "sites": SITE_COLUMNS,
}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_column_of_every_table_has_a_human_heading(table: str) -> None:
    columns = TABLES[table]
    texts = [heading(c, table).text for c in columns]
    for column, text in zip(columns, texts):
        assert column in HEADINGS, f"{table}.{column} has no heading in ui.trends.numbers.HEADINGS"
        assert "_" not in text, f"{table}.{column} is shown as {text!r}"
    assert len(set(texts)) == len(texts), f"two columns of {table} share a heading: {texts}"


def test_no_heading_starts_like_a_spreadsheet_formula() -> None:
    texts = {h.text for h in HEADINGS.values()}
    texts |= {heading(c, t).text for t, columns in TABLES.items() for c in columns}
    assert not [t for t in texts if t.startswith(DANGEROUS_LEADING)]
    assert heading("=cmd_x").text.startswith("'")  # a column nobody has named yet is inert too


def test_minutes_and_hours_carry_their_unit() -> None:
    for column in (*DURATION_SUMMARY_COLUMNS, *TIME_LOST_COLUMNS, "gap_minutes"):
        if "minutes" in column:
            assert "(min" in heading(column).text, column
    for column in ("chair_hours_available", "chair_hours_occupied"):
        assert "(h)" in heading(column).text


def test_the_difference_from_the_label_is_named_for_what_it_is() -> None:
    extra = heading("mean_extra_minutes", "time_lost").text
    plan = heading("mean_planned_minutes", "time_lost_by_site").text
    assert "label" in extra and "negative" in extra and "lost" not in extra
    assert "label" in plan and "planned" not in plan
    assert heading("with_reaction", "time_lost_by_site").text == "with a reaction"
    assert heading("with_reaction", "reaction_rates").text == "sessions with a reaction"


def test_a_column_meaning_something_else_in_one_table_is_named_there() -> None:
    assert heading("sessions", "reaction_rates_by_grade").text == "sessions with this worst grade"
    assert heading("sessions", "durations").text == "completed sessions"
    assert heading("share", "completeness_by_site").text == "share flagged"
    assert heading("share", "utilisation").text == "share of chair-hours occupied"


def test_the_csv_carries_the_headings_and_the_values_unchanged() -> None:
    frame = pd.DataFrame(
        {
            "therapy_id": [3, 3],
            "therapy": ["=Tysabri", "Tysabri"],
            "with_reaction": [False, True],
            "sessions": [10, 2],
            "mean_infusion_minutes": [58.5, 71.0],
            "mean_planned_minutes": [60.0, 60.0],
            "mean_extra_minutes": [-1.5, 11.0],
            "mean_chair_minutes": [95.0, 140.25],
        }
    )
    out = shown(frame, "time_lost")
    assert out.to_numpy().tolist() == frame.to_numpy().tolist()
    data = csv_bytes(list(out.columns), out.itertuples(index=False, name=None)).decode("utf-8")
    assert data.startswith(BOM)
    header, first, second = list(csv.reader(io.StringIO(data.removeprefix(BOM))))
    assert header == [heading(c, "time_lost").text for c in frame.columns]
    assert header[0] == "therapy id" and header[6] == "difference from label time, mean (min; negative = shorter)"
    assert first[1] == "'=Tysabri" and first[6] == "-1.5"  # text neutralised, a negative stays a number


def test_incomplete_sessions_name_their_check_in_words_on_screen_and_in_the_csv() -> None:
    frame = pd.DataFrame(
        {c: [None, None] for c in COMPLETENESS_SESSION_COLUMNS}
        | {"check": ["missing_iv_stop", "vitals_overdue"], "session_id": [7, 9]}
    )
    out = shown(frame, "incomplete_sessions")
    assert list(out[heading("check", "incomplete_sessions").text]) == [
        "Missing IV stop time",
        "Vitals overdue during infusion",
    ]
    assert list(frame["check"]) == ["missing_iv_stop", "vitals_overdue"]  # the read's frame is not changed
