"""NEWS2 aggregate score (RCP 2017 chart 1, clinical.md §4a), SpO2 scale 1.

In an outpatient chair NEWS2 is a trend indicator, not a trigger for admission
(clinical.md §4a caveat); the page presents it that way.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def score_resp_rate(rr: int) -> int:
    if rr <= 8:
        return 3
    if rr <= 11:
        return 1
    if rr <= 20:
        return 0
    if rr <= 24:
        return 2
    return 3


def score_spo2_scale1(spo2: int) -> int:
    if spo2 <= 91:
        return 3
    if spo2 <= 93:
        return 2
    if spo2 <= 95:
        return 1
    return 0


def score_oxygen(on_oxygen: bool) -> int:
    return 2 if on_oxygen else 0


def score_systolic(sbp: int) -> int:
    if sbp <= 90:
        return 3
    if sbp <= 100:
        return 2
    if sbp <= 110:
        return 1
    if sbp <= 219:
        return 0
    return 3


def score_pulse(pulse: int) -> int:
    if pulse <= 40:
        return 3
    if pulse <= 50:
        return 1
    if pulse <= 90:
        return 0
    if pulse <= 110:
        return 1
    if pulse <= 130:
        return 2
    return 3


def score_consciousness(acvpu: str) -> int:
    """A (alert) scores 0; new Confusion, Voice, Pain, Unresponsive score 3."""
    return 0 if acvpu == "A" else 3


def score_temperature(temp_c: float) -> int:
    t = round(temp_c, 1)  # the chart's bands are in tenths of a degree
    if t <= 35.0:
        return 3
    if t <= 36.0:
        return 1
    if t <= 38.0:
        return 0
    if t <= 39.0:
        return 1
    return 2


@dataclass(frozen=True)
class News2:
    total: int
    parts: dict[str, int] = field(default_factory=dict)
    missing: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def any_single_three(self) -> bool:
        return any(v == 3 for v in self.parts.values())

    @property
    def band(self) -> str:
        """RCP chart 4 clinical-risk band."""
        if self.total >= 7:
            return "high"
        if self.total >= 5:
            return "medium"
        if self.any_single_three:
            return "low-medium"
        return "low" if self.total > 0 else "none"

    def describe(self) -> str:
        text = f"NEWS2 {self.total}"
        if self.missing:
            text += " (partial: no " + ", ".join(self.missing) + ")"
        return text


def news2(
    *,
    resp_rate: int | None,
    spo2: int | None,
    on_oxygen: bool,
    systolic: int | None,
    pulse: int | None,
    consciousness: str | None,
    temperature_c: float | None,
) -> News2:
    """Score what was measured; missing parameters are listed, not guessed."""
    parts: dict[str, int] = {"oxygen": score_oxygen(on_oxygen)}
    missing: list[str] = []
    measured = {
        "resp_rate": (resp_rate, score_resp_rate),
        "spo2": (spo2, score_spo2_scale1),
        "systolic": (systolic, score_systolic),
        "pulse": (pulse, score_pulse),
        "consciousness": (consciousness, score_consciousness),
        "temperature": (temperature_c, score_temperature),
    }
    for name, (value, scorer) in measured.items():
        if value is None:
            missing.append(name)
        else:
            parts[name] = scorer(value)  # type: ignore[operator]
    return News2(total=sum(parts.values()), parts=parts, missing=tuple(missing))
