"""The gate reads every pod of a slot, found through the slot Service's EndpointSlices on a
real API server, each pod a real app (tests/rollout_apps.py), read directly and through
the API server's pod proxy.

No controller runs here, so the test writes what the EndpointSlice controller and the
kubelet would: a Pod object whose status carries the app's address, and a slice listing
it. The window's traffic is sent from the gate's `sleep`, so each window holds exactly
what the test sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field

import pytest
from kubernetes import client

from agogosml.rollout.health import Fetch, HealthLimits, HealthVerdict, PerPod, evaluate
from agogosml.rollout.pods import direct_fetch, proxy_fetch, slot_endpoints
from tests.conftest import Registry
from tests.rollout_apps import (
    RunningApp,
    add_endpoint,
    create_pod,
    node_address,
    remove_endpoint,
    running_app,
    set_endpoint,
)

pytestmark = pytest.mark.timeout(180)

SERVICE = "agogosml-app-green"
LABELS = {"app.kubernetes.io/component": "app", "agogosml.io/slot": "green"}

COUNTING_ONLY = HealthLimits(max_p99_latency_s=60.0)
"""What requests count and fail is judged here, not latency: real apps on a loaded test
machine may take longer than the production p99 limit."""


@dataclass
class Slot:
    api: client.ApiClient
    namespace: str
    model_uri: str
    apps: dict[str, RunningApp] = field(default_factory=dict)
    processes: dict[str, ExitStack] = field(default_factory=dict)

    def source(self, via: str) -> PerPod:
        fetch: Fetch = (proxy_fetch(self.api, self.namespace) if via == "proxy"
                        else direct_fetch())
        return PerPod(slot_endpoints(self.api, self.namespace, SERVICE), fetch,
                      f"Service {SERVICE}")

    def gate(self, via: str, during: Callable[[], None]) -> HealthVerdict:
        return evaluate(self.source(via), COUNTING_ONLY, window_s=30, sleep=lambda _: during())

    def start(self, pod: str, broken: bool = False, port: int = 0) -> RunningApp:
        """The pod's app process (a new one on `port`: the pod restarted)."""
        process = ExitStack()
        app = process.enter_context(running_app(self.model_uri, node_address(), pod,
                                                broken=broken, port=port))
        self.processes[pod], self.apps[pod] = process, app
        return app

    def stop(self, pod: str) -> None:
        self.processes.pop(pod).close()

    def add(self, pod: str, broken: bool = False) -> RunningApp:
        """A pod of the slot: the app, its Pod object and its endpoint."""
        app = self.start(pod, broken)
        create_pod(self.api, self.namespace, pod, app.host, app.port, LABELS)
        add_endpoint(self.api, self.namespace, SERVICE, app.host, app.port, pod)
        return app

    def close(self) -> None:
        for pod in list(self.processes):
            self.stop(pod)


@pytest.fixture
def slot(api_client: client.ApiClient, namespace: str,
         mlflow_registry: Registry) -> Iterator[Slot]:
    """The green slot's Service with two ready pods (no selector: its endpoints are the
    test's)."""
    client.CoreV1Api(api_client).create_namespaced_service(namespace, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": SERVICE},
        "spec": {"ports": [{"name": "http", "port": 8000, "targetPort": "http"}]}})
    green = Slot(api_client, namespace, mlflow_registry.model_uri)
    try:
        green.add("green-0")
        green.add("green-1")
        yield green
    finally:
        green.close()


VIAS = ["direct", "proxy"]


@pytest.mark.parametrize("via", VIAS)
def test_probe_traffic_alone_fails_the_gate(slot: Slot, via: str) -> None:
    def probes() -> None:
        for app in slot.apps.values():
            app.probe(rounds=5)

    verdict = slot.gate(via, probes)
    assert not verdict.passed
    assert verdict.reasons == ["only 0 scoring requests in the window, need 1"]
    assert verdict.pods == 2


@pytest.mark.parametrize("via", VIAS)
def test_scoring_traffic_on_every_pod_passes_the_gate(slot: Slot, via: str) -> None:
    def traffic() -> None:
        slot.apps["green-0"].score(batches=4)
        slot.apps["green-1"].score(batches=6)
        for app in slot.apps.values():
            app.probe(rounds=2)

    verdict = slot.gate(via, traffic)
    assert verdict.reasons == []
    assert (verdict.pods, verdict.requests) == (2, 10)
    assert verdict.error_rate == 0


@pytest.mark.parametrize("via", VIAS)
def test_unhandled_errors_on_one_pod_fail_the_gate(slot: Slot, via: str) -> None:
    """A pod whose scoring raises answers 500, counted as such; the healthy pods' traffic
    does not hide it."""
    broken = slot.add("green-2", broken=True)

    def traffic() -> None:
        slot.apps["green-0"].score(batches=20)
        slot.apps["green-1"].score(batches=20)
        broken.score(batches=2, expect=500)

    verdict = slot.gate(via, traffic)
    assert (verdict.pods, verdict.requests) == (3, 42)
    assert verdict.reasons == [f"error rate {2 / 42:.3f} above 0.01"]


def test_a_restarted_pod_fails_the_gate(slot: Slot) -> None:
    """The pod's process is replaced at the same address during the window (its
    container restarted): its counters went down, and the gate says so instead of
    judging a negative difference."""
    restarted = slot.apps["green-1"]
    restarted.score(batches=5)

    def restart() -> None:
        slot.stop("green-1")
        slot.start("green-1", port=restarted.port).score(batches=2)
        slot.apps["green-0"].score(batches=3)

    verdict = slot.gate("proxy", restart)
    assert verdict.reasons == ["pod green-1 restarted during the window "
                               "(agogosml_app_requests_total went down)"]
    assert verdict.pods == 1


def test_pods_that_leave_or_turn_unready(slot: Slot) -> None:
    """A pod whose endpoint goes (scale-down) is reported and the others judged; one that
    turns unready fails the gate."""
    left, staying = slot.apps["green-0"], slot.apps["green-1"]

    def scale_down() -> None:
        staying.score(batches=3)
        remove_endpoint(slot.api, slot.namespace, SERVICE, left.port, left.pod)

    verdict = slot.gate("proxy", scale_down)
    assert verdict.reasons == []
    assert (verdict.pods, verdict.requests) == (1, 3)
    assert verdict.notes == ["pod green-0 left during the window; its traffic is not judged"]

    def unready() -> None:
        staying.score(batches=3)
        set_endpoint(slot.api, slot.namespace, SERVICE, staying.host, staying.port,
                     staying.pod, ready=False)

    verdict = slot.gate("proxy", unready)
    assert verdict.reasons == ["pod green-1 turned unready during the window",
                               "only 0 scoring requests in the window, need 1"]


@pytest.mark.parametrize("via", VIAS)
def test_a_pod_that_stops_answering_fails_the_gate(slot: Slot, via: str) -> None:
    """Its endpoint still listed, the pod does not answer: the gate fails, naming it."""
    def crash() -> None:
        slot.apps["green-0"].score(batches=3)
        slot.stop("green-1")

    verdict = slot.gate(via, crash)
    assert not verdict.passed
    assert len(verdict.reasons) == 1
    assert verdict.reasons[0].startswith("metrics unreadable: pod green-1: ")
