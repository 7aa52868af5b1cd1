"""The whole loop against a running app: retrain -> gate -> challenger -> promote, and the
app serves the new version without a failed request; rollback, and it serves the
previous one again."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mlflow.tracking import MlflowClient
from prometheus_client import CollectorRegistry

from agogosml.demo.data import FEATURES, events
from agogosml.modelloop import registry
from agogosml.modelloop.gate import GateLimits
from agogosml.modelloop.retrain import LoopConfig, retrain
from agogosml.modelloop.tracking import Tracking
from agogosml.modelloop.training import TrainConfig
from agogosml.services.app.model import load_model
from agogosml.services.app.reload import ModelHolder
from agogosml.services.app.service import create_app
from agogosml.web.client import BatchClient
from tests.servers import PIPELINE, PredictLoad, run_server

PROBES = [{name: item[name] for name in FEATURES} for item in events(10, seed=21)]


def test_promote_and_rollback_reach_the_running_app(tracking: Tracking, demo_csv: Path) -> None:
    looped = replace(tracking, model_name="looped")
    # Seeds differ, so the holdouts differ; allow the candidate a little room against it.
    limits = GateLimits(max_roc_auc_drop=0.05)
    first = retrain("manual", LoopConfig(looped, TrainConfig(demo_csv, seed=1), limits))
    assert first.registered
    registry.promote(looped)
    uri = "models:/looped@champion"
    app = create_app(ModelHolder(load_model(uri)), BatchClient("http://127.0.0.1:9/v1/b", 1.0),
                     CollectorRegistry(), "http://127.0.0.1:9/healthz", PIPELINE, model_uri=uri,
                     reload_interval_s=0.2)
    with run_server(app) as url, PredictLoad(url, PROBES) as load:
        load.wait_for_version(str(first.registered_version))
        second = retrain("schedule", LoopConfig(looped, TrainConfig(demo_csv, seed=2), limits))
        assert second.registered
        registry.promote(looped)
        load.wait_for_version(str(second.registered_version))
        registry.rollback(looped)
        load.wait_for_version(str(first.registered_version))

    assert load.failures() == []
    served = [body["model"]["version"] for _, body in load.answers]
    assert set(served) == {first.registered_version, second.registered_version}
    aliases = {alias: str(version) for alias, version
               in MlflowClient().get_registered_model("looped").aliases.items()}
    assert aliases["champion"] == first.registered_version
    assert aliases["rolled_back"] == second.registered_version
