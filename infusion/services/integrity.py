"""One rule per column, checked on every row before it is written (issue 12).

A `before_flush` listener on every SQLAlchemy `Session` checks each new or changed
row against its model's column types and refuses it with `ValidationError`
naming the field, before anything reaches the driver:

- text: must be a string, at most the column's `String(n)` length (PostgreSQL
  fails raw on a longer one, SQLite stores it silently) or, for unbounded text
  (notes, reasons, addenda), `TEXT_MAX`, without NUL or an unpaired surrogate
  (PostgreSQL and the sqlite3 module fail raw);
- numbers: finite, within ±1e9 for floats; integers within the column's range
  (32-bit `Integer`, 64-bit `BigInteger`); an integral float for an integer
  column is stored as the integer, anything else is refused;
- booleans: True or False;
- times: aware datetimes between 2000 and 2099 (a check-in in 1900 or a booking
  in 9999 is a typing slip); dates (birth dates) plain dates from 1880 to 2099;
- JSON documents: the same text and number rules for every value inside;
- a required column (NOT NULL without a default) may not be set to None;
- a nullable unique text column (`client_token`, …): blank means none, so ""
  is stored as NULL and never collides with the next blank.

This is the one length rule: forms set no `max_chars` (a browser cap drops a paste
whole and cuts a scanned code short without a word); the refusal names the limit and
the length, and the field keeps what was typed. `max_length(Model, "column")` gives
the length to a service that checks an argument before it builds a row.
The listener is registered when this module is imported (by `infusion.services.opening`
and `infusion.services.audit`, which every write path imports).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, DateTime, Float, Integer, String, event, inspect
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.orm.state import InstanceState
from sqlalchemy.types import TypeDecorator, TypeEngine

from infusion.errors import ValidationError

#: the years a clinical or administrative time may fall in
FIRST_YEAR, LAST_YEAR = 2000, 2099
#: the years a date (a birth date) may fall in
FIRST_DATE_YEAR = 1880
#: the largest magnitude a stored float may have (doses, rates, minutes, weights are far below)
MAX_FLOAT = 1e9
#: the most characters an unbounded text column (a note, a reason, an addendum) takes: about eight pages, far
#: beyond any note typed at a chair, short of a paste of a whole document by mistake (a product choice)
TEXT_MAX = 20_000
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
LABELS = {"mrn": "MRN", "iv_site": "IV site", "iv_gauge": "IV gauge", "spo2": "SpO2", "news2": "NEWS2"}


def label(field: str) -> str:
    """A readable name for a column key: "provider_name" → "Provider name"."""
    return LABELS.get(field, field.replace("_", " ").capitalize())


def max_length(model: type, column: str) -> int | None:
    """The most characters `model.column` stores (its String(n)), or None for unbounded text (which the
    flush still holds to `TEXT_MAX`)."""
    col: Any = inspect(model).columns[column]
    length = getattr(_base_type(col.type), "length", None)
    return int(length) if length is not None else None


def _base_type(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    return type_.impl_instance if isinstance(type_, TypeDecorator) else type_


def text_problem(value: str, max_len: int | None = None) -> str | None:
    """Why a text cannot be stored, or None."""
    if _UNSTORABLE.search(value):
        return "contains a character that cannot be stored (NUL or an unpaired surrogate)"
    if max_len is not None and len(value) > max_len:
        return f"at most {max_len} characters (this one has {len(value)})"
    return None


def float_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "must be a number"
    if not math.isfinite(value):
        return "must be a number (not NaN or infinity)"
    if abs(value) > MAX_FLOAT:
        return f"{value:g} is too large"
    return None


def time_problem(value: Any) -> str | None:
    if not isinstance(value, datetime):
        return "must be a date and time"
    if value.tzinfo is None or value.utcoffset() is None:
        return "time without a time zone"
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        return f"the year {value.year} is outside {FIRST_YEAR}–{LAST_YEAR}; check the date"
    return None


def _json_problem(value: Any, depth: int = 0) -> str | None:
    if depth > 20:
        return "is nested too deeply"
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, (int, float)):
        if isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
            return "holds a number that is too large"
        return None if isinstance(value, int) or math.isfinite(value) else "holds NaN or infinity"
    if isinstance(value, dict):
        for key, item in value.items():
            problem = (None if isinstance(key, str) else "has a key that is not text") or _json_problem(key, depth + 1)
            problem = problem or _json_problem(item, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, (list, tuple)):
        for item in value:
            problem = _json_problem(item, depth + 1)
            if problem:
                return problem
        return None
    return f"holds a {type(value).__name__}, which is not a JSON value"


def _integer_problem(bounds: tuple[int, int]) -> Callable[[Any], str | None]:
    low, high = bounds

    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be a whole number"
        return None if low <= value <= high else f"{value} is out of range"

    return check


def _text_problem(length: int | None) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return text_problem(value, length) if isinstance(value, str) else "must be text"

    return check


def _date_problem(value: Any) -> str | None:
    if isinstance(value, datetime) or not isinstance(value, date):
        return "must be a date (day, month, year)"
    if not FIRST_DATE_YEAR <= value.year <= LAST_YEAR:
        return f"the year {value.year} is outside {FIRST_DATE_YEAR}–{LAST_YEAR}; check the date"
    return None


def _no_problem(_value: Any) -> None:
    return None


def _checker(column: Any) -> Callable[[Any], str | None]:
    """The rule for a column's type (its base type for a TypeDecorator)."""
    type_ = _base_type(column.type)
    if isinstance(type_, String):
        return _text_problem(type_.length or TEXT_MAX)
    if isinstance(type_, Boolean):
        return lambda value: None if isinstance(value, bool) else "must be yes or no"
    if isinstance(type_, Integer):  # BigInteger is an Integer
        return _integer_problem(INT64 if isinstance(type_, BigInteger) else INT32)
    if isinstance(type_, Float):
        return float_problem
    if isinstance(type_, DateTime):
        return time_problem
    if isinstance(type_, Date):
        return _date_problem
    if isinstance(type_, JSON):
        return _json_problem
    return _no_problem


def column_problem(column: Any, value: Any) -> str | None:
    """Why `value` cannot be stored in `column` (a Column), or None. None values are judged by the caller."""
    return _checker(column)(value)


def _has_default(column: Any) -> bool:
    return column.default is not None or column.server_default is not None or column.primary_key


@dataclass(frozen=True)
class _Rule:
    """One mapped column's rule, worked out once per model (a save flushes two or three rows)."""

    key: str
    nullable: bool
    blank_is_none: bool  # a nullable unique text: "" is stored as NULL
    has_default: bool
    integer: bool
    check: Callable[[Any], str | None]


@cache
def _rules(mapper: Mapper[Any]) -> tuple[_Rule, ...]:
    rules = []
    for prop in mapper.column_attrs:
        if len(prop.columns) != 1:
            continue
        column = prop.columns[0]
        rules.append(
            _Rule(
                key=prop.key,
                nullable=bool(column.nullable),
                blank_is_none=bool(column.nullable and column.unique),
                has_default=_has_default(column),
                integer=isinstance(_base_type(column.type), Integer),
                check=_checker(column),
            )
        )
    return tuple(rules)


def row_problems(state: InstanceState[Any], *, new: bool) -> dict[str, str]:
    """The refused fields of one pending row: field → readable message."""
    problems: dict[str, str] = {}
    values = state.dict
    changed = values if new else state.committed_state
    for rule in _rules(state.mapper):
        key = rule.key
        if key not in changed:
            continue
        value = values.get(key)
        if rule.blank_is_none and isinstance(value, str) and value == "":
            state.obj().__setattr__(key, None)  # blank means none: "" never collides with the next blank
            continue
        if value is None:
            if not rule.nullable and not (new and rule.has_default):
                problems[key] = f"{label(key)} is required."
            continue
        if rule.integer and isinstance(value, float):
            if math.isfinite(value) and value.is_integer():
                value = int(value)
                state.obj().__setattr__(key, value)
        problem = rule.check(value)
        if problem:
            problems[key] = f"{label(key)}: {problem}."
    return problems


def check_pending(session: Session) -> None:
    """Refuse the flush if any new or changed row holds a value its column cannot store."""
    problems: dict[str, str] = {}
    for obj in list(session.new):
        problems.update(row_problems(inspect(obj), new=True))
    for obj in list(session.dirty):
        state = inspect(obj)
        if state.committed_state:
            problems.update(row_problems(state, new=False))
    _refuse(problems)


def check_new(obj: Any) -> None:
    """`check_pending` for one new row written without the unit of work (a plain INSERT of its values)."""
    _refuse(row_problems(inspect(obj), new=True))


def _refuse(problems: dict[str, str]) -> None:
    if problems:
        raise ValidationError({k: f"{v} Nothing was saved." if len(problems) == 1 else v for k, v in problems.items()})


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    check_pending(session)
