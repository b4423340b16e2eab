"""Where a person may act: the sites their role applies at, checked in the services like the role.

A user holds their role either across the network (`app_user.network_wide`) or at the sites
listed in `user_site`. Every read of a session and every write to one asks `require_site` with
the session's site (its chair's), reading the account from the database in the same
transaction, so a browser that kept an old picture of the account is refused all the same.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, event, select
from sqlalchemy.orm import Session

from db.models import AppUser, Chair, Clinic, InfusionSession, UserSite
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import Role
from infusion.errors import NotFoundError, PermissionDenied
from infusion.settings import AccountSecurity, ClinicSettings, account_security, load_settings

#: `Session.info` key: {user id: the `user_site` ids read with the account in this transaction}
_SITES_READ = "user_sites_read"


#: built once (its cache key is kept with it): the commonest statement of every write
_ACCOUNT = (
    select(AppUser, UserSite.site_id)
    .outerjoin(UserSite, UserSite.user_id == AppUser.id)
    .where(AppUser.id == bindparam("user_id"))
)


def load_account(s: Session, user_id: int) -> AppUser | None:
    """The account and the sites it holds, in one statement, both held for the transaction: a write
    checks the account, then the site, then audits as it (one statement instead of two or three)."""
    return account_and_replay(s, user_id, None, None)[0]


@cache
def _by_token(model: Any) -> Any:
    """The id of `model`'s row under a client token (its column is unique), built once per table."""
    return select(model.id).where(model.client_token == bindparam("token")).limit(1)


@cache
def _account_and_replay(model: Any) -> Select[Any]:
    return _ACCOUNT.add_columns(_by_token(model).scalar_subquery().label("replay_id"))


def account_and_replay(
    s: Session, user_id: int, model: Any | None, token: str | None
) -> tuple[AppUser | None, int | None]:
    """`load_account`, and with `model` and `token` the id of the `model` row stored under that client
    token, in the same statement (a save's retry lookup costs no round trip of its own)."""
    if model is None or token is None:
        rows = s.execute(_ACCOUNT, {"user_id": user_id}).all()
    else:
        rows = s.execute(_account_and_replay(model), {"user_id": user_id, "token": token}).all()
    if not rows:
        return None, None
    user = rows[0][0]
    keep(s, user)
    s.info.setdefault(_SITES_READ, {})[user_id] = frozenset(int(row[1]) for row in rows if row[1] is not None)
    probed: Any = rows[0]  # (account, site) or (account, site, replay id)
    return user, (probed[2] if model is not None and token is not None else None)


def stored_id(s: Session, model: Any, token: str) -> int | None:
    """The id of the `model` row stored under a client token (for writes without an account to read)."""
    found = s.scalar(_by_token(model), {"token": token})
    return int(found) if found is not None else None


@event.listens_for(Session, "after_flush")
def _forget_sites_read(s: Session, _context: object) -> None:
    """A flush that adds or removes a `user_site` row makes the sites read with an account stale."""
    if _SITES_READ in s.info and any(isinstance(o, UserSite) for o in (*s.new, *s.deleted, *s.dirty)):
        del s.info[_SITES_READ]


def held_sites(s: Session, actor: Actor) -> frozenset[int] | None:
    """The site ids the actor's role applies at; None means every site."""
    if actor.user_id is None:
        return actor.sites
    user = s.get(AppUser, actor.user_id)
    if user is None or not user.active:
        raise PermissionDenied("Your account is disabled. Ask an administrator.")
    if user.network_wide or user.role == Role.ADMIN:  # administrators set up the whole network
        return None
    read = s.info.get(_SITES_READ, {}).get(user.id)
    if read is not None:
        return read
    return frozenset(s.scalars(select(UserSite.site_id).where(UserSite.user_id == user.id)))


def holds(held: frozenset[int] | None, site_id: int) -> bool:
    return held is None or site_id in held


def require_site(s: Session, actor: Actor, site_id: int, what: str) -> None:
    """PermissionDenied unless the actor's role applies at `site_id`."""
    if not holds(held_sites(s, actor), site_id):
        name = s.scalar(select(Clinic.name).where(Clinic.id == site_id)) or f"site {site_id}"
        raise PermissionDenied(f"You do not work at {name}; you may not {what} there.")


def site_of_chair(s: Session, chair_id: int) -> int:
    chair = s.get(Chair, chair_id)
    if chair is None:
        raise NotFoundError(f"Chair {chair_id} not found.")
    keep(s, chair)  # the audit row asks for the chair's site again in this transaction
    return int(chair.site_id)


def keep(s: Session, row: object) -> None:
    """Hold `row` for the rest of the transaction. The session's identity map holds rows weakly, so a row
    read in one helper and dropped is read again by the next `s.get` (a statement per save each)."""
    if row is not None:
        s.info.setdefault("kept", []).append(row)


def site_of_session(s: Session, row: InfusionSession) -> int:
    return site_of_chair(s, row.chair_id)


def visible_sites(s: Session, actor: Actor) -> list[Clinic]:
    """The active sites the actor holds, in a stable order (for pickers and filters)."""
    return _active_sites(s, held_sites(s, actor))


def _active_sites(s: Session, held: frozenset[int] | None) -> list[Clinic]:
    q = select(Clinic).where(Clinic.active.is_(True)).order_by(Clinic.name, Clinic.id)
    if held is not None:
        q = q.where(Clinic.id.in_(held))
    return list(s.scalars(q))


def working_site(s: Session, actor: Actor) -> int | None:
    """The site the actor works in now: the one picked if held, else the one last chosen, else the
    first active site held (None before set-up or when the person holds no site)."""
    held = held_sites(s, actor)  # loads the account, so the get below reads no row again
    user = s.get(AppUser, actor.user_id) if actor.user_id is not None else None
    for site in (actor.site_id, user.last_site_id if user is not None else None):
        if site is not None and holds(held, site) and s.get(Clinic, site) is not None:
            return int(site)
    sites = _active_sites(s, held)
    return sites[0].id if sites else None


#: roles that hold across the network unless an administrator says otherwise (a network manager,
#: network quality, the administrator); nurses and charge nurses work at named sites
NETWORK_ROLES: tuple[Role, ...] = (Role.ADMIN, Role.MANAGER, Role.QUALITY)


def place_user(s: Session, user: AppUser, *, network_wide: bool | None = None, sites: list[int] | None = None) -> None:
    """Give a new (flushed) account its scope: network-wide by role unless told, else the named sites
    (by default the first site, so a single clinic's new nurse can chart at once)."""
    user.network_wide = user.role in NETWORK_ROLES if network_wide is None else bool(network_wide)
    if user.network_wide:
        return
    if sites is None:
        first = s.scalar(select(Clinic.id).order_by(Clinic.id).limit(1))
        sites = [] if first is None else [first]
    for site in sorted(set(sites)):
        if s.get(Clinic, site) is None:
            raise NotFoundError(f"Site {site} not found.")
        s.add(UserSite(user_id=user.id, site_id=site))
    s.flush()


def working_context(s: Session, actor: Actor) -> tuple[Clinic, ClinicSettings]:
    """The site the actor works in now and its settings (zone, units, thresholds): what the Chairside
    list, the board and the due list show. NotFoundError before set-up; PermissionDenied for a
    person who holds no site."""
    site = working_site(s, actor)
    if site is None:
        if s.scalar(select(Clinic.id).limit(1)) is None:
            raise NotFoundError("The clinic is not set up yet.")
        raise PermissionDenied("You do not hold a role at any site yet. Ask an administrator.")
    clinic = s.get(Clinic, site)
    assert clinic is not None  # working_site checked it
    return clinic, load_settings(clinic.settings)


def account_rules(s: Session) -> AccountSecurity:
    """The network's account security (idle sign-out, password length, lockout): the strictest across
    the open sites (every site if none is open; the defaults before set-up). Accounts are the
    network's and before sign-in no site is known, so no single site's value may loosen them."""
    rows = s.execute(select(Clinic.settings, Clinic.active)).all()
    open_sites = [settings for settings, active in rows if active] or [settings for settings, _ in rows]
    return account_security(load_settings(settings) for settings in open_sites)
