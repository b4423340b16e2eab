"""The Ocrevus shorter-infusion rule (OCREVUS USPI §2.3; docs/clinical-basis.md §3)."""

from __future__ import annotations

from infusion.clinical.ocrevus import is_shortened, shorter_infusion_flag


def test_a_rate_above_the_standard_maximum_or_a_short_complete_infusion_is_shortened() -> None:
    assert is_shortened(highest_rate_ml_h=300, standard_max_rate_ml_h=200, infusion_minutes=None)
    assert not is_shortened(highest_rate_ml_h=200, standard_max_rate_ml_h=200, infusion_minutes=None)
    assert is_shortened(highest_rate_ml_h=None, standard_max_rate_ml_h=200, infusion_minutes=125)
    assert not is_shortened(highest_rate_ml_h=200, standard_max_rate_ml_h=200, infusion_minutes=210)
    # a reaction stop is not a shorter infusion
    assert not is_shortened(highest_rate_ml_h=120, standard_max_rate_ml_h=200, infusion_minutes=90, stopped_early=True)


def test_flag_only_for_a_shortened_later_ocrevus_infusion_after_a_grade_3_or_worse() -> None:
    flag = shorter_infusion_flag(therapy_code="ocrelizumab_iv", infusion_number=4, shortened=True, prior_worst_grade=3)
    assert flag is not None and "grade 3" in flag.message and "USPI §2.3" in flag.message
    assert (
        shorter_infusion_flag(therapy_code="ocrelizumab_iv", infusion_number=4, shortened=True, prior_worst_grade=2)
        is None
    )
    assert (
        shorter_infusion_flag(therapy_code="ocrelizumab_iv", infusion_number=4, shortened=True, prior_worst_grade=None)
        is None
    )
    assert (
        shorter_infusion_flag(therapy_code="ocrelizumab_iv", infusion_number=4, shortened=False, prior_worst_grade=4)
        is None
    )
    assert (
        shorter_infusion_flag(therapy_code="ocrelizumab_iv", infusion_number=2, shortened=True, prior_worst_grade=3)
        is None
    )
    assert (
        shorter_infusion_flag(therapy_code="ublituximab", infusion_number=4, shortened=True, prior_worst_grade=3)
        is None
    )
