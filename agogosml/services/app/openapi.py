"""The request and response bodies of the app's POST endpoints, as OpenAPI declares them.

The handlers read their bodies themselves (capped, before parsing), so FastAPI cannot
infer these shapes; they are declared here for clients and for the HTTP fuzz tests.
"""

from __future__ import annotations

from typing import Any

from agogosml.envelope import EVENT_SCHEMA, SCALAR_SCHEMA, JsonObject
from agogosml.services.app.oip.tensors import DATATYPES
from agogosml.services.app.signature import Signature
from agogosml.web.errors import ERROR_SCHEMA, MLFLOW_ERROR_SCHEMA

MLFLOW_TYPES: dict[str, JsonObject] = {
    "double": {"type": "number"}, "float": {"type": "number"},
    "long": {"type": "integer"}, "integer": {"type": "integer"},
    "boolean": {"type": "boolean"}, "string": {"type": "string"},
}


BATCH_ANSWER: JsonObject = {
    "type": "object", "required": ["scored", "rejected"],
    "properties": {
        "scored": {"type": "integer", "minimum": 0},
        "rejected": {"type": "array", "items": {
            "type": "object", "required": ["index", "id", "reason"],
            "properties": {"index": {"type": "integer", "minimum": 0},
                           "id": {"type": "string"}, "reason": {"type": "string"}}}},
        "predictions": {"type": "object",
                        "description": "the prediction per event id, with the echo header"},
    },
}

PREDICT_ANSWER: JsonObject = {
    "type": "object", "required": ["model", "predictions", "scores"],
    "properties": {
        "model": {"type": "object", "required": ["name", "version"],
                  "properties": {"name": {"type": "string"}, "version": {"type": "string"}}},
        "predictions": {"type": "array"},
        "scores": {"type": "array", "items": {"type": "object",
                                              "additionalProperties": {"type": "number"}}},
    },
}

INFER_ANSWER: JsonObject = {
    "type": "object", "required": ["model_name", "model_version", "id", "outputs"],
    "properties": {
        "model_name": {"type": "string"}, "model_version": {"type": "string"},
        "id": {"type": "string", "description": "the request's, else one made for it"},
        "parameters": {"type": "object"},
        "outputs": {"type": "array", "items": {
            "type": "object", "required": ["name", "datatype", "shape"],
            "properties": {"name": {"type": "string"}, "datatype": {"type": "string"},
                           "shape": {"type": "array", "items": {"type": "integer"}},
                           "data": {"type": "array"},
                           "parameters": {"type": "object", "description":
                                          "binary_data_size, for data sent in binary"}}}},
    },
}


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
    for status, text in ((400, "the body cannot be read"),
                         (401, "no accepted bearer token (pipeline token or API key)"),
                         (413, "the body or its record count is too large"),
                         (422, "the model refuses the records"),
                         (503, "not ready, or the writer did not answer"))}
"""The POST routes' `responses`: in place of FastAPI's 422, which this app never sends."""

OIP_ERRORS: dict[int | str, dict[str, Any]] = {
    **{status: answer for status, answer in ERRORS.items() if status != 422},
    400: {"description": "the body cannot be read, or the model refuses the inputs",
          "content": {"application/json": {"schema": ERROR_SCHEMA}}},
    404: {"description": "no model of that name or version",
          "content": {"application/json": {"schema": ERROR_SCHEMA}}}}
"""The OIP infer routes' `responses`: input problems are 400, as KServe and Triton send."""


MLFLOW_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": text,
             "content": {"application/json": {"schema": MLFLOW_ERROR_SCHEMA}}}
    for status, text in ((400, "the body cannot be read, or does not fit the model"),
                         (401, "no accepted API key"),
                         (413, "the body or its record count is too large"),
                         (415, "a content type other than JSON, CSV or Parquet"),
                         (503, "the model cannot serve"))}
"""/invocations' `responses`, in MLflow's error shape."""

INVOCATIONS_ANSWER: JsonObject = {
    "type": "object", "required": ["predictions"],
    "properties": {"predictions": {"type": "array",
                                   "description": "the model's output, as MLflow writes it"}}}


def operation(request: JsonObject, answer: JsonObject) -> dict[str, Any]:
    """`openapi_extra` for a POST whose JSON body is `request` and 200 answer `answer`."""
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": request}}},
            "responses": {"200": {"description": "OK", "content": {
                "application/json": {"schema": answer}}}}}


def record_schema(signature: Signature | None) -> JsonObject:
    """One record: the model's input columns, typed as its signature says (a whole
    number is a number too)."""
    if signature is None:
        return {"type": "object", "minProperties": 1}
    return {"type": "object",
            "required": [column.name for column in signature.columns if column.required],
            "properties": {column.name: MLFLOW_TYPES.get(column.type or "", SCALAR_SCHEMA)
                           for column in signature.columns}}


def batch_request(record: JsonObject) -> JsonObject:
    event = {**EVENT_SCHEMA, "properties": {**EVENT_SCHEMA["properties"], "payload": record}}
    return {"type": "object", "required": ["events"],
            "properties": {"events": {"type": "array", "items": event},
                           "reference": {"type": "object",
                                         "additionalProperties": SCALAR_SCHEMA}}}


def predict_request(record: JsonObject) -> JsonObject:
    """A record, records, or MLflow's bodies; rows list values in the columns' order."""
    return {"anyOf": [record, _records(record), *_mlflow_forms(record)]}


def invocations_operation(record: JsonObject) -> dict[str, Any]:
    """`openapi_extra` for /invocations: MLflow's JSON bodies (with `params`), CSV and
    Parquet, answered as MLflow's scoring server answers."""
    params = {"params": {"type": "object"}}
    forms = [{**form, "properties": {**form["properties"], **params}}
             for form in _mlflow_forms(record)]
    return {"requestBody": {"required": True, "content": {
                "application/json": {"schema": {"anyOf": forms}},
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.apache.parquet": {"schema": {"type": "string",
                                                              "format": "binary"}}}},
            "responses": {"200": {"description": "OK", "content": {
                "application/json": {"schema": INVOCATIONS_ANSWER}}}}}


def _records(record: JsonObject) -> JsonObject:
    return {"type": "array", "minItems": 1, "items": record}


def _mlflow_forms(record: JsonObject) -> list[JsonObject]:
    records = _records(record)
    rows = {"type": "array", "minItems": 1, "items": {"type": "array", "items": SCALAR_SCHEMA}}
    split = {"type": "object", "required": ["columns", "data"],
             "properties": {"columns": {"type": "array", "items": {"type": "string"}},
                            "data": rows}}
    columnar = {"type": "object", "additionalProperties": {"type": "array",
                                                           "items": SCALAR_SCHEMA}}
    return [
        {"type": "object", "required": ["dataframe_split"],
         "properties": {"dataframe_split": split}},
        {"type": "object", "required": ["dataframe_records"],
         "properties": {"dataframe_records": records}},
        {"type": "object", "required": ["instances"],
         "properties": {"instances": {"anyOf": [records, rows, columnar]}}},
        {"type": "object", "required": ["inputs"],
         "properties": {"inputs": {"anyOf": [records, rows, columnar]}}},
    ]


def infer_request() -> JsonObject:
    """The JSON form; the binary tensor data extension sends this as the header and
    inputs' `parameters.binary_data_size` in place of `data`."""
    tensor = {"type": "object", "required": ["name", "shape", "datatype", "data"],
              "properties": {"name": {"type": "string", "minLength": 1},
                             "shape": {"type": "array", "minItems": 1, "maxItems": 2,
                                       "items": {"type": "integer", "minimum": 0}},
                             "datatype": {"enum": sorted(DATATYPES)},
                             "data": {"type": "array"},
                             "parameters": {"type": "object"}}}
    output = {"type": "object", "required": ["name"],
              "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}}}
    return {"type": "object", "required": ["inputs"],
            "properties": {"id": {"type": "string"},
                           "parameters": {"type": "object"},
                           "inputs": {"type": "array", "minItems": 1, "items": tensor},
                           "outputs": {"type": "array", "items": output}}}
