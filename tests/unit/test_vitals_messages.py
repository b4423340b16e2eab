"""Refusal wording a nurse reads at the chair: a range reads as a range, a rate as a rate."""

from __future__ import annotations

import pytest

from infusion.clinical.vitals import VitalsEntry, validate_vitals
from infusion.errors import ValidationError
from infusion.services.entries import validate_rate


def test_a_pain_score_out_of_range_names_the_range_without_a_stray_unit():
    with pytest.raises(ValidationError) as refused:
        validate_vitals(VitalsEntry(pain=12), temperature_unit="C", weight_unit="kg")
    assert refused.value.problems["pain"] == "Pain 12 is outside the accepted range 0–10."


def test_a_zero_rate_is_not_said_to_be_outside_a_range_that_starts_at_zero():
    assert validate_rate(0) == "Rate 0 mL/h: enter a rate above 0 and up to 1000 mL per hour."
    assert validate_rate(80) is None
