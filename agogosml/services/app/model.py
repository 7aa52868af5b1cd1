"""Loading an MLflow pyfunc model and scoring a frame with it.

A model's output becomes a prediction per row plus named scores: a DataFrame's
`prediction` column (or its first column) is the prediction and every other
column a score; a 2-D array's columns are scores and the prediction is the
index of the highest one; anything 1-D is the prediction alone.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from agogosml.envelope import ModelRef
from agogosml.errors import ConfigurationError, ModelInputError
from agogosml.services.app.features import ModelInput
from agogosml.services.app.onnx import (
    ONNX_ARTIFACT,
    ONNX_TAG,
    PARITY,
    PARITY_ATOL,
    NotRepresentable,
    OnnxModel,
)
from agogosml.services.app.signature import MISSING, Signature, signature_of, zero_value

log = logging.getLogger(__name__)

RUN_ID_TAG = "agogosml.run_id"
"""The model loop's tag naming a version's run (agogosml.modelloop.tracking)."""

INPUT_ERRORS = (MlflowException, ValueError, TypeError, KeyError)
MAX_REASON_CHARS = 500


PREDICTION = "prediction"


@dataclass(frozen=True, slots=True)
class Output:
    """One output of scoring: the prediction, or a named score."""

    name: str
    datatype: str
    """As the Open Inference Protocol names it: INT64, FP64, BOOL or BYTES."""


@dataclass(frozen=True, slots=True)
class Scores:
    predictions: list[Any]
    scores: list[dict[str, float]]


@dataclass(frozen=True)
class LoadedModel:
    ref: ModelRef
    pyfunc: Any
    signature: Signature | None
    """The named input columns and their types; None when the model names no inputs."""
    outputs: tuple[Output, ...] | None = None
    """What scoring returns, learnt by scoring the model's input example at load; None
    when that failed, and then the model is not ready to serve."""
    onnx: OnnxModel | None = None
    """The version's ONNX graph, when its registration recorded parity with the pyfunc:
    what the pipeline path (`score_input`) scores with. See agogosml.services.app.onnx."""

    @property
    def input_columns(self) -> tuple[str, ...] | None:
        return None if self.signature is None else self.signature.names

    def inputs(self, records: list[dict[str, Any]]) -> ModelInput:
        """The records as the model takes them: its input columns in order, cast to the
        signature; records that do not fit are refused one by one. Other fields (personal
        data, ids) are never turned into columns, which also halves the cost of building
        the frame."""
        if self.signature is None:
            return ModelInput(pd.DataFrame.from_records(records), None, len(records))
        columns = {name: [record.get(name, MISSING) for record in records]
                   for name in self.signature.names}
        cast = self.signature.cast_columns(columns, len(records))
        if cast.kept is None:
            return ModelInput(cast.columns, columns, len(records))
        kept_columns = {name: [values[row] for row in cast.kept]
                        for name, values in columns.items()}
        return ModelInput(cast.columns, kept_columns, len(cast.kept), cast.kept, cast.refused)

    def score_input(self, inputs: ModelInput) -> Scores:
        """The pipeline path's scoring: through the ONNX graph when the version has one
        with parity (from the cast columns, no frame), else the pyfunc on the frame."""
        if self.onnx is None or isinstance(inputs.cast, pd.DataFrame):
            return self.score(inputs.frame)
        try:
            probabilities = self.onnx.probabilities_of(inputs.cast)
        except NotRepresentable:
            return self.score(inputs.frame)
        except Exception as error:  # onnxruntime's errors have no common base
            raise ModelInputError(f"model error: {type(error).__name__}: {reason(error)}") \
                from None
        if probabilities.ndim != 2 or len(probabilities) != inputs.records:
            raise ModelInputError(f"model error: {len(probabilities)} predictions "
                                  f"for {inputs.records} records")
        names = [str(i) for i in range(probabilities.shape[1])]
        return Scores(probabilities.argmax(axis=1).tolist(),
                      [dict(zip(names, row, strict=True)) for row in probabilities.tolist()])

    def frame(self, columns: dict[str, list[Any]], rows: int) -> pd.DataFrame:
        """A whole request's columns cast to the signature; any record that does not fit
        refuses the request, naming the first few and why."""
        if self.signature is None:
            return pd.DataFrame(columns)
        cast = self.signature.cast(columns, rows)
        if cast.refused:
            raise ModelInputError(cast.first_problems())
        return cast.frame

    def predict(self, frame: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        """The model's raw output. Any failure of the model becomes a ModelInputError:
        whatever a model raises, the records it was given are the only thing a client
        can change."""
        try:
            if params is None:
                return self.pyfunc.predict(frame)
            return self.pyfunc.predict(frame, params=params)
        except INPUT_ERRORS as error:
            raise ModelInputError(reason(error)) from None
        except Exception as error:
            raise ModelInputError(f"model error: {type(error).__name__}: {reason(error)}") \
                from None

    def score(self, frame: pd.DataFrame) -> Scores:
        output = self.predict(frame)
        try:
            scores = _normalize(output, len(frame))
        except INPUT_ERRORS as error:
            raise ModelInputError(f"model output: {reason(error)}") from None
        if len(scores.predictions) != len(frame) or len(scores.scores) != len(frame):
            raise ModelInputError(f"model error: {len(scores.predictions)} predictions "
                                  f"for {len(frame)} records")
        return scores


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
        raise ConfigurationError(f"cannot load model {model_uri}: {reason(error)}") from None
    model = LoadedModel(ref=ref, pyfunc=pyfunc,
                        signature=signature_of(pyfunc.metadata.get_input_schema()))
    scored = _score_example(model)
    outputs = None if scored is None else _outputs_of(scored[1])
    onnx = None if scored is None else _onnx_of(model, model_uri, *scored)
    log.info("model loaded", extra={"model": ref.name, "version": ref.version,
                                    "ready": outputs is not None, "onnx": onnx is not None})
    return replace(model, outputs=outputs, onnx=onnx)


def _onnx_of(model: LoadedModel, model_uri: str, example: pd.DataFrame,
             expected: Scores) -> OnnxModel | None:
    """The version's ONNX graph, when its tag records parity, and when it scores the
    input example as the pyfunc did (`expected`); None otherwise (the pyfunc serves)."""
    if not model_uri.startswith("models:/") or model.signature is None:
        return None
    try:
        client = MlflowClient()
        version = client.get_model_version(model.ref.name, model.ref.version)
        if version.tags.get(ONNX_TAG) != PARITY:
            return None
        run_id = version.tags.get(RUN_ID_TAG) or version.run_id
        with tempfile.TemporaryDirectory() as directory:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=ONNX_ARTIFACT, dst_path=directory)
            onnx = OnnxModel.from_bytes(Path(path).read_bytes())
        records = [{str(key): value for key, value in row.items()}
                   for row in example.to_dict("records")]
        got = replace(model, onnx=onnx).score_input(model.inputs(records))
        same = got.predictions == expected.predictions and all(
            abs(got_row[name] - row[name]) <= PARITY_ATOL
            for got_row, row in zip(got.scores, expected.scores, strict=True) for name in row)
    except Exception as error:  # MLflow, onnxruntime: the pyfunc serves whatever failed
        log.warning("the ONNX graph is not used", extra={
            "model": model.ref.name, "version": model.ref.version,
            "error": f"{type(error).__name__}: {reason(error)}"})
        return None
    if not same:
        log.warning("the ONNX graph is not used: it scores the input example differently",
                    extra={"model": model.ref.name, "version": model.ref.version})
        return None
    return onnx


def _score_example(model: LoadedModel) -> tuple[pd.DataFrame, Scores] | None:
    """The model's input example (or, without one, a record of the signature's zero
    values) and its scores; None when the model cannot score it. This first call, made
    before the model takes traffic, is the proof that it can serve; its outputs are what
    the model says it returns, and its scores what an ONNX graph must match."""
    try:
        example = _example(model)
        return example, model.score(example)
    except (ModelInputError, *INPUT_ERRORS) as error:
        log.warning("the model cannot score its input example",
                    extra={"model": model.ref.name, "version": model.ref.version,
                           "error": type(error).__name__})
        return None


def _outputs_of(scores: Scores) -> tuple[Output, ...]:
    """The outputs scoring returns, as the example's scores show them."""
    return (Output(PREDICTION, datatype_of(scores.predictions)),
            *(Output(name, "FP64") for name in (scores.scores[0] if scores.scores else {})))


def _example(model: LoadedModel) -> pd.DataFrame:
    example = getattr(model.pyfunc, "input_example", None)
    if isinstance(example, pd.DataFrame) and len(example):
        return example.head(1) if model.signature is None \
            else example.head(1)[list(model.signature.names)]
    if model.signature is None:
        raise ValueError("no input example and no signature to make one from")
    zero = {name: [zero_value(model.signature.type_of(name))]
            for name in model.signature.names}
    return model.frame(zero, 1)


def datatype_of(values: list[Any]) -> str:
    """The Open Inference Protocol datatype that holds every value."""
    if all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "FP64"
    return "BYTES"


def reason(error: BaseException) -> str:
    """An error's message, reduced to its reason. MLflow's schema errors open with a
    printout of the frame and the schema, and end with the reason after "Error: "."""
    message = str(getattr(error, "message", None) or error).strip()
    if message.startswith("Failed to enforce schema") and "Error: " in message:
        message = message.rsplit("Error: ", 1)[1]
    return message.splitlines()[0][:MAX_REASON_CHARS] if message else type(error).__name__


def _normalize(output: Any, rows: int) -> Scores:
    if isinstance(output, pd.DataFrame):
        target = PREDICTION if PREDICTION in output.columns else output.columns[0]
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


