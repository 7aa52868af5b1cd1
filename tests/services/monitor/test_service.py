"""The monitor service end to end on the real broker, MLflow's real registry and a real
SQLite store: scored events and labels in from their topics and its endpoint; drift
against the registered version's own reference profile and live performance out, on
/metrics; its labels endpoint guarded and refusing bad input with a reason."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from agogosml.demo.data import FEATURES, LABEL, transactions
from agogosml.localstack.broker import KafkaBroker
from agogosml.services.monitor.settings import MonitorSettings
from agogosml.services.monitor.wiring import build_app
from tests.conftest import Registry
from tests.kafka_helpers import create_topics, produce_json
from tests.servers import run_server

TOKEN = "monitor-api-token-for-tests"
AUTH = {"authorization": f"Bearer {TOKEN}"}
EVENTS = 400


def scored_events(version: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Demo transactions scored by a perfect oracle: the probability of fraud is 0.9 when
    the label says fraud and 0.1 otherwise, so every live figure is known exactly."""
    data = transactions(EVENTS, seed=11)
    start_ms = time.time_ns() // 1_000_000 - 60_000
    events, labels = [], {}
    for n, row in enumerate(data.to_dict("records")):
        truth = int(row[LABEL])
        event_id = f"tx-{n}"
        labels[event_id] = truth
        events.append({
            "id": event_id, "subject": f"c-{n % 50}", "time": start_ms + n,
            "model": {"name": "demo", "version": version}, "prediction": truth,
            "scores": {"0": 0.1 if truth else 0.9, "1": 0.9 if truth else 0.1},
            "scored_at": start_ms + 20 + n,
            "features": {name: _plain(row[name]) for name in FEATURES}})
    return events, labels


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def metric_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


@pytest.fixture
def monitor(kafka: KafkaBroker, mlflow_registry: Registry, topic_prefix: str,
            tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    settings = MonitorSettings(
        source="kafka", kafka_bootstrap_servers=kafka.bootstrap,
        output_stream=f"{topic_prefix}.output", labels_stream=f"{topic_prefix}.labels",
        consumer_group=f"{topic_prefix}-monitor",
        store_url=SecretStr(f"sqlite:///{tmp_path / 'events.db'}"),
        tracking_uri=mlflow_registry.tracking_uri, tick_s=0.2, drift_window_events=200,
        api_token=SecretStr(TOKEN))
    asyncio.run(create_topics(kafka.bootstrap, [settings.output_stream,
                                                settings.labels_stream]))
    with run_server(build_app(settings), timeout_s=60) as url:
        yield url, settings.output_stream, settings.labels_stream


def wait_for_metric(url: str, name: str, labels: dict[str, str], at_least: float,
                    timeout_s: float = 60) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    key = (name, tuple(sorted(labels.items())))
    deadline = time.monotonic() + timeout_s
    while True:
        values = metric_values(httpx.get(f"{url}/metrics", timeout=10).text)
        if values.get(key, -1.0) >= at_least:
            return values
        assert time.monotonic() < deadline, f"{name}{labels} never reached {at_least}: " \
                                            f"{values.get(key)}"
        time.sleep(0.1)  # polling the monitor's metrics until the condition holds


def test_events_and_labels_become_drift_and_performance(
        monitor: tuple[str, str, str], kafka: KafkaBroker, mlflow_registry: Registry) -> None:
    url, output, labels_topic = monitor
    version = mlflow_registry.demo.version
    events, labels = scored_events(version)
    asyncio.run(produce_json(kafka.bootstrap, output, events))
    wait_for_metric(url, "agogosml_monitor_events_stored_total", {}, EVENTS)
    # Half the labels arrive on the feedback topic, half through the endpoint.
    ids = sorted(labels)
    asyncio.run(produce_json(kafka.bootstrap, labels_topic,
                             [{"id": i, "label": labels[i]} for i in ids[::2]]))
    answer = httpx.post(f"{url}/v1/labels", headers=AUTH, timeout=10,
                        json={"labels": [{"id": i, "label": labels[i]} for i in ids[1::2]]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"stored": EVENTS // 2}
    values = wait_for_metric(url, "agogosml_monitor_labelled_events",
                             {"model_version": version}, EVENTS)
    for metric in ("accuracy", "precision", "recall", "roc_auc"):
        assert values[("agogosml_monitor_performance",
                       (("metric", metric), ("model_version", version)))] == 1.0, metric
    psi = values[("agogosml_drift_score",
                  (("feature", "amount"), ("model_version", version), ("test", "psi")))]
    assert 0.0 <= psi < 0.25  # the same generator as the training data: no drift
    assert ("agogosml_drift_detector_level",
            (("feature", "amount"), ("model_version", version), ("test", "cusum"))) in values
    ready = httpx.get(f"{url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text


def test_the_labels_endpoint_needs_the_api_token(monitor: tuple[str, str, str]) -> None:
    url = monitor[0]
    body = {"labels": [{"id": "tx-1", "label": 1}]}
    assert httpx.post(f"{url}/v1/labels", json=body, timeout=10).status_code == 401
    wrong = {"authorization": "Bearer not-the-monitor-token-at-all"}
    assert httpx.post(f"{url}/v1/labels", json=body, headers=wrong,
                      timeout=10).status_code == 401


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300)
LABEL_ITEMS = st.one_of(
    JSON_SCALARS,
    st.dictionaries(st.sampled_from(["id", "label", "time", "x"]),
                    JSON_SCALARS | st.lists(JSON_SCALARS, max_size=2), max_size=4))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.one_of(JSON_SCALARS, st.fixed_dictionaries({"labels": st.lists(LABEL_ITEMS,
                                                                              max_size=5)})))
def test_any_labels_body_is_stored_or_refused_with_a_reason(
        monitor: tuple[str, str, str], body: Any) -> None:
    url = monitor[0]
    # NaN and Infinity are sent as Python's json writes them: not JSON, to be refused.
    answer = httpx.post(f"{url}/v1/labels", timeout=10,
                        headers={**AUTH, "content-type": "application/json"},
                        content=json.dumps(body, allow_nan=True).encode())
    assert answer.status_code in (200, 400, 422), answer.text
    if answer.status_code == 200:
        assert answer.json() == {"stored": len(body["labels"])}
    else:
        assert answer.json()["error"]
    assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
