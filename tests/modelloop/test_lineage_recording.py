"""Training records its subjects and registration its version in the lineage index; when
either cannot, nothing is left registered without lineage."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from agogosml.modelloop.dataset import DEMO_SUBJECT, DatasetSpec
from agogosml.modelloop.errors import RegistryError
from agogosml.modelloop.gate import evaluate
from agogosml.modelloop.lineage import LINEAGE_TAG, NOT_RECORDED, LineageRecordError
from agogosml.modelloop.registry import aliases, bootstrap_champion, register_challenger
from agogosml.modelloop.tracking import Tracking
from agogosml.modelloop.training import TrainConfig, TrainResult, train
from agogosml.privacy.lineage import SqlLineageIndex, VersionUse
from agogosml.privacy.lineage.sqlite import SqliteLineageIndex


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SqlLineageIndex]:
    with SqliteLineageIndex(tmp_path / "lineage.db") as opened:
        yield opened


@pytest.fixture(scope="module")
def recorded_run(tracking: Tracking, pseudonymized_csv: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> tuple[Tracking, TrainResult]:
    """A single model trained with an index at a URL."""
    url = f"sqlite:///{tmp_path_factory.mktemp('lineage') / 'lineage.db'}"
    loop = replace(tracking, model_name="lineaged", lineage_url=url)
    return loop, train(loop, TrainConfig(pseudonymized_csv))


def versions(model_name: str) -> int:
    return len(MlflowClient().search_model_versions(f"name='{model_name}'"))


def latest_run(tracking: Tracking) -> Run:
    client = MlflowClient()
    experiment = client.get_experiment_by_name(tracking.experiment)
    assert experiment is not None
    [run] = client.search_runs([experiment.experiment_id],
                               order_by=["attributes.start_time DESC"], max_results=1)
    assert isinstance(run, Run)
    return run


def test_training_records_every_subject_and_registering_the_version(
        recorded_run: tuple[Tracking, TrainResult], pseudonymized_frame: pd.DataFrame) -> None:
    loop, trained = recorded_run
    subjects = pseudonymized_frame[DEMO_SUBJECT].unique()
    assert trained.lineage_subjects == len(subjects)
    run = MlflowClient().get_run(trained.run_id)
    assert run.data.tags[LINEAGE_TAG] == f"recorded: {len(subjects)} subjects"
    with SqliteLineageIndex(str(loop.lineage_url).removeprefix("sqlite:///")) as index:
        subject = str(subjects[0])
        assert [use.run_id for use in index.runs_for(subject)] == [trained.run_id]
        assert index.versions_for(subject) == []
        version = register_challenger(loop, evaluate(loop, trained.run_id))
        assert index.versions_for(subject) == [
            VersionUse("lineaged", version, trained.run_id, trained.dataset_digest)]
        assert index.versions_for("ps_nobody") == []


def test_a_recorded_run_is_not_registered_without_its_index(
        recorded_run: tuple[Tracking, TrainResult]) -> None:
    loop, trained = recorded_run
    elsewhere = replace(loop, model_name="no-lineage", lineage_url=None)
    with pytest.raises(LineageRecordError, match="register it with that index"):
        bootstrap_champion(elsewhere, trained.run_id)
    assert versions("no-lineage") == 0


def test_bootstrap_records_the_champion(tracking: Tracking, pseudonymized_csv: Path,
                                        pseudonymized_frame: pd.DataFrame,
                                        index: SqlLineageIndex) -> None:
    loop = replace(tracking, model_name="booted")
    trained = train(loop, TrainConfig(pseudonymized_csv), lineage=index)
    version = bootstrap_champion(loop, trained.run_id, lineage=index)
    subject = str(pseudonymized_frame[DEMO_SUBJECT].iloc[-1])
    assert [(use.model_name, use.model_version) for use in index.versions_for(subject)] == [
        ("booted", version)]


def test_a_version_whose_lineage_cannot_be_recorded_is_deleted_again(
        tracking: Tracking, baseline: TrainResult, index: SqlLineageIndex) -> None:
    """The baseline run was trained without an index: the index does not know it."""
    assert MlflowClient().get_run(baseline.run_id).data.tags[LINEAGE_TAG] == NOT_RECORDED
    loop = replace(tracking, model_name="unrecorded")
    report = evaluate(loop, baseline.run_id)
    with pytest.raises(LineageRecordError, match="has no lineage record: LineageError: run "):
        register_challenger(loop, report, lineage=index)
    assert versions("unrecorded") == 0
    assert aliases(loop) == {}


def test_a_run_whose_subjects_cannot_be_recorded_fails(
        tracking: Tracking, pseudonymized_csv: Path, tmp_path: Path) -> None:
    closed = SqliteLineageIndex(tmp_path / "closed.db")
    closed.close()
    with pytest.raises(LineageRecordError, match="was not recorded, so the run failed"):
        train(tracking, TrainConfig(pseudonymized_csv), lineage=closed)
    failed = latest_run(tracking)
    assert failed.info.status == "FAILED"
    run_id = failed.info.run_id
    with pytest.raises(RegistryError, match=f"run {run_id} is FAILED, not FINISHED"):
        bootstrap_champion(replace(tracking, model_name="failed"), run_id)
    assert versions("failed") == 0


def test_lineage_needs_the_subject_column_before_any_run(
        tracking: Tracking, demo_csv: Path, index: SqlLineageIndex) -> None:
    before = latest_run(tracking).info.run_id
    with pytest.raises(LineageRecordError, match="no subject column 'card'"):
        train(tracking, TrainConfig(demo_csv, DatasetSpec(subject="card")), lineage=index)
    with pytest.raises(LineageRecordError, match="names no subject column"):
        train(tracking, TrainConfig(demo_csv, DatasetSpec(subject=None)), lineage=index)
    assert latest_run(tracking).info.run_id == before


def test_an_index_that_cannot_be_opened_fails_training_without_the_url(
        tracking: Tracking, demo_csv: Path) -> None:
    broken = replace(tracking, lineage_url="mysql://user:secret@db/lineage")
    with pytest.raises(LineageRecordError, match="cannot be opened") as raised:
        train(broken, TrainConfig(demo_csv))
    assert "secret" not in str(raised.value)
    assert "secret" not in repr(broken)
