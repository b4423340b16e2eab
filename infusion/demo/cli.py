"""The command line `python -m infusion.demo`: arguments, exit codes and the summary the user sees.

Exit codes: 0 loaded, 1 the database failed (nothing saved), 2 bad arguments
or refused because the database already has sessions. The summary and the
error lines are the command's output and go to stdout/stderr directly; progress
goes to stderr as the load runs: on a terminal one line redrawn in place (a bar, percent of
sessions, rows, rows/s, elapsed seconds), otherwise such a line every few seconds (a log is not
flooded), then each later step.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from alembic.util import CommandError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from db.engine import database_url, open_database
from infusion.demo.loader import load_demo
from infusion.demo.options import MAX_SITES, DemoOptions, DemoRefused, DemoResult, network_minimum


def _positive(limit: int) -> Callable[[str], int]:
    """An argparse type for a whole number from 1 to `limit`, with a plain message otherwise."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
        if not 1 <= number <= limit:
            raise argparse.ArgumentTypeError(f"must be between 1 and {limit:,}, got {number}")
        return number

    return parse


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m infusion.demo",
        description="Fill the configured database with a demo US MS infusion clinic "
        "(a year or more of sessions, chairs for the volume, and a live day around now).",
    )
    parser.add_argument(
        "--sessions",
        type=_positive(2_000_000),
        default=DemoOptions.sessions,
        help="number of sessions to create (default %(default)s)",
    )
    parser.add_argument(
        "--sites",
        type=_positive(MAX_SITES),
        default=DemoOptions.sites,
        help=f"1 (default): one clinic; 2–{MAX_SITES}: a clinic network in three US time zones sharing the "
        "sessions unequally, with a home-infusion team at the first site and network-wide staff",
    )
    parser.add_argument("--seed", type=int, default=DemoOptions.seed, help="random seed (default %(default)s)")
    parser.add_argument(
        "--days",
        type=_positive(3650),
        default=None,
        help="history length in days, ending today (default: one year, longer for more sessions than "
        "30 chairs hold in a year, at most ten years)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="database URL (default: CHAIRSIDE_DATABASE_URL or sqlite:///chairside.sqlite)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="add demo data even though the database already has sessions (nothing is deleted)",
    )
    args = parser.parse_args(argv)
    if args.sites > 1 and args.sessions < network_minimum(args.sites):
        parser.error(f"--sites {args.sites} needs --sessions {network_minimum(args.sites)} or more")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: 0 loaded, 1 the database failed (nothing saved), 2 bad arguments or refused."""
    args = parse_args(argv)
    url = args.database_url or database_url()
    shown = _safe_url(url)
    options = DemoOptions(sessions=args.sessions, seed=args.seed, days=args.days, force=args.force, sites=args.sites)
    try:
        db = open_database(url)
    except (SQLAlchemyError, CommandError, OSError, ValueError) as exc:
        print(f"error: cannot open database {shown}: {_first_line(exc)}", file=sys.stderr)
        return 1
    try:
        result = load_demo(db, options, progress=StderrProgress())
    except DemoRefused as refused:
        print(
            f"error: {shown} already has {refused.args[0]:,} sessions; refusing to add demo data. "
            "Use a new database, or pass --force to add more (nothing is deleted).",
            file=sys.stderr,
        )
        return 2
    except (SQLAlchemyError, RuntimeError) as exc:
        print(f"error: loading failed, nothing was saved: {_first_line(exc)}", file=sys.stderr)
        return 1
    finally:
        db.engine.dispose()
    _print_summary(shown, result)
    return 0


class StderrProgress:
    """Progress lines go to stderr, so the summary on stdout stays the command's output. On a terminal
    (`live`) the running rows line is redrawn in place (`update`); a step line ends it first."""

    def __init__(self) -> None:
        self.live = sys.stderr.isatty()
        self._open = 0  # length of the line being redrawn, 0 when none is

    def __call__(self, line: str) -> None:
        if self._open:
            print(file=sys.stderr)
            self._open = 0
        print(line, file=sys.stderr, flush=True)

    def update(self, line: str) -> None:
        if not self.live:
            self(line)
            return
        print("\r" + line.ljust(self._open), end="", file=sys.stderr, flush=True)
        self._open = len(line)


def _safe_url(url: str) -> str:
    """The URL for messages, without a password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1]


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _print_summary(url: str, result: DemoResult) -> None:
    c = result.counts
    today = ", ".join(f"{n} {s}" for s, n in sorted(result.today.items(), key=lambda kv: -kv[1]))
    where = f"Demo clinic network of {result.sites} sites" if result.sites > 1 else "Demo clinic"
    print(f"{where} loaded into {url} in {result.seconds:.1f} s")
    print(f"  {c['sessions']:,} sessions for {c['patients']:,} patients; today: {today or 'none'}")
    print(
        f"  {c['vital_signs']:,} vital signs, {c['rate_changes']:,} rate changes, "
        f"{c['premedications']:,} premedications, {c['reactions']:,} reactions, "
        f"{c['program_checks']:,} program checks"
    )
