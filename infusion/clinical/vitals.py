"""Vital signs as typed at the chair → validated SI values, NEWS2 and alert flags.

`validate_vitals` is the one place the accepted ranges live. The ranges are
plausibility limits from the foundation issue (SBP 40–300, DBP 20–200 and below
SBP, pulse 20–250, RR 4–60, temperature 30–45 °C, SpO2 50–100, pain 0–10): product
choices, no clinical source gives entry limits (docs/clinical-basis.md §6). The
weight range is a product choice too.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from infusion.clinical.news2 import SPO2_SCALES, News2, Spo2Scale, news2
from infusion.clinical.units import (
    c_to_f,
    f_to_c,
    kg_to_lb,
    temperature_to_si,
    weight_to_si,
)
from infusion.errors import ValidationError
from infusion.settings import AlertThresholds

MEASURES = ("systolic", "diastolic", "pulse", "resp_rate", "temperature", "spo2", "pain", "weight")
CORE_MEASURES = ("systolic", "diastolic", "pulse", "resp_rate", "temperature", "spo2")
LABELS = {
    "systolic": "Systolic BP",
    "diastolic": "Diastolic BP",
    "pulse": "Pulse",
    "resp_rate": "Respiration rate",
    "temperature": "Temperature",
    "spo2": "SpO2",
    "pain": "Pain",
    "weight": "Weight",
}
INT_RANGES: dict[str, tuple[int, int, str]] = {
    "systolic": (40, 300, "mmHg"),
    "diastolic": (20, 200, "mmHg"),
    "pulse": (20, 250, "/min"),
    "resp_rate": (4, 60, "/min"),
    "spo2": (50, 100, "%"),
    "pain": (0, 10, ""),  # a 0–10 score: no unit after the range
}
TEMP_RANGE_C = (30.0, 45.0)
WEIGHT_RANGE_KG = (20.0, 350.0)  # product choice: adult plausibility (docs/clinical-basis.md §6)
CONSCIOUSNESS = {"A": "Alert", "C": "New confusion", "V": "Voice", "P": "Pain", "U": "Unresponsive"}
POSITIONS = ("sitting", "lying", "standing")


@dataclass
class VitalsEntry:
    """What the nurse typed, in the clinic's display units. Any measure may be blank."""

    systolic: float | None = None
    diastolic: float | None = None
    pulse: float | None = None
    resp_rate: float | None = None
    temperature: float | None = None
    spo2: float | None = None
    pain: float | None = None
    weight: float | None = None
    consciousness: str = "A"
    on_oxygen: bool = False
    position: str | None = None
    unable_to_obtain: dict[str, str] = field(default_factory=dict)
    provider_notified: bool = False
    provider_name: str | None = None
    note: str | None = None
    #: the patient's NEWS2 SpO2 scale (1 or 2), set by a clinician on the patient: the services fill it
    #: in from `Patient.news2_spo2_scale`, the nurse does not type it
    spo2_scale: int = Spo2Scale.SCALE_1


@dataclass(frozen=True)
class Vitals:
    """Validated values in SI units, ready to store."""

    systolic: int | None
    diastolic: int | None
    pulse: int | None
    resp_rate: int | None
    temperature_c: float | None
    spo2: int | None
    pain: int | None
    weight_kg: float | None
    consciousness: str
    on_oxygen: bool
    position: str | None
    unable_to_obtain: dict[str, str]
    provider_notified: bool
    provider_name: str | None
    note: str | None
    spo2_scale: int = Spo2Scale.SCALE_1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Flag:
    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


def _fmt_temp(celsius: float, unit: str) -> str:
    return f"{c_to_f(celsius):.1f} °F" if unit == "F" else f"{celsius:.1f} °C"


NUMERIC_FIELDS = ("systolic", "diastolic", "pulse", "resp_rate", "temperature", "spo2", "pain", "weight")
TEXT_FIELDS = {"provider_name": "Provider name", "note": "Note"}


def _type_problems(entry: VitalsEntry) -> dict[str, str]:
    """Values of the wrong kind (text in a number, a date in a note): refused by name, never a traceback."""
    problems: dict[str, str] = {}
    for name in NUMERIC_FIELDS:
        value = getattr(entry, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            problems[name] = f"{LABELS[name]} must be a number."
    for name, label in TEXT_FIELDS.items():
        value = getattr(entry, name)
        if value is not None and not isinstance(value, str):
            problems[name] = f"{label} must be text."
    if not isinstance(entry.unable_to_obtain, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in entry.unable_to_obtain.items()
    ):
        problems["unable_to_obtain"] = "Unable to obtain: name each measure and why."
    return problems


def _choice_problems(entry: VitalsEntry) -> dict[str, str]:
    """The picked (not typed) fields: ACVPU, position, the patient's NEWS2 SpO2 scale."""
    problems: dict[str, str] = {}
    if entry.consciousness not in CONSCIOUSNESS:
        problems["consciousness"] = "Consciousness must be one of A, C, V, P, U (ACVPU)."
    if entry.position is not None and entry.position not in POSITIONS:
        problems["position"] = f"Position must be one of {', '.join(POSITIONS)}."
    if entry.spo2_scale not in SPO2_SCALES:
        problems["spo2_scale"] = "The NEWS2 SpO2 scale must be 1 or 2."
    return problems


def _unit(unit: str) -> str:
    return f" {unit}" if unit else ""


def validate_vitals(
    entry: VitalsEntry,
    *,
    temperature_unit: str,
    weight_unit: str,
    require_core: bool = False,
) -> Vitals:
    """Check ranges and consistency; raise ValidationError naming each bad field.

    `require_core` is used at check-in: the baseline needs BP, pulse,
    respiration, temperature and SpO2 unless a value is marked unable to obtain.
    """
    wrong = _type_problems(entry)
    if wrong:
        raise ValidationError(wrong)
    problems: dict[str, str] = {}
    ints: dict[str, int | None] = {}
    for name, (low, high, unit) in INT_RANGES.items():
        value = getattr(entry, name)
        if value is None:
            ints[name] = None
            continue
        if not math.isfinite(float(value)):  # NaN/inf from a blank or broken field: no traceback
            problems[name] = f"{LABELS[name]} is not a number; accepted range {low}–{high}{_unit(unit)}."
            continue
        if float(value) != int(value):
            problems[name] = f"{LABELS[name]} must be a whole number (got {value})."
            continue
        if not low <= value <= high:
            problems[name] = f"{LABELS[name]} {value:g} is outside the accepted range {low}–{high}{_unit(unit)}."
        ints[name] = int(value)

    temp_c: float | None = None
    if entry.temperature is not None:
        t = float(entry.temperature)
        low_c, high_c = TEMP_RANGE_C
        if temperature_unit == "C":
            if c_to_f(low_c) <= t <= c_to_f(high_c):
                problems["temperature"] = (
                    f"Temperature {t:g} looks like °F, but this clinic records °C "
                    f"({f_to_c(t):.1f} °C?). Accepted range {low_c:g}–{high_c:g} °C."
                )
            elif not low_c <= t <= high_c:
                problems["temperature"] = f"Temperature {t:g} °C is outside the accepted range {low_c:g}–{high_c:g} °C."
        else:
            if low_c <= t <= high_c:
                problems["temperature"] = (
                    f"Temperature {t:g} looks like °C, but this clinic records °F "
                    f"({c_to_f(t):.1f} °F?). Accepted range {c_to_f(low_c):.0f}–{c_to_f(high_c):.0f} °F."
                )
            elif not c_to_f(low_c) <= t <= c_to_f(high_c):
                problems["temperature"] = (
                    f"Temperature {t:g} °F is outside the accepted range {c_to_f(low_c):.0f}–{c_to_f(high_c):.0f} °F."
                )
        if "temperature" not in problems:
            temp_c = round(temperature_to_si(t, temperature_unit) or 0.0, 2)

    weight_kg: float | None = None
    if entry.weight is not None:
        kg = weight_to_si(float(entry.weight), weight_unit) or 0.0
        low_kg, high_kg = WEIGHT_RANGE_KG
        if not low_kg <= kg <= high_kg:
            if weight_unit == "lb":
                problems["weight"] = (
                    f"Weight {entry.weight:g} lb is outside the accepted range "
                    # whole pounds inside the kg range, so both numbers shown are themselves accepted
                    f"{math.ceil(kg_to_lb(low_kg))}–{math.floor(kg_to_lb(high_kg))} lb."
                )
            else:
                problems["weight"] = (
                    f"Weight {entry.weight:g} kg is outside the accepted range {low_kg:g}–{high_kg:g} kg."
                )
        else:
            weight_kg = round(kg, 2)

    sbp, dbp = ints.get("systolic"), ints.get("diastolic")
    if sbp is not None and dbp is not None and "diastolic" not in problems and dbp >= sbp:
        problems["diastolic"] = f"Diastolic BP {dbp} must be below systolic BP {sbp}."
    typed_sbp, typed_dbp = entry.systolic is not None, entry.diastolic is not None  # typed, valid or not
    if typed_sbp != typed_dbp and not (entry.unable_to_obtain.keys() & {"systolic", "diastolic"}):
        problems["systolic" if typed_dbp else "diastolic"] = "Enter both systolic and diastolic blood pressure."

    unable = {k: (v or "").strip() for k, v in entry.unable_to_obtain.items()}
    for name, reason in unable.items():
        if name not in MEASURES:
            problems[name] = f"Unknown measure {name!r} marked unable to obtain."
        elif getattr(entry, name) is not None:
            problems[name] = f"{LABELS[name]} has a value and is also marked unable to obtain; choose one."
        elif not reason:
            problems[name] = f"Say why {LABELS[name]} could not be obtained."

    problems.update(_choice_problems(entry))
    if entry.provider_notified and not (entry.provider_name or "").strip():
        problems["provider_name"] = "Name the provider who was notified."

    present = [m for m in MEASURES if getattr(entry, m) is not None]
    if require_core:
        for name in CORE_MEASURES:
            if getattr(entry, name) is None and name not in unable and name not in problems:
                problems[name] = f"{LABELS[name]} is needed for the check-in baseline (or mark it unable to obtain)."
    elif not present and not problems:
        problems["vitals"] = "Enter at least one measurement."

    if problems:
        raise ValidationError(problems)
    return Vitals(
        systolic=sbp,
        diastolic=dbp,
        pulse=ints.get("pulse"),
        resp_rate=ints.get("resp_rate"),
        temperature_c=temp_c,
        spo2=ints.get("spo2"),
        pain=ints.get("pain"),
        weight_kg=weight_kg,
        consciousness=entry.consciousness,
        on_oxygen=entry.on_oxygen,
        position=entry.position,
        unable_to_obtain=unable,
        provider_notified=entry.provider_notified,
        provider_name=(entry.provider_name or "").strip() or None,
        note=(entry.note or "").strip() or None,
        spo2_scale=int(entry.spo2_scale),
    )


def score(v: Vitals) -> News2:
    return news2(
        resp_rate=v.resp_rate,
        spo2=v.spo2,
        on_oxygen=v.on_oxygen,
        systolic=v.systolic,
        pulse=v.pulse,
        consciousness=v.consciousness,
        temperature_c=v.temperature_c,
        spo2_scale=v.spo2_scale,
    )


def alert_flags(
    v: Vitals,
    thresholds: AlertThresholds,
    *,
    baseline_systolic: int | None,
    temperature_unit: str = "C",
    news: News2 | None = None,
) -> list[Flag]:
    """Abnormal values by the clinic's notify thresholds (docs/clinical-basis.md §6): every measure with
    a low and a high limit has both flagged. Compared on the exact value, never rounded first."""
    t = thresholds
    flags: list[Flag] = []
    if v.temperature_c is not None and v.temperature_c >= t.temperature_c_high:
        flags.append(
            Flag(
                "temperature_c",
                "temp_high",
                f"Temperature {_fmt_temp(v.temperature_c, temperature_unit)} ≥ "
                f"{_fmt_temp(t.temperature_c_high, temperature_unit)}",
            )
        )
    if v.systolic is not None:
        if v.systolic < t.systolic_low:
            flags.append(Flag("systolic", "sbp_low", f"Systolic BP {v.systolic} < {t.systolic_low} mmHg"))
        if v.systolic >= t.systolic_high:
            flags.append(Flag("systolic", "sbp_high", f"Systolic BP {v.systolic} ≥ {t.systolic_high} mmHg"))
        if baseline_systolic is not None:
            change = v.systolic - baseline_systolic
            if abs(change) > t.systolic_drop_from_baseline:
                word = "fell" if change < 0 else "rose"
                flags.append(
                    Flag(
                        "systolic",
                        "sbp_change",
                        f"Systolic BP {word} {abs(change)} mmHg from check-in baseline {baseline_systolic} "
                        f"(> {t.systolic_drop_from_baseline})",
                    )
                )
    if v.diastolic is not None:
        if v.diastolic < t.diastolic_low:
            flags.append(Flag("diastolic", "dbp_low", f"Diastolic BP {v.diastolic} < {t.diastolic_low} mmHg"))
        if v.diastolic >= t.diastolic_high:
            flags.append(Flag("diastolic", "dbp_high", f"Diastolic BP {v.diastolic} ≥ {t.diastolic_high} mmHg"))
    if v.pulse is not None:
        if v.pulse < t.pulse_low:
            flags.append(Flag("pulse", "pulse_low", f"Pulse {v.pulse} < {t.pulse_low} /min"))
        if v.pulse > t.pulse_high:
            flags.append(Flag("pulse", "pulse_high", f"Pulse {v.pulse} > {t.pulse_high} /min"))
    if v.resp_rate is not None:
        if v.resp_rate < t.resp_rate_low:
            flags.append(Flag("resp_rate", "rr_low", f"Respiration {v.resp_rate} < {t.resp_rate_low} /min"))
        if v.resp_rate > t.resp_rate_high:
            flags.append(Flag("resp_rate", "rr_high", f"Respiration {v.resp_rate} > {t.resp_rate_high} /min"))
    if v.temperature_c is not None and v.temperature_c <= t.temperature_c_low:
        flags.append(
            Flag(
                "temperature_c",
                "temp_low",
                f"Temperature {_fmt_temp(v.temperature_c, temperature_unit)} ≤ "
                f"{_fmt_temp(t.temperature_c_low, temperature_unit)}",
            )
        )
    # SpO2 has no high limit (100 % is normal); on Scale 2 the low limit is the chart's 88 % target floor.
    spo2_low = t.spo2_low_scale2 if v.spo2_scale == Spo2Scale.SCALE_2 else t.spo2_low
    if v.spo2 is not None and v.spo2 < spo2_low:
        flags.append(Flag("spo2", "spo2_low", f"SpO2 {v.spo2} % < {spo2_low} %"))
    if t.flag_news2_single_three and news is not None:
        threes = [name for name, pts in news.parts.items() if pts == 3]
        if threes:
            flags.append(Flag("news2", "news2_single_3", "NEWS2 scores 3 in a single parameter: " + ", ".join(threes)))
    return flags
