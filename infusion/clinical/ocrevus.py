"""Ocrevus (ocrelizumab IV) shorter infusion: allowed only without a prior serious infusion reaction.

OCREVUS USPI §2.3 (Dosage and Administration, Table of infusion options; docs/clinical-basis.md §3):
later 600 mg doses run over about 3.5 h (standard) or, for a patient with no prior serious infusion
reaction with any previous Ocrevus infusion, over about 2 h (shorter infusion). Pure rules, no database.

Chairside reads "serious" as CTCAE grade ≥ 3 (severe or worse, docs/clinical-basis.md §8): the label
does not define it in CTCAE terms, so the mapping is a **product choice**.
"""

from __future__ import annotations

from dataclasses import dataclass

OCREVUS_IV = "ocrelizumab_iv"
#: The standard later infusion: about 3.5 h (OCREVUS USPI §2.3; docs/clinical-basis.md §3).
STANDARD_LATER_MINUTES = 210
#: The first infusion the shorter option can apply to: the 600 mg doses (infusions 1–2 are 300 mg
#: over ≥ 2.5 h, OCREVUS USPI §2.3).
FIRST_LATER_INFUSION = 3
#: CTCAE grade from which a reaction counts as "serious" here (a product choice, see above).
SERIOUS_GRADE = 3
#: Minutes under the standard duration still read as the standard infusion (pump and charting
#: slack); the clinic's window tolerance default, docs/clinical-basis.md §10 (a product choice).
TOLERANCE_MINUTES = 15


@dataclass(frozen=True)
class ShorterInfusionFlag:
    """Why this session needs attention: the message for the header and the prior grade behind it."""

    message: str
    prior_worst_grade: int


def is_shortened(
    *,
    highest_rate_ml_h: float | None,
    standard_max_rate_ml_h: float | None,
    infusion_minutes: float | None,
    stopped_early: bool = False,
) -> bool:
    """Whether an Ocrevus later infusion runs (or ran) on the shorter option.

    Either a rate above the standard plan's maximum (200 mL/h in the seeded catalog: the 500 mL bag
    cannot go in over about 2 h without it), or a completed infusion shorter than the standard
    3.5 h less the tolerance that was not stopped early (a reaction stop or a partial dose is not
    a shorter infusion)."""
    if highest_rate_ml_h is not None and standard_max_rate_ml_h is not None:
        if highest_rate_ml_h > standard_max_rate_ml_h + 0.5:
            return True
    if infusion_minutes is not None and not stopped_early:
        return infusion_minutes < STANDARD_LATER_MINUTES - TOLERANCE_MINUTES
    return False


def shorter_infusion_flag(
    *, therapy_code: str, infusion_number: int, shortened: bool, prior_worst_grade: int | None
) -> ShorterInfusionFlag | None:
    """A flag when a shortened Ocrevus infusion is given to a patient with a prior grade ≥ 3 reaction.

    `prior_worst_grade` is the worst CTCAE grade of the patient's reactions on earlier Ocrevus
    infusions (None: none recorded). OCREVUS USPI §2.3 allows the shorter (2-hour) infusion only for
    patients with no prior serious infusion reaction with any previous Ocrevus infusion."""
    if therapy_code != OCREVUS_IV or infusion_number < FIRST_LATER_INFUSION or not shortened:
        return None
    if prior_worst_grade is None or prior_worst_grade < SERIOUS_GRADE:
        return None
    return ShorterInfusionFlag(
        f"Shorter Ocrevus infusion for a patient with a prior grade {prior_worst_grade} infusion reaction: "
        "the label allows the 2-hour infusion only without a prior serious infusion reaction; "
        "give the standard infusion (about 3.5 h). OCREVUS USPI §2.3.",
        prior_worst_grade,
    )
