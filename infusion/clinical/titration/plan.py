"""Planned rate titration (docs/clinical-basis.md §3): the catalog's `rate_plan` resolved for one
infusion and laid out as steps from IV start. The plan formats are listed in `infusion.clinical.titration`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from infusion.clinical.catalog import rate_plan_for

#: float tolerance in the step arithmetic (not a clinical tolerance: that is RATE_TOLERANCE)
EPS = 1e-9


class Step(NamedTuple):
    """One planned rate, `offset_minutes` after IV start.

    A final step with rate 0 marks the planned end (bag or dose given).
    `offset_minutes` is None for a limit with no planned time (the IVIG maximum).
    """

    offset_minutes: float | None
    rate: float
    unit: str


@dataclass(frozen=True)
class Plan:
    """A plan resolved for one infusion: rate levels in order, each held `minutes` (None = until done)."""

    kind: str  # "increment" | "steps" | "fixed" | "weight"
    levels: tuple[tuple[float, float | None], ...]
    unit: str  # rate unit: "mL/h" or "mg/h" (weight plans are converted to mL/h)
    total: float | None  # amount to give: bag mL or dose mg; None = unknown
    amount_unit: str
    problem: str | None = None  # why this plan cannot be laid out (missing weight, dose…)
    max_rate: float | None = None  # weight plans: the ceiling, reached at no planned time


def _select(plan: dict[str, Any] | list[dict[str, Any]] | None, infusion_number: int) -> dict[str, Any] | None:
    """Accept the therapy's whole `rate_plan` list or the rule already chosen for this infusion."""
    if plan is None:
        return None
    if isinstance(plan, list):
        return rate_plan_for(plan, infusion_number)
    return plan or None


def _ramp(start: float, increment: float, every: float, maximum: float) -> tuple[tuple[float, float | None], ...]:
    """start, start+increment, … up to the maximum (held until done). A last partial step goes to the maximum."""
    levels: list[tuple[float, float | None]] = []
    rate = float(start)
    while rate < maximum - EPS and increment > 0:
        levels.append((rate, float(every)))
        rate += increment
    levels.append((float(maximum), None))
    return tuple(levels)


def resolve_plan(
    plan: dict[str, Any] | list[dict[str, Any]] | None,
    infusion_number: int,
    dose: float | None,
    weight_kg: float | None,
) -> Plan | None:
    rule = _select(plan, infusion_number)
    if rule is None:
        return None
    unit = rule.get("unit", "mL/h")
    if unit == "mL/kg/h":
        # docs/clinical-basis.md §3 (IVIG, Gammagard example): 0.5 mL/kg/h × 30 min, then "increase every
        # 30 min as tolerated" up to 5 mL/kg/h. It gives no step size, so only start and max exist.
        if not weight_kg:
            return Plan(
                "weight",
                (),
                "mL/h",
                None,
                "mL",
                problem="no weight recorded, so the weight-based (mL/kg/h) rates cannot be worked out",
            )
        start = float(rule["start"]) * weight_kg
        return Plan(
            "weight",
            ((start, float(rule.get("every_minutes", 30))),),
            "mL/h",
            None,
            "mL",
            max_rate=float(rule["max"]) * weight_kg,
        )
    if unit == "mg/h":
        levels = _ramp(rule["start"], rule.get("increment", 0), rule.get("every_minutes", 30), rule["max"])
        problem = None if dose else "no dose recorded, so the end of a dose-based (mg/h) plan is unknown"
        return Plan("increment", levels, "mg/h", float(dose) if dose else None, "mg", problem=problem)
    bag = rule.get("bag_ml")
    total = float(bag) if bag else None
    problem = None if total else "the plan has no bag volume, so its end is unknown"
    if rule.get("fixed"):
        if not total or not rule.get("minutes"):
            return Plan("fixed", (), "mL/h", total, "mL", problem="a fixed plan needs bag_ml and minutes")
        return Plan("fixed", ((total / float(rule["minutes"]) * 60.0, None),), "mL/h", total, "mL")
    if rule.get("steps"):
        steps = [(float(s["rate_ml_h"]), float(s["minutes"])) for s in rule["steps"]]
        # the last step continues until the bag is done (it is "the last 2 h" for Briumvi 1)
        levels = tuple(steps[:-1]) + ((steps[-1][0], None),)
        return Plan("steps", levels, "mL/h", total, "mL", problem=problem)
    levels = _ramp(rule["start_ml_h"], rule.get("increment_ml_h", 0), rule.get("every_minutes", 30), rule["max_ml_h"])
    return Plan("increment", levels, "mL/h", total, "mL", problem=problem)


def _lay_out(p: Plan) -> list[Step]:
    """The plan's levels as steps from IV start, cut off (with a rate-0 end step) when the total is given."""
    t = given = 0.0
    steps: list[Step] = []
    for rate, minutes in p.levels:
        if rate <= 0:
            break
        steps.append(Step(t, rate, p.unit))
        if p.total is None:
            if minutes is None:
                return steps
        else:
            this = rate * (minutes if minutes is not None else float("inf")) / 60.0
            if given + this >= p.total - EPS:
                t += (p.total - given) / rate * 60.0
                return steps + [Step(t, 0.0, p.unit)]
            given += this
        t += minutes  # type: ignore[operator]
    return steps


def planned_steps(
    plan: dict[str, Any] | list[dict[str, Any]] | None,
    *,
    infusion_number: int,
    dose: float | None,
    weight_kg: float | None,
) -> list[Step]:
    """The label's rate schedule for this infusion, as (offset from IV start, rate, unit).

    mL/h plans end when `bag_ml` is infused and mg/h plans when `dose` mg are
    given; the last step then has rate 0 at that offset. Fixed plans are one
    step at bag_ml/minutes. IVIG (mL/kg/h) gives the start (0.5 × weight mL/h,
    offset 0) and the maximum (5 × weight mL/h, offset None): docs/clinical-basis.md §3 is
    silent on the step size ("increase every 30 min as tolerated"), so no
    intermediate steps and no end time are forecast. No plan, or a plan that
    needs a missing weight, gives [].
    """
    p = resolve_plan(plan, infusion_number, dose, weight_kg)
    if p is None or not p.levels:
        return []
    if p.kind == "weight":
        assert p.max_rate is not None
        return [Step(0.0, p.levels[0][0], p.unit), Step(None, p.max_rate, p.unit)]
    return _lay_out(p)


def label_ceiling(
    plan: dict[str, Any] | list[dict[str, Any]] | None,
    *,
    infusion_number: int,
    dose: float | None,
    weight_kg: float | None,
) -> tuple[float, str] | None:
    """The highest rate in mL/h the label's plan gives this infusion, and where it comes from: the plan's
    maximum step (Ocrevus, Briumvi), the bag over the label's infusion time (Tysabri, Lemtrada), or the
    weight-based maximum (IVIG, 5 mL/kg/h × the weight). None when no mL/h ceiling can be worked out: no
    plan, a weight plan without a weight, or a mg/h plan (rituximab): the catalog holds no concentration,
    so a mg/h maximum has no mL/h equivalent here."""
    p = resolve_plan(plan, infusion_number, dose, weight_kg)
    if p is None or p.unit != "mL/h" or not (p.levels or p.max_rate):
        return None
    if p.kind == "weight":
        return (p.max_rate, "the label's weight-based maximum") if p.max_rate else None
    top = max(rate for rate, _ in p.levels)
    return top, "the rate of the label's infusion time" if p.kind == "fixed" else "the label's highest step"


def vitals_due_at_steps(steps: Iterable[Step]) -> list[float]:
    """Offsets (minutes after IV start) at which the plan changes the rate, end of infusion included.

    docs/clinical-basis.md §4's suggested default asks for vitals at every rate change
    and at the end of infusion; IV start itself is not one (the default asks
    for the check-in baseline and a set 15 min after start instead). For the
    live times after a pause or a reduction, use `Forecast.upcoming`.
    """
    return [s.offset_minutes for s in steps if s.offset_minutes is not None and s.offset_minutes > 0]
