"""Tensor data, in JSON and in the binary tensor data extension, checked against the
datatype it is declared as.

Binary data is little-endian and row-major; a BYTES element is a 4-byte little-endian
length and that many bytes.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from agogosml.errors import BadRequestError, ModelOutputError
from agogosml.services.app.signature import describe

INTEGER_RANGES = {
    **{f"INT{bits}": (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) for bits in (8, 16, 32, 64)},
    **{f"UINT{bits}": (0, 2**bits - 1) for bits in (8, 16, 32, 64)},
}
INTEGER_TYPES = frozenset(INTEGER_RANGES)
FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})
DATATYPES = INTEGER_TYPES | FLOAT_TYPES | {"BOOL", "BYTES"}

NUMPY_TYPES = {"BOOL": "?", "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
               **{f"INT{bits}": f"<i{bits // 8}" for bits in (8, 16, 32, 64)},
               **{f"UINT{bits}": f"<u{bits // 8}" for bits in (8, 16, 32, 64)}}
"""Every datatype but BYTES, as numpy reads and writes it."""

LENGTH = struct.Struct("<I")


def check_datatype(where: str, datatype: Any) -> str:
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise BadRequestError(f"{where}: datatype must be one of {', '.join(sorted(DATATYPES))}")
    return datatype


def from_json(where: str, datatype: str, data: Any, count: int) -> list[Any]:
    """The values of JSON tensor data, flattened row-major, each checked against the
    datatype (JSON has no floats apart from integers: 100 is a fine FP64 value)."""
    if not isinstance(data, list):
        raise BadRequestError(f"{where}: data must be a list")
    values = _flatten(data) if any(isinstance(item, list) for item in data) else data
    if len(values) != count:
        raise BadRequestError(f"{where}: its shape needs {count} values, data has {len(values)}")
    for row, value in enumerate(values):
        if not _fits(value, datatype):
            raise BadRequestError(f"{where}: value {describe(value)} at position {row} is not "
                                  f"{datatype}")
    return values


def from_binary(where: str, datatype: str, raw: bytes, count: int) -> list[Any]:
    if datatype == "BYTES":
        return _bytes_elements(where, raw, count)
    dtype = np.dtype(NUMPY_TYPES[datatype])
    if len(raw) != count * dtype.itemsize:
        raise BadRequestError(f"{where}: {count} {datatype} values take "
                              f"{count * dtype.itemsize} bytes; binary_data_size is {len(raw)}")
    values: list[Any] = np.frombuffer(raw, dtype=dtype).tolist()
    return values


def to_binary(datatype: str, values: list[Any]) -> bytes:
    if datatype == "BYTES":
        return b"".join(LENGTH.pack(len(item)) + item
                        for item in (str(value).encode() for value in values))
    return np.asarray(values, dtype=NUMPY_TYPES[datatype]).tobytes()


def _bytes_elements(where: str, raw: bytes, count: int) -> list[Any]:
    """Elements are decoded as UTF-8: a tabular model's BYTES columns are strings."""
    values: list[Any] = []
    offset = 0
    while offset < len(raw):
        if offset + LENGTH.size > len(raw):
            raise BadRequestError(f"{where}: binary BYTES data ends inside a length prefix")
        (size,) = LENGTH.unpack_from(raw, offset)
        offset += LENGTH.size
        if offset + size > len(raw):
            raise BadRequestError(f"{where}: a BYTES element of {size} bytes runs past the data")
        try:
            values.append(raw[offset:offset + size].decode())
        except UnicodeDecodeError:
            raise BadRequestError(f"{where}: BYTES element {len(values)} is not UTF-8 "
                                  "text") from None
        offset += size
    if len(values) != count:
        raise BadRequestError(f"{where}: its shape needs {count} values, the binary data "
                              f"holds {len(values)}")
    return values


def _flatten(data: list[Any]) -> list[Any]:
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                if len(stack) > 32:
                    raise BadRequestError("tensor data is nested too deeply")
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _fits(value: Any, datatype: str) -> bool:
    kind = type(value)
    if datatype == "BOOL":
        return kind is bool
    if datatype == "BYTES":
        return kind is str
    if datatype in FLOAT_TYPES:
        return kind is float or kind is int
    low, high = INTEGER_RANGES[datatype]
    return kind is int and low <= value <= high


def cast_output(name: str, datatype: str, values: list[Any]) -> list[Any]:
    """Model output as its declared datatype: the types `infer` promises in metadata."""
    try:
        if datatype == "INT64":
            if all(type(v) is int for v in values):
                return values
            if all(isinstance(v, int | float) and float(v).is_integer() for v in values):
                return [int(v) for v in values]
        elif datatype == "FP64":
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
                return [float(v) for v in values]
        elif datatype == "BOOL":
            if all(isinstance(v, bool) for v in values):
                return values
        elif datatype == "BYTES":
            return [v if isinstance(v, str) else str(v) for v in values]
    except (OverflowError, ValueError):
        pass
    raise ModelOutputError(f"the model's output '{name}' is not {datatype}, as its "
                           "metadata says")
