"""The model loop's commands, parsed and run as the `agogosml` CLI runs them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from agogosml.modelloop.cli import add_parsers
from agogosml.modelloop.errors import ModelLoopError, RegistryError
from agogosml.modelloop.shards import held_out, shard_of
from agogosml.modelloop.tracking import Tracking
from agogosml.privacy.lineage.sqlite import SqliteLineageIndex
from tests.modelloop.conftest import SUBJECTS


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    parser = argparse.ArgumentParser(prog="agogosml")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    args.run(args)
    return json.loads(capsys.readouterr().out)


def test_the_commands_train_register_promote_and_roll_back(
        capsys: pytest.CaptureFixture[str], tracking: Tracking, tmp_path: Path,
        shuffled_csv: Path) -> None:
    store = ("--tracking-uri", tracking.tracking_uri, "--artifacts", str(tmp_path / "artifacts"),
             "--experiment", "cli-tests", "--model-name", "cli")
    dataset = tmp_path / "transactions.jsonl"
    assert run(capsys, "write-demo-dataset", str(dataset), "--rows", "3000", "--seed", "5") == {
        "path": str(dataset), "rows": 3000, "seed": 5}

    first = run(capsys, "train", *store, "--dataset", str(dataset), "--param", "C=0.5",
                "--param", "solver=lbfgs", "--register")
    assert first["registered_version"] == "1"
    assert first["gate"]["passed"] is True
    params = MlflowClient().get_run(first["run_id"]).data.params
    assert (params["classifier.C"], params["classifier.solver"]) == ("0.5", "lbfgs")
    assert run(capsys, "promote", *store) == {"champion": "1"}

    second = run(capsys, "retrain", "--trigger", "manual", *store, "--dataset", str(dataset))
    assert (second["registered"], second["registered_version"]) == (True, "2")
    assert run(capsys, "promote", *store) == {"champion": "2", "previous": "1"}
    assert run(capsys, "rollback", *store) == {"champion": "1", "rolled_back": "2"}
    with pytest.raises(RegistryError, match="no previous champion"):
        run(capsys, "rollback", *store)

    noise = run(capsys, "train", *store, "--dataset", str(shuffled_csv))
    report_path = tmp_path / "report.json"
    with pytest.raises(SystemExit) as rejected:
        run(capsys, "evaluate", "--run-id", noise["run_id"], *store, "--report",
            str(report_path))
    assert rejected.value.code == 3
    report = json.loads(report_path.read_text())
    assert report["passed"] is False
    assert report["champion_version"] == "1"
    with pytest.raises(SystemExit):
        run(capsys, "register", "--run-id", noise["run_id"], *store)
    assert len(MlflowClient().search_model_versions("name='cli'")) == 2


def test_a_malformed_param_is_refused(capsys: pytest.CaptureFixture[str],
                                      demo_csv: Path) -> None:
    with pytest.raises(ModelLoopError, match="--param C: use KEY=VALUE"):
        run(capsys, "train", "--dataset", str(demo_csv), "--param", "C")


def test_sharded_training_and_an_erasure_record_lineage_from_the_flag_or_the_environment(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tracking: Tracking, tmp_path: Path, pseudonymized_csv: Path,
        pseudonymized_frame: pd.DataFrame) -> None:
    store = ("--tracking-uri", tracking.tracking_uri, "--artifacts", str(tmp_path / "artifacts"),
             "--experiment", "cli-tests", "--model-name", "cli-sharded")
    index_path = tmp_path / "lineage.db"
    monkeypatch.delenv("AGOGOSML_LINEAGE_URL", raising=False)
    monkeypatch.delenv("AGOGOSML_GDPR_STORE_URL", raising=False)
    first = run(capsys, "train", *store, "--dataset", str(pseudonymized_csv), "--shards", "2",
                "--lineage-url", f"sqlite:///{index_path}", "--register")
    assert (first["registered_version"], first["fitted_shards"]) == ("1", [0, 1])
    assert first["lineage_subjects"] == SUBJECTS
    run(capsys, "promote", *store)

    gone = next(subject for subject in sorted(pseudonymized_frame["customer_id"].unique())
                if not held_out(subject, 0.25, 7))
    smaller = tmp_path / "without.csv"
    pseudonymized_frame[pseudonymized_frame["customer_id"] != gone].to_csv(smaller, index=False)
    monkeypatch.setenv("AGOGOSML_GDPR_STORE_URL", f"sqlite:///{index_path}")
    erased = run(capsys, "retrain", "--trigger", "erasure", *store, "--dataset", str(smaller),
                 "--shards", "2")
    assert erased["registered_version"] == "2"
    assert erased["reused_from"] == first["run_id"]
    assert erased["fitted_shards"] == [shard_of(gone, 2)]
    with SqliteLineageIndex(index_path) as index:
        assert [use.model_version for use in index.versions_for(gone)] == ["1"]
