"""Loading an MLflow pyfunc model and scoring a frame with it.

A model's output becomes a prediction per row plus named scores: a DataFrame's
`prediction` column (or its first column) is the prediction and every other
column a score; a 2-D array's columns are scores and the prediction is the
index of the highest one; anything 1-D is the prediction alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from agogosml.envelope import ModelRef
from agogosml.errors import ConfigurationError, ModelInputError
from agogosml.services.app.features import ModelInput

log = logging.getLogger(__name__)

INPUT_ERRORS = (MlflowException, ValueError, TypeError, KeyError)
MAX_REASON_CHARS = 500


@dataclass(frozen=True, slots=True)
class Scores:
    predictions: list[Any]
    scores: list[dict[str, float]]


@dataclass(frozen=True)
class LoadedModel:
    ref: ModelRef
    pyfunc: Any
    input_columns: tuple[str, ...] | None
    input_types: dict[str, str] = field(default_factory=dict)

    def inputs(self, records: list[dict[str, Any]]) -> ModelInput:
        """The records as the model takes them: its input columns in order; other fields
        (personal data, ids) are never turned into columns, which also halves the cost of
        building the frame."""
        if self.input_columns is None:
            return ModelInput(pd.DataFrame.from_records(records), None, len(records))
        _require(self.input_columns, lambda name: any(name in record for record in records))
        columns = {name: [record.get(name) for record in records]
                   for name in self.input_columns}
        return ModelInput(pd.DataFrame(columns), columns, len(records))

    def select(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.input_columns is None:
            return frame
        _require(self.input_columns, lambda name: name in frame.columns)
        return frame[list(self.input_columns)]

    def score(self, frame: pd.DataFrame) -> Scores:
        """Any failure of the model becomes a ModelInputError: whatever a model raises, the
        records it was given are the only thing a client can change."""
        try:
            output = self.pyfunc.predict(frame)
            scores = _normalize(output, len(frame))
        except INPUT_ERRORS as error:
            raise ModelInputError(_short(error)) from None
        except Exception as error:
            raise ModelInputError(f"model error: {type(error).__name__}: {_short(error)}") \
                from None
        if len(scores.predictions) != len(frame) or len(scores.scores) != len(frame):
            raise ModelInputError(f"model error: {len(scores.predictions)} predictions "
                                  f"for {len(frame)} records")
        return scores


def _require(columns: tuple[str, ...], present: Callable[[str], bool]) -> None:
    missing = [name for name in columns if not present(name)]
    if missing:
        raise ModelInputError(f"missing input columns: {', '.join(missing)}")


def resolve_ref(model_uri: str) -> ModelRef:
    """The model's name and version as they should appear in responses and metrics."""
    if model_uri.startswith("models:/"):
        name, _, selector = model_uri.removeprefix("models:/").partition("@")
        client = MlflowClient()
        if selector:
            version = client.get_model_version_by_alias(name, selector).version
        else:
            name, _, number = name.partition("/")
            version = number or "latest"
        return ModelRef(name=name, version=str(version))
    if model_uri.startswith("runs:/"):
        run_id, _, path = model_uri.removeprefix("runs:/").partition("/")
        return ModelRef(name=path or "model", version=run_id)
    return ModelRef(name=model_uri.rstrip("/").rsplit("/", 1)[-1], version="local")


def load_model(model_uri: str) -> LoadedModel:
    try:
        ref = resolve_ref(model_uri)
        pyfunc = mlflow.pyfunc.load_model(model_uri)
    except (MlflowException, OSError) as error:
        raise ConfigurationError(f"cannot load model {model_uri}: {_short(error)}") from None
    schema = pyfunc.metadata.get_input_schema()
    columns = None
    types: dict[str, str] = {}
    if schema is not None and schema.has_input_names():
        columns = tuple(schema.input_names())
        types = {spec.name: getattr(spec.type, "name", str(spec.type)) for spec in schema.inputs}
    log.info("model loaded", extra={"model": ref.name, "version": ref.version})
    return LoadedModel(ref=ref, pyfunc=pyfunc, input_columns=columns, input_types=types)


def _normalize(output: Any, rows: int) -> Scores:
    if isinstance(output, pd.DataFrame):
        target = "prediction" if "prediction" in output.columns else output.columns[0]
        predictions = output[target].tolist()
        score_columns = [c for c in output.columns if c != target]
        scores = output[score_columns].astype(float).to_dict("records") if score_columns \
            else [{} for _ in range(rows)]
        return Scores(predictions, [{str(k): v for k, v in row.items()} for row in scores])
    array = np.asarray(output)
    if array.ndim == 2:
        names = [str(i) for i in range(array.shape[1])]
        return Scores(array.argmax(axis=1).tolist(),
                      [dict(zip(names, row, strict=True)) for row in array.astype(float).tolist()])
    return Scores(array.reshape(-1).tolist(), [{} for _ in range(rows)])


def _short(error: BaseException) -> str:
    message = str(getattr(error, "message", None) or error).strip()
    return message.splitlines()[0][:MAX_REASON_CHARS] if message else type(error).__name__
