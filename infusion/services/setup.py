"""Clinic set-up: the sites of the network (`clinic` rows), the therapy catalog seed, chairs, staff
and their sites, patients, and the site a person works in now.

Over 400 lines because each is a small administrator write with its own validation; they
share the administering opening and the settings bounds, and are used together by one page.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.engine import Database, database_url  # noqa: F401  (re-exported for pages)
from db.models import AppUser, Chair, Clinic, InfusionSession, Patient, Therapy, UserSite
from infusion.accounts.actor import SYSTEM, Actor
from infusion.accounts.permissions import ADMINISTRATION, CHARTING, ROLES, Role, require_role
from infusion.accounts.sites import (
    NETWORK_ROLES,
    account_rules,
    place_user,
    require_site,
    visible_sites,
    working_context,
)
from infusion.clinical.catalog import SEED_FIELDS, load_seed
from infusion.clock import utcnow
from infusion.errors import ConflictError, NotFoundError, ValidationError
from infusion.services.audit import changed, record, snapshot
from infusion.services.integrity import max_length
from infusion.services.opening import (
    administering,
    clinic_context,
    find_clinic,
    optional_text,
    record_id,
    require_account,
    required_text,
)
from infusion.settings import AccountSecurity, ClinicSettings, load_settings

DIAGNOSES = ("Multiple sclerosis", "Systemic sclerosis", "ALS", "CIDP", "Myasthenia gravis", "Other")


def ensure_clinic(db: Database) -> Clinic:
    """The clinic row, created with neutral defaults (UTC, °C, kg) on a new database."""
    with db.writing() as s:
        clinic = find_clinic(s)
        if clinic is None:
            clinic = Clinic(
                name="Infusion clinic",
                code="S1",
                timezone="UTC",
                temperature_unit="C",
                weight_unit="kg",
                settings=ClinicSettings().model_dump(),
            )
            s.add(clinic)
            s.flush()
            record(s, SYSTEM, "create", "clinic", clinic.id, after=snapshot(clinic))
        return clinic


def get_clinic(db: Database) -> Clinic:
    """The clinic (created with the defaults on first use)."""
    with db.reading() as s:
        clinic = find_clinic(s)
    if clinic is None:
        return ensure_clinic(db)
    return clinic


def clinic_settings(clinic: Clinic) -> ClinicSettings:
    return load_settings(clinic.settings)


def network_security(db: Database) -> AccountSecurity:
    """The sign-in, lockout and idle rules every account follows: the strictest across the open sites
    (`infusion.accounts.sites.account_rules`)."""
    with db.reading() as s:
        return account_rules(s)


#: a site's short code: letters and digits (and - or _), as staff say it ("BOS", "S01", "HOME-N")
SITE_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]*$")


def _site_fields(
    name: object, code: object, timezone: object, temperature_unit: object, weight_unit: object, phone: object
) -> dict[str, Any]:
    """A site's fields as typed, checked; ValidationError naming every problem (a field left None is not
    checked: `update_clinic` keeps the stored code when none is given)."""
    problems: dict[str, str] = {}
    values: dict[str, Any] = {}
    for field, value in (("name", name), ("timezone", timezone), ("phone", phone), ("code", code)):
        if value is None and field in ("phone", "code"):
            values[field] = None
            continue
        try:
            values[field] = optional_text(value, field, max_len=max_length(Clinic, field)).strip()
        except ValidationError as error:
            problems.update(error.problems)
    if "name" not in problems and not values.get("name"):
        problems["name"] = "The site needs a name."
    if "code" not in problems and values.get("code") is not None:
        values["code"] = values["code"].upper()
        if not SITE_CODE.match(values["code"]):
            problems["code"] = "A site code is 1–12 letters or digits (- and _ allowed), e.g. BOS or S01."
    if "timezone" not in problems:
        try:
            if not values.get("timezone"):
                raise ValueError("empty")
            ZoneInfo(values["timezone"])
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            problems["timezone"] = f"Unknown time zone {values.get('timezone')!r} (use a name like America/New_York)."
    if temperature_unit not in ("C", "F"):
        problems["temperature_unit"] = "Temperature unit must be C or F."
    if weight_unit not in ("kg", "lb"):
        problems["weight_unit"] = "Weight unit must be kg or lb."
    if problems:
        raise ValidationError(problems)
    values["phone"] = values["phone"] or None
    values["temperature_unit"], values["weight_unit"] = temperature_unit, weight_unit
    return values


def _code_taken(s: Session, code: str, site_id: int | None = None) -> None:
    """ConflictError if another site already uses `code` (codes are compared without case)."""
    q = select(Clinic.name).where(func.upper(Clinic.code) == code)
    if site_id is not None:
        q = q.where(Clinic.id != site_id)
    other = s.scalar(q.limit(1))
    if other is not None:
        raise ConflictError(f"The code {code} is already used by {other}; pick another code.")


def add_site(
    db: Database,
    actor: Actor,
    name: str,
    code: str,
    timezone: str,
    temperature_unit: str,
    weight_unit: str,
    phone: str | None = None,
) -> Clinic:
    """A new site of the network (administrators; audited). Its alert thresholds and tunables start at
    the documented defaults (`infusion.settings`); edit them for the site afterwards."""
    require_role(actor, ADMINISTRATION, "add a site")
    if code is None:
        code = ""
    values = _site_fields(name, code, timezone, temperature_unit, weight_unit, phone)
    try:
        with administering(db, actor, ADMINISTRATION, "add a site") as s:
            _code_taken(s, values["code"])
            site = Clinic(**values, active=True, settings=ClinicSettings().model_dump())
            s.add(site)
            s.flush()
            record(s, actor, "create", "clinic", site.id, after=snapshot(site))
            return site
    except IntegrityError:
        raise ConflictError(f"The code {values['code']} is already used by another site; pick another code.") from None


def list_sites(db: Database, actor: Actor) -> list[Clinic]:
    """Every site, closed ones too, by name (administrators); anyone else: the open sites they hold."""
    with db.reading() as s:
        if actor.role in ADMINISTRATION:
            require_account(s, actor, ADMINISTRATION, "list the sites")
            return list(s.scalars(select(Clinic).order_by(Clinic.name, Clinic.id)))
        require_account(s, actor, None, "list the sites")
        return visible_sites(s, actor)


def my_sites(db: Database, actor: Actor) -> list[Clinic]:
    """The open sites the actor holds, by name: what the site picker offers."""
    with db.reading() as s:
        return visible_sites(s, actor)


def working_clinic(db: Database, actor: Actor) -> Clinic:
    """The site the actor works in now (picked, else last chosen, else the first held): its zone, units
    and thresholds are what Chairside, the board, the due list and follow-up show. NotFoundError before
    set-up; PermissionDenied for a person who holds no site."""
    with db.reading() as s:
        return working_context(s, actor)[0]


def choose_site(db: Database, actor: Actor, site_id: int) -> Clinic:
    """Remember the site a person picked (`app_user.last_site_id`), so their next sign-in starts there.

    Any signed-in role; a preference, not a clinical event, so not audited. A site the person does not
    hold, or a closed one, is refused."""
    site_id = record_id(site_id, "site")
    with db.writing(quick=True) as s:
        require_account(s, actor, None, "choose a site")
        site = s.get(Clinic, site_id)
        if site is None or not site.active:
            raise NotFoundError("That site does not exist or is closed.")
        require_site(s, actor, site_id, "work")
        user = s.get(AppUser, actor.user_id) if actor.user_id is not None else None
        if user is not None and user.last_site_id != site_id:
            user.last_site_id = site_id
        return site


def update_clinic(
    db: Database,
    actor: Actor,
    *,
    name: str,
    timezone: str,
    temperature_unit: str,
    weight_unit: str,
    phone: str | None = None,
    expected_version: int | None = None,
    site_id: int | None = None,
    code: str | None = None,
    active: bool | None = None,
) -> Clinic:
    """Change a site's name, code, zone, units, phone or whether it is open (`site_id`; the first site if
    not named, as for a single clinic). `code`/`active` None keep what is stored. The last open site
    cannot be closed."""
    require_role(actor, ADMINISTRATION, "change the clinic set-up")
    if site_id is not None:
        site_id = record_id(site_id, "site")
    if active is not None and not isinstance(active, bool):
        raise ValidationError({"active": "Choose open or closed."})
    values = _site_fields(name, code, timezone, temperature_unit, weight_unit, phone)
    if values["code"] is None:
        del values["code"]
    try:
        with administering(db, actor, ADMINISTRATION, "change the clinic set-up") as s:
            clinic = clinic_context(s, site_id)[0]
            require_site(s, actor, clinic.id, "change the set-up")
            if expected_version is not None and clinic.version != expected_version:
                raise ConflictError(
                    f"Someone changed the settings of {clinic.name} since you opened them; reload and retry."
                )
            if "code" in values:
                _code_taken(s, values["code"], clinic.id)
            if active is False and clinic.active:
                others = s.scalar(
                    select(func.count()).select_from(Clinic).where(Clinic.active.is_(True), Clinic.id != clinic.id)
                )
                if not others:
                    raise ValidationError({"active": f"{clinic.name} is the only open site; it cannot be closed."})
            before = snapshot(clinic)
            for key, value in values.items():
                setattr(clinic, key, value)
            if active is not None:
                clinic.active = active
            s.flush()
            old, new = changed(before, snapshot(clinic))
            record(s, actor, "update", "clinic", clinic.id, before=old, after=new)
            return clinic
    except IntegrityError:
        raise ConflictError(
            f"The code {values.get('code')} is already used by another site; pick another code."
        ) from None


def seed_therapies(db: Database) -> int:
    """Insert catalog therapies the database lacks; never overwrite a clinic's edits."""
    with db.writing() as s:
        existing = set(s.scalars(select(Therapy.code)))
        added = 0
        for row in load_seed():
            if row["code"] in existing:
                continue
            therapy = Therapy(code=row["code"], **{k: row[k] for k in SEED_FIELDS})
            s.add(therapy)
            s.flush()
            record(s, SYSTEM, "seed", "therapy", therapy.id, after=snapshot(therapy))
            added += 1
        return added


def bootstrap(db: Database) -> Clinic:
    """What every start needs: a clinic row and the seeded catalog."""
    clinic = ensure_clinic(db)
    seed_therapies(db)
    return clinic


def list_therapies(db: Database, *, active_only: bool = True) -> list[Therapy]:
    with db.reading() as s:
        q = select(Therapy).order_by(Therapy.name)
        if active_only:
            q = q.where(Therapy.active.is_(True))
        return list(s.scalars(q))


def list_chairs(db: Database, site_id: int | None = None) -> list[Chair]:
    """Active chairs and home-visit locations, of one site if named."""
    with db.reading() as s:
        q = select(Chair).where(Chair.active.is_(True)).order_by(Chair.kind, Chair.id)
        if site_id is not None:
            q = q.where(Chair.site_id == site_id)
        return list(s.scalars(q))


def add_chair(db: Database, actor: Actor, name: str, kind: str = "chair", site_id: int | None = None) -> Chair:
    """A chair or home-visit location at `site_id` (a single-clinic database may leave it out)."""
    require_role(actor, ADMINISTRATION, "change the clinic set-up")
    name = required_text(name, "name", "Give the chair a name, e.g. 'Chair 4'.", max_len=max_length(Chair, "name"))
    if not isinstance(kind, str) or kind not in ("chair", "home"):
        raise ValidationError({"kind": "A location is a clinic chair or a home visit."})
    if site_id is None:
        site_id = ensure_clinic(db).id
    else:
        site_id = record_id(site_id, "site_id")
    try:
        with administering(db, actor, ADMINISTRATION, "change the clinic set-up") as s:
            require_site(s, actor, site_id, "change the clinic set-up")
            chair = Chair(name=name, kind=kind, active=True, site_id=site_id)
            s.add(chair)
            s.flush()
            record(s, actor, "create", "chair", chair.id, after=snapshot(chair))
            return chair
    except IntegrityError:
        raise ConflictError(f"A chair named {name!r} already exists at this site.") from None


def list_staff(db: Database, role: str | None = None) -> list[AppUser]:
    with db.reading() as s:
        q = select(AppUser).where(AppUser.active.is_(True)).order_by(AppUser.display_name)
        if role:
            q = q.where(AppUser.role == role)
        return list(s.scalars(q))


def check_scope(s: Session, role: str, network_wide: object, sites: object) -> tuple[bool | None, list[int] | None]:
    """A person's scope as given (a form, the command line): `network_wide` None and `sites` None leave it
    to `place_user` (network-wide for the network roles, else the first site). Someone who is not
    network-wide needs at least one existing site; ValidationError says so beside the field."""
    if network_wide is not None and not isinstance(network_wide, bool):
        raise ValidationError({"network_wide": "Choose network-wide, or the sites the person works at."})
    if sites is not None and (isinstance(sites, (str, bytes)) or not isinstance(sites, (list, tuple, set, frozenset))):
        raise ValidationError({"sites": "Pick the sites from the list."})
    if role == Role.ADMIN and network_wide is False:
        raise ValidationError(
            {"network_wide": "An administrator sets up the whole network, so the role is network-wide."}
        )
    wide = role in NETWORK_ROLES if network_wide is None else network_wide
    if wide or sites is None:
        return network_wide, None if sites is None else []
    ids = sorted({record_id(site, "sites") for site in sites})
    if not ids:
        raise ValidationError({"sites": "Pick at least one site the person works at, or make them network-wide."})
    known = set(s.scalars(select(Clinic.id).where(Clinic.id.in_(ids))))
    missing = [str(site) for site in ids if site not in known]
    if missing:
        raise ValidationError({"sites": f"No site with the number {', '.join(missing)}; pick from the list."})
    return network_wide, ids


def add_staff(
    db: Database,
    actor: Actor,
    display_name: str,
    role: str = Role.NURSE,
    username: str | None = None,
    *,
    network_wide: bool | None = None,
    sites: list[int] | None = None,
) -> AppUser:
    """A member of staff without a password (single sign-on, tests). Their scope: `network_wide`, or the
    `sites`; both None: network-wide for the network roles, else the first site (`place_user`)."""
    require_role(actor, ADMINISTRATION, "change the clinic set-up")
    display_name = required_text(
        display_name, "display_name", "Enter the person's name.", max_len=max_length(AppUser, "display_name")
    )
    if not isinstance(role, str) or role not in ROLES:
        raise ValidationError({"role": f"Role must be one of {', '.join(ROLES)}."})
    username = optional_text(username, "username", max_len=max_length(AppUser, "username"))
    username = (username or re.sub(r"[^a-z0-9]+", ".", display_name.lower()).strip(".")[:80]) or "user"
    try:
        with administering(db, actor, ADMINISTRATION, "change the clinic set-up") as s:
            wide, site_ids = check_scope(s, role, network_wide, sites)
            user = AppUser(username=username, display_name=display_name, role=role, active=True, created_at=utcnow())
            s.add(user)
            s.flush()
            place_user(s, user, network_wide=wide, sites=site_ids)
            after = snapshot(user, ("username", "display_name", "role", "network_wide"))
            record(s, actor, "create", "app_user", user.id, after={**after, "sites": _held(s, user.id)})
            return user
    except IntegrityError:
        raise ConflictError(f"A user named {username!r} already exists.") from None


def _held(s: Session, user_id: int) -> list[int]:
    return sorted(s.scalars(select(UserSite.site_id).where(UserSite.user_id == user_id)))


def user_sites(db: Database, actor: Actor) -> dict[int, list[int]]:
    """Per user id, the sites they hold (an empty list for a network-wide user): the Users tab."""
    require_role(actor, ADMINISTRATION, "list users")
    with db.reading() as s:
        require_account(s, actor, ADMINISTRATION, "list users")
        held: dict[int, list[int]] = {user_id: [] for user_id in s.scalars(select(AppUser.id))}
        for user_id, site_id in s.execute(select(UserSite.user_id, UserSite.site_id).order_by(UserSite.site_id)):
            held.setdefault(user_id, []).append(site_id)
        return held


def set_user_scope(db: Database, actor: Actor, user_id: int, *, network_wide: bool, sites: list[int]) -> AppUser:
    """Where a person's role applies: across the network, or at the named sites (the `user_site` rows are
    replaced). Audited with the scope before and after. Someone who is not network-wide needs a site."""
    require_role(actor, ADMINISTRATION, "change where a user works")
    user_id = record_id(user_id, "user")
    if not isinstance(network_wide, bool):
        raise ValidationError({"network_wide": "Choose network-wide, or the sites the person works at."})
    with administering(db, actor, ADMINISTRATION, "change where a user works") as s:
        user = s.scalars(select(AppUser).where(AppUser.id == user_id).with_for_update()).first()
        if user is None:
            raise NotFoundError(f"User {user_id} not found.")
        _, site_ids = check_scope(s, user.role, network_wide, [] if sites is None else sites)
        old_sites = _held(s, user.id)
        before = {"network_wide": user.network_wide, "sites": old_sites}
        new_sites = [] if network_wide else list(site_ids or [])
        for held in s.scalars(select(UserSite).where(UserSite.user_id == user.id)):
            if held.site_id not in new_sites:
                s.delete(held)
        for site in new_sites:
            if site not in old_sites:
                s.add(UserSite(user_id=user.id, site_id=site))
        user.network_wide = network_wide
        s.flush()
        after = {"network_wide": user.network_wide, "sites": _held(s, user.id)}
        if after != before:
            record(s, actor, "set_scope", "app_user", user.id, before=before, after=after)
        return user


def check_patient(mrn: str, given_name: str, family_name: str, birth_date: date | None) -> None:
    """The new-patient fields, or ValidationError naming each problem."""
    problems: dict[str, str] = {}
    texts = {"mrn": mrn, "given_name": given_name, "family_name": family_name}
    for field, value in texts.items():
        try:
            texts[field] = optional_text(value, field, max_len=max_length(Patient, field))
        except ValidationError as error:
            problems.update(error.problems)
    if "mrn" not in problems and not texts["mrn"]:
        problems["mrn"] = "Enter the patient's MRN."
    if not problems.keys() & {"given_name", "family_name"} and not (texts["given_name"] and texts["family_name"]):
        problems["name"] = "Enter the patient's given and family name."
    if birth_date is not None and (isinstance(birth_date, datetime) or not isinstance(birth_date, date)):
        problems["birth_date"] = "Date of birth must be a date (day, month, year)."
    elif birth_date is not None and birth_date > utcnow().date():
        problems["birth_date"] = "Date of birth cannot be in the future."
    elif birth_date is not None and birth_date.year < FIRST_BIRTH_YEAR:
        problems["birth_date"] = f"Date of birth before {FIRST_BIRTH_YEAR}: check the year."
    if problems:
        raise ValidationError(problems)


def insert_patient(
    s: Session,
    actor: Actor,
    *,
    mrn: str,
    given_name: str,
    family_name: str,
    birth_date: date | None = None,
    diagnosis: str = "",
    allergies: str = "",
    address: str | None = None,
    phone: str | None = None,
) -> Patient:
    """Add a checked patient inside the caller's transaction (so a walk-in is one write)."""
    check_patient(mrn, given_name, family_name, birth_date)
    mrn = mrn.strip()
    diagnosis = optional_text(diagnosis, "diagnosis", max_len=max_length(Patient, "diagnosis"))
    allergies = optional_text(allergies, "allergies")
    address = optional_text(address, "address")
    phone = optional_text(phone, "phone", max_len=max_length(Patient, "phone"))
    if s.scalar(select(func.count()).select_from(Patient).where(Patient.mrn == mrn)):
        raise ConflictError(f"MRN {mrn} already belongs to a patient; pick them from the list.")
    patient = Patient(
        mrn=mrn,
        given_name=given_name.strip(),
        family_name=family_name.strip(),
        birth_date=birth_date,
        diagnosis=diagnosis,
        allergies=allergies.strip(),
        address=(address or "").strip() or None,
        phone=(phone or "").strip() or None,
        created_at=utcnow(),
    )
    s.add(patient)
    s.flush()
    record(s, actor, "create", "patient", patient.id, patient_id=patient.id, after=snapshot(patient))
    return patient


def add_patient(
    db: Database,
    actor: Actor,
    *,
    mrn: str,
    given_name: str,
    family_name: str,
    birth_date: date | None = None,
    diagnosis: str = "",
    allergies: str = "",
    address: str | None = None,
    phone: str | None = None,
) -> Patient:
    """Register a patient; the address (for home infusion) and phone (for the follow-up call)
    are kept with the patient and never leave in a de-identified export."""
    require_role(actor, CHARTING, "register patients")
    check_patient(mrn, given_name, family_name, birth_date)
    with administering(db, actor, CHARTING, "register patients") as s:
        return insert_patient(
            s,
            actor,
            mrn=mrn,
            given_name=given_name,
            family_name=family_name,
            birth_date=birth_date,
            diagnosis=diagnosis,
            allergies=allergies,
            address=address,
            phone=phone,
        )


def search_patients(db: Database, text: str = "", limit: int = 50, *, site_id: int | None = None) -> list[Patient]:
    """Patients by name or MRN. With `site_id`, only the patients that site has seen or booked, and
    patients not seen anywhere yet (a site's pickers list its own patients; a patient of another site
    of the network is found by their MRN: `patient_by_mrn`)."""
    with db.reading() as s:
        q = select(Patient).order_by(Patient.family_name, Patient.given_name, Patient.id).limit(limit)
        if site_id is not None:
            # EXISTS per patient, walked in name order (ix_patient_name) until `limit` match. Not `id IN (…) OR
            # id NOT IN (every session's patient)`: PostgreSQL cannot hash a NOT IN list larger than work_mem
            # and scans it once per patient (1 M sessions: over 30 s; SQLite 14.5 s), and the Chairside page
            # runs this on every rerun (its walk-in form)
            S = InfusionSession
            at_site = exists().where(S.patient_id == Patient.id, S.chair_id == Chair.id, Chair.site_id == site_id)
            q = q.where(at_site | ~exists().where(S.patient_id == Patient.id))
        if text.strip():
            like = f"%{text.strip().lower()}%"
            q = q.where(
                func.lower(Patient.family_name).like(like)
                | func.lower(Patient.given_name).like(like)
                | func.lower(Patient.mrn).like(like)
            )
        return list(s.scalars(q))


def patient_by_mrn(db: Database, actor: Actor, mrn: str) -> Patient | None:
    """The network's patient with exactly this MRN (patients belong to the network: a patient first
    treated at another site is found here when they come to this one), or None."""
    require_role(actor, CHARTING, "look up patients")
    text = optional_text(mrn, "mrn", max_len=max_length(Patient, "mrn"))
    if not text:
        return None
    with db.reading() as s:
        return s.scalars(select(Patient).where(Patient.mrn == text)).first()


def update_settings(
    db: Database,
    actor: Actor,
    changes: dict[str, Any],
    *,
    expected_version: int | None = None,
    site_id: int | None = None,
) -> Clinic:
    """Change a site's alert thresholds and tunables (validated by ClinicSettings), audited field by
    field (`site_id`; the first site if not named)."""
    require_role(actor, ADMINISTRATION, "change the clinic set-up")
    if not isinstance(changes, dict) or not isinstance(changes.get("thresholds", {}), dict):
        raise ValidationError({"settings": "Settings changes must be given as name → value."})
    if site_id is not None:
        site_id = record_id(site_id, "site")
    with administering(db, actor, ADMINISTRATION, "change the clinic set-up") as s:
        clinic = clinic_context(s, site_id)[0]
        require_site(s, actor, clinic.id, "change the set-up")
        if expected_version is not None and clinic.version != expected_version:
            raise ConflictError("Someone changed the clinic settings since you opened them; reload and retry.")
        current = load_settings(clinic.settings).model_dump()
        merged = {**current, **{k: v for k, v in changes.items() if k != "thresholds"}}
        merged["thresholds"] = {**current["thresholds"], **changes.get("thresholds", {})}
        try:
            validated = ClinicSettings.model_validate(merged)
        except PydanticValidationError as error:
            raise ValidationError(
                {".".join(map(str, e["loc"])): f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()}
            ) from None
        check_setting_bounds(validated)
        before = clinic.settings
        clinic.settings = validated.model_dump()
        s.flush()
        old, new = changed(before or {}, clinic.settings)
        record(s, actor, "update_settings", "clinic", clinic.id, before=old, after=new)
        return clinic


#: the range each numeric setting may take (a lockout after 0 attempts, a password of -1 characters or
#: a NaN threshold would silently switch a safeguard off)
SETTING_BOUNDS: dict[str, tuple[float, float]] = {
    "clock_skew_minutes": (0, 60),
    "late_entry_minutes": (1, 24 * 60),
    "max_infusion_hours": (0.5, 48),
    "idle_sign_out_minutes": (1, 12 * 60),
    "min_password_length": (8, 128),
    "lockout_attempts": (1, 100),
    "lockout_minutes": (1, 24 * 60),
    "window_tolerance_minutes": (0, 24 * 60),
    "vitals_satisfied_early_minutes": (0, 60),
    "opening_hour": (0, 23),
    "closing_hour": (1, 24),
    "thresholds.temperature_c_high": (35, 43),
    "thresholds.systolic_low": (40, 200),
    "thresholds.systolic_high": (80, 300),
    "thresholds.diastolic_high": (40, 200),
    "thresholds.pulse_low": (20, 200),
    "thresholds.pulse_high": (40, 250),
    "thresholds.resp_rate_high": (5, 60),
    "thresholds.spo2_low": (50, 100),
    "thresholds.systolic_drop_from_baseline": (1, 150),
}
FIRST_BIRTH_YEAR = 1880


def check_setting_bounds(settings: ClinicSettings) -> None:
    """Every numeric setting finite and within SETTING_BOUNDS, else ValidationError naming each."""
    values = settings.model_dump()
    problems: dict[str, str] = {}
    for key, (low, high) in SETTING_BOUNDS.items():
        value: Any = values
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None or isinstance(value, bool):
            continue
        if not math.isfinite(value) or not low <= value <= high:
            problems[key] = f"{key.split('.')[-1].replace('_', ' ')} must be between {low:g} and {high:g}."
    if "opening_hour" not in problems and "closing_hour" not in problems:
        if settings.closing_hour <= settings.opening_hour:
            problems["closing_hour"] = "The closing hour must be after the opening hour."
    if not settings.open_weekdays:
        problems["open_weekdays"] = "Choose at least one day the site is open."
    elif any(not 0 <= day <= 6 for day in settings.open_weekdays):
        problems["open_weekdays"] = "Open days are Monday (0) to Sunday (6)."
    if problems:
        raise ValidationError(problems)


THERAPY_EDITABLE = (
    "name",
    "brand",
    "default_dose",
    "dose_unit",
    "dosing_text",
    "dosing_interval_days",
    "min_interval_days",
    "duration_windows",
    "observation_rules",
    "premedication_required",
    "premedication_text",
    "program",
    "vitals_schedule",
    "notes",
    "active",
    "pretreatment_checks",
)


def _check_rules(rules: Any, field: str, keys: tuple[str, ...]) -> None:
    if not isinstance(rules, list) or not rules:
        raise ValidationError({field: f"{field} needs at least one rule."})
    for rule in rules:
        if not isinstance(rule, dict) or not isinstance(rule.get("from", 1), int) or rule.get("from", 1) < 1:
            raise ValidationError({field: f"Each {field} rule needs 'from' (an infusion number ≥ 1)."})
        upper = rule.get("to")
        if upper is not None and (not isinstance(upper, int) or isinstance(upper, bool) or upper < rule.get("from", 1)):
            raise ValidationError({field: f"Each {field} rule's 'to' must be a whole infusion number ≥ its 'from'."})
        for key in keys:
            value = rule.get(key)
            if value is not None and (not isinstance(value, (int, float)) or value < 0 or value > 24 * 60):
                raise ValidationError({field: f"{key} must be minutes between 0 and 1440."})
        if (
            rule.get("min_minutes") is not None
            and rule.get("max_minutes") is not None
            and rule["max_minutes"] < rule["min_minutes"]
        ):
            raise ValidationError({field: "max_minutes must not be below min_minutes."})


def update_therapy(
    db: Database, actor: Actor, therapy_id: int, changes: dict[str, Any], *, expected_version: int | None
) -> Therapy:
    """A clinic adjusts its catalog row; every changed field is audited with old and new values."""
    require_role(actor, ADMINISTRATION, "edit the therapy catalog")
    therapy_id = record_id(therapy_id, "therapy")
    if not isinstance(changes, dict):
        raise ValidationError({"fields": "Therapy changes must be given as field → value."})
    unknown = set(changes) - set(THERAPY_EDITABLE)
    if unknown:
        raise ValidationError({"fields": f"Not editable here: {', '.join(sorted(unknown))}."})
    if "duration_windows" in changes:
        _check_rules(changes["duration_windows"], "duration_windows", ("min_minutes", "max_minutes"))
    if "observation_rules" in changes:
        _check_rules(changes["observation_rules"], "observation_rules", ("minutes",))
    if "vitals_schedule" in changes:
        schedule = changes["vitals_schedule"]
        if not isinstance(schedule, dict):
            raise ValidationError(
                {
                    "vitals_schedule": "The vitals schedule must be an object like "
                    '{"after_start_minutes": [15], "every_minutes": 60}.'
                }
            )
        offsets = schedule.get("after_start_minutes", [])
        if not isinstance(offsets, list) or not all(isinstance(m, int) and 0 <= m <= 1440 for m in offsets):
            raise ValidationError({"vitals_schedule": "after_start_minutes must be a list of minutes (0–1440)."})
        every = schedule.get("every_minutes")
        if every is not None and (not isinstance(every, int) or not 5 <= every <= 240):
            raise ValidationError({"vitals_schedule": "Vitals every N minutes must be 5–240."})
    if "pretreatment_checks" in changes:
        from infusion.services.pretreatment import validate_checklist

        changes = {**changes, "pretreatment_checks": validate_checklist(changes["pretreatment_checks"])}
    if "name" in changes and not str(changes["name"]).strip():
        raise ValidationError({"name": "The therapy needs a name."})
    with administering(db, actor, ADMINISTRATION, "edit the therapy catalog") as s:
        therapy = s.get(Therapy, therapy_id)
        if therapy is None:
            raise NotFoundError(f"Therapy {therapy_id} not found.")
        if expected_version is not None and therapy.version != expected_version:
            raise ConflictError("Someone changed this therapy since you opened it; reload and retry.")
        before = snapshot(therapy)
        for key, value in changes.items():
            setattr(therapy, key, value)
        s.flush()
        old, new = changed(before, snapshot(therapy))
        old.pop("version", None)
        new.pop("version", None)
        record(s, actor, "update_therapy", "therapy", therapy.id, before=old, after=new)
        return therapy


def open_clinic(url: str) -> Database:
    """Open (migrating to head) and bootstrap the clinic database at `url`: what every app start needs."""
    from db.engine import open_database

    database = open_database(url)
    bootstrap(database)
    return database
