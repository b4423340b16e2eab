"""The Due page's "no due date" warning stays one readable line at a site with years of IVIG history."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from ui.due.sections import NAMED_IN_WARNING, protocol_warning


def _needs(n: int) -> pd.DataFrame:
    last = date(2026, 11, 27)
    return pd.DataFrame(
        {
            "patient_id": list(range(n)),
            "patient": [f"Patient{i:04d}, Pat" for i in range(n)],
            "mrn": [f"MRN-{i:06d}" for i in range(n)],
            "therapy": ["IVIG"] * n,
            # patient 0 treated longest ago, the last one most recently
            "last_infusion": [last - timedelta(days=n - i) for i in range(n)],
        }
    )


def test_a_few_patients_are_all_named_with_their_mrn() -> None:
    text = protocol_warning(_needs(3), can_set=True)
    assert text == (
        "No due date until the protocol interval is set: Patient0002, Pat · MRN-000002 · IVIG; "
        "Patient0001, Pat · MRN-000001 · IVIG; Patient0000, Pat · MRN-000000 · IVIG. "
        "Set the protocol interval in Protocol intervals below."
    )


def test_many_patients_name_the_most_recent_and_count_the_rest() -> None:
    text = protocol_warning(_needs(2476), can_set=True)
    assert text.startswith("No due date for 2,476 patients until their protocol interval is set.")
    assert f"; and {2476 - NAMED_IN_WARNING:,} more." in text
    assert "Patient2475, Pat · MRN-002475" in text and f"Patient{2476 - NAMED_IN_WARNING:04d}, Pat" in text
    assert f"Patient{2475 - NAMED_IN_WARNING:04d}, Pat" not in text  # the 11th most recent is counted
    assert text.count(" · IVIG") == NAMED_IN_WARNING


def test_those_who_may_not_set_it_are_told_who_does() -> None:
    text = protocol_warning(_needs(2), can_set=False)
    assert text.endswith("A charge nurse or an administrator sets it in Protocol intervals below.")
    assert "Set the protocol interval" not in text


def test_a_patient_on_two_protocol_therapies_counts_once() -> None:
    needs = pd.concat([_needs(12), _needs(12).assign(therapy="Cyclophosphamide")], ignore_index=True)
    assert protocol_warning(needs, can_set=True).startswith("No due date for 12 patients")
