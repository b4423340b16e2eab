"""NEWS2 aggregate score (RCP NEWS2 2017, Chart 1; docs/clinical-basis.md §5), SpO2 Scale 1 or 2.

Scale 2 is for patients with hypercapnic respiratory failure whose prescribed
target is 88–92 % (RCP Chart 1: "use Scale 2 if target range is 88–92 %"), for
example an ALS patient with respiratory muscle weakness. A clinician sets the
scale on the patient (`Patient.news2_spo2_scale`); every result says which
scale scored it.

Band edges: the chart prints whole tenths of a degree (35.1–36.0, 36.1–38.0 …).
The API accepts temperatures at any precision, so each band is a half-open
interval on the exact value: ≤ 35.0 scores 3, (35.0, 36.0] scores 1,
(36.0, 38.0] scores 0, (38.0, 39.0] scores 1, > 39.0 scores 2. 35.05 °C is
above 35.0, so it is in the 35.1–36.0 band (1 point), not rounded down to 35.0.

In an outpatient chair NEWS2 is a trend indicator, not a trigger for admission
(docs/clinical-basis.md §5); the page presents it that way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class Spo2Scale(IntEnum):
    """RCP NEWS2 Chart 1 SpO2 scales."""

    SCALE_1 = 1  # everyone else (target 94–98 %)
    SCALE_2 = 2  # hypercapnic respiratory failure, prescribed target 88–92 %


SPO2_SCALES = tuple(int(s) for s in Spo2Scale)


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


def score_spo2_scale2(spo2: int, on_oxygen: bool) -> int:
    """RCP Chart 1, SpO2 Scale 2: ≤ 83 → 3, 84–85 → 2, 86–87 → 1, 88–92 → 0, ≥ 93 on air → 0;
    on oxygen 93–94 → 1, 95–96 → 2, ≥ 97 → 3 (over-oxygenation of a hypercapnic patient)."""
    if spo2 <= 83:
        return 3
    if spo2 <= 85:
        return 2
    if spo2 <= 87:
        return 1
    if spo2 <= 92 or not on_oxygen:
        return 0
    if spo2 <= 94:
        return 1
    if spo2 <= 96:
        return 2
    return 3


def score_spo2(spo2: int, on_oxygen: bool, scale: int = Spo2Scale.SCALE_1) -> int:
    if scale == Spo2Scale.SCALE_2:
        return score_spo2_scale2(spo2, on_oxygen)
    if scale != Spo2Scale.SCALE_1:
        raise ValueError(f"NEWS2 SpO2 scale must be 1 or 2, not {scale!r}")
    return score_spo2_scale1(spo2)


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
    """Half-open bands on the exact value (see the module docstring): never rounded first."""
    if temp_c <= 35.0:
        return 3
    if temp_c <= 36.0:
        return 1
    if temp_c <= 38.0:
        return 0
    if temp_c <= 39.0:
        return 1
    return 2


@dataclass(frozen=True)
class News2:
    total: int
    parts: dict[str, int] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    #: the SpO2 scale that scored it (RCP Chart 1 Scale 1 or Scale 2), for screens to show
    spo2_scale: int = Spo2Scale.SCALE_1

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def any_single_three(self) -> bool:
        return any(v == 3 for v in self.parts.values())

    @property
    def band(self) -> str:
        """RCP Chart 3/4 clinical-risk band: aggregate 0–4 is "low" (0 included), a single 3 is
        "low-medium", 5–6 "medium", 7 or more "high"."""
        if self.total >= 7:
            return "high"
        if self.total >= 5:
            return "medium"
        if self.any_single_three:
            return "low-medium"
        return "low"

    def describe(self) -> str:
        text = f"NEWS2 {self.total}"
        if self.spo2_scale == Spo2Scale.SCALE_2:
            text += " (SpO2 Scale 2)"
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
    spo2_scale: int = Spo2Scale.SCALE_1,
) -> News2:
    """Score what was measured on the patient's SpO2 scale; missing parameters are listed, not guessed."""
    if spo2_scale not in SPO2_SCALES:
        raise ValueError(f"NEWS2 SpO2 scale must be 1 or 2, not {spo2_scale!r}")
    parts: dict[str, int] = {"oxygen": score_oxygen(on_oxygen)}
    missing: list[str] = []
    measured = {
        "resp_rate": (resp_rate, score_resp_rate),
        "spo2": (spo2, lambda v: score_spo2(v, on_oxygen, spo2_scale)),
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
    return News2(total=sum(parts.values()), parts=parts, missing=tuple(missing), spo2_scale=int(spo2_scale))
