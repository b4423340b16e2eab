"""Why a patient × therapy course was ended (the Due page's "course ended" mark): a product vocabulary
for the due list, not a clinical rule. No number, no time limit: a course ends only when a person says so
(`infusion.services.courses`), and it stays ended until a person resumes it."""

from __future__ import annotations

#: reason code → the label a nurse picks (stored as the code; `course_end.reason` is checked against it)
REASONS: dict[str, str] = {
    "completed": "Course completed",
    "switched": "Switched to another therapy",
    "transferred": "Care transferred elsewhere",
    "declined": "Patient declined further treatment",
    "died": "Patient died",
    "other": "Other (say why in the note)",
}
REASON_CODES: tuple[str, ...] = tuple(REASONS)
#: reasons that need a note (the code alone says nothing)
NOTE_REQUIRED = frozenset({"other"})
#: the longest note (and resume reason) kept, in characters
NOTE_MAX = 500
