"""Clinic-configurable settings with their defaults and where each number comes from.

Alert thresholds are the "suggested demo defaults" of clinical.md §4b. The
tolerances at the bottom are product choices: clinical.md is silent on them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class AlertThresholds(BaseModel):
    """Notify thresholds (clinical.md §4b, 'Suggested demo defaults')."""

    temperature_c_high: float = 38.0  # T ≥ 38.0 °C
    systolic_low: int = 90  # SBP < 90
    systolic_high: int = 180  # SBP ≥ 180
    diastolic_high: int = 110  # DBP ≥ 110
    pulse_low: int = 50  # HR < 50
    pulse_high: int = 120  # HR > 120
    resp_rate_high: int = 24  # RR > 24
    spo2_low: int = 92  # SpO2 < 92 %
    systolic_drop_from_baseline: int = 30  # SBP change > 30 mmHg from baseline
    flag_news2_single_three: bool = True  # any NEWS2 single parameter = 3


class ClinicSettings(BaseModel):
    thresholds: AlertThresholds = Field(default_factory=AlertThresholds)
    # Product choices, not clinical facts (clinical.md is silent):
    clock_skew_minutes: int = 5  # how far in the future a typed time may be
    late_entry_minutes: int = 15  # issue 5 / clinical.md §6b: later than this = late entry
    max_infusion_hours: float = 12.0  # issue 2: over 12 h is rejected
    idle_sign_out_minutes: int = 15  # issue 5: nurses share tablets
    min_password_length: int = 12  # product choice (NIST SP 800-63B asks for at least 8)
    lockout_attempts: int = 5  # failed sign-ins before a lockout (product choice)
    lockout_minutes: int = 5  # "a few minutes" (issue 5)
    demo_mode: bool = False  # set by the demo loader: the sign-in page lists the demo accounts
    window_tolerance_minutes: int = 15  # past the label window by more than this = flagged
    vitals_satisfied_early_minutes: int = 5  # vitals this close before a due time count for it


def load_settings(raw: dict[str, Any] | None) -> ClinicSettings:
    """Settings stored on the clinic row, with defaults filled in for missing keys."""
    return ClinicSettings.model_validate(raw or {})
