"""Each action against the real thing it talks to: a real HTTP server for webhooks, the
real retrain server app, a real MLflow registry for rollbacks. An action's failure is its
recorded outcome, never an exception."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import mlflow
import pytest
from fastapi import FastAPI
from mlflow.tracking import MlflowClient
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from agogosml.localstack.broker import free_port
from agogosml.modelloop import retrain as retrain_module
from agogosml.modelloop.http import retrain_router
from agogosml.modelloop.registry import aliases
from agogosml.modelloop.retrain import LoopConfig
from agogosml.modelloop.tracking import Tracking
from agogosml.modelloop.training import TrainConfig
from agogosml.monitor.store.base import AsyncEventStore
from agogosml.monitor.triggers import RulesError, Triggers, TriggerSecrets
from agogosml.monitor.triggers.actions import FiringContext, run_action
from agogosml.monitor.triggers.http_actions import RetrainAction, WebhookAction
from agogosml.monitor.triggers.rollback import ModelAliasRollback, RollbackAction
from agogosml.services.monitor.settings import MonitorSettings
from agogosml.services.monitor.wiring import trigger_secrets
from agogosml.settings import load_settings
from agogosml.web.errors import install_error_handlers
from tests.monitor.triggers.conftest import START, Clock, Recorder, metric_rule, rules
from tests.servers import PIPELINE, PIPELINE_TOKEN, run_server

CONTEXT = FiringContext("psi-high", int(START * 1000),
                        {"kind": "metric", "series": {"drift_psi{feature=amount}": 0.4}},
                        "drift_psi{feature=amount} last 0.4 > 0.2")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


async def test_a_webhook_receives_the_firing_as_json(recorder: Recorder,
                                                     client: httpx.AsyncClient) -> None:
    token = SecretStr("webhook-token-for-tests-0123456789")
    action = WebhookAction(client, f"{recorder.url}/hooks/agogosml", 5.0, token)
    assert await run_action(action, CONTEXT) == "ok"
    [received] = recorder.received
    assert received.path == "/hooks/agogosml"
    assert received.headers["authorization"] == f"Bearer {token.get_secret_value()}"
    assert received.body == {"rule": "psi-high", "action": "webhook",
                             "fired_at_ms": CONTEXT.fired_at_ms, "summary": CONTEXT.summary,
                             "evidence": CONTEXT.evidence}


async def test_a_webhook_failure_is_its_outcome(recorder: Recorder,
                                                client: httpx.AsyncClient) -> None:
    recorder.status = 500
    assert await run_action(WebhookAction(client, recorder.url, 5.0), CONTEXT) == "http 500"
    closed = f"http://127.0.0.1:{free_port()}/"
    outcome = await run_action(WebhookAction(client, closed, 5.0), CONTEXT)
    assert outcome == "unreachable: ConnectError"


async def test_a_webhook_that_never_answers_times_out(recorder: Recorder,
                                                      client: httpx.AsyncClient) -> None:
    recorder.hang = True
    assert await run_action(WebhookAction(client, recorder.url, 0.3), CONTEXT) == "timeout"


async def test_a_failed_webhook_is_recorded_and_counted(
        recorder: Recorder, event_store: AsyncEventStore, clock: Clock) -> None:
    recorder.status = 503
    registry = CollectorRegistry()
    triggers = Triggers(
        rules(metric_rule(aggregate="last", action={"type": "webhook", "url": recorder.url})),
        event_store, registry, TriggerSecrets(), clock=clock)
    try:
        [task] = await triggers.evaluate({"drift_psi{feature=amount}": 0.9})
        firing = await task
    finally:
        await triggers.aclose()
    assert (firing.action, firing.outcome) == ("webhook", "http 503")
    assert await event_store.firings(0, 2**62) == [firing]
    assert registry.get_sample_value("agogosml_monitor_trigger_firings_total", {
        "rule": "psi-high", "action": "webhook", "outcome": "http_5xx"}) == 1


async def test_retrain_posts_the_trigger_with_the_token(recorder: Recorder,
                                                        client: httpx.AsyncClient) -> None:
    recorder.answer = {"trigger": "drift", "registered": True, "registered_version": "7"}
    action = RetrainAction(client, recorder.url + "/", PIPELINE_TOKEN, "drift", 5.0)
    assert await run_action(action, CONTEXT) == "ok (registered v7)"
    [received] = recorder.received
    assert received.path == "/v1/retrain"
    assert received.body == {"trigger": "drift"}
    assert received.headers["authorization"] == f"Bearer {PIPELINE_TOKEN.get_secret_value()}"
    recorder.answer = {"trigger": "drift", "registered": False}
    assert await run_action(action, CONTEXT) == "ok (not registered)"


@pytest.fixture(scope="module")
def retrain_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real retrain server's routes; no test here lets a training start."""
    root = tmp_path_factory.mktemp("retrain")
    loop = LoopConfig(Tracking(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts"),
                      TrainConfig(root / "never-read.csv"))
    app = FastAPI()
    app.include_router(retrain_router(loop, PIPELINE, CollectorRegistry()))
    install_error_handlers(app)
    with run_server(app) as url:
        yield url


async def test_the_retrain_server_refuses_a_wrong_token(retrain_url: str,
                                                        client: httpx.AsyncClient) -> None:
    wrong = SecretStr("not-the-retrain-token-0123456789")
    action = RetrainAction(client, retrain_url, wrong, "drift", 10.0)
    assert await run_action(action, CONTEXT) == "http 401"


async def test_the_retrain_server_accepts_the_request_of_the_action(
        retrain_url: str, client: httpx.AsyncClient) -> None:
    action = RetrainAction(client, retrain_url, PIPELINE_TOKEN, "drift", 10.0)
    # With a retrain already running the server says so (503) instead of training: the
    # token and the body were accepted, which is what the action is responsible for.
    with retrain_module._running:
        assert await run_action(action, CONTEXT) == "http 503"


async def test_a_retrain_rule_without_a_token_stops_the_start(
        event_store: AsyncEventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGOGOSML_MONITOR_RETRAIN_TOKEN", raising=False)
    rule_set = rules(metric_rule(action={"type": "retrain", "url": "http://retrain:8080"}))
    with pytest.raises(RulesError, match=r"rule 'psi-high' .*AGOGOSML_MONITOR_RETRAIN_TOKEN"):
        Triggers(rule_set, event_store, CollectorRegistry(), TriggerSecrets())


def test_the_retrain_token_and_url_come_from_the_monitors_settings(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGOGOSML_MONITOR_API_TOKEN", "an-api-token-of-the-monitor")
    monkeypatch.setenv("AGOGOSML_MONITOR_RETRAIN_TOKEN", PIPELINE_TOKEN.get_secret_value())
    monkeypatch.setenv("AGOGOSML_MONITOR_RETRAIN_URL", "http://retrain:8080")
    secrets = trigger_secrets(load_settings(MonitorSettings))
    assert secrets.retrain_token == PIPELINE_TOKEN
    assert secrets.retrain_url == "http://retrain:8080/"
    assert PIPELINE_TOKEN.get_secret_value() not in repr(secrets)


async def test_a_retrain_rule_without_a_url_calls_the_configured_server(
        event_store: AsyncEventStore) -> None:
    rule_set = rules(metric_rule(action={"type": "retrain"}))
    with pytest.raises(RulesError, match=r"rule 'psi-high' .*AGOGOSML_MONITOR_RETRAIN_URL"):
        Triggers(rule_set, event_store, CollectorRegistry(),
                 TriggerSecrets(retrain_token=PIPELINE_TOKEN))
    triggers = Triggers(rule_set, event_store, CollectorRegistry(),
                        TriggerSecrets(retrain_token=PIPELINE_TOKEN,
                                       retrain_url="http://retrain:8080"))
    action = triggers.dispatcher.actions["psi-high"]
    assert isinstance(action, RetrainAction)
    assert action.url == "http://retrain:8080/v1/retrain"
    await triggers.aclose()


@pytest.fixture
def tracking(tmp_path: Path) -> Iterator[Tracking]:
    """A real MLflow registry with v1 as `previous` and v2 as `champion`. MLflow's client
    is process-wide: what other tests had set is put back."""
    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri(),
              os.environ.get("MLFLOW_EXPERIMENT_ID"))
    tracking = Tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts",
                        "triggers-tests", "rolled")
    mlflow.set_tracking_uri(tracking.tracking_uri)
    mlflow.set_registry_uri(tracking.tracking_uri)
    client = MlflowClient()
    client.create_registered_model("rolled")
    source = tmp_path / "model"
    source.mkdir()
    first = client.create_model_version("rolled", source.as_uri()).version
    second = client.create_model_version("rolled", source.as_uri()).version
    client.set_registered_model_alias("rolled", "previous", first)
    client.set_registered_model_alias("rolled", "champion", second)
    yield tracking
    mlflow.set_tracking_uri(before[0])
    mlflow.set_registry_uri(before[1])
    if before[2] is None:
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    else:
        os.environ["MLFLOW_EXPERIMENT_ID"] = before[2]


async def test_rollback_moves_the_champion_back_once(tracking: Tracking) -> None:
    action = RollbackAction(ModelAliasRollback(tracking), 60.0)
    assert await run_action(action, CONTEXT) == "ok (rolled champion v1)"
    assert aliases(tracking) == {"champion": "1", "rolled_back": "2"}
    # A second rollback has nowhere to go: refused, recorded, not raised.
    assert await run_action(action, CONTEXT) == (
        "refused: rolled has no previous champion to roll back to")
    assert aliases(tracking) == {"champion": "1", "rolled_back": "2"}


async def test_an_action_that_raises_is_an_outcome() -> None:
    class Broken:
        kind = "webhook"
        timeout_s = 1.0

        async def run(self, context: FiringContext) -> str:
            raise RuntimeError("broken")

    assert await run_action(Broken(), CONTEXT) == "error: RuntimeError"


async def test_an_action_that_never_ends_times_out() -> None:
    class Stuck:
        kind = "webhook"
        timeout_s = 0.2

        async def run(self, context: FiringContext) -> str:
            await asyncio.Event().wait()
            return "ok"

    assert await run_action(Stuck(), CONTEXT) == "timeout"
