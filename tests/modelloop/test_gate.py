"""The gate's checks, each failing for the reason it names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest

from agogosml.demo.data import FEATURES
from agogosml.modelloop import checks
from agogosml.modelloop.canned import CannedExample, demo_examples, load_examples
from agogosml.modelloop.dataset import FeatureSchema
from agogosml.modelloop.errors import ModelLoopError
from agogosml.modelloop.gate import GateLimits, evaluate
from agogosml.modelloop.tracking import Tracking
from agogosml.modelloop.training import TrainConfig, TrainResult, train
from tests.modelloop.conftest import named

SCHEMA = FeatureSchema("y", ("amount", "channel", "card_present"), ("amount",), ("channel",),
                       ("card_present",))
TYPES = {"amount": "double", "channel": "string", "card_present": "boolean"}


def test_the_signature_must_name_the_features_in_order_with_fitting_types() -> None:
    assert checks.signature_matches(TYPES, list(TYPES), SCHEMA).passed
    assert not checks.signature_matches(None, None, SCHEMA).passed
    reordered = dict(reversed(TYPES.items()))
    assert "are not the features" in checks.signature_matches(reordered, None, SCHEMA).reason
    fitted = checks.signature_matches(TYPES, ["amount", "channel"], SCHEMA)
    assert fitted.reason == ("the pipeline was fitted on ['amount', 'channel'], not on "
                             "['amount', 'channel', 'card_present']")
    wrong = checks.signature_matches({**TYPES, "amount": "string"}, None, SCHEMA)
    assert wrong.reason == "signature types do not fit: amount: string for a numeric feature"


def test_personal_fields_as_inputs_fail() -> None:
    check = checks.no_personal_features(["amount", "email"], ["email", "phone"])
    assert (check.passed, check.reason) == (False, "personal fields are model inputs: email")


@pytest.mark.parametrize(("output", "reason"), [
    (np.array([[0.5, 0.5], [np.nan, 1.0]]), "1 NaN or infinite scores"),
    (np.array([[1.2, -0.2], [0.5, 0.5]]), "2 scores outside [0, 1]"),
    (np.array([[0.5, 0.6], [0.5, 0.5]]), "class probabilities do not sum to 1"),
    (np.array([0.5, 0.5]), "output shape (2,), expected (2, 2)"),
])
def test_scores_must_be_probabilities(output: Any, reason: str) -> None:
    check = checks.probabilities_valid(output, 2)
    assert (check.passed, check.reason) == (False, reason)


def test_the_champion_comparison_allows_the_configured_drop() -> None:
    champion = {"roc_auc": 0.80, "average_precision": 0.40, "log_loss": 0.30}
    close = {"roc_auc": 0.796, "average_precision": 0.30, "log_loss": 0.31}
    assert checks.not_worse_than_champion(close, champion, "3", {"roc_auc": 0.005}).passed
    worse = checks.not_worse_than_champion(close, champion, "3",
                                           {"roc_auc": 0.001, "log_loss": 0.005})
    assert worse.reason == (
        "worse than champion v3: roc_auc 0.7960 vs champion's 0.8000 (worse by 0.0040, "
        "limit 0.001); log_loss 0.3100 vs champion's 0.3000 (worse by 0.0100, limit 0.005)")
    assert checks.not_worse_than_champion(close, None, None, {"roc_auc": 0.0}).passed


def test_canned_examples_come_from_a_file(baseline: TrainResult, tmp_path: Path) -> None:
    fraud, legit = demo_examples()
    path = tmp_path / "canned.json"
    path.write_text(json.dumps([{"name": "mislabelled", "record": legit.record, "expected": 1}]))
    model = mlflow.pyfunc.load_model(baseline.model_uri)
    check = checks.canned_examples_pass(model, load_examples(path), FEATURES)
    assert not check.passed
    assert check.reason.startswith("mislabelled: P(1)=0.0")
    assert checks.canned_examples_pass(model, (fraud, legit), FEATURES).passed
    partial = CannedExample("partial", {"amount": 1.0}, 0)
    assert "lack features" in checks.canned_examples_pass(model, (partial,), FEATURES).reason


def test_slow_scoring_and_a_high_floor_fail_the_gate(tracking: Tracking,
                                                     baseline: TrainResult) -> None:
    report = evaluate(named(tracking, "strict"), baseline.run_id,
                      GateLimits(max_latency_s=0.0, min_roc_auc=0.99), examples=())
    failed = {check.name: check.reason for check in report.failures}
    assert set(failed) == {"batch_latency", "minimum_roc_auc"}
    assert failed["batch_latency"].endswith("above the limit of 0.0s")
    canned = next(check for check in report.checks if check.name == "canned_examples")
    assert canned.reason == "no canned examples configured"


@pytest.mark.parametrize(("estimator", "params"), [
    ("random_forest", {"n_estimators": 50}),
    ("hist_gradient_boosting", {"max_iter": 20}),
])
def test_tree_models_are_logged_loaded_and_pass_the_gate(
        tracking: Tracking, demo_csv: Path, estimator: str, params: dict[str, Any]) -> None:
    trees = named(tracking, "trees")
    trained = train(trees, TrainConfig(demo_csv, estimator=estimator, params=params))
    report = evaluate(trees, trained.run_id)
    assert report.passed, report.summary()
    onnx = next(check for check in report.checks if check.name == "onnx_parity")
    assert onnx.passed, "informational: whatever the graph's outcome"
    assert onnx.reason.startswith("ONNX "), onnx.reason


def test_a_canned_example_the_model_cannot_read_fails_with_the_reason(
        baseline: TrainResult) -> None:
    fraud, _ = demo_examples()
    unreadable = CannedExample("unreadable", {**fraud.record, "amount": "a lot"}, 1)
    model = mlflow.pyfunc.load_model(baseline.model_uri)
    check = checks.canned_examples_pass(model, (unreadable,), FEATURES)
    assert not check.passed
    assert check.reason.startswith("the model cannot score the canned examples: ")


def test_a_run_the_loop_did_not_make_is_refused(tracking: Tracking) -> None:
    with pytest.raises(ModelLoopError, match=r"has no artifact model_loop\.json"):
        evaluate(tracking, "0123456789abcdef0123456789abcdef")
