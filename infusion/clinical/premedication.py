"""Premedication as coded choices: the drugs the therapy labels name, a dose number, a unit and a route.

Pure rules, no database. The nurse picks a drug from `DRUGS` (or "other"),
types the dose as a number and picks its unit and route, so what reaches a
de-identified export is a code, a number and two codes: never text a person
typed (HIPAA Safe Harbor, 45 CFR 164.514(b)(2); a name or a phone number once
came out through the free-text premedication field). The free text the old
form took stays in the identified record only.

The list holds the premedications the labels of the seeded therapies name
(`therapy_catalog.toml` `premedication_text`; sources in `BASIS` and per drug in
`PremedDrug.source`): a corticosteroid (methylprednisolone), an antihistamine
(diphenhydramine is the one the labels and trials name) and an antipyretic
(acetaminophen / paracetamol). Everything else a clinic gives (dexamethasone,
desloratadine, ondansetron, …) is "other": its name stays in the identified
free text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

#: Where the clinical sources of this list are written up: the "Premedication" paragraph of §3.
BASIS = "docs/clinical-basis.md §3 (Premedication)"

OTHER = "other"


@dataclass(frozen=True)
class PremedDrug:
    """One pickable premedication."""

    code: str
    name: str  # shown in the picker
    drug_class: str
    default_unit: str
    default_route: str
    synonyms: tuple[str, ...]  # free text that is exactly this drug (lower case), for entries typed the old way
    source: str  # which therapy labels name it for premedication


DRUGS: tuple[PremedDrug, ...] = (
    PremedDrug(
        "methylprednisolone",
        "Methylprednisolone",
        "corticosteroid",
        "mg",
        "IV",
        ("methylprednisolone", "solu-medrol", "solumedrol"),
        f"{BASIS}: OCREVUS USPI §2.2 (methylprednisolone 100 mg IV about 30 min before each infusion); "
        "BRIUMVI USPI §2.2 (corticosteroid); LEMTRADA USPI §2.2 (corticosteroid on the first 3 days of each "
        "course; therapy_catalog.toml: trials used methylprednisolone 1,000 mg); Rituxan USPI in RA "
        "(methylprednisolone 100 mg IV 30 min before; therapy_catalog.toml, not yet in §3)",
    ),
    PremedDrug(
        "diphenhydramine",
        "Diphenhydramine (antihistamine)",
        "antihistamine",
        "mg",
        "IV",
        ("diphenhydramine", "benadryl"),
        f"{BASIS}: OCREVUS USPI §2.2 and BRIUMVI USPI §2.2 (antihistamine 30–60 min before; diphenhydramine "
        "is the usual one), OCREVUS ZUNOVO (antihistamine ≥ 30 min before); Rituxan USPI (acetaminophen + "
        "antihistamine; therapy_catalog.toml, not yet in §3)",
    ),
    PremedDrug(
        "acetaminophen",
        "Acetaminophen (paracetamol)",
        "antipyretic",
        "mg",
        "PO",
        ("acetaminophen", "paracetamol", "tylenol", "apap"),
        "Rituxan USPI (acetaminophen + antihistamine), OCREVUS / BRIUMVI / LEMTRADA (antipyretic optional) and "
        "IVIG (practice, not required by the label): therapy_catalog.toml premedication_text; "
        f"{BASIS} does not list acetaminophen yet",
    ),
    PremedDrug(
        OTHER,
        "Other",
        "other",
        "mg",
        "PO",
        (),
        "Any premedication not listed (e.g. dexamethasone or desloratadine for Ocrevus Zunovo, ondansetron "
        f"for cyclophosphamide; {BASIS}): exported as 'other', its name kept in the identified record only",
    ),
)

DRUG_CODES: tuple[str, ...] = tuple(d.code for d in DRUGS)
DRUG_NAMES: dict[str, str] = {d.code: d.name for d in DRUGS}
#: Dose units a premedication is written in.
UNITS: tuple[str, ...] = ("mg", "g", "mcg")
#: Routes (the premedication table's `route` column; IV was the default before coding).
ROUTES: dict[str, str] = {"IV": "Intravenous", "PO": "By mouth", "IM": "Intramuscular", "SC": "Subcutaneous"}
#: A dose above this (in any unit) is a typing slip, not a premedication.
MAX_DOSE = 100_000.0

_SYNONYMS = {synonym: d.code for d in DRUGS for synonym in d.synonyms}
_DOSE = re.compile(r"^(\d+(?:\.\d+)?)\s*(mg|g|mcg|µg|ug)$", re.IGNORECASE)


def drug(code: str) -> PremedDrug:
    """The drug of a code (KeyError for an unknown one)."""
    for d in DRUGS:
        if d.code == code:
            return d
    raise KeyError(code)


def _normal(text: str) -> str:
    return " ".join(text.strip().lower().split()).rstrip(".")


def code_for(text: str | None) -> str | None:
    """The drug code of free text that is exactly a listed drug ('Benadryl' → diphenhydramine), else None."""
    if text is None:
        return None
    return _SYNONYMS.get(_normal(text))


def parse_dose(text: str | None) -> tuple[float, str] | None:
    """A plain dose typed as text ('25 mg', '1 g', '0.5mg') as (number, unit); None for anything else."""
    if text is None:
        return None
    match = _DOSE.match(_normal(text))
    if match is None:
        return None
    unit = match.group(2).lower()
    value = float(match.group(1))
    if not 0 < value <= MAX_DOSE:
        return None
    return value, "mcg" if unit in ("µg", "ug") else unit


def validate_coded(
    drug_code: str | None, dose_value: float | None, dose_unit: str | None, route: str
) -> dict[str, str]:
    """Problems with coded premedication fields, keyed by field (empty when valid)."""
    problems: dict[str, str] = {}
    if drug_code is not None and drug_code not in DRUG_CODES:
        problems["drug_code"] = "Pick the premedication drug from the list (or Other)."
    if dose_value is not None:
        if isinstance(dose_value, bool) or not isinstance(dose_value, int | float) or not math.isfinite(dose_value):
            problems["dose_value"] = "Enter the dose as a number."
        elif not 0 < dose_value <= MAX_DOSE:
            problems["dose_value"] = "The dose must be more than 0: check the number and the unit."
        if dose_unit is None:
            problems["dose_unit"] = f"Pick the dose unit ({', '.join(UNITS)})."
    if dose_unit is not None and dose_unit not in UNITS:
        problems["dose_unit"] = f"Dose unit must be one of {', '.join(UNITS)}."
    if dose_unit is not None and dose_value is None:
        problems["dose_value"] = "Enter the dose as a number."
    if route not in ROUTES:
        problems["route"] = f"Route must be {', '.join(list(ROUTES)[:-1])} or {list(ROUTES)[-1]}."
    return problems


def format_dose(value: float | None, unit: str | None) -> str:
    """'25 mg', '1.5 g'; empty without a valid number and unit."""
    if value is None or unit not in UNITS or not math.isfinite(value):
        return ""
    return f"{value:g} {unit}"


def coded_summary(drug_code: str | None, dose_value: float | None, dose_unit: str | None, route: str | None) -> str:
    """One entry as codes only, 'diphenhydramine 25 mg IV': nothing typed can pass through.

    A code outside the list becomes 'other', a dose without a listed unit is left out, a route outside
    the list is left out; so whatever is stored, the result is built from this module's words and a number.
    """
    parts = [drug_code if drug_code in DRUG_CODES else OTHER]
    dose = format_dose(dose_value, dose_unit)
    if dose:
        parts.append(dose)
    if route in ROUTES:
        parts.append(route)
    return " ".join(parts)
