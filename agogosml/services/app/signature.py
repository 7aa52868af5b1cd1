"""The model's input signature, and records cast to it before the model sees them.

MLflow enforces a signature when predicting, but only after pandas has guessed each
column's dtype from the values, so the same record can pass or fail by its neighbours
(the integer 100 for a double column fails in a column of integers, passes beside 12.5),
and a refusal is explained by printing the frame. Here each column is cast on its own:
conversions without loss are made (100 to 100.0, 3.0 to 3), anything else refuses only
its own record, naming the column, the value and the type expected.

Checks are made a column at a time by the set of value types present, so a clean batch,
the usual case, costs a pass over each column and no per-value work.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from agogosml.envelope import INT64_MAX, INT64_MIN


class Missing:
    """A record without the column (JSON's null is None)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = Missing()

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

EXPECTED = {"double": "a number (double)", "float": "a number (float)",
            "long": "a whole number (long)", "integer": "a 32-bit whole number (integer)",
            "boolean": "true or false (boolean)", "string": "a string"}
"""What each MLflow column type takes, as an error message says it."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str | None
    """MLflow's type name ('double', 'long', ...); None when the model does not say, or
    for a type cast here as given (binary, datetime, arrays, objects)."""
    required: bool = True


@dataclass(frozen=True, slots=True)
class Cast:
    """Records cast to the signature: the frame of those that fit, and why the others do
    not, by their position among the records given."""

    frame: pd.DataFrame
    kept: list[int] | None
    """Positions of the records in `frame`; None when all of them are."""
    refused: dict[int, str] = field(default_factory=dict)

    def first_problems(self, limit: int = 3) -> str:
        shown = [f"record {row}: {reason}" for row, reason in
                 sorted(self.refused.items())[:limit]]
        more = len(self.refused) - len(shown)
        return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


@dataclass(frozen=True, slots=True)
class CastColumns:
    """As Cast, with the kept records' columns instead of a frame."""

    columns: dict[str, Any]
    kept: list[int] | None
    refused: dict[int, str] = field(default_factory=dict)


Converted = tuple[Any, dict[int, str]]
"""A column's values as the model takes them, and the problems by row."""


@dataclass(frozen=True)
class Signature:
    columns: tuple[Column, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def type_of(self, name: str) -> str | None:
        return next((c.type for c in self.columns if c.name == name), None)

    def cast(self, values: dict[str, list[Any]], rows: int) -> Cast:
        """`values` holds each signature column's value per record (MISSING where a record
        lacks it); it may miss a column altogether."""
        cast = self.cast_columns(values, rows)
        return Cast(pd.DataFrame(cast.columns), cast.kept, cast.refused)

    def cast_columns(self, values: dict[str, list[Any]], rows: int) -> CastColumns:
        """As `cast`, with the columns of the records that fit as they are (numpy arrays
        or lists), without building a frame."""
        converted: dict[str, Any] = {}
        refused: dict[int, list[str]] = {}
        for column in self.columns:
            given = values.get(column.name)
            if given is None:
                given = [MISSING] * rows
            data, problems = _convert(column, given)
            converted[column.name] = data
            for row, problem in problems.items():
                refused.setdefault(row, []).append(problem)
        if not refused:
            return CastColumns(converted, None)
        kept = [row for row in range(rows) if row not in refused]
        return CastColumns({name: _take(data, kept) for name, data in converted.items()},
                           kept, {row: "; ".join(problems[:2]) for row, problems
                                  in refused.items()})


def _take(data: Any, rows: list[int]) -> Any:
    return data[rows] if isinstance(data, np.ndarray) else [data[row] for row in rows]


def _convert(column: Column, values: list[Any]) -> Converted:
    kinds = set(map(type, values))
    if Missing in kinds:
        values, missing = _fill_missing(column, values)
        if missing:
            data, problems = _convert(column, values)
            return data, {**problems, **missing}
        kinds = set(map(type, values))
    converter = CONVERTERS.get(column.type or "")
    if converter is None:
        return values, {}
    return converter(column.name, values, kinds)


def _fill_missing(column: Column, values: list[Any]) -> tuple[list[Any], dict[int, str]]:
    """A required column missing from a record refuses it; an optional one is null."""
    placeholder = zero_value(column.type)
    missing = {}
    filled = list(values)
    for row, value in enumerate(values):
        if value is MISSING:
            filled[row] = None if not column.required else placeholder
            if column.required:
                missing[row] = f"column '{column.name}' is missing"
    return filled, missing


def zero_value(kind: str | None) -> Any:
    """A value of the type that any model of it should take: 0, false, ""."""
    return {"double": 0.0, "float": 0.0, "long": 0, "integer": 0, "boolean": False,
            "string": ""}.get(kind or "")


def _double(name: str, values: list[Any], kinds: set[type], kind: str = "double") -> Converted:
    if kinds <= {float, int}:
        try:
            return np.array(values, dtype="float64"), {}
        except OverflowError:
            pass
    out = np.empty(len(values), dtype="float64")
    problems = {}
    for row, value in enumerate(values):
        if value is None:
            out[row] = math.nan
        elif type(value) is float or type(value) is int:
            try:
                out[row] = float(value)
            except OverflowError:
                problems[row] = _problem(name, value, kind)
        else:
            problems[row] = _problem(name, value, kind)
    return out, problems


FLOAT32_MAX = float(np.finfo(np.float32).max)


def _float(name: str, values: list[Any], kinds: set[type]) -> Converted:
    """As a double, then refused where a float32 cannot hold it."""
    wide, problems = _double(name, values, kinds, "float")
    too_large = np.flatnonzero(np.abs(wide) > FLOAT32_MAX)
    for row in too_large.tolist():
        problems[row] = _problem(name, values[row], "float")
    if too_large.size:
        wide[too_large] = 0.0
    return wide.astype("float32"), problems


def _whole(name: str, values: list[Any], kinds: set[type], kind: str = "long") -> Converted:
    low, high, dtype = ((INT64_MIN, INT64_MAX, "int64") if kind == "long"
                        else (INT32_MIN, INT32_MAX, "int32"))
    if kinds == {int} and values and min(values) >= low and max(values) <= high:
        return np.array(values, dtype=dtype), {}
    out = np.zeros(len(values), dtype=dtype)
    problems = {}
    for row, value in enumerate(values):
        whole = value if type(value) is int else (
            int(value) if type(value) is float and value.is_integer() else None)
        if whole is None or not low <= whole <= high:
            problems[row] = _problem(name, value, kind)
        else:
            out[row] = whole
    return out, problems


def _integer(name: str, values: list[Any], kinds: set[type]) -> Converted:
    return _whole(name, values, kinds, "integer")


def _boolean(name: str, values: list[Any], kinds: set[type]) -> Converted:
    if kinds == {bool}:
        return np.array(values, dtype=bool), {}
    problems = {row: _problem(name, value, "boolean") for row, value in enumerate(values)
                if type(value) is not bool}
    return np.array([value is True for value in values], dtype=bool), problems


def _string(name: str, values: list[Any], kinds: set[type]) -> Converted:
    """Null passes, as in MLflow: a model's imputer may fill it."""
    if kinds <= {str, type(None)}:
        return values, {}
    return values, {row: _problem(name, value, "string") for row, value in enumerate(values)
                    if value is not None and type(value) is not str}


CONVERTERS: dict[str, Callable[[str, list[Any], set[type]], Converted]] = {
    "double": _double, "float": _float, "long": _whole, "integer": _integer,
    "boolean": _boolean, "string": _string}


def _problem(name: str, value: Any, kind: str) -> str:
    return f"column '{name}': {describe(value)} is not {EXPECTED[kind]}"


def describe(value: Any) -> str:
    """A value as an error message shows it: strings quoted and cut short, containers by
    their kind, so a message stays short and a refused record is not copied whole."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "...")
    if isinstance(value, int | float):
        text = repr(value)
        return text if len(text) <= 40 else text[:40] + "..."
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def signature_of(schema: Any) -> Signature | None:
    """The Signature of an MLflow input schema with named columns, else None."""
    if schema is None or not schema.has_input_names():
        return None
    columns = []
    for spec in schema.inputs:
        kind = getattr(spec.type, "name", None)
        columns.append(Column(str(spec.name), kind if kind in CONVERTERS else None,
                              bool(getattr(spec, "required", True))))
    return Signature(tuple(columns))
