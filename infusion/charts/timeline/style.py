"""The timeline's visual language: phase colours, markers for corrected entries, rows, vital series."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infusion.charts.palette import STATUS_COLOURS
from infusion.clinical.news2 import score_pulse, score_resp_rate, score_spo2_scale1, score_systolic, score_temperature

#: Phase bands. There is no session status for premedication (it happens while checked in),
#: so it gets a lighter shade of the checked-in blue.
PHASE_COLOURS = {
    "Check-in": STATUS_COLOURS["checked_in"],
    "Premedication": "#93c5fd",
    "Infusing": STATUS_COLOURS["infusing"],
    "Paused": STATUS_COLOURS["paused"],
    "Observation": STATUS_COLOURS["observation"],
    "Discharged": STATUS_COLOURS["discharged"],
}
LIGHT_PHASES = ("Premedication", "Paused")  # dark label text on these fills
FLAG_RED = "#dc2626"
INACTIVE_GREY = "#9ca3af"
THRESHOLD_FILL = "rgba(220, 38, 38, 0.10)"
INACTIVE_SYMBOLS = {"corrected": "circle-open", "entered_in_error": "x-open"}
INACTIVE_LABELS = {"corrected": "corrected", "entered_in_error": "entered in error"}

ROWS = ("phases", "rate", "bp", "pulse", "temperature", "spo2", "resp_rate")
ROW_HEIGHTS = (0.11, 0.19, 0.17, 0.14, 0.13, 0.13, 0.13)
REACTION_Y = 1.55  # reaction markers sit above the phase bands (0–1) in the phases row


@dataclass(frozen=True)
class Series:
    key: str  # column on VitalSign
    label: str
    row: str
    colour: str
    symbol: str
    flag_fields: tuple[str, ...]  # Flag.field values that flag this series
    news2_scorer: Any = None  # the NEWS2 single-parameter scorer, for "NEWS2 single parameter = 3" flags


def _vital_series() -> tuple[Series, ...]:
    return (
        Series("systolic", "Systolic BP", "bp", "#1d4ed8", "triangle-down", ("systolic",), score_systolic),
        Series("diastolic", "Diastolic BP", "bp", "#1d4ed8", "triangle-up", ("diastolic",)),
        Series("pulse", "Pulse", "pulse", "#0f766e", "circle", ("pulse",), score_pulse),
        Series(
            "temperature_c", "Temperature", "temperature", "#b45309", "circle", ("temperature_c",), score_temperature
        ),
        Series("spo2", "SpO2", "spo2", "#0369a1", "circle", ("spo2",), score_spo2_scale1),
        Series("resp_rate", "Respiration", "resp_rate", "#4d7c0f", "circle", ("resp_rate",), score_resp_rate),
    )


VITAL_SERIES = _vital_series()
