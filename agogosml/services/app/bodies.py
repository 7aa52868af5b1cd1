"""Reading the bodies /predict accepts into a DataFrame.

Accepted: one record (an object of feature values), a list of records, and MLflow
scoring bodies `dataframe_split`, `dataframe_records`, `instances` and `inputs`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from agogosml.errors import BadRequestError

MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def frame_from_body(body: Any, columns: tuple[str, ...] | None) -> pd.DataFrame:
    if isinstance(body, list):
        return _records(body, "the body", columns)
    if not isinstance(body, dict):
        raise BadRequestError("body must be a JSON object (one record) or a list of records")
    present = [key for key in MLFLOW_KEYS if key in body]
    if len(present) > 1:
        raise BadRequestError(f"use only one of {', '.join(present)}")
    if not present:
        if not body:
            raise BadRequestError("the record is empty")
        return pd.DataFrame.from_records([body])
    key = present[0]
    value = body[key]
    if key == "dataframe_split":
        return _split(value)
    if key == "inputs" and isinstance(value, dict):
        return _columnar(value)
    return _records(value, key, columns)


def _split(value: Any) -> pd.DataFrame:
    if not isinstance(value, dict):
        raise BadRequestError("dataframe_split must be an object with 'columns' and 'data'")
    columns, data = value.get("columns"), value.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise BadRequestError("dataframe_split.columns must be a list of column names")
    if not isinstance(data, list) or not data:
        raise BadRequestError("dataframe_split.data must be a non-empty list of rows")
    for number, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            raise BadRequestError(
                f"dataframe_split.data[{number}] must be a list of {len(columns)} values"
            )
    return pd.DataFrame(data, columns=columns)


def _columnar(value: dict[str, Any]) -> pd.DataFrame:
    lengths = set()
    for name, column in value.items():
        if not isinstance(column, list):
            raise BadRequestError(f"inputs.{name} must be a list of values")
        lengths.add(len(column))
    if len(lengths) != 1 or 0 in lengths:
        raise BadRequestError("every column in inputs must have the same, non-zero length")
    return pd.DataFrame(value)


def _records(value: Any, where: str, columns: tuple[str, ...] | None) -> pd.DataFrame:
    if not isinstance(value, list) or not value:
        raise BadRequestError(f"{where} must be a non-empty list of records")
    if all(isinstance(item, dict) for item in value):
        return pd.DataFrame.from_records(value)
    if all(isinstance(item, list) for item in value):
        if columns is None:
            raise BadRequestError(f"{where} holds rows of values, but the model names no columns")
        for number, row in enumerate(value):
            if len(row) != len(columns):
                raise BadRequestError(f"{where}[{number}] must have {len(columns)} values, "
                                      f"one per column: {', '.join(columns)}")
        return pd.DataFrame(value, columns=list(columns))
    raise BadRequestError(f"{where} must hold records (objects) or rows (lists), not a mix")
