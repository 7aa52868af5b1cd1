"""What a scored event carries of its record: the model's input columns, with the values
the model was given, so that a monitor downstream sees inputs beside predictions.

The columns built for the model's frame are reused, and checked a column at a time, so
that the features cost little more than building one dict per record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd

from agogosml.envelope import INT64_MAX, INT64_MIN, is_json_scalar
from agogosml.services.app.signature import MISSING

_TEXTUAL = frozenset({str, bool, type(None)})
_SCALAR_KINDS = _TEXTUAL | {int, float}


@dataclass(frozen=True)
class ModelInput:
    """A batch of records as the model takes it: the columns cast to its signature (`cast`),
    and the frame the pyfunc takes, built from them only when asked for."""

    cast: dict[str, Any] | pd.DataFrame
    """The cast columns (numpy arrays or lists, the kept records only); a frame already
    when the model names no inputs."""
    columns: dict[str, list[Any]] | None
    """The model's input columns, each with its value per record in the frame, as the
    record gave it; None when the model names no inputs."""
    records: int
    """How many records the frame holds."""
    kept: list[int] | None = None
    """The positions, among the records given, of those in the frame; None for all."""
    refused: dict[int, str] = field(default_factory=dict)
    """The records that do not fit the model's signature, by position, and why."""

    @cached_property
    def frame(self) -> pd.DataFrame:
        return self.cast if isinstance(self.cast, pd.DataFrame) else pd.DataFrame(self.cast)

    def features(self) -> list[dict[str, Any]]:
        """Per record, its input columns and values. A model that names no inputs gets
        none: they cannot be told from the personal data beside them. A value no scored
        event can carry (a list, an object, an integer beyond 64 bits) is left out, so
        that the event is still scored and written."""
        if not self.columns:
            return [{} for _ in range(self.records)]
        names = list(self.columns)
        rows = [dict(zip(names, values, strict=True))
                for values in zip(*self.columns.values(), strict=True)]
        for name, values in self.columns.items():
            if not _all_scalars(values):
                for row in rows:
                    if row[name] is MISSING:  # an optional column the record lacks
                        row[name] = None
                    elif not is_json_scalar(row[name]):
                        del row[name]
        return rows


def _all_scalars(values: list[Any]) -> bool:
    """Whether every value is a JSON scalar, judged by the column's types and extremes;
    False only means that the values need checking one by one."""
    kinds = set(map(type, values))
    if kinds <= _TEXTUAL:
        return True
    if not kinds <= _SCALAR_KINDS:
        return False
    numbers = values if kinds <= {int, float} else \
        [value for value in values if type(value) is int or type(value) is float]
    return bool(min(numbers) >= INT64_MIN and max(numbers) <= INT64_MAX
                and math.isfinite(sum(numbers)))
