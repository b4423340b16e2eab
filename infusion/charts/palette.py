"""The visual language in one place: the board, cards, timeline and charts
use the same colour for the same status or grade. Colour is never the only signal."""

#: One colour per status everywhere (board, cards, timeline).
STATUS_COLOURS = {
    "scheduled": "#9ca3af",  # waiting grey
    "checked_in": "#2563eb",  # blue
    "ready": "#2563eb",
    "infusing": "#16a34a",  # green
    "paused": "#f59e0b",  # amber
    "reaction": "#dc2626",  # red
    "observation": "#7c3aed",  # purple
    "discharged": "#4b5563",  # dark grey
    "deferred": "#9ca3af",  # striped grey (pattern on bars)
    "cancelled": "#9ca3af",
}
#: Grades: 1 yellow, 2 orange, 3 red, 4 dark red, 5 black.
GRADE_COLOURS = {1: "#facc15", 2: "#f97316", 3: "#dc2626", 4: "#7f1d1d", 5: "#000000"}
#: CTCAE v5.0 general scale (docs/clinical-basis.md §8).
GRADE_WORDS = {1: "mild", 2: "moderate", 3: "severe", 4: "life-threatening", 5: "death"}
