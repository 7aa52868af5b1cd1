"""The app follows its model alias: a new version is swapped in without a restart, with
no failed request and no request scored by a mix of versions; moving the alias back
brings the previous version back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc.model import PythonModel
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema
from prometheus_client import CollectorRegistry

from agogosml.demo.data import FEATURES, events
from agogosml.demo.train import train_and_register
from agogosml.services.app.model import load_model
from agogosml.services.app.reload import ModelHolder, ModelWatcher
from agogosml.services.app.service import create_app
from agogosml.web.client import BatchClient
from tests.conftest import Registry
from tests.servers import PIPELINE, PredictLoad, run_server

PROBES = [{name: item[name] for name in FEATURES} for item in events(20, seed=9)]
URI = "models:/reloadtest@champion"


def scores_of(model_uri: str) -> list[float]:
    model = load_model(model_uri)
    output = model.pyfunc.predict(pd.DataFrame.from_records(PROBES)[list(FEATURES)])
    return [float(p) for p in np.asarray(output)[:, 1]]


def test_alias_changes_are_followed_without_failed_or_mixed_requests(
        mlflow_registry: Registry, tmp_path: Path) -> None:
    first = train_and_register(mlflow_registry.tracking_uri, tmp_path / "artifacts",
                               model_name="reloadtest", rows=2_000, seed=1)
    expected: dict[str, list[float]] = {first.version: scores_of(URI)}
    holder = ModelHolder(load_model(URI))
    app = create_app(holder, BatchClient("http://127.0.0.1:9/v1/batches", 1.0),
                     CollectorRegistry(), "http://127.0.0.1:9/healthz", PIPELINE, model_uri=URI,
                     reload_interval_s=0.2)
    with run_server(app) as url, PredictLoad(url, PROBES) as load:
        load.wait_for_version(first.version)
        second = train_and_register(mlflow_registry.tracking_uri, tmp_path / "artifacts",
                                    model_name="reloadtest", rows=2_000, seed=2)
        expected[second.version] = scores_of(URI)
        load.wait_for_version(second.version)
        MlflowClient().set_registered_model_alias("reloadtest", "champion", first.version)
        load.wait_for_version(first.version)
        metrics = httpx.get(f"{url}/metrics").text

    assert expected[first.version] != expected[second.version]
    assert [status for status, _ in load.answers if status != 200] == []
    for _, body in load.answers:
        version = body["model"]["version"]
        served = [row["1"] for row in body["scores"]]
        assert served == expected[version], f"a response mixed versions ({version})"
    assert f'agogosml_app_model_info{{model="reloadtest",version="{first.version}"}} 1.0' \
        in metrics
    assert f'agogosml_app_model_info{{model="reloadtest",version="{second.version}"}} 0.0' \
        in metrics


def test_a_fixed_uri_is_not_watched() -> None:
    from agogosml.services.app.reload import alias_of

    check: Callable[[str], object] = alias_of
    assert check("models:/demo/3") is None
    assert check("runs:/abc/model") is None
    assert check("models:/demo@champion") == ("demo", "champion")


class Broken(PythonModel):
    """Loads, then fails on every frame."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        raise RuntimeError("a dependency is missing")


def test_a_version_that_cannot_score_is_not_swapped_in(mlflow_registry: Registry,
                                                       tmp_path: Path) -> None:
    first = train_and_register(mlflow_registry.tracking_uri, tmp_path / "artifacts",
                               model_name="brokenreload", rows=1_000, seed=1)
    uri = "models:/brokenreload@champion"
    holder = ModelHolder(load_model(uri))
    watcher = ModelWatcher(holder, uri, 1.0, lambda old, fresh: None)
    schema = Schema([ColSpec("double", name) for name in ("amount",)])
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=Broken(),
                                       signature=ModelSignature(inputs=schema),
                                       registered_model_name="brokenreload")
    MlflowClient().set_registered_model_alias("brokenreload", "champion",
                                              str(info.registered_model_version))
    assert asyncio.run(watcher.check()) is False
    assert holder.current.ref.version == first.version
    assert holder.current.outputs is not None
