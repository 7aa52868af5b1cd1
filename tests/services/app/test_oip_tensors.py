"""Tensor data in the binary tensor data extension reads and writes as Triton's own client
library does, for every datatype; JSON data is checked value by value against its
datatype, nested or flat."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor, triton_to_np_dtype

from agogosml.errors import BadRequestError
from agogosml.services.app.oip import tensors

NUMERIC = sorted(tensors.NUMPY_TYPES)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), datatype=st.sampled_from(NUMERIC))
def test_binary_numeric_tensors_read_and_write_as_tritonclient_does(
        data: st.DataObject, datatype: str) -> None:
    dtype = np.dtype(triton_to_np_dtype(datatype)).newbyteorder("<")
    array = data.draw(hnp.arrays(dtype, st.integers(0, 20),
                                 elements={"allow_nan": False} if dtype.kind == "f" else None))
    raw = array.tobytes()  # what InferInput.set_data_from_numpy(binary_data=True) sends
    values = tensors.from_binary("x", datatype, raw, len(array))
    assert values == array.tolist()
    assert tensors.to_binary(datatype, values) == raw


@settings(max_examples=100, deadline=None)
@given(texts=st.lists(st.text(max_size=30), max_size=20))
def test_binary_bytes_tensors_read_and_write_as_tritonclient_does(texts: list[str]) -> None:
    array = np.array([text.encode() for text in texts], dtype=np.object_)
    raw = serialize_byte_tensor(array).item() if texts else b""
    assert tensors.from_binary("x", "BYTES", raw, len(texts)) == texts
    written = tensors.to_binary("BYTES", texts)
    assert written == raw
    if texts:
        assert [item.decode() for item in deserialize_bytes_tensor(written)] == texts


@pytest.mark.parametrize(("datatype", "raw", "count", "fragment"), [
    ("FP64", b"\x00" * 12, 2, "2 FP64 values take 16 bytes; binary_data_size is 12"),
    ("BYTES", b"\x05\x00\x00\x00ab", 1, "runs past the data"),
    ("BYTES", b"\x01\x00", 1, "ends inside a length prefix"),
    ("BYTES", b"\x01\x00\x00\x00\xff", 1, "is not UTF-8 text"),
    ("BYTES", b"\x01\x00\x00\x00a", 2, "its shape needs 2 values, the binary data holds 1"),
])
def test_malformed_binary_data_is_refused_with_the_reason(datatype: str, raw: bytes,
                                                          count: int, fragment: str) -> None:
    with pytest.raises(BadRequestError, match=fragment):
        tensors.from_binary("input 'x'", datatype, raw, count)


@pytest.mark.parametrize(("datatype", "data", "values"), [
    ("FP64", [100, 1.5], [100, 1.5]),
    ("FP32", [[1], [2.5]], [1, 2.5]),
    ("INT8", [[-128], [127]], [-128, 127]),
    ("UINT64", [2**64 - 1], [2**64 - 1]),
    ("BOOL", [True, False], [True, False]),
    ("BYTES", [["a"], ["b"]], ["a", "b"]),
])
def test_json_data_is_read_flat_or_nested(datatype: str, data: list[Any],
                                          values: list[Any]) -> None:
    assert tensors.from_json("x", datatype, data, len(values)) == values


@pytest.mark.parametrize(("datatype", "value"), [
    ("FP64", "1.5"), ("FP64", True), ("INT64", 1.5), ("INT8", 128), ("UINT8", -1),
    ("BOOL", 1), ("BYTES", 5), ("INT64", None),
])
def test_json_data_that_is_not_its_datatype_is_refused_by_position(datatype: str,
                                                                   value: Any) -> None:
    with pytest.raises(BadRequestError, match=f"at position 1 is not {datatype}"):
        tensors.from_json("input 'x'", datatype, [[0 if datatype != "BOOL" else False]
                                                  if datatype != "BYTES" else ["a"], [value]], 2)
