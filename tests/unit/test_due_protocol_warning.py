"""The Due page's "no due date" warning stays one readable line at a site with years of IVIG history."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from ui.due.sections import NAMED_IN_WARNING, protocol_warning


def _needs(n: int) -> pd.DataFrame:
    last = date(2026, 11, 27)
    return pd.DataFrame(
        {
            "patient": [f"Patient{i:04d}, Pat" for i in range(n)],
            "therapy": ["IVIG"] * n,
            # patient 0 treated longest ago, the last one most recently
            "last_infusion": [last - timedelta(days=n - i) for i in range(n)],
        }
    )


def test_a_few_patients_are_all_named() -> None:
    text = protocol_warning(_needs(3))
    assert text == (
        "No due date for Patient0002, Pat (IVIG), Patient0001, Pat (IVIG), Patient0000, Pat (IVIG): "
        "set the protocol interval below."
    )


def test_many_patients_name_the_most_recent_and_count_the_rest() -> None:
    text = protocol_warning(_needs(2476))
    assert text.startswith("No due date for 2,476 patients until their protocol interval is set.")
    assert f"and {2476 - NAMED_IN_WARNING:,} more" in text
    assert "Patient2475, Pat (IVIG)" in text and f"Patient{2476 - NAMED_IN_WARNING:04d}, Pat" in text
    assert f"Patient{2475 - NAMED_IN_WARNING:04d}, Pat" not in text  # the 11th most recent is counted
    assert text.count("(IVIG)") == NAMED_IN_WARNING
