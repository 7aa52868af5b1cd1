"""A model that loads but cannot score is not ready, whichever protocol asks: OIP's server
and model readiness, MLflow's /ping, and the pipeline's /readyz; scoring it is a 503 in
each protocol's error shape, which the real clients decode."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import mlflow
import pandas as pd
import pytest
import tritonclient.http as triton
from mlflow.models import ModelSignature
from mlflow.pyfunc.model import PythonModel
from mlflow.types import ColSpec, Schema
from prometheus_client import CollectorRegistry
from tritonclient.utils import InferenceServerException

from agogosml.services.app.model import load_model
from agogosml.services.app.reload import ModelHolder
from agogosml.services.app.service import create_app
from agogosml.web.client import BatchClient
from tests.servers import PIPELINE, PIPELINE_TOKEN, run_server


class Broken(PythonModel):
    """Loads, then fails on every frame, as a model with a missing dependency would."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        raise RuntimeError("the feature store is unreachable")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("broken") / "model"
    signature = ModelSignature(inputs=Schema([ColSpec("double", "amount")]))
    mlflow.pyfunc.save_model(str(path), python_model=Broken(), signature=signature)
    model = load_model(str(path))
    assert model.outputs is None
    app = create_app(ModelHolder(model), BatchClient("http://127.0.0.1:9/v1/batches", 5.0,
                                                     token=PIPELINE_TOKEN),
                     CollectorRegistry(), writer_health_url="http://127.0.0.1:9/healthz",
                     pipeline=PIPELINE)
    with run_server(app) as url:
        yield url


def test_no_protocol_calls_a_model_that_cannot_score_ready(app_url: str) -> None:
    client = triton.InferenceServerClient(app_url.removeprefix("http://"))
    assert client.is_server_live()
    assert not client.is_server_ready()
    assert not client.is_model_ready("model")
    ping = httpx.get(f"{app_url}/ping", timeout=10)
    assert ping.status_code == 503
    assert set(ping.json()) == {"error_code", "message"}
    readyz = httpx.get(f"{app_url}/readyz", timeout=10).json()
    assert readyz["checks"]["model"] is False


def test_infer_on_it_is_a_503_the_client_decodes(app_url: str) -> None:
    client = triton.InferenceServerClient(app_url.removeprefix("http://"))
    tensor = triton.InferInput("amount", [1], "FP64")
    tensor.set_data_from_numpy(pd.Series([1.0]).to_numpy())
    with pytest.raises(InferenceServerException) as caught:
        client.infer("model", [tensor])
    assert caught.value.status() == "503"
    assert "failed to score its input example" in caught.value.message()


def test_predict_on_it_says_why(app_url: str) -> None:
    response = httpx.post(f"{app_url}/predict", json={"amount": 1.0}, timeout=10)
    assert response.status_code == 422
    assert response.json() == {
        "error": "model error: RuntimeError: the feature store is unreachable",
        "type": "ModelInputError"}
