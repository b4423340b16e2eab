"""HIPAA Safe Harbor de-identification for exports (45 CFR 164.514(b)(2), docs/clinical-basis.md §13).

What each column becomes is declared in `infusion.exports.schema` (one `Deid`
per column); this module holds the value transformations and the rules behind
them, so the CSV export and the FHIR bundle de-identify the same way.

Pseudonymous keys are HMAC-SHA256 of Chairside's internal patient (or session)
number under a secret: CHAIRSIDE_DEID_SECRET when set, else the key file
(`key_file()`: CHAIRSIDE_DEID_KEY_FILE, default ~/.chairside/deid.key), generated
with 256 random bits on first use and readable only by the app's user (0600). The internal number, not the MRN, is
hashed because 164.514(c) allows a re-identification code only if it is not
derived from information about the individual; the secret makes the key
impossible to recompute (or to match against a list of patient numbers)
without it, and stable across exports made with the same secret.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
from datetime import date, datetime
from pathlib import Path

from infusion.errors import ChairsideError

log = logging.getLogger(__name__)

ENV_SECRET = "CHAIRSIDE_DEID_SECRET"
#: Where the generated key lives when CHAIRSIDE_DEID_SECRET is not set (a path; default DEFAULT_KEY_FILE).
ENV_KEY_FILE = "CHAIRSIDE_DEID_KEY_FILE"
#: In the app user's home, not beside the database: the same place for SQLite and PostgreSQL, outside the
#: working directory (never committed or served), and not in a database dump or backup, so whoever holds a
#: copy of the data does not also hold the key to recompute the pseudonyms.
DEFAULT_KEY_FILE = Path("~/.chairside/deid.key")
KEY_FILE_MODE = 0o600
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
    "Dates are reduced to the year (session_year, event_year, ended_year). Times are given as minutes relative "
    "to the session's IV start (*_rel_min columns); check-in when the IV never started, the scheduled time when "
    "the patient never checked in; a course end's resume, to the moment the course was marked ended (column "
    "time_reference).",
    "Ages over 89 are given as 90+.",
    "Free text is removed: notes, every typed reason (deferral, cancellation, early discharge, skipped "
    "premedication, correction, value not obtained, resuming a course), 'other' symptom descriptions, medication "
    "given for a reaction, and the before/after details of audit events. A diagnosis outside Chairside's list "
    "becomes Other.",
    "Product lot numbers are removed; Chairside records no device serial numbers.",
    "Staff and provider names are removed (a clinic policy choice; they are not patient identifiers). Staff "
    "numbers remain so workload can be compared.",
    "Chairside's own record numbers are removed or replaced by the keys above.",
    "The site is kept as its code (column site): the treating site is not among the 18 Safe Harbor identifiers, "
    "which are the patient's and their relatives', employers' and household members' (the geography rule is "
    "about where they live, not where they are treated). Asked to replace the site with a pseudonymous code, "
    "the file has site_key instead: a keyed hash of the site made with the same secret, the same in every "
    "export, so a quality team can compare sites without naming them. A site with few patients narrows who "
    "they are: replace the site when the numbers are small.",
    "Kept as recorded: therapy, dose, chair kind, vital signs, NEWS2, flags, reaction grades, symptoms and "
    "actions (coded), durations, and premedication as codes (drug from Chairside's list or 'other', dose number, "
    "unit, route); the premedication as typed is removed.",
    "Only columns declared safe leave: a column without a declared de-identification rule is dropped, and no "
    "typed text is kept.",
    "Safe Harbor also requires that the clinic has no actual knowledge that what remains could identify a "
    "patient (a rare therapy in a small clinic, for instance). Whether times relative to IV start meet Safe "
    "Harbor is not settled: have the privacy officer sign off before data leaves the clinic.",
)


def key_file() -> Path:
    """Where the generated de-identification key is kept: CHAIRSIDE_DEID_KEY_FILE, else ~/.chairside/deid.key."""
    return Path(os.environ.get(ENV_KEY_FILE) or DEFAULT_KEY_FILE).expanduser()


def resolve_secret(secret: bytes | str | None = None) -> bytes:
    """The de-identification secret: the argument, else CHAIRSIDE_DEID_SECRET, else the key file (made on first use).

    Refuses a short secret, and a key file other users can read.
    """
    if secret is None or secret == b"" or secret == "":
        secret = os.environ.get(ENV_SECRET) or None
    if secret is None:
        secret = _key_from_file(key_file())
    raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    if len(raw) < MIN_SECRET_BYTES:
        raise ChairsideError(
            f"The de-identification secret is too short ({len(raw)} bytes): use at least {MIN_SECRET_BYTES} "
            "random characters, or the pseudonymous keys could be guessed."
        )
    return raw


def _key_from_file(path: Path) -> str:
    """The key in `path`, generated there (mode 0600, directory 0700) when the file does not exist yet."""
    try:
        try:
            return _read_key(path)
        except FileNotFoundError:
            _create_key(path)
            return _read_key(path)
    except OSError as error:
        raise ChairsideError(
            f"De-identified export needs a key and none could be made at {path} ({error.strerror or error}). "
            f"Set {ENV_KEY_FILE} to a writable path, or {ENV_SECRET} to at least {MIN_SECRET_BYTES} random "
            "characters."
        ) from None


def _read_key(path: Path) -> str:
    if os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ChairsideError(
            f"The de-identification key {path} can be read by other users: run chmod 600 {path} (it keys the "
            "pseudonymous patient codes)."
        )
    key = path.read_text(encoding="utf-8").strip()
    if not key:
        raise ChairsideError(f"The de-identification key file {path} is empty: restore it from the backup.")
    return key


def _create_key(path: Path) -> None:
    """Write a new random key without ever replacing one (two first exports at once both end up with the winner's)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}.new")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_hex(32) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(draft, path)  # atomic and never overwrites: the file appears complete or not at all
        except FileExistsError:
            return  # another process made it first: use theirs
        log.warning("De-identification key generated at %s: back it up to keep pseudonyms stable", path)
    finally:
        draft.unlink(missing_ok=True)


def pseudonym(secret: bytes, kind: str, value: int | str) -> str:
    """A stable pseudonymous key: 'P-' or 'S-' and 16 hex digits of HMAC-SHA256(secret, kind:value)."""
    message = f"chairside:{kind}:{value}".encode()
    digest = hmac.digest(secret, message, hashlib.sha256).hex()  # one call in C (an export keys thousands)
    return f"{kind[:1].upper()}-{digest[:KEY_HEX_DIGITS]}"


def patient_key(secret: bytes, patient_id: int) -> str:
    return pseudonym(secret, "patient", patient_id)


def session_key(secret: bytes, session_id: int) -> str:
    return pseudonym(secret, "session", session_id)


def site_key(secret: bytes, site_id: int) -> str:
    return pseudonym(secret, "site", site_id)


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
