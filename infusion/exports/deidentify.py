"""HIPAA Safe Harbor de-identification for exports (45 CFR 164.514(b)(2), clinical.md §6c).

What each column becomes is declared in `infusion.exports.schema` (one `Deid`
per column); this module holds the value transformations and the rules behind
them, so the CSV export and the FHIR bundle de-identify the same way.

Pseudonymous keys are HMAC-SHA256 of Chairside's internal patient (or session)
number under a secret from configuration. The internal number, not the MRN, is
hashed because 164.514(c) allows a re-identification code only if it is not
derived from information about the individual; the secret makes the key
impossible to recompute (or to match against a list of patient numbers)
without it, and stable across exports made with the same secret.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from datetime import date, datetime

from infusion.errors import ChairsideError

ENV_SECRET = "CHAIRSIDE_DEID_SECRET"
#: Patient numbers are small integers, so a short secret could be brute-forced from the keys.
MIN_SECRET_BYTES = 16
#: 16 hex digits = 64 bits: collisions are negligible at clinic scale (≈ n²/2⁶⁵).
KEY_HEX_DIGITS = 16
OLDEST_AGE = 89  # Safe Harbor: ages over 89 are aggregated into one category
AGE_90_PLUS = "90+"
OTHER = "Other"

#: What de-identified mode removes or changes, in plain words, for the export page and the data dictionary.
DEID_NOTICE: tuple[str, ...] = (
    "Patient names, medical record numbers (MRN) and dates of birth are removed; Chairside exports no address, "
    "phone or e-mail.",
    "Each patient, and each session, is replaced by a pseudonymous key (patient_key, session_key): a keyed hash "
    "made with the clinic's de-identification secret. The same patient gets the same key in every export made "
    "with the same secret; without the secret the key cannot be traced back to the patient or the MRN.",
    "Dates are reduced to the year (session_year, event_year). Times are given as minutes relative to the "
    "session's IV start (*_rel_min columns); check-in when the IV never started, the scheduled time when the "
    "patient never checked in (column time_reference).",
    "Ages over 89 are given as 90+.",
    "Free text is removed: notes, every typed reason (deferral, cancellation, early discharge, skipped "
    "premedication, correction, value not obtained), 'other' symptom descriptions, medication given for a "
    "reaction, and the before/after details of audit events. A diagnosis outside Chairside's list becomes Other.",
    "Product lot numbers are removed; Chairside records no device serial numbers.",
    "Staff and provider names are removed (a clinic policy choice; they are not patient identifiers). Staff "
    "numbers remain so workload can be compared.",
    "Chairside's own record numbers are removed or replaced by the keys above.",
    "Kept as recorded: therapy, dose, chair, vital signs, NEWS2, flags, reaction grades, symptoms and actions "
    "(coded), durations, and premedication drug, dose and route as typed at the chair.",
    "Safe Harbor also requires that the clinic has no actual knowledge that what remains could identify a "
    "patient (a rare therapy in a small clinic, for instance). Whether times relative to IV start meet Safe "
    "Harbor is not settled: have the privacy officer sign off before data leaves the clinic.",
)


def resolve_secret(secret: bytes | str | None = None) -> bytes:
    """The de-identification secret: the argument, else CHAIRSIDE_DEID_SECRET. Refuses a missing or short one."""
    if secret is None or secret == b"" or secret == "":
        secret = os.environ.get(ENV_SECRET) or None
    if secret is None:
        raise ChairsideError(
            f"De-identified export needs a secret: set {ENV_SECRET} (at least {MIN_SECRET_BYTES} characters, "
            "kept out of the exported data). It keys the pseudonymous patient codes; without it they could be "
            "recomputed from patient numbers."
        )
    raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    if len(raw) < MIN_SECRET_BYTES:
        raise ChairsideError(
            f"The de-identification secret is too short ({len(raw)} bytes): use at least {MIN_SECRET_BYTES} "
            "random characters, or the pseudonymous keys could be guessed."
        )
    return raw


def pseudonym(secret: bytes, kind: str, value: int | str) -> str:
    """A stable pseudonymous key: 'P-' or 'S-' and 16 hex digits of HMAC-SHA256(secret, kind:value)."""
    message = f"chairside:{kind}:{value}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).hexdigest()
    return f"{kind[:1].upper()}-{digest[:KEY_HEX_DIGITS]}"


def patient_key(secret: bytes, patient_id: int) -> str:
    return pseudonym(secret, "patient", patient_id)


def session_key(secret: bytes, session_id: int) -> str:
    return pseudonym(secret, "session", session_id)


def age_on(birth_date: date | None, day: date) -> int | None:
    """Whole years of age on `day`."""
    if birth_date is None:
        return None
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def age_label(age: int | None) -> str | None:
    """Age for a de-identified file: ages over 89 become '90+'."""
    if age is None:
        return None
    return AGE_90_PLUS if age > OLDEST_AGE else str(age)


def reference_time(
    iv_started_at: datetime | None, checked_in_at: datetime | None, scheduled_at: datetime | None
) -> tuple[datetime | None, str | None]:
    """What relative times count from: IV start, else check-in, else the scheduled time."""
    for moment, label in ((iv_started_at, "iv_start"), (checked_in_at, "check_in"), (scheduled_at, "scheduled")):
        if moment is not None:
            return moment, label
    return None, None


def relative_minutes(moment: datetime | None, reference: datetime | None) -> float | None:
    """Minutes from `reference` to `moment` (negative = before), to 0.1 min."""
    if moment is None or reference is None:
        return None
    return round((moment - reference).total_seconds() / 60, 1)


def within_vocabulary(value: str | None, vocabulary: tuple[str, ...]) -> str | None:
    """A free-typed category kept only when it is one of the known values (else 'Other')."""
    if value is None or value == "":
        return None
    return value if value in vocabulary else OTHER
