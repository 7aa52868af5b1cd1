"""`POST /v1/retrain` on a real server in-process, against the real MLflow store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from agogosml.modelloop import retrain as retrain_module
from agogosml.modelloop.http import retrain_router
from agogosml.modelloop.registry import aliases
from agogosml.modelloop.retrain import LoopConfig
from agogosml.modelloop.tracking import Tracking
from agogosml.modelloop.training import TrainConfig
from agogosml.web.errors import install_error_handlers
from tests.modelloop.conftest import named
from tests.servers import PIPELINE, PIPELINE_AUTH, run_server


@pytest.fixture(scope="module")
def loop(tracking: Tracking, demo_csv: Path) -> LoopConfig:
    return LoopConfig(named(tracking, "http"), TrainConfig(demo_csv))


@pytest.fixture(scope="module")
def url(loop: LoopConfig) -> Iterator[str]:
    app = FastAPI()
    app.include_router(retrain_router(loop, PIPELINE, CollectorRegistry()))
    install_error_handlers(app)
    with run_server(app) as base:
        yield base


def test_a_retrain_request_registers_a_challenger(url: str, loop: LoopConfig) -> None:
    response = httpx.post(f"{url}/v1/retrain", headers=PIPELINE_AUTH,
                          json={"trigger": "schedule"}, timeout=120)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["trigger"] == "schedule"
    assert body["registered"] is True
    assert body["gate"]["passed"] is True
    assert body["metrics"]["roc_auc"] > 0.75
    assert aliases(loop.tracking) == {"challenger": body["registered_version"]}


def test_an_unknown_trigger_is_refused(url: str) -> None:
    response = httpx.post(f"{url}/v1/retrain", headers=PIPELINE_AUTH,
                          json={"trigger": "whim"}, timeout=10)
    assert response.status_code == 422
    assert response.json()["error"].startswith("body.trigger: Input should be 'manual'")


def test_a_second_retrain_while_one_runs_is_told_to_come_back(url: str) -> None:
    with retrain_module._running:  # as if another retrain held it
        response = httpx.post(f"{url}/v1/retrain", headers=PIPELINE_AUTH,
                              json={"trigger": "drift"}, timeout=10)
    assert response.status_code == 503
    assert response.json() == {"error": "a retrain is already running",
                               "type": "RetrainInProgressError"}
