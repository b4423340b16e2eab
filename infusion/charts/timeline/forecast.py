"""The session's planned titration steps and live forecast, from its therapy's rate plan and its rate log."""

from __future__ import annotations

from datetime import datetime

from infusion.clinical.titration import Forecast, Step, forecast, planned_steps
from infusion.clock import utcnow
from infusion.reads.sessions import SessionDetail


def _weight_kg(detail: SessionDetail) -> float | None:
    """The latest weight measured in this session, else the patient's recorded weight."""
    measured = [v for v in detail.vitals if v.status == "active" and v.weight_kg]
    return measured[-1].weight_kg if measured else detail.patient.weight_kg


def session_plan(detail: SessionDetail) -> list[Step]:
    """The therapy's planned titration steps for this session (titration.planned_steps)."""
    row = detail.session
    return planned_steps(
        detail.therapy.rate_plan, infusion_number=row.infusion_number, dose=row.dose, weight_kg=_weight_kg(detail)
    )


def session_forecast(detail: SessionDetail, now: datetime | None = None) -> Forecast:
    """Next rate step and expected end for this session, from its active rate log (for the Chairside header)."""
    row = detail.session
    log = [(r.at, r.kind, r.rate_ml_h) for r in detail.rates if r.status == "active"]
    return forecast(
        detail.therapy.rate_plan,
        infusion_number=row.infusion_number,
        dose=row.dose,
        weight_kg=_weight_kg(detail),
        iv_started_at=row.iv_started_at,
        rate_log=log,
        now=now or utcnow(),
        tz=detail.clinic.timezone,
    )
