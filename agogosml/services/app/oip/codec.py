"""Inference requests into columns for the model, and scores into inference responses.

A request is JSON, or, with the binary tensor data extension, a JSON header of
`Inference-Header-Content-Length` bytes followed by the binary data of the inputs that
declare a `binary_data_size`, in the order of `inputs`.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from agogosml.errors import BadRequestError, ModelInputError
from agogosml.services.app.model import PREDICTION, LoadedModel, Output, Scores
from agogosml.services.app.oip import tensors
from agogosml.services.app.signature import Signature, describe

BINARY_HEADER = "inference-header-content-length"

ACCEPTED_DATATYPES = {
    "double": tensors.INTEGER_TYPES | tensors.FLOAT_TYPES,
    "float": tensors.INTEGER_TYPES | tensors.FLOAT_TYPES,
    "long": tensors.INTEGER_TYPES | tensors.FLOAT_TYPES,
    "integer": tensors.INTEGER_TYPES | tensors.FLOAT_TYPES,
    "boolean": frozenset({"BOOL"}),
    "string": frozenset({"BYTES"}),
}
"""The datatypes an input may be sent as, by the column type it feeds; whole-valued
floats feed integer columns (the values are checked one by one)."""

PANDAS = "pd"
"""`parameters.content_type` of a request whose tensors are a frame's columns (MLServer
and KServe): what every request to this app is, said or not."""
INPUT_CONTENT_TYPES = frozenset({"np", "str", PANDAS})
"""An input's own `parameters.content_type`: MLServer's codecs mark numeric columns "np"
and text columns "str"; both mean the values as they are."""


@dataclass(frozen=True, slots=True)
class RequestedOutput:
    name: str
    binary: bool


@dataclass(frozen=True, slots=True)
class InferRequest:
    id: str
    columns: dict[str, list[Any]]
    datatypes: dict[str, str]
    rows: int
    outputs: tuple[RequestedOutput, ...] | None
    """None: every output, in binary when `binary_output`."""
    binary_output: bool
    pandas: bool


def read_request(body: bytes, header_length: str | None) -> InferRequest:
    header, binary = _split(body, header_length)
    try:
        document = orjson.loads(header)
    except orjson.JSONDecodeError as error:
        raise BadRequestError(f"the inference request is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise BadRequestError("an inference request is a JSON object with 'inputs'")
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequestError("'id' must be a string")
    parameters = _parameters(document, "the request")
    content_type = parameters.get("content_type", PANDAS)
    if content_type != PANDAS:
        raise BadRequestError(f"parameters.content_type {describe(content_type)} is not "
                              f"supported: this model takes a frame, one tensor per column "
                              f"(content_type '{PANDAS}')")
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequestError("an inference request needs a non-empty 'inputs' list")
    columns: dict[str, list[Any]] = {}
    datatypes: dict[str, str] = {}
    offset = 0
    for number, tensor in enumerate(inputs):
        name, datatype, values, offset = _read_input(tensor, number, binary, offset)
        if name in columns:
            raise BadRequestError(f"input '{name}' is given twice")
        columns[name], datatypes[name] = values, datatype
    if offset != len(binary):
        raise BadRequestError(f"{len(binary) - offset} bytes of binary data are not claimed by "
                              "any input's binary_data_size")
    rows = {len(values) for values in columns.values()}
    if len(rows) != 1:
        raise BadRequestError("every input tensor must have the same number of rows")
    binary_output = parameters.get("binary_data_output", False)
    if not isinstance(binary_output, bool):
        raise BadRequestError("parameters.binary_data_output must be true or false")
    return InferRequest(request_id or str(uuid.uuid4()), columns, datatypes, rows.pop(),
                        _requested_outputs(document), binary_output,
                        "content_type" in parameters)


def fit_to(signature: Signature | None, request: InferRequest) -> None:
    """Refuses inputs the model does not take, inputs it needs and lacks, and datatypes
    that cannot feed their columns; values are cast by the signature afterwards."""
    if signature is None:
        return
    unknown = [name for name in request.columns if name not in signature.names]
    if unknown:
        raise ModelInputError(f"unknown inputs: {', '.join(unknown)}; the model takes "
                              f"{', '.join(signature.names)}")
    needed = [c.name for c in signature.columns if c.required and c.name not in request.columns]
    if needed:
        raise ModelInputError(f"missing inputs: {', '.join(needed)}")
    for name, datatype in request.datatypes.items():
        kind = signature.type_of(name)
        accepted = ACCEPTED_DATATYPES.get(kind or "")
        if accepted is not None and datatype not in accepted:
            raise ModelInputError(f"input '{name}' is {datatype}; the model takes {kind}, "
                                  f"so send {' or '.join(_preferred(kind or ''))}")


def _preferred(kind: str) -> list[str]:
    return {"double": ["FP64", "an integer type"], "float": ["FP32", "FP64"],
            "long": ["INT64", "whole FP64 values"], "integer": ["INT32", "INT64"],
            "boolean": ["BOOL"], "string": ["BYTES"]}.get(kind, ["BYTES"])


def response(model: LoadedModel, scores: Scores, request: InferRequest
             ) -> tuple[dict[str, Any], bytes]:
    """The response's JSON and the binary data that follows it (empty without binary
    outputs)."""
    declared = {output.name: output for output in model.outputs or ()}
    values = {PREDICTION: scores.predictions,
              **{name: [row[name] for row in scores.scores]
                 for name in (scores.scores[0] if scores.scores else {})}}
    wanted = request.outputs or tuple(RequestedOutput(name, request.binary_output)
                                      for name in declared)
    outputs: list[dict[str, Any]] = []
    binary: list[bytes] = []
    for requested in wanted:
        output = declared[requested.name]
        data = tensors.cast_output(output.name, output.datatype, values[output.name])
        if output.datatype == "FP64" and not all(map(math.isfinite, data)):
            raise ModelInputError(f"model output: '{output.name}' is not finite for every "
                                  "record")
        tensor: dict[str, Any] = {"name": output.name, "datatype": output.datatype,
                                  "shape": [request.rows]}
        if requested.binary:
            raw = tensors.to_binary(output.datatype, data)
            tensor["parameters"] = {"binary_data_size": len(raw)}
            binary.append(raw)
        else:
            tensor["data"] = data
        outputs.append(tensor)
    document: dict[str, Any] = {"model_name": model.ref.name,
                                "model_version": model.ref.version, "id": request.id,
                                "outputs": outputs}
    if request.pandas:
        document["parameters"] = {"content_type": PANDAS}
    return document, b"".join(binary)


def check_outputs(model: LoadedModel, request: InferRequest) -> None:
    known = [output.name for output in model.outputs or ()]
    for requested in request.outputs or ():
        if requested.name not in known:
            raise BadRequestError(f"unknown output '{requested.name}'; this model's outputs "
                                  f"are {', '.join(known)}")


def output_metadata(outputs: tuple[Output, ...] | None) -> list[dict[str, Any]]:
    return [{"name": output.name, "datatype": output.datatype, "shape": [-1]}
            for output in outputs or ()]


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    # ASCII digits only, and no more than a byte count can have: str.isdigit() also takes
    # "²", which int() refuses, and int() refuses strings past 4,300 digits.
    if not (header_length.isascii() and header_length.isdigit() and len(header_length) <= 20
            and int(header_length) <= len(body)):
        raise BadRequestError(f"Inference-Header-Content-Length must be a byte count within "
                              f"the body ({len(body)} bytes)")
    size = int(header_length)
    return body[:size], body[size:]


def _read_input(tensor: Any, number: int, binary: bytes, offset: int
                ) -> tuple[str, str, list[Any], int]:
    where = f"inputs[{number}]"
    if not isinstance(tensor, dict):
        raise BadRequestError(f"{where} must be an object with name, shape, datatype and data")
    name = tensor.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequestError(f"{where}.name must be a non-empty string")
    where = f"input '{name}'"
    datatype = tensors.check_datatype(where, tensor.get("datatype"))
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not shape or not all(
            type(d) is int and d >= 0 for d in shape):
        raise BadRequestError(f"{where}: shape must be a list of non-negative integers")
    if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
        raise BadRequestError(f"{where}: a column has shape [rows] or [rows, 1], not {shape}")
    parameters = _parameters(tensor, where)
    content_type = parameters.get("content_type")
    if content_type is not None and (not isinstance(content_type, str)
                                     or content_type not in INPUT_CONTENT_TYPES):
        raise BadRequestError(f"{where}: parameters.content_type {describe(content_type)} is "
                              "not supported (use one of "
                              f"{', '.join(sorted(INPUT_CONTENT_TYPES))})")
    count = shape[0]
    size = parameters.get("binary_data_size")
    if size is None:
        if "data" not in tensor:
            raise BadRequestError(f"{where} has neither data nor binary_data_size")
        return name, datatype, tensors.from_json(where, datatype, tensor["data"], count), offset
    if "data" in tensor:
        raise BadRequestError(f"{where} has both data and binary_data_size")
    if type(size) is not int or size < 0 or offset + size > len(binary):
        raise BadRequestError(f"{where}: binary_data_size {describe(size)} runs past the "
                              f"{len(binary)} bytes of binary data")
    values = tensors.from_binary(where, datatype, binary[offset:offset + size], count)
    return name, datatype, values, offset + size


def _requested_outputs(document: dict[str, Any]) -> tuple[RequestedOutput, ...] | None:
    outputs = document.get("outputs")
    if outputs is None:
        return None
    if not isinstance(outputs, list):
        raise BadRequestError("'outputs' must be a list of {name, parameters}")
    requested = []
    for number, output in enumerate(outputs):
        if not isinstance(output, dict) or not isinstance(output.get("name"), str):
            raise BadRequestError(f"outputs[{number}] must be an object with a name")
        parameters = _parameters(output, f"output '{output['name']}'")
        if "classification" in parameters:
            raise BadRequestError("the classification extension is not supported; every "
                                  "score is an output of its own")
        binary = parameters.get("binary_data", False)
        if not isinstance(binary, bool):
            raise BadRequestError(f"output '{output['name']}': binary_data must be true "
                                  "or false")
        requested.append(RequestedOutput(output["name"], binary))
    names = [output.name for output in requested]
    if len(set(names)) != len(names):
        raise BadRequestError("an output is requested twice")
    return tuple(requested)


def _parameters(holder: dict[str, Any], where: str) -> dict[str, Any]:
    parameters = holder.get("parameters", {})
    if not isinstance(parameters, dict):
        raise BadRequestError(f"{where}: parameters must be an object")
    return parameters
