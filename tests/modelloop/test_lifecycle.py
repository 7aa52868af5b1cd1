"""train → gate → challenger → promote → rollback on a real MLflow registry, and a worse
candidate that the gate keeps out of it."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from agogosml.modelloop.errors import RegistryError
from agogosml.modelloop.gate import GateReport, evaluate
from agogosml.modelloop.registry import aliases, history, promote, register_challenger, rollback
from agogosml.modelloop.retrain import LoopConfig, retrain
from agogosml.modelloop.tracking import (
    GATE_REPORT_ARTIFACT,
    GATE_TAG,
    Tracking,
    read_text_artifact,
)
from agogosml.modelloop.training import TrainConfig, TrainResult, train
from agogosml.services.app.model import load_model, resolve_ref
from tests.modelloop.conftest import named

CHECKS = {"signature", "no_personal_features", "probabilities", "canned_examples",
          "batch_latency", "minimum_roc_auc", "onnx_parity", "versus_champion"}


def served(model_name: str) -> tuple[str, str]:
    """What the app would serve for `models:/<name>@champion`: version and run id."""
    uri = f"models:/{model_name}@champion"
    model = load_model(uri)
    return resolve_ref(uri).version, str(model.pyfunc.metadata.run_id)


def test_train_gate_register_promote_rollback(tracking: Tracking, demo_csv: Path,
                                              baseline: TrainResult) -> None:
    first = evaluate(tracking, baseline.run_id)
    assert first.passed, first.summary()
    assert {check.name for check in first.checks} == CHECKS
    assert first.champion_version is None
    v1 = register_challenger(tracking, first)
    assert aliases(tracking) == {"challenger": v1}
    assert promote(tracking) == {"champion": v1}
    assert served("demo") == (v1, baseline.run_id)

    second = train(tracking, TrainConfig(demo_csv, params={"C": 2.0}), trigger="schedule")
    report = evaluate(tracking, second.run_id)
    assert report.passed, report.summary()
    assert report.champion_version == v1
    assert report.champion_metrics == baseline.metrics, "the champion saw the same holdout"
    v2 = register_challenger(tracking, report, trigger="schedule")
    assert aliases(tracking) == {"champion": v1, "challenger": v2}
    assert served("demo") == (v1, baseline.run_id), "a challenger is not served"

    assert promote(tracking) == {"champion": v2, "previous": v1}
    assert served("demo") == (v2, second.run_id)

    assert rollback(tracking) == {"champion": v1, "rolled_back": v2}
    assert served("demo") == (v1, baseline.run_id)
    with pytest.raises(RegistryError, match="no previous champion"):
        rollback(tracking)
    with pytest.raises(RegistryError, match="no challenger"):
        promote(tracking)

    lines = [line.split(" ", 1)[1] for line in history(tracking)]
    assert lines == [
        f"register: v{v1} is challenger (run {baseline.run_id}, trigger manual)",
        f"promote: v{v1} is champion",
        f"register: v{v2} is challenger (run {second.run_id}, trigger schedule)",
        f"promote: v{v2} is champion, v{v1} is previous",
        f"rollback: v{v1} is champion again, v{v2} is rolled_back",
    ]
    version = MlflowClient().get_model_version("demo", v2)
    assert version.tags["agogosml.run_id"] == second.run_id
    assert version.tags["agogosml.trigger"] == "schedule"
    assert version.tags["agogosml.roc_auc"] == f"{second.metrics['roc_auc']:.4f}"
    assert version.tags["agogosml.gate"] == "passed 8/8 checks"
    assert version.tags["agogosml.dataset_digest"] == second.dataset_digest
    assert version.tags["agogosml.onnx"] == "parity"
    assert {"agogosml.promoted_at", "agogosml.rolled_back_at"} <= set(version.tags)
    assert "gate passed 8/8 checks" in (version.description or "")


def test_a_worse_candidate_is_rejected_and_not_registered(
        tracking: Tracking, shuffled_csv: Path, baseline: TrainResult) -> None:
    guarded = named(tracking, "guarded")
    champion = register_challenger(guarded, evaluate(guarded, baseline.run_id))
    promote(guarded)

    result = retrain("drift", LoopConfig(guarded, TrainConfig(shuffled_csv)))

    assert not result.registered
    assert result.registered_version is None
    reasons = {check.name: check.reason for check in result.gate.failures}
    assert reasons["versus_champion"].startswith(f"worse than champion v{champion}: roc_auc")
    assert reasons["minimum_roc_auc"].startswith("holdout ROC AUC 0.")
    assert result.gate.summary().startswith("failed: ")
    assert len(MlflowClient().search_model_versions("name='guarded'")) == 1
    assert aliases(guarded) == {"champion": champion}
    run = MlflowClient().get_run(result.run_id)
    assert run.data.tags[GATE_TAG] == result.gate.summary()
    assert run.data.tags["agogosml.trigger"] == "drift"
    logged = GateReport.from_json(read_text_artifact(result.run_id, GATE_REPORT_ARTIFACT))
    assert logged == result.gate
    with pytest.raises(RegistryError, match="is not registered: gate failed"):
        register_challenger(guarded, result.gate)
    assert mlflow.get_registry_uri() == tracking.tracking_uri
