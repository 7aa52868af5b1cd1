"""The ONNX fast path's model-loop side, on a real MLflow store: the graph is logged with
the run, the gate checks parity with the pyfunc and registration records the outcome on
the version; a pipeline skl2onnx cannot convert is registered all the same, served
through its pyfunc, with the reason on the version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from agogosml.demo.data import FEATURES, events
from agogosml.modelloop import estimators, training
from agogosml.modelloop.gate import evaluate
from agogosml.modelloop.registry import bootstrap_champion, register_challenger
from agogosml.modelloop.tracking import Tracking
from agogosml.modelloop.training import TrainConfig, TrainResult, train
from agogosml.services.app.model import load_model
from agogosml.services.app.onnx import CONVERTED, ONNX_ARTIFACT, ONNX_TAG, PARITY
from tests.modelloop.conftest import named

pytestmark = pytest.mark.mlflow

RECORDS = [{name: item[name] for name in FEATURES} for item in events(20, seed=3)]


def onnx_check(report: Any) -> Any:
    return next(check for check in report.checks if check.name == "onnx_parity")


def test_without_a_gate_registration_checks_parity_itself(
        tracking: Tracking, demo_csv: Path) -> None:
    mine = named(tracking, "onnx-bootstrap")
    trained = train(mine, TrainConfig(demo_csv))
    client = MlflowClient()
    assert client.get_run(trained.run_id).data.tags[ONNX_TAG] == CONVERTED
    assert [item.path for item in client.list_artifacts(trained.run_id, "onnx")] \
        == [ONNX_ARTIFACT]
    version = bootstrap_champion(mine, trained.run_id)
    assert client.get_model_version("onnx-bootstrap", version).tags[ONNX_TAG] == PARITY
    assert client.get_run(trained.run_id).data.tags[ONNX_TAG] == PARITY


def test_the_gate_checks_parity_and_registration_records_it(
        tracking: Tracking, baseline: TrainResult) -> None:
    mine = named(tracking, "onnx-parity")
    report = evaluate(mine, baseline.run_id)
    check = onnx_check(report)
    assert check.passed
    assert check.reason.startswith("ONNX on ")
    assert check.reason.endswith("the graph is served")
    assert report.passed, report.summary()
    version = register_challenger(mine, report)
    assert MlflowClient().get_model_version("onnx-parity", version).tags[ONNX_TAG] == PARITY
    model = load_model(f"models:/onnx-parity/{version}")
    assert model.onnx is not None


def _unconvertible(*args: Any) -> Pipeline:
    """The loop's pipeline with a step skl2onnx has no converter for (a FunctionTransformer
    of a numpy function: scikit-learn and skops take it, skl2onnx does not)."""
    pipeline = estimators.build_pipeline(*args)
    return Pipeline([pipeline.steps[0], ("same", FunctionTransformer(np.positive)),
                     pipeline.steps[1]])


def test_a_pipeline_skl2onnx_cannot_convert_is_registered_and_served_by_its_pyfunc(
        tracking: Tracking, demo_csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(training, "build_pipeline", _unconvertible)
    monkeypatch.setitem(estimators.SKOPS_TRUSTED_TYPES, "logistic_regression",
                        ("numpy.dtype", "numpy.positive"))
    mine = named(tracking, "onnx-unconvertible")
    trained = train(mine, TrainConfig(demo_csv))
    assert not MlflowClient().list_artifacts(trained.run_id, "onnx")
    report = evaluate(mine, trained.run_id)
    check = onnx_check(report)
    assert check.passed, "the ONNX check never blocks a registration"
    assert "failed: conversion:" in check.reason
    assert "served through the pyfunc" in check.reason
    assert report.passed, report.summary()
    version = register_challenger(mine, report)
    tag = MlflowClient().get_model_version("onnx-unconvertible", version).tags[ONNX_TAG]
    assert tag.startswith("failed: conversion:"), tag
    assert "FunctionTransformer" in tag, tag
    model = load_model(f"models:/onnx-unconvertible/{version}")
    assert model.onnx is None
    assert model.outputs is not None
    scores = model.score_input(model.inputs(RECORDS))
    assert len(scores.predictions) == len(RECORDS)
