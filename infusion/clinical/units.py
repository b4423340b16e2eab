"""Unit conversion between storage (SI: °C, kg) and the clinic's display units."""

from __future__ import annotations

LB_PER_KG = 2.2046226218


def c_to_f(celsius: float) -> float:
    return celsius * 9.0 / 5.0 + 32.0


def f_to_c(fahrenheit: float) -> float:
    return (fahrenheit - 32.0) * 5.0 / 9.0


def kg_to_lb(kg: float) -> float:
    return kg * LB_PER_KG


def lb_to_kg(lb: float) -> float:
    return lb / LB_PER_KG


def temperature_to_si(value: float | None, unit: str) -> float | None:
    if value is None:
        return None
    return f_to_c(value) if unit == "F" else value


def temperature_for_display(celsius: float | None, unit: str) -> float | None:
    if celsius is None:
        return None
    return round(c_to_f(celsius), 1) if unit == "F" else round(celsius, 1)


def weight_to_si(value: float | None, unit: str) -> float | None:
    if value is None:
        return None
    return lb_to_kg(value) if unit == "lb" else value


def weight_for_display(kg: float | None, unit: str) -> float | None:
    if kg is None:
        return None
    return round(kg_to_lb(kg), 1) if unit == "lb" else round(kg, 1)
