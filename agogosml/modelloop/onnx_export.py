"""The ONNX fast path's model-loop side: a fitted pipeline converted with skl2onnx when its
run is logged, the graph checked against the pipeline on the holdout (by the gate, or at
registration when there was no gate), and the outcome recorded.

- Training logs the graph as the run artifact `onnx/model.onnx`, beside the MLflow model,
  and tags the run `agogosml.onnx` = "converted"; a pipeline skl2onnx cannot convert (or a
  sharded model, which is not one pipeline) is tagged "failed: <reason>" instead.
- Parity: the holdout's features, cast to the signature as the app casts them, scored by
  the graph (as the app scores it) and by the pyfunc; the predictions (the most probable
  class) must be identical and every probability within 1e-5. The run's tag becomes
  "parity" or "failed: parity: <what differed>".
- Registration copies the run's outcome to the model version's tag `agogosml.onnx`; the app
  scores through the graph only when it says "parity".

None of this ever blocks training, the gate or registration: at worst the version is
served through its pyfunc, as before, and the tag says why.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from agogosml.modelloop.checks import Check
from agogosml.services.app.onnx import (
    CONVERTED,
    ONNX_ARTIFACT,
    ONNX_TAG,
    PARITY,
    PARITY_ATOL,
    OnnxModel,
)
from agogosml.services.app.signature import Signature, signature_of

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 300
CHECK_NAME = "onnx_parity"


def _tensor_types() -> dict[str, Any]:
    from skl2onnx.common.data_types import (
        BooleanTensorType,
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    return {"double": DoubleTensorType, "float": FloatTensorType, "long": Int64TensorType,
            "integer": Int64TensorType, "boolean": BooleanTensorType,
            "string": StringTensorType}


def _register_double_imputer() -> None:
    """skl2onnx turns SimpleImputer into ONNX's Imputer, which onnxruntime runs on float32
    only; a numeric imputer is here `Where(IsNaN(x), statistics, x)` in the input's own
    type, so that a pipeline on doubles computes in doubles (a linear model's graph then
    matches scikit-learn to ~1e-16). Other imputers keep skl2onnx's converter."""
    from skl2onnx import update_registered_converter
    from skl2onnx.algebra.onnx_ops import OnnxIsNaN, OnnxWhere
    from skl2onnx.common.data_types import guess_numpy_type
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer
    from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes
    from sklearn.impute import SimpleImputer

    def converter(scope: Any, operator: Any, container: Any) -> None:
        imputer = operator.raw_operator
        source = operator.inputs[0]
        dtype = guess_numpy_type(source.type)
        missing = imputer.missing_values
        numeric_nan = isinstance(missing, float) and np.isnan(missing)
        if dtype not in (np.float32, np.float64) or not numeric_nan:
            convert_sklearn_imputer(scope, operator, container)
            return
        opset = container.target_opset
        OnnxWhere(OnnxIsNaN(source, op_version=opset), imputer.statistics_.astype(dtype),
                  source, op_version=opset, output_names=operator.outputs[:1]
                  ).add_to(scope, container)

    update_registered_converter(SimpleImputer, "SklearnSimpleImputer",
                                calculate_sklearn_imputer_output_shapes, converter,
                                overwrite=True)


def convert(pipeline: Any, signature: Signature) -> bytes:
    """The pipeline as an ONNX graph with one input per signature column; raises
    ValueError with the reason when it cannot be converted."""
    types = _tensor_types()
    untyped = [column.name for column in signature.columns if column.type not in types]
    if untyped:
        raise ValueError(f"columns of a type the graph cannot take: {', '.join(untyped)}")
    initial = [(column.name, types[str(column.type)]([None, 1])) for column in signature.columns]
    try:
        from skl2onnx import convert_sklearn

        _register_double_imputer()
        options = {id(pipeline.steps[-1][1]): {"zipmap": False}} \
            if hasattr(pipeline, "steps") else {}
        graph = convert_sklearn(pipeline, initial_types=initial, options=options)
        return bytes(graph.SerializeToString())
    except Exception as error:  # skl2onnx raises anything from its converters
        raise ValueError(_reason(error)) from None


def log_onnx(pipeline: Any, model_uri: str) -> str:
    """In the active run: the pipeline's graph as `onnx/model.onnx` and the run tag; returns
    the tag's value. Never raises for a pipeline that cannot be converted."""
    signature = signature_of(mlflow.models.get_model_info(model_uri).signature.inputs)
    if signature is None:
        outcome = "failed: conversion: the model has no named input signature"
    else:
        try:
            graph = convert(pipeline, signature)
            with tempfile.TemporaryDirectory() as directory:
                path = Path(directory) / Path(ONNX_ARTIFACT).name
                path.write_bytes(graph)
                mlflow.log_artifact(str(path), str(Path(ONNX_ARTIFACT).parent))
            outcome = CONVERTED
        except ValueError as error:
            outcome = f"failed: conversion: {error}"
    mlflow.set_tag(ONNX_TAG, outcome[:MAX_REASON_CHARS])
    if outcome != CONVERTED:
        log.info("no ONNX graph: the model is served through its pyfunc",
                 extra={"reason": outcome})
    return outcome


def record_not_converted(reason: str) -> None:
    """In the active run: why no graph was made (a sharded model, say)."""
    mlflow.set_tag(ONNX_TAG, f"failed: {reason}"[:MAX_REASON_CHARS])


def check_parity(run_id: str, pyfunc: Any, features: pd.DataFrame,
                 expected: np.ndarray[Any, Any] | None = None) -> Check:
    """The graph against the pyfunc on `features` (`expected`: the pyfunc's output on
    them, when already known); records the outcome as the run's tag. Informational: the
    check always passes, its reason says whether the graph will be served."""
    client = MlflowClient()
    outcome = client.get_run(run_id).data.tags.get(ONNX_TAG)
    if outcome is None:
        outcome = "failed: no ONNX graph was logged with the run"
    elif outcome.startswith("failed"):
        pass
    else:
        outcome = _parity(run_id, pyfunc, features, expected)
        client.set_tag(run_id, ONNX_TAG, outcome[:MAX_REASON_CHARS])
    served = "the graph is served" if outcome == PARITY else "served through the pyfunc"
    detail = f"on {len(features)} holdout rows" if outcome == PARITY else outcome
    return Check(CHECK_NAME, True, f"ONNX {detail}; {served}")


def _parity(run_id: str, pyfunc: Any, features: pd.DataFrame,
            expected: np.ndarray[Any, Any] | None) -> str:
    try:
        signature = signature_of(pyfunc.metadata.get_input_schema())
        if signature is None:
            return "failed: parity: the model has no named input signature"
        with tempfile.TemporaryDirectory() as directory:
            path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=ONNX_ARTIFACT,
                                                       dst_path=directory)
            graph = OnnxModel.from_bytes(Path(path).read_bytes())
        columns = {name: features[name].tolist() for name in signature.names}
        cast = signature.cast_columns(columns, len(features))
        rows = list(range(len(features))) if cast.kept is None else cast.kept
        if expected is None:
            expected = np.asarray(pyfunc.predict(features), dtype=float)
        expected = np.asarray(expected, dtype=float)[rows]
        got = graph.probabilities_of(cast.columns)
    except Exception as error:  # onnxruntime and MLflow raise many kinds
        return f"failed: parity: {_reason(error)}"
    if got.shape != expected.shape:
        return f"failed: parity: probabilities shaped {got.shape}, not {expected.shape}"
    differing = int((got.argmax(axis=1) != expected.argmax(axis=1)).sum())
    if differing:
        return f"failed: parity: {differing} of {len(rows)} predictions differ"
    worst = float(np.abs(got - expected).max()) if got.size else 0.0
    if not worst <= PARITY_ATOL:
        return f"failed: parity: probabilities differ by up to {worst:.3g} (limit {PARITY_ATOL})"
    return PARITY


def outcome_for_registration(run_id: str) -> str:
    """The run's outcome for its model version's tag; a graph not yet checked (no gate ran,
    as for a bootstrapped champion) is checked now, on the run's holdout."""
    outcome = MlflowClient().get_run(run_id).data.tags.get(ONNX_TAG)
    if outcome == CONVERTED:
        from agogosml.modelloop.tracking import MODEL_URI_TAG
        from agogosml.modelloop.training import load_holdout, load_manifest

        try:
            schema = load_manifest(run_id).schema
            features = load_holdout(run_id)[list(schema.features)]
            model_uri = MlflowClient().get_run(run_id).data.tags[MODEL_URI_TAG]
            pyfunc = mlflow.pyfunc.load_model(model_uri)
        except Exception as error:  # the holdout or the model cannot be read
            return f"failed: parity: {_reason(error)}"[:MAX_REASON_CHARS]
        check_parity(run_id, pyfunc, features)
        outcome = MlflowClient().get_run(run_id).data.tags.get(ONNX_TAG)
    return (outcome or "failed: no ONNX graph was logged with the run")[:MAX_REASON_CHARS]


def _reason(error: BaseException) -> str:
    """The error's type and first line, and its cause's: skl2onnx wraps the real reason (a
    protobuf type error, say) in a message that prints the node's attributes."""
    def line(e: BaseException) -> str:
        return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:160]}"

    cause = error.__cause__ or error.__context__
    text = line(error) if cause is None else f"{line(error)} (cause: {line(cause)})"
    return text[:MAX_REASON_CHARS]
