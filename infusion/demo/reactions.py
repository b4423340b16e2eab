"""How often and how each therapy's infusion reactions show up (docs/clinical-basis.md §11, §3).

One `ReactionProfile` per catalog therapy code, with the published rates
quoted next to each, and the rescue medication a nurse documents by CTCAE grade.
Only therapies listed in `REACTIONS` take part in a demo load.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReactionProfile:
    """How often and how a therapy's infusion reactions show up in the demo."""

    by_infusion: tuple[float, ...]  # chance for infusion 1, 2, ...; the last value holds after
    severe: float  # share of reactions that are CTCAE grade 3+ (a tenth of those grade 4)
    symptoms: tuple[tuple[str, float], ...]  # symptom key (or "other:<text>") and weight
    anaphylaxis: bool = False  # can a grade 3+ reaction be anaphylaxis?
    in_observation: float = 0.12  # share starting after the IV stop
    #: share of patients who ever react (docs/clinical-basis.md §11), where a label or trial gives one.
    #: Reactions then cluster in those patients: a patient is drawn reaction-prone once, with this
    #: chance, and only reaction-prone patients react, each infusion with `by_infusion / patients`
    #: (capped at 1), so the share of infusions with a reaction stays `by_infusion` while the share of
    #: patients follows the label. None: no per-patient figure, every infusion draws `by_infusion`.
    patients: float | None = None


REACTIONS: dict[str, ReactionProfile] = {
    # Ocrevus: 34% first infusion (OPERA), falling afterwards; ~23% first 600 mg; serious 0.3%.
    "ocrelizumab_iv": ReactionProfile(
        (0.34, 0.20, 0.15, 0.12, 0.10),
        0.02,
        (
            ("pruritus", 5),
            ("rash", 4),
            ("throat_irritation", 5),
            ("flushing", 4),
            ("urticaria", 2),
            ("headache", 2),
            ("fever", 1),
            ("nausea", 1),
            ("tachycardia", 1),
            ("dyspnea", 1),
            ("hypotension", 1),
            ("other:Fatigue", 1),
            ("other:Dizziness", 1),
        ),
        anaphylaxis=True,
        patients=0.37,  # §11: 34–40 % of patients (OPERA/ORATORIO); the middle of the range
    ),
    # Zunovo SC: injection reactions common, exact rate [UNCONFIRMED] in docs/clinical-basis.md §11.
    "ocrelizumab_sc": ReactionProfile(
        (0.25, 0.10),
        0.01,
        (
            ("other:Injection-site erythema", 5),
            ("other:Injection-site pain", 4),
            ("other:Injection-site swelling", 3),
            ("headache", 1),
            ("rash", 1),
            ("pruritus", 1),
            ("flushing", 1),
        ),
        in_observation=0.4,
    ),
    # Tysabri: hypersensitivity mostly by the 2nd infusion; any infusion event 24% vs 18% placebo.
    "natalizumab": ReactionProfile(
        (0.08, 0.08, 0.03),
        0.05,
        (
            ("headache", 5),
            ("other:Dizziness", 3),
            ("other:Fatigue", 2),
            ("urticaria", 2),
            ("pruritus", 2),
            ("chills", 2),
            ("flushing", 2),
            ("nausea", 2),
            ("rash", 1),
            ("hypotension", 1),
            ("chest_discomfort", 1),
        ),
        anaphylaxis=True,
        patients=0.24,  # §11: 24 % of patients (AFFIRM)
    ),
    # Lemtrada: ~90% of patients, on every day of a course; severe ~9%, serious 3%. Per course day below.
    "alemtuzumab": ReactionProfile(
        (0.90, 0.85, 0.80, 0.75, 0.75, 0.80, 0.75, 0.70),
        0.06,
        (
            ("headache", 5),
            ("rash", 5),
            ("fever", 4),
            ("nausea", 3),
            ("flushing", 3),
            ("urticaria", 3),
            ("chest_discomfort", 1),
            ("tachycardia", 2),
            ("hypotension", 1),
            ("other:Bradycardia", 1),
        ),
        patients=0.91,  # §11: 90–92 % of patients (USPI, CARE-MS); the middle of the range
    ),
    # Briumvi: 45% (EU SmPC), highest with the first infusion.
    "ublituximab": ReactionProfile(
        (0.45, 0.15, 0.08),
        0.03,
        (
            ("fever", 4),
            ("chills", 4),
            ("headache", 4),
            ("other:Influenza-like illness", 2),
            ("tachycardia", 2),
            ("nausea", 2),
            ("other:Abdominal pain", 1),
            ("throat_irritation", 2),
            ("other:Erythema", 1),
        ),
        anaphylaxis=True,
        patients=0.453,  # §11: 45.3 % of patients (EU SmPC)
    ),
    # Rituximab: high at the first infusion, falling sharply after (RA 18% -> 10% -> 7–10%; T1D 93% -> 27%).
    "rituximab": ReactionProfile(
        (0.45, 0.15, 0.08),
        0.05,
        (
            ("fever", 4),
            ("chills", 5),
            ("rash", 3),
            ("pruritus", 3),
            ("hypotension", 2),
            ("tachycardia", 2),
            ("nausea", 2),
            ("dyspnea", 1),
            ("throat_irritation", 1),
        ),
        anaphylaxis=True,
    ),
    # Cyclophosphamide: acute infusion reactions uncommon [UNCONFIRMED]; nausea/vomiting acute.
    "cyclophosphamide": ReactionProfile(
        (0.04, 0.03), 0.02, (("nausea", 6), ("other:Vomiting", 3), ("headache", 2), ("flushing", 1))
    ),
    # IVIG: 5–15% of infusions, higher at the first and with fast rates.
    "ivig": ReactionProfile(
        (0.15, 0.10, 0.07),
        0.02,
        (
            ("headache", 6),
            ("flushing", 3),
            ("chills", 3),
            ("other:Myalgia", 2),
            ("fever", 2),
            ("nausea", 2),
            ("other:Back pain", 2),
            ("hypotension", 1),
        ),
        anaphylaxis=True,
        patients=0.35,  # §11: 20–50 % of patients; 0.35, the middle, is a product choice
    ),
    # IV methylprednisolone: acute reactions mostly mild [UNCONFIRMED rate].
    "methylprednisolone": ReactionProfile(
        (0.03,), 0.02, (("flushing", 4), ("other:Metallic taste", 3), ("tachycardia", 2), ("headache", 2))
    ),
    # Plasma exchange: ~4.75% of procedures, mostly reversible.
    "plasma_exchange": ReactionProfile(
        (0.05,),
        0.03,
        (
            ("other:Perioral tingling (citrate)", 5),
            ("other:Muscle cramps", 3),
            ("urticaria", 2),
            ("hypotension", 2),
            ("nausea", 1),
        ),
        in_observation=0.05,
    ),
    # Edaravone: low; headache, hypersensitivity (sulfite) rare.
    "edaravone": ReactionProfile(
        (0.02,),
        0.03,
        (("headache", 4), ("rash", 2), ("urticaria", 1), ("pruritus", 1), ("dyspnea", 1)),
        anaphylaxis=True,
    ),
}

MEDS_BY_GRADE = {
    1: ("Diphenhydramine 25 mg PO", "Acetaminophen 650 mg PO", "Cetirizine 10 mg PO"),
    2: (
        "Diphenhydramine 50 mg IV; acetaminophen 650 mg PO",
        "Famotidine 20 mg IV; diphenhydramine 25 mg IV",
        "Hydrocortisone 100 mg IV; diphenhydramine 50 mg IV",
        "Ondansetron 4 mg IV",
        "Sodium chloride 0.9% 500 mL IV bolus",
    ),
    3: (
        "Epinephrine 0.3 mg IM; diphenhydramine 50 mg IV; methylprednisolone 125 mg IV; "
        "sodium chloride 0.9% 1,000 mL bolus; oxygen 2 L/min",
    ),
}
