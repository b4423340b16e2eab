"""Local accounts: Argon2 password hashes, lockout after repeated failures,
idle sign-out, the first administrator, and mapping single sign-on identities.

Messages on a failed sign-in never reveal whether the account exists.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from db.engine import Database
from db.models import AppUser, Clinic, SignInToken, UserSite
from infusion.accounts.actor import SYSTEM, Actor
from infusion.accounts.permissions import ADMINISTRATION, ROLES, Role, require_role
from infusion.accounts.sites import account_rules, place_user
from infusion.clock import utcnow
from infusion.errors import AuthError, ConflictError, NotFoundError, ValidationError
from infusion.services import integrity
from infusion.services.audit import record
from infusion.services.opening import clinic_context, optional_text, record_id, require_account
from infusion.services.setup import check_scope
from infusion.settings import AccountSecurity

_hasher = PasswordHasher()
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,79}$")
#: every refused sign-in says the same: unknown, disabled, locked out or wrong password (no enumeration)
REFUSED = "User name or password not recognised."
#: the longest password checked (Argon2 takes any length; a megabyte of text is not a password)
MAX_PASSWORD = 1024


def _text(value: object, field: str, *, max_len: int) -> str:
    """A sign-in or account argument as text (None → ""), refused if not text or unstorable."""
    return optional_text(value, field, max_len=max_len)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


_dummy_hash: str | None = None


def _spend_equal_time(password: str) -> None:
    """Verify against a throw-away hash so an unknown user name costs as much as a known one."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("chairside: not a password")
    try:
        _hasher.verify(_dummy_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        pass


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        _spend_equal_time(password)
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_password_rules(password: str, settings: AccountSecurity, username: str = "") -> None:
    if not isinstance(password, str):
        raise ValidationError({"password": "Enter a password."})
    if len(password) > MAX_PASSWORD:
        raise ValidationError({"password": f"Use at most {MAX_PASSWORD} characters."})
    if "\x00" in password or any("\ud800" <= c <= "\udfff" for c in password):
        raise ValidationError({"password": "The password contains a character that cannot be used."})
    if len(password) < settings.min_password_length:
        raise ValidationError({"password": f"Use at least {settings.min_password_length} characters."})
    if username and username.lower() in password.lower():
        raise ValidationError({"password": "The password must not contain the user name."})


def _settings(db: Database) -> AccountSecurity:
    """The network's account rules (password length, lockout): the strictest across the open sites,
    whichever site the person works at (`infusion.accounts.sites.account_rules`). NotFoundError before
    set-up."""
    with db.reading() as s:
        clinic_context(s)
        return account_rules(s)


def _actor(user: AppUser) -> Actor:
    return Actor(user.id, user.display_name, user.role)


def needs_first_admin(db: Database) -> bool:
    """True on a new clinic database: nobody can sign in with a password yet.

    (Accounts made with `python -m infusion.accounts` count: that clinic is not new.)
    """
    with db.reading() as s:
        return not s.scalar(
            select(func.count())
            .select_from(AppUser)
            .where(AppUser.active.is_(True), (AppUser.password_hash.is_not(None)) | (AppUser.email.is_not(None)))
        )


def authenticate(db: Database, username: str, password: str, now: datetime | None = None) -> Actor:
    """The signed-in actor, or AuthError. Failed attempts count toward a lockout.

    A refusal is committed (audit row, failure count) before it is raised.
    """
    now = now or utcnow()
    try:
        username = _text(username, "username", max_len=80).lower()
        password = password if isinstance(password, str) and not integrity.text_problem(password) else ""
    except ValidationError:
        username, password = "", ""  # an unusable name cannot match an account: the same refusal as any other
    if len(password) > MAX_PASSWORD:
        password = password[:MAX_PASSWORD]
    settings = _settings(db)
    failure: AuthError | None = None
    with db.writing() as s:
        user = s.scalars(select(AppUser).where(AppUser.username == username).with_for_update()).first()
        if user is None or not user.active:
            verify_password(None, password)
            record(
                s,
                SYSTEM,
                "sign_in_failed",
                "app_user",
                user.id if user else None,
                after={"username": username},
                reason="unknown or disabled account",
            )
            failure = AuthError(REFUSED)
        elif user.locked_until is not None and user.locked_until > now:
            verify_password(None, password)  # the same time as any other refusal
            minutes = max(1, math.ceil((user.locked_until - now).total_seconds() / 60))
            record(
                s,
                SYSTEM,
                "sign_in_locked",
                "app_user",
                user.id,
                after={"username": username},
                reason=f"locked for {minutes} more min",
            )
            failure = AuthError(REFUSED)  # never "locked": that would tell a stranger the account exists
        elif not verify_password(user.password_hash, password):
            user.failed_attempts = (user.failed_attempts or 0) + 1
            reason = f"wrong password ({user.failed_attempts})"
            if user.failed_attempts >= settings.lockout_attempts:
                user.locked_until = now + timedelta(minutes=settings.lockout_minutes)
                user.failed_attempts = 0
                reason += f"; locked for {settings.lockout_minutes} min"
            record(s, SYSTEM, "sign_in_failed", "app_user", user.id, after={"username": username}, reason=reason)
            failure = AuthError(REFUSED)
        else:
            user.failed_attempts, user.locked_until, user.last_sign_in_at = 0, None, now
            record(s, _actor(user), "sign_in", "app_user", user.id)
            return _actor(user)
    raise failure


def sign_out(db: Database, actor: Actor, reason: str = "signed out") -> None:
    with db.writing() as s:
        record(s, actor, "sign_out", "app_user", actor.user_id, reason=reason)


def idle_expired(last_activity: datetime | None, now: datetime, idle_minutes: int) -> bool:
    return last_activity is not None and now - last_activity > timedelta(minutes=idle_minutes)


def _new_user(
    s: Session,
    actor: Actor,
    *,
    username: str,
    display_name: str,
    role: str,
    password: str | None,
    email: str | None,
    settings: AccountSecurity,
    network_wide: bool | None = None,
    sites: list[int] | None = None,
) -> AppUser:
    username = _text(username, "username", max_len=80).lower()
    display_name = _text(display_name, "display_name", max_len=120)
    email = _text(email, "email", max_len=200) or None
    problems: dict[str, str] = {}
    if not USERNAME.match(username):
        problems["username"] = "User names are 2–80 lower-case letters, digits, '.', '_' or '-'."
    if not display_name:
        problems["display_name"] = "Enter the person's name."
    if not isinstance(role, str) or role not in ROLES:
        problems["role"] = f"Role must be one of {', '.join(ROLES)}."
    if problems:
        raise ValidationError(problems)
    wide, site_ids = check_scope(s, role, network_wide, sites)
    if password is not None:
        check_password_rules(password, settings, username)
    if s.scalar(select(func.count()).select_from(AppUser).where(AppUser.username == username)):
        raise ConflictError(f"The user name {username!r} is taken.")
    clean_email = (email or "").strip().lower() or None
    if clean_email and s.scalar(
        select(func.count()).select_from(AppUser).where(func.lower(AppUser.email) == clean_email)
    ):
        raise ConflictError(f"The e-mail {clean_email} already belongs to another user.")
    user = AppUser(
        username=username,
        display_name=display_name.strip(),
        role=role,
        active=True,
        password_hash=hash_password(password) if password else None,
        email=(email or "").strip().lower() or None,
        created_at=utcnow(),
        failed_attempts=0,
    )
    s.add(user)
    s.flush()
    place_user(s, user, network_wide=wide, sites=site_ids)
    held = sorted(s.scalars(select(UserSite.site_id).where(UserSite.user_id == user.id)))
    record(
        s,
        actor,
        "create",
        "app_user",
        user.id,
        after={
            "username": username,
            "display_name": user.display_name,
            "role": role,
            "email": user.email,
            "network_wide": user.network_wide,
            "sites": held,
        },
    )
    return user


def create_first_admin(db: Database, *, username: str, display_name: str, password: str) -> Actor:
    """Only while no administrator can sign in: the first start of a new clinic."""
    settings = _settings(db)
    with db.writing() as s:
        # lock the clinic row so two visitors of a new database cannot both become administrator
        s.scalars(select(Clinic).order_by(Clinic.id).limit(1).with_for_update()).first()
        if s.scalar(
            select(func.count())
            .select_from(AppUser)
            .where(AppUser.active.is_(True), (AppUser.password_hash.is_not(None)) | (AppUser.email.is_not(None)))
        ):
            raise ConflictError("This clinic already has accounts; sign in instead.")
        user = _new_user(
            s,
            SYSTEM,
            username=username,
            display_name=display_name,
            role=Role.ADMIN,
            password=password,
            email=None,
            settings=settings,
        )
        return _actor(user)


def add_user(
    db: Database,
    actor: Actor,
    *,
    username: str,
    display_name: str,
    role: str,
    password: str | None = None,
    email: str | None = None,
    network_wide: bool | None = None,
    sites: list[int] | None = None,
) -> AppUser:
    """A new account. Its scope: `network_wide`, or the `sites` (ids); both None: network-wide for the
    network roles (administrator, manager, quality), else the first site."""
    require_role(actor, ADMINISTRATION, "add users")
    settings = _settings(db)
    with db.writing() as s:
        require_account(s, actor, ADMINISTRATION, "add users")
        return _new_user(
            s,
            actor,
            username=username,
            display_name=display_name,
            role=role,
            password=password,
            email=email,
            settings=settings,
            network_wide=network_wide,
            sites=sites,
        )


def _user(s: Session, user_id: int) -> AppUser:
    user_id = record_id(user_id, "user")
    user = s.scalars(select(AppUser).where(AppUser.id == user_id).with_for_update()).first()
    if user is None:
        raise NotFoundError(f"User {user_id} not found.")
    return user


def set_password(
    db: Database, actor: Actor, user_id: int, password: str, *, current_password: str | None = None
) -> None:
    """Administrators reset anyone's password; everyone may change their own by giving the current one
    (so a tablet left signed in cannot be used to take the account over). Only an actor with an
    account can be "own": the command line (no account) resets as an administrator, whatever the
    display name of the user it acts on."""
    own = actor is not None and actor.user_id is not None and actor.user_id == user_id
    if not own:
        require_role(actor, ADMINISTRATION, "reset another user's password")
    settings = _settings(db)
    with db.writing() as s:
        require_account(s, actor, None if own else ADMINISTRATION, "change passwords")
        user = _user(s, user_id)
        current = current_password if isinstance(current_password, str) else ""
        if own and not verify_password(user.password_hash, current[:MAX_PASSWORD]):
            raise AuthError("Your current password is not right; the password was not changed.")
        check_password_rules(password, settings, user.username)
        user.password_hash = hash_password(password)
        user.failed_attempts, user.locked_until = 0, None
        record(s, actor, "set_password", "app_user", user.id, reason="password set")


def set_active(db: Database, actor: Actor, user_id: int, active: bool) -> None:
    require_role(actor, ADMINISTRATION, "enable or disable users")
    if not isinstance(active, bool):
        raise ValidationError({"active": "Choose enabled or disabled."})
    if actor.user_id == user_id and not active:
        raise ValidationError({"active": "You cannot disable your own account."})
    with db.writing() as s:
        require_account(s, actor, ADMINISTRATION, "enable or disable users")
        user = _user(s, user_id)
        before = user.active
        user.active = active
        if not active:  # every browser signed in as this user is signed out at once
            s.execute(
                update(SignInToken)
                .where(SignInToken.user_id == user.id, SignInToken.revoked_at.is_(None))
                .values(revoked_at=utcnow(), revoke_reason="account disabled")
            )
        record(
            s,
            actor,
            "enable_user" if active else "disable_user",
            "app_user",
            user.id,
            before={"active": before},
            after={"active": active},
        )


def change_role(db: Database, actor: Actor, user_id: int, role: str) -> None:
    require_role(actor, ADMINISTRATION, "change roles")
    if not isinstance(role, str) or role not in ROLES:
        raise ValidationError({"role": f"Role must be one of {', '.join(ROLES)}."})
    if actor.user_id == user_id and role != Role.ADMIN:
        raise ValidationError({"role": "You cannot remove your own administrator role."})
    with db.writing() as s:
        require_account(s, actor, ADMINISTRATION, "change roles")
        user = _user(s, user_id)
        before = user.role
        user.role = role
        record(s, actor, "change_role", "app_user", user.id, before={"role": before}, after={"role": role})


def sso_actor(db: Database, email: str | None) -> Actor:
    """Map a single sign-on identity (st.user e-mail) to a local active user and role.

    A refusal is committed to the audit trail before it is raised.
    """
    try:
        email = _text(email, "email", max_len=200).lower()
    except ValidationError:
        email = ""
    if not email:
        raise AuthError("Your identity provider did not share an e-mail address.")
    with db.writing() as s:
        user = s.scalars(select(AppUser).where(func.lower(AppUser.email) == email)).first()
        if user is None or not user.active:
            record(
                s,
                SYSTEM,
                "sign_in_failed",
                "app_user",
                user.id if user else None,
                after={"email": email},
                reason="single sign-on: no active local user",
            )
            refused = True
        else:
            refused = False
            user.last_sign_in_at = utcnow()
            record(s, _actor(user), "sign_in", "app_user", user.id, reason="single sign-on")
            signed_in = _actor(user)
    if refused:
        raise AuthError(f"{email} is not a Chairside user here; ask an administrator to add you.")
    return signed_in


def current_actor(db: Database, actor: Actor) -> Actor | None:
    """The signed-in person as the database has them now: None once disabled, with a changed role at once.
    The site they picked to work in stays (the services check it against the sites they hold)."""
    if actor.user_id is None:
        return actor
    with db.reading() as s:
        user = s.get(AppUser, actor.user_id)
    if user is None or not user.active:
        return None
    if user.role != actor.role or user.display_name != actor.name:
        return replace(actor, name=user.display_name, role=user.role)
    return actor


def list_users(db: Database, actor: Actor) -> list[AppUser]:
    require_role(actor, ADMINISTRATION, "list users")
    with db.reading() as s:
        require_account(s, actor, ADMINISTRATION, "list users")
        return list(s.scalars(select(AppUser).order_by(AppUser.active.desc(), AppUser.display_name)))
