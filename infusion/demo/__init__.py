"""A realistic demo clinic for the dashboard, the benchmarks and the tests: `python -m infusion.demo`.

A US MS infusion center with chairs, staff and patients, a year of past
sessions on each therapy's dosing calendar, and a "live" day around the real
now. Rates, symptoms and schedules follow docs/clinical-basis.md (§1a therapies,
§1b titration, §1c vitals, §2 reaction rates, §3 CTCAE). Demo data only.

Every demo account signs in with `DEMO_PASSWORD`; the sign-in page lists them
only in demo mode.

The modules, in the order a load uses them: options (what to load), people
(clinic, staff, names, diagnoses), reactions and therapies (per-therapy
profiles and dosing calendars), planning (patients and sessions), events,
simulate and vitals (one session's random story), writer (bulk encoding and
writing), rows (a session to rows), days and today (past days and the live
board), premises (clinic, chairs, staff, catalog, audit), network (the sites,
their chairs and staff, and patients seen at two sites, for `--sites N`), loader
(the transaction) and cli (the command line).

One clinic unless `--sites N` (`DemoOptions.sites`) asks for a network: then the
sessions are shared unequally among N sites in three US time zones
(`infusion.demo.people.SITES`), each planned and seated in its own zone.
"""

from infusion.demo.cli import main
from infusion.demo.loader import load_demo, load_demo_if_empty
from infusion.demo.options import DemoOptions, DemoRefused, DemoResult
from infusion.demo.people import DEMO_PASSWORD, DIAGNOSES, STAFF

__all__ = [
    "DEMO_PASSWORD",
    "DIAGNOSES",
    "STAFF",
    "DemoOptions",
    "DemoRefused",
    "DemoResult",
    "load_demo",
    "load_demo_if_empty",
    "main",
]
