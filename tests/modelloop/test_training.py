"""Training records params, metrics, dataset lineage, profile, holdout and model in MLflow."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from agogosml.demo.data import FEATURES, NUMERIC_FEATURES, PERSONAL_FIELDS
from agogosml.modelloop.dataset import DatasetSpec, file_digest, write_demo_dataset
from agogosml.modelloop.errors import DatasetError
from agogosml.modelloop.profile import ReferenceProfile
from agogosml.modelloop.scores import METRICS
from agogosml.modelloop.tracking import HOLDOUT_ARTIFACT, Tracking
from agogosml.modelloop.training import (
    TrainConfig,
    TrainResult,
    load_holdout,
    load_manifest,
    load_reference_profile,
    train,
)
from tests.modelloop.conftest import ROWS


def test_training_twice_with_the_same_seed_gives_the_same_metrics(
        tracking: Tracking, demo_csv: Path, baseline: TrainResult) -> None:
    again = train(tracking, TrainConfig(demo_csv))
    assert again.run_id != baseline.run_id
    assert again.metrics == baseline.metrics
    assert load_holdout(again.run_id).equals(load_holdout(baseline.run_id))


def test_json_lines_and_csv_of_the_same_rows_train_the_same_model(
        tracking: Tracking, tmp_path: Path, baseline: TrainResult) -> None:
    jsonl = write_demo_dataset(tmp_path / "transactions.jsonl", ROWS, 7)
    trained = train(tracking, TrainConfig(jsonl))
    assert trained.metrics == baseline.metrics
    assert trained.dataset_digest == file_digest(jsonl) != baseline.dataset_digest


def test_the_run_has_params_holdout_metrics_and_the_dataset_as_input(
        demo_csv: Path, baseline: TrainResult) -> None:
    run = MlflowClient().get_run(baseline.run_id)
    assert set(METRICS) <= set(run.data.metrics)
    assert run.data.metrics["roc_auc"] == baseline.metrics["roc_auc"] > 0.75
    assert run.data.params["estimator"] == "logistic_regression"
    assert run.data.params["seed"] == "7"
    assert run.data.params["features"] == ",".join(FEATURES)
    assert run.data.params["classifier.max_iter"] == "1000"
    assert run.inputs is not None
    [dataset_input] = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == file_digest(demo_csv) == baseline.dataset_digest
    assert str(demo_csv.resolve()) in dataset_input.dataset.source
    assert {(tag.key, tag.value) for tag in dataset_input.tags} == {
        ("mlflow.data.context", "training")}


def test_the_model_signature_holds_the_features_and_no_personal_field(
        baseline: TrainResult) -> None:
    model = mlflow.pyfunc.load_model(baseline.model_uri)
    inputs = model.metadata.get_input_schema()
    assert inputs.input_names() == list(FEATURES)
    assert not set(inputs.input_names()) & set(PERSONAL_FIELDS)
    holdout = load_holdout(baseline.run_id)
    scores = model.predict(holdout[list(FEATURES)].head(5))
    assert scores.shape == (5, 2), "pyfunc answers predict_proba"


def test_the_holdout_is_stored_without_personal_fields(baseline: TrainResult) -> None:
    holdout = load_holdout(baseline.run_id)
    assert list(holdout.columns) == [*FEATURES, "is_fraud"]
    assert len(holdout) == ROWS // 4
    manifest = load_manifest(baseline.run_id)
    assert manifest.holdout_rows == len(holdout)
    assert manifest.dataset_digest == baseline.dataset_digest
    assert manifest.schema.numeric == NUMERIC_FEATURES
    artifacts = [item.path for item in MlflowClient().list_artifacts(baseline.run_id, "holdout")]
    assert artifacts == [HOLDOUT_ARTIFACT]


def test_the_reference_profile_is_logged_and_loads_back(baseline: TrainResult) -> None:
    profile = load_reference_profile(baseline.run_id)
    assert profile.rows == ROWS - ROWS // 4
    assert set(profile.numeric) == set(NUMERIC_FEATURES)
    assert set(profile.categorical) == {"merchant_category", "channel", "country",
                                        "card_present"}
    assert set(profile.categorical["card_present"].shares) == {"True", "False"}
    hour = profile.numeric["hour"]
    assert (hour.min, hour.max) == (0.0, 23.0)
    assert len(hour.shares) == len(hour.edges) - 1
    assert sum(hour.shares) == pytest.approx(1.0)
    assert sum(profile.prediction.shares) == pytest.approx(1.0)
    assert profile.prediction.label_shares["1"] == pytest.approx(0.11, abs=0.02)
    assert ReferenceProfile.from_json(profile.to_json()) == profile


def test_personal_fields_are_never_features(tracking: Tracking, demo_csv: Path) -> None:
    spec = DatasetSpec(features=(*FEATURES, "email"))
    with pytest.raises(DatasetError, match="personal fields cannot be features: email"):
        train(tracking, TrainConfig(demo_csv, spec))


def test_a_label_that_is_not_binary_is_refused(tracking: Tracking, demo_csv: Path,
                                               tmp_path: Path) -> None:
    frame = pd.read_csv(demo_csv).assign(is_fraud=lambda f: f["hour"] % 3)
    path = tmp_path / "three-classes.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DatasetError, match="must hold both 0 and 1"):
        train(tracking, TrainConfig(path))
