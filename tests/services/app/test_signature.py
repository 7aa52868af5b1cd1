"""Records cast to a model's signature: every conversion without loss is made, anything
else refuses only its own record, with the column, the value and the type; a record's
fate never depends on the records beside it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agogosml.services.app.signature import MISSING, Column, Signature

SIGNATURE = Signature((Column("amount", "double"), Column("hour", "long"),
                       Column("small", "integer"), Column("ratio", "float"),
                       Column("card_present", "boolean"), Column("country", "string"),
                       Column("note", "string", required=False)))
GOOD = {"amount": 12.5, "hour": 3, "small": 7, "ratio": 0.5, "card_present": True,
        "country": "NL", "note": "x"}


def cast(records: list[dict[str, Any]]) -> Any:
    columns = {name: [record.get(name, MISSING) for record in records]
               for name in SIGNATURE.names}
    return SIGNATURE.cast(columns, len(records))


@pytest.mark.parametrize(("column", "given", "taken"), [
    ("amount", 100, 100.0), ("amount", None, math.nan), ("amount", 2**70, float(2**70)),
    ("hour", 3.0, 3), ("hour", -0.0, 0), ("small", 2**31 - 1, 2**31 - 1),
    ("ratio", 1, 1.0), ("country", None, None),
])
def test_conversions_without_loss_are_made(column: str, given: Any, taken: Any) -> None:
    result = cast([dict(GOOD, **{column: given})])
    assert result.refused == {}
    value = result.frame[column].iloc[0]
    assert (math.isnan(value) if isinstance(taken, float) and math.isnan(taken)
            else value == taken)


def test_the_frame_has_the_signature_types() -> None:
    frame = cast([GOOD, dict(GOOD, amount=100, hour=4.0)]).frame
    assert [str(dtype) for dtype in frame.dtypes][:5] == [
        "float64", "int64", "int32", "float32", "bool"]
    assert frame["country"].tolist() == ["NL", "NL"]


@pytest.mark.parametrize(("column", "given", "message"), [
    ("amount", "100", "column 'amount': '100' is not a number (double)"),
    ("amount", True, "column 'amount': true is not a number (double)"),
    ("amount", [1], "column 'amount': a list is not a number (double)"),
    ("amount", 10**400, "column 'amount': 1000000000000000000000000000000000000000... is not"),
    ("hour", 3.5, "column 'hour': 3.5 is not a whole number (long)"),
    ("hour", None, "column 'hour': null is not a whole number (long)"),
    ("hour", 2**63, "column 'hour': 9223372036854775808 is not a whole number (long)"),
    ("small", 2**31, "column 'small': 2147483648 is not a 32-bit whole number (integer)"),
    ("card_present", 1, "column 'card_present': 1 is not true or false (boolean)"),
    ("card_present", "true", "column 'card_present': 'true' is not true or false (boolean)"),
    ("country", 5, "column 'country': 5 is not a string"),
    ("country", {"a": 1}, "column 'country': an object is not a string"),
    ("amount", "x" * 100, "column 'amount': 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'"),
    ("ratio", 1e39, "column 'ratio': 1e+39 is not a number (float)"),
])
def test_anything_else_refuses_the_record_naming_column_value_and_type(
        column: str, given: Any, message: str) -> None:
    result = cast([GOOD, dict(GOOD, **{column: given}), GOOD])
    assert list(result.refused) == [1]
    assert result.refused[1].startswith(message)
    assert result.kept == [0, 2]
    assert len(result.frame) == 2


def test_a_required_column_a_record_lacks_refuses_it_an_optional_one_is_null() -> None:
    lacking = {k: v for k, v in GOOD.items() if k not in ("hour", "note")}
    result = cast([lacking])
    assert result.refused == {0: "column 'hour' is missing"}
    result = cast([{k: v for k, v in GOOD.items() if k != "note"}])
    assert result.refused == {}
    assert result.frame["note"].tolist() == [None]


def test_a_whole_request_names_its_first_refusals() -> None:
    result = cast([dict(GOOD, hour=0.5)] * 5)
    assert result.first_problems() == (
        "record 0: column 'hour': 0.5 is not a whole number (long); "
        "record 1: column 'hour': 0.5 is not a whole number (long); "
        "record 2: column 'hour': 0.5 is not a whole number (long); and 2 more")


VALUES = (st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
          | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5)
          | st.lists(st.integers(), max_size=2) | st.just(MISSING))


@settings(max_examples=300, deadline=None)
@given(records=st.lists(st.fixed_dictionaries({name: VALUES for name in SIGNATURE.names}),
                        min_size=1, max_size=6))
def test_any_record_is_cast_whole_or_refused_alone(records: list[dict[str, Any]]) -> None:
    """Whatever the values: no exception; each record is refused, with a reason naming one
    of its columns, or kept with its values cast without loss; and the same happens to it
    when it is cast alone (the bug this replaces: 100 for a double passed or failed by
    whether a neighbour had a fraction)."""
    records = [{k: v for k, v in record.items() if v is not MISSING} for record in records]
    together = cast(records)
    for row, record in enumerate(records):
        alone = cast([record])
        assert (row in together.refused) == (0 in alone.refused)
        if row in together.refused:
            assert together.refused[row] == alone.refused[0]
            assert together.refused[row].startswith("column '")
            continue
        position = (together.kept or list(range(len(records)))).index(row)
        for name, value in record.items():
            taken = together.frame[name].iloc[position]
            if value is None:
                assert taken is None or (isinstance(taken, float) and math.isnan(taken))
            elif SIGNATURE.type_of(name) == "float":
                assert taken == np.float32(value)
            else:
                assert taken == value, (name, value, taken)
