"""Administrator's command line for accounts.

    python -m infusion.accounts add USERNAME --name "Full Name" --role nurse [--email E]
                                  [--site CODE ...] [--network]
    python -m infusion.accounts reset-password USERNAME
    python -m infusion.accounts disable USERNAME
    python -m infusion.accounts list

`--site CODE` (repeatable) names the sites where the role applies; `--network` makes it apply at every
site. Without either, administrators, managers and quality staff are network-wide and everyone else
works at the first site.

Passwords are read with a hidden prompt, or from standard input with
--password-stdin (for scripts). Actions are audited as "command line".
"""

from __future__ import annotations

import argparse
import getpass
import sys

from sqlalchemy import func, select

from db.engine import Database, database_url, open_database
from db.models import AppUser, Clinic, UserSite
from infusion.accounts import auth
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import Role
from infusion.errors import ChairsideError
from infusion.services.setup import bootstrap

CLI_ACTOR = Actor(None, "command line", Role.ADMIN)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Repeat it: ") != first:
        raise ChairsideError("The two passwords differ; nothing was changed.")
    return first


def _user_id(db: Database, username: str) -> int:
    with db.reading() as s:
        user_id = s.scalar(select(AppUser.id).where(AppUser.username == username.strip().lower()))
    if user_id is None:
        raise ChairsideError(f"No user named {username!r}.")
    return user_id


def _site_ids(db: Database, codes: list[str]) -> list[int]:
    """The sites named by their codes (case does not matter); an unknown code is an error."""
    wanted = {code.strip().upper(): code for code in codes}
    with db.reading() as s:
        upper = func.upper(Clinic.code)
        found: dict[str, int] = {
            code: id_ for code, id_ in s.execute(select(upper, Clinic.id).where(upper.in_(list(wanted))))
        }
        known = ", ".join(s.scalars(select(Clinic.code).order_by(Clinic.code)))
    missing = [code for code in wanted if code not in found]
    if missing:
        raise ChairsideError(f"No site with the code {', '.join(missing)} (sites: {known}).")
    return [found[code] for code in wanted]


def _scope(db: Database, user: AppUser) -> str:
    if user.network_wide:
        return "network"
    with db.reading() as s:
        codes = s.scalars(
            select(Clinic.code).join(UserSite, UserSite.site_id == Clinic.id).where(UserSite.user_id == user.id)
        )
        return ",".join(sorted(codes)) or "no site"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infusion.accounts", description="Manage Chairside accounts.")
    parser.add_argument("--database-url", default=None, help="default: CHAIRSIDE_DATABASE_URL or chairside.sqlite")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add a user")
    add.add_argument("username")
    add.add_argument("--name", required=True, help="display name")
    add.add_argument("--role", required=True, choices=[role.value for role in Role])
    add.add_argument("--email", help="e-mail used by single sign-on")
    add.add_argument("--password-stdin", action="store_true")
    add.add_argument("--no-password", action="store_true", help="single sign-on only")
    add.add_argument("--site", action="append", default=[], metavar="CODE", help="a site the role applies at")
    add.add_argument("--network", action="store_true", help="the role applies at every site")
    reset = sub.add_parser("reset-password", help="set a new password (also clears a lockout)")
    reset.add_argument("username")
    reset.add_argument("--password-stdin", action="store_true")
    disable = sub.add_parser("disable", help="disable an account (it stays in the audit trail)")
    disable.add_argument("username")
    sub.add_parser("list", help="list accounts")
    args = parser.parse_args(argv)

    try:
        db = open_database(args.database_url or database_url())
        bootstrap(db)
        if args.command == "add":
            if args.network and args.site:
                raise ChairsideError("Give --network or --site, not both.")
            sites = _site_ids(db, args.site) if args.site else None
            password = None if args.no_password else _password(args)
            user = auth.add_user(
                db,
                CLI_ACTOR,
                username=args.username,
                display_name=args.name,
                role=args.role,
                password=password,
                email=args.email,
                network_wide=True if args.network else (False if sites else None),
                sites=sites,
            )
            where = f", {_scope(db, user)}" if args.site or args.network else ""
            print(f"Added {user.username} ({user.role}{where}).")
        elif args.command == "reset-password":
            auth.set_password(db, CLI_ACTOR, _user_id(db, args.username), _password(args))
            print(f"Password set for {args.username}.")
        elif args.command == "disable":
            auth.set_active(db, CLI_ACTOR, _user_id(db, args.username), False)
            print(f"Disabled {args.username}.")
        else:
            for user in auth.list_users(db, CLI_ACTOR):
                state = "active" if user.active else "disabled"
                print(f"{user.username:20} {user.role:13} {state:9} {user.display_name}")
    except ChairsideError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
