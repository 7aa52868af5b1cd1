"""The model loop's commands, parsed and run as the `agogosml` CLI runs them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from agogosml.modelloop.cli import add_parsers
from agogosml.modelloop.errors import ModelLoopError, RegistryError
from agogosml.modelloop.tracking import Tracking


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
