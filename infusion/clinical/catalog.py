"""The therapy catalog: seed file loading and per-infusion rules.

Rules are looked up by infusion number because labels differ between first and
later infusions (Ocrevus 1–2 vs later, Briumvi 1 vs later, Zunovo observation).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CATALOG_FILE = Path(__file__).with_name("therapy_catalog.toml")

SEED_FIELDS = (
    "name",
    "brand",
    "route",
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
    "rate_plan",
    "source",
    "notes",
)


def load_seed(path: Path = CATALOG_FILE) -> list[dict[str, Any]]:
    """Therapy rows from the seed file, each with its vitals schedule completed."""
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    default_schedule = data.get("default_vitals_schedule", {})
    rows = []
    for raw in data["therapy"]:
        row = {"code": raw["code"], **{k: raw.get(k) for k in SEED_FIELDS}}
        row["vitals_schedule"] = {**default_schedule, **(raw.get("vitals_schedule") or {})}
        row["rate_plan"] = raw.get("rate_plan") or []
        row["premedication_required"] = bool(raw.get("premedication_required", False))
        row["dose_unit"] = raw.get("dose_unit", "mg")
        row["route"] = raw.get("route", "IV")
        for text_field in ("dosing_text", "premedication_text", "source", "notes"):
            row[text_field] = row.get(text_field) or ""
        rows.append(row)
    return rows


def _rule_for(rules: list[dict[str, Any]], infusion_number: int) -> dict[str, Any] | None:
    for rule in rules:
        low = rule.get("from", 1)
        high = rule.get("to")
        if infusion_number >= low and (high is None or infusion_number <= high):
            return rule
    return None


@dataclass(frozen=True)
class DurationWindow:
    min_minutes: int | None
    max_minutes: int | None

    def describe(self) -> str:
        def hours(m: int) -> str:
            return f"{m / 60:g} h" if m >= 60 else f"{m} min"

        if self.min_minutes is None and self.max_minutes is None:
            return "not defined"
        if self.max_minutes is None:
            return f"≥ {hours(self.min_minutes or 0)}"
        if self.min_minutes == self.max_minutes:
            return f"about {hours(self.max_minutes)}"
        return f"{hours(self.min_minutes or 0)}–{hours(self.max_minutes)}"


def duration_window(windows: list[dict[str, Any]], infusion_number: int) -> DurationWindow:
    rule = _rule_for(windows, infusion_number) or {}
    return DurationWindow(rule.get("min_minutes"), rule.get("max_minutes"))


def observation_minutes(rules: list[dict[str, Any]], infusion_number: int) -> int | None:
    """Minutes of post-infusion observation, or None where the label does not define it."""
    rule = _rule_for(rules, infusion_number) or {}
    return rule.get("minutes")


def rate_plan_for(plan: list[dict[str, Any]], infusion_number: int) -> dict[str, Any] | None:
    return _rule_for(plan, infusion_number)


#: therapies whose required premedication is given on the first days of each course only:
#: Lemtrada USPI §2.2, corticosteroid "immediately prior to LEMTRADA infusion for the first 3 days of
#: each treatment course" (docs/clinical-basis.md §3)
COURSE_PREMEDICATION_DAYS = {"alemtuzumab": 3}


def premedication_due(code: str, required: bool, course_day: int | None) -> bool:
    """Whether this infusion needs its premedication recorded (or a reason to skip it) before IV start.

    Follows the course day where the label ties premedication to it; a course infusion without a stored
    day is treated as needing it (the cautious reading)."""
    if not required:
        return False
    days = COURSE_PREMEDICATION_DAYS.get(code)
    return days is None or course_day is None or course_day <= days
