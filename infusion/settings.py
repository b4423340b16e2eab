"""Clinic-configurable settings with their defaults and where each number comes from.

Every number is listed with its source in docs/clinical-basis.md §6 (alert
thresholds) and §10 (product choices). A value no public source gives is marked
as a product choice here and there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field


class AlertThresholds(BaseModel):
    """Notify thresholds, one low and one high limit per measure where both exist
    (docs/clinical-basis.md §6; the clinic edits them)."""

    temperature_c_high: float = 38.0  # T ≥ 38.0 °C: the usual fever threshold (clinical-basis §6)
    temperature_c_low: float = 35.0  # T ≤ 35.0 °C: the RCP NEWS2 chart's 3-point band (product choice)
    systolic_low: int = 90  # SBP < 90: WAO/NIAID anaphylaxis hypotension criterion; NHS "below 90/60"
    systolic_high: int = 180  # SBP ≥ 180: product choice (clinical-basis §6)
    diastolic_low: int = 60  # DBP < 60: NHS "low blood pressure is a reading of less than 90/60 mmHg"
    diastolic_high: int = 110  # DBP ≥ 110: product choice (clinical-basis §6)
    pulse_low: int = 50  # HR < 50: product choice (NEWS2 scores 41–50 one point)
    pulse_high: int = 120  # HR > 120: product choice (NEWS2 scores 111–130 two points)
    resp_rate_low: int = 9  # RR < 9, i.e. ≤ 8: the RCP NEWS2 chart's 3-point band (product choice)
    resp_rate_high: int = 24  # RR > 24: product choice (NEWS2 scores ≥ 25 three points)
    spo2_low: int = 92  # SpO2 < 92 % on Scale 1: product choice (NEWS2 Scale 1 scores ≤ 93 two points)
    spo2_low_scale2: int = 88  # SpO2 < 88 % on Scale 2: the RCP chart's Scale 2 target is 88–92 %
    systolic_drop_from_baseline: int = 30  # SBP change > 30 mmHg from baseline (WAO/NIAID: drop > 30 %)
    flag_news2_single_three: bool = True  # any NEWS2 single parameter = 3 (RCP Chart 4)


class ClinicSettings(BaseModel):
    """One site's settings (stored on its `clinic` row).

    The account security fields (`idle_sign_out_minutes`, `min_password_length`, `lockout_attempts`,
    `lockout_minutes`) are kept per site but apply network-wide, as the strictest across the open
    sites (`account_security`): an account is the network's and before sign-in no site is known, so
    the sign-in page, the lockout and the idle sign-out must not depend on which site is first."""

    thresholds: AlertThresholds = Field(default_factory=AlertThresholds)
    # Product choices, not clinical facts (docs/clinical-basis.md §10):
    clock_skew_minutes: int = 5  # how far in the future a typed time may be
    late_entry_minutes: int = 15  # issue 5 (CMS PIM §3.3.2.5 asks late entries be marked): later = late entry
    max_infusion_hours: float = 12.0  # issue 2: over 12 h is rejected
    idle_sign_out_minutes: int = 15  # issue 5: nurses share tablets
    min_password_length: int = 12  # product choice (NIST SP 800-63B asks for at least 8)
    lockout_attempts: int = 5  # failed sign-ins before a lockout (product choice)
    lockout_minutes: int = 5  # "a few minutes" (issue 5)
    demo_mode: bool = False  # set by the demo loader: the sign-in page lists the demo accounts
    window_tolerance_minutes: int = 15  # past the label window by more than this = flagged
    vitals_satisfied_early_minutes: int = 5  # vitals this close before a due time count for it
    # The site's opening hours, the chair-hours Trends counts as available (product choice, no clinical
    # source: the site sets its own; 07:00–19:00 Monday–Friday until it does). Wall clock, site's zone.
    opening_hour: int = 7
    closing_hour: int = 19  # the hour the last chair-hour ends (19 = open until 19:00)
    open_weekdays: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])  # 0 = Monday … 6 = Sunday


def load_settings(raw: dict[str, Any] | None) -> ClinicSettings:
    """Settings stored on the clinic row, with defaults filled in for missing keys."""
    return ClinicSettings.model_validate(raw or {})


#: the settings that guard an account rather than a site's work; applied network-wide (`account_security`)
ACCOUNT_SECURITY_FIELDS = ("idle_sign_out_minutes", "min_password_length", "lockout_attempts", "lockout_minutes")


@dataclass(frozen=True)
class AccountSecurity:
    """Sign-in and idle rules for every account of the network: the strictest of the sites' settings."""

    idle_sign_out_minutes: int = ClinicSettings.model_fields["idle_sign_out_minutes"].default
    min_password_length: int = ClinicSettings.model_fields["min_password_length"].default
    lockout_attempts: int = ClinicSettings.model_fields["lockout_attempts"].default
    lockout_minutes: int = ClinicSettings.model_fields["lockout_minutes"].default


def account_security(sites: Iterable[ClinicSettings]) -> AccountSecurity:
    """The strictest account rules across the sites' settings: the shortest idle sign-out, the longest
    minimum password, the fewest failed sign-ins before a lockout and the longest lockout. No site
    (before set-up): the defaults."""
    every = list(sites)
    if not every:
        return AccountSecurity()
    return AccountSecurity(
        idle_sign_out_minutes=min(s.idle_sign_out_minutes for s in every),
        min_password_length=max(s.min_password_length for s in every),
        lockout_attempts=min(s.lockout_attempts for s in every),
        lockout_minutes=max(s.lockout_minutes for s in every),
    )
