"""Real apps for the rollout gate's tests, and what makes them a slot's pods.

Each app is the real service (`create_app`, the demo model from MLflow, a real output
writer) on a real uvicorn server in a thread. The test API server refuses loopback
addresses in EndpointSlices and Pod IPs, so apps that stand for pods listen on this
machine's own non-loopback address (node_address), where the API server's pod proxy can
reach them too.
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from kubernetes import client
from prometheus_client import CollectorRegistry

from agogosml.demo.data import FEATURES, events
from agogosml.envelope import Event
from agogosml.services.app.model import LoadedModel, load_model
from agogosml.services.app.reload import ModelHolder
from agogosml.services.app.scoring import BatchResult, Scorer
from agogosml.services.app.service import create_app
from agogosml.services.output_writer.service import create_app as create_writer
from agogosml.streaming.files import JsonLinesSink
from agogosml.web.client import BatchClient
from tests.servers import PIPELINE, PIPELINE_AUTH, PIPELINE_TOKEN, run_server

RECORDS = [{name: item[name] for name in FEATURES} for item in events(3, seed=11)]
BATCH = orjson.dumps({"events": [{"id": f"e{i}", "time": 1, "subject": None, "payload": r}
                                 for i, r in enumerate(RECORDS)]})


def node_address() -> str:
    """This machine's IPv4 address that is not loopback: where a Pod's IP or an
    EndpointSlice's address may point (the API server refuses 127.0.0.0/8 in both)."""
    candidates: list[str] = []
    for target in ("192.0.2.1", "10.255.255.255"):  # a route lookup; nothing is sent
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect((target, 9))
                candidates.append(probe.getsockname()[0])
            except OSError:
                continue
    with suppress(OSError):
        candidates += [str(info[4][0]) for info in socket.getaddrinfo(
            socket.gethostname(), None, socket.AF_INET)]
    for address in candidates:
        if not address.startswith("127.") and address != "0.0.0.0":
            return str(address)
    raise RuntimeError("this machine has no IPv4 address besides loopback, and the API "
                       "server refuses loopback addresses in EndpointSlices and Pod IPs")


def bound_socket(host: str, port: int = 0) -> socket.socket:
    """A listening address for a server (a given port: where a restarted pod listens
    again)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class BrokenScorer(Scorer):
    """A bug in the app: every pipeline batch raises, unhandled."""

    async def score(self, model: LoadedModel, events: list[Event]) -> BatchResult:
        raise RuntimeError("a bug in scoring")


@dataclass
class RunningApp:
    host: str
    port: int
    pod: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def probe(self, rounds: int = 3) -> None:
        """What kubelets, Prometheus and unauthenticated callers send: no scoring."""
        with httpx.Client(base_url=self.url, timeout=10) as http:
            for _ in range(rounds):
                for path in ("/healthz", "/readyz", "/metrics", "/v2/health/live",
                             "/v2/health/ready"):
                    http.get(path)
                refused = http.post("/v1/batches", content=BATCH)
                assert refused.status_code == 401, refused.text

    def score(self, batches: int, expect: int = 200) -> None:
        """Pipeline batches, each on a connection of its own (uvicorn closes one after
        an unhandled error)."""
        for _ in range(batches):
            response = httpx.post(f"{self.url}/v1/batches", content=BATCH,
                                  headers=PIPELINE_AUTH, timeout=10)
            assert response.status_code == expect, response.text


@contextmanager
def running_app(model_uri: str, host: str, pod: str, broken: bool = False,
                port: int = 0) -> Iterator[RunningApp]:
    """One app pod: the app and its own output writer (on loopback). On `port`, or a
    free one."""
    with tempfile.TemporaryDirectory() as folder:
        writer = create_writer(JsonLinesSink(Path(folder) / "scored.jsonl"),
                               CollectorRegistry(), PIPELINE)
        writer_sock = bound_socket("127.0.0.1")
        writer_url = f"http://127.0.0.1:{writer_sock.getsockname()[1]}"
        with run_server(writer, 20.0, writer_sock):
            app = create_app(ModelHolder(load_model(model_uri)),
                             BatchClient(f"{writer_url}/v1/batches", 10.0,
                                         token=PIPELINE_TOKEN),
                             CollectorRegistry(), writer_health_url=f"{writer_url}/healthz",
                             pipeline=PIPELINE, scorer=BrokenScorer() if broken else None)
            app_sock = bound_socket(host, port)
            with run_server(app, 20.0, app_sock):
                yield RunningApp(host, app_sock.getsockname()[1], pod)


# --- making them a slot's pods on the API server ----------------------------------------

def create_pod(api: client.ApiClient, namespace: str, name: str, address: str, port: int,
               labels: dict[str, str]) -> None:
    """A Pod object whose status says it runs at `address` (what the kubelet would
    report), so that the API server's pod proxy reaches `address:port`."""
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "agogosml-app:test",
                                 "ports": [{"name": "http", "containerPort": port}]}]}})
    core.patch_namespaced_pod_status(name, namespace, {"status": {
        "phase": "Running", "podIP": address, "podIPs": [{"ip": address}],
        "conditions": [{"type": "Ready", "status": "True"}]}})


def slice_body(service: str, name: str, address: str, port: int, pod: str | None,
               ready: bool = True, terminating: bool = False) -> dict[str, Any]:
    """One pod's EndpointSlice (pods here differ in port, and a slice has one port
    list). What the EndpointSlice controller would write for it."""
    endpoint: dict[str, Any] = {"addresses": [address], "conditions": {
        "ready": ready, "serving": ready, "terminating": terminating}}
    if pod is not None:
        endpoint["targetRef"] = {"kind": "Pod", "name": pod}
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": "tests.agogosml"}},
            "addressType": "IPv4", "endpoints": [endpoint],
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}


def add_endpoint(api: client.ApiClient, namespace: str, service: str, address: str,
                 port: int, pod: str | None, ready: bool = True) -> str:
    """Lists `pod` at address:port behind `service`; returns the slice's name."""
    name = f"{service}-{pod or port}"
    client.DiscoveryV1Api(api).create_namespaced_endpoint_slice(
        namespace, slice_body(service, name, address, port, pod, ready))
    return name


def set_endpoint(api: client.ApiClient, namespace: str, service: str, address: str,
                 port: int, pod: str | None, ready: bool = True,
                 terminating: bool = False) -> None:
    """The pod's endpoint changed condition (as the controller updates it)."""
    name = f"{service}-{pod or port}"
    client.DiscoveryV1Api(api).replace_namespaced_endpoint_slice(
        name, namespace, slice_body(service, name, address, port, pod, ready, terminating))


def remove_endpoint(api: client.ApiClient, namespace: str, service: str, port: int,
                    pod: str | None) -> None:
    client.DiscoveryV1Api(api).delete_namespaced_endpoint_slice(
        f"{service}-{pod or port}", namespace)
