"""The promotion gate judges the traffic between two scrapes of a slot's metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from agogosml.envelope import ModelRef
from agogosml.rollout.gate import GateLimits, evaluate
from agogosml.services.app.metrics import AppMetrics

MODEL = ModelRef("demo", "2")


class SlotMetrics:
    """The app's real metric objects, driven by the test instead of by traffic."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.metrics = AppMetrics(self.registry)

    def serve(self, scored: int, failed: int = 0, latency_s: float = 0.004) -> None:
        """`scored` good requests and `failed` ones answered 503."""
        self.metrics.requests.labels(endpoint="/v1/batches", status="200").inc(scored)
        self.metrics.requests.labels(endpoint="/v1/batches", status="422").inc(scored // 10)
        if failed:
            self.metrics.requests.labels(endpoint="/v1/batches", status="503").inc(failed)
        for _ in range(scored):
            self.metrics.predict_latency.labels(endpoint="batch").observe(latency_s)

    def scrape(self) -> str:
        return generate_latest(self.registry).decode()


def run_gate(slot: SlotMetrics, during: dict[str, float], limits: GateLimits) -> list[str]:
    def traffic(_: float) -> None:
        slot.serve(int(during["scored"]), int(during.get("failed", 0)),
                   during.get("latency_s", 0.004))
    verdict = evaluate(slot.scrape, limits, window_s=30, sleep=traffic)
    return verdict.reasons


def test_a_healthy_slot_passes_and_old_traffic_does_not_count() -> None:
    slot = SlotMetrics()
    slot.serve(scored=100, failed=50, latency_s=2.0)  # before the window: ignored
    assert run_gate(slot, {"scored": 500}, GateLimits()) == []


def test_errors_in_the_window_fail_the_gate() -> None:
    reasons = run_gate(SlotMetrics(), {"scored": 80, "failed": 12}, GateLimits())
    assert reasons == ["error rate 0.120 above 0.01"], "client errors (4xx) do not count"


def test_slow_scoring_fails_the_gate() -> None:
    reasons = run_gate(SlotMetrics(), {"scored": 200, "latency_s": 0.8},
                       GateLimits(max_p99_latency_s=0.25))
    assert reasons == ["p99 latency 1.000s above 0.25s"]


def test_no_traffic_is_no_evidence() -> None:
    reasons = run_gate(SlotMetrics(), {"scored": 0}, GateLimits(min_requests=10))
    assert reasons == ["only 0 requests in the window, need 10"]
