"""Reading the bodies /predict accepts into columns.

Accepted: one record (an object of feature values), a list of records, and MLflow
scoring bodies `dataframe_split`, `dataframe_records`, `instances` and `inputs` (records,
rows of values in the model's column order, or an object of columns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agogosml.errors import BadRequestError
from agogosml.services.app.signature import MISSING

MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


@dataclass(frozen=True, slots=True)
class Table:
    """Each column's value per record (MISSING where a record lacks the column)."""

    columns: dict[str, list[Any]]
    rows: int


def table_from_body(body: Any, names: tuple[str, ...] | None) -> Table:
    """`names` are the model's input columns (None when it names none): the columns read
    from records, and the order of values in rows."""
    if isinstance(body, list):
        return _records(body, "the body", names)
    if not isinstance(body, dict):
        raise BadRequestError("body must be a JSON object (one record) or a list of records")
    present = [key for key in MLFLOW_KEYS if key in body]
    if len(present) > 1:
        raise BadRequestError(f"use only one of {', '.join(present)}")
    if not present:
        if not body:
            raise BadRequestError("the record is empty")
        return _records([body], "the body", names)
    key = present[0]
    value = body[key]
    if key == "dataframe_split":
        return _split(value)
    if key in ("instances", "inputs") and isinstance(value, dict):
        return _columnar(value, key)
    return _records(value, key, names)


def _split(value: Any) -> Table:
    if not isinstance(value, dict):
        raise BadRequestError("dataframe_split must be an object with 'columns' and 'data'")
    columns, data = value.get("columns"), value.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise BadRequestError("dataframe_split.columns must be a list of column names")
    if len(set(columns)) != len(columns):
        raise BadRequestError("dataframe_split.columns names a column twice")
    if not isinstance(data, list) or not data:
        raise BadRequestError("dataframe_split.data must be a non-empty list of rows")
    for number, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            raise BadRequestError(
                f"dataframe_split.data[{number}] must be a list of {len(columns)} values"
            )
    return Table({name: [row[i] for row in data] for i, name in enumerate(columns)},
                 len(data))


def _columnar(value: dict[str, Any], where: str) -> Table:
    lengths = set()
    for name, column in value.items():
        if not isinstance(column, list):
            raise BadRequestError(f"{where}.{name} must be a list of values")
        lengths.add(len(column))
    if len(lengths) != 1 or 0 in lengths:
        raise BadRequestError(f"every column in {where} must have the same, non-zero length")
    return Table(dict(value), lengths.pop())


def _records(value: Any, where: str, names: tuple[str, ...] | None) -> Table:
    if not isinstance(value, list) or not value:
        raise BadRequestError(f"{where} must be a non-empty list of records")
    if all(isinstance(item, dict) for item in value):
        if names is None:
            names = tuple(dict.fromkeys(key for item in value for key in item))
            return Table({name: [item.get(name) for item in value] for name in names},
                         len(value))
        return Table({name: [item.get(name, MISSING) for item in value] for name in names},
                     len(value))
    if all(isinstance(item, list) for item in value):
        if names is None:
            raise BadRequestError(f"{where} holds rows of values, but the model names no columns")
        for number, row in enumerate(value):
            if len(row) != len(names):
                raise BadRequestError(f"{where}[{number}] must have {len(names)} values, "
                                      f"one per column: {', '.join(names)}")
        return Table({name: [row[i] for row in value] for i, name in enumerate(names)},
                     len(value))
    raise BadRequestError(f"{where} must hold records (objects) or rows (lists), not a mix")
