"""Sign-in that survives a reload: server-side, expiring, revocable tokens.

Why: Streamlit forgets everything on a page reload or when a tablet's browser
drops its connection while asleep, so a nurse was signed out mid-session and
what she was typing was lost. The browser keeps a random token in a cookie (never
in the URL, never the password); the database keeps only its SHA-256 with the
user, the last activity and an absolute expiry. A token resumes the sign-in only
while the account is active, the idle limit has not passed since its last use,
and it is neither expired nor revoked. Sign-out, the idle limit and disabling the
account end it.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from db.engine import Database
from db.models import AppUser, Clinic, SignInToken
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import ADMINISTRATION, WALL_DISPLAY, require_role
from infusion.accounts.sites import require_site, working_site
from infusion.clock import utcnow
from infusion.errors import ValidationError
from infusion.services.audit import record

log = logging.getLogger(__name__)

COOKIE = "chairside_signin"
#: product choice: a sign-in lasts at most one long clinic day, whatever the activity
MAX_AGE = timedelta(hours=14)
#: product choice: a wall display stays paired for 90 days unless revoked, then an administrator pairs it again
DISPLAY_MAX_AGE = timedelta(days=90)
DISPLAY_NAME_MAX = 80
#: how often a token's last activity is written (a write per tap would be wasteful)
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Issued:
    token: str
    expires_at: datetime


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue(db: Database, actor: Actor, *, now: datetime | None = None) -> Issued:
    """A new token for a signed-in user (audited)."""
    if actor.user_id is None:
        raise ValueError("only a user account can hold a sign-in token")
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    expires = now + MAX_AGE
    with db.writing() as s:
        s.add(
            SignInToken(
                token_hash=_hash(token), user_id=actor.user_id, created_at=now, last_seen_at=now, expires_at=expires
            )
        )
        record(s, actor, "sign_in_token_issued", "app_user", actor.user_id)
    return Issued(token, expires)


def resume(db: Database, token: str | None, idle_minutes: int, *, now: datetime | None = None) -> Actor | None:
    """The person a browser's token signs in, or None (unknown, expired, idle, revoked or disabled)."""
    if not isinstance(token, str) or not token or len(token) > 200:
        return None
    now = now or utcnow()
    with db.writing() as s:
        row = s.scalars(select(SignInToken).where(SignInToken.token_hash == _hash(token))).first()
        if row is None or row.revoked_at is not None:
            return None
        if row.display_name is not None:  # a wall display: no idle limit, read-only board
            if now >= row.expires_at:
                row.revoked_at, row.revoke_reason = now, "expired"
                return None
            if now - row.last_seen_at >= TOUCH_EVERY:
                row.last_seen_at = now
            site = row.site_id  # paired before the network: the first site, as then
            if site is None:
                site = s.scalar(select(Clinic.id).order_by(Clinic.id).limit(1))
            return display_actor(row.display_name, site)
        user = s.get(AppUser, row.user_id)
        reason = None
        if user is None or not user.active:
            reason = "account disabled"
        elif now >= row.expires_at:
            reason = "expired"
        elif now - row.last_seen_at > timedelta(minutes=idle_minutes):
            reason = "idle"
        if reason is not None:
            row.revoked_at, row.revoke_reason = now, reason
            return None
        assert user is not None
        if now - row.last_seen_at >= TOUCH_EVERY:
            row.last_seen_at = now
        return Actor(user.id, user.display_name, user.role)


def touch(db: Database, token: str | None, *, now: datetime | None = None) -> None:
    """Record activity on a token (at most once a minute), so the idle limit counts from the last tap."""
    if not token:
        return
    now = now or utcnow()
    with db.writing() as s:
        s.execute(
            update(SignInToken)
            .where(
                SignInToken.token_hash == _hash(token),
                SignInToken.revoked_at.is_(None),
                SignInToken.last_seen_at <= now - TOUCH_EVERY,
            )
            .values(last_seen_at=now)
        )


def revoke(db: Database, token: str | None, reason: str, *, now: datetime | None = None) -> None:
    """End one browser's sign-in (sign-out, idle)."""
    if not token:
        return
    with db.writing() as s:
        s.execute(
            update(SignInToken)
            .where(SignInToken.token_hash == _hash(token), SignInToken.revoked_at.is_(None))
            .values(revoked_at=now or utcnow(), revoke_reason=reason[:40])
        )


def revoke_user(db: Database, user_id: int, reason: str, *, now: datetime | None = None) -> int:
    """End every sign-in of a user at once (account disabled, password reset); returns how many."""
    with db.writing() as s:
        result = s.execute(
            update(SignInToken)
            .where(SignInToken.user_id == user_id, SignInToken.revoked_at.is_(None))
            .values(revoked_at=now or utcnow(), revoke_reason=reason[:40])
        )
        return int(getattr(result, "rowcount", 0) or 0)


def display_actor(screen: str, site_id: int | None = None) -> Actor:
    """Who a wall display acts as: nobody's account, a role that may only read the board, at its one
    site (the board it shows)."""
    sites = frozenset({site_id}) if site_id is not None else None
    return Actor(None, f"Wall display · {screen}", WALL_DISPLAY, sites=sites, site_id=site_id)


def issue_display(
    db: Database, admin: Actor, screen: str, *, site_id: int | None = None, now: datetime | None = None
) -> Issued:
    """Pair this browser with a named wall screen showing one site's board: `site_id`, else the site the
    administrator works in now (administrators only, at a site they hold; audited)."""
    require_role(admin, ADMINISTRATION, "set up a wall display")
    name = (screen or "").strip()
    if not name:
        raise ValidationError({"screen": "Name the screen (e.g. Infusion bay A)."})
    if len(name) > DISPLAY_NAME_MAX:
        raise ValidationError({"screen": f"Keep the screen name under {DISPLAY_NAME_MAX} characters."})
    if admin.user_id is None:
        raise ValidationError({"screen": "Sign in with your own account to pair a screen."})
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    expires = now + DISPLAY_MAX_AGE
    if site_id is not None and (isinstance(site_id, bool) or not isinstance(site_id, int)):
        raise ValidationError({"site": "Pick the site whose board the screen shows."})
    with db.writing() as s:
        site = working_site(s, admin) if site_id is None else site_id
        clinic = s.get(Clinic, site) if site is not None else None
        if clinic is None or not clinic.active:
            raise ValidationError({"site": "Pick an open site whose board the screen shows."})
        require_site(s, admin, clinic.id, "pair a wall display")
        row = SignInToken(
            token_hash=_hash(token),
            user_id=admin.user_id,
            created_at=now,
            last_seen_at=now,
            expires_at=expires,
            display_name=name,
            site_id=clinic.id,
        )
        s.add(row)
        s.flush()
        record(s, admin, "wall_display_paired", "sign_in_token", row.id, after={"screen": name, "site_id": clinic.id})
    return Issued(token, expires)


def displays(db: Database, admin: Actor, *, now: datetime | None = None) -> list[SignInToken]:
    """The wall displays still paired (not revoked, not expired)."""
    require_role(admin, ADMINISTRATION, "see the wall displays")
    now = now or utcnow()
    with db.reading() as s:
        return list(
            s.scalars(
                select(SignInToken)
                .where(
                    SignInToken.display_name.is_not(None),
                    SignInToken.revoked_at.is_(None),
                    SignInToken.expires_at > now,
                )
                .order_by(SignInToken.display_name)
            )
        )


def unpair_display(db: Database, admin: Actor, token_id: int, *, now: datetime | None = None) -> None:
    """Stop a wall display at once (audited); the screen shows the sign-in page at its next refresh."""
    require_role(admin, ADMINISTRATION, "stop a wall display")
    with db.writing() as s:
        row = s.get(SignInToken, token_id)
        if row is None or row.display_name is None:
            raise ValidationError({"display": "That wall display does not exist."})
        if row.revoked_at is None:
            row.revoked_at, row.revoke_reason = now or utcnow(), "unpaired"
            record(
                s,
                admin,
                "wall_display_unpaired",
                "sign_in_token",
                row.id,
                before={"screen": row.display_name},
                after={"site_id": row.site_id},  # the site's own event, as the pairing was
            )
