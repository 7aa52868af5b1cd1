"""The promotion gate judges the scoring requests every pod of a slot answered between
two readings of its metrics."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from agogosml.rollout.cli import metrics_via
from agogosml.rollout.health import HealthLimits, HealthVerdict, PerPod, PodEndpoint, evaluate
from agogosml.rollout.pods import direct_fetch, metrics_url, proxy_path
from agogosml.services.app.metrics import AppMetrics
from tests.conftest import Registry
from tests.rollout_apps import running_app

COUNTING_ONLY = HealthLimits(max_p99_latency_s=60.0)
"""What requests count and fail is judged here, not latency: real apps on a loaded test
machine may take longer than the production p99 limit."""


class Pod:
    """One pod's real app metric objects, driven by the test instead of by traffic."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.metrics = AppMetrics(self.registry)

    def serve(self, scored: int, failed: int = 0, latency_s: float = 0.004,
              failed_status: str = "503") -> None:
        """`scored` good requests (and a tenth as many answered 422), `failed` answered
        `failed_status`."""
        self.metrics.requests.labels(endpoint="/v1/batches", status="200").inc(scored)
        self.metrics.requests.labels(endpoint="/v1/batches", status="422").inc(scored // 10)
        if failed:
            self.metrics.requests.labels(endpoint="/predict", status=failed_status).inc(failed)
        for _ in range(scored):
            self.metrics.predict_latency.labels(endpoint="batch").observe(latency_s)

    def probed(self, times: int) -> None:
        """What an app that counted every request recorded for probes and scrapes."""
        for endpoint in ("/healthz", "/readyz", "/metrics", "/v2/health/ready", "other"):
            self.metrics.requests.labels(endpoint=endpoint, status="200").inc(times)

    def text(self) -> str:
        return generate_latest(self.registry).decode()


class Slot:
    """Pods as the slot's EndpointSlices would list them; the test moves them."""

    def __init__(self, count: int) -> None:
        self.pods = {f"app-{n}": Pod() for n in range(count)}
        self.endpoints = {name: PodEndpoint(f"10.0.0.{n}", 8000, name)
                          for n, name in enumerate(self.pods)}

    def source(self) -> PerPod:
        return PerPod(lambda: list(self.endpoints.values()),
                      lambda endpoint: self.pods[endpoint.key].text(), "the test slot")

    def gate(self, during: Callable[[], None], limits: HealthLimits | None = None) -> HealthVerdict:
        """The gate, with `during` as the window's traffic."""
        return evaluate(self.source(), limits or HealthLimits(), window_s=30,
                        sleep=lambda _: during())


def test_a_healthy_slot_passes_and_old_traffic_does_not_count() -> None:
    slot = Slot(1)
    slot.pods["app-0"].serve(scored=100, failed=50, latency_s=2.0)  # before the window
    verdict = slot.gate(lambda: slot.pods["app-0"].serve(500))
    assert verdict.reasons == []
    assert verdict.requests == 550, "500 scored and 50 answered 422: all scoring requests"
    assert verdict.pods == 1


@pytest.mark.parametrize("status", ["500", "503", "504"])
def test_server_errors_fail_the_gate_and_client_errors_do_not(status: str) -> None:
    slot = Slot(1)
    verdict = slot.gate(lambda: slot.pods["app-0"].serve(80, failed=12, failed_status=status))
    assert verdict.reasons == ["error rate 0.120 above 0.01"], "the 8 answered 422 count " \
        "as requests, not as errors"


def test_slow_scoring_fails_the_gate() -> None:
    slot = Slot(1)
    verdict = slot.gate(lambda: slot.pods["app-0"].serve(200, latency_s=0.8),
                        HealthLimits(max_p99_latency_s=0.25))
    assert verdict.reasons == ["p99 latency 1.000s above 0.25s"]


def test_no_traffic_is_no_evidence() -> None:
    slot = Slot(1)
    verdict = slot.gate(lambda: None, HealthLimits(min_requests=10))
    assert verdict.reasons == ["only 0 scoring requests in the window, need 10"]


def test_probes_and_scrapes_are_no_evidence_even_where_the_app_counts_them() -> None:
    slot = Slot(2)

    def probes() -> None:
        for pod in slot.pods.values():
            pod.probed(1_000)

    verdict = slot.gate(probes)
    assert not verdict.passed
    assert verdict.reasons == ["only 0 scoring requests in the window, need 1"]


def test_every_pod_counts_each_against_itself() -> None:
    """Three pods with different histories: the window is the sum of their own
    differences, so the failing pod is seen whatever its share of earlier traffic."""
    slot = Slot(3)
    slot.pods["app-0"].serve(10_000)  # long-lived pod: old traffic
    slot.pods["app-2"].serve(5)

    def window() -> None:
        slot.pods["app-0"].serve(100)
        slot.pods["app-1"].serve(100)
        slot.pods["app-2"].serve(100, failed=30)

    verdict = slot.gate(window)
    assert verdict.pods == 3
    assert verdict.requests == 3 * 110 + 30
    assert verdict.reasons == [f"error rate {30 / 360:.3f} above 0.01"]


def test_a_pod_that_restarted_in_the_window_fails_the_gate() -> None:
    slot = Slot(2)
    for pod in slot.pods.values():
        pod.serve(1_000)

    def restart() -> None:
        slot.pods["app-1"] = Pod()  # a new process: its counters start again at zero
        slot.pods["app-1"].serve(10)
        slot.pods["app-0"].serve(10)

    verdict = slot.gate(restart)
    assert verdict.reasons == ["pod app-1 restarted during the window "
                               "(agogosml_app_requests_total went down)"]
    assert verdict.pods == 1


def test_a_pod_that_left_is_reported_and_the_others_judged() -> None:
    slot = Slot(2)

    def scale_down() -> None:
        slot.pods["app-0"].serve(50)
        del slot.endpoints["app-1"]

    verdict = slot.gate(scale_down)
    assert verdict.passed, verdict.reasons
    assert (verdict.pods, verdict.requests) == (1, 55)
    assert verdict.notes == ["pod app-1 left during the window; its traffic is not judged"]


def test_a_terminating_pod_left_the_window() -> None:
    slot = Slot(2)

    def evicted() -> None:
        slot.pods["app-0"].serve(50)
        slot.endpoints["app-1"] = PodEndpoint("10.0.0.1", 8000, "app-1", ready=False,
                                              terminating=True)

    verdict = slot.gate(evicted)
    assert verdict.passed, verdict.reasons
    assert verdict.notes == ["pod app-1 left during the window; its traffic is not judged"]


def test_a_pod_that_turned_unready_fails_the_gate() -> None:
    slot = Slot(2)

    def unready() -> None:
        slot.pods["app-0"].serve(50)
        slot.endpoints["app-1"] = PodEndpoint("10.0.0.1", 8000, "app-1", ready=False)

    verdict = slot.gate(unready)
    assert verdict.reasons == ["pod app-1 turned unready during the window"]


def test_a_pod_that_joined_is_judged_from_the_next_window_on() -> None:
    slot = Slot(1)

    def scale_up() -> None:
        slot.pods["app-0"].serve(50)
        slot.pods["app-9"] = Pod()
        slot.pods["app-9"].serve(1_000, failed=1_000)  # not counted: not read before
        slot.endpoints["app-9"] = PodEndpoint("10.0.0.9", 8000, "app-9")

    verdict = slot.gate(scale_up)
    assert verdict.passed, verdict.reasons
    assert verdict.notes == ["pod app-9 joined during the window; judged from the next "
                             "window on"]


def test_no_ready_pod_fails_the_gate() -> None:
    slot = Slot(1)
    slot.endpoints["app-0"] = PodEndpoint("10.0.0.0", 8000, "app-0", ready=False)
    verdict = slot.gate(lambda: None)
    assert verdict.reasons == ["metrics unreadable: no ready pod behind the test slot"]


def test_where_a_pod_is_read() -> None:
    pod = PodEndpoint("10.1.2.3", 8000, "agogosml-app-green-7d9c-x2x4q")
    assert metrics_url(pod) == "http://10.1.2.3:8000/metrics"
    assert metrics_url(PodEndpoint("fd00::12", 8000)) == "http://[fd00::12]:8000/metrics"
    assert proxy_path("prod", pod) == \
        "/api/v1/namespaces/prod/pods/agogosml-app-green-7d9c-x2x4q:8000/proxy/metrics"
    assert metrics_via("auto", None, inside=False) == "proxy"
    assert metrics_via("auto", None, inside=True) == "direct"
    assert metrics_via("auto", "http://prometheus:9090", inside=False) == "prometheus"
    assert metrics_via("direct", "http://prometheus:9090", inside=False) == "direct"


def test_a_real_app_passes_on_scoring_traffic_only(mlflow_registry: Registry) -> None:
    """The real app over HTTP: probes, scrapes and refused requests are no evidence;
    scoring requests are."""
    with running_app(mlflow_registry.model_uri, "127.0.0.1", "app-0") as app:
        source = PerPod(lambda: [PodEndpoint(app.host, app.port, app.pod)], direct_fetch())

        probed = evaluate(source, COUNTING_ONLY, 30, sleep=lambda _: app.probe(rounds=5))
        scored = evaluate(source, COUNTING_ONLY, 30, sleep=lambda _: app.score(batches=7))

    assert probed.reasons == ["only 0 scoring requests in the window, need 1"]
    assert scored.reasons == []
    assert scored.requests == 7
    assert scored.p99_latency_s is not None
