"""`python -m infusion.exports`: the quality exports from the command line, for scheduled drops.

    python -m infusion.exports --dataset vitals --from 2026-01-01 --to 2026-06-30 \\
        [--site CODE ...] [--therapy CODE ...] [--chair NAME ...] [--nurse USERNAME ...] \\
        [--deidentify [--pseudonymise-site]] [--include-entered-in-error] [--database-url URL] --out FILE
    python -m infusion.exports --fhir --session ID [--deidentify] [--database-url URL] --out FILE

It calls the same `write_csv` / `write_bundle` as the export page, so a drop and
a download are the same file. The file is written beside its destination and
renamed into place only when complete, so a scheduled job never leaves half a
file for the next step to pick up. The de-identification secret comes from
CHAIRSIDE_DEID_SECRET only (a secret on the command line would show in `ps`
and shell history). Whoever can run this holds the database URL, so the audit
dataset is exported with the administrator's rights.

Exit status: 0 done, 2 bad arguments (nothing written), 1 the export failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from db.engine import Database, database_url, make_engine
from db.models import AppUser, Chair, Clinic, Therapy
from infusion.accounts.permissions import ADMIN
from infusion.errors import ChairsideError, NotFoundError, ValidationError
from infusion.exports.datasets import ExportFilters, write_csv
from infusion.exports.deidentify import ENV_SECRET, resolve_secret
from infusion.exports.queries import check_filters
from infusion.exports.schema import DATASETS, SCHEMA_VERSION

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: Without a terminal (cron, CI logs) progress is one line per this many rows instead of a live counter.
LOG_EVERY_ROWS = 100_000


class UsageError(Exception):
    """A bad argument: reported with the usage line, exit status 2, nothing written."""


def _iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {value!r}: use YYYY-MM-DD") from None


def _session_id(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid session id {value!r}: a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"invalid session id {value!r}: a whole number from 1")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m infusion.exports",
        description=f"Write a Chairside quality export (CSV, schema v{SCHEMA_VERSION}) or a session's FHIR R4 "
        "bundle. Data dictionaries: docs/data-dictionary/.",
        epilog=f"De-identified exports read the secret from {ENV_SECRET}.",
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--dataset", choices=DATASETS, help="which CSV dataset to write")
    what.add_argument("--fhir", action="store_true", help="write one session as a FHIR R4 Bundle (JSON)")
    parser.add_argument(
        "--from", dest="start", type=_iso_date, metavar="YYYY-MM-DD", help="first day (clinic time), included"
    )
    parser.add_argument(
        "--to", dest="end", type=_iso_date, metavar="YYYY-MM-DD", help="last day (clinic time), included"
    )
    parser.add_argument(
        "--site",
        nargs="+",
        action="extend",
        default=[],
        metavar="CODE",
        help="only these sites, by code (default: every site); dates are each site's local days",
    )
    parser.add_argument(
        "--therapy",
        nargs="+",
        action="extend",
        default=[],
        metavar="CODE",
        help="only these therapy codes (e.g. natalizumab)",
    )
    parser.add_argument(
        "--chair",
        nargs="+",
        action="extend",
        default=[],
        metavar="NAME",
        help="only these chairs, by name (not for course_ends: a course end has no chair)",
    )
    parser.add_argument(
        "--nurse",
        nargs="+",
        action="extend",
        default=[],
        metavar="USERNAME",
        help="only sessions checked in by these staff (audit: changes by them; course_ends: courses they ended)",
    )
    parser.add_argument(
        "--include-entered-in-error",
        action="store_true",
        help="keep entries marked entered in error, flagged in the entered_in_error column",
    )
    parser.add_argument("--session", type=_session_id, metavar="ID", help="the session, with --fhir")
    parser.add_argument(
        "--deidentify", action="store_true", help=f"HIPAA Safe Harbor de-identification (needs {ENV_SECRET})"
    )
    parser.add_argument(
        "--pseudonymise-site",
        action="store_true",
        help="with --deidentify: a keyed pseudonym (column site_key) instead of the site's code",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="SQLAlchemy URL (default: CHAIRSIDE_DATABASE_URL, else sqlite:///chairside.sqlite)",
    )
    parser.add_argument("--out", required=True, metavar="FILE", help="file to write")
    parser.add_argument("--quiet", action="store_true", help="no progress or summary on stderr")
    return parser


def _check_arguments(args: argparse.Namespace) -> None:
    if args.fhir:
        if args.session is None:
            raise UsageError("--fhir needs --session ID")
        extra = [
            flag
            for flag, value in (
                ("--from", args.start),
                ("--to", args.end),
                ("--site", args.site),
                ("--pseudonymise-site", args.pseudonymise_site),
                ("--therapy", args.therapy),
                ("--chair", args.chair),
                ("--nurse", args.nurse),
                ("--include-entered-in-error", args.include_entered_in_error),
            )
            if value
        ]
        if extra:
            raise UsageError(f"{', '.join(extra)} apply to --dataset exports, not to --fhir")
        return
    if args.session is not None:
        raise UsageError("--session goes with --fhir")
    if args.pseudonymise_site and not args.deidentify:
        raise UsageError("--pseudonymise-site goes with --deidentify")
    if args.start is None or args.end is None:
        raise UsageError("--dataset needs --from and --to")
    if args.start > args.end:
        raise UsageError(f"--from {args.start.isoformat()} is after --to {args.end.isoformat()}")


def _open_database(url: str | None) -> Database:
    url = url or database_url()
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UsageError(f"invalid database URL {url!r}") from None
    if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
        if not Path(parsed.database).is_file():
            # connecting would silently create an empty database file
            raise UsageError(f"no database at {parsed.database} (set --database-url or CHAIRSIDE_DATABASE_URL)")
    return Database(make_engine(url))


def _resolve(db: Database, args: argparse.Namespace) -> ExportFilters:
    """Site and therapy codes, chair names and usernames → ids; an unknown one is a usage error, not an empty file.

    Chair names are unique within a site: a name two sites share needs --site to say which.
    """
    with db.reading() as s:
        sites = dict(s.execute(select(Clinic.code, Clinic.id)).all())
        therapies = dict(s.execute(select(Therapy.code, Therapy.id)).all())
        chair_rows = s.execute(select(Chair.name, Chair.id, Chair.site_id)).all()
        users = dict(s.execute(select(AppUser.username, AppUser.id)).all())
    unknown_sites = [w for w in args.site if w not in sites]
    if unknown_sites:
        raise UsageError(
            f"--site: unknown {', '.join(map(repr, unknown_sites))} (known: {', '.join(sorted(sites)) or 'none'})"
        )
    site_ids = {sites[w] for w in args.site}
    chairs: dict[str, int] = {}
    for name, chair_id, site_id in chair_rows:
        if site_ids and site_id not in site_ids:
            continue
        if name in chairs and args.chair and name in args.chair:
            raise UsageError(f"--chair: {name!r} is a chair at more than one site: name the site with --site")
        chairs[name] = chair_id
    ids: dict[str, list[int]] = {}
    for flag, wanted, known in (
        ("--therapy", args.therapy, therapies),
        ("--chair", args.chair, chairs),
        ("--nurse", args.nurse, users),
    ):
        unknown = [w for w in wanted if w not in known]
        if unknown:
            choices = ", ".join(sorted(known)) or "none"
            raise UsageError(f"{flag}: unknown {', '.join(map(repr, unknown))} (known: {choices})")
        ids[flag] = [known[w] for w in wanted]
    filters = ExportFilters(
        args.start,
        args.end,
        therapy_ids=tuple(ids["--therapy"]),
        chair_ids=tuple(ids["--chair"]),
        nurse_ids=tuple(ids["--nurse"]),
        include_entered_in_error=args.include_entered_in_error,
        site_ids=tuple(sorted(site_ids)) or None,
        pseudonymise_site=args.pseudonymise_site,
    )
    try:
        check_filters(args.dataset, filters)
    except ValidationError as error:
        raise UsageError(str(error)) from None
    return filters


def _temporary_beside(target: Path) -> Path:
    """An empty file next to the destination: proves the path is writable before any query runs."""
    if target.is_dir():
        raise UsageError(f"cannot write {target}: it is a directory")
    try:
        handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    except OSError as error:
        raise UsageError(f"cannot write {target}: {error.strerror or error}") from None
    os.close(handle)
    return Path(name)


class _Progress:
    """Rows written so far on stderr: a live counter on a terminal, a line per LOG_EVERY_ROWS otherwise."""

    def __init__(self, label: str, quiet: bool) -> None:
        self.label, self.quiet = label, quiet
        self.live = sys.stderr.isatty()
        self.logged = 0

    def __call__(self, rows: int) -> None:
        if self.quiet:
            return
        if self.live:
            print(f"\r{self.label}: {rows:,} rows written", end="", file=sys.stderr, flush=True)
        elif rows - self.logged >= LOG_EVERY_ROWS:
            self.logged = rows
            print(f"{self.label}: {rows:,} rows written", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.live and not self.quiet:
            print(file=sys.stderr)


def _audit_export(db: Database, args: argparse.Namespace, summary: str, target: Path) -> None:
    """Every export leaves an audit event, like the Export page's (HIPAA audit controls): what, which
    filters, de-identified or not, and where it was written; attributed to the command line."""
    from infusion.accounts.actor import Actor
    from infusion.services.audit import record

    after = {
        "dataset": "fhir" if args.fhir else args.dataset,
        "deidentified": bool(args.deidentify),
        "summary": summary,
        "file": str(target),
        "from": args.start.isoformat() if getattr(args, "start", None) else None,
        "to": args.end.isoformat() if getattr(args, "end", None) else None,
        "sites": list(args.site) or None,
        "pseudonymised_site": bool(args.pseudonymise_site),
    }
    with db.writing() as s:
        record(
            s,
            Actor(None, "command line", ADMIN),
            "export_fhir" if args.fhir else "export_csv",
            "export",
            None,
            session_id=args.session if args.fhir else None,
            after=after,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (argparse's own errors included) instead of exiting."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a bad argument argparse already reported
        return int(exit_.code or 0)
    target = Path(args.out)
    temporary: Path | None = None
    try:
        _check_arguments(args)
        secret = None
        if args.deidentify:
            try:
                secret = resolve_secret(None)
            except ChairsideError as error:
                raise UsageError(f"--deidentify: {error}") from None
        db = _open_database(args.database_url)
        try:
            filters = None if args.fhir else _resolve(db, args)
            temporary = _temporary_beside(target)
            if args.fhir:
                from infusion.exports.fhir import write_bundle

                with temporary.open("wb") as fh:
                    try:
                        bundle = write_bundle(db, args.session, fh, deidentify=args.deidentify, secret=secret)
                    except NotFoundError as error:
                        raise UsageError(f"--session: {error}") from None
                summary = f"FHIR R4 bundle of session {args.session} ({len(bundle.entry or [])} resources)"
            else:
                assert filters is not None
                progress = _Progress(args.dataset, args.quiet)
                with temporary.open("wb") as fh:
                    rows = write_csv(
                        db,
                        args.dataset,
                        filters,
                        fh,
                        deidentify=args.deidentify,
                        secret=secret,
                        progress=progress,
                        actor_role=ADMIN,
                    )
                progress.done()
                summary = f"{rows:,} {args.dataset} rows (schema v{SCHEMA_VERSION})"
            _audit_export(db, args, summary, target)  # before the file appears: no unaudited export
            os.replace(temporary, target)
            temporary = None
        finally:
            db.engine.dispose()
    except UsageError as error:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ChairsideError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except SQLAlchemyError as error:
        print(
            f"{parser.prog}: database error: {error.__class__.__name__}: {str(error).splitlines()[0]}", file=sys.stderr
        )
        return EXIT_FAILED
    except OSError as error:
        print(f"{parser.prog}: cannot write {target}: {error.strerror or error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
    if not args.quiet:
        mode = ", de-identified" if args.deidentify else ""
        print(f"Wrote {summary}{mode} to {target}", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
