"""Planned rate titration (docs/clinical-basis.md §3) and the live forecast: next step and expected end.

Pure functions over the catalog's `rate_plan` and a session's rate log, so the
rules can be tested by hand computation without a database or a page.

Plan formats (infusion/therapy_catalog.toml):
- increment: {start_ml_h, increment_ml_h, every_minutes, max_ml_h, bag_ml}  (Ocrevus)
- explicit steps: {steps=[{rate_ml_h, minutes}], bag_ml}                    (Briumvi)
- fixed: {fixed=true, bag_ml, minutes}                                      (Tysabri, Lemtrada)
- dose-based: {unit="mg/h", start, increment, every_minutes, max}           (rituximab)
- weight-based: {unit="mL/kg/h", start, every_minutes, max}                 (IVIG)

An infusion ends when the bag (mL plans) or the dose (mg/h plans) has been
given: docs/clinical-basis.md §3 says "rate changes lengthen the infusion, not the dose",
so a pause or a slower rate moves the end later instead of shortening the dose.

Split at its seam: `plan` (the catalog's plan resolved and laid out as steps) and `forecast` (the
actual rate log replayed against that plan). Both are importable from here.
"""

from infusion.clinical.titration.forecast import RATE_TOLERANCE, REACTION_HOLD_MINUTES, Forecast, forecast
from infusion.clinical.titration.plan import Step, label_ceiling, planned_steps, vitals_due_at_steps

__all__ = [
    "RATE_TOLERANCE",
    "REACTION_HOLD_MINUTES",
    "Forecast",
    "Step",
    "forecast",
    "label_ceiling",
    "planned_steps",
    "vitals_due_at_steps",
]
