"""`agogosml rollout` against a real API server and a real helm.

Each test installs the chart with helm into a namespace of its own (blue live with
version A, green disabled), then drives the rollout tool as a user would: mostly
`python -m agogosml.cli rollout ...`, sometimes the Python API to set a scene up.

What stands in for a cluster's moving parts:
- readiness: no kubelet or controller manager runs, so a background thread watches the
  app's slot Deployments and, whenever one's spec changed, writes its status as the
  deployment controller would at the end of the rollout (tests/k8s/kube.
  mark_deployment_ready), or, for a slot the test holds, half-way through it;
- pods and their metrics: each slot has two pods, each with the app's real metrics objects
  (AppMetrics on a registry of its own) kept moving by a traffic thread and served as
  Prometheus text by an HTTP server of its own on this machine's address
  (tests/rollout_apps.node_address). The test writes what the kubelet and the
  EndpointSlice controller would: a Pod object whose status has that address, and an
  EndpointSlice of the slot's Service listing it. The CLI then reads every pod as it does
  from CI: through the API server's pod proxy (--metrics-via auto, out of the cluster).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from agogosml.rollout.cluster import Cluster, Journal
from agogosml.rollout.health import HealthLimits, PerPod
from agogosml.rollout.helm import HelmRelease
from agogosml.rollout.pods import proxy_fetch, slot_endpoints
from agogosml.rollout.rollout import Rollout, WatchPolicy
from agogosml.services.app.metrics import AppMetrics
from tests.conftest import Registry
from tests.k8s.kube import mark_deployment_ready
from tests.packaging.helm import CHART, ROOT, Helm, Rendered, fetch_helm
from tests.rollout_apps import add_endpoint, create_pod, node_address

pytestmark = pytest.mark.timeout(300)

RELEASE = "agogosml"  # contains the chart's name, so it is also the fullname
COMPONENTS = {f"{RELEASE}-input-reader", f"{RELEASE}-output-writer"}  # shadow off
SLOT_LABEL = "agogosml.io/slot"
TAG_A, TAG_B, TAG_C = "1.0.0-aaaaaaa", "1.1.0-bbbbbbb", "1.2.0-ccccccc"
MODEL_A, MODEL_B = "models:/fraud/1", "models:/fraud/2"
WINDOW_S, WATCH_S = 1.0, 3.0
DEADLINE_S = 60.0  # for the stand-in threads: far above anything a test waits for


# --- metrics ---------------------------------------------------------------------------

class PodMetrics:
    """One pod's app metrics, served by an HTTP server of its own."""

    def __init__(self, slot: SlotMetrics, host: str) -> None:
        self.slot = slot
        self.registry = CollectorRegistry()
        self.metrics = AppMetrics(self.registry)
        pod = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/metrics":
                    self.send_error(404)
                    return
                if pod.slot.down.is_set():
                    self.send_error(503)
                    return
                body = generate_latest(pod.registry)
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: no access log

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.port: int = self.server.server_address[1]

    def tick(self) -> None:
        self.metrics.requests.labels(endpoint="/v1/batches", status="200").inc(10)
        self.metrics.requests.labels(endpoint="/healthz", status="200").inc(5)
        if self.slot.failing.is_set():
            self.metrics.requests.labels(endpoint="/v1/batches", status="503").inc(5)
        for _ in range(10):
            self.metrics.predict_latency.labels(endpoint="batch").observe(0.004)


class SlotMetrics:
    """One slot's two pods. Each traffic tick, each pod answers 10 scoring requests well
    (and is probed) and, while `failing`, 5 more with 503. While `down`, their /metrics
    answer 503."""

    def __init__(self, host: str) -> None:
        self.failing = threading.Event()
        self.down = threading.Event()
        self.pods = [PodMetrics(self, host) for _ in range(2)]


@dataclass
class Traffic:
    slots: dict[str, SlotMetrics]


@pytest.fixture
def traffic(api_client: client.ApiClient, namespace: str) -> Iterator[Traffic]:
    """Both slots' pods, listed in their Services' EndpointSlices (which exist before the
    Services do: no controller would mind)."""
    host = node_address()
    slots = {slot: SlotMetrics(host) for slot in ("blue", "green")}
    for slot, metrics in slots.items():
        for number, pod in enumerate(metrics.pods):
            name = f"{RELEASE}-app-{slot}-{number}"
            create_pod(api_client, namespace, name, host, pod.port,
                       {"app.kubernetes.io/component": "app", SLOT_LABEL: slot})
            add_endpoint(api_client, namespace, f"{RELEASE}-app-{slot}", host, pod.port, name)
    stop = threading.Event()

    def flow() -> None:
        deadline = time.monotonic() + DEADLINE_S * 3
        while not stop.wait(0.05) and time.monotonic() < deadline:
            for slot in slots.values():
                for pod in slot.pods:
                    pod.tick()

    servers = [pod.server for slot in slots.values() for pod in slot.pods]
    threads = [threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
               for server in servers]
    threads.append(threading.Thread(target=flow, name="traffic", daemon=True))
    for thread in threads:
        thread.start()
    try:
        yield Traffic(slots)
    finally:
        stop.set()
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(timeout=10)


# --- pods becoming ready ----------------------------------------------------------------

class PodsStandIn:
    """Marks the release's Deployments ready whenever their spec changed, as the
    deployment controller and kubelets would at the end of a rollout. For a held one (by
    slot, or by component for the reader and writers), optionally only on a given image
    tag, it stops half-way instead: the new pod not ready yet, the old ones serving."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.apps = client.AppsV1Api(api)
        self.api = api
        self.namespace = namespace
        self.held: dict[str, str | None] = {}
        self.stop = threading.Event()
        self.failures: list[BaseException] = []

    def hold(self, name: str, tag: str | None = None) -> None:
        """Slot or component `name` does not become ready (on image tag `tag`, or any)."""
        self.held[name] = tag

    def is_held(self, deployment: Any) -> bool:
        labels = deployment.metadata.labels
        key = labels.get(SLOT_LABEL) or labels.get("app.kubernetes.io/component")
        if key not in self.held:
            return False
        tag = self.held[key]
        image: str = deployment.spec.template.spec.containers[0].image
        return tag is None or image.endswith(f":{tag}")

    def run(self) -> None:
        deadline = time.monotonic() + DEADLINE_S * 3
        try:
            while not self.stop.wait(0.1) and time.monotonic() < deadline:
                for item in self.apps.list_namespaced_deployment(self.namespace).items:
                    name, status = item.metadata.name, item.status
                    if self.is_held(item):
                        if (status.observed_generation or 0) < item.metadata.generation:
                            self.half_way(name, item.metadata.generation, item.spec.replicas)
                    elif not rolled_out(item):
                        mark_deployment_ready(self.api, self.namespace, name)
        except BaseException as error:  # reported by the fixture, in the test
            self.failures.append(error)

    def half_way(self, name: str, generation: int, replicas: int) -> None:
        """What the deployment controller reports while one surge pod of the new version
        starts and the old pods still serve."""
        self.apps.patch_namespaced_deployment_status(name, self.namespace, {"status": {
            "observedGeneration": generation, "replicas": replicas + 1, "updatedReplicas": 1,
            "readyReplicas": replicas, "availableReplicas": replicas,
            "unavailableReplicas": 1}})


def rolled_out(deployment: Any) -> bool:
    status, desired = deployment.status, deployment.spec.replicas or 0
    return bool((status.observed_generation or 0) >= deployment.metadata.generation
                and (status.updated_replicas or 0) == (status.replicas or 0) == desired
                and (status.ready_replicas or 0) == desired)


@pytest.fixture
def pods(kubeconfig: Path, namespace: str) -> Iterator[PodsStandIn]:
    api = config.new_client_from_config(config_file=str(kubeconfig))
    stand_in = PodsStandIn(api, namespace)
    thread = threading.Thread(target=stand_in.run, name="pods-stand-in", daemon=True)
    thread.start()
    try:
        yield stand_in
    finally:
        stand_in.stop.set()
        thread.join(timeout=10)
        api.close()
    assert not stand_in.failures, f"the pods stand-in failed: {stand_in.failures[0]!r}"


# --- the release ------------------------------------------------------------------------

@dataclass
class Release:
    """The installed release and what a user would look at."""

    namespace: str
    kubeconfig: Path
    helm: Helm
    traffic: Traffic
    api: client.ApiClient
    tool: Rollout = field(init=False)

    def __post_init__(self) -> None:
        self.tool = Rollout(
            HelmRelease(RELEASE, self.namespace, str(CHART), str(self.helm.binary),
                        str(self.kubeconfig), timeout_s=30),
            Cluster(self.api, self.namespace, RELEASE),
            Journal(self.api, self.namespace, RELEASE),
            lambda slot: PerPod(slot_endpoints(self.api, self.namespace,
                                               f"{RELEASE}-app-{slot}"),
                                proxy_fetch(self.api, self.namespace)),
            HealthLimits(),
            WatchPolicy(WINDOW_S, WATCH_S, ready_timeout_s=30))

    def cli(self, action: str, *args: str) -> subprocess.CompletedProcess[str]:
        """`agogosml rollout <action>` as a user runs it."""
        return subprocess.run(
            [sys.executable, "-m", "agogosml.cli", "rollout", action,
             "--release", RELEASE, "--namespace", self.namespace, "--chart", str(CHART),
             "--kubeconfig", str(self.kubeconfig), "--helm", str(self.helm.binary),
             "--gate-window-seconds", str(WINDOW_S), "--watch-seconds", str(WATCH_S),
             "--ready-timeout-seconds", "30", *args],
            capture_output=True, text=True, check=False, timeout=120, cwd=ROOT,
            env=self.helm.env())

    def selects(self) -> tuple[str, str]:
        """The slots the production and the preview Service select."""
        core = client.CoreV1Api(self.api)
        production, preview = (
            core.read_namespaced_service(f"{RELEASE}-{role}", self.namespace)
            .spec.selector[SLOT_LABEL] for role in ("app", "app-preview"))
        return production, preview

    def deployment(self, slot: str) -> Any:
        return client.AppsV1Api(self.api).read_namespaced_deployment(
            f"{RELEASE}-app-{slot}", self.namespace)

    def values(self) -> dict[str, Any]:
        """What `helm get values` says the release was given."""
        values: dict[str, Any] = json.loads(self.helm.check(
            "get", "values", RELEASE, "--namespace", self.namespace, "--output", "json"))
        return values

    def helm_revision(self) -> int:
        status = json.loads(self.helm.check("status", RELEASE, "--namespace", self.namespace,
                                            "--output", "json"))
        revision: int = status["version"]
        return revision

    def helm_production_slot(self) -> str:
        """The production Service as Helm last applied it (what a re-apply would restore)."""
        manifest = Rendered.parse(self.helm.check("get", "manifest", RELEASE,
                                                  "--namespace", self.namespace))
        slot: str = manifest.get("Service", f"{RELEASE}-app")["spec"]["selector"][SLOT_LABEL]
        return slot

    def journal(self) -> list[dict[str, Any]]:
        config_map = client.CoreV1Api(self.api).read_namespaced_config_map(
            f"{RELEASE}-rollout", self.namespace)
        entries: list[dict[str, Any]] = json.loads(config_map.data["journal"])
        return entries

    def steps(self) -> list[str]:
        return [entry["step"] for entry in self.journal()]

    def component_tag(self, component: str) -> str:
        """The image tag the reader's or a writer's Deployment runs."""
        deployment = client.AppsV1Api(self.api).read_namespaced_deployment(
            f"{RELEASE}-{component}", self.namespace)
        (container,) = deployment.spec.template.spec.containers
        tag: str = container.image.rpartition(":")[2]
        return tag


def image_and_model(deployment: Any) -> tuple[str, str]:
    (container,) = deployment.spec.template.spec.containers
    env = {item.name: item.value for item in container.env}
    return container.image.rpartition(":")[2], env["AGOGOSML_APP_MODEL_URI"]


@pytest.fixture
def release(kubeconfig: Path, namespace: str, api_client: client.ApiClient, tmp_path: Path,
            traffic: Traffic, pods: PodsStandIn,
            monkeypatch: pytest.MonkeyPatch) -> Release:
    helm = Helm(fetch_helm()).on_cluster(kubeconfig, tmp_path / "helm")
    for variable, value in helm.own_dirs().items():
        monkeypatch.setenv(variable, value)  # the tool's own helm calls stay out of ~/ too
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({
        "productionSlot": "blue",
        "image": {"tag": TAG_A},
        "app": {"slots": {"blue": {"enabled": True, "modelUri": MODEL_A,
                                   "image": {"tag": TAG_A}},
                          "green": {"enabled": False}}},
    }))
    helm.check("install", RELEASE, str(CHART), "--namespace", namespace, "--values", str(values))
    installed = Release(namespace, kubeconfig, helm, traffic, api_client)
    state = installed.tool.cluster.wait_ready("blue", timeout_s=30, poll_s=0.1)
    assert state.is_ready, state
    components = installed.tool.cluster.wait_components_ready(timeout_s=30, poll_s=0.1)
    assert {state.name for state in components if state.is_ready} == set(COMPONENTS)
    assert installed.selects() == ("blue", "green")
    return installed


def when(condition: Callable[[], bool], then: Callable[[], None]) -> threading.Thread:
    """Run `then` as soon as `condition` holds (polled, with a deadline), in a thread."""
    def wait() -> None:
        deadline = time.monotonic() + DEADLINE_S
        while not condition():
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)  # polling the condition
        then()
    thread = threading.Thread(target=wait, name="when", daemon=True)
    thread.start()
    return thread


# --- scenarios --------------------------------------------------------------------------

def entry(journal_entry: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in journal_entry.items() if key != "at"}


def test_deploy_puts_the_new_version_on_the_idle_slot(release: Release) -> None:
    blue_generation = release.deployment("blue").metadata.generation
    revision = release.helm_revision()

    done = release.cli("deploy", "--image-tag", TAG_B, "--model-uri", MODEL_B)

    assert done.returncode == 0, done.stderr
    assert "deployed to green" in done.stdout
    green = release.deployment("green")
    assert image_and_model(green) == (TAG_B, MODEL_B)
    assert green.status.ready_replicas == green.spec.replicas == 2
    blue = release.deployment("blue")
    assert image_and_model(blue) == (TAG_A, MODEL_A)
    assert blue.metadata.generation == blue_generation, "the live slot was not touched"
    assert release.selects() == ("blue", "green"), "production still on blue"
    values = release.values()
    assert values["productionSlot"] == "blue"
    assert values["app"]["slots"]["green"]["enabled"] is True
    journal = release.journal()
    assert [entry["step"] for entry in journal] == [
        "deploy", "ready", "deploy-components", "components-ready"]
    assert entry(journal[0]) == {"step": "deploy", "slot": "green", "image_tag": TAG_B,
                                 "model_uri": MODEL_B, "model_uri_requested": MODEL_B}
    assert journal[1]["slot"] == "green"
    assert entry(journal[2]) == {"step": "deploy-components", "image_tag": TAG_B,
                                 "previous_image_tag": TAG_A, "revision": revision + 1}


def test_deploy_rolls_the_reader_and_writer_to_the_new_image(release: Release) -> None:
    assert {release.component_tag(c) for c in ("input-reader", "output-writer")} == {TAG_A}

    done = release.cli("deploy", "--image-tag", TAG_B)

    assert done.returncode == 0, done.stderr
    assert release.component_tag("input-reader") == release.component_tag(
        "output-writer") == TAG_B
    assert release.values()["image"]["tag"] == TAG_B
    assert image_and_model(release.deployment("green")) == (TAG_B, MODEL_A), \
        "an image-only deploy serves production's model"
    assert entry(release.journal()[-1]) == {"step": "components-ready", "ready": {
        f"{RELEASE}-input-reader": "1/1", f"{RELEASE}-output-writer": "2/2"}}
    assert release.selects() == ("blue", "green"), "production still on blue"

    again = release.cli("deploy", "--image-tag", TAG_B)  # same tag: nothing to roll
    assert again.returncode == 0, again.stderr
    assert release.steps()[-2:] == ["deploy", "ready"]


def test_a_writer_that_does_not_become_ready_is_rolled_back(release: Release,
                                                            pods: PodsStandIn) -> None:
    """The new writer image never gets ready: the release goes back to the revision
    before the reader and writer moved, and the deploy fails saying so."""
    pods.hold("output-writer", TAG_B)

    done = release.cli("deploy", "--image-tag", TAG_B, "--ready-timeout-seconds", "2")

    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr
    deployed = release.journal()
    revision = next(e["revision"] for e in deployed if e["step"] == "deploy-components")
    assert (f"{RELEASE}-output-writer (0/2) not ready on image tag {TAG_B} after 2.0s; "
            f"rolled back to revision {revision} (image.tag {TAG_A})") in done.stderr
    assert [e["step"] for e in deployed] == [
        "deploy", "ready", "deploy-components", "components-failed", "components-rolled-back"]
    assert deployed[3]["ready"][f"{RELEASE}-output-writer"] == "0/2"
    assert entry(deployed[4]) == {
        "step": "components-rolled-back", "revision": revision, "image_tag": TAG_A,
        "ready": {f"{RELEASE}-input-reader": "1/1", f"{RELEASE}-output-writer": "2/2"}}
    assert release.component_tag("output-writer") == release.component_tag(
        "input-reader") == TAG_A
    assert release.values()["image"]["tag"] == TAG_A
    assert release.helm_revision() == revision + 2, "the upgrade, then the rollback"
    assert image_and_model(release.deployment("green"))[0] == TAG_B, \
        "the idle slot keeps the new app: it serves nothing until promoted"
    assert release.selects() == ("blue", "green")


def test_deploy_pins_a_model_alias_to_its_version(release: Release,
                                                  mlflow_registry: Registry) -> None:
    demo = mlflow_registry.demo
    alias = f"models:/{demo.model_name}@champion"

    done = release.cli("deploy", "--model-uri", alias,
                       "--mlflow-tracking-uri", mlflow_registry.tracking_uri)

    assert done.returncode == 0, done.stderr
    pinned = f"models:/{demo.model_name}/{demo.version}"
    assert image_and_model(release.deployment("green")) == (TAG_A, pinned), \
        "a model-only deploy runs production's image"
    assert release.values()["app"]["slots"]["green"]["modelUri"] == pinned
    assert entry(release.journal()[0]) == {"step": "deploy", "slot": "green",
                                           "image_tag": TAG_A, "model_uri": pinned,
                                           "model_uri_requested": alias}
    assert release.steps() == ["deploy", "ready"], "no image tag: reader and writer stay"


def test_an_alias_that_cannot_be_resolved_deploys_nothing(release: Release,
                                                          mlflow_registry: Registry) -> None:
    revision = release.helm_revision()
    name = mlflow_registry.demo.model_name
    unknown = release.cli("deploy", "--model-uri", f"models:/{name}@no-such-alias",
                          "--mlflow-tracking-uri", mlflow_registry.tracking_uri)
    no_registry = release.cli("deploy", "--model-uri", f"models:/{name}@champion",
                              "--mlflow-tracking-uri", "")

    assert unknown.returncode == no_registry.returncode == 2
    assert f"cannot resolve models:/{name}@no-such-alias in " in unknown.stderr
    assert "names an alias: give --mlflow-tracking-uri" in no_registry.stderr
    assert release.helm_revision() == revision
    assert not release.tool.cluster.slot("green").exists
    assert [entry["step"] for entry in release.tool.journal.entries()] == []
    assert "Traceback" not in unknown.stderr + no_registry.stderr


def test_promote_a_healthy_slot(release: Release) -> None:
    release.tool.deploy(TAG_B, MODEL_B)
    generations = {slot: release.deployment(slot).metadata.generation
                   for slot in ("blue", "green")}
    revision = release.helm_revision()
    before = len(release.journal())

    done = release.cli("promote")

    assert done.returncode == 0, done.stderr
    assert "promoted green; watched 3s" in done.stdout
    assert release.selects() == ("green", "blue")
    assert release.values()["productionSlot"] == "green"
    assert release.helm_production_slot() == "green", "Helm's record matches the cluster"
    assert release.helm_revision() == revision + 1, "one helm upgrade: the switch"
    assert {slot: release.deployment(slot).metadata.generation
            for slot in ("blue", "green")} == generations, "no pod restarted"
    journal = release.journal()[before:]
    steps = [entry["step"] for entry in journal]
    assert steps[:2] == ["gate-passed", "promoted"]
    assert steps[-1] == "watch-passed"
    watch_gates = steps[2:-1]
    assert watch_gates, "the new slot was gated again while watched"
    assert set(watch_gates) == {"gate-passed"}
    gate = journal[0]
    assert gate["pods"] == 2, "both of green's pods were read, through the pod proxy"
    assert gate["requests"] > 0
    assert gate["error_rate"] == 0


def test_a_slot_failing_after_the_switch_is_switched_back(release: Release) -> None:
    green = release.traffic.slots["green"]
    # The new version turns bad once production traffic reaches it.
    saboteur = when(lambda: release.selects()[0] == "green", green.failing.set)

    done = release.cli("deploy", "--image-tag", TAG_B, "--model-uri", MODEL_B, "--promote")

    saboteur.join(timeout=5)
    assert green.failing.is_set(), "production never switched to green"
    assert done.returncode != 0
    assert "green failed its gate after the switch (error rate" in done.stderr
    assert "production is back on blue" in done.stderr
    assert release.selects() == ("blue", "green")
    assert release.values()["productionSlot"] == "blue"
    assert release.helm_production_slot() == "blue"
    steps = release.steps()
    assert steps[:6] == ["deploy", "ready", "deploy-components", "components-ready",
                         "gate-passed", "promoted"]
    assert steps[-2:] == ["gate-failed", "automatic-rollback"]
    assert release.journal()[-1]["production"] == "blue"
    assert image_and_model(release.deployment("green")) == (TAG_B, MODEL_B), \
        "the bad version stays on the idle slot, for a look"


def test_a_slot_that_stops_answering_after_the_switch_is_switched_back(
        release: Release) -> None:
    """Its pods' metrics cannot be read: that fails the gate as much as errors do, and
    production goes back."""
    release.tool.deploy(TAG_B, MODEL_B)
    green = release.traffic.slots["green"]
    saboteur = when(lambda: release.selects()[0] == "green", green.down.set)

    done = release.cli("promote")

    saboteur.join(timeout=5)
    assert green.down.is_set(), "production never switched to green"
    assert done.returncode != 0
    assert f"green failed its gate after the switch (metrics unreadable: pod {RELEASE}-app-" \
           "green-0: through the API server: 503" in done.stderr
    assert "production is back on blue" in done.stderr
    assert "Traceback" not in done.stderr
    assert release.selects() == ("blue", "green")
    assert release.values()["productionSlot"] == "blue"
    assert release.steps()[-2:] == ["gate-failed", "automatic-rollback"]


def test_deploy_waits_for_the_new_version_not_the_old_pods(release: Release,
                                                           pods: PodsStandIn) -> None:
    """Redeploying a slot that already runs (every rollout after the first): while the
    old pods still serve and the new one is not ready, the slot is not ready, so
    `deploy` does not report it ready and `promote` refuses it."""
    release.tool.deploy(TAG_B, MODEL_B)
    pods.hold("green")  # the next rollout of green stops half-way

    deployed = release.cli("deploy", "--image-tag", TAG_C, "--ready-timeout-seconds", "2")

    assert deployed.returncode != 0, deployed.stdout
    assert "slot green not ready after 2.0s (0/2 replicas)" in deployed.stderr
    assert release.steps()[-1] == "deploy-failed"
    assert release.component_tag("input-reader") == TAG_B, \
        "the reader and writer move only after the slot is ready"
    green = release.deployment("green")
    assert image_and_model(green)[0] == TAG_C
    assert green.status.ready_replicas == 2, "the old pods are still ready"
    revision = release.helm_revision()

    promoted = release.cli("promote")

    assert promoted.returncode != 0
    assert "slot green is not deployed and ready; deploy first" in promoted.stderr
    assert release.selects() == ("blue", "green")
    assert release.helm_revision() == revision

    del pods.held["green"]  # the rollout completes
    assert release.tool.cluster.wait_ready("green", timeout_s=10, poll_s=0.1).is_ready


def test_a_failing_gate_leaves_production_untouched(release: Release) -> None:
    release.tool.deploy(TAG_B, MODEL_B)
    release.traffic.slots["green"].failing.set()
    revision = release.helm_revision()
    before = len(release.journal())

    done = release.cli("promote")

    assert done.returncode != 0
    assert "gate failed for green: error rate" in done.stderr
    assert release.selects() == ("blue", "green")
    assert release.values()["productionSlot"] == "blue"
    assert release.helm_revision() == revision, "no helm upgrade ran"
    assert release.steps()[before:] == ["gate-failed"]
    assert release.journal()[-1]["error_rate"] > 0.01


def test_rollback_by_hand(release: Release) -> None:
    release.tool.deploy(TAG_B, MODEL_B)
    assert release.tool.promote(watch=False) == "green"
    assert release.selects() == ("green", "blue")

    done = release.cli("rollback")

    assert done.returncode == 0, done.stderr
    assert "rolled back to blue" in done.stdout
    assert release.selects() == ("blue", "green")
    assert release.values()["productionSlot"] == "blue"
    assert release.helm_production_slot() == "blue"
    assert release.steps()[-1] == "rolled-back"
    assert image_and_model(release.deployment("green")) == (TAG_B, MODEL_B)


def test_status_shows_slots_and_journal(release: Release) -> None:
    release.tool.deploy(TAG_B, MODEL_B)

    done = release.cli("status")

    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert (status["production"], status["idle"]) == ("blue", "green")
    for slot, tag, model in (("blue", TAG_A, MODEL_A), ("green", TAG_B, MODEL_B)):
        state = status["slots"][slot]
        assert state["exists"] is True
        assert state["image"] == f"ghcr.io/agogosml/agogosml-app:{tag}"
        assert state["model_uri"] == model
        assert state["ready"] == state["desired"] == 2
    assert [entry["step"] for entry in status["journal"]] == [
        "deploy", "ready", "deploy-components", "components-ready"]


def test_pods_shows_what_the_gate_can_read_from_here(release: Release) -> None:
    """The check CI runs before a deploy: every ready pod of a slot, read through the
    API server's pod proxy as the gate will."""
    done = release.cli("pods")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["slot"], report["service"]) == ("blue", f"{RELEASE}-app-blue")
    assert [(pod["pod"], pod["ready"], pod["metrics"]) for pod in report["pods"]] == [
        (f"{RELEASE}-app-blue-{n}", True, "readable") for n in range(2)]

    release.traffic.slots["green"].down.set()
    down = release.cli("pods", "--slot", "idle")

    assert down.returncode == 2
    assert (f"the gate cannot read the metrics of {RELEASE}-app-green-0, {RELEASE}-app-"
            "green-1 from here") in down.stderr
    pods = json.loads(down.stdout)["pods"]
    assert pods[0]["metrics"].startswith("unreadable: through the API server: 503")
