"""The fixed vocabulary of an infusion reaction: symptoms, actions taken and the CTCAE grades.

Kept beside the rules (not in the write service) so screens, charts and exports
read the same words without importing a service.
"""

from __future__ import annotations

SYMPTOMS = {
    "fever": "Fever",
    "chills": "Chills / rigors",
    "rash": "Rash",
    "pruritus": "Pruritus",
    "urticaria": "Urticaria",
    "flushing": "Flushing",
    "throat_irritation": "Throat irritation",
    "headache": "Headache",
    "nausea": "Nausea",
    "dyspnea": "Dyspnea",
    "hypotension": "Hypotension",
    "tachycardia": "Tachycardia",
    "chest_discomfort": "Chest discomfort",
    "anaphylaxis": "Anaphylaxis",
    "other": "Other",
}
ACTIONS = {
    "observed": "Observed only",
    "rate_slowed": "Rate slowed",
    "paused": "Infusion paused",
    "stopped": "Infusion stopped",
    "medication_given": "Medication given",
}
#: CTCAE v5.0 "Infusion related reaction" row (docs/clinical-basis.md §8), shown on screen.
CTCAE_IRR = {
    1: "Mild, transient; no interruption or intervention needed",
    2: "Infusion interrupted or therapy needed, but responds quickly to symptomatic treatment "
    "(antihistamines, NSAIDs, narcotics, IV fluids); prophylaxis needed for ≤ 24 h",
    3: "Prolonged (not quickly responsive); symptoms recur after improving; hospitalization needed for sequelae",
    4: "Life-threatening; urgent intervention needed",
    5: "Death",
}
