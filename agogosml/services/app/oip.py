"""Open Inference Protocol v2 (the KServe / Triton REST protocol) for tabular models:
each input tensor is one column of the frame."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from agogosml.errors import BadRequestError
from agogosml.services.app.model import LoadedModel, Scores

INTEGER_TYPES = {f"{sign}INT{bits}" for sign in ("", "U") for bits in (8, 16, 32, 64)}
FLOAT_TYPES = {"FP16", "FP32", "FP64"}
DATATYPES = INTEGER_TYPES | FLOAT_TYPES | {"BOOL", "BYTES"}

MLFLOW_TO_OIP = {"double": "FP64", "float": "FP32", "long": "INT64", "integer": "INT32",
                 "boolean": "BOOL", "string": "BYTES", "binary": "BYTES", "datetime": "BYTES"}


def model_metadata(model: LoadedModel) -> dict[str, Any]:
    inputs = [
        {"name": name, "datatype": MLFLOW_TO_OIP.get(model.input_types.get(name, ""), "BYTES"),
         "shape": [-1]}
        for name in model.input_columns or ()
    ]
    return {"name": model.ref.name, "versions": [model.ref.version], "platform": "mlflow",
            "inputs": inputs, "outputs": [{"name": "prediction", "datatype": "BYTES",
                                           "shape": [-1]}]}


def frame_from_infer_request(body: Any) -> tuple[pd.DataFrame, str | None]:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) \
            or not body["inputs"]:
        raise BadRequestError("an inference request needs a non-empty 'inputs' list")
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequestError("'id' must be a string")
    columns: dict[str, list[Any]] = {}
    for number, tensor in enumerate(body["inputs"]):
        name, values = _read_tensor(tensor, number)
        if name in columns:
            raise BadRequestError(f"inputs[{number}]: '{name}' is given twice")
        columns[name] = values
    if len({len(values) for values in columns.values()}) != 1:
        raise BadRequestError("every input tensor must have the same number of rows")
    return pd.DataFrame(columns), request_id


def infer_response(model: LoadedModel, scores: Scores, request_id: str | None) -> dict[str, Any]:
    rows = len(scores.predictions)
    outputs = [_tensor("prediction", scores.predictions)]
    for name in scores.scores[0] if scores.scores else {}:
        outputs.append(_tensor(name, [row[name] for row in scores.scores]))
    response: dict[str, Any] = {"model_name": model.ref.name,
                                "model_version": model.ref.version, "outputs": outputs}
    if request_id is not None:
        response["id"] = request_id
    assert all(output["shape"] == [rows] for output in outputs)
    return response


def _read_tensor(tensor: Any, number: int) -> tuple[str, list[Any]]:
    where = f"inputs[{number}]"
    if not isinstance(tensor, dict):
        raise BadRequestError(f"{where} must be an object with name, shape, datatype and data")
    name, shape = tensor.get("name"), tensor.get("shape")
    datatype, data = tensor.get("datatype"), tensor.get("data")
    if not isinstance(name, str) or not name:
        raise BadRequestError(f"{where}.name must be a non-empty string")
    where = f"input '{name}'"
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise BadRequestError(f"{where}: datatype must be one of {', '.join(sorted(DATATYPES))}")
    if not isinstance(shape, list) or not shape or not all(
            isinstance(d, int) and d >= 0 for d in shape):
        raise BadRequestError(f"{where}: shape must be a list of non-negative integers")
    if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
        raise BadRequestError(f"{where}: a column has shape [rows] or [rows, 1]")
    if not isinstance(data, list):
        raise BadRequestError(f"{where}: data must be a list")
    values = [item[0] if isinstance(item, list) and len(item) == 1 else item for item in data]
    if len(values) != math.prod(shape):
        raise BadRequestError(f"{where}: shape {shape} needs {math.prod(shape)} values, "
                              f"data has {len(values)}")
    if not all(_fits(value, datatype) for value in values):
        raise BadRequestError(f"{where}: data does not match datatype {datatype}")
    return name, values


def _fits(value: Any, datatype: str) -> bool:
    if datatype == "BOOL":
        return isinstance(value, bool)
    if datatype in INTEGER_TYPES:
        return isinstance(value, int) and not isinstance(value, bool)
    if datatype in FLOAT_TYPES:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def _tensor(name: str, values: list[Any]) -> dict[str, Any]:
    return {"name": name, "datatype": _datatype_of(values), "shape": [len(values)],
            "data": values}


def _datatype_of(values: list[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "FP64"
    return "BYTES"
