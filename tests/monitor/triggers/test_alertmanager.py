"""Alertmanager's webhook on a real server: firing alerts become the mapped rules' actions
once per cool-down, recorded with their evidence; hostile bodies are refused with a reason."""

from __future__ import annotations

import copy
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from agogosml.monitor.store import SqliteEventStore
from agogosml.monitor.store.base import AsyncEventStore, Firing
from agogosml.monitor.triggers import Triggers, TriggerSecrets
from agogosml.web.auth import AuthMetrics
from agogosml.web.errors import install_error_handlers
from tests.monitor.triggers.conftest import Recorder, alert_rule, rules, wait_until
from tests.servers import PIPELINE, PIPELINE_AUTH, run_server

MAX_BODY = 256 * 1024


def alert(alertname: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    """One alert as Alertmanager 0.27 sends it."""
    return {
        "status": status,
        "labels": {"alertname": alertname, "severity": "page", "namespace": "agogosml",
                   **labels},
        "annotations": {"summary": "PSI of amount above 0.2 for 10 minutes",
                        "runbook_url": "https://runbooks.example.com/drift"},
        "startsAt": "2025-06-15T08:21:03.052Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2025-06-15T09:01:03Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=agogosml_drift_score+%3E+0.2",
        "fingerprint": "9a1c6b0d2e7f4a31",
    }


def payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}/{severity="page"}:{alertname="AgogosmlDriftHigh"}',
        "truncatedAlerts": 0,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": "agogosml-monitor",
        "groupLabels": {"alertname": "AgogosmlDriftHigh"},
        "commonLabels": {"severity": "page"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


@dataclass
class Monitor:
    url: str
    store: SqliteEventStore
    registry: CollectorRegistry

    def post(self, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/alerts", json=body,
                          headers=PIPELINE_AUTH if headers is None else headers, timeout=10)

    def firings(self, count: int) -> list[Firing]:
        wait_until(lambda: len(self.store.firings(0, 2**62)) >= count)
        return self.store.firings(0, 2**62)


@pytest.fixture
def monitor(sqlite_store: SqliteEventStore, recorder: Recorder) -> Iterator[Monitor]:
    """The receiver on a real server, as the monitor service would mount it."""
    registry = CollectorRegistry()
    rule_set = rules(alerts=(
        alert_rule("drift-page", action={"type": "webhook", "url": f"{recorder.url}/hook"}),
        alert_rule("latency", alertname="AgogosmlLatencyHigh"),
        alert_rule("rollback-now", alertname="NeverSentByName", cool_down=60)))
    triggers = Triggers(rule_set, AsyncEventStore(sqlite_store), registry, TriggerSecrets())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await triggers.start()
        yield
        await triggers.aclose()

    app = FastAPI(lifespan=lifespan)
    app.include_router(triggers.router(PIPELINE, AuthMetrics(registry), max_body_bytes=MAX_BODY))
    install_error_handlers(app)
    with run_server(app) as url:
        yield Monitor(url, sqlite_store, registry)


def test_a_firing_alert_runs_its_rules_action_once_per_cool_down(
        monitor: Monitor, recorder: Recorder) -> None:
    body = payload(alert("AgogosmlDriftHigh"), alert("AgogosmlDriftHigh", feature="hour"))
    response = monitor.post(body)
    assert response.status_code == 200, response.text
    assert response.json() == {"fired": ["drift-page"], "cooling_down": [], "ignored": 0}
    [firing] = monitor.firings(1)
    assert (firing.rule, firing.action, firing.outcome) == ("drift-page", "webhook", "ok")
    assert firing.evidence["alertname"] == "AgogosmlDriftHigh"
    assert firing.evidence["alerts_matched"] == 2
    assert firing.evidence["alerts"][0] == {
        "labels": body["alerts"][0]["labels"], "annotations": body["alerts"][0]["annotations"],
        "starts_at": "2025-06-15T08:21:03.052000+00:00", "fingerprint": "9a1c6b0d2e7f4a31"}
    [hook] = recorder.wait_for(1)
    assert hook.body["rule"] == "drift-page"
    assert hook.body["evidence"] == firing.evidence

    # Alertmanager repeats the notification (repeat_interval, or a retry): nothing more.
    again = monitor.post(body)
    assert again.json() == {"fired": [], "cooling_down": ["drift-page"], "ignored": 0}
    assert len(monitor.store.firings(0, 2**62)) == 1
    assert len(recorder.received) == 1


def test_concurrent_deliveries_fire_one_action(monitor: Monitor, recorder: Recorder) -> None:
    body = payload(alert("AgogosmlDriftHigh"))
    barrier = threading.Barrier(8)
    answers: list[dict[str, Any]] = []

    def deliver() -> None:
        barrier.wait()
        answers.append(monitor.post(body).json())

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(answer["fired"]) for answer in answers) == [0] * 7 + [1]
    assert len(monitor.firings(1)) == 1
    assert len(recorder.wait_for(1)) == 1


def test_alerts_map_by_agogosml_rule_label_then_alertname(monitor: Monitor) -> None:
    response = monitor.post(payload(
        alert("AnythingElse", agogosml_rule="rollback-now"),
        alert("AgogosmlLatencyHigh"),
        alert("AgogosmlLatencyHigh", status="resolved"),
        alert("UnknownAlert"),
        alert("AnythingElse", agogosml_rule="no-such-rule")))
    assert response.json() == {"fired": ["rollback-now", "latency"], "cooling_down": [],
                               "ignored": 3}
    firings = monitor.firings(2)
    assert {(f.rule, f.action, f.outcome) for f in firings} == {
        ("rollback-now", "notify", "ok"), ("latency", "notify", "ok")}
    assert monitor.registry.get_sample_value("agogosml_monitor_alerts_received_total",
                                             {"result": "unmapped"}) == 2
    assert monitor.registry.get_sample_value("agogosml_monitor_alerts_received_total",
                                             {"result": "resolved"}) == 1


def test_alerts_without_the_token_are_refused(monitor: Monitor) -> None:
    body = payload(alert("AgogosmlDriftHigh"))
    assert monitor.post(body, headers={}).status_code == 401
    wrong = {"authorization": "Bearer " + "x" * 40}
    assert monitor.post(body, headers=wrong).status_code == 401
    assert monitor.store.firings(0, 2**62) == []


def _without(body: dict[str, Any], *path: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    target = changed
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return changed


VALID = payload(alert("AgogosmlDriftHigh"))
MINIMAL = {"status": "firing", "labels": {}, "startsAt": "2025-06-15T08:21:03Z"}


@pytest.mark.parametrize(("body", "reason"), [
    ({**VALID, "version": "3"}, "body.version: Input should be '4'"),
    (_without(VALID, "alerts"), "body.alerts: Field required"),
    (_without(VALID, "alerts", 0, "labels"), "body.alerts.0.labels: Field required"),
    ({**VALID, "alerts": [{**VALID["alerts"][0], "startsAt": "yesterday"}]},
     "body.alerts.0.startsAt: Input should be a valid datetime"),
    ({**VALID, "alerts": [{**VALID["alerts"][0], "labels": {"alertname": 3}}]},
     "body.alerts.0.labels.alertname: Input should be a valid string"),
    ({**VALID, "alerts": [{**VALID["alerts"][0], "labels": {"x": "y" * 10_000}}]},
     "body.alerts.0.labels.x: String should have at most 8192 characters"),
    ({**VALID, "alerts": [MINIMAL] * 1_001},
     "body.alerts: List should have at most 1000 items"),
    ([VALID], "body: Input should be an object"),
])
def test_hostile_payloads_are_refused_with_the_reason(monitor: Monitor, body: Any,
                                                      reason: str) -> None:
    assert len(orjson.dumps(body)) < MAX_BODY
    response = monitor.post(body)
    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith(reason)
    assert monitor.store.firings(0, 2**62) == []


def test_a_body_over_the_cap_is_refused_before_parsing(monitor: Monitor) -> None:
    body = {**VALID, "alerts": [alert("AgogosmlDriftHigh", filler="y" * 8_000)] * 40}
    assert len(orjson.dumps(body)) > MAX_BODY
    assert monitor.post(body).status_code == 413


def test_a_body_that_is_not_json_is_refused(monitor: Monitor) -> None:
    response = httpx.post(f"{monitor.url}/v1/alerts", content=b"{not json",
                          headers=PIPELINE_AUTH, timeout=10)
    assert response.status_code == 422
    assert response.json()["error"].startswith("body: Invalid JSON")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4), max_leaves=25)
alert_fields = st.sampled_from(["status", "labels", "annotations", "startsAt", "endsAt",
                                "fingerprint", "generatorURL"])
mutated = st.builds(
    lambda alerts, top: {**VALID, **top, "alerts": alerts},
    st.lists(st.dictionaries(alert_fields, json_values, max_size=3)
             .map(lambda fields: {**VALID["alerts"][0], **fields}), max_size=3),
    st.dictionaries(st.sampled_from(["version", "status", "receiver", "truncatedAlerts"]),
                    json_values, max_size=2))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=json_values | mutated)
def test_any_body_is_accepted_or_refused_with_422(monitor: Monitor, body: Any) -> None:
    response = monitor.post(body)
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert response.json()["error"]
