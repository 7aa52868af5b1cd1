"""Sharded (SISA) training on a real MLflow store: one python_function model that serves like
a single one, the shards kept with the run, and an erasure that refits only the shard that
held the forgotten subject."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import roc_auc_score

from agogosml.demo.data import FEATURES, events
from agogosml.modelloop.dataset import DEMO_SUBJECT
from agogosml.modelloop.ensemble import SHARDS_SUMMARY_ARTIFACT, shard_name
from agogosml.modelloop.gate import evaluate
from agogosml.modelloop.registry import bootstrap_champion, promote, register_challenger
from agogosml.modelloop.retrain import LoopConfig, retrain
from agogosml.modelloop.shards import held_out, shard_of
from agogosml.modelloop.tracking import Tracking, download_artifact, read_text_artifact
from agogosml.modelloop.training import (
    REUSE_TAG,
    SHARDS_FITTED_TAG,
    SHARDS_REUSED_TAG,
    TrainConfig,
    TrainResult,
    load_holdout,
    train,
)
from agogosml.privacy.lineage import SqlLineageIndex, VersionUse
from agogosml.privacy.lineage.sqlite import SqliteLineageIndex
from agogosml.services.app.model import load_model

SHARDS = 4


@dataclass(frozen=True)
class Sharded:
    tracking: Tracking
    config: TrainConfig
    result: TrainResult


@pytest.fixture(scope="module")
def lineage_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lineage") / "lineage.db"


@pytest.fixture
def index(lineage_path: Path) -> Iterator[SqlLineageIndex]:
    with SqliteLineageIndex(lineage_path) as opened:
        yield opened


@pytest.fixture(scope="module")
def sharded(tracking: Tracking, pseudonymized_csv: Path, lineage_path: Path) -> Sharded:
    loop = replace(tracking, model_name="sharded", lineage_url=f"sqlite:///{lineage_path}")
    config = TrainConfig(pseudonymized_csv, shards=SHARDS)
    return Sharded(loop, config, train(loop, config))


def without(frame: pd.DataFrame, subject: str, path: Path) -> Path:
    frame[frame[DEMO_SUBJECT] != subject].to_csv(path, index=False)
    return path


def trained_subject(frame: pd.DataFrame, config: TrainConfig, nth: int = 0) -> str:
    """A subject whose rows are trained on, not held out."""
    subjects = sorted(subject for subject in frame[DEMO_SUBJECT].unique()
                      if not held_out(subject, config.holdout_fraction, config.seed))
    return str(subjects[nth])


def shard_bytes(run_id: str, index: int) -> bytes:
    with tempfile.TemporaryDirectory() as directory:
        path = download_artifact(run_id, f"shards/{shard_name(index)}/model.skops",
                                 Path(directory))
        return path.read_bytes()


def test_the_sharded_model_answers_like_a_single_one(sharded: Sharded,
                                                     baseline: TrainResult) -> None:
    model = mlflow.pyfunc.load_model(sharded.result.model_uri)
    single = mlflow.pyfunc.load_model(baseline.model_uri)
    assert model.metadata.get_input_schema() == single.metadata.get_input_schema()
    assert model.metadata.get_output_schema() == single.metadata.get_output_schema()
    holdout = load_holdout(sharded.result.run_id)
    scores = np.asarray(model.predict(holdout[list(FEATURES)]))
    assert scores.shape == (len(holdout), 2) == np.asarray(
        single.predict(holdout[list(FEATURES)])).shape
    assert np.allclose(scores.sum(axis=1), 1.0)
    roc_auc = roc_auc_score(holdout["is_fraud"], scores[:, 1])
    assert roc_auc == pytest.approx(sharded.result.metrics["roc_auc"])
    assert roc_auc > 0.75
    shards = [mlflow.sklearn.load_model(
        f"runs:/{sharded.result.run_id}/shards/{shard_name(index)}") for index in range(SHARDS)]
    averaged = np.mean([shard.predict_proba(holdout[list(FEATURES)]) for shard in shards],
                       axis=0)
    assert np.allclose(scores, averaged), "the model is the mean of the run's shard artifacts"
    with pytest.raises(mlflow.exceptions.MlflowException, match="amount"):
        model.predict(holdout[list(FEATURES)].drop(columns="amount"))


def test_the_run_keeps_each_shards_digests_and_says_it_fitted_them_all(
        sharded: Sharded, pseudonymized_frame: pd.DataFrame) -> None:
    run = MlflowClient().get_run(sharded.result.run_id)
    assert run.data.params["shards"] == str(SHARDS)
    assert run.data.tags[SHARDS_FITTED_TAG] == "0,1,2,3"
    assert run.data.tags[SHARDS_REUSED_TAG] == "none"
    assert run.data.tags[REUSE_TAG] == "none asked: every shard fitted"
    summary = json.loads(read_text_artifact(sharded.result.run_id, SHARDS_SUMMARY_ARTIFACT))
    assert summary["reused_from"] is None
    records = summary["shards"]
    assert [record["index"] for record in records] == list(range(SHARDS))
    assert all(record["fitted"] and record["fitted_by_run"] == sharded.result.run_id
               for record in records)
    assert len({record["subject_digest"] for record in records}) == SHARDS
    trained = [s for s in pseudonymized_frame[DEMO_SUBJECT].unique()
               if not held_out(s, 0.25, 7)]
    assert sum(record["subjects"] for record in records) == len(trained)
    assert sum(record["rows"] for record in records) == len(pseudonymized_frame) - len(
        load_holdout(sharded.result.run_id))


def test_gate_registration_and_the_app_take_the_sharded_model(
        sharded: Sharded, baseline: TrainResult, index: SqlLineageIndex,
        pseudonymized_frame: pd.DataFrame) -> None:
    report = evaluate(sharded.tracking, sharded.result.run_id)
    assert report.passed, report.summary()
    assert {check.name for check in report.checks} >= {"signature", "probabilities",
                                                        "canned_examples", "batch_latency"}
    subject = str(pseudonymized_frame[DEMO_SUBJECT].iloc[0])
    assert index.versions_for(subject) == [], "recorded at training, no version yet"
    version = register_challenger(sharded.tracking, report)
    promote(sharded.tracking)
    assert index.versions_for(subject) == [VersionUse(
        "sharded", version, sharded.result.run_id, sharded.result.dataset_digest)]

    records = [{name: item[name] for name in FEATURES} for item in events(20, seed=3)]
    served = load_model("models:/sharded@champion")
    single = load_model(baseline.model_uri)
    assert served.input_columns == single.input_columns
    scores = served.score(served.inputs(records).frame)
    reference = single.score(single.inputs(records).frame)
    assert len(scores.predictions) == len(reference.predictions) == 20
    assert {tuple(row) for row in scores.scores} == {tuple(row) for row in reference.scores} \
        == {("0", "1")}
    assert set(scores.predictions) <= {0, 1}


def test_an_erasure_refits_only_the_forgotten_subjects_shard(
        sharded: Sharded, pseudonymized_frame: pd.DataFrame, index: SqlLineageIndex,
        tmp_path: Path) -> None:
    forgetting = replace(sharded.tracking, model_name="forgetting")
    tainted = bootstrap_champion(forgetting, sharded.result.run_id)
    gone = trained_subject(pseudonymized_frame, sharded.config)
    smaller = without(pseudonymized_frame, gone, tmp_path / "without.csv")

    result = retrain("erasure", LoopConfig(forgetting, replace(sharded.config,
                                                               dataset=smaller)))

    shard = shard_of(gone, SHARDS)
    others = tuple(index for index in range(SHARDS) if index != shard)
    assert (result.fitted_shards, result.reused_shards) == ((shard,), others)
    assert result.reused_from == sharded.result.run_id, "the champion's run by default"
    assert result.registered, result.gate.summary()
    tags = MlflowClient().get_run(result.run_id).data.tags
    assert tags[SHARDS_FITTED_TAG] == str(shard)
    assert tags[SHARDS_REUSED_TAG] == ",".join(map(str, others))
    assert tags[REUSE_TAG] == f"unchanged shards reused from run {sharded.result.run_id}"
    records = json.loads(read_text_artifact(result.run_id, SHARDS_SUMMARY_ARTIFACT))["shards"]
    assert {record["index"]: record["fitted_by_run"] for record in records} == {
        index: result.run_id if index == shard else sharded.result.run_id
        for index in range(SHARDS)}
    for reused in others:
        assert shard_bytes(result.run_id, reused) == shard_bytes(sharded.result.run_id, reused)
    assert shard_bytes(result.run_id, shard) != shard_bytes(sharded.result.run_id, shard)

    versions = {(use.model_name, use.model_version) for use in index.versions_for(gone)}
    assert ("forgetting", tainted) in versions
    assert ("forgetting", result.registered_version) not in versions
    assert result.run_id not in {run.run_id for run in index.runs_for(gone)}
    kept = trained_subject(pseudonymized_frame, sharded.config, 1)
    assert ("forgetting", result.registered_version) in {
        (use.model_name, use.model_version) for use in index.versions_for(kept)}


def test_forgetting_a_held_out_subject_fits_no_shard(
        sharded: Sharded, pseudonymized_frame: pd.DataFrame, tmp_path: Path) -> None:
    gone = next(str(subject) for subject in pseudonymized_frame[DEMO_SUBJECT].unique()
                if held_out(subject, 0.25, 7))
    smaller = without(pseudonymized_frame, gone, tmp_path / "without.csv")
    result = train(sharded.tracking, replace(sharded.config, dataset=smaller), "erasure",
                   reuse_from=sharded.result.run_id)
    assert (result.fitted_shards, result.reused_shards) == ((), tuple(range(SHARDS)))
    holdout = len(load_holdout(result.run_id))
    gone_rows = int((pseudonymized_frame[DEMO_SUBJECT] == gone).sum())
    assert holdout == len(load_holdout(sharded.result.run_id)) - gone_rows


def test_shards_of_another_recipe_are_not_reused(sharded: Sharded) -> None:
    result = train(sharded.tracking, replace(sharded.config, params={"C": 0.5}),
                   reuse_from=sharded.result.run_id)
    assert result.fitted_shards == tuple(range(SHARDS))
    assert result.reused_from is None
    note = MlflowClient().get_run(result.run_id).data.tags[REUSE_TAG]
    assert note.startswith(f"none from run {sharded.result.run_id}: it was trained with "
                           "another recipe")


def test_a_single_model_ignores_shards_to_reuse(sharded: Sharded) -> None:
    """An erasure passes the champion's run whatever the training: one model refits."""
    result = train(sharded.tracking, replace(sharded.config, shards=0),
                   reuse_from=sharded.result.run_id)
    assert (result.shards, result.reused_from) == ((), None)


def test_a_shard_that_cannot_be_had_any_more_is_fitted(
        sharded: Sharded, pseudonymized_frame: pd.DataFrame, tmp_path: Path) -> None:
    """A retired run's artifacts may be deleted: its shards are fitted again instead."""
    source = train(sharded.tracking, sharded.config)
    artifacts = Path(MlflowClient().get_run(source.run_id).info.artifact_uri
                     .removeprefix("file://"))
    shutil.rmtree(artifacts / "shards" / shard_name(1))
    result = train(sharded.tracking, sharded.config, reuse_from=source.run_id)
    assert (result.fitted_shards, result.reused_shards) == ((1,), (0, 2, 3))
