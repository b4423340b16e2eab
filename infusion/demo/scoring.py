"""NEWS2 and "is anything flagged" for the load's hot loop, from tables built by the product's own rules.

A large load scores ~5 vital-sign sets per session. `infusion.clinical.vitals.score` and `alert_flags`
build a `Vitals`, a `News2` with its parts dictionary and a list of `Flag`s for every set; most sets are
unflagged, and for them only the total, completeness and "no flag" are written. `FastScore` answers
those from per-value tables filled once by calling the scalar rules themselves (`score_resp_rate`,
`score_spo2`, `score_systolic`, `score_pulse`, `score_temperature`) over every value a chart can hold,
plus the clinic's thresholds compared exactly as `alert_flags` compares them. A flagged set is then
scored again by the product's own `score` and `alert_flags` (their messages are what is stored), so
a flagged row is the product's by construction; tests/unit/test_demo_scoring.py checks the fast answers
against the scalar rules over the whole accepted range (hypothesis).

The demo's sets are always "A" (alert) and Scale 1 (a demo patient has no prescribed Scale 2 target);
`FastScore` is only for those, and anything outside its tables falls back to the scalar rule.
"""

from __future__ import annotations

from collections.abc import Callable

from infusion.clinical.news2 import (
    score_oxygen,
    score_pulse,
    score_resp_rate,
    score_spo2,
    score_systolic,
    score_temperature,
)
from infusion.clinical.vitals import INT_RANGES
from infusion.settings import AlertThresholds


def _table(rule: Callable[[int], int], high: int) -> list[int]:
    """rule(v) for v in 0..high (the accepted ranges start above 0 and end at or below high)."""
    return [rule(v) for v in range(high + 1)]


class FastScore:
    """NEWS2 total, completeness and "any alert flag" for one alert (ACVPU "A"), Scale 1 set."""

    def __init__(self, thresholds: AlertThresholds) -> None:
        self.t = thresholds
        self._rr = _table(score_resp_rate, INT_RANGES["resp_rate"][1])
        self._spo2_air = _table(lambda v: score_spo2(v, False), INT_RANGES["spo2"][1])
        self._spo2_o2 = _table(lambda v: score_spo2(v, True), INT_RANGES["spo2"][1])
        self._sbp = _table(score_systolic, INT_RANGES["systolic"][1])
        self._pulse = _table(score_pulse, INT_RANGES["pulse"][1])
        self._temp: dict[float, int] = {}  # exact value → points (a load has a few hundred values)

    def score(
        self,
        systolic: int | None,
        diastolic: int | None,
        pulse: int | None,
        resp_rate: int | None,
        temperature_c: float | None,
        spo2: int | None,
        on_oxygen: bool,
        baseline_systolic: int | None,
    ) -> tuple[int, bool, bool]:
        """(NEWS2 total, complete, flagged) as `score(v)` and `alert_flags(v, …)` give them for this set
        (consciousness "A", SpO2 Scale 1)."""
        t = self.t
        three = False
        flagged = False
        total = score_oxygen(on_oxygen)
        complete = True
        if resp_rate is None:
            complete = False
        else:
            pts = self._rr[resp_rate] if 0 <= resp_rate < len(self._rr) else score_resp_rate(resp_rate)
            total += pts
            three = pts == 3
            if resp_rate < t.resp_rate_low or resp_rate > t.resp_rate_high:
                flagged = True
        if spo2 is None:
            complete = False
        else:
            table = self._spo2_o2 if on_oxygen else self._spo2_air
            pts = table[spo2] if 0 <= spo2 < len(table) else score_spo2(spo2, on_oxygen)
            total += pts
            three = three or pts == 3
            if spo2 < t.spo2_low:
                flagged = True
        if systolic is None:
            complete = False
        else:
            pts = self._sbp[systolic] if 0 <= systolic < len(self._sbp) else score_systolic(systolic)
            total += pts
            three = three or pts == 3
            if systolic < t.systolic_low or systolic >= t.systolic_high:
                flagged = True
            elif baseline_systolic is not None and abs(systolic - baseline_systolic) > t.systolic_drop_from_baseline:
                flagged = True
        if pulse is None:
            complete = False
        else:
            pts = self._pulse[pulse] if 0 <= pulse < len(self._pulse) else score_pulse(pulse)
            total += pts
            three = three or pts == 3
            if pulse < t.pulse_low or pulse > t.pulse_high:
                flagged = True
        if temperature_c is None:
            complete = False
        else:
            pts = self._temp.get(temperature_c, -1)
            if pts < 0:
                pts = self._temp[temperature_c] = score_temperature(temperature_c)
            total += pts
            three = three or pts == 3
            if temperature_c >= t.temperature_c_high or temperature_c <= t.temperature_c_low:
                flagged = True
        if diastolic is not None and (diastolic < t.diastolic_low or diastolic >= t.diastolic_high):
            flagged = True
        if three and t.flag_news2_single_three:
            flagged = True
        return total, complete, flagged
