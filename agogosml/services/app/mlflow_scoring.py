"""MLflow's scoring protocol, as `mlflow models serve` speaks it on /invocations.

Bodies are read by MLflow's own parsers (`infer_and_parse_data` for the four JSON forms,
`parse_csv_input` for CSV, `parse_parquet_input` for Parquet), with the model's input
schema, so that every body is cast to the signature exactly as MLflow's server casts it
and succeeds or fails as it does; predictions are written by MLflow's own
`predictions_to_json`. What differs is only what a person reads: an error names the
column, the value and the type where MLflow printed the frame, and an unexpected failure
never answers 500.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc.scoring_server import (
    SUPPORTED_FORMATS,
    infer_and_parse_data,
    parse_csv_input,
    parse_parquet_input,
    predictions_to_json,
)

from agogosml.errors import BadRequestError, ModelInputError, UnsupportedMediaTypeError
from agogosml.services.app.model import reason
from agogosml.services.app.signature import describe

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
CSV_BOOLEANS = frozenset({"True", "False", "true", "false", "TRUE", "FALSE"})
"""What pandas' CSV reader takes for a boolean column."""

EXPECTED_BODY = ("The input must be a JSON object with exactly one of the fields "
                 f"{', '.join(sorted(SUPPORTED_FORMATS))}")


@dataclass(frozen=True, slots=True)
class Invocation:
    data: Any
    """What MLflow's parsers made of the body: usually a DataFrame."""
    params: dict[str, Any] | None

    @property
    def rows(self) -> int:
        return len(self.data) if hasattr(self.data, "__len__") else 1


def parse(body: bytes, content_type: str | None, schema: Any) -> Invocation:
    mime = _mime_type(content_type)
    if mime == PARQUET:
        try:
            return Invocation(parse_parquet_input(io.BytesIO(body)), None)  # type: ignore[no-untyped-call]
        except MlflowException as error:
            raise BadRequestError(reason(error)) from None
    if mime == CSV:
        text = _text(body)
        try:
            return Invocation(parse_csv_input(io.StringIO(text), schema=schema), None)
        except MlflowException as error:
            raise ModelInputError(_csv_reason(text, schema) or reason(error)) from None
    try:
        document = json.loads(body)  # bytes, as MLflow reads them: a UTF-8 BOM is fine
    except (ValueError, RecursionError) as error:
        raise BadRequestError(f"the body is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise BadRequestError(f"{EXPECTED_BODY}; received a {_json_kind(document)}")
    params = document.pop("params", None)
    if params is not None and not isinstance(params, dict):
        raise BadRequestError("params must be an object of parameter values")
    data = {key: value for key, value in document.items() if key in SUPPORTED_FORMATS}
    if len(data) != 1:
        raise BadRequestError(f"{EXPECTED_BODY}; received the fields {sorted(document)}")
    try:
        return Invocation(infer_and_parse_data(data, schema), params)
    except Exception as error:  # MLflow's parsers raise whatever pandas or numpy raise
        raise ModelInputError(_json_reason(data, schema) or reason(error)) from None


def predictions(output: Any) -> bytes:
    """The answer body, exactly as MLflow's scoring server writes it."""
    buffer = io.StringIO()
    predictions_to_json(output, buffer)  # type: ignore[no-untyped-call]
    return buffer.getvalue().encode()


def _mime_type(content_type: str | None) -> str:
    if not content_type:
        raise UnsupportedMediaTypeError(f"send a Content-Type: {JSON} or {CSV}")
    mime, *pairs = (part.strip() for part in content_type.split(";"))
    parameters = dict(pair.partition("=")[::2] for pair in pairs)
    if parameters.get("charset", "utf-8").lower() != "utf-8":
        raise UnsupportedMediaTypeError("the scoring server only supports UTF-8")
    unexpected = set(parameters) - {"charset"}
    if unexpected:
        raise UnsupportedMediaTypeError(f"unrecognized content type parameters: "
                                        f"{', '.join(sorted(unexpected))}")
    if mime not in (JSON, CSV, PARQUET):
        raise UnsupportedMediaTypeError(f"this endpoint reads {JSON}, {CSV} or {PARQUET}, "
                                        f"not {describe(content_type)}")
    return mime


def _text(body: bytes) -> str:
    try:
        return body.decode()
    except UnicodeDecodeError as error:
        raise BadRequestError(f"the body is not UTF-8 text: {error}") from None


def _json_kind(document: Any) -> str:
    return {list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(document), "number")


def _json_reason(data: dict[str, Any], schema: Any) -> str | None:
    """Which column, value and type made MLflow's parser refuse the body, when it is a
    value of a column (MLflow says so for records, but not for instances or inputs)."""
    (key, value), = data.items()
    columns = _columns(key, value, schema)
    return None if columns is None else _first_unconvertible(columns, schema)


def _csv_reason(text: str, schema: Any) -> str | None:
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except Exception:  # not even text in columns: MLflow's own reason stands
        return None
    return _first_unconvertible({name: frame[name].tolist() for name in frame.columns},
                                schema, csv=True)


def _columns(key: str, value: Any, schema: Any) -> dict[str, list[Any]] | None:
    names = list(schema.input_names()) if schema is not None and schema.has_input_names() \
        else None
    if key == "dataframe_split" and isinstance(value, dict):
        columns, rows = value.get("columns"), value.get("data")
        if isinstance(columns, list) and isinstance(rows, list) and all(
                isinstance(row, list) and len(row) == len(columns) for row in rows):
            return {str(name): [row[i] for row in rows] for i, name in enumerate(columns)}
        return None
    if isinstance(value, dict):
        return {str(k): v if isinstance(v, list) else [v] for k, v in value.items()}
    if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        keys = dict.fromkeys(k for record in value for k in record)
        return {str(k): [record.get(k) for record in value] for k in keys}
    if isinstance(value, list) and names and all(
            isinstance(r, list) and len(r) == len(names) for r in value):
        return {name: [row[i] for row in value] for i, name in enumerate(names)}
    return None


def _first_unconvertible(columns: dict[str, list[Any]], schema: Any,
                         csv: bool = False) -> str | None:
    if schema is None or not schema.has_input_names():
        return None
    for spec, dtype in zip(schema.inputs, schema.pandas_types(), strict=True):
        kind = getattr(spec.type, "name", str(spec.type))
        for row, value in enumerate(columns.get(str(spec.name), ())):
            if csv and kind == "boolean" and value not in CSV_BOOLEANS:
                return _unreadable(spec.name, row, value, kind)
            try:
                np.array([value], dtype=object).astype(dtype)
            except Exception:  # what astype raises is pandas' and numpy's choice
                return _unreadable(spec.name, row, value, kind)
    return None


def explain_failure(data: Any, schema: Any) -> str | None:
    """When the model fails on a frame MLflow's parsers made: the first value a model
    cannot take whatever it is (an infinite number, a list or an object), by column."""
    if not isinstance(data, pd.DataFrame):
        return None
    for position, name in enumerate(data.columns):
        column = data.iloc[:, position]  # by position: MLflow's parser keeps duplicate names
        if pd.api.types.is_float_dtype(column.dtype):
            infinite = np.flatnonzero(np.isinf(column.to_numpy()))
            if infinite.size:
                row = int(infinite[0])
                return f"column '{name}', record {row}: {column.iloc[row]} is not finite"
        elif column.dtype == object:
            for row, value in enumerate(column.tolist()):
                if isinstance(value, list | dict):
                    return (f"column '{name}', record {row}: {describe(value)} is not a "
                            f"{_kind_of(schema, name)}")
    return None


def _kind_of(schema: Any, name: str) -> str:
    for spec in getattr(schema, "inputs", ()):
        if spec.name == name:
            return str(getattr(spec.type, "name", spec.type))
    return "scalar"


def _unreadable(name: Any, row: int, value: Any, kind: str) -> str:
    return f"column '{name}', record {row}: {describe(value)} cannot be read as {kind}"
